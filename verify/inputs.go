package verify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/kexec-measured/kexec-measured/eventlog"
)

// MaxLogSize bounds the userspace log verify reads: 64 MiB, some 200 000
// records.
const MaxLogSize = 64 << 20

// Log is a userspace log as verify reads it: its bytes, the records that
// parse, and why reading stopped early or what the sticky bit said (Err,
// a finding).
type Log struct {
	Path    string
	Raw     []byte
	Records []eventlog.Record
	Err     error // skipped ranges, a read error, or an *eventlog.InterruptedError; nil when clean
	Missing bool  // there is no file at Path: an empty log
}

// ReadLog reads the userspace log at path under its shared lock
// (eventlog.ReadRaw) and parses it (ParseLog). during, if not nil, is
// called while the lock is held, also when there is no log: reading the
// PCRs there gives values that belong to the log read. A missing file is
// an empty log (Missing set). Any other failure (permissions, not a
// regular file, I/O, during's error) is the returned error.
func ReadLog(path string, during func() error) (*Log, error) {
	raw, interrupted, err := eventlog.ReadRaw(path, MaxLogSize, during)
	if errors.Is(err, fs.ErrNotExist) {
		if during != nil {
			if err := during(); err != nil {
				return nil, err
			}
		}
		return &Log{Path: path, Missing: true}, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseLog(path, raw, interrupted), nil
}

// ParseLog parses the bytes of a userspace log. Ranges that are not
// well-formed records are reported in Log.Err (eventlog's *SkipError and
// *RecordError) with every record that parses, before and after them;
// interrupted (the sticky bit) gives an *eventlog.InterruptedError there.
func ParseLog(path string, raw []byte, interrupted bool) *Log {
	l := &Log{Path: path, Raw: raw}
	var err error
	if l.Records, err = eventlog.ReadAll(bytes.NewReader(raw)); err != nil {
		l.Err = fmt.Errorf("%s: %w", path, err)
	}
	if interrupted {
		l.Err = errors.Join(l.Err, &eventlog.InterruptedError{Path: path})
	}
	return l
}

// Firmware is a firmware log as verify reads it.
type Firmware struct {
	Path string // the file read; "" when none of the paths exists
	Raw  []byte
	Log  *eventlog.FirmwareLog // nil when none was found or it does not parse
	Err  error                 // why it does not parse (a finding)
}

// ReadFirmware reads the first of paths that exists and parses it
// (eventlog.ParseFirmwareLog). No file at any path gives a Firmware with
// an empty Path; a log that does not parse a Firmware with Err. Other
// failures (permissions, I/O) are the returned error.
func ReadFirmware(paths []string) (*Firmware, error) {
	for _, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("verify: firmware log: %w", err)
		}
		raw, err := io.ReadAll(io.LimitReader(f, eventlog.MaxFirmwareLog+1))
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("verify: firmware log %s: %w", p, err)
		}
		fw := &Firmware{Path: p, Raw: raw}
		if fw.Log, err = eventlog.ParseFirmwareLog(raw); err != nil {
			fw.Err = fmt.Errorf("%s: %w", p, err)
		}
		return fw, nil
	}
	return &Firmware{}, nil
}

// ReadPCRFile reads and parses a --pcrs file (ParsePCRValues).
func ReadPCRFile(path string) (PCRValues, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("verify: --pcrs: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPCRFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("verify: --pcrs %s: %w", path, err)
	}
	return ParsePCRValues(data, path)
}

func isInterrupted(err error) bool { return errors.Is(err, eventlog.ErrInterrupted) }
