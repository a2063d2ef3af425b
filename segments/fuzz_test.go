package segments

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus under testdata/fuzz from fixtures built with the real compressors")

// fuzzLimits keep a fuzz iteration cheap.
var fuzzLimits = Limits{MaxDecompressed: 4 << 20, MaxEntries: 4096, MaxNameLen: 4096}

// FuzzWalk checks that any image walks without panic and that the
// segments tile it exactly: contiguous, in order, with zero padding.
func FuzzWalk(f *testing.F) {
	f.Add(mkcpio(sampleFiles("seed", 2), cpioOpts{}))
	f.Add(append(make([]byte, 5), mkcpio(sampleFiles("s", 1), cpioOpts{crc: true, upper: true})...))
	f.Add([]byte("\x28\xb5\x2f\xfd\x00\x00\x01\x00\x00"))
	f.Fuzz(func(t *testing.T, img []byte) {
		r := NewReader(bytes.NewReader(img), int64(len(img)), fuzzLimits)
		r.KeepEntries(true)
		var off int64
		for i := 0; ; i++ {
			s, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				if !errors.Is(err, ErrLimit) {
					t.Fatalf("Next at %d: %v", off, err)
				}
				return
			}
			if s.Index != i || s.Offset != off || s.Size <= 0 || s.Padding < 0 || s.Padding > s.Size {
				t.Fatalf("segment %d: index %d offset %d size %d padding %d, want offset %d", i, s.Index, s.Offset, s.Size, s.Padding, off)
			}
			for _, b := range img[s.Offset+s.DataSize() : s.Offset+s.Size] {
				if b != 0 {
					t.Fatalf("segment %d: padding holds %#x", i, b)
				}
			}
			if s.Kind == KindUnknown && s.Offset+s.Size != int64(len(img)) {
				t.Fatalf("segment %d: unknown segment does not reach the end", i)
			}
			if err := r.Scan(s); err != nil && !errors.Is(err, ErrLimit) && !errors.Is(err, ErrUnsupportedFilter) {
				t.Fatalf("Scan of segment %d: %v", i, err)
			}
			if s.Scanned && len(s.Files) != s.Entries {
				t.Fatalf("segment %d: %d files kept for %d entries", i, len(s.Files), s.Entries)
			}
			off += s.Size
		}
		if off != int64(len(img)) {
			t.Fatalf("segments cover %d of %d bytes", off, len(img))
		}
	})
}

// FuzzCpio checks that any stream reads without panic, that names respect
// the limit and that every entry yields exactly its declared data.
func FuzzCpio(f *testing.F) {
	f.Add(mkcpio(sampleFiles("seed", 3), cpioOpts{}))
	f.Add(mkcpio(sampleFiles("crc", 2), cpioOpts{crc: true, badSum: true}))
	f.Add(append(mkcpio(sampleFiles("a", 1), cpioOpts{noTrailer: true}), 0, 0, 0, 0, 'x'))
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := NewCpioReader(bytes.NewReader(data), fuzzLimits)
		last := int64(-1)
		for {
			h, err := cr.Next()
			if err != nil {
				break
			}
			if len(h.Name) >= fuzzLimits.MaxNameLen || h.Offset <= last || h.Offset%4 != 0 {
				t.Fatalf("header %+v after offset %d", h, last)
			}
			last = h.Offset
			n, err := io.Copy(io.Discard, cr)
			if err == nil && n != h.Size {
				t.Fatalf("entry %q: read %d bytes, header says %d", h.Name, n, h.Size)
			}
			if err != nil {
				break
			}
		}
	})
}

// TestUpdateFuzzCorpus writes one seed per kind, built with the real
// compressors, when run with -update-corpus.
func TestUpdateFuzzCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("run with -update-corpus to rewrite testdata/fuzz")
	}
	files := sampleFiles("seed", 3)
	raw := mkcpio(files, cpioOpts{})
	seeds := map[string][]byte{"cpio": raw, "crc": mkcpio(files, cpioOpts{crc: true, upper: true})}
	for kind := range compressors {
		seeds[kind] = compressKind(t, raw, kind)
	}
	seeds["lz4frame"] = compress(t, raw, "lz4", "-q", "-c")
	seeds["xzcrc64"] = compress(t, raw, "xz", "-c", "--check=crc64")
	seeds["xzbcj"] = compress(t, raw, "xz", "-c", "--check=crc32", "--x86", "--lzma2")
	// A distro-like image: early cpio, padding, compressed member, cpio.
	mixed := append(mkcpio(sampleFiles("early", 1), cpioOpts{}), seeds[KindZstd]...)
	mixed = append(mixed, make([]byte, 4-len(mixed)%4+4)...)
	mixed = append(mixed, seeds[KindGzip]...)
	seeds["mixed"] = mixed
	for name, data := range seeds {
		for _, fz := range []string{"FuzzWalk", "FuzzCpio"} {
			if fz == "FuzzCpio" && name != "cpio" && name != "crc" && name != "mixed" {
				continue
			}
			dir := filepath.Join("testdata", "fuzz", fz)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
			if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// FuzzLZO1X checks that the LZO1X decoder never reads or writes out of
// bounds, whatever the input and the output size.
func FuzzLZO1X(f *testing.F) {
	f.Add([]byte{0x15, 'a', 'b', 'c', 'd', 0x11, 0x00, 0x00}, uint16(4))
	f.Add([]byte{0x00, 0x00, 0x05, 'x'}, uint16(300))
	f.Fuzz(func(t *testing.T, src []byte, n uint16) {
		dst := make([]byte, n)
		lzo1xDecompress(src, dst)
	})
}
