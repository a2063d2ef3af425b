package verify

import (
	"bytes"
	"crypto"
	"os/exec"
	"testing"

	"github.com/kexec-measured/kexec-measured/tpm"
	"github.com/kexec-measured/kexec-measured/tpm/swtpmtest"
)

// TestPCRValuesFromTpm2Pcrread reads swtpm's PCRs with tpm2_pcrread
// (Debian package tpm2-tools) and with tpm.ReadAll, and checks that
// ParsePCRValues of tpm2_pcrread's output gives the same values.
func TestPCRValuesFromTpm2Pcrread(t *testing.T) {
	bin, err := exec.LookPath("tpm2_pcrread")
	if err != nil {
		t.Skip("tpm2_pcrread not installed (Debian package tpm2-tools)")
	}
	spec, sw := swtpmtest.Start(t)
	tp, err := tpm.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	for _, i := range []int{0, 9, 23} {
		sums := map[crypto.Hash][]byte{}
		for _, h := range tp.Banks() {
			sums[h] = bytes.Repeat([]byte{byte(i + 1)}, h.Size())
		}
		if err := tp.Extend(i, sums); err != nil {
			t.Fatal(err)
		}
	}
	want, err := tp.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	tp.Close() // tpm2_pcrread needs the command channel
	out, err := exec.Command(bin, "-T", sw.TCTI(), "sha1:all+sha256:all+sha384:all+sha512:all").CombinedOutput()
	if err != nil {
		t.Fatalf("tpm2_pcrread: %v\n%s", err, out)
	}
	got, err := ParsePCRValues(out, "tpm2_pcrread output")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(got) != len(want) {
		t.Fatalf("banks %v, want %d", got.Banks(), len(want))
	}
	for h, vals := range want {
		for i, v := range vals {
			if !bytes.Equal(got[h][i], v) {
				t.Errorf("%v PCR %d: tpm2_pcrread %x, ReadAll %x", h, i, got[h][i], v)
			}
		}
	}
}
