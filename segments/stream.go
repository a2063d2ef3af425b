package segments

import (
	"bufio"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
)

// A ReportWriter receives a report while Inspect builds it
// (InspectOptions.Out), so that memory does not grow with the number of
// entries: Begin first, then for each segment its entries (with List) and
// the segment itself, then End.
type ReportWriter interface {
	Begin(r *Report) error // Image and Size are set
	// File is one cpio entry of the segment at index seg, which starts at
	// offset and is of kind; the segment itself follows its entries.
	File(seg int, kind string, offset int64, f File) error
	Segment(s SegmentReport) error // a segment, without its Files
	End(r *Report) error           // Error and Warnings are set
}

// NewTextWriter returns a ReportWriter printing what Report.WriteText
// prints: with list, the entries of each segment as they are found, then the
// table of segments (kept in memory, one row each) and the warnings.
func NewTextWriter(w io.Writer, algs []crypto.Hash, list bool) ReportWriter {
	return &textWriter{w: bufio.NewWriterSize(w, 64<<10), algs: algs, list: list, last: -1}
}

type textWriter struct {
	w    *bufio.Writer
	algs []crypto.Hash
	list bool
	last int // segment whose entries are being printed
	rep  Report
}

func (t *textWriter) Begin(r *Report) error {
	t.rep = Report{Image: r.Image, Size: r.Size}
	return nil
}

func (t *textWriter) File(seg int, kind string, offset int64, f File) error {
	if !t.list {
		return nil
	}
	if seg != t.last {
		t.last = seg
		fmt.Fprintf(t.w, "segment %d (%s at %d):\n", seg, kind, offset)
	}
	_, err := writeFile(t.w, f)
	return err
}

func (t *textWriter) Segment(s SegmentReport) error {
	if t.last >= 0 {
		t.last = -1
		if err := t.w.WriteByte('\n'); err != nil {
			return err
		}
	}
	t.rep.Segments = append(t.rep.Segments, s)
	return nil
}

func (t *textWriter) End(r *Report) error {
	t.rep.Error, t.rep.Warnings = r.Error, r.Warnings
	if err := t.rep.writeTable(t.w, t.algs); err != nil {
		return err
	}
	return t.w.Flush()
}

// NewJSONWriter returns a ReportWriter printing the report as one JSON
// object and a newline, written as it is built: each segment's entries are
// written as they are found, in its "files" list.
func NewJSONWriter(w io.Writer) ReportWriter {
	return &jsonWriter{w: bufio.NewWriterSize(w, 64<<10), seg: -1}
}

type jsonWriter struct {
	w     *bufio.Writer
	n     int // segments written
	seg   int // segment whose entries are being written
	files int
}

func (j *jsonWriter) Begin(r *Report) error {
	head := struct {
		Image string `json:"image,omitempty"`
		Size  int64  `json:"size"`
	}{r.Image, r.Size}
	b, err := json.Marshal(head)
	if err != nil {
		return err
	}
	j.w.Write(b[:len(b)-1])
	_, err = j.w.WriteString(`,"segments":[`)
	return err
}

// open starts the object of segment seg with its index and offset.
func (j *jsonWriter) open(seg int, offset int64) {
	if j.n > 0 {
		j.w.WriteByte(',')
	}
	fmt.Fprintf(j.w, `{"index":%d,"offset":%d`, seg, offset)
	j.seg, j.files = seg, 0
}

func (j *jsonWriter) File(seg int, kind string, offset int64, f File) error {
	if seg != j.seg {
		j.open(seg, offset)
	}
	if j.files == 0 {
		j.w.WriteString(`,"files":[`)
	} else {
		j.w.WriteByte(',')
	}
	j.files++
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	_, err = j.w.Write(b)
	return err
}

func (j *jsonWriter) Segment(s SegmentReport) error {
	if s.Index != j.seg {
		j.open(s.Index, s.Offset)
	}
	if j.files > 0 {
		j.w.WriteByte(']')
	}
	s.Files = nil
	b, err := s.MarshalJSON()
	if err != nil {
		return err
	}
	// Drop "index" and "offset", already written: the object starts with them.
	prefix := fmt.Sprintf(`{"index":%d,"offset":%d`, s.Index, s.Offset)
	if string(b[:len(prefix)]) != prefix {
		return fmt.Errorf("segments: JSON of segment %d does not start with its index and offset", s.Index)
	}
	j.w.Write(b[len(prefix):])
	j.n++
	j.seg = -1
	return nil
}

func (j *jsonWriter) End(r *Report) error {
	j.w.WriteByte(']')
	tail := struct {
		Error    string    `json:"error,omitempty"`
		Warnings []Warning `json:"warnings,omitempty"`
	}{r.Error, r.Warnings}
	b, err := json.Marshal(tail)
	if err != nil {
		return err
	}
	if len(b) > 2 {
		j.w.WriteByte(',')
		j.w.Write(b[1 : len(b)-1])
	}
	j.w.WriteString("}\n")
	return j.w.Flush()
}

// collector is the ReportWriter of Inspect without InspectOptions.Out: it
// keeps everything in the Report.
type collector struct {
	rep   *Report
	seg   int
	files []File
}

func (c *collector) Begin(*Report) error { return nil }

func (c *collector) File(seg int, _ string, _ int64, f File) error {
	if seg != c.seg {
		c.seg, c.files = seg, nil
	}
	c.files = append(c.files, f)
	return nil
}

func (c *collector) Segment(s SegmentReport) error {
	if s.Index == c.seg {
		s.Files = c.files
	}
	c.seg, c.files = -1, nil
	c.rep.Segments = append(c.rep.Segments, s)
	return nil
}

func (c *collector) End(*Report) error { return nil }
