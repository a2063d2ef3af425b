package segments

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// xzCheckSize is the size of a block's check for each check ID (xz file
// format 1.2.1 §2.1.1.2 and §3.4).
func xzCheckSize(id byte) int64 {
	switch {
	case id == 0:
		return 0
	case id <= 3:
		return 4
	case id <= 6:
		return 8
	case id <= 9:
		return 16
	case id <= 12:
		return 32
	default:
		return 64
	}
}

var xzCheckNames = map[byte]string{0: "none", 1: "CRC32", 4: "CRC64", 10: "SHA-256"}

// parseXZ consumes one xz stream from its structure alone (xz file format
// 1.2.1): the stream header, the blocks, the index and the stream footer.
// The uncompressed size is the index's sum.
func parseXZ(a *atReader, s *Segment) (int64, error) {
	flags, err := xzStreamHeader(a, s)
	if err != nil {
		return 0, err
	}
	csize := xzCheckSize(flags[1])
	for {
		b, err := take(a, 1, "xz block header")
		if err != nil {
			return 0, err
		}
		if b[0] == 0 {
			break // index indicator
		}
		blk, err := xzBlockAt(a, s, int(b[0]), csize)
		if err != nil {
			return 0, err
		}
		s.xzBlocks = append(s.xzBlocks, blk)
	}
	total, indexSize, err := xzIndex(a, s.xzBlocks)
	if err != nil {
		return 0, err
	}
	if err := xzStreamFooter(a, flags, indexSize); err != nil {
		return 0, err
	}
	s.UncompressedSize = total
	s.xzCheck = flags[1]
	return a.pos, nil
}

// xzStreamHeader consumes the stream header (§2.1.1): magic, stream flags
// and their CRC32. It returns the flags; the second byte is the check ID.
func xzStreamHeader(a *atReader, s *Segment) ([2]byte, error) {
	var flags [2]byte
	start := a.pos
	p, err := take(a, 12, "xz stream header")
	if err != nil {
		return flags, err
	}
	copy(flags[:], p[6:8])
	if crc32.ChecksumIEEE(p[6:8]) != binary.LittleEndian.Uint32(p[8:12]) || flags[0] != 0 || flags[1] > 15 {
		return flags, fmt.Errorf("xz stream header at offset %d: bad flags or CRC32: %w", start, ErrFormat)
	}
	if check := flags[1]; check != 0 && check != 1 {
		name := xzCheckNames[check]
		if name == "" {
			name = fmt.Sprintf("ID %d", check)
		}
		s.warn(start, WarnXZCheck, "xz integrity check %s: the kernel's xz decoder supports only none and CRC32 (xz --check=crc32)", name)
	}
	return flags, nil
}

// xzBlockAt consumes one block (§3) whose header size byte (first) was
// just read: the rest of the block header, the compressed data (the size
// the header declares, or else the LZMA2 chunks up to their end marker),
// the block padding and the check of csize bytes.
func xzBlockAt(a *atReader, s *Segment, first int, csize int64) (xzBlock, error) {
	off := a.pos - 1
	hsize := (first + 1) * 4
	hdr, err := a.Peek(hsize - 1)
	if len(hdr) < hsize-1 {
		return xzBlock{}, truncated(a.pos, "xz block header", err)
	}
	full := append([]byte{byte(first)}, hdr...)
	a.Discard(int64(hsize - 1))
	if crc32.ChecksumIEEE(full[:hsize-4]) != binary.LittleEndian.Uint32(full[hsize-4:]) {
		return xzBlock{}, fmt.Errorf("xz block header at offset %d: CRC32 mismatch: %w", off, ErrFormat)
	}
	comp, uncomp, filters, err := xzBlockHeader(full[1], full[2:hsize-4])
	if err != nil {
		return xzBlock{}, fmt.Errorf("xz block header at offset %d: %w", off, err)
	}
	dataStart := a.pos
	if comp >= 0 {
		if err := skip(a, comp, "xz block data"); err != nil {
			return xzBlock{}, err
		}
	} else {
		if last := filters[len(filters)-1].id; last != xzFilterLZMA2 {
			return xzBlock{}, fmt.Errorf("xz block at offset %d: no compressed size and last filter %#x is not LZMA2: %w", off, last, ErrFormat)
		}
		n, err := skipLZMA2(a)
		if err != nil {
			return xzBlock{}, err
		}
		if uncomp < 0 {
			uncomp = n
		}
		comp = a.pos - dataStart
	}
	if pad := (4 - comp&3) & 3; pad > 0 {
		q, err := take(a, int(pad), "xz block padding")
		if err != nil {
			return xzBlock{}, err
		}
		if !allZero(q) {
			return xzBlock{}, fmt.Errorf("xz block padding at offset %d: not zero: %w", a.pos-pad, ErrFormat)
		}
	}
	if err := skip(a, csize, "xz block check"); err != nil {
		return xzBlock{}, err
	}
	return xzBlock{
		data: dataStart, size: comp, check: a.pos - csize, filters: filters,
		unpadded: int64(hsize) + comp + csize, uncompressed: uncomp,
	}, nil
}

// xzBlockHeader decodes the fields of a block header (§3.1.2 to §3.1.5)
// between its size byte and its CRC32: the compressed and uncompressed
// sizes (-1 when absent) and the filter chain.
func xzBlockHeader(bflags byte, fields []byte) (comp, uncomp int64, filters []xzFilter, err error) {
	rd := bytes.NewReader(fields)
	comp, uncomp = -1, -1
	if bflags&0x40 != 0 {
		if comp, err = xzVarint(rd); err != nil {
			return 0, 0, nil, err
		}
	}
	if bflags&0x80 != 0 {
		if uncomp, err = xzVarint(rd); err != nil {
			return 0, 0, nil, err
		}
	}
	for i := 0; i <= int(bflags&3); i++ {
		id, err := xzVarint(rd)
		if err != nil {
			return 0, 0, nil, err
		}
		n, err := xzVarint(rd)
		if err != nil || n > int64(rd.Len()) {
			return 0, 0, nil, fmt.Errorf("filter properties: %w", ErrFormat)
		}
		props := make([]byte, n)
		rd.Read(props)
		filters = append(filters, xzFilter{id, props})
	}
	return comp, uncomp, filters, nil
}

