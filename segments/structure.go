package segments

import (
	"encoding/binary"
	"fmt"
	"io"
)

// take consumes n bytes and returns them; the slice is valid until the next
// call on a. A short read is ErrFormat (truncated) or a *ReadError.
func take(a *atReader, n int, what string) ([]byte, error) {
	p, err := a.Peek(n)
	if len(p) < n {
		return nil, truncated(a.pos, what, err)
	}
	a.Discard(int64(n))
	return p, nil
}

// skip consumes n bytes that must be present.
func skip(a *atReader, n int64, what string) error {
	if n < 0 || n > a.Remaining() {
		return fmt.Errorf("%s at offset %d: %d bytes, %d remain: %w", what, a.pos, n, a.Remaining(), ErrFormat)
	}
	_, err := a.Discard(n)
	return err
}

func truncated(off int64, what string, err error) error {
	if _, ok := err.(*ReadError); ok {
		return err
	}
	return fmt.Errorf("%s at offset %d: truncated: %w", what, off, ErrFormat)
}

// parseZstd consumes any skippable frames and one zstd frame, from the frame
// and block headers alone (RFC 8878 §3.1): the frame header, the blocks up
// to the last one, and the optional content checksum.
func parseZstd(a *atReader, s *Segment) (int64, error) {
	more, err := zstdSkippableFrames(a, s)
	if err != nil {
		return 0, err
	}
	if !more {
		return a.pos, nil
	}
	checksum, err := zstdFrameHeader(a, s)
	if err != nil {
		return 0, err
	}
	if err := zstdBlocks(a); err != nil {
		return 0, err
	}
	if checksum {
		if err := skip(a, 4, "zstd content checksum"); err != nil {
			return 0, err
		}
	}
	return a.pos, nil
}

// zstdSkippableFrames consumes the skippable frames (RFC 8878 §3.1.2) at
// a's position and then the magic of the zstd frame after them. It reports
// false when no zstd frame follows: the segment is skippable frames only.
func zstdSkippableFrames(a *atReader, s *Segment) (bool, error) {
	for {
		frame := a.pos
		p, err := take(a, 4, "zstd frame")
		if err != nil {
			return false, err
		}
		if !isSkippable(p) {
			if string(p) != string(magicZstd) {
				return false, fmt.Errorf("zstd frame at offset %d: bad magic % x: %w", frame, p, ErrFormat)
			}
			return true, nil
		}
		q, err := take(a, 4, "zstd skippable frame size")
		if err != nil {
			return false, err
		}
		n := int64(binary.LittleEndian.Uint32(q))
		if err := skip(a, n, "zstd skippable frame"); err != nil {
			return false, err
		}
		s.warn(frame, WarnZstdSkippable, "skippable frame (%d bytes, as pzstd writes): the kernel knows only the zstd frame magic", n)
		if q, _ := a.Peek(4); len(q) < 4 || !(isSkippable(q) || string(q) == string(magicZstd)) {
			return false, nil
		}
	}
}

// zstdFrameHeader consumes the frame header after the magic (RFC 8878
// §3.1.1.1): descriptor, window descriptor, dictionary ID and frame content
// size, which becomes s.UncompressedSize. It reports whether the frame ends
// with a content checksum.
func zstdFrameHeader(a *atReader, s *Segment) (bool, error) {
	fhd, err := a.ReadByte()
	if err != nil {
		return false, truncated(a.pos, "zstd frame header", err)
	}
	if fhd&0x08 != 0 {
		return false, fmt.Errorf("zstd frame header at offset %d: reserved bit set: %w", a.pos-1, ErrFormat)
	}
	single := fhd&0x20 != 0
	n := 0
	if !single {
		n++ // window descriptor
	}
	n += [4]int{0, 1, 2, 4}[fhd&3] // dictionary ID
	fcsLen := [4]int{0, 2, 4, 8}[fhd>>6]
	if fhd>>6 == 0 && single {
		fcsLen = 1
	}
	if err := skip(a, int64(n), "zstd frame header"); err != nil {
		return false, err
	}
	if fcsLen > 0 {
		q, err := take(a, fcsLen, "zstd frame content size")
		if err != nil {
			return false, err
		}
		var fcs uint64
		for i := fcsLen - 1; i >= 0; i-- {
			fcs = fcs<<8 | uint64(q[i])
		}
		if fcsLen == 2 {
			fcs += 256
		}
		if fcs <= 1<<62 {
			s.UncompressedSize = int64(fcs)
		}
	}
	return fhd&0x04 != 0, nil
}

