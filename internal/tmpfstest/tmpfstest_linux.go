// Package tmpfstest mounts small tmpfs file systems for tests that need a
// read-only or a full file system. Mounting needs root (CI runs the tests
// as root); elsewhere the test is skipped. Every error is checked: a mount
// or unmount that fails for another reason fails the test.
package tmpfstest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Mount mounts a tmpfs with opts ("size=256k", "ro,size=64k", ...) on a
// new empty directory and returns its path; the test's cleanup unmounts
// it. Without root, or without CAP_SYS_ADMIN, the test is skipped.
func Mount(t testing.TB, opts string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skipf("mount tmpfs on %s: %v (no CAP_SYS_ADMIN)", dir, err)
		}
		t.Fatalf("mount tmpfs -o %s on %s: %v", opts, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Fill writes a file named filler into dir until the file system is full
// (ENOSPC); any other error fails the test.
func Fill(t testing.TB, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			return
		}
	}
}
