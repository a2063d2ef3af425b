//go:build !linux

package main

import "errors"

// bootClock has no boot clock to read outside Linux.
func bootClock() (int64, error) { return 0, errors.ErrUnsupported }
