package segments

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/kexec-measured/kexec-measured/pcr"
)

// InspectOptions configure Inspect. The zero value walks the image, scans
// every segment's cpio data and digests each segment with SHA-256.
type InspectOptions struct {
	Limits  Limits
	List    bool          // include every cpio entry
	Digests []crypto.Hash // pcr.Banks() hashes; nil means SHA-256
}

// Report describes one image: what `kexec-measured inspect` prints.
type Report struct {
	Image    string          `json:"image,omitempty"`
	Size     int64           `json:"size"`
	Segments []SegmentReport `json:"segments"`
	Error    string          `json:"error,omitempty"` // why the walk stopped early
}

// SegmentReport is one segment of a Report. In JSON, each digest is a field
// named after its algorithm ("sha256": "<hex>").
type SegmentReport struct {
	Index            int               `json:"index"`
	Offset           int64             `json:"offset"`
	Size             int64             `json:"size"`
	Padding          int64             `json:"padding"`
	Kind             string            `json:"kind"`
	UncompressedSize *int64            `json:"uncompressed_size,omitempty"`
	Entries          *int              `json:"entries,omitempty"`
	Trailer          *bool             `json:"trailer,omitempty"`
	Digests          map[string]string `json:"-"` // over [Offset, Offset+Size), padding included
	Warnings         []Warning         `json:"warnings,omitempty"`
	Note             string            `json:"note,omitempty"` // why entries are missing
	Files            []File            `json:"files,omitempty"`
}

// File is one cpio entry of a SegmentReport.
type File struct {
	Mode     string `json:"mode"`
	Size     int64  `json:"size"`
	Name     string `json:"name"`
	Link     string `json:"link,omitempty"`     // symlink target
	HardLink string `json:"hardlink,omitempty"` // earlier name of the same inode
}

// MarshalJSON flattens the digests into fields named by algorithm.
func (s SegmentReport) MarshalJSON() ([]byte, error) {
	type plain SegmentReport
	b, err := json.Marshal(plain(s))
	if err != nil {
		return nil, err
	}
	var extra bytes.Buffer
	names := make([]string, 0, len(s.Digests))
	for n := range s.Digests {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&extra, ",%q:%q", n, s.Digests[n])
	}
	return append(append(b[:len(b)-1], extra.Bytes()...), '}'), nil
}

// Clean reports whether the image parsed without warnings, unknown bytes
// or an early stop.
func (r *Report) Clean() bool {
	if r.Error != "" {
		return false
	}
	for _, s := range r.Segments {
		if len(s.Warnings) > 0 || s.Kind == KindUnknown {
			return false
		}
	}
	return true
}

// Inspect walks the image in the first size bytes of ra, scans the cpio data
// of every segment and digests each segment's bytes. On a *ReadError or
// ErrLimit it returns the report so far (with Error set) and the error.
func Inspect(ra io.ReaderAt, size int64, opt InspectOptions) (*Report, error) {
	algs := opt.Digests
	if algs == nil {
		algs = []crypto.Hash{crypto.SHA256}
	}
	rep := &Report{Size: size, Segments: []SegmentReport{}}
	for _, h := range algs {
		if _, err := pcr.Name(h); err != nil {
			err = fmt.Errorf("segments: inspect: digest: %w", err)
			rep.Error = err.Error()
			return rep, err
		}
	}
	r := NewReader(ra, size, opt.Limits)
	r.KeepEntries(opt.List)
	for {
		s, err := r.Next()
		if err == io.EOF {
			return rep, nil
		}
		if err != nil {
			rep.Error = err.Error()
			return rep, err
		}
		sr := SegmentReport{Index: s.Index, Offset: s.Offset, Size: s.Size, Padding: s.Padding, Kind: s.Kind}
		// Digest the raw bytes on a second core while Scan decompresses.
		type digested struct {
			sums map[string]string
			err  error
		}
		dc := make(chan digested, 1)
		go func(off, size int64) {
			sums, err := digest(ra, off, size, algs)
			dc <- digested{sums, err}
		}(s.Offset, s.Size)
		err = r.Scan(s)
		d := <-dc
		if errors.Is(err, ErrUnsupportedFilter) {
			sr.Note = "entries not listed: " + err.Error()
		} else if err != nil {
			rep.Error = err.Error()
			return rep, err
		}
		if d.err != nil {
			rep.Error = d.err.Error()
			return rep, d.err
		}
		sr.Digests = d.sums
		if s.UncompressedSize >= 0 {
			sr.UncompressedSize = &s.UncompressedSize
		}
		if s.Scanned {
			sr.Entries, sr.Trailer = &s.Entries, &s.Trailer
		}
		sr.Warnings = s.Warnings
		for _, h := range s.Files {
			sr.Files = append(sr.Files, File{Mode: h.FileMode().String(), Size: h.Size, Name: h.Name, Link: h.Linkname, HardLink: h.HardLink})
		}
		rep.Segments = append(rep.Segments, sr)
	}
}

