//go:build linux

package swtpmtest

import (
	"os/exec"
	"syscall"
)

// setSysProcAttr makes swtpm die with the test process.
func setSysProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
