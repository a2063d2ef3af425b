//go:build !linux

package eventlog

import (
	"errors"
	"fmt"
)

// Log is a log file's content, read under LOCK_SH.
type Log struct {
	Path        string
	Records     []Record
	Interrupted bool
	Skipped     []*SkipError
}

// ReadFile is only implemented on Linux; elsewhere it returns
// errors.ErrUnsupported.
func ReadFile(path string) (*Log, error) {
	return nil, fmt.Errorf("eventlog: read %s: %w", path, errors.ErrUnsupported)
}

// Writer appends records to a log; only implemented on Linux.
type Writer struct{}

// OpenWriter is only implemented on Linux; elsewhere it returns
// errors.ErrUnsupported.
func OpenWriter(path string) (*Writer, error) {
	return nil, fmt.Errorf("eventlog: open %s for writing: %w", path, errors.ErrUnsupported)
}

// Path returns "".
func (w *Writer) Path() string { return "" }

// Lock returns errors.ErrUnsupported.
func (w *Writer) Lock() error { return errors.ErrUnsupported }

// BeginWrite returns errors.ErrUnsupported.
func (w *Writer) BeginWrite() error { return errors.ErrUnsupported }

// Append returns errors.ErrUnsupported.
func (w *Writer) Append(Record) error { return errors.ErrUnsupported }

// AbortWrite returns errors.ErrUnsupported.
func (w *Writer) AbortWrite() error { return errors.ErrUnsupported }

// Unlock returns errors.ErrUnsupported.
func (w *Writer) Unlock() error { return errors.ErrUnsupported }

// Close returns errors.ErrUnsupported.
func (w *Writer) Close() error { return errors.ErrUnsupported }
