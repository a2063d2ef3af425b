//go:build !linux

package loadertest

// sealed: there are no memfd seals outside Linux.
func sealed(int) bool { return false }
