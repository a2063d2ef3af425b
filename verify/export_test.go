package verify

import (
	"bytes"
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
)

// TestExport writes an export and reads it back: the log byte for byte
// with the handoff's modes (0444, 01444 for an interrupted log), the
// firmware log, and the PCR values; a second export without a firmware
// log removes the first one's.
func TestExport(t *testing.T) {
	dir := t.TempDir()
	raw := []byte("\x1e{}\n")
	vals := resetPCRs([]crypto.Hash{crypto.SHA256})
	fw := &Firmware{Path: "fw", Raw: []byte("firmware")}
	interrupted := &Log{Raw: raw, Err: errors.Join(errors.New("x"), &eventlog.InterruptedError{Path: "p"})}
	if err := Export(dir, interrupted, fw, vals); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, ExportLog))
	if err != nil || st.Mode() != 0o444|os.ModeSticky {
		t.Errorf("interrupted log exported with mode %v (%v), want 01444", st.Mode(), err)
	}
	if got := readBytes(t, filepath.Join(dir, ExportLog)); !bytes.Equal(got, raw) {
		t.Errorf("log %q, want %q", got, raw)
	}
	if got := readBytes(t, filepath.Join(dir, ExportFirmware)); string(got) != "firmware" {
		t.Errorf("firmware log %q", got)
	}
	back, err := ReadPCRFile(filepath.Join(dir, ExportPCRs))
	if err != nil || !bytes.Equal(back[crypto.SHA256][9], vals[crypto.SHA256][9]) {
		t.Errorf("pcrs.json: %v, %v", back, err)
	}
	if err := Export(dir, &Log{Raw: raw}, &Firmware{}, vals); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, ExportLog)); err != nil || st.Mode() != 0o444 {
		t.Errorf("clean log exported with mode %v (%v), want 0444", st.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(dir, ExportFirmware)); !os.IsNotExist(err) {
		t.Errorf("the earlier export's firmware log is still there: %v", err)
	}
}
