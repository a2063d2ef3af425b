package pcr

import (
	"crypto"
	"errors"
	"slices"
	"testing"

	"github.com/kexec-measured/kexec-measured/internal/hashtest"
)

func TestNamesRoundTrip(t *testing.T) {
	want := map[crypto.Hash]string{crypto.SHA1: "sha1", crypto.SHA256: "sha256", crypto.SHA384: "sha384", crypto.SHA512: "sha512"}
	if got := Banks(); !slices.Equal(got, []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}) {
		t.Fatalf("Banks() = %v", got)
	}
	for h, name := range want {
		got, err := Name(h)
		if err != nil || got != name {
			t.Errorf("Name(%v) = %q, %v; want %q", h, got, err, name)
		}
		back, err := Parse(name)
		if err != nil || back != h {
			t.Errorf("Parse(%q) = %v, %v; want %v", name, back, err, h)
		}
		if !Supported(h) {
			t.Errorf("Supported(%v) = false", h)
		}
	}
	for _, h := range []crypto.Hash{crypto.MD5, crypto.SHA3_256, 0} {
		if _, err := Name(h); !errors.Is(err, ErrUnknownBank) {
			t.Errorf("Name(%v) = %v, want ErrUnknownBank", h, err)
		}
		if Supported(h) {
			t.Errorf("Supported(%v) = true", h)
		}
	}
}

func TestParseList(t *testing.T) {
	for _, tc := range []struct {
		name    string
		list    string
		want    []crypto.Hash
		wantErr error // nil: must succeed; errAny: any error
	}{
		{"one", "sha256", []crypto.Hash{crypto.SHA256}, nil},
		{"sorted", "sha512,sha1", []crypto.Hash{crypto.SHA1, crypto.SHA512}, nil},
		{"upper case and spaces", " SHA256 , Sha1", []crypto.Hash{crypto.SHA1, crypto.SHA256}, nil},
		{"all", "sha1,sha256,sha384,sha512", []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}, nil},
		{"empty items skipped", "sha1,,sha256,", []crypto.Hash{crypto.SHA1, crypto.SHA256}, nil},
		{"unknown", "sha256,md5", nil, ErrUnknownBank},
		{"sm3 unknown", "sm3_256", nil, ErrUnknownBank},
		{"twice", "sha256,SHA256", nil, errAny},
		{"empty", "", nil, errAny},
		{"only commas", ",,", nil, errAny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseList(tc.list)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("ParseList(%q): %v", tc.list, err)
			case tc.wantErr == nil && !slices.Equal(got, tc.want):
				t.Fatalf("ParseList(%q) = %v, want %v", tc.list, got, tc.want)
			case tc.wantErr == errAny && err == nil:
				t.Fatalf("ParseList(%q) = %v, want an error", tc.list, got)
			case tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Fatalf("ParseList(%q) error %v, want %v", tc.list, err, tc.wantErr)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestCheck(t *testing.T) {
	for _, i := range []int{0, 9, 23} {
		if err := Check(i); err != nil {
			t.Errorf("Check(%d) = %v", i, err)
		}
	}
	for _, i := range []int{-1, 24, 1000} {
		if err := Check(i); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("Check(%d) = %v, want ErrOutOfRange", i, err)
		}
	}
}

func TestExtend(t *testing.T) {
	for _, h := range Banks() {
		old := hashtest.Sum(h, []byte("old"))
		d := hashtest.Sum(h, []byte("x"))
		if got, want := Extend(h, old, d), hashtest.Extend(h, old, d); !slices.Equal(got, want) {
			t.Errorf("Extend %v = %x, want %x", h, got, want)
		}
		if !slices.Equal(old, hashtest.Sum(h, []byte("old"))) {
			t.Errorf("Extend %v changed old", h)
		}
	}
}

func TestInitial(t *testing.T) {
	for _, tc := range []struct {
		index int
		fill  byte
	}{{0, 0}, {9, 0}, {16, 0}, {17, 0xff}, {22, 0xff}, {23, 0}} {
		v := Initial(crypto.SHA384, tc.index)
		if len(v) != 48 {
			t.Fatalf("Initial(sha384, %d) has %d bytes", tc.index, len(v))
		}
		for _, b := range v {
			if b != tc.fill {
				t.Fatalf("Initial(sha384, %d) = %x, want all %#x", tc.index, v, tc.fill)
			}
		}
	}
}
