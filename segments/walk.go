package segments

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// Segment is one part of an image: an uncompressed cpio archive, one
// compressed member, leading padding or an unparsed tail. Segments tile the
// image: each starts where the previous one ends, and Size includes the NUL
// padding that follows the segment's data.
type Segment struct {
	Index   int
	Offset  int64 // offset of the first byte in the image
	Size    int64 // bytes, including the trailing NUL padding
	Padding int64 // trailing NUL bytes included in Size
	Kind    string

	// UncompressedSize is the size of the (decompressed) cpio data, or -1
	// when it is not known without decompressing.
	UncompressedSize int64
	// Scanned reports whether the cpio data was walked: only then are
	// Entries, Trailer and the content warnings known.
	Scanned bool
	Entries int  // cpio entries, not counting trailers
	Trailer bool // the cpio data ends with TRAILER!!!
	// Files holds the entries' headers when the Reader keeps them.
	Files []*Header
	// Warnings are what the kernel would reject in this segment.
	Warnings []Warning

	xzBlocks []xzBlock
	xzCheck  byte
	lzoFlags uint32 // lzo: header flags
	lzoBody  int64  // lzo: offset of the first block
}

// DataSize returns the size of the segment without its trailing padding.
func (s *Segment) DataSize() int64 { return s.Size - s.Padding }

func (s *Segment) warn(off int64, code, format string, args ...any) {
	s.Warnings = append(s.Warnings, Warning{Offset: off, Code: code, Message: fmt.Sprintf(format, args...)})
}

// Reader walks the segments of an image.
type Reader struct {
	ra   io.ReaderAt
	size int64
	lim  Limits

	pos       int64
	index     int
	decoded   int64 // decompressed bytes so far, against lim.MaxDecompressed
	headers   int   // cpio headers so far, trailers included, against lim.MaxEntries
	keep      bool
	onEntry   func(*Segment, *Header) // instead of keep, when set
	unknownAt error                   // set when the next segment must be an unparsed tail
	err       error

	budget    int64     // decompressed bytes allowed (Limits.budget)
	budgetWhy string    // the limit that sets budget
	deadline  time.Time // from Limits.MaxDuration
	dec       decoders  // reused from member to member
	a         *atReader // reused from segment to segment (at)
}

// at returns the Reader's atReader positioned at off. Its buffer is kept
// from segment to segment, and bytes it already holds are not read again:
// an image of many small members costs one read per buffer, not per member.
func (r *Reader) at(off int64) *atReader {
	a := r.a
	if a == nil {
		a = &atReader{}
		r.a = a
	} else if a.err == nil && a.ra == r.ra && off >= a.boff && off < a.boff+int64(a.w) {
		a.r, a.pos, a.small = int(off-a.boff), off, false
		return a
	}
	*a = atReader{ra: r.ra, pos: off, end: r.size, boff: off, buf: a.buf[:0]}
	return a
}

// NewReader returns a Reader of the image held in the first size bytes of
// r. The Reader reads r with ReadAt only and never holds more than a small
// buffer of the image in memory.
func NewReader(r io.ReaderAt, size int64, lim Limits) *Reader {
	rd := &Reader{ra: r, size: size, lim: lim.withDefaults()}
	rd.budget, rd.budgetWhy = rd.lim.budget(size)
	if lim.MaxDuration > 0 {
		rd.deadline = time.Now().Add(lim.MaxDuration)
	}
	return rd
}

// KeepEntries makes the Reader keep the headers of the cpio entries it
// walks in Segment.Files (Next for cpio, gzip, bzip2 and lzma segments,
// Scan for the others).
func (r *Reader) KeepEntries(keep bool) { r.keep = keep }

// Next returns the next segment, or io.EOF after the last one. Problems with
// the image's bytes do not make errors: they become warnings and an
// "unknown" segment. Errors are a failed ReadAt (*ReadError) or a reached
// limit (ErrLimit); they name the offset and are sticky.
func (r *Reader) Next() (*Segment, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.pos >= r.size {
		return nil, io.EOF
	}
	if err := r.nextAllowed(); err != nil {
		r.err = err
		return nil, err
	}
	s, err := r.next()
	if err != nil {
		r.err = err
		return nil, err
	}
	r.index++
	r.pos = s.Offset + s.Size
	return s, nil
}

