//go:build linux

package eventlog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// Log is a log file's content, read under LOCK_SH.
type Log struct {
	Path    string
	Records []Record
	// Interrupted is true if the file's sticky bit was set: a writer
	// stopped between a PCR extend and the end of its append.
	Interrupted bool
	// Skipped are the ranges that hold no well-formed record; Records
	// holds every record before, between and after them.
	Skipped []*SkipError
}

// ReadFile reads the log at path under a shared flock (LOCK_SH), so that it
// sees no half-written record of a writer following the protocol.
//
// If the sticky bit is set, ReadFile returns the complete Log with
// Interrupted set together with an *InterruptedError (errors.Is
// ErrInterrupted). Ranges that are not well-formed records are skipped
// (Log.Skipped) and the records after them read; they give a *SkipError
// each, joined into the error (errors.Is ErrMalformed or ErrTruncated). A
// missing file gives an error wrapping fs.ErrNotExist; the caller decides
// whether that means an empty log.
func ReadFile(path string) (*Log, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("eventlog: open log for reading: %w", err)
	}
	defer f.Close()
	if err := flock(f, unix.LOCK_SH); err != nil {
		return nil, fmt.Errorf("eventlog: lock %s (LOCK_SH): %w", path, err)
	}
	defer flock(f, unix.LOCK_UN) //nolint:errcheck // closing the file releases the lock anyway
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("eventlog: stat %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("eventlog: %s is not a regular file (%v)", path, st.Mode().Type())
	}
	log := &Log{Path: path, Interrupted: st.Mode()&fs.ModeSticky != 0}
	lr := NewReader(f)
	log.Records, err = readAll(lr)
	log.Skipped = lr.Skipped()
	if err != nil {
		return log, fmt.Errorf("eventlog: read %s: %w", path, err)
	}
	if log.Interrupted {
		return log, &InterruptedError{Path: path}
	}
	return log, nil
}

// Writer appends records to a log with systemd's protocol (docs/log.md):
//
//	Lock        flock LOCK_EX; a sticky bit already set is reported
//	BeginWrite  chmod 0600|S_ISVTX, before the PCR extend
//	Append      write RS+JSON+LF, fsync, chmod 0600, fsync
//	AbortWrite  chmod 0600, when the extend was refused by the TPM
//	Unlock      flock LOCK_UN
//
// A Writer is not safe for concurrent use; separate Writers (in one process
// or many) exclude each other through the flock.
type Writer struct {
	path    string
	f       *os.File
	locked  bool
	writing bool
	// interrupted is set when Lock found the sticky bit set, or an append
	// failed after BeginWrite: the bit then stays set, as evidence that the
	// log no longer explains the PCRs.
	interrupted bool
	size        int64 // file size at BeginWrite, to cut off a partial append
}

