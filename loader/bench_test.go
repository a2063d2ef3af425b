//go:build linux

package loader

import (
	"crypto"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kexec-measured/kexec-measured/loader/loadertest"
	"github.com/kexec-measured/kexec-measured/segments"
	"golang.org/x/sys/unix"
)

// BenchmarkLoadFiles loads (dry run, fake seam) and digests the files of
// benchFiles with the sha1 and sha256 banks, and reports the throughput and the Go
// heap allocated per load.
func BenchmarkLoadFiles(b *testing.B) {
	files, total := benchFiles(b)
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

// benchFiles returns the files named in $KEXEC_MEASURED_BENCH_FILES
// (colon-separated; bench/hash.sh sets it), or one 64 MiB file of random
// bytes, and their total size.
func benchFiles(b *testing.B) ([]string, int64) {
	var files []string
	if list := os.Getenv("KEXEC_MEASURED_BENCH_FILES"); list != "" {
		files = strings.Split(list, ":")
	} else {
		f := b.TempDir() + "/random"
		if err := os.WriteFile(f, randomBytes(b, 64<<20), 0o644); err != nil {
			b.Fatal(err)
		}
		files = []string{f}
	}
	var total int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			b.Fatal(err)
		}
		total += fi.Size()
	}
	return files, total
}

// BenchmarkPipeline copies the files into memfds and digests them with two
// and with four banks: pipelined at several chunk sizes (copyAndDigest, as
// loads do), and "sequential", copying everything first and then digesting
// the whole components (as --split-initrd does, and as loads did before).
// "banks=0" copies without digesting: the private copy's own cost, the
// part of a load that openssl does not have. Besides the throughput over
// the input bytes it reports the CPU time (user + system) per load and
// close-ms/op, the time Image.Close takes at the end of a load (unmapping
// and freeing the memfds' pages: work that runs after the hashing, on one
// core).
func BenchmarkPipeline(b *testing.B) {
	files, total := benchFiles(b)
	kernel := b.TempDir() + "/vmlinuz"
	os.WriteFile(kernel, []byte("kernel"), 0o644)
	type benchCase struct {
		name  string
		banks []crypto.Hash
		chunk int64 // 0: sequential
	}
	cases := []benchCase{{"banks=0/copy-only", nil, pipeChunk}}
	for _, banks := range [][]crypto.Hash{{crypto.SHA1, crypto.SHA256}, {crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}} {
		for _, chunk := range []int64{256 << 10, 1 << 20, pipeChunk, 8 << 20} {
			cases = append(cases, benchCase{fmt.Sprintf("banks=%d/chunk=%dKiB", len(banks), chunk>>10), banks, chunk})
		}
		cases = append(cases, benchCase{fmt.Sprintf("banks=%d/sequential", len(banks)), banks, 0})
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(total)
			cpu0 := cpuTime(b)
			var closing time.Duration
			for range b.N {
				copyBanks := bc.banks
				if bc.chunk == 0 {
					copyBanks = nil
				}
				im, err := readInputs(kernel, files, nil, nil, copyBanks, pipeline{chunk: bc.chunk})
				if err != nil {
					b.Fatal(err)
				}
				if bc.chunk == 0 {
					if err := im.addMeasurements(false, false, segments.Limits{}, nil); err != nil {
						b.Fatal(err)
					}
					if err := digestAll(im.Measurements, bc.banks); err != nil {
						b.Fatal(err)
					}
				}
				t0 := time.Now()
				im.Close()
				closing += time.Since(t0)
			}
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
			b.ReportMetric(float64(closing.Milliseconds())/float64(b.N), "close-ms/op")
		})
	}
}

// cpuTime returns the user and system time of the process so far, in
// nanoseconds: on a machine shared with other work, what a load costs.
func cpuTime(b *testing.B) int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
