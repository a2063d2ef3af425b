package tpm_test

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kexec-measured/kexec-measured/internal/hashtest"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/kexec-measured/kexec-measured/tpm"
	"github.com/kexec-measured/kexec-measured/tpm/swtpmtest"
)

var allBanks = []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}

// sumsOf digests data in every bank of banks.
func sumsOf(banks []crypto.Hash, data []byte) map[crypto.Hash][]byte {
	sums := make(map[crypto.Hash][]byte, len(banks))
	for _, h := range banks {
		sums[h] = hashtest.Sum(h, data)
	}
	return sums
}

func openSwtpm(t *testing.T) (*tpm.TPM, *swtpmtest.Swtpm) {
	t.Helper()
	spec, sw := swtpmtest.Start(t)
	tp, err := tpm.Open(spec)
	if err != nil {
		t.Fatalf("Open(%q): %v", spec, err)
	}
	t.Cleanup(func() { tp.Close() })
	return tp, sw
}

func TestBanksOfDefaultSwtpm(t *testing.T) {
	tp, _ := openSwtpm(t)
	// swtpm 0.7 (Debian 12) allocates all four banks by default; if a newer
	// swtpm allocates fewer, this test says so instead of testing less.
	if got := tp.Banks(); !slices.Equal(got, allBanks) {
		t.Fatalf("Banks() = %v, want %v", got, allBanks)
	}
}

func TestExtendEveryBank(t *testing.T) {
	tp, _ := openSwtpm(t)
	const pcr = 9
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"kernel", []byte("a kernel image")},
		{"initrd", bytes.Repeat([]byte{0x07, 0x07, 0x01}, 1000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, err := tp.ReadPCRs(pcr)
			if err != nil {
				t.Fatal(err)
			}
			sums := sumsOf(tp.Banks(), tc.data)
			if err := tp.Extend(pcr, sums); err != nil {
				t.Fatalf("Extend: %v", err)
			}
			for _, h := range tp.Banks() {
				got, err := tp.ReadPCR(pcr, h)
				if err != nil {
					t.Fatal(err)
				}
				if want := hashtest.Extend(h, before[h], sums[h]); !bytes.Equal(got, want) {
					t.Errorf("bank %v: PCR %d = %x, want H(old||digest) = %x", h, pcr, got, want)
				}
			}
		})
	}
}

func TestBankSubset(t *testing.T) {
	spec, _ := swtpmtest.StartWith(t, swtpmtest.Options{Banks: []string{"sha256", "sha384"}})
	tp, err := tpm.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	want := []crypto.Hash{crypto.SHA256, crypto.SHA384}
	if got := tp.Banks(); !slices.Equal(got, want) {
		t.Fatalf("Banks() = %v, want %v (empty selections are not allocated)", got, want)
	}
	if err := tp.Extend(9, sumsOf(allBanks, []byte("x"))); err == nil {
		t.Errorf("Extend with digests for unallocated banks: no error")
	}
	if err := tp.Extend(9, sumsOf([]crypto.Hash{crypto.SHA256}, []byte("x"))); err == nil {
		t.Errorf("Extend without a digest for SHA-384: no error")
	}
	if err := tp.Extend(9, sumsOf(want, []byte("x"))); err != nil {
		t.Errorf("Extend: %v", err)
	}
	if _, err := tp.ReadPCR(9, crypto.SHA1); err == nil {
		t.Errorf("ReadPCR of the unallocated SHA-1 bank: no error")
	}
}

func TestExtendBadInput(t *testing.T) {
	tp, _ := openSwtpm(t)
	good := sumsOf(tp.Banks(), []byte("x"))
	short := sumsOf(tp.Banks(), []byte("x"))
	short[crypto.SHA256] = short[crypto.SHA256][:31]
	tests := []struct {
		name string
		pcr  int
		sums map[crypto.Hash][]byte
	}{
		{"negative PCR", -1, good},
		{"PCR 24", 24, good},
		{"no digests", 9, nil},
		{"short digest", 9, short},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, err := tp.ReadPCRs(9)
			if err != nil {
				t.Fatal(err)
			}
			if err := tp.Extend(tc.pcr, tc.sums); err == nil {
				t.Fatalf("Extend: no error")
			}
			after, err := tp.ReadPCRs(9)
			if err != nil {
				t.Fatal(err)
			}
			for h := range before {
				if !bytes.Equal(before[h], after[h]) {
					t.Errorf("bank %v: PCR 9 changed by a refused Extend", h)
				}
			}
		})
	}
}

