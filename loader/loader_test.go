//go:build linux

package loader

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/kexec-measured/kexec-measured/loader/loadertest"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"golang.org/x/sys/unix"
)

func TestLoadFlags(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "MZ kernel bytes")
	initrd := writeFile(t, dir, "a.cpio", "07070100000000")
	tests := []struct {
		name      string
		req       Request
		wantFlags int
		noInitrd  bool
	}{
		{"load", Request{Load: true, Kernel: kernel, Initrds: []string{initrd}}, 0, false},
		{"load without initrd", Request{Load: true, Kernel: kernel}, FlagNoInitramfs, true},
		{"panic", Request{Load: true, Panic: true, Kernel: kernel, Initrds: []string{initrd}}, FlagOnCrash, false},
		{"panic without initrd", Request{Load: true, Panic: true, Kernel: kernel}, FlagOnCrash | FlagNoInitramfs, true},
		{"debug", Request{Load: true, Debug: true, Kernel: kernel, Initrds: []string{initrd}}, FlagDebug, false},
		{"unload", Request{Unload: true}, FlagUnload, true},
		{"unload panic", Request{Unload: true, Panic: true}, FlagUnload | FlagOnCrash, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := loadertest.NewSys(t)
			l := &Loader{Sys: sys, PCR: 9}
			res, err := l.Run(tt.req)
			if res.Image != nil {
				defer res.Image.Close()
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if len(sys.Loads) != 1 {
				t.Fatalf("kexec_file_load called %d times, want 1", len(sys.Loads))
			}
			c := sys.Loads[0]
			if c.Flags != tt.wantFlags {
				t.Errorf("flags = %s, want %s", flagNames(c.Flags), flagNames(tt.wantFlags))
			}
			if tt.noInitrd != (c.InitrdFD == -1) {
				t.Errorf("initrd fd = %d, want no initrd: %v", c.InitrdFD, tt.noInitrd)
			}
			if tt.req.Unload && c.KernelFD != -1 {
				t.Errorf("unload passed kernel fd %d, want -1", c.KernelFD)
			}
		})
	}
}

// expectedInitrd concatenates components the way the kernel reads them:
// each starts at a multiple of 4, zeros between.
func expectedInitrd(parts []string) ([]byte, []int64) {
	var b bytes.Buffer
	var offs []int64
	for i, p := range parts {
		if i > 0 {
			b.Write(make([]byte, (4-b.Len()%4)%4))
		}
		offs = append(offs, int64(b.Len()))
		b.WriteString(p)
	}
	return b.Bytes(), offs
}

func TestConcatenationAndSeals(t *testing.T) {
	tests := []struct {
		name  string
		parts []string
	}{
		{"one", []string{"abcde"}},
		{"aligned", []string{"abcd", "efgh"}},
		{"unaligned", []string{"a", "bc", "def", "ghijk", "l"}},
		{"empty component in the middle", []string{"xyz", "", "uvw"}},
		{"binary with NULs", []string{"\x00\x00\x01", "\xff\x00"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			kernel := writeFile(t, dir, "vmlinuz", "kernel image")
			var paths []string
			for i, p := range tt.parts {
				paths = append(paths, writeFile(t, dir, "part"+string(rune('0'+i)), p))
			}
			sys := loadertest.NewSys(t)
			l := &Loader{Sys: sys}
			res, err := l.Run(Request{Load: true, Kernel: kernel, Initrds: paths, Append: "console=ttyS0"})
			if err != nil {
				t.Fatal(err)
			}
			defer res.Image.Close()
			want, offs := expectedInitrd(tt.parts)
			c := sys.Loads[0]
			if !bytes.Equal(c.Initrd, want) {
				t.Errorf("initrd = %q, want %q", c.Initrd, want)
			}
			if string(c.Kernel) != "kernel image" {
				t.Errorf("kernel = %q", c.Kernel)
			}
			if c.Cmdline != "console=ttyS0" {
				t.Errorf("cmdline = %q", c.Cmdline)
			}
			for i, comp := range res.Image.Initrd {
				if comp.Offset != offs[i] || comp.Size != int64(len(tt.parts[i])) {
					t.Errorf("component %d at %d size %d, want %d size %d", i, comp.Offset, comp.Size, offs[i], len(tt.parts[i]))
				}
			}
			if !c.SealsOK {
				t.Error("memfds are not sealed with WRITE|SHRINK|GROW|SEAL")
			}
			if !errors.Is(c.WriteErr, unix.EPERM) {
				t.Errorf("write to a sealed memfd: %v, want EPERM", c.WriteErr)
			}
		})
	}
}

