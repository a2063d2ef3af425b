package main

import (
	"bytes"
	"compress/gzip"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/internal/newc"
	"github.com/kexec-measured/kexec-measured/pcr"
	"github.com/kexec-measured/kexec-measured/tpm"
	"github.com/kexec-measured/kexec-measured/tpm/swtpmtest"
	"github.com/kexec-measured/kexec-measured/verify"
)

// runSub runs a subcommand and returns its exit status, stdout and stderr.
func runSub(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"kexec-measured"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// loadFixture is a kernel, an initrd of two segments (a cpio and a gzip
// cpio) and a small cpio, the records a --split-initrd dry run of them
// would append, and the manifest `reference --split-initrd` builds.
type loadFixture struct {
	dir, kernel, initrd, early, cmdline string
	records                             []eventlog.Record
}

func newLoadFixture(t *testing.T) loadFixture {
	t.Helper()
	f := loadFixture{dir: t.TempDir(), cmdline: "console=ttyS0 quiet"}
	kernel := make([]byte, 0x800)
	copy(kernel[0x202:], "HdrS")
	early, err := newc.Archive([]newc.File{{Name: "early/ucode", Perm: 0o644, Data: []byte("ucode")}})
	if err != nil {
		t.Fatal(err)
	}
	mainArchive, err := newc.Archive([]newc.File{{Name: "init", Perm: 0o755, Data: []byte("#!/bin/sh\n")}})
	if err != nil {
		t.Fatal(err)
	}
	distroEarly, err := newc.Archive([]newc.File{{Name: "early/distro-ucode", Perm: 0o644, Data: []byte("distro ucode")}})
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(mainArchive)
	zw.Close()
	f.kernel, f.initrd, f.early = filepath.Join(f.dir, "vmlinuz"), filepath.Join(f.dir, "initrd.img"), filepath.Join(f.dir, "early.cpio")
	for p, b := range map[string][]byte{f.kernel: kernel, f.initrd: append(distroEarly, gz.Bytes()...), f.early: early} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e, _ := testEnv(t)
	code, out, stderr := runTest(e, "--dry-run", "--json", "--split-initrd", "--banks=sha1,sha256,sha384,sha512",
		"-l", f.kernel, "--initrd", f.early, "--initrd", f.initrd, "--append", f.cmdline)
	if code != 0 {
		t.Fatalf("dry run: exit %d: %s", code, stderr)
	}
	var plan struct {
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatal(err)
	}
	var logBytes []byte
	for _, ev := range plan.Events {
		logBytes = append(append(append(logBytes, 0x1e), ev...), '\n')
	}
	recs, err := eventlog.ReadAll(bytes.NewReader(logBytes))
	if err != nil {
		t.Fatal(err)
	}
	f.records = recs
	return f
}

// writeLog writes the records as a log file and returns its path.
func (f loadFixture) writeLog(t *testing.T, recs []eventlog.Record) string {
	t.Helper()
	b, err := eventlog.Encode(recs)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(f.dir, "tpm2-measure.log")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pcrsOf returns PCR 9 of every bank after recs, computed with hashtest
// from the records' digests, as a --pcrs file.
func (f loadFixture) pcrsOf(t *testing.T, recs []eventlog.Record) string {
	t.Helper()
	v := verify.PCRValues{}
	for _, h := range pcr.Banks() {
		var ds [][]byte
		for _, r := range recs {
			for _, d := range r.Digests {
				if name, _ := pcr.Name(h); d.HashAlg == name {
					b, _ := hex.DecodeString(d.Digest)
					ds = append(ds, b)
				}
			}
		}
		var vals [pcr.Count][]byte
		vals[9] = hashtest.ExtendDigests(h, nil, ds...)
		v[h] = vals
	}
	var b bytes.Buffer
	if err := verify.EncodePCRValues(&b, v); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(f.dir, "pcrs.json")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// references runs `reference` over files and writes the manifest.
func (f loadFixture) references(t *testing.T, name string, args ...string) string {
	t.Helper()
	code, out, stderr := runSub(append([]string{"reference"}, args...)...)
	if code != 0 {
		t.Fatalf("reference %q: exit %d: %s", args, code, stderr)
	}
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVerifyAgainstADryRun builds references with `reference
// --split-initrd` and checks that `verify` matches every event a
// --split-initrd load of the same files logs: the segment ranges are the
// loader's. Then it removes a reference, alters a record and drops a PCR
// value, and checks the exit status and the finding each time.
func TestVerifyAgainstADryRun(t *testing.T) {
	f := newLoadFixture(t)
	refDir := filepath.Join(f.dir, "refs")
	os.Mkdir(refDir, 0o755)
	f.references(t, "refs/kernel.json", f.kernel, "--cmdline", f.cmdline)
	f.references(t, "refs/initrd.json", "--split-initrd", f.initrd, "--name", "distro-initrd")
	early := f.references(t, "early.json", "--name", "microcode", f.early)
	logPath := f.writeLog(t, f.records)
	pcrs := f.pcrsOf(t, f.records)
	base := []string{"verify", "--reference", refDir, "--pcrs", pcrs, "--log", logPath, "--firmware-log", filepath.Join(f.dir, "none")}

	code, out, stderr := runSub(append(base, "--reference", early)...)
	if code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{"kexec-kernel", "vmlinuz", "microcode", "distro-initrd segment 0 (cpio)", "distro-initrd segment 1 (gzip)", "(handoff)", "cmdline", "verdict: OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if n := len(f.records); n != 6 {
		t.Errorf("the dry run logged %d events, want 6 (kernel, early, two segments, handoff, cmdline)", n)
	}

	// The early cpio is not in the references.
	code, out, _ = runSub(base...)
	if code != 1 || !strings.Contains(out, "finding: PCR 9 record 1 kexec-initrd "+f.early+" segment 0: UNKNOWN") {
		t.Errorf("without early.json: exit %d, want 1 naming record 1:\n%s", code, out)
	}

	// A record altered in the log: its sha256 digest.
	alt := append([]eventlog.Record{}, f.records...)
	alt[2].Raw = bytes.Replace(alt[2].Raw, []byte(alt[2].Digests[1].Digest), []byte(strings.Repeat("0", 64)), 1)
	f.writeLog(t, alt)
	code, out, _ = runSub(append(base, "--reference", early, "--json")...)
	var v verify.Verdict
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if code != 1 || v.OK || len(v.Findings) != 2 || v.Findings[0].Bank != "sha256" || *v.Findings[0].PCR != 9 || *v.Findings[1].Record != 2 {
		t.Errorf("altered record: exit %d, findings %+v; want 1 with PCR 9 sha256 and record 2", code, v.Findings)
	}
	f.writeLog(t, f.records)

	// A PCR file without PCR 9's sha1 value.
	data, _ := os.ReadFile(pcrs)
	var pj map[string]map[string]map[string]string
	json.Unmarshal(data, &pj)
	delete(pj["pcrs"]["sha1"], "9")
	data, _ = json.Marshal(pj)
	os.WriteFile(pcrs, data, 0o644)
	code, out, _ = runSub(append(base, "--reference", early)...)
	if code != 1 || !strings.Contains(out, "finding: PCR 9 sha1: 6 record(s) but no PCR value") {
		t.Errorf("no PCR 9 sha1: exit %d, want 1:\n%s", code, out)
	}
}

func TestVerifyUsageAndIOErrors(t *testing.T) {
	f := newLoadFixture(t)
	logPath := f.writeLog(t, f.records)
	pcrs := f.pcrsOf(t, f.records)
	bad := filepath.Join(f.dir, "bad.json")
	os.WriteFile(bad, []byte(`{"version":1,"entries":[{}]}`), 0o644)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"verify", "--nope"}, "flag provided but not defined"},
		{"operand", []string{"verify", "x"}, "unexpected argument"},
		{"bad manifest", []string{"verify", "--reference", bad, "--pcrs", pcrs, "--log", logPath}, "bad.json"},
		{"missing manifest", []string{"verify", "--reference", filepath.Join(f.dir, "nope.json"), "--pcrs", pcrs}, "nope.json"},
		{"missing --pcrs", []string{"verify", "--pcrs", filepath.Join(f.dir, "nope.yaml"), "--log", logPath}, "nope.yaml"},
		{"bad --pcrs", []string{"verify", "--pcrs", bad, "--log", logPath}, "bad PCR values file"},
		{"no TPM", []string{"verify", "--tpm", "none", "--log", logPath}, "--pcrs FILE"},
		{"log is a directory", []string{"verify", "--pcrs", pcrs, "--log", f.dir}, "not a regular file"},
		{"bad --ignore-pcrs", []string{"verify", "--pcrs", pcrs, "--ignore-pcrs", "24"}, "out of range"},
		{"reference without input", []string{"reference"}, "no FILE"},
		{"reference missing file", []string{"reference", filepath.Join(f.dir, "nope")}, "nope"},
		{"reference too many names", []string{"reference", "--name", "a", "--name", "b", f.kernel}, "2 --name for 1 FILE"},
		{"export without DIR", []string{"export"}, "exactly one DIR"},
	}
	for _, tc := range tests {
		code, _, stderr := runSub(tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tc.name, code, stderr, tc.want)
		}
	}
}

