//go:build linux

package handoff

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/kexec-measured/kexec-measured/eventlog"
)

// Import puts the records of h ahead of this boot's records in the log at
// logPath (see Merge), creating the log (mode 0600) when there is none, and
// writes h's firmware log copy, if any, to firmwareCopy (mode 0444; ""
// skips it).
//
// The log is rewritten in place, never replaced: a writer of systemd's
// protocol waiting for the lock appends to the same file afterwards. Import
// follows that protocol (docs/log.md): flock LOCK_EX on the log for the
// whole read-merge-write, sticky bit set while writing, fsync, sticky bit
// cleared. The sticky bit stays set when the log was already marked
// interrupted, or when h says that the earlier boot's log was: the merged
// log then no longer explains the PCRs, and readers say so. Errors name
// the path.
func Import(h *Handoff, logPath, firmwareCopy string) (ImportResult, error) {
	res := ImportResult{Bytes: len(h.Log)}
	recs, err := eventlog.ReadAll(bytes.NewReader(h.Log))
	if err != nil {
		return res, fmt.Errorf("handoff: the handed-over log: %w", err)
	}
	res.Records = len(recs)
	if res.Already, err = importLog(h, logPath); err != nil {
		return res, err
	}
	if h.Firmware != nil && firmwareCopy != "" {
		if err := writeFileAtomic(firmwareCopy, h.Firmware, 0o444); err != nil {
			return res, fmt.Errorf("handoff: keep the firmware log copy: %w", err)
		}
		res.Firmware = firmwareCopy
	}
	return res, nil
}

func importLog(h *Handoff, logPath string) (already bool, err error) {
	// The lock and the sticky bit are eventlog's writer protocol; the
	// rewrite goes through a second descriptor, which the first one's
	// flock covers (flock locks the file for every other open of it).
	w, err := eventlog.OpenWriter(logPath)
	if err != nil {
		return false, fmt.Errorf("handoff: %w", err)
	}
	defer w.Close()
	interrupted := false
	if err := w.Lock(); errors.Is(err, eventlog.ErrInterrupted) {
		interrupted = true
	} else if err != nil {
		return false, fmt.Errorf("handoff: %w", err)
	}
	f, err := os.OpenFile(logPath, os.O_RDWR|unix.O_NOFOLLOW|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return false, fmt.Errorf("handoff: open the log for rewriting: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("handoff: stat %s: %w", logPath, err)
	}
	if !st.Mode().IsRegular() {
		return false, fmt.Errorf("handoff: %s is not a regular file (%v)", logPath, st.Mode().Type())
	}
	if st.Size() > 2*MaxLogSize {
		return false, fmt.Errorf("handoff: %s: %w: %d bytes", logPath, ErrTooLarge, st.Size())
	}
	current, err := io.ReadAll(f)
	if err != nil {
		return false, fmt.Errorf("handoff: read %s: %w", logPath, err)
	}
	merged, already := mergeChecked(h.Log, current) // Import checked h.Log
	if already {
		return true, nil
	}
	if err := w.BeginWrite(); err != nil {
		return false, fmt.Errorf("handoff: %w", err)
	}
	if _, err := f.WriteAt(merged, 0); err != nil {
		return false, fmt.Errorf("handoff: write %s (left marked interrupted): %w", logPath, err)
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("handoff: fsync %s (left marked interrupted): %w", logPath, err)
	}
	if h.Interrupted || interrupted {
		return false, nil // the mark stays: the merged log may lack a record
	}
	// The write is complete: clear the mark (AbortWrite clears it, as no
	// record is appended through the Writer).
	if err := w.AbortWrite(); err != nil {
		return false, fmt.Errorf("handoff: %w", err)
	}
	if err := f.Sync(); err != nil {
		return false, fmt.Errorf("handoff: fsync %s: %w", logPath, err)
	}
	return false, nil
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it over path.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	err = errors.Join(err, tmp.Chmod(perm), tmp.Sync(), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