func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "kernel")
	empty := writeFile(t, dir, "empty", "")
	fifo := dir + "/fifo"
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sub := dir + "/subdir"
	os.Mkdir(sub, 0o755)
	tests := []struct {
		name     string
		req      Request
		wantPath string
		wantIs   error
		wantText string
	}{
		{"missing kernel", Request{Load: true, Kernel: dir + "/nope"}, dir + "/nope", os.ErrNotExist, "no such file"},
		{"kernel is a directory", Request{Load: true, Kernel: sub}, sub, ErrNotRegular, "a directory"},
		{"empty kernel", Request{Load: true, Kernel: empty}, empty, ErrEmptyKernel, "empty"},
		{"missing component", Request{Load: true, Kernel: kernel, Initrds: []string{empty, dir + "/gone.cpio"}}, dir + "/gone.cpio", os.ErrNotExist, "no such file"},
		{"component is a directory", Request{Load: true, Kernel: kernel, Initrds: []string{sub}}, sub, ErrNotRegular, "a directory"},
		{"component is a FIFO", Request{Load: true, Kernel: kernel, Initrds: []string{fifo}}, fifo, ErrNotRegular, "a FIFO"},
		{"component is a device", Request{Load: true, Kernel: kernel, Initrds: []string{"/dev/null"}}, "/dev/null", ErrNotRegular, "a character device"},
		{"no kernel", Request{Load: true}, "", ErrNoKernel, "no kernel"},
		{"command line too long", Request{Load: true, Kernel: kernel, Append: strings.Repeat("x", MaxCmdline)}, "", ErrCmdlineTooLong, "2048"},
		{"reused command line too long", Request{Load: true, Kernel: kernel, ReuseCmdline: true, Append: strings.Repeat("y", 2010)}, "", ErrCmdlineTooLong, "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := loadertest.NewSys(t)
			p := &fakeTPM{sys: sys, banks: []crypto.Hash{crypto.SHA256}}
			log := &fakeLog{sys: sys}
			l := &Loader{Sys: sys, PCRs: p, Log: log, PCR: 9}
			_, err := l.Run(tt.req)
			checkRefused(t, err, sys, tt.wantIs, tt.wantText, tt.wantPath)
		})
	}
	// Exactly at the limit is accepted: 2047 bytes and the NUL.
	sys := loadertest.NewSys(t)
	res, err := (&Loader{Sys: sys}).Run(Request{Load: true, Kernel: kernel, Append: strings.Repeat("x", MaxCmdline-1)})
	if err != nil {
		t.Fatalf("a %d-byte command line was refused: %v", MaxCmdline-1, err)
	}
	res.Image.Close()
}

func TestUnreadableInput(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root, which reads files whatever their mode")
	}
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "kernel")
	os.Chmod(kernel, 0)
	_, err := (&Loader{Sys: loadertest.NewSys(t)}).Run(Request{Load: true, Kernel: kernel})
	var ie *InputError
	if !errors.As(err, &ie) || !errors.Is(err, os.ErrPermission) {
		t.Fatalf("err = %v, want a permission error naming %s", err, kernel)
	}
}

