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
// Errors are sticky.
type Reader struct {
	br    *bufio.Reader
	off   int64 // offset of the next unread byte
	index int   // index of the next record
	err   error
}

// NewReader returns a Reader reading JSON-SEQ records from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReader(r)}
}

// Next returns the next record, or io.EOF after the last one. Other errors
// are *RecordError wrapping ErrMalformed (bad JSON, a missing field, bytes
// outside a record), ErrTruncated (a record not terminated by LF) or the
// underlying reader's error.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	rec, err := r.next()
	if err != nil {
		r.err = err
		return Record{}, err
	}
	r.index++
	return rec, nil
}

func (r *Reader) next() (Record, error) {
	start := r.off
	fail := func(err error) error { return &RecordError{Index: r.index, Offset: start, Err: err} }
	c, err := r.br.ReadByte()
	if errors.Is(err, io.EOF) {
		return Record{}, io.EOF
	}
	if err != nil {
		return Record{}, fail(err)
	}
	if c != recordSeparator {
		return Record{}, fail(fmt.Errorf("%w: byte 0x%02x where a record separator (0x1E) belongs", ErrMalformed, c))
	}
	r.off++
	var chunk []byte
	for {
		b, err := r.br.ReadSlice(recordSeparator)
		if err == nil {
			chunk = append(chunk, b[:len(b)-1]...)
			if err := r.br.UnreadByte(); err != nil {
				return Record{}, fail(err)
			}
			break
		}
		chunk = append(chunk, b...)
		if len(chunk) > MaxRecordSize {
			return Record{}, fail(fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxRecordSize))
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			break
		}
		return Record{}, fail(err)
	}
	if len(chunk) > MaxRecordSize {
		return Record{}, fail(fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxRecordSize))
	}
	r.off += int64(len(chunk))
	if len(chunk) == 0 || chunk[len(chunk)-1] != '\n' {
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 && len(bytes.TrimSpace(chunk[i+1:])) > 0 {
			return Record{}, fail(fmt.Errorf("%w: %d bytes after the record's LF", ErrMalformed, len(chunk)-i-1))
		}
		return Record{}, fail(fmt.Errorf("%w: %d bytes without a terminating LF", ErrTruncated, len(chunk)))
	}
	rec, err := parseRecord(chunk[:len(chunk)-1])
	if err != nil {
		return Record{}, fail(err)
	}
	return rec, nil
}

// ReadAll reads records from r until io.EOF. On an error it returns the
// records before the bad one together with the error.
func ReadAll(r io.Reader) ([]Record, error) {
	var recs []Record
	lr := NewReader(r)
	for {
		rec, err := lr.Next()
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
		if err != nil {
			return recs, err
		}
		recs = append(recs, rec)
	}
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
