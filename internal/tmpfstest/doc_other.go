//go:build !linux

// Package tmpfstest mounts small tmpfs file systems for tests; it exists
// only on Linux.
package tmpfstest
