//go:build linux

package loader

import (
	"crypto"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/loader/loadertest"
)

// BenchmarkLoadFiles loads (dry run, fake seam) and digests the files named
// in $KEXEC_MEASURED_BENCH_FILES (colon-separated; bench/hash.sh sets it)
// with the sha1 and sha256 banks, and reports the throughput and the Go
// heap allocated per load.
func BenchmarkLoadFiles(b *testing.B) {
	list := os.Getenv("KEXEC_MEASURED_BENCH_FILES")
	if list == "" {
		b.Skip("set KEXEC_MEASURED_BENCH_FILES (bench/hash.sh does)")
	}
	files := strings.Split(list, ":")
	var total int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			b.Fatal(err)
		}
		total += fi.Size()
	}
	kernel := b.TempDir() + "/vmlinuz"
	os.WriteFile(kernel, []byte("kernel"), 0o644)
	l := &Loader{Sys: loadertest.NewSys(b), DryRun: true, Banks: []crypto.Hash{crypto.SHA1, crypto.SHA256}}
	b.SetBytes(total)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for range b.N {
		res, err := l.Run(Request{Load: true, Kernel: kernel, Initrds: files})
		if err != nil {
			b.Fatal(err)
		}
		res.Image.Close()
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(1<<20), "heap-MiB/op")
	b.ReportMetric(float64(after.HeapSys)/(1<<20), "heap-sys-MiB")
}

// BenchmarkBankParallelism hashes 64 MiB in memory with sha1, with sha256,
// and with both at once on two goroutines, as digestAll does for two banks:
// "both" close to the larger of the two means the cores hash in parallel;
// close to their sum means they share the hashing hardware.
func BenchmarkBankParallelism(b *testing.B) {
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	ms := func() []Measurement { return []Measurement{{data: buf}} }
	for _, bc := range []struct {
		name  string
		banks []crypto.Hash
	}{
		{"sha1", []crypto.Hash{crypto.SHA1}},
		{"sha256", []crypto.Hash{crypto.SHA256}},
		{"sha1+sha256", []crypto.Hash{crypto.SHA1, crypto.SHA256}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			for range b.N {
				if err := digestAll(ms(), bc.banks); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
