package segments

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// benchImage builds a distro-like image in memory: an early cpio and a
// zstd member of a cpio of mb MiB of half random, half repetitive files.
func benchImage(b *testing.B, mb int) []byte {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var es []entry
	for i := 0; len(es) < 4096 && i*256<<10 < mb<<20; i++ {
		data := make([]byte, 256<<10)
		if i%2 == 0 {
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
		} else {
			copy(data, bytes.Repeat([]byte("module text "), len(data)/12))
		}
		es = append(es, entry{name: "usr/lib/modules/m" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)), data: data, ino: uint32(i + 1)})
	}
	raw := mkcpio(es, cpioOpts{})
	var z bytes.Buffer
	zw, err := zstd.NewWriter(&z, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		b.Fatal(err)
	}
	zw.Write(raw)
	zw.Close()
	img := mkcpio(sampleFiles("kernel/x86/microcode", 2), cpioOpts{})
	return append(img, z.Bytes()...)
}

func walkAll(b *testing.B, ra io.ReaderAt, size int64, scan bool) {
	r := NewReader(ra, size, Limits{})
	n := 0
	for {
		s, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		if scan {
			if err := r.Scan(s); err != nil {
				b.Fatal(err)
			}
		}
		n++
	}
	if n != 2 {
		b.Fatalf("%d segments, want 2", n)
	}
}

// BenchmarkZstdMap measures the segment map of a zstd image read from a
// file with ReadAt (as from the loader's memfd), without decompressing.
// Target: ≥ 1 GB/s (the MB/s column).
func BenchmarkZstdMap(b *testing.B) {
	img := benchImage(b, 256)
	path := filepath.Join(b.TempDir(), "img")
	if err := os.WriteFile(path, img, 0o600); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.SetBytes(int64(len(img)))
	b.ResetTimer()
	for b.Loop() {
		walkAll(b, f, int64(len(img)), false)
	}
}

// BenchmarkZstdScan measures the map plus decompressing and walking every
// cpio entry (what inspect does), per compressed byte.
func BenchmarkZstdScan(b *testing.B) {
	img := benchImage(b, 64)
	b.SetBytes(int64(len(img)))
	b.ResetTimer()
	for b.Loop() {
		walkAll(b, bytes.NewReader(img), int64(len(img)), true)
	}
}

// BenchmarkMapImage measures the segment map of the image named by
// $SEGMENTS_BENCH_IMAGE (bench/segments.sh sets it), read with ReadAt.
func BenchmarkMapImage(b *testing.B) {
	f, size := openBenchImage(b)
	b.SetBytes(size)
	for b.Loop() {
		r := NewReader(f, size, Limits{})
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkInspectImage measures Inspect (map, scan, SHA-256 digests) of the
// image named by $SEGMENTS_BENCH_IMAGE.
func BenchmarkInspectImage(b *testing.B) {
	f, size := openBenchImage(b)
	b.SetBytes(size)
	for b.Loop() {
		if _, err := Inspect(f, size, InspectOptions{List: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// openBenchImage opens the image named by $SEGMENTS_BENCH_IMAGE
// (bench/segments.sh sets it) for the rest of the benchmark, or skips.
func openBenchImage(b *testing.B) (*os.File, int64) {
	b.Helper()
	path := os.Getenv("SEGMENTS_BENCH_IMAGE")
	if path == "" {
		b.Skip("SEGMENTS_BENCH_IMAGE not set")
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	return f, fi.Size()
}
