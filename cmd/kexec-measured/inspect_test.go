package main

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/internal/newc"
)

// inspectNewc writes a newc cpio archive (internal/newc) of regular files
// in order, with a trailer.
func inspectNewc(t *testing.T, files map[string]string, order []string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := newc.NewWriter(&b, newc.Options{})
	for _, n := range order {
		w.File(n, 0o644, []byte(files[n]))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// inspectFixture writes an early cpio followed by a gzip'ed cpio (and extra)
// and returns its path, its bytes and the offset where the gzip member starts.
func inspectFixture(t *testing.T, extra []byte) (string, []byte, int) {
	t.Helper()
	gz, err := exec.LookPath("gzip")
	if err != nil {
		t.Skip("gzip not installed (Debian package gzip)")
	}
	early := inspectNewc(t, map[string]string{"kernel/x86/microcode/GenuineIntel.bin": "ucode"}, []string{"kernel/x86/microcode/GenuineIntel.bin"})
	main := inspectNewc(t, map[string]string{"init": "#!/bin/sh\n", "etc/fstab": "# none\n"}, []string{"init", "etc/fstab"})
	cmd := exec.Command(gz, "-c", "-n")
	cmd.Stdin = bytes.NewReader(main)
	z, err := cmd.Output()
	if err != nil {
		t.Fatalf("gzip: %v", err)
	}
	img := append(append(append([]byte{}, early...), z...), extra...)
	path := filepath.Join(t.TempDir(), "initrd.img")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, img, len(early)
}

func runInspectTest(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := runInspect(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestInspectJSON(t *testing.T) {
	path, img, gzAt := inspectFixture(t, nil)
	code, out, stderr := runInspectTest(path, "--json", "--digests=sha1,sha256", "--list")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var rep struct {
		Image    string
		Size     int64
		Segments []map[string]any
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if rep.Image != path || rep.Size != int64(len(img)) || len(rep.Segments) != 2 {
		t.Fatalf("report = %+v", rep)
	}
	wantKinds := []string{"cpio", "gzip"}
	wantOff := []int{0, gzAt}
	wantEnd := []int{gzAt, len(img)}
	for i, s := range rep.Segments {
		off, size := int(s["offset"].(float64)), int(s["size"].(float64))
		if s["kind"] != wantKinds[i] || off != wantOff[i] || off+size != wantEnd[i] {
			t.Errorf("segment %d = %v, want kind %s [%d, %d)", i, s, wantKinds[i], wantOff[i], wantEnd[i])
			continue
		}
		s1 := hashtest.Sum(crypto.SHA1, img[off:off+size])
		s256 := hashtest.Sum(crypto.SHA256, img[off:off+size])
		if s["sha1"] != hex.EncodeToString(s1) || s["sha256"] != hex.EncodeToString(s256) {
			t.Errorf("segment %d digests %v %v, want %x %x", i, s["sha1"], s["sha256"], s1, s256)
		}
	}
	files, _ := rep.Segments[1]["files"].([]any)
	if len(files) != 2 || files[0].(map[string]any)["name"] != "init" {
		t.Errorf("files of the gzip segment = %v", files)
	}
}

func TestInspectText(t *testing.T) {
	path, _, _ := inspectFixture(t, nil)
	code, out, stderr := runInspectTest("--list", path)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"2 segments", "SHA256", "cpio", "gzip", "kernel/x86/microcode/GenuineIntel.bin", "etc/fstab"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestInspectExitStatus(t *testing.T) {
	clean, _, _ := inspectFixture(t, nil)
	junk, _, _ := inspectFixture(t, []byte("\x00\x00\x00junk"))
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"clean", []string{clean}, 0},
		{"clean twice, options after", []string{clean, clean, "--json"}, 0},
		{"unknown tail", []string{junk}, 1},
		{"clean and unknown tail", []string{clean, "--", junk}, 1},
		{"missing file", []string{filepath.Join(t.TempDir(), "nope")}, 2},
		{"missing file beats warnings", []string{junk, filepath.Join(t.TempDir(), "nope")}, 2},
		{"no image", nil, 2},
		{"bad option", []string{"--frobnicate", clean}, 2},
		{"bad digest", []string{"--digests=md5", clean}, 2},
		{"digest names in any case, as --banks", []string{"--digests=SHA256, Sha1", clean}, 0},
		{"digest named twice", []string{"--digests=sha256,SHA256", clean}, 2},
		{"help", []string{"-h"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, out, stderr := runInspectTest(tc.args...); code != tc.want {
				t.Errorf("runInspect(%q) = %d, want %d\nstdout: %s\nstderr: %s", tc.args, code, tc.want, out, stderr)
			}
		})
	}
}

// TestInspectNotAFile: a FIFO and a directory are refused with a message
// naming them, without blocking and without printing a report.
func TestInspectNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, tc := range []struct{ path, want string }{{fifo, "a FIFO"}, {dir, "a directory"}} {
		code, out, stderr := runInspectTest(tc.path)
		if code != 2 || out != "" || !strings.Contains(stderr, tc.path) || !strings.Contains(stderr, tc.want) {
			t.Errorf("inspect %s = %d, stdout %q, stderr %q; want 2 and a message naming it as %s", tc.path, code, out, stderr, tc.want)
		}
	}
}

// TestInspectBomb: an image over a limit is a finding (exit 1) with a
// limit warning, not an I/O error.
func TestInspectBomb(t *testing.T) {
	zst, err := exec.LookPath("zstd")
	if err != nil {
		t.Skip("zstd not installed")
	}
	cmd := exec.Command(zst, "-q", "-c")
	cmd.Stdin = io.LimitReader(zeroReader{}, 65<<20)
	z, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bomb.zst")
	os.WriteFile(path, z, 0o600)
	code, out, stderr := runInspectTest("--json", path)
	if code != 1 || !strings.Contains(out, `"code":"limit"`) || !strings.Contains(stderr, "RatioFloor") {
		t.Errorf("inspect of a bomb = %d, stdout %q, stderr %q; want 1 and a limit warning naming RatioFloor", code, out, stderr)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
