//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/handoff"
	"github.com/kexec-measured/kexec-measured/tpm/swtpmtest"
)

func runLogTest(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"kexec-measured", "log"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestLogAgainstSwtpm measures a load into swtpm, then runs `log`: the
// records are shown and every bank of PCR 9 matches; a changed digest in
// one record gives exit 1 naming the PCR and the bank; --tpm=none checks
// nothing; the sticky bit gives exit 1.
func TestLogAgainstSwtpm(t *testing.T) {
	spec, _ := swtpmtest.Start(t)
	dir := t.TempDir()
	kernel, initrds, _ := inputs(t, dir, 2)
	logPath := filepath.Join(dir, "tpm2-measure.log")
	e, _ := testEnv(t)
	args := []string{"-l", kernel, "--initrd", initrds[0], "--initrd", initrds[1], "--append", "x", "--tpm", spec, "--log", logPath}
	if code, _, stderr := runTest(e, args...); code != 0 {
		t.Fatalf("load: exit %d: %s", code, stderr)
	}
	none := filepath.Join(dir, "no-handoff")
	common := []string{"--log", logPath, "--handoff", none, "--firmware-log", filepath.Join(dir, "no-fw")}

	code, out, stderr := runLogTest(append(common, "--tpm", spec)...)
	if code != 0 {
		t.Fatalf("log: exit %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{"kexec-kernel", "kexec-handoff", "kexec-cmdline", kernel, "PCR 9  sha1   MATCH", "PCR 9  sha512 MATCH", "VERDICT: every checked PCR matches"} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = runLogTest(append(common, "--tpm", spec, "--json")...)
	var j struct {
		Boots []struct {
			Records []struct{ Event string }
		}
		PCRs []struct {
			PCR   int
			Bank  string
			State string
		}
		OK bool
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil || code != 0 || !j.OK || len(j.Boots) != 1 || len(j.Boots[0].Records) != 5 || len(j.PCRs) != 4 {
		t.Errorf("log --json: exit %d, %v: %+v\n%s", code, err, j, out)
	}

	if code, out, _ := runLogTest(append(common, "--tpm", "none")...); code != 0 || !strings.Contains(out, "not checked") {
		t.Errorf("log --tpm=none: exit %d\n%s", code, out)
	}

	// Tamper: change the sha256 digest of the kernel record.
	raw, _ := os.ReadFile(logPath)
	i := bytes.Index(raw, []byte(`"hashAlg":"sha256","digest":"`)) + len(`"hashAlg":"sha256","digest":"`)
	tampered := bytes.Clone(raw)
	tampered[i] ^= 1 // '0'..'9','a'..'f' XOR 1 stays hex
	os.WriteFile(logPath, tampered, 0o600)
	code, out, _ = runLogTest(append(common, "--tpm", spec)...)
	if code != 1 || !strings.Contains(out, "PCR 9  sha256 MISMATCH") || strings.Contains(out, "PCR 9  sha1   MISMATCH") {
		t.Errorf("tampered log: exit %d, want 1 and a MISMATCH of PCR 9 sha256 only:\n%s", code, out)
	}
	os.WriteFile(logPath, raw, 0o600)

	// Damage: bytes that are not a record ahead of the records hide
	// nothing; a record overwritten hides the extend of its PCR. Either
	// way the log no longer says everything: exit 1.
	os.WriteFile(logPath, append([]byte("garbage\n"), raw...), 0o600)
	if code, out, _ := runLogTest(append(common, "--tpm", spec)...); code != 1 || !strings.Contains(out, "DAMAGED: 1 range(s)") || !strings.Contains(out, "every checked PCR matches without them") {
		t.Errorf("log with garbage ahead: exit %d, want 1 and DAMAGED hiding nothing:\n%s", code, out)
	}
	overwritten := bytes.Clone(raw)
	first := bytes.IndexByte(overwritten[1:], 0x1e) + 1
	copy(overwritten[:first], bytes.Repeat([]byte("x"), first))
	os.WriteFile(logPath, overwritten, 0o600)
	if code, out, _ := runLogTest(append(common, "--tpm", spec)...); code != 1 || !strings.Contains(out, "they may hide records of PCR 9") {
		t.Errorf("log with a record overwritten: exit %d, want 1 naming PCR 9:\n%s", code, out)
	}
	os.WriteFile(logPath, raw, 0o600)

	os.Chmod(logPath, 0o600|os.ModeSticky)
	if code, out, _ := runLogTest(append(common, "--tpm", spec)...); code != 1 || !strings.Contains(out, "INTERRUPTED") {
		t.Errorf("sticky log: exit %d, want 1:\n%s", code, out)
	}
	os.Chmod(logPath, 0o600)

	// A handoff not imported yet is shown ahead of the log.
	hdir := filepath.Join(dir, "handoff")
	os.Mkdir(hdir, 0o755)
	os.WriteFile(filepath.Join(hdir, handoff.LogName), encodedRecord(t, 9, "earlier boot"), 0o444)
	code, out, _ = runLogTest("--log", logPath, "--handoff", hdir, "--firmware-log", filepath.Join(dir, "no-fw"), "--tpm", "none", "--json")
	j.Boots = nil
	json.Unmarshal([]byte(out), &j)
	if code != 0 || len(j.Boots) != 2 || len(j.Boots[0].Records) != 1 || len(j.Boots[1].Records) != 5 {
		t.Errorf("log with a handoff not imported: exit %d, %+v", code, j.Boots)
	}

	for _, bad := range [][]string{{"--pcr", "24"}, {"--pcr", "-2"}, {"extra"}, {"--tpm", "bogus:x"}} {
		if code, _, _ := runLogTest(append(common, bad...)...); code != 2 {
			t.Errorf("log %v: exit %d, want 2", bad, code)
		}
	}
}
