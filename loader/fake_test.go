package loader

import (
	"crypto"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"golang.org/x/sys/unix"
)

// loadCall is what the fake saw in one kexec_file_load call.
type loadCall struct {
	kernelFD, initrdFD int
	cmdline            string
	flags              int
	kernel, initrd     []byte // the bytes behind the descriptors
	sealsOK            bool   // both memfds carry all four seals
	writeErr           error  // what a write to the initrd (or kernel) memfd returned
}

// fakeSys records every call of the seam; nothing reaches the kernel.
type fakeSys struct {
	t       *testing.T
	files   map[string]string // what ReadFile returns
	loadErr error
	loads   []loadCall
	calls   []string // every call, in order, including the measurer's
}

func newFakeSys(t *testing.T) *fakeSys {
	return &fakeSys{t: t, files: map[string]string{
		kexecLoadedPath: "0\n", crashLoadedPath: "0\n", crashSizePath: "134217728\n",
		procCmdlinePath:                   "BOOT_IMAGE=/vmlinuz root=/dev/vda1 crashkernel=128M quiet\n",
		"/proc/sys/kernel/random/boot_id": "0f5e1c42-6f53-4c2b-9d7e-2f2f1a1b2c3d\n",
	}}
}

func (f *fakeSys) KexecFileLoad(kernel, initrd int, cmdline string, flags int) error {
	f.calls = append(f.calls, "kexec_file_load")
	c := loadCall{kernelFD: kernel, initrdFD: initrd, cmdline: cmdline, flags: flags, sealsOK: true}
	for _, fd := range []int{kernel, initrd} {
		if fd < 0 {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", fd))
		if err != nil {
			f.t.Fatalf("fake kexec_file_load: reading fd %d: %v", fd, err)
		}
		if fd == kernel {
			c.kernel = b
		} else {
			c.initrd = b
		}
		seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
		want := unix.F_SEAL_WRITE | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
		if err != nil || seals&want != want {
			c.sealsOK = false
		}
		_, c.writeErr = unix.Pwrite(fd, []byte{0x55}, 0)
	}
	f.loads = append(f.loads, c)
	if f.loadErr == nil {
		if flags&FlagUnload != 0 {
			f.files[kexecLoadedPath] = "0\n"
		} else if flags&FlagOnCrash != 0 {
			f.files[crashLoadedPath] = "1\n"
		} else {
			f.files[kexecLoadedPath] = "1\n"
		}
	}
	return f.loadErr
}

func (f *fakeSys) Sync()              { f.calls = append(f.calls, "sync") }
func (f *fakeSys) IfDown() error      { f.calls = append(f.calls, "ifdown"); return nil }
func (f *fakeSys) RebootKexec() error { f.calls = append(f.calls, "reboot"); return nil }
func (f *fakeSys) Shutdown() error    { f.calls = append(f.calls, "shutdown"); return nil }
func (f *fakeSys) ReadFile(path string) ([]byte, error) {
	s, ok := f.files[path]
	if !ok {
		return nil, &os.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
	}
	return []byte(s), nil
}

// fakeTPM is a PCRExtender that computes PCR values in memory and can be
// made to fail at its n-th extend.
type fakeTPM struct {
	sys     *fakeSys
	banks   []crypto.Hash
	failAt  int // 1-based; 0 never
	extends int
	pcrs    map[crypto.Hash][]byte
}

func (p *fakeTPM) Banks() []crypto.Hash { return p.banks }
func (p *fakeTPM) Extend(pcr int, sums map[crypto.Hash][]byte) error {
	p.extends++
	p.sys.calls = append(p.sys.calls, "extend")
	if p.extends == p.failAt {
		return fmt.Errorf("TPM_RC_FAILURE (fake, extend %d)", p.extends)
	}
	if p.pcrs == nil {
		p.pcrs = map[crypto.Hash][]byte{}
	}
	for _, h := range p.banks {
		old := p.pcrs[h]
		if old == nil {
			old = make([]byte, h.Size())
		}
		hh := h.New()
		hh.Write(old)
		hh.Write(sums[h])
		p.pcrs[h] = hh.Sum(nil)
	}
	return nil
}

// fakeLog is an EventLog that keeps records in memory and can be made to
// fail its n-th append.
type fakeLog struct {
	sys     *fakeSys
	failAt  int
	appends int
	records []eventlog.Record
	marked  bool
}

func (l *fakeLog) Lock() error { l.sys.calls = append(l.sys.calls, "lock"); return nil }
func (l *fakeLog) BeginWrite() error {
	l.sys.calls = append(l.sys.calls, "begin")
	l.marked = true
	return nil
}
func (l *fakeLog) AbortWrite() error {
	l.sys.calls = append(l.sys.calls, "abort")
	l.marked = false
	return nil
}
func (l *fakeLog) Append(r eventlog.Record) error {
	l.appends++
	l.sys.calls = append(l.sys.calls, "append")
	if l.appends == l.failAt {
		return fmt.Errorf("write: no space left on device (fake)")
	}
	l.records = append(l.records, r)
	l.marked = false
	return nil
}
func (l *fakeLog) Unlock() error { l.sys.calls = append(l.sys.calls, "unlock"); return nil }

// writeFile writes content to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := dir + "/" + name
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func callsString(f *fakeSys) string { return strings.Join(f.calls, " ") }
