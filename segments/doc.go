// Package segments walks initramfs images the way the Linux kernel's
// unpack_to_rootfs() does (init/initramfs.c, Documentation/driver-api/
// early-userspace/buffer-format.rst) and splits them into segments: runs of
// uncompressed newc cpio entries and compressed members (gzip, bzip2, lzma,
// xz, lzo, lz4, zstd), each with the NUL padding that follows it, so that the
// segments tile the image exactly.
//
// A Reader yields segments in order, in the shape of archive/tar:
//
//	r := segments.NewReader(f, size, segments.Limits{})
//	for {
//		s, err := r.Next()
//		if err == io.EOF {
//			break
//		}
//		...
//	}
//
// Compressed members are not assumed to be last. Their end is found from the
// format's structure where it allows (zstd frame and block headers, xz blocks,
// index and footer, lzop blocks, lz4 block sizes) and by decoding otherwise
// (gzip, bzip2, lzma). What the kernel would reject is reported as a Warning
// and bytes that cannot be parsed become a final segment of kind "unknown":
// nothing is dropped silently.
//
// A CpioReader lists the entries of one cpio stream, uncompressed or
// decompressed. Images are untrusted: sizes are checked against what remains
// before anything is allocated, names are bounded, offsets are 64-bit, and
// decompressed bytes and entries are capped by Limits.
package segments

import (
	"errors"
	"fmt"
	"time"
)

// Kinds of segments.
const (
	KindCpio    = "cpio"    // uncompressed newc (070701) or crc (070702) cpio
	KindGzip    = "gzip"    // one gzip member (RFC 1952)
	KindBzip2   = "bzip2"   // one bzip2 stream
	KindLZMA    = "lzma"    // one legacy .lzma (LZMA_Alone) stream
	KindXZ      = "xz"      // one xz stream
	KindLZO     = "lzo"     // one lzop file
	KindLZ4     = "lz4"     // lz4 legacy (or, with a warning, frame) format
	KindZstd    = "zstd"    // one zstd frame, with any skippable frames before it
	KindPadding = "padding" // NUL bytes at the very start of an image
	KindUnknown = "unknown" // bytes that could not be parsed, up to the end
)

// Sentinel errors. Errors returned by this package wrap one of them (or an
// I/O error of the underlying reader) and name the offset that failed.
var (
	// ErrHeader means a cpio header is malformed.
	ErrHeader = errors.New("segments: invalid cpio header")
	// ErrFormat means a compressed member is malformed or truncated.
	ErrFormat = errors.New("segments: malformed compressed data")
	// ErrJunk means bytes inside a decompressed stream that are neither NUL
	// padding nor a cpio header: the kernel fails with "junk within
	// compressed archive".
	ErrJunk = errors.New("segments: junk within compressed archive")
	// ErrUnsupportedFilter means an xz filter or check this package does
	// not decode (it still finds the member's end).
	ErrUnsupportedFilter = errors.New("segments: unsupported xz filter")
	// ErrLimit means a Limits bound was reached.
	ErrLimit = errors.New("segments: limit exceeded")
)

// Default limits, used for zero fields of Limits. docs/segments.md gives
// the reason for each value.
const (
	DefaultMaxDecompressed = 8 << 30  // bytes per image (all segments together), whatever its size
	DefaultMaxRatio        = 32       // decompressed bytes per byte of image
	DefaultRatioFloor      = 64 << 20 // decompressed bytes any image may have, whatever its ratio
	DefaultMaxEntries      = 1 << 20  // cpio headers per image, trailers included
	DefaultMaxNameLen      = 4096     // PATH_MAX, as the kernel
	DefaultMaxSegments     = 1 << 17  // segments per image
)

// Limits bound the work done on an untrusted image. The zero value means the
// generous defaults above.
//
// The decompressed bytes of an image are bounded by its size: at most
// MaxRatio times the image's size, but at least RatioFloor, and never more
// than MaxDecompressed. Real images compress 2 to 10 times; a bomb (gigabytes
// of zeros in a few megabytes) stops at the ratio long before the absolute
// cap.
type Limits struct {
	MaxDecompressed int64 // decompressed bytes, summed over the image
	MaxRatio        int64 // decompressed bytes per byte of image; < 0: no ratio limit
	RatioFloor      int64 // decompressed bytes allowed whatever the ratio
	MaxEntries      int   // cpio headers, trailers included, summed over the image
	MaxNameLen      int   // bytes of a cpio name or symlink target, with its NUL
	MaxSegments     int   // segments of the image
	// MaxDuration bounds the time a Reader spends in Next and Scan; zero
	// means no bound. Unlike the other limits it depends on the machine,
	// so the loader does not set it: a measurement must not depend on how
	// fast the machine is. inspect does.
	MaxDuration time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxDecompressed <= 0 {
		l.MaxDecompressed = DefaultMaxDecompressed
	}
	if l.MaxRatio == 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	if l.RatioFloor <= 0 {
		l.RatioFloor = DefaultRatioFloor
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxNameLen <= 0 {
		l.MaxNameLen = DefaultMaxNameLen
	}
	if l.MaxSegments <= 0 {
		l.MaxSegments = DefaultMaxSegments
	}
	return l
}

// budget returns the decompressed bytes allowed for an image of size bytes
// and a description of the limit that sets it, for error messages.
func (l Limits) budget(size int64) (int64, string) {
	if l.MaxRatio < 0 || size > l.MaxDecompressed/l.MaxRatio {
		return l.MaxDecompressed, fmt.Sprintf("MaxDecompressed, %d bytes", l.MaxDecompressed)
	}
	if b := l.MaxRatio * size; b > l.RatioFloor {
		return min(b, l.MaxDecompressed), fmt.Sprintf("MaxRatio, %d times the image's %d bytes", l.MaxRatio, size)
	}
	if l.RatioFloor >= l.MaxDecompressed {
		return l.MaxDecompressed, fmt.Sprintf("MaxDecompressed, %d bytes", l.MaxDecompressed)
	}
	return l.RatioFloor, fmt.Sprintf("RatioFloor, %d bytes, as the image's %d bytes times MaxRatio %d is less", l.RatioFloor, size, l.MaxRatio)
}

// Warning codes: each names something the kernel would reject or that the
// walk could not explain. docs/segments.md gives the kernel's reason for each.
const (
	WarnMisalignedCpio = "misaligned-cpio" // cpio not at a multiple of 4
	WarnLZ4NotLast     = "lz4-not-last"    // lz4 legacy followed by more data
	WarnLZ4Frame       = "lz4-frame"       // lz4 frame format (kernel knows legacy only)
	WarnXZCheck        = "xz-check"        // xz check other than none/CRC32
	WarnGzipHeader     = "gzip-header"     // gzip FEXTRA, FCOMMENT or FHCRC
	WarnZstdSkippable  = "zstd-skippable"  // skippable frame (pzstd)
	WarnLZOHeader      = "lzo-header"      // lzop flags the kernel misparses
	WarnJunkWithin     = "junk-within"     // junk within a compressed archive
	WarnJunkAtEnd      = "junk-at-end"     // decompressed stream ends inside an entry
	WarnCpioChecksum   = "cpio-checksum"   // 070702 data checksum mismatch
	WarnCpioMagic      = "cpio-magic"      // '0' at an aligned offset but no newc magic
	WarnUnknownBytes   = "unknown-bytes"   // bytes that could not be parsed
	WarnCorrupt        = "corrupt"         // a member that failed to decode
	WarnLimit          = "limit"           // a limit cut the walk short (inspect)
)

// Warning is something the kernel would reject, or bytes the walk could not
// explain. The image is still walked.
type Warning struct {
	Offset  int64  `json:"offset"` // offset in the image the warning is about
	Code    string `json:"code"`   // one of the Warn* constants
	Message string `json:"message"`
}

// String formats the warning as "code at offset: message".
func (w Warning) String() string {
	return fmt.Sprintf("%s at %d: %s", w.Code, w.Offset, w.Message)
}
