package segments

import (
	"bufio"
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
	"unicode"
	"unicode/utf8"

	"github.com/kexec-measured/kexec-measured/pcr"
)

// InspectOptions configure Inspect. The zero value walks the image, scans
// every segment's cpio data and digests each segment with SHA-256.
type InspectOptions struct {
	Image   string // the image's name in the report
	Limits  Limits
	List    bool          // include every cpio entry
	Digests []crypto.Hash // pcr.Banks() hashes; nil means SHA-256
	// Out, when set, receives the report while it is built (NewTextWriter,
	// NewJSONWriter), and the returned Report has no Segments: memory does
	// not grow with the entries of the image.
	Out ReportWriter
}

// Report describes one image: what `kexec-measured inspect` prints.
type Report struct {
	Image    string          `json:"image,omitempty"`
	Size     int64           `json:"size"`
	Segments []SegmentReport `json:"segments"`
	Error    string          `json:"error,omitempty"`    // why the walk stopped early
	Warnings []Warning       `json:"warnings,omitempty"` // a limit that cut the walk short (WarnLimit)

	unclean bool // a segment had warnings or was unknown
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
	if r.Error != "" || r.unclean || len(r.Warnings) > 0 {
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
// ErrLimit it returns the report so far (with Error set; for ErrLimit also
// a WarnLimit warning naming the limit) and the error. An error of
// opt.Out is returned as it is.
func Inspect(ra io.ReaderAt, size int64, opt InspectOptions) (*Report, error) {
	algs := opt.Digests
	if algs == nil {
		algs = []crypto.Hash{crypto.SHA256}
	}
	rep := &Report{Image: opt.Image, Size: size, Segments: []SegmentReport{}}
	for _, h := range algs {
		if _, err := pcr.Name(h); err != nil {
			err = fmt.Errorf("segments: inspect: digest: %w", err)
			rep.Error = err.Error()
			return rep, err
		}
	}
	out := opt.Out
	if out == nil {
		out = &collector{rep: rep, seg: -1}
	}
	if err := out.Begin(rep); err != nil {
		return rep, err
	}
	err := inspect(ra, size, opt, algs, rep, out)
	var werr *writeError
	if errors.As(err, &werr) {
		return rep, werr.err
	}
	if err != nil {
		rep.Error = err.Error()
		if errors.Is(err, ErrLimit) {
			rep.Warnings = append(rep.Warnings, Warning{Offset: limitOffset(err), Code: WarnLimit, Message: err.Error()})
		}
	}
	if werr := out.End(rep); werr != nil {
		return rep, werr
	}
	return rep, err
}

// writeError is an error of the ReportWriter, which ends the walk.
type writeError struct{ err error }

func (w *writeError) Error() string { return w.err.Error() }

// limitError is an ErrLimit with the offset of the segment it stopped.
type limitError struct {
	off int64
	err error
}

func (l *limitError) Error() string { return l.err.Error() }
func (l *limitError) Unwrap() error { return l.err }

func limitOffset(err error) int64 {
	var le *limitError
	if errors.As(err, &le) {
		return le.off
	}
	return 0
}

func inspect(ra io.ReaderAt, size int64, opt InspectOptions, algs []crypto.Hash, rep *Report, out ReportWriter) error {
	r := NewReader(ra, size, opt.Limits)
	var werr error
	if opt.List {
		r.onEntry = func(s *Segment, h *Header) {
			if werr == nil {
				werr = out.File(s.Index, s.Kind, s.Offset, File{Mode: h.FileMode().String(), Size: h.Size, Name: h.Name, Link: h.Linkname, HardLink: h.HardLink})
			}
		}
	}
	buf := make([]byte, 256<<10)
	for {
		at := r.pos
		s, err := r.Next()
		if werr != nil {
			return &writeError{werr}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &limitError{at, err}
		}
		sr := SegmentReport{Index: s.Index, Offset: s.Offset, Size: s.Size, Padding: s.Padding, Kind: s.Kind}
		// Digest the raw bytes on a second core while Scan decompresses.
		type digested struct {
			sums map[string]string
			err  error
		}
		dc := make(chan digested, 1)
		go func(off, size int64) {
			sums, err := digest(ra, off, size, algs, buf)
			dc <- digested{sums, err}
		}(s.Offset, s.Size)
		err = r.Scan(s)
		d := <-dc
		if werr != nil {
			return &writeError{werr}
		}
		if errors.Is(err, ErrUnsupportedFilter) {
			sr.Note = "entries not listed: " + err.Error()
		} else if err != nil {
			return &limitError{s.Offset, err}
		}
		if d.err != nil {
			return d.err
		}
		sr.Digests = d.sums
		if s.UncompressedSize >= 0 {
			sr.UncompressedSize = &s.UncompressedSize
		}
		if s.Scanned {
			sr.Entries, sr.Trailer = &s.Entries, &s.Trailer
		}
		sr.Warnings = s.Warnings
		if len(s.Warnings) > 0 || s.Kind == KindUnknown {
			rep.unclean = true
		}
		if err := out.Segment(sr); err != nil {
			return &writeError{err}
		}
	}
}

func digest(ra io.ReaderAt, off, size int64, algs []crypto.Hash, buf []byte) (map[string]string, error) {
	hs := make([]hash.Hash, len(algs))
	ws := make([]io.Writer, len(algs))
	for i, a := range algs {
		hs[i] = a.New()
		ws[i] = hs[i]
	}
	sec := io.NewSectionReader(ra, off, size)
	n, err := io.CopyBuffer(io.MultiWriter(ws...), sec, buf)
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

// WriteText writes the report: with list, the entries of each segment
// first, then one row per segment and the warnings under the table (the
// order in which NewTextWriter can write them as the walk goes).
func (r *Report) WriteText(w io.Writer, algs []crypto.Hash, list bool) error {
	var b bytes.Buffer
	if list {
		for _, s := range r.Segments {
			if len(s.Files) == 0 {
				continue
			}
			fmt.Fprintf(&b, "segment %d (%s at %d):\n", s.Index, s.Kind, s.Offset)
			for _, f := range s.Files {
				writeFile(&b, f)
			}
			b.WriteByte('\n')
		}
	}
	if err := r.writeTable(&b, algs); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

// writeTable writes the summary line, one row per segment, the warnings,
// the notes and the error.
func (r *Report) writeTable(w io.Writer, algs []crypto.Hash) error {
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
	bw := bufio.NewWriterSize(w, 64<<10)
	fmt.Fprintf(bw, "%s: %d bytes, %d segments\n", r.Image, r.Size, len(r.Segments))
	// The columns are aligned as text/tabwriter would (two spaces after
	// the widest cell), without holding every cell twice.
	head := []string{"#", "OFFSET", "SIZE", "PADDING", "KIND", "UNCOMPRESSED", "ENTRIES", "TRAILER"}
	for _, name := range names {
		head = append(head, strings.ToUpper(name))
	}
	row := func(s *SegmentReport) []string {
		un, ent, tr := "-", "-", "-"
		if s.UncompressedSize != nil {
			un = strconv.FormatInt(*s.UncompressedSize, 10)
		}
		if s.Entries != nil {
			ent = strconv.Itoa(*s.Entries)
			tr = map[bool]string{true: "yes", false: "no"}[*s.Trailer]
		}
		cells := []string{strconv.Itoa(s.Index), strconv.FormatInt(s.Offset, 10), strconv.FormatInt(s.Size, 10), strconv.FormatInt(s.Padding, 10), s.Kind, un, ent, tr}
		for _, name := range names {
			cells = append(cells, s.Digests[name])
		}
		return cells
	}
	width := make([]int, len(head))
	for i, c := range head {
		width[i] = len(c)
	}
	for i := range r.Segments {
		for j, c := range row(&r.Segments[i]) {
			width[j] = max(width[j], len(c))
		}
	}
	line := func(cells []string, last string) {
		for j, c := range cells {
			bw.WriteString(c)
			bw.WriteString(strings.Repeat(" ", width[j]-len(c)+2))
		}
		bw.WriteString(last)
		bw.WriteByte('\n')
	}
	line(head, "WARNINGS")
	for i := range r.Segments {
		line(row(&r.Segments[i]), strconv.Itoa(len(r.Segments[i].Warnings)))
	}
	b := bw
	for _, s := range r.Segments {
		for _, wa := range s.Warnings {
			fmt.Fprintf(b, "segment %d: warning: %s\n", s.Index, wa)
		}
	}
	for _, wa := range r.Warnings {
		fmt.Fprintf(b, "warning: %s\n", wa)
	}
	for _, s := range r.Segments {
		if s.Note != "" {
			fmt.Fprintf(b, "segment %d: note: %s\n", s.Index, s.Note)
		}
	}
	if r.Error != "" {
		fmt.Fprintf(b, "error: %s\n", r.Error)
	}
	return bw.Flush()
}

// writeFile writes one entry line of a listing.
func writeFile(w io.Writer, f File) (int, error) {
	name := printable(f.Name)
	switch {
	case f.Link != "":
		name += " -> " + printable(f.Link)
	case f.HardLink != "":
		name += " link to " + printable(f.HardLink)
	}
	return fmt.Fprintf(w, "%s %10d %s\n", f.Mode, f.Size, name)
}

// printable quotes a name that holds control characters or invalid UTF-8,
// so that an image cannot write to the terminal through its names.
func printable(s string) string {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) {
		return strconv.Quote(s)
	}
	return s
}
