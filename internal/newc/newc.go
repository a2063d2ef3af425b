// Package newc writes newc cpio archives the way the kernel's initramfs
// unpacker reads them (Documentation/driver-api/early-userspace/
// buffer-format.rst): for each entry a 110-byte ASCII header ("070701", or
// "070702" with a data checksum, and thirteen 8-digit hex fields), the
// name with its NUL, zeros to a 4-byte boundary, the data, zeros to a
// 4-byte boundary; last a "TRAILER!!!" entry.
//
// It is the one cpio writer of kexec-measured: the handoff component is
// written with it, and so are the test fixtures of every package. The
// reader is segments.CpioReader.
package newc

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Magic numbers of the two newc variants.
const (
	Magic    = "070701" // no checksum
	MagicCRC = "070702" // with the byte-sum checksum of the data
)

// Trailer is the name of the entry that ends an archive.
const Trailer = "TRAILER!!!"

// Mode type bits (stat.h S_IF*), for Header.Mode.
const (
	TypeReg     = 0o100000
	TypeDir     = 0o040000
	TypeSymlink = 0o120000
)

// MaxName is the longest name, NUL included, the kernel accepts
// (PATH_MAX in init/initramfs.c).
const MaxName = 4096

// ErrName reports a name the kernel would refuse or a writer should not
// write: empty, too long, or with a NUL byte.
var ErrName = errors.New("newc: bad entry name")

// Header is one entry's header. Fields are written as given; Write fills
// only NameSize, FileSize and, for MagicCRC, the checksum.
type Header struct {
	Name                 string
	Mode                 uint32 // type bits and permissions, e.g. TypeReg|0o644
	Ino, UID, GID, Nlink uint32
	Mtime                uint32
	DevMajor, DevMinor   uint32
	RdevMajor, RdevMinor uint32
	// Check, when non-nil, is written as the checksum field instead of the
	// computed one (tests use it to write a wrong checksum).
	Check *uint32
}

// Options choose the variant a Writer writes. The zero value writes
// "070701" with lower-case hex digits.
type Options struct {
	CRC   bool // write "070702" headers with data checksums
	Upper bool // upper-case hex digits (the kernel accepts both)
}

// Writer writes one archive. Errors are sticky: after a failed write every
// method returns the first error.
type Writer struct {
	w    io.Writer
	opts Options
	n    int64  // bytes written
	ino  uint32 // last inode number handed out by File and Dir
	err  error
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer, opts Options) *Writer {
	return &Writer{w: w, opts: opts}
}

// Checksum returns the "070702" checksum of data: the sum of its bytes,
// modulo 2^32.
func Checksum(data []byte) uint32 {
	var sum uint32
	for _, c := range data {
		sum += uint32(c)
	}
	return sum
}

// Write writes one entry with header h and content data.
func (w *Writer) Write(h Header, data []byte) error {
	if w.err != nil {
		return w.err
	}
	if h.Name == "" || len(h.Name)+1 > MaxName || strings.IndexByte(h.Name, 0) >= 0 {
		w.err = fmt.Errorf("%w: %q", ErrName, h.Name)
		return w.err
	}
	magic := Magic
	var check uint32
	if w.opts.CRC {
		magic = MagicCRC
		check = Checksum(data)
	}
	if h.Check != nil {
		check = *h.Check
	}
	format := "%08x"
	if w.opts.Upper {
		format = "%08X"
	}
	hdr := make([]byte, 0, 110+len(h.Name)+4)
	hdr = append(hdr, magic...)
	for _, v := range [...]uint32{h.Ino, h.Mode, h.UID, h.GID, h.Nlink, h.Mtime, uint32(len(data)),
		h.DevMajor, h.DevMinor, h.RdevMajor, h.RdevMinor, uint32(len(h.Name) + 1), check} {
		hdr = fmt.Appendf(hdr, format, v)
	}
	hdr = append(hdr, h.Name...)
	hdr = append(hdr, 0)
	hdr = append(hdr, make([]byte, pad4(int64(len(hdr))))...)
	w.write(hdr)
	w.write(data)
	w.write(make([]byte, pad4(int64(len(data)))))
	return w.err
}

// Dir writes a directory entry with permissions perm and a fresh inode
// number.
func (w *Writer) Dir(name string, perm uint32) error {
	w.ino++
	return w.Write(Header{Name: name, Mode: TypeDir | perm&0o7777, Ino: w.ino, Nlink: 2}, nil)
}

// File writes a regular file with permissions perm and a fresh inode
// number.
func (w *Writer) File(name string, perm uint32, data []byte) error {
	w.ino++
	return w.Write(Header{Name: name, Mode: TypeReg | perm&0o7777, Ino: w.ino, Nlink: 1}, data)
}

// Close writes the TRAILER!!! entry. It does not close the underlying
// writer. An archive without a trailer is written by not calling Close.
func (w *Writer) Close() error {
	return w.Write(Header{Name: Trailer, Nlink: 1}, nil)
}

// Len returns the number of bytes written so far (always a multiple of 4
// after a successful Write).
func (w *Writer) Len() int64 { return w.n }

func (w *Writer) write(b []byte) {
	if w.err != nil || len(b) == 0 {
		return
	}
	n, err := w.w.Write(b)
	w.n += int64(n)
	if err != nil {
		w.err = fmt.Errorf("newc: write: %w", err)
	}
}

func pad4(n int64) int64 { return (4 - n%4) % 4 }

// File is one entry of Archive: a regular file, or a directory when Dir is
// set. Name has no leading slash ("etc/fstab").
type File struct {
	Name string
	Perm uint32
	Dir  bool
	Data []byte
}

// Archive returns the "070701" archive of files in order, with every
// parent directory (mode 0755) written once before its first child, and a
// trailer. It is what tests and the handoff use to build small archives.
func Archive(files []File) ([]byte, error) {
	var buf strings.Builder
	w := NewWriter(&buf, Options{})
	seen := map[string]bool{}
	var mkdirs func(dir string, perm uint32)
	mkdirs = func(dir string, perm uint32) {
		if dir == "." || dir == "/" || dir == "" || seen[dir] {
			return
		}
		mkdirs(path.Dir(dir), 0o755)
		seen[dir] = true
		w.Dir(dir, perm)
	}
	for _, f := range files {
		mkdirs(path.Dir(f.Name), 0o755)
		if f.Dir {
			perm := f.Perm
			if perm == 0 {
				perm = 0o755
			}
			mkdirs(f.Name, perm)
			continue
		}
		perm := f.Perm
		if perm == 0 {
			perm = 0o644
		}
		w.File(f.Name, perm, f.Data)
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return []byte(buf.String()), nil
}
