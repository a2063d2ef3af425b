//go:build !linux

package handoff

import (
	"errors"
	"fmt"
)

// Import is only implemented on Linux; elsewhere it returns
// errors.ErrUnsupported.
func Import(h *Handoff, logPath, firmwareCopy string) (ImportResult, error) {
	return ImportResult{}, fmt.Errorf("handoff: import into %s: %w", logPath, errors.ErrUnsupported)
}