func TestExecAndShutdown(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "kernel")
	tests := []struct {
		name      string
		loaded    string
		req       Request
		wantCalls string
		wantErr   error
	}{
		{"exec nothing loaded", "0", Request{Exec: true, Sync: true, IfDown: true}, "", ErrNothingLoaded},
		{"exec", "1", Request{Exec: true, Sync: true, IfDown: true}, "sync ifdown reboot", nil},
		{"exec no sync no ifdown", "1", Request{Exec: true}, "reboot", nil},
		{"force", "0", Request{Load: true, Kernel: kernel, Exec: true, Sync: true, IfDown: true}, "kexec_file_load sync ifdown reboot", nil},
		{"no mode", "0", Request{Load: true, Kernel: kernel, Shutdown: true, Sync: true}, "kexec_file_load shutdown sync", nil},
		{"shutdown nothing loaded", "0", Request{Shutdown: true}, "", ErrNothingLoaded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := loadertest.NewSys(t)
			sys.Files[kexecLoadedPath] = tt.loaded + "\n"
			res, err := (&Loader{Sys: sys}).Run(tt.req)
			if res.Image != nil {
				res.Image.Close()
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := sys.CallString(); got != tt.wantCalls {
				t.Errorf("calls %q, want %q", got, tt.wantCalls)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	for _, tt := range []struct {
		name          string
		panic         bool
		normal, crash string
		want          bool
	}{
		{"normal loaded", false, "1", "0", true},
		{"normal not loaded", false, "0", "1", false},
		{"crash loaded", true, "0", "1", true},
		{"crash not loaded", true, "1", "0", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sys := loadertest.NewSys(t)
			sys.Files[kexecLoadedPath], sys.Files[crashLoadedPath] = tt.normal, tt.crash
			res, err := (&Loader{Sys: sys}).Run(Request{Status: true, Panic: tt.panic})
			if err != nil || res.Loaded != tt.want {
				t.Fatalf("loaded = %v, %v; want %v", res.Loaded, err, tt.want)
			}
		})
	}
}

func TestPanicNeedsReservedMemory(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "kernel")
	sys := loadertest.NewSys(t)
	sys.Files[crashSizePath] = "0\n"
	_, err := (&Loader{Sys: sys}).Run(Request{Load: true, Panic: true, Kernel: kernel})
	if !errors.Is(err, ErrCrashNotReserved) || len(sys.Loads) != 0 {
		t.Fatalf("err = %v, loads %d; want ErrCrashNotReserved and no load", err, len(sys.Loads))
	}
}

func TestReuseCmdline(t *testing.T) {
	tests := []struct {
		proc, append string
		panic        bool
		want         string
	}{
		{"BOOT_IMAGE=/vmlinuz root=/dev/vda1 quiet\n", "", false, "root=/dev/vda1 quiet"},
		{"BOOT_IMAGE=/vmlinuz root=/dev/vda1 crashkernel=256M quiet\n", "stage=2", false, "root=/dev/vda1 crashkernel=256M quiet stage=2"},
		{"BOOT_IMAGE=/vmlinuz root=/dev/vda1 crashkernel=256M quiet\n", "irqpoll", true, "root=/dev/vda1 quiet irqpoll"},
		{"\n", "x", false, "x"},
	}
	for _, tt := range tests {
		sys := loadertest.NewSys(t)
		sys.Files[procCmdlinePath] = tt.proc
		got, err := (&Loader{Sys: sys}).cmdline(Request{ReuseCmdline: true, Append: tt.append, Panic: tt.panic})
		if err != nil || got != tt.want {
			t.Errorf("cmdline(%q, %q, panic %v) = %q, %v; want %q", tt.proc, tt.append, tt.panic, got, err, tt.want)
		}
	}
}

func TestSyscallErrorExplains(t *testing.T) {
	tests := []struct {
		errno syscall.Errno
		want  string
	}{
		{syscall.EPERM, "CAP_SYS_BOOT"},
		{syscall.EKEYREJECTED, "signature"},
		{syscall.EBADMSG, "Secure Boot"},
		{syscall.ENOKEY, "lockdown"},
		{syscall.ENOEXEC, "not recognised"},
		{syscall.EBUSY, "another process"},
		{syscall.ENOMEM, "crashkernel="},
		{syscall.EINVAL, "invalid argument"},
	}
	for _, tt := range tests {
		err := error(&SyscallError{Call: "kexec_file_load", Err: tt.errno})
		if !strings.HasPrefix(err.Error(), "kexec_file_load: ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: message %q lacks %q", tt.errno, err, tt.want)
		}
		if !errors.Is(err, tt.errno) {
			t.Errorf("%v does not unwrap to the errno", err)
		}
	}
}

func TestLoadFailureIsReported(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "kernel")
	sys := loadertest.NewSys(t)
	sys.LoadErr = &SyscallError{Call: "kexec_file_load", Err: syscall.ENOEXEC}
	_, err := (&Loader{Sys: sys}).Run(Request{Load: true, Kernel: kernel, Exec: true, Sync: true})
	if !errors.Is(err, syscall.ENOEXEC) {
		t.Fatalf("err = %v, want ENOEXEC", err)
	}
	if got := sys.CallString(); got != "kexec_file_load" {
		t.Errorf("calls after a failed load: %q", got)
	}
}

