//go:build !linux

package main

// bootClock has no boot clock to read outside Linux.
func bootClock() int64 { return 0 }
