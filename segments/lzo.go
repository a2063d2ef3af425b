package segments

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"hash/crc32"
	"io"
)

var errLZO = errors.New("lzo1x: corrupt data")

// lzo1xDecompress decompresses one LZO1X block from src into dst, which
// must have exactly the block's decompressed size. It follows the kernel's
// lzo1x_decompress_safe() (lib/lzo/lzo1x_decompress_safe.c, classic
// bitstream), checking every read and write against the buffers.
func lzo1xDecompress(src, dst []byte) error {
	ip, op := 0, 0
	var t, next, mpos int
	state := 0
	// extend reads the extended length encoding: zero bytes each adding
	// 255, then one byte added to base.
	extend := func(base int) (int, bool) {
		n := 0
		for ip < len(src) && src[ip] == 0 {
			ip++
			n += 255
			if n > 1<<30 {
				return 0, false
			}
		}
		if ip >= len(src) {
			return 0, false
		}
		n += base + int(src[ip])
		ip++
		return n, true
	}
	literals := func(n int) bool {
		if n > len(src)-ip || n > len(dst)-op {
			return false
		}
		copy(dst[op:], src[ip:ip+n])
		ip += n
		op += n
		return true
	}
	match := func(from, n int) bool {
		if from < 0 || from >= op || n > len(dst)-op {
			return false
		}
		// The match may overlap what it writes: dst[from:op] repeats with
		// period op-from, so copying all of it (which doubles each time)
		// continues the repetition.
		for end := op + n; op < end; {
			op += copy(dst[op:end], dst[from:op])
		}
		return true
	}
	le16 := func() (int, bool) {
		if len(src)-ip < 2 {
			return 0, false
		}
		v := int(binary.LittleEndian.Uint16(src[ip:]))
		ip += 2
		return v, true
	}
	if len(src) == 0 {
		return errLZO
	}
	if src[0] > 17 {
		t = int(src[0]) - 17
		ip++
		if t < 4 {
			if !literals(t) {
				return errLZO
			}
			state = t
		} else {
			if !literals(t) {
				return errLZO
			}
			state = 4
		}
	}
	for {
		if ip >= len(src) {
			return errLZO
		}
		t = int(src[ip])
		ip++
		var n int
		switch {
		case t < 16 && state == 0:
			if t == 0 {
				var ok bool
				if t, ok = extend(15); !ok {
					return errLZO
				}
			}
			if !literals(t + 3) {
				return errLZO
			}
			state = 4
			continue
		case t < 16 && state != 4:
			if ip >= len(src) {
				return errLZO
			}
			next = t & 3
			mpos = op - 1 - t>>2 - int(src[ip])<<2
			ip++
			n = 2
		case t < 16:
			if ip >= len(src) {
				return errLZO
			}
			next = t & 3
			mpos = op - (1 + 0x0800) - t>>2 - int(src[ip])<<2
			ip++
			n = 3
		case t >= 64:
			if ip >= len(src) {
				return errLZO
			}
			next = t & 3
			mpos = op - 1 - (t>>2)&7 - int(src[ip])<<3
			ip++
			n = t>>5 - 1 + 2
		case t >= 32:
			n = t&31 + 2
			if n == 2 {
				var ok bool
				if n, ok = extend(31 + 2); !ok {
					return errLZO
				}
			}
			v, ok := le16()
			if !ok {
				return errLZO
			}
			mpos = op - 1 - v>>2
			next = v & 3
		default: // 16..31
			mpos = op - (t&8)<<11
			n = t&7 + 2
			if n == 2 {
				var ok bool
				if n, ok = extend(7 + 2); !ok {
					return errLZO
				}
			}
			v, ok := le16()
			if !ok {
				return errLZO
			}
			mpos -= v >> 2
			next = v & 3
			if mpos == op {
				// End of stream: 0x11 0x00 0x00.
				if n != 3 || op != len(dst) || ip != len(src) {
					return errLZO
				}
				return nil
			}
			mpos -= 0x4000
		}
		if !match(mpos, n) || !literals(next) {
			return errLZO
		}
		state = next
	}
}

// lzoReader decompresses the blocks of an lzop file whose header parseLZO
// has already read.
type lzoReader struct {
	r     *bufio.Reader
	flags uint32
	src   []byte
	dst   []byte
	buf   []byte // decompressed data not yet returned
	err   error
}

func newLZOReader(r io.Reader, flags uint32) *lzoReader {
	return &lzoReader{r: bufio.NewReaderSize(r, 256<<10), flags: flags}
}

// reset makes z read the blocks of another lzop file, keeping its buffers.
func (z *lzoReader) reset(r io.Reader, flags uint32) {
	z.r.Reset(r)
	z.flags, z.buf, z.err = flags, nil, nil
}

func (z *lzoReader) Read(p []byte) (int, error) {
	for len(z.buf) == 0 {
		if z.err != nil {
			return 0, z.err
		}
		z.err = z.block()
	}
	n := copy(p, z.buf)
	z.buf = z.buf[n:]
	return n, nil
}

func (z *lzoReader) block() error {
	var h [8]byte
	if _, err := io.ReadFull(z.r, h[:4]); err != nil {
		return fmt.Errorf("lzop block size: %w", eofIsUnexpected(err))
	}
	dlen := int(binary.BigEndian.Uint32(h[:4]))
	if dlen == 0 {
		return io.EOF
	}
	if _, err := io.ReadFull(z.r, h[4:]); err != nil {
		return fmt.Errorf("lzop block size: %w", eofIsUnexpected(err))
	}
	slen := int(binary.BigEndian.Uint32(h[4:]))
	if dlen > lzoMaxBlock || slen > dlen {
		return fmt.Errorf("lzop block sizes %d/%d: %w", slen, dlen, errLZO)
	}
	var sums []uint32
	n, nc := lzoSums(z.flags)
	if slen < dlen {
		n += nc
	}
	for range n {
		if _, err := io.ReadFull(z.r, h[:4]); err != nil {
			return fmt.Errorf("lzop block checksum: %w", eofIsUnexpected(err))
		}
		sums = append(sums, binary.BigEndian.Uint32(h[:4]))
	}
	if cap(z.src) < slen {
		z.src = make([]byte, slen)
	}
	src := z.src[:slen]
	if _, err := io.ReadFull(z.r, src); err != nil {
		return fmt.Errorf("lzop block: %w", eofIsUnexpected(err))
	}
	out := src
	if slen < dlen {
		if cap(z.dst) < dlen {
			z.dst = make([]byte, dlen)
		}
		out = z.dst[:dlen]
		if err := lzo1xDecompress(src, out); err != nil {
			return err
		}
	}
	// The decompressed data's checksums come first (lzop's order).
	i := 0
	if z.flags&lzoAdler32D != 0 {
		if adler32.Checksum(out) != sums[i] {
			return fmt.Errorf("lzop block: Adler-32 mismatch: %w", errLZO)
		}
		i++
	}
	if z.flags&lzoCRC32D != 0 {
		if crc32.ChecksumIEEE(out) != sums[i] {
			return fmt.Errorf("lzop block: CRC32 mismatch: %w", errLZO)
		}
	}
	z.buf = out
	return nil
}
