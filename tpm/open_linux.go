//go:build linux

package tpm

import (
	"fmt"

	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// openDevice opens the TPM character device at path.
func openDevice(path string) (*TPM, error) {
	t, err := linuxtpm.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tpm: open device %s: %w", path, err)
	}
	tp, err := newTPM(t, t)
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("tpm: device %s: %w", path, err)
	}
	return tp, nil
}