// TestVerifyAndExportWithSwtpm extends swtpm's PCR 9 with the fixture's
// records and checks `verify --tpm` (tpm.ReadAll), then `export` and a
// verify of the export alone, as a verifier elsewhere runs it.
func TestVerifyAndExportWithSwtpm(t *testing.T) {
	f := newLoadFixture(t)
	spec, _ := swtpmtest.Start(t)
	tp, err := tpm.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.records {
		sums := map[crypto.Hash][]byte{}
		for _, h := range tp.Banks() {
			if sums[h], err = r.Sum(h); err != nil {
				t.Fatal(err)
			}
		}
		if err := tp.Extend(9, sums); err != nil {
			t.Fatal(err)
		}
	}
	tp.Close()
	refs := f.references(t, "refs.json", "--split-initrd", f.kernel, f.early, f.initrd, "--cmdline", f.cmdline)
	logPath := f.writeLog(t, f.records)
	code, out, stderr := runSub("verify", "--tpm", spec, "--reference", refs, "--log", logPath, "--firmware-log", filepath.Join(f.dir, "none"))
	if code != 0 {
		t.Fatalf("verify --tpm: exit %d\n%s%s", code, out, stderr)
	}
	exp := filepath.Join(f.dir, "export")
	if code, _, stderr := runSub("export", "--tpm", spec, "--log", logPath, "--firmware-log", filepath.Join(f.dir, "none"), exp); code != 0 {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	if got, _ := os.ReadFile(filepath.Join(exp, verify.ExportLog)); !bytes.Equal(got, mustRead(t, logPath)) {
		t.Error("the exported log is not the log byte for byte")
	}
	code, out, stderr = runSub("verify", "--pcrs", filepath.Join(exp, verify.ExportPCRs), "--reference", refs,
		"--log", filepath.Join(exp, verify.ExportLog), "--firmware-log", filepath.Join(exp, verify.ExportFirmware))
	if code != 0 {
		t.Fatalf("verify of the export: exit %d\n%s%s", code, out, stderr)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
