// Package loadertest has a fake of loader.Syscalls for tests: it records
// every call and reads what the loader hands to kexec_file_load, and never
// reaches the kernel.
package loadertest

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The files of /proc and /sys that the loader reads.
const (
	KexecLoaded = "/sys/kernel/kexec_loaded"
	CrashLoaded = "/sys/kernel/kexec_crash_loaded"
	CrashSize   = "/sys/kernel/kexec_crash_size"
	ProcCmdline = "/proc/cmdline"
	BootID      = "/proc/sys/kernel/random/boot_id"
)

const (
	flagUnload  = 0x1
	flagOnCrash = 0x2
)

// Load is what the fake saw in one kexec_file_load call.
type Load struct {
	KernelFD, InitrdFD int
	Cmdline            string
	Flags              int
	Kernel, Initrd     []byte // the bytes behind the descriptors
	SealsOK            bool   // both memfds carry all four seals
	WriteErr           error  // what a write to the initrd (or kernel) memfd returned
}

// Sys records every call of the seam; nothing reaches the kernel.
type Sys struct {
	t       testing.TB
	Files   map[string]string // what ReadFile returns
	LoadErr error
	Loads   []Load
	Calls   []string // every call, in order, including the measuring TPM's and log's
}

// NewSys returns a fake machine on which nothing is loaded, 128 MiB are
// reserved for a crash kernel, and /proc/cmdline and the boot ID have fixed
// values; tests change Files to say otherwise. t may be nil (a child
// process of a test); failures are then only returned.
func NewSys(t testing.TB) *Sys {
	return &Sys{t: t, Files: map[string]string{
		KexecLoaded: "0\n", CrashLoaded: "0\n", CrashSize: "134217728\n",
		ProcCmdline: "BOOT_IMAGE=/vmlinuz root=/dev/vda1 crashkernel=128M quiet\n",
		BootID:      "0f5e1c42-6f53-4c2b-9d7e-2f2f1a1b2c3d\n",
	}}
}

func (f *Sys) KexecFileLoad(kernel, initrd int, cmdline string, flags int) error {
	f.Calls = append(f.Calls, "kexec_file_load")
	c := Load{KernelFD: kernel, InitrdFD: initrd, Cmdline: cmdline, Flags: flags, SealsOK: true}
	for _, fd := range []int{kernel, initrd} {
		if fd < 0 {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", fd))
		if err != nil {
			// The fake cannot see what it was handed: fail the call (and
			// the test, when there is one).
			if f.t != nil {
				f.t.Errorf("fake kexec_file_load: reading fd %d: %v", fd, err)
			}
			return fmt.Errorf("fake kexec_file_load: reading fd %d: %w", fd, err)
		}
		if fd == kernel {
			c.Kernel = b
		} else {
			c.Initrd = b
		}
		if !sealed(fd) {
			c.SealsOK = false
		}
		_, c.WriteErr = unix.Pwrite(fd, []byte{0x55}, 0)
	}
	f.Loads = append(f.Loads, c)
	if f.LoadErr == nil {
		if flags&flagUnload != 0 {
			f.Files[KexecLoaded] = "0\n"
		} else if flags&flagOnCrash != 0 {
			f.Files[CrashLoaded] = "1\n"
		} else {
			f.Files[KexecLoaded] = "1\n"
		}
	}
	return f.LoadErr
}

func (f *Sys) Sync()              { f.Calls = append(f.Calls, "sync") }
func (f *Sys) IfDown() error      { f.Calls = append(f.Calls, "ifdown"); return nil }
func (f *Sys) RebootKexec() error { f.Calls = append(f.Calls, "reboot"); return nil }
func (f *Sys) Shutdown() error    { f.Calls = append(f.Calls, "shutdown"); return nil }
func (f *Sys) ReadFile(path string) ([]byte, error) {
	s, ok := f.Files[path]
	if !ok {
		return nil, &os.PathError{Op: "open", Path: path, Err: syscall.ENOENT}
	}
	return []byte(s), nil
}

// CallString is the calls so far, space-separated.
func (f *Sys) CallString() string { return strings.Join(f.Calls, " ") }
