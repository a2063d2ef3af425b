package verify

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/kexec-measured/kexec-measured/eventlog"
)

// Log is a userspace log as verify reads it: the records that parse, and
// why reading stopped early or what the sticky bit said (Err, a finding).
type Log struct {
	Path    string
	Records []eventlog.Record
	Err     error // a *eventlog.RecordError or an eventlog.ErrInterrupted; nil when clean
	Missing bool  // there is no file at Path: an empty log
}

// ReadLog reads the userspace log at path under its shared lock
// (eventlog.ReadFile; where that is unsupported, without a lock). A missing
// file is an empty log (Missing set); a record that does not parse and the
// sticky bit come back in Log.Err with the records before it. Any other
// failure (permissions, not a regular file, I/O) is the returned error.
func ReadLog(path string) (*Log, error) {
	out := &Log{Path: path}
	l, err := eventlog.ReadFile(path)
	if errors.Is(err, errors.ErrUnsupported) {
		l, err = readUnlocked(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		out.Missing = true
		return out, nil
	}
	var re *eventlog.RecordError
	switch {
	case err == nil:
	case errors.Is(err, eventlog.ErrInterrupted), errors.As(err, &re):
		out.Err = err
	default:
		return nil, err
	}
	out.Records = l.Records
	return out, nil
}

func readUnlocked(path string) (*eventlog.Log, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("eventlog: open log for reading: %w", err)
	}
	defer f.Close()
	l := &eventlog.Log{Path: path}
	if fi, err := f.Stat(); err == nil && fi.Mode()&fs.ModeSticky != 0 {
		l.Interrupted = true
	}
	l.Records, err = eventlog.ReadAll(f)
	if err != nil {
		return l, fmt.Errorf("eventlog: read %s: %w", path, err)
	}
	if l.Interrupted {
		return l, &eventlog.InterruptedError{Path: path}
	}
	return l, nil
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
