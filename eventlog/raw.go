package eventlog

import (
	"fmt"
	"io"
	"io/fs"
	"os"
)

// readOpened is the part of ReadRaw after the file is open (and, on
// Linux, locked): it checks that f is a regular file, reads at most limit
// bytes, and calls during.
func readOpened(f *os.File, path string, limit int64, during func() error) (raw []byte, interrupted bool, err error) {
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
