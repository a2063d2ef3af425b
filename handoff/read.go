package handoff

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/kexec-measured/kexec-measured/internal/newc"
	"github.com/kexec-measured/kexec-measured/segments"
)

// Parse reads a handoff archive as Build writes it, for example the last
// component of an initrd written with --initrd-out. It accepts exactly: the
// directory entries of Dir's two levels (mode 0755) before any file, the
// log (regular, 0444 or 01444) and at most one firmware log (regular,
// 0444), each at most once and within its bound, in "070701" headers, and
// a trailer; NUL padding after the trailer is allowed. Anything else (a
// name outside Dir, a symlink, a device, a hard link, an executable or
// writable file, a second archive, a missing log) gives an error wrapping
// ErrFormat, a file over its bound one wrapping ErrTooLarge, a cut archive
// one wrapping io.ErrUnexpectedEOF; each names the entry.
func Parse(data []byte) (*Handoff, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: the archive has %d bytes, the limit is %d", ErrTooLarge, len(data), MaxSize)
	}
	cr := segments.NewCpioReader(bytes.NewReader(data), segments.Limits{MaxEntries: 8, MaxNameLen: 256})
	h := &Handoff{}
	var seenLog, seenFirmware bool
	dirs := 0
	var next int64 // where the next entry must start: Build writes no padding between entries
	for {
		hdr, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrFormat, err)
		}
		if hdr.Offset != next {
			return nil, fmt.Errorf("%w: entry %q at offset %d, not right after the previous entry at %d (a trailer or padding in between)", ErrFormat, hdr.Name, hdr.Offset, next)
		}
		next = hdr.Offset + align4(110+int64(len(hdr.Name))+1) + align4(hdr.Size)
		if err := checkEntry(hdr); err != nil {
			return nil, err
		}
		if hdr.Mode&0o170000 == newc.TypeDir {
			if dirs >= 2 || hdr.Name != [2]string{path.Dir(Dir), Dir}[dirs] {
				return nil, fmt.Errorf("%w: directory %q out of order or given twice", ErrFormat, hdr.Name)
			}
			if hdr.Size != 0 {
				return nil, fmt.Errorf("%w: directory %q has %d bytes of data", ErrFormat, hdr.Name, hdr.Size)
			}
			dirs++
			continue
		}
		if dirs < 2 {
			return nil, fmt.Errorf("%w: %q before its directories", ErrFormat, hdr.Name)
		}
		var limit int64 = MaxLogSize
		seen := &seenLog
		if hdr.Name == path.Join(Dir, FirmwareName) {
			limit, seen = MaxFirmwareSize, &seenFirmware
		}
		if *seen {
			return nil, fmt.Errorf("%w: %q given twice", ErrFormat, hdr.Name)
		}
		*seen = true
		if hdr.Size > limit {
			return nil, fmt.Errorf("%w: %q has %d bytes, the limit is %d", ErrTooLarge, hdr.Name, hdr.Size, limit)
		}
		b := make([]byte, hdr.Size)
		if _, err := io.ReadFull(cr, b); err != nil {
			return nil, fmt.Errorf("%w: reading %q: %w", ErrFormat, hdr.Name, eofUnexpected(err))
		}
		if seen == &seenLog {
			h.Log, h.Interrupted = b, hdr.Mode&0o1000 != 0
		} else {
			h.Firmware = b
		}
	}
	if !cr.Trailer() {
		return nil, fmt.Errorf("%w: no trailer", ErrFormat)
	}
	if !seenLog {
		return nil, fmt.Errorf("%w: no %s", ErrFormat, path.Join(Dir, LogName))
	}
	return h, nil
}

// checkEntry checks one header of Parse: a known name and, for that name,
// the type and permission bits Build writes.
func checkEntry(hdr *segments.Header) error {
	if hdr.Magic != newc.Magic {
		return fmt.Errorf("%w: %q has magic %s, want %s", ErrFormat, hdr.Name, hdr.Magic, newc.Magic)
	}
	if hdr.HardLink != "" {
		return fmt.Errorf("%w: %q is a hard link to %q", ErrFormat, hdr.Name, hdr.HardLink)
	}
	typ, perm := hdr.Mode&0o170000, hdr.Mode&0o7777
	switch hdr.Name {
	case path.Dir(Dir), Dir:
		if typ != newc.TypeDir || perm != dirPerm {
			return fmt.Errorf("%w: %q has mode %06o, want directory 0755", ErrFormat, hdr.Name, hdr.Mode)
		}
	case path.Join(Dir, LogName):
		if typ != newc.TypeReg || (perm != filePerm && perm != interruptedPerm) {
			return fmt.Errorf("%w: %q has mode %06o, want regular file 0444 or 01444", ErrFormat, hdr.Name, hdr.Mode)
		}
	case path.Join(Dir, FirmwareName):
		if typ != newc.TypeReg || perm != filePerm {
			return fmt.Errorf("%w: %q has mode %06o, want regular file 0444", ErrFormat, hdr.Name, hdr.Mode)
		}
	default:
		return fmt.Errorf("%w: entry %q is not one of %s, %s, %s/{%s,%s}", ErrFormat, hdr.Name, path.Dir(Dir), Dir, Dir, LogName, FirmwareName)
	}
	return nil
}

func align4(n int64) int64 { return (n + 3) &^ 3 }

func eofUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ReadDir reads a handoff as the kernel unpacked it, from dir (normally
// DefaultDir). dir must be a directory, not a symlink, holding LogName and
// optionally FirmwareName and nothing else; each must be a regular file
// (not a symlink), without execute, set-id or group/other write bits, within
// its bound. A missing dir gives an error wrapping fs.ErrNotExist (a cold
// boot, not a failure); anything else refused wraps ErrFormat or
// ErrTooLarge and names the file.
func ReadDir(dir string) (*Handoff, error) {
	st, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("handoff: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory (%v)", ErrFormat, dir, st.Mode().Type())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("handoff: %w", err)
	}
	h := &Handoff{}
	seenLog := false
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		var limit int64
		switch e.Name() {
		case LogName:
			limit = MaxLogSize
		case FirmwareName:
			limit = MaxFirmwareSize
		default:
			return nil, fmt.Errorf("%w: %s: only %s and %s belong in %s", ErrFormat, p, LogName, FirmwareName, dir)
		}
		lst, err := os.Lstat(p)
		if err != nil {
			return nil, fmt.Errorf("handoff: %w", err)
		}
		if err := checkFileMode(p, lst.Mode()); err != nil {
			return nil, err
		}
		b, mode, err := readBounded(p, limit, true)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", ErrFormat, err)
		}
		if err := checkFileMode(p, mode); err != nil {
			return nil, err
		}
		if e.Name() == LogName {
			h.Log, h.Interrupted, seenLog = b, mode&fs.ModeSticky != 0, true
		} else {
			h.Firmware = b
		}
	}
	if !seenLog {
		return nil, fmt.Errorf("%w: %s has no %s", ErrFormat, dir, LogName)
	}
	return h, nil
}

// checkFileMode refuses what is not a plain data file.
func checkFileMode(p string, m fs.FileMode) error {
	switch {
	case !m.IsRegular():
		return fmt.Errorf("%w: %s is not a regular file (%v)", ErrFormat, p, m.Type())
	case m&0o111 != 0 || m&(fs.ModeSetuid|fs.ModeSetgid) != 0:
		return fmt.Errorf("%w: %s is executable or set-id (%v)", ErrFormat, p, m)
	case m&0o022 != 0:
		return fmt.Errorf("%w: %s is writable by group or others (%v)", ErrFormat, p, m)
	}
	return nil
}