// digest returns the digests of [off, off+size) of ra keyed by their
// CEL-JSON names; every hash of algs must be pcr.Supported.
func digest(ra io.ReaderAt, off, size int64, algs []crypto.Hash) (map[string]string, error) {
	hs := make([]hash.Hash, len(algs))
	ws := make([]io.Writer, len(algs))
	for i, a := range algs {
		hs[i] = a.New()
		ws[i] = hs[i]
	}
	sec := io.NewSectionReader(ra, off, size)
	n, err := io.CopyBuffer(io.MultiWriter(ws...), sec, make([]byte, 256<<10))
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, &ReadError{Offset: off + n, Err: err}
	}
	out := make(map[string]string, len(algs))
	for i, a := range algs {
		name, _ := pcr.Name(a)
		out[name] = hex.EncodeToString(hs[i].Sum(nil))
	}
	return out, nil
}

// WriteText writes the report as a table: one row per segment, warnings
// under their segment and, with list, the entries.
func (r *Report) WriteText(w io.Writer, algs []crypto.Hash, list bool) error {
	if algs == nil {
		algs = []crypto.Hash{crypto.SHA256}
	}
	names := make([]string, len(algs))
	for i, h := range algs {
		name, err := pcr.Name(h)
		if err != nil {
			return fmt.Errorf("segments: report: %w", err)
		}
		names[i] = name
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: %d bytes, %d segments\n", r.Image, r.Size, len(r.Segments))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "#\tOFFSET\tSIZE\tPADDING\tKIND\tUNCOMPRESSED\tENTRIES\tTRAILER")
	for _, name := range names {
		fmt.Fprintf(tw, "\t%s", strings.ToUpper(name))
	}
	fmt.Fprintln(tw, "\tWARNINGS")
	for _, s := range r.Segments {
		un, ent, tr := "-", "-", "-"
		if s.UncompressedSize != nil {
			un = fmt.Sprint(*s.UncompressedSize)
		}
		if s.Entries != nil {
			ent = fmt.Sprint(*s.Entries)
			tr = map[bool]string{true: "yes", false: "no"}[*s.Trailer]
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s", s.Index, s.Offset, s.Size, s.Padding, s.Kind, un, ent, tr)
		for _, name := range names {
			fmt.Fprintf(tw, "\t%s", s.Digests[name])
		}
		fmt.Fprintf(tw, "\t%d\n", len(s.Warnings))
	}
	tw.Flush()
	for _, s := range r.Segments {
		for _, wa := range s.Warnings {
			fmt.Fprintf(&b, "segment %d: warning: %s\n", s.Index, wa)
		}
	}
	for _, s := range r.Segments {
		if s.Note != "" {
			fmt.Fprintf(&b, "segment %d: note: %s\n", s.Index, s.Note)
		}
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "error: %s\n", r.Error)
	}
	if list {
		for _, s := range r.Segments {
			if len(s.Files) == 0 {
				continue
			}
			fmt.Fprintf(&b, "\nsegment %d (%s at %d):\n", s.Index, s.Kind, s.Offset)
			for _, f := range s.Files {
				name := printable(f.Name)
				switch {
				case f.Link != "":
					name += " -> " + printable(f.Link)
				case f.HardLink != "":
					name += " link to " + printable(f.HardLink)
				}
				fmt.Fprintf(&b, "%s %10d %s\n", f.Mode, f.Size, name)
			}
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// printable quotes a name that holds control characters or invalid UTF-8,
// so that an image cannot write to the terminal through its names.
func printable(s string) string {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) {
		return strconv.Quote(s)
	}
	return s
}