// zstdBlocks consumes blocks (RFC 8878 §3.1.1.2) up to the last one.
func zstdBlocks(a *atReader) error {
	for {
		off := a.pos
		q, err := take(a, 3, "zstd block header")
		if err != nil {
			return err
		}
		bh := uint32(q[0]) | uint32(q[1])<<8 | uint32(q[2])<<16
		last, typ, size := bh&1 != 0, (bh>>1)&3, int64(bh>>3)
		switch typ {
		case 0, 2: // raw, compressed
			if size > 128<<10 {
				return fmt.Errorf("zstd block at offset %d: size %d above 128 KiB: %w", off, size, ErrFormat)
			}
		case 1: // RLE
			size = 1
		case 3:
			return fmt.Errorf("zstd block at offset %d: reserved block type: %w", off, ErrFormat)
		}
		if err := skip(a, size, "zstd block"); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}

// parseLZ4Legacy consumes an lz4 legacy stream: the magic, then blocks of a
// 32-bit little-endian compressed size and data. The format has no end
// mark: like the kernel (lib/decompress_unlz4.c) we stop at the end of the
// image, at a zero size (NUL padding), and, unlike it, at a size that no
// legacy block can have.
func parseLZ4Legacy(a *atReader, s *Segment) (int64, error) {
	const maxBlock = 8<<20 + 8<<20/255 + 16 // LZ4_compressBound(8 MiB)
	if err := skip(a, 4, "lz4 magic"); err != nil {
		return 0, err
	}
	for a.Remaining() >= 4 {
		p, err := a.Peek(4)
		if len(p) < 4 {
			return 0, truncated(a.pos, "lz4 block size", err)
		}
		n := binary.LittleEndian.Uint32(p)
		switch {
		case string(p) == string(magicLZ4Legacy):
			a.Discard(4) // concatenated legacy stream: the kernel continues
			continue
		case n == 0 || n > maxBlock:
			return a.pos, nil
		case int64(n) > a.Remaining()-4:
			return 0, fmt.Errorf("lz4 block at offset %d: size %d, %d bytes remain: %w", a.pos, n, a.Remaining()-4, ErrFormat)
		}
		a.Discard(4 + int64(n))
	}
	return a.pos, nil
}

// parseLZ4Frame consumes one lz4 frame (lz4 Frame Format Description 1.6).
func parseLZ4Frame(a *atReader, s *Segment) (int64, error) {
	start := a.pos
	p, err := take(a, 6, "lz4 frame header")
	if err != nil {
		return 0, err
	}
	flg := p[4]
	if flg>>6 != 1 {
		return 0, fmt.Errorf("lz4 frame at offset %d: version %d: %w", start, flg>>6, ErrFormat)
	}
	n := int64(1) // header checksum
	if flg&0x08 != 0 {
		q, err := a.Peek(8)
		if len(q) < 8 {
			return 0, truncated(a.pos, "lz4 content size", err)
		}
		if cs := binary.LittleEndian.Uint64(q); cs <= 1<<62 {
			s.UncompressedSize = int64(cs)
		}
		n += 8
	}
	if flg&0x01 != 0 {
		n += 4
	}
	if err := skip(a, n, "lz4 frame header"); err != nil {
		return 0, err
	}
	for {
		q, err := take(a, 4, "lz4 block size")
		if err != nil {
			return 0, err
		}
		bs := int64(binary.LittleEndian.Uint32(q) & 0x7fffffff)
		if bs == 0 {
			break
		}
		if flg&0x10 != 0 {
			bs += 4
		}
		if err := skip(a, bs, "lz4 block"); err != nil {
			return 0, err
		}
	}
	if flg&0x04 != 0 {
		if err := skip(a, 4, "lz4 content checksum"); err != nil {
			return 0, err
		}
	}
	return a.pos, nil
}

// lzop header flags (lzop's conf.h).
const (
	lzoAdler32D = 0x001
	lzoAdler32C = 0x002
	lzoExtra    = 0x040
	lzoCRC32D   = 0x100
	lzoCRC32C   = 0x200
	lzoFilter   = 0x800
)

// lzoMaxBlock is the largest decompressed block lzop writes (64 MiB, its
// MAX_BLOCK_SIZE); the kernel's unlzo refuses larger ones too.
const lzoMaxBlock = 64 << 20

// parseLZO consumes one lzop file: its header and blocks up to the zero
// block size that ends it. The uncompressed size is the sum of the block
// sizes.
func parseLZO(a *atReader, s *Segment) (int64, error) {
	a, flags, err := lzoHeader(a, s)
	if err != nil {
		return 0, err
	}
	s.lzoFlags, s.lzoBody = flags, a.pos
	total, err := lzoBlocks(a, flags)
	if err != nil {
		return 0, err
	}
	s.UncompressedSize = total
	return a.pos, nil
}

// lzoHeader consumes an lzop file header (lzop's p_header: magic, version,
// library version, version needed, level, flags, mode, mtime, filter, name,
// header checksum, extra field) and returns the reader after it and the
// flags. What the kernel's unlzo would misparse is a warning.
func lzoHeader(a *atReader, s *Segment) (*atReader, uint32, error) {
	start := a.pos
	if err := skip(a, int64(len(magicLZO)), "lzop magic"); err != nil {
		return nil, 0, err
	}
	p, err := take(a, 7, "lzop header")
	if err != nil {
		return nil, 0, err
	}
	version := binary.BigEndian.Uint16(p)
	if version < 0x0940 {
		// The kernel's unlzo always skips a "version needed" field.
		s.warn(start, WarnLZOHeader, "lzop format version %#x: the kernel parses only headers of version 0x0940 and later", version)
		a = rewind(a, start+int64(len(magicLZO))+5)
	} else if _, err := take(a, 1, "lzop level"); err != nil {
		return nil, 0, err
	}
	p, err = take(a, 4, "lzop flags")
	if err != nil {
		return nil, 0, err
	}
	flags := binary.BigEndian.Uint32(p)
	n := int64(8) // mode, mtime low
	if flags&lzoFilter != 0 {
		n += 4
	}
	if version >= 0x0940 {
		n += 4 // mtime high
	}
	if err := skip(a, n, "lzop header"); err != nil {
		return nil, 0, err
	}
	nl, err := take(a, 1, "lzop name length")
	if err != nil {
		return nil, 0, err
	}
	if err := skip(a, int64(nl[0])+4, "lzop name and header checksum"); err != nil {
		return nil, 0, err
	}
	if flags&lzoExtra != 0 {
		q, err := take(a, 4, "lzop extra field length")
		if err != nil {
			return nil, 0, err
		}
		if err := skip(a, int64(binary.BigEndian.Uint32(q))+4, "lzop extra field"); err != nil {
			return nil, 0, err
		}
	}
	if dsum, csum := lzoSums(flags); dsum != 1 || csum != 0 || flags&lzoExtra != 0 {
		s.warn(start, WarnLZOHeader, "lzop flags %#x: the kernel's unlzo expects exactly one data checksum, no compressed-data checksum and no extra field", flags)
	}
	return a, flags, nil
}

// lzoSums returns how many checksums of the decompressed data and of the
// compressed data each lzop block carries.
func lzoSums(flags uint32) (data, compressed int) {
	if flags&lzoAdler32D != 0 {
		data++
	}
	if flags&lzoCRC32D != 0 {
		data++
	}
	if flags&lzoAdler32C != 0 {
		compressed++
	}
	if flags&lzoCRC32C != 0 {
		compressed++
	}
	return data, compressed
}

// lzoBlocks consumes lzop blocks (sizes, checksums, data) up to the zero
// size that ends the file and returns the sum of their decompressed sizes.
func lzoBlocks(a *atReader, flags uint32) (int64, error) {
	dsum, csum := lzoSums(flags)
	var total int64
	for {
		off := a.pos
		q, err := take(a, 4, "lzop block size")
		if err != nil {
			return 0, err
		}
		dst := int64(binary.BigEndian.Uint32(q))
		if dst == 0 {
			return total, nil
		}
		q, err = take(a, 4, "lzop compressed block size")
		if err != nil {
			return 0, err
		}
		src := int64(binary.BigEndian.Uint32(q))
		if dst > lzoMaxBlock || src > dst {
			return 0, fmt.Errorf("lzop block at offset %d: sizes %d/%d: %w", off, src, dst, ErrFormat)
		}
		n := int64(4 * dsum)
		if src < dst {
			n += int64(4 * csum)
		}
		if err := skip(a, n+src, "lzop block"); err != nil {
			return 0, err
		}
		total += dst
	}
}

// rewind returns a reader of the same range positioned at off.
func rewind(a *atReader, off int64) *atReader {
	*a = *newAtReader(a.ra, off, a.end)
	return a
}

var _ io.ByteReader = (*atReader)(nil)
