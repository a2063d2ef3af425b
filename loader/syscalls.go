package loader

import (
	"errors"
	"fmt"
	"syscall"
)

// Flags of kexec_file_load(2) (include/uapi/linux/kexec.h).
const (
	FlagUnload      = 0x1 // KEXEC_FILE_UNLOAD
	FlagOnCrash     = 0x2 // KEXEC_FILE_ON_CRASH
	FlagNoInitramfs = 0x4 // KEXEC_FILE_NO_INITRAMFS
	FlagDebug       = 0x8 // KEXEC_FILE_DEBUG (Linux 6.7 and later)
	noFD            = -1
	kexecLoadedPath = "/sys/kernel/kexec_loaded"
	crashLoadedPath = "/sys/kernel/kexec_crash_loaded"
	crashSizePath   = "/sys/kernel/kexec_crash_size"
	procCmdlinePath = "/proc/cmdline"
	procMeminfoPath = "/proc/meminfo"
	bootIDPath      = "/proc/sys/kernel/random/boot_id"
)

// Syscalls is the seam between the loader and the kernel. The Linux
// implementation (NewSyscalls) makes the real calls; tests use a fake. Every
// method that changes the machine's state is here, so that nothing else in
// the loader can load, reboot or shut down.
type Syscalls interface {
	// KexecFileLoad calls kexec_file_load(2). initrd is -1 with
	// FlagNoInitramfs or FlagUnload, kernel is -1 with FlagUnload.
	KexecFileLoad(kernel, initrd int, cmdline string, flags int) error
	// Sync calls sync(2).
	Sync()
	// IfDown brings every non-loopback network interface down.
	IfDown() error
	// RebootKexec calls reboot(LINUX_REBOOT_CMD_KEXEC). On success it does
	// not return.
	RebootKexec() error
	// Shutdown runs `shutdown -r now`.
	Shutdown() error
	// ReadFile reads a small file of /proc or /sys.
	ReadFile(path string) ([]byte, error)
}

// SyscallError is a failed system call. Its message names the call and
// explains the common errnos.
type SyscallError struct {
	Call string // "kexec_file_load", "reboot", ...
	Err  error  // usually a syscall.Errno
}

func (e *SyscallError) Error() string {
	msg := fmt.Sprintf("%s: %v", e.Call, e.Err)
	if hint := explain(e.Err); hint != "" {
		msg += " (" + hint + ")"
	}
	return msg
}

func (e *SyscallError) Unwrap() error { return e.Err }

// explain says in words what an errno of kexec_file_load or reboot usually
// means.
func explain(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return ""
	}
	if isSignatureErrno(errno) {
		return "the kernel rejected the image's signature: lockdown or Secure Boot requires a kernel signed with a trusted key"
	}
	switch errno {
	case syscall.EPERM:
		return "needs CAP_SYS_BOOT; or kexec is disabled by kernel.kexec_load_disabled or lockdown"
	case syscall.ENOEXEC:
		return "the kernel image format is not recognised by the running kernel (expected a bzImage or the architecture's kexec image format)"
	case syscall.EBUSY:
		return "a kexec image is being loaded or executed by another process, or the crash kernel is in use"
	case syscall.ENOMEM:
		return "not enough memory for the image; for -p, the crashkernel= reservation may be too small"
	case syscall.EINVAL:
		return "invalid argument: unsupported flags, a command line too long, or an initrd the kernel cannot place"
	case syscall.ENOSYS:
		return "this kernel was built without CONFIG_KEXEC_FILE"
	}
	return ""
}
