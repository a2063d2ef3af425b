package bootentry

import (
	"cmp"
	"testing"
)

// TestCompareVersions checks the order systemd documents for
// strverscmp_improved() (string-util-fundamental.c) and cases from its
// test-string-util.c.
func TestCompareVersions(t *testing.T) {
	ordered := []string{
		"122.1", "123~rc1-1", "123", "123-a", "123-a.1", "123-1", "123-1.1",
		"123^post1", "123.a-1", "123.1-1", "123a-1", "124-1",
	}
	for i := range ordered {
		for j := range ordered {
			got := CompareVersions(ordered[i], ordered[j])
			want := cmp.Compare(i, j)
			if sign(got) != want {
				t.Errorf("CompareVersions(%q, %q) = %d, want sign %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "1", -1},
		{"00123", "123", 0},
		{"1_2", "1.2", 1}, // "_" only separates: "12"-like, newer than a point release
		{"6.1.0-10", "6.1.0-9", 1},
		{"6.10", "6.2", 1},
		{"a-6.10.conf", "a-6.2.conf", 1},
		{"abc", "abcde", -1},
		{"123a", "123.a", 1},
		{"5.2", "5.2~rc1", 1},
		{"1~~", "1~", 1}, // after both "~", the longer is newer
		{"--", "--", 0},
	} {
		if got := CompareVersions(c.a, c.b); sign(got) != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want sign %d", c.a, c.b, got, c.want)
		}
	}
}

func sign(n int) int { return cmp.Compare(n, 0) }

func FuzzCompareVersions(f *testing.F) {
	f.Add("6.1.0-10", "6.1.0-9")
	f.Add("123~rc1", "123^post1")
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := CompareVersions(a, b), CompareVersions(b, a)
		if sign(ab) != -sign(ba) {
			t.Fatalf("CompareVersions(%q, %q) = %d but reversed %d", a, b, ab, ba)
		}
		if CompareVersions(a, a) != 0 {
			t.Fatalf("CompareVersions(%q, itself) != 0", a)
		}
	})
}