// OpenWriter opens (creating it, mode 0600) the log at path for appending,
// creating missing parent directories with mode 0755. The file is opened
// with O_RDWR|O_APPEND|O_CREAT|O_NOFOLLOW|O_CLOEXEC|O_NOCTTY (read, so that
// Lock can check what is already in it) (and O_NONBLOCK, so a
// FIFO at the path cannot block us), and must be a regular file. Errors name
// the path: a symlink at the path gives ELOOP, a read-only directory EACCES
// or EROFS.
func OpenWriter(path string) (*Writer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("eventlog: create parent directories of %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return nil, fmt.Errorf("eventlog: open log for writing: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("eventlog: stat %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("eventlog: %s is not a regular file (%v)", path, st.Mode().Type())
	}
	return &Writer{path: path, f: f}, nil
}

// Path returns the path the Writer was opened with.
func (w *Writer) Path() string { return w.path }

// Lock takes the exclusive lock (flock LOCK_EX), waiting for other writers
// and readers, and checks the log's state under it. If the file's sticky
// bit is set (an earlier writer stopped between extend and append), Lock
// still holds the lock and returns an *InterruptedError (errors.Is
// ErrInterrupted). If the log holds ranges that are not well-formed records
// (garbage, a record cut short, bad JSON), Lock still holds the lock and
// returns a *DamagedError (errors.Is ErrDamaged) naming each range. Both
// may come together (errors.Join). Either way the caller may go on
// appending (the sticky bit then stays set for good, as systemd leaves it;
// the records appended are read after the damage) or Unlock. Other errors
// leave the log unlocked.
func (w *Writer) Lock() error {
	if w.locked {
		return fmt.Errorf("%w: Lock of %s while locked", ErrWriterState, w.path)
	}
	if err := flock(w.f, unix.LOCK_EX); err != nil {
		return fmt.Errorf("eventlog: lock %s (LOCK_EX): %w", w.path, err)
	}
	st, err := w.f.Stat()
	if err != nil {
		flock(w.f, unix.LOCK_UN) //nolint:errcheck // reporting the stat error
		return fmt.Errorf("eventlog: stat %s: %w", w.path, err)
	}
	lr := NewReader(io.NewSectionReader(w.f, 0, st.Size()))
	if _, err := readAll(lr); err != nil && len(lr.Skipped()) == 0 {
		flock(w.f, unix.LOCK_UN) //nolint:errcheck // reporting the read error
		return fmt.Errorf("eventlog: read %s: %w", w.path, err)
	}
	w.locked = true
	w.interrupted = st.Mode()&fs.ModeSticky != 0
	var errs []error
	if w.interrupted {
		errs = append(errs, &InterruptedError{Path: w.path})
	}
	if s := lr.Skipped(); len(s) > 0 {
		errs = append(errs, &DamagedError{Path: w.path, Skipped: s})
	}
	return errors.Join(errs...)
}

// BeginWrite marks the log as being written by setting its sticky bit
// (mode 0600|S_ISVTX). Call it under the lock, before the PCR extend.
func (w *Writer) BeginWrite() error {
	if !w.locked || w.writing {
		return fmt.Errorf("%w: BeginWrite of %s (locked %v, writing %v)", ErrWriterState, w.path, w.locked, w.writing)
	}
	st, err := w.f.Stat()
	if err != nil {
		return fmt.Errorf("eventlog: stat %s: %w", w.path, err)
	}
	if err := w.f.Chmod(0o600 | fs.ModeSticky); err != nil {
		return fmt.Errorf("eventlog: set sticky bit on %s: %w", w.path, err)
	}
	w.size = st.Size()
	w.writing = true
	return nil
}

// Append writes rec (RS, JSON text, LF) in one write, fsyncs the file,
// clears the sticky bit and fsyncs again. Call it after the PCR extend.
//
// If the write or the first fsync fails (a full file system, an I/O
// error), Append cuts the file back to its size at BeginWrite, so no partial
// record stays, leaves the sticky bit set, since the PCR was extended
// without a record, and returns an error naming the path. If the log was
// found interrupted at Lock the sticky bit is not cleared either.
func (w *Writer) Append(rec Record) error {
	if !w.writing {
		return fmt.Errorf("%w: Append to %s without BeginWrite", ErrWriterState, w.path)
	}
	b, err := rec.Encode()
	if err != nil {
		return err
	}
	w.writing = false
	if _, err := w.f.Write(b); err != nil {
		w.interrupted = true
		w.f.Truncate(w.size) //nolint:errcheck // best effort; the write error is what we report
		return fmt.Errorf("eventlog: append record for PCR %d to %s (log left marked interrupted): %w", rec.PCR, w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		w.interrupted = true
		return fmt.Errorf("eventlog: fsync %s after appending a record for PCR %d (log left marked interrupted): %w", w.path, rec.PCR, err)
	}
	if w.interrupted {
		return nil
	}
	if err := w.f.Chmod(0o600); err != nil {
		return fmt.Errorf("eventlog: clear sticky bit on %s: %w", w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("eventlog: fsync %s: %w", w.path, err)
	}
	return nil
}

// AbortWrite ends a write begun with BeginWrite without a record: it clears
// the sticky bit (unless the log was found interrupted at Lock). Call it only
// when the PCR is known to be unchanged, e.g. when the TPM refused the
// extend with an error response. When the outcome of the extend is unknown
// (the TPM connection failed), call Unlock without AbortWrite: the sticky bit
// then stays set and the next reader and writer report ErrInterrupted.
func (w *Writer) AbortWrite() error {
	if !w.writing {
		return fmt.Errorf("%w: AbortWrite of %s without BeginWrite", ErrWriterState, w.path)
	}
	w.writing = false
	if w.interrupted {
		return nil
	}
	if err := w.f.Chmod(0o600); err != nil {
		return fmt.Errorf("eventlog: clear sticky bit on %s: %w", w.path, err)
	}
	return nil
}

// Unlock releases the lock. A write begun with BeginWrite and neither
// appended nor aborted leaves the sticky bit set (see AbortWrite).
func (w *Writer) Unlock() error {
	if !w.locked {
		return fmt.Errorf("%w: Unlock of %s while not locked", ErrWriterState, w.path)
	}
	w.writing = false
	w.locked = false
	if err := flock(w.f, unix.LOCK_UN); err != nil {
		return fmt.Errorf("eventlog: unlock %s: %w", w.path, err)
	}
	return nil
}

// Close unlocks the log if it is locked and closes the file.
func (w *Writer) Close() error {
	var errs []error
	if w.locked {
		errs = append(errs, w.Unlock())
	}
	if err := w.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("eventlog: close %s: %w", w.path, err))
	}
	return errors.Join(errs...)
}

// flock calls flock(2), retrying on EINTR.
func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				return fmt.Errorf("flock: %w", err)
			}
			return nil
		}
	}
}
