package tpm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// AutoDevices returns the device nodes Open("auto") tries, in order: the
// kernel's resource manager first, then the raw device.
func AutoDevices() []string { return []string{"/dev/tpmrm0", "/dev/tpm0"} }

// Open opens the TPM named by spec and finds its allocated banks (see New):
//
//	auto (or "")      the first of AutoDevices that exists; none gives ErrNoTPM
//	none              nothing: returns ErrDisabled (errors.Is ErrNoTPM)
//	/path/to/device   that character device (a missing one is an error, not ErrNoTPM)
//	swtpm:HOST:PORT   swtpm's raw TCP command channel (DialSwtpm)
//
// Any other spec gives an error wrapping ErrBadSpec. Device nodes are only
// supported on Linux (errors.ErrUnsupported elsewhere).
func Open(spec string) (*TPM, error) {
	switch {
	case spec == "" || spec == "auto":
		return openFirst(AutoDevices())
	case spec == "none":
		return nil, ErrDisabled
	case strings.HasPrefix(spec, "swtpm:"):
		t, err := DialSwtpm(strings.TrimPrefix(spec, "swtpm:"))
		if err != nil {
			return nil, err
		}
		tp, err := newTPM(t, t)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("tpm: %s: %w", spec, err)
		}
		return tp, nil
	case strings.HasPrefix(spec, "/"):
		return openDevice(spec)
	}
	return nil, fmt.Errorf("%w: %q (want auto, none, a device path or swtpm:HOST:PORT)", ErrBadSpec, spec)
}

// openFirst opens the first of paths that exists. If none exists it returns
// an error wrapping ErrNoTPM; a path that exists but fails to open is an
// error (we do not silently fall back to another device).
func openFirst(paths []string) (*TPM, error) {
	for _, p := range paths {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		return openDevice(p)
	}
	return nil, fmt.Errorf("%w: none of %s exists", ErrNoTPM, strings.Join(paths, ", "))
}
