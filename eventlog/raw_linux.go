//go:build linux

package eventlog

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// ReadRaw reads the log at path byte for byte under a shared flock
// (LOCK_SH) and, while it still holds the lock, calls during (if not nil).
// A caller that reads the PCRs in during gets a log and PCR values that
// belong together: no writer following the protocol can extend and append
// in between (what systemd recommends before a quote). interrupted reports
// the file's sticky bit. A file that is not regular, or longer than limit
// bytes, is an error naming the path; a missing file an error wrapping
// fs.ErrNotExist (during is not called then). An error of during is
// returned as it is.
func ReadRaw(path string, limit int64, during func() error) (raw []byte, interrupted bool, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, false, fmt.Errorf("eventlog: open log for reading: %w", err)
	}
	defer f.Close()
	if err := flock(f, unix.LOCK_SH); err != nil {
		return nil, false, fmt.Errorf("eventlog: lock %s (LOCK_SH): %w", path, err)
	}
	defer flock(f, unix.LOCK_UN) //nolint:errcheck // closing the file releases the lock anyway
	return readOpened(f, path, limit, during)
}
