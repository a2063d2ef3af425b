//go:build integration

package integration

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// captureFirmwareLog makes TestFirmwareLogCapture write the guest's firmware
// log and PCR values into verify/testdata.
var captureFirmwareLog = flag.Bool("capture-firmware-log", false, "write the guest's firmware TCG log and PCRs to verify/testdata")

// allPCRsShell prints every PCR of every bank as "@@KM pcr TAG BANK N HEX".
const allPCRsShell = `allpcrs() { for d in /sys/class/tpm/tpm0/pcr-*; do for n in $(seq 0 23); do km pcr "$1" "${d##*/pcr-}" $n "$(cat "$d/$n")"; done; done; }
mount -t securityfs securityfs /sys/kernel/security
`

// TestFirmwareLogCapture boots the guest (SeaBIOS with swtpm), reads the
// firmware's TCG log from securityfs and every PCR from sysfs, and writes
// them to verify/testdata as seabios-swtpm.bin and seabios-swtpm.pcrs.json
// (the --pcrs JSON form). It runs only with -capture-firmware-log: CI
// checks the firmware log in TestVerifyAfterKexec, whose verdict needs it.
func TestFirmwareLogCapture(t *testing.T) {
	if !*captureFirmwareLog {
		t.Skip("only with -capture-firmware-log")
	}
	e := getEnv(t, false)
	tpm := startSwtpm(t)
	script := allPCRsShell + "dump fwlog /sys/kernel/security/tpm0/binary_bios_measurements\nallpcrs boot\n"
	initrd := stage1{Script: script}.build(t, e, t.TempDir())
	c := run(t, e, vmConfig{Initrd: initrd, Cmdline: stage1Cmdline, TPM: tpm})
	fw, ok := c.File(t, "fwlog")
	if !ok {
		t.Fatal("the guest has no binary_bios_measurements")
	}
	pcrs := allPCRs(t, c, "boot")
	t.Logf("firmware log: %d bytes; PCR banks %v", len(fw), sortedKeys(pcrs))
	dir := filepath.Join("..", "verify", "testdata")
	if err := os.WriteFile(filepath.Join(dir, "seabios-swtpm.bin"), fw, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(map[string]any{"pcrs": pcrs}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "seabios-swtpm.pcrs.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// allPCRs returns every PCR value the guest printed at tag: bank → PCR
// index (as a decimal string) → hex.
func allPCRs(t *testing.T, c *console, tag string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, m := range c.Markers {
		if len(m) != 5 || m[0] != "pcr" || m[1] != tag {
			continue
		}
		if _, err := strconv.Atoi(m[3]); err != nil {
			t.Fatalf("PCR index %q: %v", m[3], err)
		}
		v := strings.ToLower(m[4])
		if _, err := hex.DecodeString(v); err != nil {
			t.Fatalf("PCR %s %s: %v", m[3], m[2], err)
		}
		if out[m[2]] == nil {
			out[m[2]] = map[string]string{}
		}
		out[m[2]][m[3]] = v
	}
	if len(out) == 0 {
		t.Fatalf("guest printed no PCRs at %q", tag)
	}
	return out
}
