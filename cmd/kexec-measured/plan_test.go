//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/internal/newc"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with the file path (under testdata), or with
// -update rewrites it.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestDryRunGolden pins the text and JSON output of dry runs. The kernel's
// name and the command line hold '&', '<' and '>', which both outputs must
// print as they are: the JSON events are the log records byte for byte.
func TestDryRunGolden(t *testing.T) {
	testdata, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	archive := func(files ...newc.File) []byte {
		b, err := newc.Archive(files)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	write("a&b<c>", []byte("MZ a kernel"))
	write("fw.cpio", archive(newc.File{Name: "kernel/x86/microcode/GenuineIntel.bin", Data: []byte("ucode")}))
	write("main.cpio", append(archive(newc.File{Name: "early", Data: []byte("1")}),
		archive(newc.File{Name: "init", Perm: 0o755, Data: []byte("#!/bin/sh\n")})...))
	t.Chdir(dir)
	load := []string{"-l", "a&b<c>", "--initrd", "fw.cpio", "--initrd", "main.cpio", "--append", "console=ttyS0 x<y>&z", "--dry-run", "--banks=sha1,sha256"}
	tests := []struct {
		name string
		args []string
	}{
		{"load", load},
		{"split", append(append([]string{}, load...), "--split-initrd", "--pcr=12")},
		{"unload", []string{"-u", "--dry-run"}},
	}
	for _, tc := range tests {
		for _, format := range []string{"txt", "json"} {
			t.Run(tc.name+"."+format, func(t *testing.T) {
				args := tc.args
				if format == "json" {
					args = append(append([]string{}, args...), "--json")
				}
				e, sys := testEnv(t)
				code, stdout, stderr := runTest(e, args...)
				if code != 0 || stderr != "" || len(sys.Loads) != 0 {
					t.Fatalf("exit %d, %d loads, stderr %q", code, len(sys.Loads), stderr)
				}
				if format == "json" && !json.Valid([]byte(stdout)) {
					t.Errorf("not valid JSON:\n%s", stdout)
				}
				if tc.name != "unload" && !strings.Contains(stdout, "a&b<c>") {
					t.Errorf("the kernel's name a&b<c> is not printed as it is:\n%s", stdout)
				}
				// The records name absolute paths: the test's directory
				// differs from run to run.
				golden(t, filepath.Join(testdata, "dry-run-"+tc.name+"."+format), []byte(strings.ReplaceAll(stdout, dir, "/DIR")))
			})
		}
	}
}

// failWriter fails every write, as a closed pipe or a full disk does.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("no space left (fake)") }

// TestDryRunWriteError: a dry run whose output cannot be written fails.
func TestDryRunWriteError(t *testing.T) {
	for _, format := range [][]string{nil, {"--json"}} {
		e, _ := testEnv(t)
		var stderr bytes.Buffer
		code := runKexec("kexec-measured", append([]string{"-u", "--dry-run"}, format...), e, failWriter{}, &stderr)
		if code != exitFailed || !strings.Contains(stderr.String(), "no space left (fake)") {
			t.Errorf("%v: exit %d, stderr %q; want %d and the write error", format, code, stderr.String(), exitFailed)
		}
	}
}
