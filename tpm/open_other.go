//go:build !linux

package tpm

import (
	"errors"
	"fmt"
)

// openDevice is only implemented on Linux.
func openDevice(path string) (*TPM, error) {
	return nil, fmt.Errorf("tpm: open device %s: %w", path, errors.ErrUnsupported)
}