// TestMeasuredLoad checks the order of the protocol and that every record
// carries the digest of exactly the bytes that were loaded.
func TestMeasuredLoad(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "the kernel")
	a := writeFile(t, dir, "a.cpio", "first")
	b := writeFile(t, dir, "b.cpio.gz", "second component")
	sys := loadertest.NewSys(t)
	p := &fakeTPM{sys: sys, banks: []crypto.Hash{crypto.SHA1, crypto.SHA256}}
	log := &fakeLog{sys: sys}
	l := &Loader{Sys: sys, PCRs: p, Log: log, PCR: 9, Clock: func() (int64, error) { return 42, nil }}
	res, err := l.Run(Request{Load: true, Kernel: kernel, Initrds: []string{a, b}, Append: "x y"})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Image.Close()
	want := "lock begin extend append begin extend append begin extend append begin extend append unlock kexec_file_load"
	if got := sys.CallString(); got != want {
		t.Errorf("calls\n %s\nwant\n %s", got, want)
	}
	contents := []string{"the kernel", "first", "second component", "x y"}
	events := []string{eventlog.EventKernel, eventlog.EventInitrd, eventlog.EventInitrd, eventlog.EventCmdline}
	if len(log.records) != len(contents) {
		t.Fatalf("%d records, want %d", len(log.records), len(contents))
	}
	for i, r := range log.records {
		sum := sha256.Sum256([]byte(contents[i]))
		var got string
		for _, d := range r.Digests {
			if d.HashAlg == "sha256" {
				got = d.Digest
			}
		}
		if got != hex.EncodeToString(sum[:]) {
			t.Errorf("record %d sha256 = %s, want %x", i, got, sum)
		}
		if len(r.Digests) != 2 || r.PCR != 9 || r.ContentType != eventlog.ContentType {
			t.Errorf("record %d: %+v", i, r)
		}
		if !strings.Contains(string(r.Content), `"event":"`+events[i]+`"`) {
			t.Errorf("record %d content %s is not %s", i, r.Content, events[i])
		}
	}
	// The extends carried the digests of the same bytes, in every bank.
	var items [][]byte
	for _, c := range contents {
		items = append(items, []byte(c))
	}
	if len(p.pcrs) != 1 {
		t.Errorf("extended PCRs %v, want only 9", p.pcrs)
	}
	for _, h := range p.banks {
		if got, want := p.pcrs[9][h], hashtest.PCR(h, nil, items...); !bytes.Equal(got, want) {
			t.Errorf("PCR 9 %v after the load = %x, want %x", h, got, want)
		}
	}
}

func TestMeasureFailuresLoadNothing(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "the kernel")
	a := writeFile(t, dir, "a.cpio", "first")
	b := writeFile(t, dir, "b.cpio", "second")
	tests := []struct {
		name                     string
		extendFail, appendFail   int
		unknown                  bool
		wantExtended, wantLogged int
		wantText                 string
		wantMarked               bool
	}{
		{"first extend refused", 1, 0, false, 0, 0, "PCR 9 was not extended", false},
		{"middle extend refused", 2, 0, false, 1, 1, "was extended with 1 event(s): kexec-kernel", false},
		{"last extend refused", 4, 0, false, 3, 3, "was extended with 3 event(s)", false},
		{"first extend outcome unknown", 1, 0, true, 0, 0, "whether PCR 9 was extended with kexec-kernel", true},
		{"middle extend outcome unknown", 3, 0, true, 2, 2, "is unknown, and the log is left marked", true},
		{"first append fails", 0, 1, false, 1, 0, "the last 1 not in the log", true},
		{"last append fails", 0, 4, false, 4, 3, "was extended with 4 event(s)", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := loadertest.NewSys(t)
			p := &fakeTPM{sys: sys, banks: []crypto.Hash{crypto.SHA256}, failAt: tt.extendFail, unknown: tt.unknown}
			log := &fakeLog{sys: sys, failAt: tt.appendFail}
			l := &Loader{Sys: sys, PCRs: p, Log: log, PCR: 9}
			res, err := l.Run(Request{Load: true, Kernel: kernel, Initrds: []string{a, b}, Exec: true, Sync: true})
			if res.Image != nil {
				res.Image.Close()
			}
			var me *MeasureError
			if !errors.As(err, &me) {
				t.Fatalf("err = %v, want a *MeasureError", err)
			}
			if len(me.Extended) != tt.wantExtended || me.Logged != tt.wantLogged {
				t.Errorf("extended %d logged %d, want %d, %d", len(me.Extended), me.Logged, tt.wantExtended, tt.wantLogged)
			}
			if !strings.Contains(err.Error(), tt.wantText) || !strings.Contains(err.Error(), "nothing loaded") {
				t.Errorf("message %q lacks %q", err, tt.wantText)
			}
			if len(sys.Loads) != 0 || strings.Contains(sys.CallString(), "reboot") {
				t.Errorf("loaded or rebooted after a failed measurement: %s", sys.CallString())
			}
			if !strings.HasSuffix(sys.CallString(), "unlock") {
				t.Errorf("log not unlocked: %s", sys.CallString())
			}
			if log.marked != tt.wantMarked {
				t.Errorf("log marked as being written: %v, want %v", log.marked, tt.wantMarked)
			}
		})
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "the kernel")
	a := writeFile(t, dir, "a.cpio", "abc")
	b := writeFile(t, dir, "b.cpio", "defgh")
	out := dir + "/initrd.out"
	sys := loadertest.NewSys(t)
	l := &Loader{Sys: sys, PCR: 9, Banks: []crypto.Hash{crypto.SHA256, crypto.SHA384}, DryRun: true}
	res, err := l.Run(Request{Load: true, Kernel: kernel, Initrds: []string{a, b}, Exec: true, Sync: true, IfDown: true, InitrdOut: out})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Image.Close()
	if len(sys.Calls) != 0 {
		t.Errorf("dry run made calls: %s", sys.CallString())
	}
	if len(res.Steps) != 4 || !strings.HasPrefix(res.Steps[0], "kexec_file_load") || res.Steps[3] != "reboot(LINUX_REBOOT_CMD_KEXEC)" {
		t.Errorf("steps %q", res.Steps)
	}
	got, err := os.ReadFile(out)
	want, _ := expectedInitrd([]string{"abc", "defgh"})
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("--initrd-out wrote %q, %v; want %q", got, err, want)
	}
	for _, m := range res.Image.Measurements {
		if len(m.Record.Digests) != 2 {
			t.Errorf("%s: %d digests, want sha256 and sha384", m.Event, len(m.Record.Digests))
		}
	}
}

