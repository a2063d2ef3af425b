package verify

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kexec-measured/kexec-measured/loader"
	"github.com/kexec-measured/kexec-measured/pcr"
	"github.com/kexec-measured/kexec-measured/segments"
)

// ReferenceOptions say what Reference builds.
type ReferenceOptions struct {
	// Names name the files in order; a missing or empty name is the file's
	// base name.
	Names []string
	// Cmdlines are command lines to add, each as a cmdline entry named
	// "cmdline".
	Cmdlines []string
	// Split adds, after each initrd's entry, one entry per segment: the
	// ranges the loader measures with --split-initrd (loader.SplitRanges).
	Split bool
	// Limits bound the segment walk (zero: the loader's defaults).
	Limits segments.Limits
}

// Reference builds the manifest of files and command lines: one entry per
// file (kind kernel when DetectKernel says so, else initrd), with Split one
// more per segment of each initrd, then one per command line, each with
// its size and its digest in every bank of pcr.Banks(). The same inputs
// give the same manifest. An unreadable file, or an initrd that cannot be
// split when Split is set, is an error naming the file. Warnings about
// segments the kernel would reject come back as text.
func Reference(files []string, opts ReferenceOptions) (Manifest, []string, error) {
	if len(opts.Names) > len(files) {
		return Manifest{}, nil, fmt.Errorf("verify: %d names for %d files", len(opts.Names), len(files))
	}
	m := Manifest{Version: ManifestVersion, Entries: []Entry{}}
	var warnings []string
	for i, path := range files {
		name := filepath.Base(path)
		if i < len(opts.Names) && opts.Names[i] != "" {
			name = opts.Names[i]
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return Manifest{}, nil, fmt.Errorf("verify: reference: %w", err)
		}
		kind := KindInitrd
		if DetectKernel(data) {
			kind = KindKernel
		}
		m.Entries = append(m.Entries, Entry{Name: name, Kind: kind, Size: int64(len(data)), Digests: digestMap(sums(data))})
		if kind != KindInitrd || !opts.Split || len(data) == 0 {
			continue
		}
		ranges, err := loader.SplitRanges(data, opts.Limits)
		if err != nil {
			return Manifest{}, nil, fmt.Errorf("verify: reference: %s: %w", path, err)
		}
		for _, r := range ranges {
			for _, w := range r.Warnings {
				warnings = append(warnings, fmt.Sprintf("%s: segment %d: %s", path, r.Index, w))
			}
			seg, off := r.Index, r.Offset
			m.Entries = append(m.Entries, Entry{
				Name: name, Kind: KindSegment, Segment: &seg, Offset: &off, SegmentKind: r.Kind,
				Size: r.Size, Digests: digestMap(sums(data[r.Offset : r.Offset+r.Size])),
			})
		}
	}
	for _, c := range opts.Cmdlines {
		c := c
		m.Entries = append(m.Entries, Entry{Name: "cmdline", Kind: KindCmdline, Size: int64(len(c)), Cmdline: &c, Digests: digestMap(sums([]byte(c)))})
	}
	return m, warnings, nil
}

// sums digests data in every bank of pcr.Banks().
func sums(data []byte) map[crypto.Hash][]byte {
	out := make(map[crypto.Hash][]byte)
	for _, h := range pcr.Banks() {
		d := h.New()
		d.Write(data)
		out[h] = d.Sum(nil)
	}
	return out
}

// DetectKernel reports whether data starts like a kernel image: an x86
// bzImage (the setup header's magic "HdrS" at offset 0x202, Linux
// boot protocol, Documentation/arch/x86/boot.rst) or a PE image ("MZ" and,
// at the offset the DOS header's e_lfanew at 0x3c gives, "PE\0\0"): an EFI
// stub kernel, an arm64 Image or a UKI.
func DetectKernel(data []byte) bool {
	if len(data) >= 0x206 && bytes.Equal(data[0x202:0x206], []byte("HdrS")) {
		return true
	}
	if len(data) < 0x40 || !bytes.HasPrefix(data, []byte("MZ")) {
		return false
	}
	off := int64(binary.LittleEndian.Uint32(data[0x3c:0x40]))
	return off+4 <= int64(len(data)) && bytes.Equal(data[off:off+4], []byte("PE\x00\x00"))
}
