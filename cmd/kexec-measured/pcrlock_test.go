//go:build linux

package main

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/tpm"
	"github.com/kexec-measured/kexec-measured/tpm/swtpmtest"
)

// trixieRun is integration/setup's wrapper that runs Debian 13's systemd
// tools on this machine (see docs/integration.md).
const trixieRun = "../../integration/.cache/trixie/run"

// pcrlockTool runs Debian 13's systemd-pcrlock against the swtpm sw, with
// an empty firmware log and the userspace log userLog, and returns its
// combined output and error.
func pcrlockTool(t *testing.T, sw *swtpmtest.Swtpm, fwLog, userLog string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(trixieRun, append([]string{"systemd-pcrlock"}, args...)...)
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("SYSTEMD_TPM2_DEVICE=swtpm:host=%s,port=%d", sw.Host, sw.Port),
		"SYSTEMD_MEASURE_LOG_FIRMWARE="+fwLog,
		"SYSTEMD_MEASURE_LOG_USERSPACE="+userLog,
		"SYSTEMD_COLORS=0", "SYSTEMD_PAGER=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSystemdPcrlock runs Debian 13's systemd-pcrlock (from
// integration/setup's cache; skipped without it) over predict's component
// on a swtpm: `predict --pcr=9` lists the predicted value; a policy made
// with `make-policy --pcr=9` before the load lets systemd-pcrlock unseal
// its TPM-sealed PIN after the measured load (whose records it then
// recognizes in the userspace log), and no longer once PCR 9 holds a value
// nobody predicted.
func TestSystemdPcrlock(t *testing.T) {
	if _, err := os.Stat(trixieRun); err != nil {
		t.Skipf("Debian 13's systemd-pcrlock is not set up (%v): run integration/setup", err)
	}
	spec, sw := swtpmtest.Start(t)
	dir := t.TempDir()
	kernel, initrds, _ := inputs(t, dir, 2)
	comps := filepath.Join(dir, "pcrlock.d")
	fwLog := filepath.Join(dir, "empty-firmware-log")
	os.WriteFile(fwLog, nil, 0o644)
	userLog := filepath.Join(dir, "tpm2-measure.log")
	policy := filepath.Join(dir, "pcrlock.json")
	load := []string{"-l", kernel, "--initrd", initrds[0], "--initrd", initrds[1], "--append", "root=/dev/vda1", "--tpm", spec}

	e, _ := testEnv(t)
	code, out, stderr := predictTest(e, append(load, "--pcrlock", filepath.Join(comps, "900-kexec-measured.pcrlock.d"), "--variant", "planned", "--json")...)
	if code != 0 {
		t.Fatalf("predict: exit %d: %s", code, stderr)
	}
	want := predicted(t, out).Values["sha256"]

	sd, err := pcrlockTool(t, sw, fwLog, userLog, "predict", "--pcr=9", "--components="+comps)
	if err != nil || !strings.Contains(sd, "sha256: "+want) {
		t.Fatalf("systemd-pcrlock predict (%v) does not list %s:\n%s", err, want, sd)
	}
	if sd, err := pcrlockTool(t, sw, fwLog, userLog, "make-policy", "--pcr=9", "--components="+comps, "--pcrlock="+policy); err != nil {
		t.Fatalf("systemd-pcrlock make-policy: %v\n%s", err, sd)
	}

	if code, _, stderr := runTest(e, append(load, "--log", userLog)...); code != 0 {
		t.Fatalf("load: exit %d: %s", code, stderr)
	}
	if got := hex.EncodeToString(readPCRs(t, spec)[crypto.SHA256]); got != want {
		t.Fatalf("PCR 9 after the load %s, predicted %s", got, want)
	}
	sd, err = pcrlockTool(t, sw, fwLog, userLog, "make-policy", "--pcr=9", "--components="+comps, "--pcrlock="+policy, "--force")
	if err != nil || !strings.Contains(sd, "Retrieved PIN from TPM2") {
		t.Fatalf("after the load, systemd-pcrlock could not unseal its PIN with the policy made before (%v):\n%s", err, sd)
	}
	if !strings.Contains(sd, "PCR 9 (kernel-initrd) matches event log and fully consists of recognized measurements") {
		t.Errorf("systemd-pcrlock did not recognize the load's records:\n%s", sd)
	}

	// The negative control: a PCR 9 nobody predicted keeps the PIN sealed.
	dev, err := tpm.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[crypto.Hash][]byte{}
	for _, h := range dev.Banks() {
		sums[h] = hashtest.Sum(h, []byte("unpredicted"))
	}
	if err := dev.Extend(9, sums); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	sd, err = pcrlockTool(t, sw, fwLog, userLog, "make-policy", "--pcr=9", "--components="+comps, "--pcrlock="+policy, "--force")
	if err == nil || bytes.Contains([]byte(sd), []byte("Retrieved PIN")) {
		t.Errorf("systemd-pcrlock unsealed its PIN with an unpredicted PCR 9 (%v):\n%s", err, sd)
	}
}