// nextAllowed returns an ErrLimit when the walk may not go on to another
// segment.
func (r *Reader) nextAllowed() error {
	if r.index >= r.lim.MaxSegments {
		return fmt.Errorf("segment at offset %d: more than %d segments (limit MaxSegments): %w", r.pos, r.lim.MaxSegments, ErrLimit)
	}
	if err := pastDeadline(r.deadline); err != nil {
		return fmt.Errorf("segment at offset %d: %w", r.pos, err)
	}
	return nil
}

func (r *Reader) next() (*Segment, error) {
	start := r.pos
	s := &Segment{Index: r.index, Offset: start, UncompressedSize: -1}
	if r.unknownAt != nil {
		r.unknown(s, r.unknownAt)
		r.unknownAt = nil
		return s, nil
	}
	a := r.at(start)
	if start == 0 {
		n, err := a.skipNULs()
		if err != nil {
			return nil, err
		}
		if n > 0 {
			s.Kind, s.Size, s.Padding = KindPadding, n, n
			return s, nil
		}
	}
	end, err := r.parse(a, s)
	if err != nil {
		if fatal(err) {
			return nil, err
		}
		r.unknown(s, err)
		return s, nil
	}
	if end != a.pos {
		a = r.at(end)
	}
	pad, err := a.skipNULs()
	if err != nil {
		return nil, err
	}
	s.Padding = pad
	s.Size = end + pad - start
	if s.Kind == KindLZ4 && !hasWarning(s, WarnLZ4Frame) && end+pad < r.size {
		s.warn(start, WarnLZ4NotLast, "lz4 legacy data followed by more data at %d: the kernel's unlz4 only stops at the end of the image or at NUL padding", end+pad)
	}
	return s, nil
}

// unknown makes s the unparsed tail from s.Offset to the end of the image.
func (r *Reader) unknown(s *Segment, why error) {
	s.Kind = KindUnknown
	s.Size = r.size - s.Offset
	s.Padding = 0
	s.Scanned = false
	s.Entries, s.Trailer, s.Files, s.UncompressedSize = 0, false, nil, -1
	s.warn(s.Offset, WarnUnknownBytes, "%d bytes not parsed: %v", s.Size, why)
}

// fatal reports whether err ends the walk: a failed read of the image
// (*ReadError) or a reached limit (ErrLimit). Other errors are about the
// image's bytes and become warnings or an unknown segment.
func fatal(err error) bool {
	var re *ReadError
	return errors.As(err, &re) || errors.Is(err, ErrLimit)
}

// cpioLimits returns the limits for the next cpio stream: what is left of
// the image's budget of headers.
func (r *Reader) cpioLimits() Limits {
	lim := r.lim
	lim.MaxEntries -= r.headers
	return lim
}

// walkCpio reads the entries of cr up to its end, keeping their headers in
// s.Files when the Reader keeps entries. It returns the number of entries
// (trailers not counted) and the error that ended the walk, nil at the end
// of the stream. The headers cr read count against the image's budget; the
// deadline is checked every 4096 entries.
func (r *Reader) walkCpio(cr *CpioReader, s *Segment) (int, error) {
	defer func() { r.headers += cr.headers }()
	for n := 1; ; n++ {
		if n%4096 == 0 {
			if err := pastDeadline(r.deadline); err != nil {
				return cr.Entries(), fmt.Errorf("cpio entry at offset %d: %w", cr.pos, err)
			}
		}
		h, err := cr.Next()
		if err == io.EOF {
			return cr.Entries(), nil
		}
		if err != nil {
			return cr.Entries(), err
		}
		switch {
		case r.onEntry != nil:
			r.onEntry(s, h)
		case r.keep:
			s.Files = append(s.Files, h)
		}
	}
}

