package segments

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz/lzma"
)

// maxDict bounds the dictionary an lzma or xz decoder and the window a zstd
// decoder may allocate: 128 MiB, zstd's default decoder limit
// (ZSTD_WINDOWLOG_LIMIT_DEFAULT 27), which zstd --ultra -22 stays within; xz
// -9 and lzma -9 use 64 MiB. An xz or lzma dictionary is first lowered to
// what is left of the image's decompression budget (and for xz to the
// block's size): a dictionary larger than the output is never needed.
const maxDict = 128 << 20

// decReader counts what a decoder produces, enforces the image's budget of
// decompressed bytes and the deadline, and remembers the decoder's own
// error, so that it can be told apart from a problem in the cpio data.
type decReader struct {
	r        io.Reader
	n        int64
	max      int64
	why      string // the limit that sets max
	deadline time.Time
	decErr   error
	limit    error
	eof      bool
}

// Read is sticky at the end: some decoders (compress/bzip2) misbehave when
// read again after they reported the end of their stream.
func (d *decReader) Read(p []byte) (int, error) {
	if d.limit != nil {
		return 0, d.limit
	}
	if d.decErr != nil {
		return 0, d.decErr
	}
	if d.eof {
		return 0, io.EOF
	}
	if err := pastDeadline(d.deadline); err != nil {
		d.limit = fmt.Errorf("after %d decompressed bytes: %w", d.n, err)
		return 0, d.limit
	}
	if room := d.max - d.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := d.r.Read(p)
	d.n += int64(n)
	if d.n > d.max {
		d.limit = fmt.Errorf("more than %d decompressed bytes (limit %s): %w", d.max, d.why, ErrLimit)
		return 0, d.limit
	}
	if err == io.EOF {
		d.eof = true
	} else if err != nil {
		d.decErr = err
	}
	return n, err
}

// pastDeadline returns an ErrLimit once the deadline (if any) has passed.
func pastDeadline(deadline time.Time) error {
	if deadline.IsZero() || time.Now().Before(deadline) {
		return nil
	}
	return fmt.Errorf("the walk took longer than its time limit (MaxDuration): %w", ErrLimit)
}

// decoders are kept by a Reader between members, so that an image of many
// small members does not pay for new decoder state and buffers each time.
type decoders struct {
	in   *bufio.Reader // between the image and a decoder
	cpio *bufio.Reader // between a decoder and the cpio walk
	gz   *gzip.Reader
	zstd *zstd.Decoder
	lz4  *lz4.Reader
	lzo  *lzoReader
}

func (dc *decoders) input(r io.Reader) *bufio.Reader {
	if dc.in == nil {
		dc.in = bufio.NewReaderSize(r, 256<<10)
	} else {
		dc.in.Reset(r)
	}
	return dc.in
}

// scanStream walks the cpio data that dec produces for segment s and
// records entries, trailer, uncompressed size and the content warnings. It
// returns the decoder's error, or a *ReadError or ErrLimit; problems of the
// cpio data are warnings.
func (r *Reader) scanStream(s *Segment, dec io.Reader) error {
	d := &decReader{r: dec, max: r.budget - r.decoded, why: r.budgetWhy, deadline: r.deadline}
	defer func() { r.decoded += d.n }()
	if r.dec.cpio == nil {
		r.dec.cpio = bufio.NewReaderSize(d, 64<<10)
	} else {
		r.dec.cpio.Reset(d)
	}
	cr := &CpioReader{src: bufSource{r.dec.cpio}, lim: r.cpioLimits()}
	s.Files = nil
	n, cerr := r.walkCpio(cr, s)
	if cerr != nil && d.decErr == nil && d.limit == nil {
		io.Copy(io.Discard, d) // find the end of the member
	}
	switch {
	case d.limit != nil:
		return fmt.Errorf("%s segment at offset %d: %w", s.Kind, s.Offset, d.limit)
	case d.decErr != nil:
		return fmt.Errorf("%s segment at offset %d: %w", s.Kind, s.Offset, d.decErr)
	case errors.Is(cerr, ErrLimit):
		return fmt.Errorf("%s segment at offset %d: %w", s.Kind, s.Offset, cerr)
	case errors.Is(cerr, io.ErrUnexpectedEOF):
		s.warn(s.Offset, WarnJunkAtEnd, "decompressed data ends inside a cpio entry (%v): the kernel fails with \"junk at the end of compressed archive\"", cerr)
	case cerr != nil:
		s.warn(s.Offset, WarnJunkWithin, "decompressed data at offset %d is not cpio (%v): the kernel fails with \"junk within compressed archive\"", cr.goodEnd, cerr)
	}
	s.Warnings = append(s.Warnings, cr.warns...)
	s.Entries = n
	s.Trailer = cr.trailer
	s.UncompressedSize = d.n
	s.Scanned = true
	return nil
}