// TestExtendRefusedByTPM extends PCR 17, which locality 0 may not extend:
// the TPM answers TPM_RC_LOCALITY, the error wraps ErrNotExtended and the
// PCR is unchanged.
func TestExtendRefusedByTPM(t *testing.T) {
	tp, _ := openSwtpm(t)
	before, err := tp.ReadPCRs(17)
	if err != nil {
		t.Fatal(err)
	}
	err = tp.Extend(17, sumsOf(tp.Banks(), []byte("x")))
	if !errors.Is(err, tpm.ErrNotExtended) {
		t.Fatalf("Extend(17) = %v, want an error wrapping ErrNotExtended", err)
	}
	after, err := tp.ReadPCRs(17)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range tp.Banks() {
		if !bytes.Equal(before[h], after[h]) || !bytes.Equal(after[h], bytes.Repeat([]byte{0xff}, h.Size())) {
			t.Errorf("bank %v: PCR 17 = %x, want unchanged all-ones", h, after[h])
		}
	}
}

// TestExtendTransportFailure kills swtpm: the error does not claim the PCR
// is unchanged.
func TestExtendTransportFailure(t *testing.T) {
	tp, sw := openSwtpm(t)
	sw.Kill()
	err := tp.Extend(9, sumsOf(tp.Banks(), []byte("x")))
	if err == nil {
		t.Fatal("Extend on a dead swtpm: no error")
	}
	if errors.Is(err, tpm.ErrNotExtended) {
		t.Errorf("Extend on a dead swtpm = %v: claims ErrNotExtended, but the outcome is unknown", err)
	}
	if !strings.Contains(err.Error(), sw.Spec[len("swtpm:"):]) {
		t.Errorf("error %q does not name the swtpm address", err)
	}
}

// countingTPM counts the commands sent through it by command code.
type countingTPM struct {
	next transport.TPM
	mu   sync.Mutex
	n    map[uint32]int
}

func (c *countingTPM) Send(cmd []byte) ([]byte, error) {
	c.mu.Lock()
	c.n[binary.BigEndian.Uint32(cmd[6:10])]++
	c.mu.Unlock()
	return c.next.Send(cmd)
}

const (
	ccPCRExtend     = 0x00000182
	ccGetCapability = 0x0000017A
)

// TestOneExtendCommandPerExtend checks that each Extend sends exactly one
// TPM2_PCR_Extend and that the other commands do not grow with the number
// of extends.
func TestOneExtendCommandPerExtend(t *testing.T) {
	spec, _ := swtpmtest.Start(t)
	others := map[int]int{}
	for _, n := range []int{1, 3, 8} {
		tr, err := tpm.DialSwtpm(strings.TrimPrefix(spec, "swtpm:"))
		if err != nil {
			t.Fatal(err)
		}
		ct := &countingTPM{next: tr, n: map[uint32]int{}}
		tp, err := tpm.New(ct)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := tp.Extend(9, sumsOf(tp.Banks(), []byte{byte(i)})); err != nil {
				t.Fatal(err)
			}
			if got := ct.n[ccPCRExtend]; got != i+1 {
				t.Fatalf("after %d Extend calls: %d TPM2_PCR_Extend commands", i+1, got)
			}
		}
		total := 0
		for cc, k := range ct.n {
			if cc != ccPCRExtend {
				total += k
			}
		}
		if ct.n[ccGetCapability] != 1 {
			t.Errorf("%d extends: %d TPM2_GetCapability commands, want 1", n, ct.n[ccGetCapability])
		}
		others[n] = total
		tp.Close()
	}
	if others[1] != others[3] || others[1] != others[8] {
		t.Errorf("other commands per run vary with the number of extends: %v", others)
	}
}

func TestOpenSpecs(t *testing.T) {
	tests := []struct {
		spec string
		want error
	}{
		{"none", tpm.ErrDisabled},
		{"none", tpm.ErrNoTPM},
		{"bogus", tpm.ErrBadSpec},
		{"swtpm:no-port", tpm.ErrBadSpec},
		{"./relative", tpm.ErrBadSpec},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			tp, err := tpm.Open(tc.spec)
			if !errors.Is(err, tc.want) || tp != nil {
				t.Errorf("Open(%q) = %v, %v; want nil, an error wrapping %v", tc.spec, tp, err, tc.want)
			}
		})
	}
}

func TestOpenDevicePathThatIsNotADevice(t *testing.T) {
	path := t.TempDir() + "/tpm"
	for _, create := range []bool{false, true} {
		if create {
			if err := writeFile(path); err != nil {
				t.Fatal(err)
			}
		}
		_, err := tpm.Open(path)
		if err == nil || errors.Is(err, tpm.ErrNoTPM) || !strings.Contains(err.Error(), path) {
			t.Errorf("Open(%q) (exists: %v) = %v; want an error naming the path, not ErrNoTPM", path, create, err)
		}
	}
}

func writeFile(path string) error {
	return os.WriteFile(path, []byte("not a TPM"), 0o600)
}
