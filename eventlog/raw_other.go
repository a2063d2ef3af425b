//go:build !linux

package eventlog

import (
	"fmt"
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
	return readOpened(f, path, limit, during)
}
