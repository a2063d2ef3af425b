package main

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// bootClock returns CLOCK_BOOTTIME in microseconds: the record timestamp.
func bootClock() (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime(CLOCK_BOOTTIME): %w", err)
	}
	return ts.Nano() / 1000, nil
}
