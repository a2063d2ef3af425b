package verify

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/kexec-measured/kexec-measured/pcr"
)

// ManifestVersion is the version of the manifest format this package
// writes and reads.
const ManifestVersion = 1

// MaxManifestSize bounds a manifest file; a larger one is refused.
const MaxManifestSize = 64 << 20

// Kinds of manifest entries.
const (
	KindKernel  = "kernel"
	KindInitrd  = "initrd"  // a whole initrd component
	KindSegment = "segment" // one segment of a component (--split-initrd)
	KindCmdline = "cmdline"
)

// ErrManifest reports a manifest that does not parse or breaks a rule of
// docs/verify.md.
var ErrManifest = errors.New("verify: bad reference manifest")

// Manifest is a reference manifest: known building blocks and their
// digests.
type Manifest struct {
	Version int     `json:"version"`
	Entries []Entry `json:"entries"`
}

// Entry is one building block.
type Entry struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Segment, Offset and SegmentKind describe a segment entry: its index in
	// the component, its offset there, and the segment kind (cpio, gzip,
	// zstd, ...) as the loader logs it.
	Segment     *int   `json:"segment,omitempty"`
	Offset      *int64 `json:"offset,omitempty"`
	SegmentKind string `json:"segmentKind,omitempty"`
	Size        int64  `json:"size"`
	// Cmdline is the command line itself, for a cmdline entry.
	Cmdline *string `json:"cmdline,omitempty"`
	// Digests maps a bank name (sha1, sha256, sha384, sha512) to the hex
	// digest. encoding/json writes the keys sorted, so the output is
	// deterministic.
	Digests map[string]string `json:"digests"`
	// Source is the manifest file the entry was read from; it is not
	// written.
	Source string `json:"-"`
}

// Label names an entry for reports: its name, and for a segment
// "NAME segment N (KIND)".
func (e Entry) Label() string {
	if e.Kind == KindSegment && e.Segment != nil {
		if e.SegmentKind != "" {
			return fmt.Sprintf("%s segment %d (%s)", e.Name, *e.Segment, e.SegmentKind)
		}
		return fmt.Sprintf("%s segment %d", e.Name, *e.Segment)
	}
	return e.Name
}

// Sum returns the entry's digest in bank h, or nil if it has none.
func (e Entry) Sum(h crypto.Hash) []byte {
	name, err := pcr.Name(h)
	if err != nil {
		return nil
	}
	s, ok := e.Digests[name]
	if !ok {
		return nil
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

// Encode writes m as indented JSON with a final newline: the same manifest
// always gives the same bytes.
func (m Manifest) Encode(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if m.Entries == nil {
		m.Entries = []Entry{}
	}
	if err := enc.Encode(m); err != nil {
		return fmt.Errorf("verify: encode manifest: %w", err)
	}
	return nil
}

// ParseManifest reads one manifest, strictly: one JSON object, no unknown
// field, version ManifestVersion, and every entry checked (checkEntry).
// source names the input in errors, which wrap ErrManifest.
func ParseManifest(data []byte, source string) (Manifest, error) {
	fail := func(format string, args ...any) (Manifest, error) {
		return Manifest{}, fmt.Errorf("%w: %s: %s", ErrManifest, source, fmt.Sprintf(format, args...))
	}
	if len(data) > MaxManifestSize {
		return fail("%d bytes, more than the limit of %d", len(data), MaxManifestSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return fail("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail("data after the manifest object")
	}
	if m.Version != ManifestVersion {
		return fail("version %d, want %d", m.Version, ManifestVersion)
	}
	for i := range m.Entries {
		if err := checkEntry(m.Entries[i]); err != nil {
			return fail("entry %d (%q): %v", i, m.Entries[i].Name, err)
		}
		m.Entries[i].Source = source
	}
	return m, nil
}

// checkEntry checks one entry: a non-empty name, a known kind, a size not
// below zero, segment fields only (and both index and offset) on a segment,
// a command line only on a cmdline entry and of the entry's size, and at
// least one digest, each of a known bank and hex of its size.
func checkEntry(e Entry) error {
	if e.Name == "" {
		return errors.New("no name")
	}
	switch e.Kind {
	case KindKernel, KindInitrd, KindSegment, KindCmdline:
	default:
		return fmt.Errorf("kind %q (want kernel, initrd, segment or cmdline)", e.Kind)
	}
	if e.Size < 0 {
		return fmt.Errorf("size %d", e.Size)
	}
	isSeg := e.Kind == KindSegment
	if isSeg != (e.Segment != nil) || isSeg != (e.Offset != nil) || (!isSeg && e.SegmentKind != "") {
		return errors.New("segment, offset and segmentKind belong to segment entries, and a segment entry needs segment and offset")
	}
	if isSeg && (*e.Segment < 0 || *e.Offset < 0) {
		return errors.New("negative segment index or offset")
	}
	if e.Cmdline != nil && e.Kind != KindCmdline {
		return errors.New("cmdline belongs to cmdline entries")
	}
	if e.Cmdline != nil && int64(len(*e.Cmdline)) != e.Size {
		return fmt.Errorf("cmdline has %d bytes, size says %d", len(*e.Cmdline), e.Size)
	}
	if len(e.Digests) == 0 {
		return errors.New("no digests")
	}
	for name, d := range e.Digests {
		h, err := pcr.Parse(name)
		if err != nil {
			return err
		}
		if canon, _ := pcr.Name(h); canon != name {
			return fmt.Errorf("bank %q: write it %q", name, canon)
		}
		b, err := hex.DecodeString(d)
		if err != nil || len(b) != h.Size() || hex.EncodeToString(b) != d {
			return fmt.Errorf("%s digest %q is not %d bytes of lower-case hex", name, d, h.Size())
		}
	}
	return nil
}

// digestMap returns the entry digests of sums, keyed by bank name, for the
// banks of pcr.Banks() that sums holds.
func digestMap(sums map[crypto.Hash][]byte) map[string]string {
	out := make(map[string]string, len(sums))
	for _, h := range pcr.Banks() {
		if s, ok := sums[h]; ok {
			name, _ := pcr.Name(h)
			out[name] = hex.EncodeToString(s)
		}
	}
	return out
}

// sameBlock reports whether a and b describe the same entry (name, kind,
// segment fields and digests); the source does not count.
func sameBlock(a, b Entry) bool {
	a.Source, b.Source = "", ""
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// banksOf returns the banks an entry has digests for, in crypto.Hash order.
func banksOf(e Entry) []crypto.Hash {
	var out []crypto.Hash
	for _, h := range pcr.Banks() {
		if e.Sum(h) != nil {
			out = append(out, h)
		}
	}
	return slices.Clip(out)
}
