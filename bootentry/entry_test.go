package bootentry

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseType1(t *testing.T) {
	e, err := ParseType1("x+3-1.conf", []byte(
		"# comment\n"+
			"  title   My  OS  \n"+
			"linux vmlinuz\n"+ // made absolute
			"initrd //a//./b\n"+ // simplified
			"initrd /c/../d\n"+ // not normalized: ignored
			"initrd /dir/\n"+ // a directory: ignored
			"initrd\n"+ // no value: ignored
			"options\n"+ // empty options: no line
			"options a=1\tb\n"+
			"options c\n"+
			"frobnicate yes\n"))
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "x.conf" || e.TriesLeft != 3 || e.TriesDone != 1 {
		t.Errorf("id %q tries %d/%d", e.ID, e.TriesLeft, e.TriesDone)
	}
	if e.Title != "My  OS" || e.Linux != "/vmlinuz" {
		t.Errorf("title %q linux %q", e.Title, e.Linux)
	}
	if !slices.Equal(e.Initrd, []string{"/a/b"}) {
		t.Errorf("initrd %q", e.Initrd)
	}
	if e.Cmdline() != "a=1\tb c" {
		t.Errorf("cmdline %q", e.Cmdline())
	}
	if len(e.Warnings) != 4 {
		t.Errorf("warnings %q, want 4 (two bad paths, a key without value, an unknown key)", e.Warnings)
	}
}

func TestParseType1Errors(t *testing.T) {
	for _, c := range []struct {
		name, data string
		want       error
		text       string
	}{
		{"a b.conf", "", ErrInvalidName, "a b.conf"},
		{"x.cfg", "", ErrInvalidName, "x.cfg"},
		{"p.conf", "profile x\n", nil, "profile"},
		{"long.conf", "title " + strings.Repeat("x", maxLine) + "\n", nil, "long.conf"},
	} {
		_, err := ParseType1(c.name, []byte(c.data))
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v, want an error naming %q", c.name, err, c.text)
		}
	}
}

func TestSplitTries(t *testing.T) {
	for _, c := range []struct {
		in, out    string
		left, done int
	}{
		{"a.conf", "a.conf", -1, -1},
		{"a+3.conf", "a.conf", 3, -1},
		{"a+3-0.conf", "a.conf", 3, 0},
		{"a+0-3.efi", "a.efi", 0, 3},
		{"a+b+1-2.conf", "a+b.conf", 1, 2},
		{"a+.conf", "a+.conf", -1, -1},
		{"a+1-.conf", "a+1-.conf", -1, -1},
		{"a+1-2-3.conf", "a+1-2-3.conf", -1, -1},
		{"a+99999999999.conf", "a+99999999999.conf", -1, -1},
		{"noext+1", "noext+1", -1, -1},
	} {
		out, l, d := splitTries(c.in)
		if out != c.out || l != c.left || d != c.done {
			t.Errorf("splitTries(%q) = %q %d %d, want %q %d %d", c.in, out, l, d, c.out, c.left, c.done)
		}
	}
}

func FuzzParseType1(f *testing.F) {
	f.Add("a+1-2.conf", []byte("title x\nlinux /k\ninitrd /a\ninitrd b\noptions x\n"))
	f.Add("b.conf", []byte("devicetree-overlay a b ../c\nprofile 7\n"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		e, err := ParseType1(name, data)
		if err != nil {
			return
		}
		for _, p := range append([]string{e.Linux}, e.Initrd...) {
			if p != "" && (!strings.HasPrefix(p, "/") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/")) {
				t.Fatalf("path %q not normalized", p)
			}
		}
		if !validEntryName(e.ID) {
			t.Fatalf("invalid ID %q accepted", e.ID)
		}
	})
}
