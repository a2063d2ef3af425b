package segments

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// newc header layout: a 6-byte magic and 13 fields of 8 hex digits.
const (
	cpioHeaderLen = 110
	magicNewc     = "070701"
	magicCRC      = "070702"
	cpioTrailer   = "TRAILER!!!"
)

// Header is one newc cpio entry. Fields are the raw header values.
type Header struct {
	Offset    int64  // offset of the header: in the image for an uncompressed segment, in the decompressed stream otherwise
	Magic     string // "070701" (newc) or "070702" (crc)
	Ino       uint32
	Mode      uint32 // st_mode: type and permission bits
	UID, GID  uint32
	Nlink     uint32
	Mtime     uint32
	Size      int64 // bytes of data
	DevMajor  uint32
	DevMinor  uint32
	RdevMajor uint32
	RdevMinor uint32
	Check     uint32 // data checksum of a 070702 entry, 0 otherwise
	Name      string
	Linkname  string // symlink target (S_IFLNK), when it fits MaxNameLen
	HardLink  string // earlier entry with the same inode, for hard links
}

// File type bits of Header.Mode.
const (
	modeTypeMask = 0o170000
	modeSock     = 0o140000
	modeLink     = 0o120000
	modeReg      = 0o100000
	modeBlk      = 0o060000
	modeDir      = 0o040000
	modeChr      = 0o020000
	modeFIFO     = 0o010000
)

// FileMode returns Mode as an fs.FileMode.
func (h *Header) FileMode() fs.FileMode {
	m := fs.FileMode(h.Mode & 0o777)
	if h.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if h.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if h.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch h.Mode & modeTypeMask {
	case modeDir:
		m |= fs.ModeDir
	case modeLink:
		m |= fs.ModeSymlink
	case modeSock:
		m |= fs.ModeSocket
	case modeBlk:
		m |= fs.ModeDevice
	case modeChr:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case modeFIFO:
		m |= fs.ModeNamedPipe
	}
	return m
}

// source is what a CpioReader reads from: an *atReader over an image, or a
// bufio.Reader over a decompressor.
type source interface {
	io.Reader
	Peek(n int) ([]byte, error)
	Discard(n int64) (int64, error)
	skipNULs() (int64, error)
}

type bufSource struct{ *bufio.Reader }

