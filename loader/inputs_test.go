//go:build linux

package loader

import (
	"bytes"
	"compress/gzip"
	"crypto"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kexec-measured/kexec-measured/loader/loadertest"
)

// TestLoaderInputChecks: inputs that are not what their size says, outputs
// that are not regular files, too many events, a command line with a NUL
// (issue 13). Each is refused with a message that says what is wrong,
// before anything is extended, logged or loaded, and without blocking.
func TestLoaderInputChecks(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "kernel")
	small := writeFile(t, dir, "small.cpio", "0707")
	fifo := dir + "/fifo"
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// big is rewritten by the cases that change it during the copy.
	big := dir + "/big.img"
	const bigSize = 3*pipeChunk + 100
	resetBig := func() {
		if err := os.WriteFile(big, bytes.Repeat([]byte{0xa5}, bigSize), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// afterFirst returns a hook that runs do after the first chunk of big
	// (the kernel is the first chunk of all).
	afterFirst := func(do func() error) func() {
		n := 0
		return func() {
			if n++; n == 2 {
				if err := do(); err != nil {
					t.Error(err)
				}
			}
		}
	}
	huge := dir + "/huge.img" // sparse: one byte over the limit
	if err := os.WriteFile(huge, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, MaxInputSize+1); err != nil {
		t.Fatal(err)
	}
	half := dir + "/half.img" // two of these, aligned: over the limit
	os.WriteFile(half, nil, 0o644)
	os.Truncate(half, MaxInputSize/2+1)
	var members bytes.Buffer // 1100 gzip members: 1100 segments
	for range 1100 {
		zw := gzip.NewWriter(&members)
		zw.Write([]byte("x"))
		zw.Close()
	}
	gzips := dir + "/members.gz"
	os.WriteFile(gzips, members.Bytes(), 0o644)

	tests := []struct {
		name       string
		req        Request
		afterChunk func()
		maxEvents  int
		wantIs     error
		wantText   string
		wantPath   string
	}{
		{name: "pagemap: stat says 0 bytes, reading gives 256 GiB",
			req:    Request{Load: true, Kernel: kernel, Initrds: []string{"/proc/self/pagemap"}},
			wantIs: ErrNoFixedSize, wantText: "fstat says 0 bytes, but reading it gives data", wantPath: "/proc/self/pagemap"},
		{name: "kernel /proc/version: not empty, no fixed size",
			req:    Request{Load: true, Kernel: "/proc/version"},
			wantIs: ErrNoFixedSize, wantText: "not a file with a fixed size", wantPath: "/proc/version"},
		{name: "a sysfs file shorter than its size",
			req:    Request{Load: true, Kernel: kernel, Initrds: []string{"/sys/kernel/uevent_seqnum"}},
			wantIs: ErrSizeChanged, wantText: "bytes fstat gave (it shrank, or it has no fixed size", wantPath: "/sys/kernel/uevent_seqnum"},
		{name: "component grows while read",
			req: Request{Load: true, Kernel: kernel, Initrds: []string{small, big}},
			afterChunk: afterFirst(func() error {
				f, err := os.OpenFile(big, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					return err
				}
				f.Write([]byte("more"))
				return f.Close()
			}),
			wantIs: ErrSizeChanged, wantText: "data after the 6291556 bytes", wantPath: big},
		{name: "component shrinks while read",
			req:        Request{Load: true, Kernel: kernel, Initrds: []string{big}},
			afterChunk: afterFirst(func() error { return os.Truncate(big, pipeChunk+10) }),
			wantIs:     ErrSizeChanged, wantText: "ended after 2097162 of the 6291556 bytes", wantPath: big},
		{name: "kernel over 4 GiB",
			req:    Request{Load: true, Kernel: huge},
			wantIs: ErrTooLarge, wantText: "4294967297 bytes; kexec_file_load reads a kernel of at most 4294967296", wantPath: huge},
		{name: "component over 4 GiB",
			req:    Request{Load: true, Kernel: kernel, Initrds: []string{huge}},
			wantIs: ErrTooLarge, wantText: "at least 4294967297 bytes", wantPath: huge},
		{name: "components together over 4 GiB",
			req:    Request{Load: true, Kernel: kernel, Initrds: []string{small, half, half}},
			wantIs: ErrTooLarge, wantText: "at least 4294967305 bytes", wantPath: half},
		{name: "--initrd-out to a FIFO",
			req:    Request{Load: true, Kernel: kernel, Initrds: []string{small}, InitrdOut: fifo},
			wantIs: ErrNotRegular, wantText: "a FIFO", wantPath: fifo},
		{name: "--initrd-out to a device",
			req:    Request{Load: true, Kernel: kernel, Initrds: []string{small}, InitrdOut: "/dev/null"},
			wantIs: ErrNotRegular, wantText: "a character device", wantPath: "/dev/null"},
		{name: "--initrd-out to a directory",
			req:    Request{Load: true, Kernel: kernel, Initrds: []string{small}, InitrdOut: dir},
			wantIs: ErrNotRegular, wantText: "a directory", wantPath: dir},
		{name: "1100 gzip members split: over the default cap",
			req:    Request{Load: true, Kernel: kernel, Initrds: []string{gzips}, SplitInitrd: true},
			wantIs: ErrTooManyEvents, wantText: "1102 events, the limit is 1024"},
		{name: "over a lower cap",
			req:       Request{Load: true, Kernel: kernel, Initrds: []string{small, small, small}},
			maxEvents: 4, wantIs: ErrTooManyEvents, wantText: "5 events, the limit is 4"},
		{name: "command line with a NUL",
			req:    Request{Load: true, Kernel: kernel, Append: "root=/dev/vda\x00 init=/bin/sh"},
			wantIs: ErrCmdlineNUL, wantText: "at byte 13"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resetBig()
			sys := loadertest.NewSys(t)
			l := &Loader{Sys: sys, PCRs: &fakeTPM{sys: sys, banks: []crypto.Hash{crypto.SHA256}}, Log: &fakeLog{sys: sys},
				PCR: 9, MaxEvents: tt.maxEvents, afterChunk: tt.afterChunk}
			done := make(chan error, 1)
			go func() {
				res, err := l.Run(tt.req)
				if res != nil && res.Image != nil {
					res.Image.Close()
				}
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Run blocked")
			}
			checkRefused(t, err, sys, tt.wantIs, tt.wantText, tt.wantPath)
		})
	}

	// At the caps: accepted.
	resetBig()
	for _, req := range []Request{
		{Load: true, Kernel: kernel, Initrds: []string{small, small, small}, InitrdOut: dir + "/out.img"},
		{Load: true, Kernel: kernel, Initrds: []string{gzips}, SplitInitrd: true},
	} {
		sys := loadertest.NewSys(t)
		max := 5
		if req.SplitInitrd {
			max = 1102
		}
		l := &Loader{Sys: sys, PCRs: &fakeTPM{sys: sys, banks: []crypto.Hash{crypto.SHA256}}, Log: &fakeLog{sys: sys}, PCR: 9, MaxEvents: max}
		res, err := l.Run(req)
		if err != nil {
			t.Fatalf("%d events with MaxEvents %d: %v", len(req.Initrds)+2, max, err)
		}
		res.Image.Close()
	}
}

