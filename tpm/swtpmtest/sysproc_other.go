//go:build !linux

package swtpmtest

import "os/exec"

// setSysProcAttr does nothing: only Linux has a parent-death signal.
func setSysProcAttr(*exec.Cmd) {}
