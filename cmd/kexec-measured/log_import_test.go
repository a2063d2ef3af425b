//go:build linux

package main

import (
	"bytes"
	"crypto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/handoff"
	"github.com/kexec-measured/kexec-measured/internal/hashtest"
)

func encodedRecord(t *testing.T, pcr int, data string) []byte {
	t.Helper()
	rec, err := eventlog.NewKexecRecord(pcr, map[crypto.Hash][]byte{crypto.SHA256: hashtest.Sum(crypto.SHA256, []byte(data))},
		eventlog.KexecContent{Event: eventlog.EventKernel, Size: int64(len(data)), BootID: "b0"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := rec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLogImport(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "kexec-measured", "handoff")
	logPath := filepath.Join(root, "run", "tpm2-measure.log")
	fwCopy := filepath.Join(root, "run", "fw")
	args := []string{"--handoff", dir, "--log", logPath, "--firmware-copy", fwCopy}
	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"kexec-measured", "log", "import"}, args...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	// Cold boot: no handoff directory, no output, exit 0, no log created.
	if code, out, errOut := run(args...); code != 0 || out != "" || errOut != "" {
		t.Fatalf("cold boot: exit %d, stdout %q, stderr %q; want 0 and no output", code, out, errOut)
	}
	if _, err := os.Stat(logPath); err == nil {
		t.Error("a cold-boot import created the log")
	}

	handed := append(encodedRecord(t, 9, "kernel"), encodedRecord(t, 9, "cmdline")...)
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, handoff.LogName), handed, 0o444)
	os.WriteFile(filepath.Join(dir, handoff.FirmwareName), []byte("fw"), 0o444)
	current := encodedRecord(t, 11, "enter-initrd")
	os.MkdirAll(filepath.Dir(logPath), 0o755)
	os.WriteFile(logPath, current, 0o600)

	code, out, errOut := run(args...)
	if code != 0 || !strings.Contains(out, "imported 2 record(s)") {
		t.Fatalf("import: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = run(args...)
	if code != 0 || !strings.Contains(out, "already holds") {
		t.Fatalf("second import: exit %d, stdout %q", code, out)
	}
	got, _ := os.ReadFile(logPath)
	if want := append(bytes.Clone(handed), current...); !bytes.Equal(got, want) {
		t.Errorf("log\n got %q\nwant %q", got, want)
	}
	if b, _ := os.ReadFile(fwCopy); string(b) != "fw" {
		t.Errorf("firmware copy %q", b)
	}

	// A handoff with an executable in it is refused: exit 1, log unchanged.
	os.WriteFile(filepath.Join(dir, "init"), []byte("#!/bin/sh\n"), 0o755)
	if code, _, errOut := run(args...); code != 1 || !strings.Contains(errOut, "refusing") {
		t.Errorf("executable in the handoff: exit %d, stderr %q; want 1", code, errOut)
	}
	if code, _, _ := run("--bogus"); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
}
