package eventlog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// recordSeparator starts every JSON-SEQ record (RFC 7464 §2).
const recordSeparator = 0x1E

// MaxRecordSize bounds one record's text; a longer record is an error
// wrapping ErrMalformed. systemd's records are a few hundred bytes.
const MaxRecordSize = 1 << 20

// Reader reads the records of a log in order. It accepts any record with an
// integer "pcr", a non-empty "digests" list and a string "content_type",
// whatever its content type and whatever other fields it carries (systemd's
// records, ours, other writers'); every record keeps its exact text in Raw.
//
// Bytes that are not a well-formed record (garbage, a record cut short, bad
// JSON, a record longer than MaxRecordSize) are skipped up to the next
// record separator and reading goes on there, as RFC 7464 §2.3 asks: Next
// returns a *SkipError for each skipped range, and Skipped lists them. A
// read error of the underlying reader is sticky.
type Reader struct {
	br      *bufio.Reader
	off     int64 // offset of the next unread byte
	index   int   // index of the next record
	skipped []*SkipError
	pending *SkipError // bytes after a record's LF, returned by the next call
	err     error
}

// NewReader returns a Reader reading JSON-SEQ records from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReader(r)}
}

// Next returns the next record, or io.EOF after the last one. A range of
// bytes that holds no well-formed record gives a *SkipError (wrapping a
// *RecordError that wraps ErrMalformed or ErrTruncated); the next call goes
// on after it. Other errors are the underlying reader's, as a *RecordError,
// and are sticky.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	if p := r.pending; p != nil {
		r.pending = nil
		r.skipped = append(r.skipped, p)
		return Record{}, p
	}
	rec, err := r.next()
	var se *SkipError
	if errors.As(err, &se) {
		r.skipped = append(r.skipped, se)
		return Record{}, err
	}
	if err != nil {
		r.err = err
		return Record{}, err
	}
	r.index++
	return rec, nil
}

// Skipped returns the ranges skipped so far, in order.
func (r *Reader) Skipped() []*SkipError { return r.skipped }

func (r *Reader) next() (Record, error) {
	start := r.off
	fail := func(err error) error { return &RecordError{Index: r.index, Offset: start, Err: err} }
	skip := func(err error) error {
		return &SkipError{Offset: start, Size: r.off - start, Err: &RecordError{Index: r.index, Offset: start, Err: err}}
	}
	c, err := r.br.ReadByte()
	if errors.Is(err, io.EOF) {
		return Record{}, io.EOF
	}
	if err != nil {
		return Record{}, fail(err)
	}
	r.off++
	if c != recordSeparator {
		if _, err := r.toSeparator(false); err != nil {
			return Record{}, fail(err)
		}
		return Record{}, skip(fmt.Errorf("%w: byte 0x%02x where a record separator (0x1E) belongs", ErrMalformed, c))
	}
	chunk, err := r.toSeparator(true)
	if err != nil {
		return Record{}, fail(err)
	}
	if chunk == nil {
		return Record{}, skip(fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxRecordSize))
	}
	if len(chunk) == 0 || chunk[len(chunk)-1] != '\n' {
		i := bytes.LastIndexByte(chunk, '\n')
		if i < 0 || len(bytes.TrimSpace(chunk[i+1:])) == 0 {
			return Record{}, skip(fmt.Errorf("%w: %d bytes without a terminating LF", ErrTruncated, len(chunk)))
		}
		// A record, then bytes that are not one (garbage written after
		// it): keep the record if it is well-formed, skip the rest.
		rest := &SkipError{Offset: start + 2 + int64(i), Size: int64(len(chunk) - i - 1),
			Err: &RecordError{Index: r.index + 1, Offset: start + 2 + int64(i), Err: fmt.Errorf("%w: %d bytes after a record's LF", ErrMalformed, len(chunk)-i-1)}}
		rec, err := parseRecord(chunk[:i])
		if err != nil {
			return Record{}, skip(err)
		}
		r.pending = rest
		return rec, nil
	}
	rec, err := parseRecord(chunk[:len(chunk)-1])
	if err != nil {
		return Record{}, skip(err)
	}
	return rec, nil
}

// toSeparator consumes the bytes up to the next record separator or the end
// of the input. With keep it returns them, or nil when there are more than
// MaxRecordSize (which it consumes all the same, holding no more than that);
// without keep it returns nothing.
func (r *Reader) toSeparator(keep bool) ([]byte, error) {
	chunk := []byte{}
	for {
		b, err := r.br.ReadSlice(recordSeparator)
		if err == nil {
			b = b[:len(b)-1]
			if uerr := r.br.UnreadByte(); uerr != nil {
				return nil, uerr
			}
		}
		r.off += int64(len(b))
		if keep && chunk != nil {
			if len(chunk)+len(b) > MaxRecordSize {
				chunk = nil
			} else {
				chunk = append(chunk, b...)
			}
		}
		switch {
		case err == nil, errors.Is(err, io.EOF):
			if !keep {
				return nil, nil
			}
			return chunk, nil
		case !errors.Is(err, bufio.ErrBufferFull):
			return nil, err
		}
	}
}

// SkipError is a range of a log that holds no well-formed record, which
// the Reader skipped up to the next record separator (RFC 7464 §2.3). It
// wraps the *RecordError of the bad record (errors.Is ErrMalformed or
// ErrTruncated). The records after the range were read.
type SkipError struct {
	Offset int64 // of the range's first byte
	Size   int64 // bytes skipped
	Err    error
}

func (e *SkipError) Error() string {
	return fmt.Sprintf("eventlog: skipped bytes %d-%d (%d bytes): %v", e.Offset, e.Offset+e.Size, e.Size, e.Err)
}

func (e *SkipError) Unwrap() error { return e.Err }

// ReadAll reads records from r until io.EOF. Ranges that hold no
// well-formed record are skipped (see Reader): ReadAll returns every
// well-formed record of r together with the *SkipError of each skipped
// range, joined with errors.Join (errors.As finds the first). A read error
// of r ends it: it returns the records before it and the error.
func ReadAll(r io.Reader) ([]Record, error) {
	return readAll(NewReader(r))
}

func readAll(lr *Reader) ([]Record, error) {
	var recs []Record
	for {
		rec, err := lr.Next()
		var se *SkipError
		switch {
		case errors.Is(err, io.EOF):
			return recs, skipErrors(lr.Skipped())
		case errors.As(err, &se):
			continue
		case err != nil:
			return recs, errors.Join(skipErrors(lr.Skipped()), err)
		}
		recs = append(recs, rec)
	}
}

// skipErrors joins the skipped ranges into one error, nil for none.
func skipErrors(s []*SkipError) error {
	errs := make([]error, len(s))
	for i, e := range s {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// Encode returns the JSON-SEQ bytes of recs, each as Record.Encode gives it.
// Records that were read come back byte for byte.
func Encode(recs []Record) ([]byte, error) {
	var out []byte
	for i, rec := range recs {
		b, err := rec.Encode()
		if err != nil {
			return nil, fmt.Errorf("eventlog: record %d: %w", i, err)
		}
		out = append(out, b...)
	}
	return out, nil
}
