package eventlog

import (
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/pcr"
)

// TestCELBank: a record's hashAlg names a bank only in the exact
// lower-case form Sum looks for; "SHA256" is a bank we do not know (kept,
// not checked), unlike the user's --banks=SHA256.
func TestCELBank(t *testing.T) {
	for name, want := range map[string]crypto.Hash{"sha1": crypto.SHA1, "sha256": crypto.SHA256, "sha384": crypto.SHA384, "sha512": crypto.SHA512} {
		if h, ok := celBank(name); !ok || h != want {
			t.Errorf("celBank(%q) = %v, %v; want %v", name, h, ok, want)
		}
	}
	for _, name := range []string{"", "SHA256", "Sha1", "sha-256", "sm3_256", "md5"} {
		if h, ok := celBank(name); ok {
			t.Errorf("celBank(%q) = %v, want no bank", name, h)
		}
	}
}

func TestNewKexecRecordEncoding(t *testing.T) {
	data := []byte("initrd component")
	sums := map[crypto.Hash][]byte{}
	// Insert in reverse order: the encoding must not depend on map order.
	for _, h := range []crypto.Hash{crypto.SHA512, crypto.SHA384, crypto.SHA256, crypto.SHA1} {
		sums[h] = hashtest.Sum(h, data)
	}
	seg := 2
	c := KexecContent{
		Event: EventInitrd, Path: "/boot/a<b>&c.cpio", Offset: 4096, Size: int64(len(data)),
		Segment: &seg, Kind: "gzip", BootID: "0123456789abcdef0123456789abcdef", Timestamp: 5,
	}
	rec, err := NewKexecRecord(9, sums, c)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("\x1e"+`{"pcr":9,"digests":[`+
		`{"hashAlg":"sha1","digest":"%x"},{"hashAlg":"sha256","digest":"%x"},`+
		`{"hashAlg":"sha384","digest":"%x"},{"hashAlg":"sha512","digest":"%x"}],`+
		`"content_type":"kexec-measured",`+
		`"content":{"event":"kexec-initrd","path":"/boot/a<b>&c.cpio","offset":4096,"size":16,`+
		`"segment":2,"kind":"gzip","bootId":"0123456789abcdef0123456789abcdef","timestamp":5}}`+"\n",
		hashtest.Sum(crypto.SHA1, data), hashtest.Sum(crypto.SHA256, data), hashtest.Sum(crypto.SHA384, data), hashtest.Sum(crypto.SHA512, data))
	for i := range 3 { // deterministic: the same bytes every time
		got, err := rec.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Fatalf("Encode (try %d) =\n%q\nwant\n%q", i, got, want)
		}
	}
	js, err := rec.MarshalJSON()
	if err != nil || string(js) != want[1:len(want)-1] {
		t.Errorf("MarshalJSON = %q, %v; want the text between RS and LF", js, err)
	}
	// The record reads back to the same fields.
	back, err := parseRecord(js)
	if err != nil {
		t.Fatal(err)
	}
	if back.PCR != 9 || back.ContentType != ContentType || len(back.Digests) != 4 || string(back.Content) != string(rec.Content) {
		t.Errorf("parsed back = %+v", back)
	}
	for h, s := range sums {
		got, err := back.Sum(h)
		if err != nil || hex.EncodeToString(got) != hex.EncodeToString(s) {
			t.Errorf("Sum(%v) = %x, %v; want %x", h, got, err, s)
		}
	}
}

func TestNewKexecRecordKernelZeroOffset(t *testing.T) {
	sums := map[crypto.Hash][]byte{crypto.SHA256: hashtest.Sum(crypto.SHA256, nil)}
	rec, err := NewKexecRecord(9, sums, KexecContent{Event: EventCmdline})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"pcr":9,"digests":[{"hashAlg":"sha256","digest":"%x"}],"content_type":"kexec-measured","content":{"event":"kexec-cmdline","offset":0,"size":0}}`, sums[crypto.SHA256])
	got, _ := rec.MarshalJSON()
	if string(got) != want {
		t.Errorf("MarshalJSON =\n%s\nwant\n%s", got, want)
	}
}

func TestNewKexecRecordErrors(t *testing.T) {
	good := hashtest.Sum(crypto.SHA256, nil)
	tests := []struct {
		name string
		pcr  int
		sums map[crypto.Hash][]byte
		want error
		text string // in the message
	}{
		{"negative PCR", -1, map[crypto.Hash][]byte{crypto.SHA256: good}, pcr.ErrOutOfRange, "-1"},
		{"PCR 24", 24, map[crypto.Hash][]byte{crypto.SHA256: good}, pcr.ErrOutOfRange, "24"},
		{"no digests", 9, nil, ErrMalformed, "no digests"},
		{"short digest", 9, map[crypto.Hash][]byte{crypto.SHA256: good[:31]}, ErrMalformed, "sha256 digest has 31 bytes, want 32"},
		{"unnamed hash", 9, map[crypto.Hash][]byte{crypto.SHA224: make([]byte, 28)}, pcr.ErrUnknownBank, "SHA-224"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewKexecRecord(tc.pcr, tc.sums, KexecContent{Event: EventKernel})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("NewKexecRecord = %v, want %v naming %q", err, tc.want, tc.text)
			}
		})
	}
}

func TestSumErrors(t *testing.T) {
	rec := Record{PCR: 9, Digests: []Digest{{HashAlg: "sha256", Digest: "zz"}}}
	if _, err := rec.Sum(crypto.SHA1); !errors.Is(err, ErrMissingDigest) {
		t.Errorf("Sum(SHA1) = %v, want ErrMissingDigest", err)
	}
	if _, err := rec.Sum(crypto.SHA256); !errors.Is(err, ErrMalformed) {
		t.Errorf("Sum(SHA256) of bad hex = %v, want ErrMalformed", err)
	}
}

func TestDefaultPath(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unset", nil, "/run/log/systemd/tpm2-measure.log"},
		{"empty", map[string]string{PathEnv: ""}, "/run/log/systemd/tpm2-measure.log"},
		{"set", map[string]string{PathEnv: "/tmp/x.log"}, "/tmp/x.log"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DefaultPath(func(k string) string { return tc.env[k] }); got != tc.want {
				t.Errorf("DefaultPath = %q, want %q", got, tc.want)
			}
		})
	}
	if got := DefaultPath(nil); got != DefaultLogPath {
		t.Errorf("DefaultPath(nil) = %q", got)
	}
}
