//go:build linux

package loader

import (
	"crypto"
	"os"
	"runtime"
	"testing"

	"github.com/kexec-measured/kexec-measured/loader/loadertest"
)

// TestHeapIndependentOfInputSize loads (through the fake seam) and digests a
// 256 MiB sparse initrd component and checks that the Go heap allocated
// less than 32 MiB in all: the bytes go kernel to kernel into the memfd and
// are hashed from a read-only mapping, never copied onto the heap.
func TestHeapIndependentOfInputSize(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 256 MiB")
	}
	const size = 256 << 20
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "kernel")
	big := dir + "/big.cpio"
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()

	sys := loadertest.NewSys(t)
	l := &Loader{Sys: sys, DryRun: true, Banks: []crypto.Hash{crypto.SHA1, crypto.SHA256}}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := l.Run(Request{Load: true, Kernel: kernel, Initrds: []string{big}})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Image.Close()
	if res.Image.InitrdSize != size {
		t.Fatalf("initrd size %d, want %d", res.Image.InitrdSize, size)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("heap allocated while loading %d MiB: %d KiB", size>>20, allocated>>10)
	if allocated >= 32<<20 {
		t.Errorf("heap allocated %d MiB while loading a %d MiB component, want < 32 MiB", allocated>>20, size>>20)
	}
}