// parseGzip finds the end of one gzip member by decoding it (RFC 1952): the
// decoder reads a byte at a time from a, so a stops where the member does.
func (r *Reader) parseGzip(a *atReader, s *Segment) (int64, error) {
	start := a.pos
	p, err := a.Peek(10)
	if len(p) < 10 {
		return 0, truncated(start, "gzip header", err)
	}
	if p[2] != 8 {
		return 0, fmt.Errorf("gzip header at offset %d: method %d is not deflate: %w", start, p[2], ErrFormat)
	}
	var extra []string
	for _, f := range []struct {
		bit  byte
		name string
	}{{0x04, "FEXTRA"}, {0x10, "FCOMMENT"}, {0x02, "FHCRC"}} {
		if p[3]&f.bit != 0 {
			extra = append(extra, f.name)
		}
	}
	if len(extra) > 0 {
		s.warn(start, WarnGzipHeader, "gzip header flags %v: the kernel's gunzip skips only the file name (FNAME) and fails on these", extra)
	}
	br := r.dec.input(a)
	if r.dec.gz == nil {
		r.dec.gz = new(gzip.Reader)
	}
	zr := r.dec.gz
	if err := zr.Reset(br); err != nil {
		return 0, fmt.Errorf("gzip header at offset %d: %w", start, err)
	}
	zr.Multistream(false)
	if err := r.scanStream(s, zr); err != nil {
		return 0, err
	}
	return consumed(a, br), nil
}

// consumed returns the offset up to which a decoder reading through br has
// consumed a. The decoders take bytes from a bufio.Reader one at a time,
// as they need them (which is also their fast path), so this is where
// their stream ends.
func consumed(a *atReader, br *bufio.Reader) int64 {
	return a.pos - int64(br.Buffered())
}

// bzip2End turns the error compress/bzip2 returns when a stream is followed
// by something other than another stream into io.EOF, and remembers that it
// has read two bytes past the end.
type bzip2End struct {
	r       io.Reader
	overrun int64
}

func (b *bzip2End) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	var se bzip2.StructuralError
	if errors.As(err, &se) && string(se) == "bad magic value in continuation file" {
		b.overrun = 2
		err = io.EOF
	}
	return n, err
}

// parseBzip2 finds the end of a bzip2 stream by decoding it. Concatenated
// bzip2 streams are decoded (and reported) as one segment.
func (r *Reader) parseBzip2(a *atReader, s *Segment) (int64, error) {
	br := r.dec.input(a)
	b := &bzip2End{r: bzip2.NewReader(br)}
	if err := r.scanStream(s, b); err != nil {
		return 0, err
	}
	return consumed(a, br) - b.overrun, nil
}

// parseLZMA finds the end of a legacy .lzma stream by decoding it.
func (r *Reader) parseLZMA(a *atReader, s *Segment) (int64, error) {
	start := a.pos
	br := r.dec.input(a)
	zr, err := r.lzmaReader(br)
	if err != nil {
		return 0, fmt.Errorf("lzma header at offset %d: %w", start, err)
	}
	if err := r.scanStream(s, zr); err != nil {
		return 0, err
	}
	return consumed(a, br), nil
}

// lzmaReader returns a decoder of the .lzma stream in br. The header's
// dictionary size only bounds the match distances, and the decoder never
// gets to produce more than what is left of the image's budget: a larger
// dictionary (lzma -9 writes 64 MiB even for a small file) is lowered to
// that before it is allocated. Above maxDict it is ErrLimit.
func (r *Reader) lzmaReader(br *bufio.Reader) (io.Reader, error) {
	hdr, err := br.Peek(lzma.HeaderLen)
	if err != nil {
		return nil, eofIsUnexpected(err)
	}
	h := bytes.Clone(hdr)
	dict := int64(binary.LittleEndian.Uint32(h[1:5]))
	if need := max(r.budget-r.decoded+1, lzma.MinDictCap); dict > need {
		dict = need
	}
	if dict > maxDict {
		return nil, fmt.Errorf("dictionary of %d bytes, above the %d we allocate: %w", dict, maxDict, ErrLimit)
	}
	binary.LittleEndian.PutUint32(h[1:5], uint32(dict))
	br.Discard(lzma.HeaderLen)
	return lzma.ReaderConfig{DictCap: maxDict}.NewReader(&headerThen{hdr: h, br: br})
}

// headerThen reads hdr, then br, byte by byte if asked: the decoder must
// not read past the end of its stream.
type headerThen struct {
	hdr []byte
	br  *bufio.Reader
}

func (h *headerThen) Read(p []byte) (int, error) {
	if len(h.hdr) > 0 {
		n := copy(p, h.hdr)
		h.hdr = h.hdr[n:]
		return n, nil
	}
	return h.br.Read(p)
}

