//go:build !linux

package eventlog

import (
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ReadRaw reads the log at path without a lock (flock is Linux's here):
// see the Linux version. It is what a verifier elsewhere reads an exported
// log with.
func ReadRaw(path string, limit int64, during func() error) (raw []byte, interrupted bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("eventlog: open log for reading: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("eventlog: stat %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, false, fmt.Errorf("eventlog: %s is not a regular file (%v)", path, st.Mode().Type())
	}
	raw, err = io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, false, fmt.Errorf("eventlog: read %s: %w", path, err)
	}
	if int64(len(raw)) > limit {
		return nil, false, fmt.Errorf("eventlog: %s is longer than %d bytes", path, limit)
	}
	if during != nil {
		if err := during(); err != nil {
			return nil, false, err
		}
	}
	return raw, st.Mode()&fs.ModeSticky != 0, nil
}