// TestMeasuringNeedsBoth: a TPM without a log (or a log without a TPM) is
// refused before any input is read or --initrd-out written.
func TestMeasuringNeedsBoth(t *testing.T) {
	dir := t.TempDir()
	out := dir + "/initrd.out"
	for name, mk := range map[string]func(*loadertest.Sys) *Loader{
		"TPM only": func(sys *loadertest.Sys) *Loader {
			return &Loader{Sys: sys, PCRs: &fakeTPM{sys: sys, banks: []crypto.Hash{crypto.SHA256}}}
		},
		"log only": func(sys *loadertest.Sys) *Loader { return &Loader{Sys: sys, Log: &fakeLog{sys: sys}} },
	} {
		t.Run(name, func(t *testing.T) {
			sys := loadertest.NewSys(t)
			// The kernel does not exist: reading it would be an *InputError.
			_, err := mk(sys).Run(Request{Load: true, Kernel: dir + "/missing", InitrdOut: out})
			var ie *InputError
			if err == nil || errors.As(err, &ie) || !strings.Contains(err.Error(), "needs both a TPM and a log") {
				t.Fatalf("Run = %v, want the refusal before reading the inputs", err)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("--initrd-out was written (%v)", err)
			}
			if got := sys.CallString(); got != "" {
				t.Errorf("calls %q, want none", got)
			}
		})
	}
}

// TestNoBootIDOrClock: a boot ID or a clock that cannot be read leaves
// the field out of the records, with a warning for each.
func TestNoBootIDOrClock(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "the kernel")
	sys := loadertest.NewSys(t)
	delete(sys.Files, loadertest.BootID)
	var warn bytes.Buffer
	l := &Loader{Sys: sys, DryRun: true, Banks: []crypto.Hash{crypto.SHA256}, Warn: &warn,
		Clock: func() (int64, error) { return 7, errors.New("no clock (fake)") }}
	res, err := l.Run(Request{Load: true, Kernel: kernel})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Image.Close()
	for _, want := range []string{"warning: the log records carry no boot ID: ", "warning: the log records carry no timestamp: no clock (fake)"} {
		if !strings.Contains(warn.String(), want) {
			t.Errorf("warnings %q lack %q", warn.String(), want)
		}
	}
	for _, m := range res.Image.Measurements {
		if c := string(m.Record.Content); strings.Contains(c, "bootId") || strings.Contains(c, "timestamp") {
			t.Errorf("record content %s has a boot ID or timestamp", c)
		}
	}
}
