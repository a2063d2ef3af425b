package segments

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestReportText(t *testing.T) {
	evil := "bin/\x1b[31mred\nline"
	img := newc([]entry{{name: evil, data: []byte("x")}, {name: "ok"}}, cpioOpts{})
	img = append(append(img, 0, 0), newc([]entry{{name: "misaligned"}}, cpioOpts{})...)
	rep, err := Inspect(bytes.NewReader(img), int64(len(img)), InspectOptions{List: true, Digests: []string{"sha256", "sha384"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Clean() || len(rep.Segments) != 2 || len(rep.Segments[1].Warnings) != 1 {
		t.Fatalf("report %+v: want a misaligned second segment and Clean false", rep)
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b, []string{"sha256", "sha384"}, true); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, "\x1b") || !strings.Contains(out, `"bin/\x1b[31mred\nline"`) {
		t.Errorf("a name with control characters is not quoted:\n%s", out)
	}
	for _, want := range []string{"SHA256", "SHA384", WarnMisalignedCpio, "-rw-r--r--          1 "} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Segments []struct {
			Kind     string
			SHA256   string `json:"sha256"`
			SHA384   string `json:"sha384"`
			Warnings []Warning
			Files    []File
		}
	}
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	s0, s1 := back.Segments[0], back.Segments[1]
	if len(s0.SHA256) != 64 || len(s0.SHA384) != 96 || s0.Files[0].Name != evil || s1.Warnings[0].Code != WarnMisalignedCpio {
		t.Errorf("JSON round trip = %+v", back)
	}
}

func TestParseDigests(t *testing.T) {
	for in, ok := range map[string]bool{"sha256": true, "SHA1, sha512": true, "md5": false, "sha256,sha256": false, "": false, ",": false} {
		if _, err := ParseDigests(in); (err == nil) != ok {
			t.Errorf("ParseDigests(%q) error %v, want ok %v", in, err, ok)
		}
	}
}

func TestReportUnsupportedFilter(t *testing.T) {
	raw := newc(sampleFiles("arm", 3), cpioOpts{})
	img := compress(t, raw, "xz", "-c", "--check=crc32", "--arm", "--lzma2")
	rep, err := Inspect(bytes.NewReader(img), int64(len(img)), InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Segments) != 1 {
		t.Fatalf("segments = %+v", rep.Segments)
	}
	s := rep.Segments[0]
	if s.Kind != KindXZ || s.Size != int64(len(img)) || len(s.Warnings) != 0 || !strings.Contains(s.Note, "filter 0x7") || s.Entries != nil {
		t.Fatalf("segment = %+v, want an xz segment with a note about the ARM filter (0x7) and no entries", s)
	}
}
