package loader

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// linuxSyscalls makes the real system calls.
type linuxSyscalls struct{}

// NewSyscalls returns the Linux implementation of Syscalls. Never use it in
// tests on a development or CI machine: it loads kernels and reboots.
func NewSyscalls() Syscalls { return linuxSyscalls{} }

func (linuxSyscalls) KexecFileLoad(kernel, initrd int, cmdline string, flags int) error {
	if err := unix.KexecFileLoad(kernel, initrd, cmdline, flags); err != nil {
		return &SyscallError{Call: "kexec_file_load", Err: err}
	}
	return nil
}

func (linuxSyscalls) Sync() { unix.Sync() }

// IfDown clears IFF_UP on every interface that is up and not a loopback,
// as kexec-tools' ifdown() does before -e and -f.
func (linuxSyscalls) IfDown() error {
	ifaces, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("listing network interfaces: %w", err)
	}
	sock, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return &SyscallError{Call: "socket", Err: err}
	}
	defer unix.Close(sock)
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagLoopback != 0 || ifc.Flags&net.FlagUp == 0 {
			continue
		}
		ifr, err := unix.NewIfreq(ifc.Name)
		if err != nil {
			return fmt.Errorf("interface %s: %w", ifc.Name, err)
		}
		if err := unix.IoctlIfreq(sock, unix.SIOCGIFFLAGS, ifr); err != nil {
			return &SyscallError{Call: "ioctl SIOCGIFFLAGS " + ifc.Name, Err: err}
		}
		ifr.SetUint16(ifr.Uint16() &^ unix.IFF_UP)
		if err := unix.IoctlIfreq(sock, unix.SIOCSIFFLAGS, ifr); err != nil {
			return &SyscallError{Call: "ioctl SIOCSIFFLAGS " + ifc.Name, Err: err}
		}
	}
	return nil
}

func (linuxSyscalls) RebootKexec() error {
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_KEXEC); err != nil {
		return &SyscallError{Call: "reboot(LINUX_REBOOT_CMD_KEXEC)", Err: err}
	}
	return nil
}

// Shutdown runs `shutdown -r now`, as kexec-tools does when no mode option
// is given.
func (linuxSyscalls) Shutdown() error {
	path, err := exec.LookPath("shutdown")
	if err != nil {
		path = "/sbin/shutdown"
	}
	cmd := exec.Command(path, "-r", "now")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("running %s -r now: %w", path, err)
	}
	return nil
}

func (linuxSyscalls) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

// isSignatureErrno reports the errnos of a rejected kernel signature.
func isSignatureErrno(e syscall.Errno) bool {
	return e == syscall.EKEYREJECTED || e == syscall.EBADMSG || e == syscall.ENOKEY
}
