package eventlog

import (
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kexec-measured/kexec-measured/pcr"
)

var (
	// ErrInterrupted reports a log whose sticky bit (S_ISVTX) was set when
	// the lock was taken: a writer stopped between the PCR extend and the
	// end of its append, so the log may lack a record for an extend that
	// happened. It is a warning-class error: it comes back together with a
	// usable result (the records read, or a Writer that holds the lock).
	ErrInterrupted = errors.New("eventlog: log was left by an interrupted write (sticky bit set)")
	// ErrDamaged reports a log that holds bytes that are not well-formed
	// records (skipped by the reader, see SkipError): they may have been
	// records, so the log may not explain the PCRs. Like ErrInterrupted it
	// is a warning-class error.
	ErrDamaged = errors.New("eventlog: log holds bytes that are not well-formed records")
	// ErrMalformed reports a record that is not valid JSON or lacks a
	// required field.
	ErrMalformed = errors.New("eventlog: malformed record")
	// ErrTruncated reports a record that is not terminated by LF, as a write
	// cut short leaves it (RFC 7464 §2.3). It wraps io.ErrUnexpectedEOF.
	ErrTruncated = fmt.Errorf("eventlog: truncated record: %w", io.ErrUnexpectedEOF)
	// ErrMissingDigest reports a record without a digest for a bank being
	// replayed.
	ErrMissingDigest = errors.New("eventlog: record lacks a digest for the bank")
	// ErrMismatch reports a PCR whose value differs from the replayed log.
	ErrMismatch = errors.New("eventlog: PCR value does not match the replayed log")
	// ErrWriterState reports a Writer method called out of protocol order
	// (Append without BeginWrite, BeginWrite without Lock, ...).
	ErrWriterState = errors.New("eventlog: writer call out of order")
)

// InterruptedError is the error of a reader or writer that found the log's
// sticky bit set. errors.Is(err, ErrInterrupted) is true for it.
type InterruptedError struct {
	Path string
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("eventlog: %s: log was left by an interrupted write (sticky bit set): it may lack a record for a PCR extend", e.Path)
}

// Is reports whether target is ErrInterrupted.
func (e *InterruptedError) Is(target error) bool { return target == ErrInterrupted }

// DamagedError is the error of a writer whose Lock found ranges of the log
// that are not well-formed records. errors.Is(err, ErrDamaged) is true for
// it; errors.As finds each *SkipError.
type DamagedError struct {
	Path    string
	Skipped []*SkipError
}

func (e *DamagedError) Error() string {
	var total int64
	var ranges []string
	for i, s := range e.Skipped {
		total += s.Size
		if i < 3 {
			ranges = append(ranges, fmt.Sprintf("%d-%d", s.Offset, s.Offset+s.Size))
		}
	}
	if len(e.Skipped) > 3 {
		ranges = append(ranges, fmt.Sprintf("and %d more", len(e.Skipped)-3))
	}
	return fmt.Sprintf("eventlog: %s: %d bytes in %d ranges are not well-formed records (bytes %s; first: %v): records there may be lost, so the log may not explain the PCRs",
		e.Path, total, len(e.Skipped), strings.Join(ranges, ", "), e.Skipped[0].Err)
}

// Is reports whether target is ErrDamaged.
func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

// Unwrap returns the skipped ranges.
func (e *DamagedError) Unwrap() []error {
	errs := make([]error, len(e.Skipped))
	for i, s := range e.Skipped {
		errs[i] = s
	}
	return errs
}

// RecordError locates an error in a log: the record's index (from 0) and the
// byte offset of its RS.
type RecordError struct {
	Index  int
	Offset int64
	Err    error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("eventlog: record %d at offset %d: %v", e.Index, e.Offset, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// MismatchError is a PCR whose value differs from the replayed log.
// errors.Is(err, ErrMismatch) is true for it.
type MismatchError struct {
	PCR      int
	Bank     crypto.Hash
	Replayed []byte
	Actual   []byte
}

func (e *MismatchError) Error() string {
	name, err := pcr.Name(e.Bank)
	if err != nil {
		name = e.Bank.String()
	}
	return fmt.Sprintf("eventlog: PCR %d bank %s: TPM has %s, replayed log gives %s",
		e.PCR, name, hex.EncodeToString(e.Actual), hex.EncodeToString(e.Replayed))
}

// Is reports whether target is ErrMismatch.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }
