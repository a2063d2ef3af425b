//go:build !linux

package loader

import (
	"errors"
	"syscall"
)

// NewSyscalls returns a Syscalls whose every call fails with
// errors.ErrUnsupported: kexec exists only on Linux.
func NewSyscalls() Syscalls { return otherSyscalls{} }

type otherSyscalls struct{}

func (otherSyscalls) KexecFileLoad(int, int, string, int) error { return errors.ErrUnsupported }
func (otherSyscalls) Sync()                                     {}
func (otherSyscalls) IfDown() error                             { return errors.ErrUnsupported }
func (otherSyscalls) RebootKexec() error                        { return errors.ErrUnsupported }
func (otherSyscalls) Shutdown() error                           { return errors.ErrUnsupported }
func (otherSyscalls) ReadFile(string) ([]byte, error)           { return nil, errors.ErrUnsupported }

func isSignatureErrno(e syscall.Errno) bool { return false }
