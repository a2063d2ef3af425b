package segments

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"testing"
)

// TestOpen checks that Open returns exactly the data each real compressor
// was given, for data with long literal runs (random bytes), long matches
// (repetition) and more than one block of every format.
func TestOpen(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 700<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	var es []entry
	es = append(es, entry{name: "random", data: random})
	es = append(es, entry{name: "zeros", data: make([]byte, 600<<10)})
	es = append(es, entry{name: "text", data: bytes.Repeat([]byte("kernel module text, "), 30000)})
	mixed := make([]byte, 300<<10)
	for i := range mixed {
		if i%1000 < 300 {
			mixed[i] = byte(rng.Uint32())
		} else {
			mixed[i] = byte(i / 700)
		}
	}
	es = append(es, entry{name: "mixed", data: mixed})
	// Real x86-64 code, for the BCJ filter: this test binary.
	if exe, err := os.Executable(); err == nil {
		if code, err := os.ReadFile(exe); err == nil {
			es = append(es, entry{name: "code", data: code[:min(len(code), 1<<20)]})
		}
	}
	raw := mkcpio(es, cpioOpts{})
	variants := map[string][]string{
		"lzop -1": {"lzop", "-1", "-c"}, "lzop -9": {"lzop", "-9", "-c"}, "lzop crc32": {"lzop", "--crc32", "-c"},
		"gzip": compressors[KindGzip], "zstd": compressors[KindZstd], "xz": compressors[KindXZ],
		"lzma": compressors[KindLZMA], "bzip2": compressors[KindBzip2], "lz4 -l": compressors[KindLZ4],
		"lz4 frame":      {"lz4", "-q", "-c"},
		"xz multi-block": {"xz", "-c", "--check=crc32", "-T2", "--block-size=200KiB"},
		"xz bcj":         {"xz", "-c", "--check=crc32", "--x86", "--lzma2=preset=6"},
		"xz bcj crc64":   {"xz", "-c", "--check=crc64", "--x86", "--lzma2"},
		"xz bcj sha256":  {"xz", "-c", "--check=sha256", "--x86", "--lzma2", "-T2", "--block-size=300KiB"},
		"xz bcj none":    {"xz", "-c", "--check=none", "--x86=start=4096", "--lzma2"},
		"zstd stdin":     {"zstd", "-q", "-c", "--no-content-size", "-3"},
	}
	for name, cmd := range variants {
		t.Run(name, func(t *testing.T) {
			img := compress(t, raw, cmd[0], cmd[1:]...)
			r := NewReader(bytes.NewReader(img), int64(len(img)), Limits{})
			s, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if s.Size != int64(len(img)) || s.Kind == KindUnknown {
				t.Fatalf("segment %+v, want one member of %d bytes", s, len(img))
			}
			rc, err := r.Open(s)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, raw) {
				t.Fatalf("decompressed %d bytes, differ from the %d given to %s", len(got), len(raw), cmd[0])
			}
		})
	}
}

func TestLZO1XCorrupt(t *testing.T) {
	for _, src := range [][]byte{
		nil,
		{0x11, 0x00},             // truncated end marker
		{0x20, 0x00, 0x00, 0x00}, // match before any output
		{0x15, 'a', 'b', 'c', 'd', 0x11, 0x00, 0x00}, // more output than dst holds
	} {
		if err := lzo1xDecompress(src, make([]byte, 2)); err == nil {
			t.Errorf("lzo1xDecompress(% x) = nil, want an error", src)
		}
	}
}
