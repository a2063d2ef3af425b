//go:build linux

package loader

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kexec-measured/kexec-measured/loader/loadertest"
)

// run runs a shell pipeline in dir and returns its standard output; a
// missing tool skips the test, naming its Debian package.
func runTool(t *testing.T, dir, pkg, script string) []byte {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		if _, lerr := exec.LookPath(pkg); lerr != nil {
			t.Skipf("%s not found: install the Debian package %s", pkg, pkg)
		}
		t.Fatalf("%s: %v", script, err)
	}
	return out
}

// TestSplitInitrd loads two components, one an early cpio followed by a
// zstd-compressed cpio (as distributions build them), one a gzip cpio,
// with SplitInitrd through the fake seam: the events must tile each
// component at the boundaries the fixture was built with, and carry the
// digests of exactly those byte ranges.
func TestSplitInitrd(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "kernel/x86/microcode"), 0o755)
	os.WriteFile(filepath.Join(tree, "kernel/x86/microcode/GenuineIntel.bin"), bytes.Repeat([]byte("ucode"), 300), 0o644)
	os.WriteFile(filepath.Join(tree, "init"), []byte("#!/bin/sh\necho hello\n"), 0o755)
	early := runTool(t, tree, "cpio", "find kernel | LC_ALL=C sort | cpio -o -H newc --quiet")
	mainZst := runTool(t, tree, "zstd", "find init | cpio -o -H newc --quiet | zstd -q -c")
	mainGz := runTool(t, tree, "gzip", "find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -n -c")
	if len(early)%4 != 0 {
		t.Fatalf("cpio wrote %d bytes, not a multiple of 4", len(early))
	}
	comp0 := append(append([]byte{}, early...), mainZst...)
	p0 := filepath.Join(dir, "distro.img")
	p1 := filepath.Join(dir, "modules.cpio.gz")
	os.WriteFile(p0, comp0, 0o644)
	os.WriteFile(p1, mainGz, 0o644)
	kernel := writeFile(t, dir, "vmlinuz", "kernel")

	sys := loadertest.NewSys(t)
	var warn bytes.Buffer
	l := &Loader{Sys: sys, DryRun: true, Banks: []crypto.Hash{crypto.SHA256}, Warn: &warn}
	res, err := l.Run(Request{Load: true, Kernel: kernel, Initrds: []string{p0, p1}, SplitInitrd: true})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Image.Close()
	off1 := int64(len(comp0)+3) / 4 * 4 // where the second component starts
	want := []struct {
		kind      string
		seg       int
		off, size int64
		bytes     []byte
	}{
		{"", -1, 0, 6, []byte("kernel")},
		{"cpio", 0, 0, int64(len(early)), early},
		{"zstd", 1, int64(len(early)), int64(len(mainZst)), mainZst},
		{"gzip", 0, off1, int64(len(mainGz)), mainGz},
		{"", -1, 0, 0, nil},
	}
	ms := res.Image.Measurements
	if len(ms) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(ms), len(want), ms)
	}
	for i, w := range want {
		m := ms[i]
		seg := -1
		if m.Segment != nil {
			seg = *m.Segment
		}
		if m.Kind != w.kind || seg != w.seg || m.Offset != w.off || m.Size != w.size {
			t.Errorf("event %d: kind %q segment %d offset %d size %d; want %q %d %d %d", i, m.Kind, seg, m.Offset, m.Size, w.kind, w.seg, w.off, w.size)
		}
		sum := sha256.Sum256(w.bytes)
		if got := hex.EncodeToString(m.Sums[crypto.SHA256]); got != hex.EncodeToString(sum[:]) {
			t.Errorf("event %d: sha256 %s, want %x", i, got, sum)
		}
	}
	if warn.Len() != 0 {
		t.Errorf("warnings for well-formed images: %s", warn.String())
	}
}
