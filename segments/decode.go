package segments

import (
	"bufio"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// maxDict bounds the dictionary an lzma or xz decoder and the window a zstd
// decoder may allocate (xz -9 uses 64 MiB, zstd --ultra -22 128 MiB). For
// lzma and xz the bound is lowered to Limits.MaxDecompressed when that is
// smaller: a dictionary larger than the output is never needed.
const maxDict = 256 << 20

func (r *Reader) dictCap() int {
	return int(min(maxDict, max(r.lim.MaxDecompressed, 4096)))
}

// decReader counts what a decoder produces, enforces the image's budget of
// decompressed bytes and remembers the decoder's own error, so that it can
// be told apart from a problem in the cpio data.
type decReader struct {
	r      io.Reader
	n      int64
	max    int64
	decErr error
	limit  error
	eof    bool
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
	if room := d.max - d.n + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := d.r.Read(p)
	d.n += int64(n)
	if d.n > d.max {
		d.limit = fmt.Errorf("more than %d decompressed bytes: %w", d.max, ErrLimit)
		return 0, d.limit
	}
	if err == io.EOF {
		d.eof = true
	} else if err != nil {
		d.decErr = err
	}
	return n, err
}

// scanStream walks the cpio data that dec produces for segment s and
// records entries, trailer, uncompressed size and the content warnings. It
// returns the decoder's error, or a *ReadError or ErrLimit; problems of the
// cpio data are warnings.
func (r *Reader) scanStream(s *Segment, dec io.Reader) error {
	d := &decReader{r: dec, max: r.lim.MaxDecompressed - r.decoded}
	defer func() { r.decoded += d.n }()
	cr := &CpioReader{src: bufSource{bufio.NewReaderSize(d, 64<<10)}, lim: r.cpioLimits()}
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
	br := bufio.NewReaderSize(a, 256<<10)
	zr, err := gzip.NewReader(br)
	if err != nil {
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
	br := bufio.NewReaderSize(a, 256<<10)
	b := &bzip2End{r: bzip2.NewReader(br)}
	if err := r.scanStream(s, b); err != nil {
		return 0, err
	}
	return consumed(a, br) - b.overrun, nil
}

// parseLZMA finds the end of a legacy .lzma stream by decoding it.
func (r *Reader) parseLZMA(a *atReader, s *Segment) (int64, error) {
	start := a.pos
	br := bufio.NewReaderSize(a, 256<<10)
	zr, err := lzma.ReaderConfig{DictCap: r.dictCap()}.NewReader(br)
	if err != nil {
		return 0, fmt.Errorf("lzma header at offset %d: %w", start, err)
	}
	if err := r.scanStream(s, zr); err != nil {
		return 0, err
	}
	return consumed(a, br), nil
}

// Raw returns the bytes of s as they are in the image, padding included.
func (r *Reader) Raw(s *Segment) *io.SectionReader {
	return io.NewSectionReader(r.ra, s.Offset, s.Size)
}

// Open returns the decompressed data of s (for a cpio segment, its bytes),
// without the trailing padding. Closing it releases the decoder. It returns
// an error for padding and unknown
// segments.
func (r *Reader) Open(s *Segment) (io.ReadCloser, error) {
	sec := io.NewSectionReader(readErrorAt{r.ra}, s.Offset, s.DataSize())
	buffered := func() io.Reader { return bufio.NewReaderSize(sec, 1<<20) }
	var dec io.Reader
	var err error
	switch s.Kind {
	case KindCpio:
		return io.NopCloser(sec), nil
	case KindGzip:
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(buffered()); err == nil {
			zr.Multistream(false)
			dec = zr
		}
	case KindBzip2:
		dec = bzip2.NewReader(buffered())
	case KindLZMA:
		dec, err = lzma.ReaderConfig{DictCap: r.dictCap()}.NewReader(buffered())
	case KindXZ:
		if s.dict > int64(r.dictCap()) {
			return nil, fmt.Errorf("xz segment at offset %d: LZMA2 dictionary of %d bytes, above the %d we allocate: %w", s.Offset, s.dict, r.dictCap(), ErrLimit)
		}
		if xzNeedsOwnDecoder(s.xzBlocks) {
			dec = &xzBlocksReader{ra: readErrorAt{r.ra}, blocks: s.xzBlocks, check: s.xzCheck, maxDic: int64(r.dictCap())}
			break
		}
		// DictCap is a floor for xz: the stream's own dictionary is used.
		dec, err = xz.ReaderConfig{DictCap: 4096, SingleStream: true}.NewReader(buffered())
	case KindLZ4:
		dec = lz4.NewReader(sec)
	case KindZstd:
		zr, zerr := zstd.NewReader(buffered(), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxDict), zstd.WithDecoderMaxMemory(2*maxDict))
		if zerr != nil {
			return nil, fmt.Errorf("zstd segment at offset %d: %w", s.Offset, zerr)
		}
		return zr.IOReadCloser(), nil
	case KindLZO:
		body := io.NewSectionReader(readErrorAt{r.ra}, s.lzoBody, s.Offset+s.DataSize()-s.lzoBody)
		dec = newLZOReader(body, s.lzoFlags)
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
	rc, err := r.Open(s)
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
