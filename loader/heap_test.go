//go:build linux

package loader

import (
	"crypto"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/loader/loadertest"
)

// TestHeapIndependentOfInputSize loads (through the fake seam) and digests a
// 256 MiB sparse initrd component and checks that the Go heap allocated
// less than 32 MiB in all: the bytes go kernel to kernel into the memfd and
// are hashed from a read-only mapping, never copied onto the heap. And that
// the process's peak RSS grew by at most the input and 32 MiB: the memfd's
// pages are the only copy of the input in the process.
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
	// Writing 5 to clear_refs resets the peak RSS (VmHWM) to the RSS now.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("resetting the peak RSS: %v", err)
	}
	rssBefore := procStatus(t, "VmHWM")
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
	peak := procStatus(t, "VmHWM") - rssBefore
	t.Logf("peak RSS grew by %d MiB while loading %d MiB", peak>>20, size>>20)
	if peak > size+32<<20 {
		t.Errorf("peak RSS grew by %d MiB while loading a %d MiB component, want at most %d MiB", peak>>20, size>>20, (size+32<<20)>>20)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("heap allocated while loading %d MiB: %d KiB", size>>20, allocated>>10)
	if allocated >= 32<<20 {
		t.Errorf("heap allocated %d MiB while loading a %d MiB component, want < 32 MiB", allocated>>20, size>>20)
	}
}

// procStatus returns a field of /proc/self/status in bytes ("VmHWM").
func procStatus(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return kib << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