func (h *headerThen) ReadByte() (byte, error) {
	if len(h.hdr) > 0 {
		c := h.hdr[0]
		h.hdr = h.hdr[1:]
		return c, nil
	}
	return h.br.ReadByte()
}

// Raw returns the bytes of s as they are in the image, padding included.
func (r *Reader) Raw(s *Segment) *io.SectionReader {
	return io.NewSectionReader(r.ra, s.Offset, s.Size)
}

// Open returns the decompressed data of s (for a cpio segment, its bytes),
// without the trailing padding. Closing it releases the decoder. It returns
// an error for padding and unknown segments.
func (r *Reader) Open(s *Segment) (io.ReadCloser, error) {
	return r.open(s, &decoders{}, true)
}

// open is Open with the decoders of dc, which the next call may reuse: the
// reader returned is valid until then. own says whether closing it closes
// the decoders.
func (r *Reader) open(s *Segment, dc *decoders, own bool) (io.ReadCloser, error) {
	sec := io.NewSectionReader(readErrorAt{r.ra}, s.Offset, s.DataSize())
	var dec io.Reader
	var err error
	switch s.Kind {
	case KindCpio:
		return io.NopCloser(sec), nil
	case KindGzip:
		if dc.gz == nil {
			dc.gz = new(gzip.Reader)
		}
		if err = dc.gz.Reset(dc.input(sec)); err == nil {
			dc.gz.Multistream(false)
			dec = dc.gz
		}
	case KindBzip2:
		dec = bzip2.NewReader(dc.input(sec))
	case KindLZMA:
		dec, err = r.lzmaReader(dc.input(sec))
	case KindXZ:
		dec = &xzBlocksReader{ra: readErrorAt{r.ra}, blocks: s.xzBlocks, check: s.xzCheck, maxDic: maxDict, budget: r.budget - r.decoded, in: dc}
	case KindLZ4:
		if dc.lz4 == nil {
			dc.lz4 = lz4.NewReader(sec)
		} else {
			dc.lz4.Reset(sec)
		}
		dec = dc.lz4
	case KindZstd:
		if dc.zstd == nil {
			dc.zstd, err = zstd.NewReader(dc.input(sec), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxDict), zstd.WithDecoderMaxMemory(maxDict))
		} else {
			err = dc.zstd.Reset(dc.input(sec))
		}
		if err != nil {
			return nil, fmt.Errorf("zstd segment at offset %d: %w", s.Offset, err)
		}
		if own {
			return dc.zstd.IOReadCloser(), nil
		}
		dec = dc.zstd
	case KindLZO:
		body := io.NewSectionReader(readErrorAt{r.ra}, s.lzoBody, s.Offset+s.DataSize()-s.lzoBody)
		if dc.lzo == nil {
			dc.lzo = newLZOReader(body, s.lzoFlags)
		} else {
			dc.lzo.reset(body, s.lzoFlags)
		}
		dec = dc.lzo
	default:
		return nil, fmt.Errorf("%s segment at offset %d has no cpio data", s.Kind, s.Offset)
	}
	if err != nil {
		return nil, fmt.Errorf("%s segment at offset %d: %w", s.Kind, s.Offset, err)
	}
	return io.NopCloser(dec), nil
}

// Scan walks the cpio data of s if Next did not already (Next walks cpio,
// gzip, bzip2 and lzma segments while finding their end). Data the
// decompressor rejects becomes a WarnCorrupt warning. Errors are a
// *ReadError, ErrLimit, or ErrUnsupportedFilter for an xz filter other than
// LZMA2 and x86 BCJ (the segment is mapped but its entries are not listed).
func (r *Reader) Scan(s *Segment) error {
	if s.Scanned || s.Kind == KindPadding || s.Kind == KindUnknown {
		return nil
	}
	rc, err := r.open(s, &r.dec, false)
	if err != nil {
		s.warn(s.Offset, WarnCorrupt, "cannot decompress: %v", err)
		return nil
	}
	defer rc.Close()
	known := s.UncompressedSize
	if err := r.scanStream(s, rc); err != nil {
		if fatal(err) || errors.Is(err, ErrUnsupportedFilter) {
			return err
		}
		s.warn(s.Offset, WarnCorrupt, "decompression failed: %v", err)
		return nil
	}
	if known >= 0 && known != s.UncompressedSize {
		s.warn(s.Offset, WarnCorrupt, "decompressed %d bytes, the %s headers declare %d", s.UncompressedSize, s.Kind, known)
	}
	return nil
}

// readErrorAt marks failures of the underlying ReaderAt as *ReadError, so
// that they are not mistaken for corrupt data after passing a decoder.
type readErrorAt struct{ ra io.ReaderAt }

func (r readErrorAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.ra.ReadAt(p, off)
	if err != nil && err != io.EOF {
		err = &ReadError{Offset: off, Err: err}
	}
	return n, err
}
