package tpm_test

import (
	"bytes"
	"testing"

	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/pcr"
)

// TestReadAll extends a few PCRs and checks that ReadAll returns, for every
// PCR of every bank, what ReadPCRs (one PCR at a time) returns, and the
// independently computed value for the extended ones.
func TestReadAll(t *testing.T) {
	tp, _ := openSwtpm(t)
	for _, i := range []int{0, 7, 8, 9, 16, 23} {
		if err := tp.Extend(i, sumsOf(tp.Banks(), []byte{byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	all, err := tp.ReadAll()
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if len(all) != len(tp.Banks()) {
		t.Fatalf("ReadAll returned %d banks, want %d", len(all), len(tp.Banks()))
	}
	for i := 0; i < pcr.Count; i++ {
		one, err := tp.ReadPCRs(i)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range tp.Banks() {
			if got := all[h][i]; !bytes.Equal(got, one[h]) {
				t.Errorf("PCR %d %v: ReadAll %x, ReadPCRs %x", i, h, got, one[h])
			}
		}
	}
	for _, h := range tp.Banks() {
		want := hashtest.PCR(h, nil, []byte{9})
		if !bytes.Equal(all[h][9], want) {
			t.Errorf("PCR 9 %v = %x, want %x", h, all[h][9], want)
		}
	}
}
