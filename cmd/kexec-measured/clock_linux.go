package main

import "golang.org/x/sys/unix"

// bootClock returns CLOCK_BOOTTIME in microseconds: the record timestamp.
func bootClock() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
