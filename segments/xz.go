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

// parseXZ consumes one xz stream from its structure alone: the stream
// header, each block (its header, then the compressed size it declares or
// else the LZMA2 chunk headers), the index and the stream footer (xz file
// format 1.2.1). The uncompressed size is the index's sum.
func parseXZ(a *atReader, s *Segment) (int64, error) {
	start := a.pos
	p, err := take(a, 12, "xz stream header")
	if err != nil {
		return 0, err
	}
	var flags [2]byte
	copy(flags[:], p[6:8])
	if crc32.ChecksumIEEE(p[6:8]) != binary.LittleEndian.Uint32(p[8:12]) || flags[0] != 0 || flags[1] > 15 {
		return 0, fmt.Errorf("xz stream header at offset %d: bad flags or CRC32: %w", start, ErrFormat)
	}
	check := flags[1]
	if check != 0 && check != 1 {
		name := xzCheckNames[check]
		if name == "" {
			name = fmt.Sprintf("ID %d", check)
		}
		s.warn(start, WarnXZCheck, "xz integrity check %s: the kernel's xz decoder supports only none and CRC32 (xz --check=crc32)", name)
	}
	csize := xzCheckSize(check)
	type record struct{ unpadded, uncompressed int64 }
	var blocks []record
	for {
		off := a.pos
		b, err := take(a, 1, "xz block header")
		if err != nil {
			return 0, err
		}
		if b[0] == 0 {
			break // index indicator
		}
		hsize := (int(b[0]) + 1) * 4
		hdr, err := a.Peek(hsize - 1)
		if len(hdr) < hsize-1 {
			return 0, truncated(a.pos, "xz block header", err)
		}
		full := append([]byte{b[0]}, hdr...)
		a.Discard(int64(hsize - 1))
		if crc32.ChecksumIEEE(full[:hsize-4]) != binary.LittleEndian.Uint32(full[hsize-4:]) {
			return 0, fmt.Errorf("xz block header at offset %d: CRC32 mismatch: %w", off, ErrFormat)
		}
		bflags := full[1]
		rd := bytes.NewReader(full[2 : hsize-4])
		comp, uncomp := int64(-1), int64(-1)
		if bflags&0x40 != 0 {
			if comp, err = xzVarint(rd); err != nil {
				return 0, fmt.Errorf("xz block header at offset %d: %w", off, err)
			}
		}
		if bflags&0x80 != 0 {
			if uncomp, err = xzVarint(rd); err != nil {
				return 0, fmt.Errorf("xz block header at offset %d: %w", off, err)
			}
		}
		var lastFilter int64
		var filters []xzFilter
		for i := 0; i <= int(bflags&3); i++ {
			id, err := xzVarint(rd)
			if err != nil {
				return 0, fmt.Errorf("xz block header at offset %d: %w", off, err)
			}
			n, err := xzVarint(rd)
			if err != nil || n > int64(rd.Len()) {
				return 0, fmt.Errorf("xz block header at offset %d: filter properties: %w", off, ErrFormat)
			}
			props := make([]byte, n)
			rd.Read(props)
			if id == xzFilterLZMA2 && n == 1 {
				if d := lzma2Dict(props[0]); d > s.dict {
					s.dict = d
				}
			}
			filters = append(filters, xzFilter{id, props})
			lastFilter = id
		}
		dataStart := a.pos
		if comp >= 0 {
			if err := skip(a, comp, "xz block data"); err != nil {
				return 0, err
			}
		} else {
			if lastFilter != 0x21 {
				return 0, fmt.Errorf("xz block at offset %d: no compressed size and last filter %#x is not LZMA2: %w", off, lastFilter, ErrFormat)
			}
			n, err := skipLZMA2(a)
			if err != nil {
				return 0, err
			}
			if uncomp < 0 {
				uncomp = n
			}
			comp = a.pos - dataStart
		}
		unpadded := int64(hsize) + comp + csize
		if pad := (4 - comp&3) & 3; pad > 0 {
			q, err := take(a, int(pad), "xz block padding")
			if err != nil {
				return 0, err
			}
			if !allZero(q) {
				return 0, fmt.Errorf("xz block padding at offset %d: not zero: %w", a.pos-pad, ErrFormat)
			}
		}
		if err := skip(a, csize, "xz block check"); err != nil {
			return 0, err
		}
		blocks = append(blocks, record{unpadded, uncomp})
		s.xzBlocks = append(s.xzBlocks, xzBlock{data: dataStart, size: comp, check: a.pos - csize, filters: filters})
	}
	// Index (§4): indicator (already read), count, records, padding, CRC32.
	idx := a.pos - 1
	count, err := xzVarintAt(a)
	if err != nil {
		return 0, err
	}
	if count != int64(len(blocks)) {
		return 0, fmt.Errorf("xz index at offset %d: %d records for %d blocks: %w", idx, count, len(blocks), ErrFormat)
	}
	var total int64
	for i := range count {
		u, err := xzVarintAt(a)
		if err != nil {
			return 0, err
		}
		v, err := xzVarintAt(a)
		if err != nil {
			return 0, err
		}
		if u != blocks[i].unpadded || (blocks[i].uncompressed >= 0 && v != blocks[i].uncompressed) {
			return 0, fmt.Errorf("xz index at offset %d: record %d does not match its block: %w", idx, i, ErrFormat)
		}
		total += v
	}
	if pad := (4 - (a.pos-idx)&3) & 3; pad > 0 {
		if err := skip(a, pad, "xz index padding"); err != nil {
			return 0, err
		}
	}
	if err := skip(a, 4, "xz index CRC32"); err != nil {
		return 0, err
	}
	indexSize := a.pos - idx
	foot, err := take(a, 12, "xz stream footer")
	if err != nil {
		return 0, err
	}
	backward := (int64(binary.LittleEndian.Uint32(foot[4:8])) + 1) * 4
	if string(foot[10:12]) != "YZ" || foot[8] != flags[0] || foot[9] != flags[1] || backward != indexSize {
		return 0, fmt.Errorf("xz stream footer at offset %d: does not match header and index: %w", a.pos-12, ErrFormat)
	}
	s.UncompressedSize = total
	s.xzCheck = check
	return a.pos, nil
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
	data, size int64 // compressed data
	check      int64 // offset of the block's check
	filters    []xzFilter
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