// checkRefused checks that err refused a request: it is wantIs, says
// wantText, names wantPath (unless empty) in an *InputError, and no call
// of the seam (extend, log, kexec_file_load) was made.
func checkRefused(t *testing.T, err error, sys *loadertest.Sys, wantIs error, wantText, wantPath string) {
	t.Helper()
	if err == nil {
		t.Fatal("Run succeeded")
	}
	if !errors.Is(err, wantIs) {
		t.Errorf("error %v is not %v", err, wantIs)
	}
	if !strings.Contains(err.Error(), wantText) {
		t.Errorf("error %q does not say %q", err, wantText)
	}
	var ie *InputError
	if wantPath != "" && (!errors.As(err, &ie) || ie.Path != wantPath) {
		t.Errorf("error %v does not name %s", err, wantPath)
	}
	if len(sys.Calls) != 0 {
		t.Errorf("calls made despite the refusal: %s", sys.CallString())
	}
}

// TestNonUTF8PathLogged: a component whose name is not valid UTF-8 is
// logged in the quoted form of docs/log.md, which gives back its name.
func TestNonUTF8PathLogged(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "kernel")
	odd := writeFile(t, dir, "caf\xe9\xff.cpio", "0707")
	sys := loadertest.NewSys(t)
	log := &fakeLog{sys: sys}
	l := &Loader{Sys: sys, PCRs: &fakeTPM{sys: sys, banks: []crypto.Hash{crypto.SHA256}}, Log: log, PCR: 9}
	res, err := l.Run(Request{Load: true, Kernel: kernel, Initrds: []string{odd}})
	if err != nil {
		t.Fatal(err)
	}
	res.Image.Close()
	var content struct{ Path string }
	if err := json.Unmarshal(log.records[1].Content, &content); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(content.Path, '\uFFFD') || !strings.HasPrefix(content.Path, `"/`) {
		t.Fatalf("logged path %q is not the quoted form", content.Path)
	}
	name, err := strconv.Unquote(content.Path)
	if err != nil {
		t.Fatalf("logged path %q: %v", content.Path, err)
	}
	if name != odd {
		t.Errorf("logged path %q names %q, want %q", content.Path, name, odd)
	}
	var plain struct{ Path string }
	json.Unmarshal(log.records[0].Content, &plain)
	if plain.Path != kernel {
		t.Errorf("a UTF-8 path is logged as %q, want %q as is", plain.Path, kernel)
	}
}
