package segments

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"
)

// peakHeap samples the heap in use every millisecond until stop is called,
// which returns the largest sample.
func peakHeap() (stop func() uint64) {
	var mu sync.Mutex
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peak = max(peak, ms.HeapInuse)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// emptyFiles is a cpio archive of n empty regular files.
func emptyFiles(n int) []byte {
	es := make([]entry, n)
	for i := range es {
		es[i] = entry{name: fmt.Sprintf("f/%07d", i), ino: uint32(i + 1)}
	}
	return mkcpio(es, cpioOpts{})
}

// BenchmarkBomb inspects, with the default limits and no time limit, the
// hostile images of issue 13 in small form: members of zeros over the
// ratio floor in every compressed kind, many small members, many entries.
// It reports the peak heap in use (peak-heap-MiB) beside the time;
// bench/bombs.sh measures the full-size images with the real command.
func BenchmarkBomb(b *testing.B) {
	zeros := func(kind string) func() []byte {
		return func() []byte { return compressKind(b, zerosCpio(DefaultRatioFloor+1<<20), kind) }
	}
	small := mkcpio([]entry{{name: "f", ino: 1}}, cpioOpts{})
	cases := []struct {
		name string
		img  func() []byte
		list bool
	}{
		{"zeros/gzip", zeros(KindGzip), false},
		{"zeros/zstd", zeros(KindZstd), false},
		{"zeros/lz4", zeros(KindLZ4), false},
		{"zeros/lzo", zeros(KindLZO), false},
		{"zeros/bzip2", zeros(KindBzip2), false},
		{"zeros/lzma", zeros(KindLZMA), false},
		{"zeros/xz", zeros(KindXZ), false},
		{"members/zstd-10000", func() []byte { return bytes.Repeat(compressKind(b, small, KindZstd), 10000) }, false},
		{"members/xz-10000", func() []byte { return bytes.Repeat(compressKind(b, small, KindXZ), 10000) }, false},
		{"members/gzip-100000", func() []byte { return bytes.Repeat(compressKind(b, small, KindGzip), 100000) }, false},
		{"entries/cpio-1000000-list", func() []byte { return emptyFiles(1000000) }, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			img := c.img()
			runtime.GC()
			b.SetBytes(int64(len(img)))
			b.ResetTimer()
			var peak uint64
			for b.Loop() {
				stop := peakHeap()
				Inspect(bytes.NewReader(img), int64(len(img)), InspectOptions{List: c.list, Out: NewTextWriter(io.Discard, nil, c.list)}) //nolint:errcheck // a limit is the expected outcome
				peak = max(peak, stop())
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		})
	}
}
