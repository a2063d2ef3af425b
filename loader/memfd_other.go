//go:build !linux

package loader

import (
	"errors"
	"os"
)

// Outside Linux there are no memfds and no kexec: every step fails with
// errors.ErrUnsupported.

func openInput(path string) (*os.File, int64, error) {
	return nil, 0, &InputError{Path: path, Err: errors.ErrUnsupported}
}
func newMemfd(string) (*os.File, error) { return nil, errors.ErrUnsupported }
func copyRange(dst, src *os.File, off, n int64, _ *[]byte) (int64, error) {
	return 0, errors.ErrUnsupported
}
func writeZeros(*os.File, int64) error            { return errors.ErrUnsupported }
func seal(*os.File) error                         { return errors.ErrUnsupported }
func mapReadOnly(*os.File, int64) ([]byte, error) { return nil, errors.ErrUnsupported }
func checkEnd(*os.File, int64) error              { return errors.ErrUnsupported }
func unmap([]byte) error                          { return nil }
func copyOut(string, *os.File, int64) error       { return errors.ErrUnsupported }
