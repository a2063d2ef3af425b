package segments

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"slices"
	"testing"
)

// part is one building block of a test image and what the walk must find.
type part struct {
	kind    string
	data    []byte // the block's bytes
	pad     int    // NUL bytes after it
	raw     []byte // its decompressed cpio data (nil: not checked)
	names   []string
	trailer bool
	warns   []string // expected warning codes
}

// member compresses a cpio archive of files with the real tool for kind.
func member(t *testing.T, kind string, es []entry, pad int, warns ...string) part {
	t.Helper()
	raw := mkcpio(es, cpioOpts{})
	return part{kind: kind, data: compressKind(t, raw, kind), pad: pad, raw: raw, names: names(es), trailer: true, warns: warns}
}

func plain(es []entry, o cpioOpts, pad int, warns ...string) part {
	raw := mkcpio(es, o)
	return part{kind: KindCpio, data: raw, pad: pad, raw: raw, names: names(es), trailer: !o.noTrailer, warns: warns}
}

// alignTo returns the padding after a part of length n that makes the
// next offset ≡ want (mod 4), plus 4 so that there is always some.
func alignTo(off, want int) int {
	return 4 + (want-off%4+4)%4
}

func TestWalk(t *testing.T) {
	micro := sampleFiles("kernel/x86/microcode", 2)
	main := sampleFiles("usr/lib/modules", 40)
	small := sampleFiles("etc", 3)
	tests := []struct {
		name  string
		parts func(t *testing.T) []part
	}{
		{"early cpio + gzip", func(t *testing.T) []part {
			return []part{plain(micro, cpioOpts{}, 0), member(t, KindGzip, main, 0)}
		}},
		{"compressed not last: gzip + cpio", func(t *testing.T) []part {
			g := member(t, KindGzip, main, 0)
			g.pad = alignTo(len(g.data), 0)
			return []part{g, plain(small, cpioOpts{}, 8)}
		}},
		{"zstd + zstd", func(t *testing.T) []part {
			return []part{member(t, KindZstd, main, 3), member(t, KindZstd, small, 0)}
		}},
		{"gzip + gzip", func(t *testing.T) []part {
			return []part{member(t, KindGzip, main, 0), member(t, KindGzip, small, 5)}
		}},
		{"zstd + cpio", func(t *testing.T) []part {
			z := member(t, KindZstd, main, 0)
			z.pad = alignTo(len(z.data), 0)
			return []part{z, plain(small, cpioOpts{}, 0)}
		}},
		{"xz + cpio", func(t *testing.T) []part {
			x := member(t, KindXZ, main, 0)
			x.pad = alignTo(len(x.data), 0)
			return []part{x, plain(small, cpioOpts{}, 0)}
		}},
		{"lzma + gzip", func(t *testing.T) []part {
			return []part{member(t, KindLZMA, main, 7), member(t, KindGzip, small, 0)}
		}},
		{"bzip2 + zstd", func(t *testing.T) []part {
			return []part{member(t, KindBzip2, main, 2), member(t, KindZstd, small, 0)}
		}},
		{"lzo + cpio", func(t *testing.T) []part {
			l := member(t, KindLZO, main, 0)
			l.pad = alignTo(len(l.data), 0)
			return []part{l, plain(small, cpioOpts{}, 0)}
		}},
		{"cpio + lz4 legacy last", func(t *testing.T) []part {
			return []part{plain(micro, cpioOpts{}, 4), member(t, KindLZ4, main, 0)}
		}},
		{"lz4 legacy not last", func(t *testing.T) []part {
			return []part{member(t, KindLZ4, main, 4, WarnLZ4NotLast), member(t, KindGzip, small, 0)}
		}},
		{"cpio without TRAILER + gzip", func(t *testing.T) []part {
			return []part{plain(micro, cpioOpts{noTrailer: true}, 12), member(t, KindGzip, small, 0)}
		}},
		{"misaligned cpio", func(t *testing.T) []part {
			g := member(t, KindGzip, small, 0)
			g.pad = alignTo(len(g.data), 2)
			return []part{g, plain(micro, cpioOpts{}, 0, WarnMisalignedCpio)}
		}},
		{"two uncompressed cpios", func(t *testing.T) []part {
			return []part{plain(micro, cpioOpts{}, 0), plain(small, cpioOpts{}, 0)}
		}},
		{"trailing junk", func(t *testing.T) []part {
			return []part{plain(small, cpioOpts{}, 0), {kind: KindUnknown, data: []byte("junk after the archive"), warns: []string{WarnUnknownBytes}}}
		}},
		{"leading NULs", func(t *testing.T) []part {
			return []part{{kind: KindPadding, pad: 512}, member(t, KindGzip, small, 0)}
		}},
		{"crc cpio", func(t *testing.T) []part {
			return []part{plain(main, cpioOpts{crc: true}, 0), member(t, KindZstd, small, 0)}
		}},
		{"crc cpio with a bad checksum", func(t *testing.T) []part {
			return []part{plain(main, cpioOpts{crc: true, badSum: true}, 0, WarnCpioChecksum)}
		}},
		{"upper-case hex", func(t *testing.T) []part {
			return []part{plain(micro, cpioOpts{upper: true}, 0), member(t, KindGzip, small, 0)}
		}},
		{"hard links", func(t *testing.T) []part {
			es := []entry{
				{name: "a", ino: 77, nlink: 3},
				{name: "b", ino: 77, nlink: 3},
				{name: "c", ino: 77, nlink: 3, data: []byte("the data sits on the last link")},
			}
			return []part{plain(es, cpioOpts{}, 0), member(t, KindXZ, es, 0)}
		}},
		{"xz with CRC64", func(t *testing.T) []part {
			raw := mkcpio(small, cpioOpts{})
			return []part{{kind: KindXZ, data: compress(t, raw, "xz", "-c", "--check=crc64"), raw: raw, names: names(small), trailer: true, warns: []string{WarnXZCheck}}}
		}},
		{"xz with SHA-256 not last", func(t *testing.T) []part {
			raw := mkcpio(small, cpioOpts{})
			x := compress(t, raw, "xz", "-c", "--check=sha256")
			return []part{{kind: KindXZ, data: x, pad: alignTo(len(x), 0), raw: raw, names: names(small), trailer: true, warns: []string{WarnXZCheck}}, plain(micro, cpioOpts{}, 0)}
		}},
		{"gzip with FEXTRA", func(t *testing.T) []part {
			raw := mkcpio(small, cpioOpts{})
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Extra = []byte("AB\x02\x00xy")
			zw.Write(raw)
			zw.Close()
			return []part{{kind: KindGzip, data: b.Bytes(), pad: 4, raw: raw, names: names(small), trailer: true, warns: []string{WarnGzipHeader}}, member(t, KindGzip, micro, 0)}
		}},
		{"zstd with a skippable frame", func(t *testing.T) []part {
			z := member(t, KindZstd, small, 0, WarnZstdSkippable)
			skippable := binary.LittleEndian.AppendUint32(nil, 0x184D2A50)
			skippable = binary.LittleEndian.AppendUint32(skippable, 4)
			skippable = binary.LittleEndian.AppendUint32(skippable, uint32(len(z.data)))
			z.data = append(skippable, z.data...)
			return []part{z, member(t, KindZstd, micro, 0)}
		}},
		{"lz4 frame format", func(t *testing.T) []part {
			raw := mkcpio(small, cpioOpts{})
			return []part{{kind: KindLZ4, data: compress(t, raw, "lz4", "-q", "-c"), pad: 4, raw: raw, names: names(small), trailer: true, warns: []string{WarnLZ4Frame}}, member(t, KindGzip, micro, 0)}
		}},
		{"junk within compressed archive", func(t *testing.T) []part {
			raw := append(mkcpio(small, cpioOpts{}), "garbage"...)
			return []part{{kind: KindGzip, data: compressKind(t, raw, KindGzip), raw: raw, names: names(small), trailer: true, warns: []string{WarnJunkWithin}}}
		}},
		{"junk at end of compressed archive", func(t *testing.T) []part {
			full := mkcpio(small, cpioOpts{})
			raw := full[:len(full)-40] // cut inside the TRAILER!!! entry
			return []part{{kind: KindZstd, data: compressKind(t, raw, KindZstd), raw: raw, names: names(small), warns: []string{WarnJunkAtEnd}}}
		}},
		{"two archives in one member", func(t *testing.T) []part {
			raw := append(mkcpio(micro, cpioOpts{}), make([]byte, 8)...)
			raw = append(raw, mkcpio(small, cpioOpts{})...)
			return []part{{kind: KindBzip2, data: compressKind(t, raw, KindBzip2), raw: raw, names: append(names(micro), names(small)...), trailer: true}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parts := tc.parts(t)
			var img []byte
			for _, p := range parts {
				img = append(img, p.data...)
				img = append(img, make([]byte, p.pad)...)
			}
			r := NewReader(bytes.NewReader(img), int64(len(img)), Limits{})
			r.KeepEntries(true)
			var off int64
			for i, p := range parts {
				s, err := r.Next()
				if err != nil {
					t.Fatalf("segment %d: %v", i, err)
				}
				want := int64(len(p.data) + p.pad)
				if s.Index != i || s.Kind != p.kind || s.Offset != off || s.Size != want || s.Padding != int64(p.pad) {
					t.Fatalf("segment %d = {index %d kind %s offset %d size %d padding %d}, want {%d %s %d %d %d}; warnings %v",
						i, s.Index, s.Kind, s.Offset, s.Size, s.Padding, i, p.kind, off, want, p.pad, s.Warnings)
				}
				off += want
				if err := r.Scan(s); err != nil {
					t.Fatalf("segment %d: Scan: %v", i, err)
				}
				var codes []string
				for _, w := range s.Warnings {
					codes = append(codes, w.Code)
				}
				if !slices.Equal(codes, p.warns) {
					t.Errorf("segment %d warnings = %v, want codes %v", i, s.Warnings, p.warns)
				}
				if p.raw == nil {
					continue
				}
				var got []string
				for _, h := range s.Files {
					got = append(got, h.Name)
				}
				if !slices.Equal(got, p.names) || s.Entries != len(p.names) {
					t.Errorf("segment %d entries = %d %q, want %q", i, s.Entries, got, p.names)
				}
				if s.Trailer != p.trailer {
					t.Errorf("segment %d trailer = %v, want %v", i, s.Trailer, p.trailer)
				}
				if s.UncompressedSize != int64(len(p.raw)) {
					t.Errorf("segment %d uncompressed size = %d, want %d", i, s.UncompressedSize, len(p.raw))
				}
			}
			if s, err := r.Next(); err != io.EOF {
				t.Fatalf("after the last part: %+v, %v; want io.EOF", s, err)
			}
		})
	}
}
