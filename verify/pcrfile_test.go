package verify

import (
	"bytes"
	"crypto"
	"errors"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/internal/hashtest"
)

// Values as tpm2-tools prints them (tpm2-tools 5.4, Debian 12).
var (
	sha1Nine   = hexOf(hashtest.Sum(crypto.SHA1, []byte("9")))
	sha256Nine = hexOf(hashtest.Sum(crypto.SHA256, []byte("9")))
	sha256Zero = strings.Repeat("0", 64)
)

func TestParsePCRValues(t *testing.T) {
	tests := []struct {
		name string
		text string
		want map[crypto.Hash]map[int]string
	}{
		{
			name: "tpm2_pcrread",
			text: "  sha1:\n    9 : 0x" + strings.ToUpper(sha1Nine) + "\n  sha256:\n    0 : 0x" + sha256Zero + "\n    9 : 0x" + sha256Nine + "\n",
			want: map[crypto.Hash]map[int]string{crypto.SHA1: {9: sha1Nine}, crypto.SHA256: {0: sha256Zero, 9: sha256Nine}},
		},
		{
			name: "tpm2_checkquote",
			text: "pcrs:\n  sha256:\n    0 : 0x" + sha256Zero + "\n    9 : 0x" + sha256Nine + "\nsig: 0011\n",
			want: map[crypto.Hash]map[int]string{crypto.SHA256: {0: sha256Zero, 9: sha256Nine}},
		},
		{
			name: "tpm2_quote, other keys with blocks and lists",
			text: "quoted: ff544347\nsignature:\n  alg: rsassa\n  sig: 00ff\nevents:\n- EventNum: 0\n  PCRIndex: 9\n  sha1: nested, not ours\npcrs:\n  sha1:\n    9  : 0x" + sha1Nine + "\ncalcDigest: 1234\n",
			want: map[crypto.Hash]map[int]string{crypto.SHA1: {9: sha1Nine}},
		},
		{
			name: "document markers, comments, CRLF",
			text: "---\r\n# comment\r\n  sha256:\r\n    9 : 0x" + sha256Nine + "\r\n...\r\n",
			want: map[crypto.Hash]map[int]string{crypto.SHA256: {9: sha256Nine}},
		},
		{
			name: "our JSON",
			text: `{"pcrs":{"sha256":{"0":"` + sha256Zero + `","9":"` + sha256Nine + `"},"sha1":{}}}`,
			want: map[crypto.Hash]map[int]string{crypto.SHA256: {0: sha256Zero, 9: sha256Nine}, crypto.SHA1: {}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := ParsePCRValues([]byte(tc.text), "pcrs.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if len(v) != len(tc.want) {
				t.Errorf("banks %v, want %d", v.Banks(), len(tc.want))
			}
			for h, pcrs := range tc.want {
				got, ok := v[h]
				if !ok {
					t.Errorf("no bank %v", h)
					continue
				}
				for i, val := range got {
					want, ok := pcrs[i]
					if !ok && val != nil {
						t.Errorf("%v PCR %d = %x, want none", h, i, val)
					}
					if ok && hexOf(val) != want {
						t.Errorf("%v PCR %d = %x, want %s", h, i, val, want)
					}
				}
			}
		})
	}
}

func TestParsePCRValuesRefuses(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"empty", "", "no PCR values"},
		{"no bank", "quoted: ff\n", "no PCR values"},
		{"tab", "\tsha256:\n", "line 1: a tab"},
		{"unknown bank under pcrs", "pcrs:\n  sm3_256:\n    0 : 0x00\n", "line 2: \"sm3_256\" is not a PCR bank"},
		{"bank twice", "sha1:\n  9 : 0x" + sha1Nine + "\nsha1:\n  8 : 0x" + sha1Nine + "\n", "line 3: bank sha1 given twice"},
		{"PCR twice", "sha1:\n  9 : 0x" + sha1Nine + "\n  9 : 0x" + sha1Nine + "\n", "line 3: bank sha1: PCR 9 given twice"},
		{"PCR out of range", "sha1:\n  24 : 0x" + sha1Nine + "\n", "out of range"},
		{"PCR not decimal", "sha1:\n  09 : 0x" + sha1Nine + "\n", "not a decimal"},
		{"no 0x", "sha1:\n  9 : " + sha1Nine + "\n", "does not start with 0x"},
		{"short value", "sha256:\n  9 : 0x" + sha1Nine + "\n", "not 32 bytes"},
		{"not hex", "sha1:\n  9 : 0x" + strings.Repeat("zz", 20) + "\n", "not 20 bytes"},
		{"value on the bank line", "sha1: 3\n", "a value on the bank's line"},
		{"nested under a PCR", "sha1:\n  9 : 0x" + sha1Nine + "\n    x: y\n", "not a \"PCR : 0xVALUE\" line"},
		{"list item in a bank", "sha1:\n  - 9\n", "not a \"PCR : 0xVALUE\" line"},
		{"bare top-level line", "hello\n", "line 1: not a \"key: value\" line"},
		{"pcrs twice", "pcrs:\n  sha1:\npcrs:\n  sha256:\n", "a second set"},
		{"bank outside pcrs", "pcrs:\n  sha1:\nsha256:\n", "a bank outside"},
		{"JSON unknown field", `{"pcrs":{},"x":1}`, "unknown field"},
		{"JSON trailing", `{"pcrs":{"sha1":{}}} {}`, "data after"},
		{"JSON 0x", `{"pcrs":{"sha1":{"9":"0x` + sha1Nine + `"}}}`, "not 20 bytes"},
		{"JSON unknown bank", `{"pcrs":{"md5":{}}}`, "unknown hash bank"},
		{"JSON bank twice", `{"pcrs":{"sha1":{},"SHA1":{}}}`, "given twice"},
		{"too large", strings.Repeat(" ", MaxPCRFileSize+1), "more than the limit"},
	}
	for _, tc := range tests {
		_, err := ParsePCRValues([]byte(tc.text), "q.yaml")
		if !errors.Is(err, ErrPCRFile) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "q.yaml") {
			t.Errorf("%s: error %v, want ErrPCRFile naming q.yaml and %q", tc.name, err, tc.want)
		}
	}
}

func TestEncodePCRValuesRoundTrip(t *testing.T) {
	v := resetPCRs(allBanks)
	vals := v[crypto.SHA256]
	vals[5] = nil
	v[crypto.SHA256] = vals
	var b bytes.Buffer
	if err := EncodePCRValues(&b, v); err != nil {
		t.Fatal(err)
	}
	got, err := ParsePCRValues(b.Bytes(), "round trip")
	if err != nil {
		t.Fatalf("%v\n%s", err, b.Bytes())
	}
	for _, h := range allBanks {
		for i := range v[h] {
			if !bytes.Equal(got[h][i], v[h][i]) {
				t.Errorf("%v PCR %d: %x, want %x", h, i, got[h][i], v[h][i])
			}
		}
	}
	if !strings.Contains(b.String(), "\"sha1\": {\n      \"0\": ") {
		t.Errorf("not one value a line in PCR order:\n%s", b.String())
	}
}
