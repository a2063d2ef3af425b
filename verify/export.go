package verify

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// Names of the files Export writes.
const (
	ExportLog      = "tpm2-measure.log"
	ExportFirmware = "binary_bios_measurements"
	ExportPCRs     = "pcrs.json"
)

// Export writes into dir (created if missing, mode 0755) exactly what a
// verifier elsewhere needs to run `kexec-measured verify --pcrs
// DIR/pcrs.json --log DIR/tpm2-measure.log --firmware-log
// DIR/binary_bios_measurements`: the userspace log byte for byte (mode
// 0444, or 01444 when its sticky bit was set, as the handoff writes it),
// the firmware log when there is one, and the PCR values (EncodePCRValues).
// Files of an earlier export are replaced; a firmware log of an earlier
// export is removed when there is none now. Errors name the file.
func Export(dir string, log *Log, fw *Firmware, actual PCRValues) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("verify: export: %w", err)
	}
	perm := os.FileMode(0o444)
	if log.Err != nil && isInterrupted(log.Err) {
		perm |= os.ModeSticky
	}
	if err := writeFile(filepath.Join(dir, ExportLog), log.Raw, perm); err != nil {
		return err
	}
	fwPath := filepath.Join(dir, ExportFirmware)
	if fw != nil && fw.Path != "" {
		if err := writeFile(fwPath, fw.Raw, 0o444); err != nil {
			return err
		}
	} else if err := os.Remove(fwPath); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("verify: export: %w", err)
	}
	var b bytes.Buffer
	if err := EncodePCRValues(&b, actual); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, ExportPCRs), b.Bytes(), 0o444)
}

// writeFile replaces path with data: written to a temporary file in the
// same directory, given perm (chmod, so the sticky bit is kept), renamed.
func writeFile(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".export-*")
	if err != nil {
		return fmt.Errorf("verify: export: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("verify: export %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("verify: export %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("verify: export %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("verify: export %s: %w", path, err)
	}
	return nil
}