func (b bufSource) Discard(n int64) (int64, error) {
	var done int64
	for done < n {
		chunk := int(min(n-done, 1<<30))
		m, err := b.Reader.Discard(chunk)
		done += int64(m)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

func (b bufSource) skipNULs() (int64, error) {
	var n int64
	for {
		p, err := b.Reader.Peek(1)
		if len(p) == 0 {
			if err == io.EOF {
				err = nil
			}
			return n, err
		}
		if b.Reader.Buffered() > 1 {
			p, _ = b.Reader.Peek(b.Reader.Buffered())
		}
		i := 0
		for i < len(p) && p[i] == 0 {
			i++
		}
		b.Reader.Discard(i)
		n += int64(i)
		if i < len(p) {
			return n, nil
		}
	}
}

type linkKey struct{ major, minor, ino uint32 }

// CpioReader reads the entries of a newc cpio stream, like archive/tar:
// Next advances to the next entry and the reader itself reads that entry's
// data. Errors are sticky.
type CpioReader struct {
	src     source
	lim     Limits
	segment bool  // stop at TRAILER!!! and at anything that is not a header
	start   int64 // offset of the stream's first byte (alignment base)
	pos     int64 // offset of the next unread byte
	goodEnd int64 // offset just after the last complete entry and its padding

	hdr     *Header
	left    int64  // unread data of hdr
	sum     uint32 // running 070702 checksum of hdr's data
	headers int    // headers read, trailers included (for MaxEntries)
	files   int    // entries returned by Next: headers less trailers (Entries)
	trailer bool   // the last entry was TRAILER!!!
	links   map[linkKey]string
	warns   []Warning
	err     error
}

// NewCpioReader returns a reader of the newc cpio stream r, read the way the
// kernel reads a decompressed initramfs member: NUL bytes between entries are
// skipped, TRAILER!!! is optional and does not end the stream (a following
// archive continues it), and anything else is junk (ErrJunk).
func NewCpioReader(r io.Reader, lim Limits) *CpioReader {
	return &CpioReader{
		src: bufSource{bufio.NewReaderSize(r, 64<<10)},
		lim: lim.withDefaults(),
	}
}

// newSegmentCpio reads the uncompressed cpio segment starting at a's
// position: it stops after TRAILER!!! and before anything that is not a
// newc header.
func newSegmentCpio(a *atReader, lim Limits) *CpioReader {
	return &CpioReader{src: a, lim: lim, segment: true, start: a.pos, pos: a.pos, goodEnd: a.pos}
}

// Entries returns the number of entries read so far, not counting trailers.
func (c *CpioReader) Entries() int { return c.files }

// Trailer reports whether the last entry read was TRAILER!!!.
func (c *CpioReader) Trailer() bool { return c.trailer }

// Warnings returns checksum mismatches found so far.
func (c *CpioReader) Warnings() []Warning { return c.warns }

// Offset returns the number of bytes consumed from the stream.
func (c *CpioReader) Offset() int64 { return c.pos - c.start }

// Next advances to the next entry and returns its header. At the end of the
// stream it returns io.EOF. A malformed header is ErrHeader, a stream that
// ends inside an entry io.ErrUnexpectedEOF, bytes that are neither NUL nor a
// header ErrJunk, too many entries ErrLimit; each names the offset.
func (c *CpioReader) Next() (*Header, error) {
	if c.err != nil {
		return nil, c.err
	}
	h, err := c.next()
	if err != nil {
		c.err = err
		c.hdr = nil
		return nil, err
	}
	return h, nil
}

func (c *CpioReader) next() (*Header, error) {
	if c.hdr != nil {
		if err := c.finishEntry(); err != nil {
			return nil, err
		}
	}
	for {
		if c.segment {
			if c.trailer {
				return nil, io.EOF
			}
			p, _ := c.src.Peek(6)
			if len(p) < 6 || !(string(p) == magicNewc || string(p) == magicCRC) {
				return nil, io.EOF
			}
		} else {
			n, err := c.src.skipNULs()
			c.pos += n
			if err != nil {
				return nil, fmt.Errorf("cpio stream at offset %d: %w", c.pos, err)
			}
			p, err := c.src.Peek(1)
			if len(p) == 0 {
				if err == io.EOF {
					return nil, io.EOF
				}
				return nil, fmt.Errorf("cpio stream at offset %d: %w", c.pos, err)
			}
			if p[0] != '0' {
				return nil, fmt.Errorf("byte %#02x at offset %d: %w", p[0], c.pos, ErrJunk)
			}
			if (c.pos-c.start)&3 != 0 {
				// The kernel's do_reset: "broken padding".
				return nil, fmt.Errorf("header at offset %d after NUL padding is not 4-byte aligned: %w", c.pos, ErrJunk)
			}
		}
		h, err := c.readHeader()
		if err != nil {
			return nil, err
		}
		c.sum = 0
		if h.Name == cpioTrailer {
			c.trailer = true
			clear(c.links)
			c.hdr = h
			c.left = h.Size
			if err := c.finishEntry(); err != nil {
				return nil, err
			}
			continue
		}
		c.trailer = false
		c.hdr = h
		c.left = h.Size
		c.files++
		return h, nil
	}
}

func (c *CpioReader) readHeader() (*Header, error) {
	off := c.pos
	if c.headers >= c.lim.MaxEntries {
		return nil, fmt.Errorf("cpio entry at offset %d: more than %d entries: %w", off, c.lim.MaxEntries, ErrLimit)
	}
	var raw [cpioHeaderLen]byte
	if err := c.readFull(raw[:]); err != nil {
		return nil, fmt.Errorf("cpio header at offset %d: %w", off, err)
	}
	magic := string(raw[:6])
	if magic != magicNewc && magic != magicCRC {
		return nil, fmt.Errorf("cpio header at offset %d: magic %q: %w", off, raw[:6], ErrHeader)
	}
	var f [13]uint32
	for i := range f {
		v, ok := parseHex8(raw[6+8*i : 14+8*i])
		if !ok {
			return nil, fmt.Errorf("cpio header at offset %d: field %d %q is not hex: %w", off, i, raw[6+8*i:14+8*i], ErrHeader)
		}
		f[i] = v
	}
	h := &Header{
		Offset: off, Magic: magic, Ino: f[0], Mode: f[1], UID: f[2], GID: f[3], Nlink: f[4],
		Mtime: f[5], Size: int64(f[6]), DevMajor: f[7], DevMinor: f[8], RdevMajor: f[9], RdevMinor: f[10],
		Check: f[12],
	}
	namesize := int64(f[11])
	if namesize == 0 || namesize > int64(c.lim.MaxNameLen) {
		return nil, fmt.Errorf("cpio header at offset %d: name size %d not in 1..%d: %w", off, namesize, c.lim.MaxNameLen, ErrHeader)
	}
	name := make([]byte, namesize)
	if err := c.readFull(name); err != nil {
		return nil, fmt.Errorf("cpio name at offset %d: %w", off, err)
	}
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	h.Name = string(name)
	if err := c.pad(); err != nil {
		return nil, fmt.Errorf("cpio name padding at offset %d: %w", c.pos, err)
	}
	c.headers++
	switch h.Mode & modeTypeMask {
	case modeLink:
		if h.Size > 0 && h.Size <= int64(c.lim.MaxNameLen) {
			p, _ := c.src.Peek(int(h.Size))
			if int64(len(p)) == h.Size {
				if i := bytes.IndexByte(p, 0); i >= 0 {
					p = p[:i]
				}
				h.Linkname = string(p)
			}
		}
	case modeReg:
		if h.Nlink >= 2 && h.Name != cpioTrailer {
			k := linkKey{h.DevMajor, h.DevMinor, h.Ino}
			if c.links == nil {
				c.links = make(map[linkKey]string)
			}
			if first, ok := c.links[k]; ok {
				h.HardLink = first
			} else {
				c.links[k] = h.Name
			}
		}
	}
	return h, nil
}

// finishEntry skips the unread data of the current entry and its padding and
// checks a 070702 checksum.
func (c *CpioReader) finishEntry() error {
	h := c.hdr
	if c.left > 0 {
		if h.Magic == magicCRC {
			if _, err := io.Copy(io.Discard, c); err != nil {
				return err
			}
		} else {
			n, err := c.src.Discard(c.left)
			c.pos += n
			c.left -= n
			if err != nil {
				return fmt.Errorf("cpio data of %q at offset %d: %w", h.Name, h.Offset, eofIsUnexpected(err))
			}
		}
	}
	if c.left > 0 {
		return fmt.Errorf("cpio data of %q at offset %d: %w", h.Name, h.Offset, io.ErrUnexpectedEOF)
	}
	if err := c.pad(); err != nil {
		return fmt.Errorf("cpio data padding of %q at offset %d: %w", h.Name, h.Offset, err)
	}
	if h.Magic == magicCRC && c.sum != h.Check {
		c.warns = append(c.warns, Warning{Offset: h.Offset, Code: WarnCpioChecksum,
			Message: fmt.Sprintf("%q: data checksum %08x, header says %08x", h.Name, c.sum, h.Check)})
	}
	c.hdr = nil
	c.goodEnd = c.pos
	return nil
}

// Read reads the data of the current entry. It returns io.EOF at the end of
// the entry's data.
func (c *CpioReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.hdr == nil || c.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.src.Read(p)
	c.pos += int64(n)
	c.left -= int64(n)
	if c.hdr.Magic == magicCRC {
		for _, b := range p[:n] {
			c.sum += uint32(b)
		}
	}
	if err == io.EOF && c.left > 0 {
		err = io.ErrUnexpectedEOF
	} else if err == io.EOF {
		err = nil
	}
	if err != nil {
		c.err = fmt.Errorf("cpio data of %q at offset %d: %w", c.hdr.Name, c.hdr.Offset, err)
		return n, c.err
	}
	return n, nil
}

func (c *CpioReader) readFull(p []byte) error {
	n, err := io.ReadFull(c.src, p)
	c.pos += int64(n)
	return eofIsUnexpected(err)
}

// pad skips to the next multiple of 4 from the start of the stream.
func (c *CpioReader) pad() error {
	n := (4 - (c.pos-c.start)&3) & 3
	if n == 0 {
		return nil
	}
	m, err := c.src.Discard(n)
	c.pos += m
	return eofIsUnexpected(err)
}

func eofIsUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseHex8 parses 8 hex digits of either case, as the kernel does.
func parseHex8(b []byte) (uint32, bool) {
	var v uint32
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint32(c)
	}
	return v, true
}
