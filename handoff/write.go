package handoff

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/internal/newc"
)

// Build returns the archive of h: the two directories, the log (0444, or
// 01444 when h.Interrupted) and, when h.Firmware is not nil, the firmware
// log (0444), and a trailer. Every header has uid, gid and mtime 0, so the
// same h always gives the same bytes. A file over its bound gives an error
// wrapping ErrTooLarge.
func Build(h *Handoff) ([]byte, error) {
	if len(h.Log) > MaxLogSize {
		return nil, fmt.Errorf("%w: the log has %d bytes, the limit is %d", ErrTooLarge, len(h.Log), MaxLogSize)
	}
	if len(h.Firmware) > MaxFirmwareSize {
		return nil, fmt.Errorf("%w: the firmware log has %d bytes, the limit is %d", ErrTooLarge, len(h.Firmware), MaxFirmwareSize)
	}
	var buf bytes.Buffer
	buf.Grow(len(h.Log) + len(h.Firmware) + 1024)
	w := newc.NewWriter(&buf, newc.Options{})
	w.Dir(path.Dir(Dir), dirPerm)
	w.Dir(Dir, dirPerm)
	perm := uint32(filePerm)
	if h.Interrupted {
		perm = interruptedPerm
	}
	w.File(path.Join(Dir, LogName), perm, h.Log)
	if h.Firmware != nil {
		w.File(path.Join(Dir, FirmwareName), filePerm, h.Firmware)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("handoff: write the archive: %w", err)
	}
	return buf.Bytes(), nil
}

// Collect reads what a handoff carries: the userspace log at logPath, as it
// stands, without taking its lock (the caller holds it), and the firmware
// log at firmwarePath when it can be read. A missing log is an empty log;
// a log that is not a regular file (a symlink included) or is larger than
// MaxLogSize is an error naming the path. A firmware log that is missing or
// unreadable is left out (Firmware nil); one larger than MaxFirmwareSize
// is an error. An empty firmwarePath skips the firmware log.
func Collect(logPath, firmwarePath string) (*Handoff, error) {
	h := &Handoff{}
	log, mode, err := readBounded(logPath, MaxLogSize, true)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		h.Log = []byte{}
	case err != nil:
		return nil, fmt.Errorf("handoff: read the log: %w", err)
	default:
		h.Log, h.Interrupted = log, mode&fs.ModeSticky != 0
	}
	if firmwarePath == "" {
		return h, nil
	}
	if h.Firmware, err = readFirmware(firmwarePath); err != nil {
		return nil, err
	}
	return h, nil
}

// readFirmware reads the firmware log at p: nil when it is missing,
// unreadable or empty, an error only when it is over MaxFirmwareSize.
func readFirmware(p string) ([]byte, error) {
	fw, _, err := readBounded(p, MaxFirmwareSize, false)
	switch {
	case errors.Is(err, ErrTooLarge):
		return nil, fmt.Errorf("handoff: read the firmware log: %w", err)
	case err == nil && len(fw) > 0:
		return fw, nil
	}
	return nil, nil
}

// readBounded reads the regular file at p, not following a symlink at p,
// refusing more than limit bytes. sysfs files report size 0, so the bound
// is checked on what is read, not on the size. With regular, a file that
// is not regular is refused.
func readBounded(p string, limit int64, regular bool) ([]byte, fs.FileMode, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if regular && !st.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s is not a regular file (%v)", p, st.Mode().Type())
	}
	if st.Size() > limit {
		return nil, 0, fmt.Errorf("%w: %s has %d bytes, the limit is %d", ErrTooLarge, p, st.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", p, err)
	}
	if int64(len(b)) > limit {
		return nil, 0, fmt.Errorf("%w: %s has more than %d bytes", ErrTooLarge, p, limit)
	}
	return b, st.Mode(), nil
}

// Builder builds the handoff of a load from the files as they stand: the
// loader calls Build under the log's lock (loader.HandoffBuilder).
type Builder struct {
	// LogPath is the userspace log.
	LogPath string
	// FirmwarePaths are tried in order for the firmware log copy; the
	// first that can be read is copied (the sysfs log, then the copy an
	// import kept, for kernels that lost the firmware log over a kexec).
	FirmwarePaths []string
}

// DefaultFirmwarePaths are where the firmware log is looked for: the
// kernel's sysfs file, then the copy an earlier import kept.
func DefaultFirmwarePaths() []string { return []string{eventlog.FirmwareLogPath, FirmwareCopyPath} }

// Build collects the log and the first readable firmware log and returns
// the archive (see Collect and Build).
func (b *Builder) Build() ([]byte, error) {
	h, err := Collect(b.LogPath, "")
	if err != nil {
		return nil, err
	}
	for _, p := range b.FirmwarePaths {
		if h.Firmware, err = readFirmware(p); err != nil || h.Firmware != nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return Build(h)
}
