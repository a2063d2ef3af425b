package verify

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/pcr"
)

func hexOf(b []byte) string { return hex.EncodeToString(b) }

// resetPCRs returns every PCR of banks at its reset value, computed here.
func resetPCRs(banks []crypto.Hash) PCRValues {
	v := PCRValues{}
	for _, h := range banks {
		var vals [pcr.Count][]byte
		for i := range vals {
			vals[i] = make([]byte, h.Size())
			if i >= 17 && i <= 22 {
				vals[i] = bytes.Repeat([]byte{0xff}, h.Size())
			}
		}
		v[h] = vals
	}
	return v
}

var allBanks = []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}

// findings returns the verdict's findings as lines.
func findings(v *Verdict) []string {
	var out []string
	for _, f := range v.Findings {
		out = append(out, f.String())
	}
	return out
}

// matches reports whether s starts with want, where want's "SUB:" marks
// pieces that follow in order anywhere after.
func matches(s, want string) bool {
	pieces := strings.Split(want, "SUB:")
	if !strings.HasPrefix(s, pieces[0]) {
		return false
	}
	s = s[len(pieces[0]):]
	for _, p := range pieces[1:] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}

func readBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeBytes(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