// xzIndex consumes the index (§4) whose indicator byte was just read: the
// record count, one record per block (which must match the blocks), the
// padding and the CRC32. It returns the uncompressed size of the stream
// and the size of the index.
func xzIndex(a *atReader, blocks []xzBlock) (total, size int64, err error) {
	idx := a.pos - 1
	count, err := xzVarintAt(a)
	if err != nil {
		return 0, 0, err
	}
	if count != int64(len(blocks)) {
		return 0, 0, fmt.Errorf("xz index at offset %d: %d records for %d blocks: %w", idx, count, len(blocks), ErrFormat)
	}
	for i := range blocks {
		u, err := xzVarintAt(a)
		if err != nil {
			return 0, 0, err
		}
		v, err := xzVarintAt(a)
		if err != nil {
			return 0, 0, err
		}
		b := &blocks[i]
		if u != b.unpadded || (b.uncompressed >= 0 && v != b.uncompressed) {
			return 0, 0, fmt.Errorf("xz index at offset %d: record %d does not match its block: %w", idx, i, ErrFormat)
		}
		b.uncompressed = v
		total += v
	}
	if pad := (4 - (a.pos-idx)&3) & 3; pad > 0 {
		if err := skip(a, pad, "xz index padding"); err != nil {
			return 0, 0, err
		}
	}
	if err := skip(a, 4, "xz index CRC32"); err != nil {
		return 0, 0, err
	}
	return total, a.pos - idx, nil
}

// xzStreamFooter consumes the stream footer (§2.1.2), which must repeat the
// header's flags and give the index's size.
func xzStreamFooter(a *atReader, flags [2]byte, indexSize int64) error {
	foot, err := take(a, 12, "xz stream footer")
	if err != nil {
		return err
	}
	backward := (int64(binary.LittleEndian.Uint32(foot[4:8])) + 1) * 4
	if string(foot[10:12]) != "YZ" || foot[8] != flags[0] || foot[9] != flags[1] || backward != indexSize {
		return fmt.Errorf("xz stream footer at offset %d: does not match header and index: %w", a.pos-12, ErrFormat)
	}
	return nil
}

// Filter IDs (xz file format §5.3).
const (
	xzFilterX86   = 0x04
	xzFilterLZMA2 = 0x21
)

type xzFilter struct {
	id    int64
	props []byte
}

// xzBlock is where parseXZ found a block's parts.
type xzBlock struct {
	data, size   int64 // compressed data
	check        int64 // offset of the block's check
	filters      []xzFilter
	unpadded     int64 // header, data and check: the index's record
	uncompressed int64 // from the block header or the index
}

// skipLZMA2 consumes LZMA2 chunks up to the end marker and returns the
// uncompressed size they declare.
func skipLZMA2(a *atReader) (int64, error) {
	var total int64
	for {
		off := a.pos
		c, err := a.ReadByte()
		if err != nil {
			return 0, truncated(off, "lzma2 chunk", err)
		}
		switch {
		case c == 0:
			return total, nil
		case c == 1 || c == 2:
			p, err := take(a, 2, "lzma2 chunk header")
			if err != nil {
				return 0, err
			}
			n := int64(binary.BigEndian.Uint16(p)) + 1
			if err := skip(a, n, "lzma2 chunk"); err != nil {
				return 0, err
			}
			total += n
		case c >= 0x80:
			hl := 4
			if (c>>5)&3 >= 2 {
				hl = 5 // new properties byte
			}
			p, err := take(a, hl, "lzma2 chunk header")
			if err != nil {
				return 0, err
			}
			u := (int64(c&0x1f)<<16 | int64(binary.BigEndian.Uint16(p))) + 1
			n := int64(binary.BigEndian.Uint16(p[2:])) + 1
			if err := skip(a, n, "lzma2 chunk"); err != nil {
				return 0, err
			}
			total += u
		default:
			return 0, fmt.Errorf("lzma2 chunk at offset %d: invalid control byte %#x: %w", off, c, ErrFormat)
		}
	}
}

func xzVarint(rd *bytes.Reader) (int64, error) {
	var v uint64
	for i := 0; i < 9; i++ {
		b, err := rd.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("truncated number: %w", ErrFormat)
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			if v > 1<<62 {
				return 0, fmt.Errorf("number too large: %w", ErrFormat)
			}
			return int64(v), nil
		}
	}
	return 0, fmt.Errorf("number too long: %w", ErrFormat)
}

func xzVarintAt(a *atReader) (int64, error) {
	p, _ := a.Peek(9)
	rd := bytes.NewReader(p)
	v, err := xzVarint(rd)
	if err != nil {
		return 0, fmt.Errorf("xz index at offset %d: %w", a.pos, err)
	}
	a.Discard(int64(len(p) - rd.Len()))
	return v, nil
}

func allZero(p []byte) bool {
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}

// lzma2Dict decodes the LZMA2 filter's dictionary size property (xz file
// format §5.3.1); an invalid value decodes as the 4 GiB maximum.
func lzma2Dict(p byte) int64 {
	if p >= 40 {
		return 1<<32 - 1
	}
	return int64(2|p&1) << (p/2 + 11)
}
