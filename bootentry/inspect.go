package bootentry

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/kexec-measured/kexec-measured/pcr"
	"github.com/kexec-measured/kexec-measured/segments"
)

// UKIReport is what `kexec-measured inspect` shows of a unified kernel
// image: every section, its digests (over the VirtualSize bytes that a load
// measures), and the segments of its .ucode and .initrd sections.
type UKIReport struct {
	Image    string          `json:"image,omitempty"`
	Size     int64           `json:"size"`
	Profiles int             `json:"profiles"`
	Sections []SectionReport `json:"sections"`
}

// SectionReport is one section of a UKIReport.
type SectionReport struct {
	Name    string            `json:"name"`
	Offset  int64             `json:"offset"`
	Size    int64             `json:"size"`
	RawSize int64             `json:"rawSize"`
	Profile *int              `json:"profile,omitempty"` // nil for a base section
	Digests map[string]string `json:"digests,omitempty"`
	Error   string            `json:"error,omitempty"`
	Initrd  *segments.Report  `json:"initrd,omitempty"` // the segments of .ucode and .initrd
}

// InspectUKI reports on the UKI in the first size bytes of r: its
// sections with digests named by opt.Digests (default sha256), and the
// segments of the initrd sections (segments.Inspect). Errors: those of
// ParseUKI; a section's own problems are in its Error.
func InspectUKI(r io.ReaderAt, size int64, opt segments.InspectOptions) (*UKIReport, error) {
	u, err := ParseUKI(r, size)
	if err != nil {
		return nil, err
	}
	algs := opt.Digests
	if algs == nil {
		algs = []crypto.Hash{crypto.SHA256}
	}
	rep := &UKIReport{Size: size, Profiles: u.Profiles}
	for _, s := range u.Sections {
		sr := SectionReport{Name: s.Name, Offset: s.Offset, Size: s.Size, RawSize: s.RawSize}
		if s.Profile >= 0 {
			p := s.Profile
			sr.Profile = &p
		}
		if err := s.check(); err != nil {
			sr.Error = err.Error()
			rep.Sections = append(rep.Sections, sr)
			continue
		}
		if sr.Digests, err = digestRange(r, s.Offset, s.Size, algs); err != nil {
			sr.Error = err.Error()
		}
		if (s.Name == ".initrd" || s.Name == ".ucode") && s.Size > 0 {
			ir, err := segments.Inspect(io.NewSectionReader(r, s.Offset, s.Size), s.Size, opt)
			if err != nil && ir == nil {
				sr.Error = err.Error()
			}
			sr.Initrd = ir
		}
		rep.Sections = append(rep.Sections, sr)
	}
	return rep, nil
}

// digestRange digests size bytes at off of r with each of algs, keyed by
// the bank names (pcr.Name).
func digestRange(r io.ReaderAt, off, size int64, algs []crypto.Hash) (map[string]string, error) {
	hs := make([]hash.Hash, len(algs))
	ws := make([]io.Writer, len(algs))
	for i, a := range algs {
		hs[i] = a.New()
		ws[i] = hs[i]
	}
	if _, err := io.Copy(io.MultiWriter(ws...), io.NewSectionReader(r, off, size)); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(algs))
	for i, a := range algs {
		name, err := pcr.Name(a)
		if err != nil {
			return nil, err
		}
		out[name] = hex.EncodeToString(hs[i].Sum(nil))
	}
	return out, nil
}

// Clean reports whether every section read and every initrd section's
// segments parsed cleanly.
func (r *UKIReport) Clean() bool {
	for _, s := range r.Sections {
		if s.Error != "" || (s.Initrd != nil && !s.Initrd.Clean()) {
			return false
		}
	}
	return true
}

// WriteText writes the report as a table of sections, then the segment
// table of each initrd section.
func (r *UKIReport) WriteText(w io.Writer, algs []crypto.Hash, list bool) error {
	if algs == nil {
		algs = []crypto.Hash{crypto.SHA256}
	}
	names := make([]string, len(algs))
	for i, a := range algs {
		name, err := pcr.Name(a)
		if err != nil {
			return err
		}
		names[i] = name
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: unified kernel image, %d bytes, %d sections, %d profile(s)\n", r.Image, r.Size, len(r.Sections), max(r.Profiles, 1))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "SECTION\tPROFILE\tOFFSET\tSIZE\tRAW")
	for _, n := range names {
		fmt.Fprintf(tw, "\t%s", strings.ToUpper(n))
	}
	fmt.Fprintln(tw)
	for _, s := range r.Sections {
		prof := "base"
		if s.Profile != nil {
			prof = fmt.Sprintf("@%d", *s.Profile)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d", s.Name, prof, s.Offset, s.Size, s.RawSize)
		for _, n := range names {
			d := s.Digests[n]
			if d == "" {
				d = "-"
			}
			fmt.Fprintf(tw, "\t%s", d)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	for _, s := range r.Sections {
		if s.Error != "" {
			fmt.Fprintf(&b, "section %s: error: %s\n", s.Name, s.Error)
		}
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return err
	}
	for _, s := range r.Sections {
		if s.Initrd == nil {
			continue
		}
		s.Initrd.Image = r.Image + " [" + s.Name + "]"
		fmt.Fprintln(w)
		if err := s.Initrd.WriteText(w, algs, list); err != nil {
			return err
		}
	}
	return nil
}