func hasWarning(s *Segment, code string) bool {
	for _, w := range s.Warnings {
		if w.Code == code {
			return true
		}
	}
	return false
}

// Magic numbers, as the kernel's decompress_method() (lib/decompress.c)
// knows them, plus the ones it does not know but that we recognise.
var (
	magicGzip      = []byte{0x1f, 0x8b}
	magicBzip2     = []byte("BZh")
	magicLZMA      = []byte{0x5d, 0x00, 0x00}
	magicXZ        = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicLZO       = []byte{0x89, 'L', 'Z', 'O', 0x00, '\r', '\n', 0x1a, '\n'}
	magicLZ4Legacy = []byte{0x02, 0x21, 0x4c, 0x18}
	magicLZ4Frame  = []byte{0x04, 0x22, 0x4d, 0x18}
	magicZstd      = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

func isSkippable(p []byte) bool {
	return len(p) >= 4 && p[0]&0xf0 == 0x50 && p[1] == 0x2a && p[2] == 0x4d && p[3] == 0x18
}

// parse identifies the segment at a's position, sets s.Kind and returns the
// offset where its data ends. An error means the bytes are not a valid
// segment (or a *ReadError / ErrLimit).
func (r *Reader) parse(a *atReader, s *Segment) (int64, error) {
	start := a.pos
	p, err := a.Peek(16)
	if len(p) == 0 {
		return 0, err
	}
	switch {
	case bytes.HasPrefix(p, []byte(magicNewc)) || bytes.HasPrefix(p, []byte(magicCRC)):
		s.Kind = KindCpio
		return r.parseCpio(a, s)
	case p[0] == '0' && start&3 == 0:
		s.warn(start, WarnCpioMagic, "'0' at an aligned offset starts a cpio header for the kernel, but %q is not a newc magic", p[:min(6, len(p))])
		return 0, fmt.Errorf("no cpio magic at offset %d: %w", start, ErrHeader)
	case bytes.HasPrefix(p, magicGzip):
		s.Kind = KindGzip
		return r.parseGzip(a, s)
	case bytes.HasPrefix(p, magicBzip2):
		s.Kind = KindBzip2
		return r.parseBzip2(a, s)
	case bytes.HasPrefix(p, magicLZMA):
		s.Kind = KindLZMA
		return r.parseLZMA(a, s)
	case bytes.HasPrefix(p, magicXZ):
		s.Kind = KindXZ
		return parseXZ(a, s)
	case bytes.HasPrefix(p, magicLZO):
		s.Kind = KindLZO
		return parseLZO(a, s)
	case bytes.HasPrefix(p, magicLZ4Legacy):
		s.Kind = KindLZ4
		return parseLZ4Legacy(a, s)
	case bytes.HasPrefix(p, magicLZ4Frame):
		s.Kind = KindLZ4
		s.warn(start, WarnLZ4Frame, "lz4 frame format: the kernel only decompresses the legacy format (lz4 -l)")
		return parseLZ4Frame(a, s)
	case bytes.HasPrefix(p, magicZstd) || isSkippable(p):
		s.Kind = KindZstd
		return parseZstd(a, s)
	}
	return 0, fmt.Errorf("no known magic at offset %d (% x)", start, p[:min(8, len(p))])
}

func (r *Reader) parseCpio(a *atReader, s *Segment) (int64, error) {
	start := a.pos
	if start&3 != 0 {
		s.warn(start, WarnMisalignedCpio, "uncompressed cpio at offset %d, not a multiple of 4: the kernel looks for cpio headers only at aligned offsets", start)
	}
	cr := newSegmentCpio(a, r.cpioLimits())
	n, err := r.walkCpio(cr, s)
	if err != nil {
		if fatal(err) || cr.goodEnd == start {
			return 0, err
		}
		// Keep the good entries; the rest becomes an unparsed tail.
		r.unknownAt = err
	}
	s.Entries = n
	s.Warnings = append(s.Warnings, cr.warns...)
	s.Scanned = true
	s.Trailer = cr.trailer
	s.UncompressedSize = cr.goodEnd - start
	return cr.goodEnd, nil
}
