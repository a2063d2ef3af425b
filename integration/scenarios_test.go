//go:build integration

package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestNewcArchive checks the test's cpio writer against GNU cpio: what
// cpio -i extracts from newcArchive is what went in.
func TestNewcArchive(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio not installed (Debian package cpio; run integration/setup)")
	}
	files := map[string][]byte{
		"init":          []byte("#!/bin/sh\n"),
		"a/b/c.txt":     []byte("abc"),
		"a/empty":       nil,
		"x/odd-len.bin": randomBytes(t, 1001),
	}
	arch := newcArchive(entries(files))
	if len(arch)%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", len(arch))
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-i", "-d", "--quiet")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: extracted %d bytes, want %d", name, len(got), len(want))
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "init")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("init: mode %v (%v), want 0755", fi.Mode(), err)
	}
}

// TestGuestSeesTPM boots the kernel with busybox only (no kexec-measured)
// and checks the harness itself: the guest finds the swtpm TPM with all four
// PCR banks, and PCR 9 holds its reset value (zeros) in each.
func TestGuestSeesTPM(t *testing.T) {
	e := getEnv(t, false)
	tpm := startSwtpm(t)
	initrd := stage1{Script: "pcrs before\n"}.build(t, e, t.TempDir())
	c := run(t, e, vmConfig{Initrd: initrd, Cmdline: stage1Cmdline, TPM: tpm})
	if !c.Has("end") {
		t.Fatal("the guest's init did not finish")
	}
	got := c.PCRs(t, "before", 9)
	for _, bank := range allBanks {
		want := make([]byte, bankHash[bank].Size())
		if !bytes.Equal(got[bank], want) {
			t.Errorf("PCR 9 %s = %x, want %d zero bytes", bank, got[bank], len(want))
		}
	}
	if len(got) != len(allBanks) {
		t.Errorf("guest sees banks %v, want %v", sortedKeys(got), allBanks)
	}
	t.Logf("accelerator: %s", e.Accel)
}
