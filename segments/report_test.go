package segments

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/pcr"
)

func TestReportText(t *testing.T) {
	evil := "bin/\x1b[31mred\nline"
	img := mkcpio([]entry{{name: evil, data: []byte("x")}, {name: "ok"}}, cpioOpts{})
	img = append(append(img, 0, 0), mkcpio([]entry{{name: "misaligned"}}, cpioOpts{})...)
	rep, err := Inspect(bytes.NewReader(img), int64(len(img)), InspectOptions{List: true, Digests: []crypto.Hash{crypto.SHA256, crypto.SHA384}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Clean() || len(rep.Segments) != 2 || len(rep.Segments[1].Warnings) != 1 {
		t.Fatalf("report %+v: want a misaligned second segment and Clean false", rep)
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b, []crypto.Hash{crypto.SHA256, crypto.SHA384}, true); err != nil {
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
	seg0 := img[rep.Segments[0].Offset : rep.Segments[0].Offset+rep.Segments[0].Size]
	if s0.SHA256 != hex.EncodeToString(hashtest.Sum(crypto.SHA256, seg0)) || s0.SHA384 != hex.EncodeToString(hashtest.Sum(crypto.SHA384, seg0)) ||
		s0.Files[0].Name != evil || s1.Warnings[0].Code != WarnMisalignedCpio {
		t.Errorf("JSON round trip = %+v", back)
	}
	if !strings.Contains(out, s0.SHA384) {
		t.Errorf("text lacks the SHA-384 digest %s:\n%s", s0.SHA384, out)
	}
}

// TestInspectUnknownDigest: a hash that is not a bank is refused with
// pcr.ErrUnknownBank, by Inspect and by WriteText.
func TestInspectUnknownDigest(t *testing.T) {
	img := mkcpio([]entry{{name: "x"}}, cpioOpts{})
	if _, err := Inspect(bytes.NewReader(img), int64(len(img)), InspectOptions{Digests: []crypto.Hash{crypto.MD5}}); !errors.Is(err, pcr.ErrUnknownBank) {
		t.Errorf("Inspect(md5) = %v, want pcr.ErrUnknownBank", err)
	}
	rep := &Report{Segments: []SegmentReport{}}
	if err := rep.WriteText(io.Discard, []crypto.Hash{crypto.SHA224}, false); !errors.Is(err, pcr.ErrUnknownBank) {
		t.Errorf("WriteText(sha224) = %v, want pcr.ErrUnknownBank", err)
	}
}

func TestReportUnsupportedFilter(t *testing.T) {
	raw := mkcpio(sampleFiles("arm", 3), cpioOpts{})
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
