package segments

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// xzBlocksReader decodes the blocks of an xz stream that parseXZ mapped:
// LZMA2, alone or preceded by the x86 BCJ filter, as the kernel's xz decoder
// supports (lib/xz, xz_dec_bcj.c). Each block's size and check are
// verified. A block's dictionary is allocated no larger than the block's
// uncompressed size and the decompression budget left: the stream header's
// dictionary size (8 MiB for xz -6) is an upper bound of the distances, so
// a small member costs a small dictionary.
type xzBlocksReader struct {
	ra     io.ReaderAt
	blocks []xzBlock
	check  byte
	maxDic int64 // the largest dictionary we allocate
	budget int64 // decompressed bytes the caller will read at most
	in     *decoders
	i      int
	cur    io.Reader
	n      int64 // bytes of the current block so far
	sum    hash.Hash
}

func (x *xzBlocksReader) Read(p []byte) (int, error) {
	for {
		if x.cur == nil {
			if x.i == len(x.blocks) {
				return 0, io.EOF
			}
			if err := x.open(x.blocks[x.i]); err != nil {
				return 0, err
			}
		}
		n, err := x.cur.Read(p)
		x.n += int64(n)
		if x.sum != nil {
			x.sum.Write(p[:n])
		}
		if err == io.EOF {
			if err := x.verify(x.blocks[x.i]); err != nil {
				return n, err
			}
			x.cur = nil
			x.i++
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (x *xzBlocksReader) open(b xzBlock) error {
	f := b.filters
	last := f[len(f)-1]
	if last.id != xzFilterLZMA2 || len(last.props) != 1 {
		return fmt.Errorf("xz block at offset %d: last filter %#x is not LZMA2: %w", b.data, last.id, ErrFormat)
	}
	dict := lzma2Dict(last.props[0])
	if b.uncompressed >= 0 {
		dict = min(dict, b.uncompressed)
	}
	dict = min(dict, x.budget+1)
	if dict > x.maxDic {
		return fmt.Errorf("xz block at offset %d: LZMA2 dictionary of %d bytes, above the %d we allocate: %w", b.data, dict, x.maxDic, ErrLimit)
	}
	// Buffered: the LZMA2 decoder reads a few bytes at a time.
	lz, err := lzma.Reader2Config{DictCap: int(max(dict, lzma.MinDictCap))}.NewReader2(x.in.input(io.NewSectionReader(x.ra, b.data, b.size)))
	if err != nil {
		return fmt.Errorf("xz block at offset %d: %w", b.data, err)
	}
	var r io.Reader = lz
	for i := len(f) - 2; i >= 0; i-- {
		if f[i].id != xzFilterX86 || (len(f[i].props) != 0 && len(f[i].props) != 4) {
			return fmt.Errorf("xz block at offset %d: filter %#x: %w", b.data, f[i].id, ErrUnsupportedFilter)
		}
		var start uint32
		if len(f[i].props) == 4 {
			start = binary.LittleEndian.Uint32(f[i].props)
		}
		r = &bcjX86{r: r, pos: start, buf: make([]byte, 0, 64<<10)}
	}
	x.cur = r
	x.n = 0
	switch x.check {
	case 0:
		x.sum = nil
	case 1:
		x.sum = crc32.NewIEEE()
	case 4:
		x.sum = crc64.New(crc64.MakeTable(crc64.ECMA))
	case 10:
		x.sum = sha256.New()
	default:
		return fmt.Errorf("xz check ID %d: %w", x.check, ErrUnsupportedFilter)
	}
	return nil
}

func (x *xzBlocksReader) verify(b xzBlock) error {
	if b.uncompressed >= 0 && x.n != b.uncompressed {
		return fmt.Errorf("xz block at offset %d: %d bytes decompressed, the index says %d: %w", b.data, x.n, b.uncompressed, ErrFormat)
	}
	if x.sum == nil {
		return nil
	}
	want := make([]byte, xzCheckSize(x.check))
	if _, err := x.ra.ReadAt(want, b.check); err != nil {
		return fmt.Errorf("xz block check at offset %d: %w", b.check, err)
	}
	got := x.sum.Sum(nil)
	if x.check == 1 || x.check == 4 {
		// CRC32 and CRC64 are stored little-endian.
		for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
			got[i], got[j] = got[j], got[i]
		}
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("xz block at offset %d: check mismatch: %w", b.data, ErrFormat)
	}
	return nil
}

// bcjX86 undoes the x86 BCJ filter: relative CALL and JMP targets that the
// encoder made absolute are made relative again. It is a transcription of
// bcj_x86() in xz-embedded's xz_dec_bcj.c (public domain), which the kernel
// uses.
type bcjX86 struct {
	r        io.Reader
	buf      []byte // buf[:ready] is filtered, buf[ready:] waits for more input
	ready    int
	pos      uint32 // position of buf[0] in the uncompressed stream
	prevMask uint32
	eof      bool
	err      error
}

var (
	bcjAllowed = [8]bool{true, true, true, false, true, false, false, false}
	bcjBitNum  = [8]uint32{0, 1, 2, 2, 3, 3, 3, 3}
)

func bcjMSByte(b byte) bool { return b == 0x00 || b == 0xFF }

func (b *bcjX86) Read(p []byte) (int, error) {
	for b.ready == 0 {
		if b.eof {
			if len(b.buf) == 0 {
				return 0, b.errOrEOF()
			}
			b.ready = len(b.buf) // the last bytes pass unfiltered
			break
		}
		if len(b.buf) == cap(b.buf) {
			return 0, fmt.Errorf("bcj: buffer full: %w", ErrFormat)
		}
		n, err := b.r.Read(b.buf[len(b.buf):cap(b.buf)])
		b.buf = b.buf[:len(b.buf)+n]
		if err != nil {
			b.eof = true
			if err != io.EOF {
				b.err = err
			}
		}
		b.ready = b.filter(b.buf)
		b.pos += uint32(b.ready)
	}
	n := copy(p, b.buf[:b.ready])
	rest := copy(b.buf, b.buf[n:])
	b.buf = b.buf[:rest]
	b.ready -= n
	return n, nil
}

func (b *bcjX86) errOrEOF() error {
	if b.err != nil {
		return b.err
	}
	return io.EOF
}

// filter converts buf in place and returns how many bytes are final.
func (b *bcjX86) filter(buf []byte) int {
	if len(buf) <= 4 {
		return 0
	}
	size := len(buf) - 4
	prevPos := -1
	prevMask := b.prevMask
	i := 0
	for ; i < size; i++ {
		if buf[i]&0xFE != 0xE8 {
			continue
		}
		if d := i - prevPos; d > 3 {
			prevMask = 0
		} else {
			prevMask = (prevMask << (d - 1)) & 7
			if prevMask != 0 {
				c := buf[i+4-int(bcjBitNum[prevMask])]
				if !bcjAllowed[prevMask] || bcjMSByte(c) {
					prevPos = i
					prevMask = prevMask<<1 | 1
					continue
				}
			}
		}
		prevPos = i
		if bcjMSByte(buf[i+4]) {
			src := binary.LittleEndian.Uint32(buf[i+1:])
			var dest uint32
			for {
				dest = src - (b.pos + uint32(i) + 5)
				if prevMask == 0 {
					break
				}
				j := bcjBitNum[prevMask] * 8
				if !bcjMSByte(byte(dest >> (24 - j))) {
					break
				}
				src = dest ^ (1<<(32-j) - 1)
			}
			dest &= 0x01FFFFFF
			dest |= 0 - (dest & 0x01000000)
			binary.LittleEndian.PutUint32(buf[i+1:], dest)
			i += 4
		} else {
			prevMask = prevMask<<1 | 1
		}
	}
	if d := i - prevPos; d > 3 {
		b.prevMask = 0
	} else {
		b.prevMask = prevMask << (d - 1)
	}
	return i
}
