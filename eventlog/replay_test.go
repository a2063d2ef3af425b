package eventlog

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/pcr"
)

var allBanks = []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}

func TestReplayResetValues(t *testing.T) {
	values, err := Replay(nil, allBanks)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range allBanks {
		for i := range pcr.Count {
			want := bytes.Repeat([]byte{0}, h.Size())
			if i >= 17 && i <= 22 {
				want = bytes.Repeat([]byte{0xff}, h.Size())
			}
			if got := values[h][i]; !bytes.Equal(got, want) {
				t.Errorf("bank %v PCR %d = %x, want %x", h, i, got, want)
			}
		}
	}
}

// TestReplayIndependent replays records on several PCRs and checks every
// bank against H(old || digest) computed here with the concrete hash
// functions.
func TestReplayIndependent(t *testing.T) {
	type event struct {
		pcr  int
		data string
	}
	events := []event{{9, "kernel"}, {9, "initrd"}, {11, "enter-initrd"}, {17, "drtm"}, {9, "cmdline"}, {23, "app"}, {0, "x"}}
	var recs []Record
	for _, e := range events {
		sums := map[crypto.Hash][]byte{}
		for _, h := range allBanks {
			sums[h] = hashtest.Sum(h, []byte(e.data))
		}
		rec, err := NewKexecRecord(e.pcr, sums, KexecContent{Event: EventKernel})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	values, err := Replay(recs, allBanks)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range allBanks {
		want := map[int][]byte{}
		for _, e := range events {
			old, ok := want[e.pcr]
			if !ok {
				old = make([]byte, h.Size())
				if e.pcr == 17 {
					old = bytes.Repeat([]byte{0xff}, h.Size())
				}
			}
			want[e.pcr] = hashtest.Extend(h, old, hashtest.Sum(h, []byte(e.data)))
		}
		for pcr, w := range want {
			if got := values[h][pcr]; !bytes.Equal(got, w) {
				t.Errorf("bank %v PCR %d = %x, want %x", h, pcr, got, w)
			}
			if err := values.Compare(pcr, h, w); err != nil {
				t.Errorf("Compare(%d, %v) = %v", pcr, h, err)
			}
		}
	}
}

func TestReplayMissingDigest(t *testing.T) {
	recs, err := ReadAll(strings.NewReader(systemdRecord(11, "a", "phase", 1) + systemdRecord(11, "b", "phase", 2)))
	if err != nil {
		t.Fatal(err)
	}
	// systemd's records here carry sha1 and sha256 only.
	if _, err := Replay(recs, []crypto.Hash{crypto.SHA1, crypto.SHA256}); err != nil {
		t.Fatalf("Replay(sha1, sha256) = %v", err)
	}
	_, err = Replay(recs, []crypto.Hash{crypto.SHA256, crypto.SHA384})
	var re *RecordError
	if !errors.Is(err, ErrMissingDigest) || !errors.As(err, &re) || re.Index != 0 {
		t.Fatalf("Replay(sha384) = %v, want ErrMissingDigest at record 0", err)
	}
	// Only the PCR concerned fails: a record of another PCR that has every
	// bank is still replayed.
	other := fmt.Sprintf("\x1e"+`{"pcr":15,"digests":[{"hashAlg":"sha256","digest":"%x"},{"hashAlg":"sha384","digest":"%x"}],"content_type":"x"}`+"\n",
		hashtest.Sum(crypto.SHA256, []byte("c")), hashtest.Sum(crypto.SHA384, []byte("c")))
	more, err := ReadAll(strings.NewReader(other))
	if err != nil {
		t.Fatal(err)
	}
	values, err := Replay(append(more, recs...), []crypto.Hash{crypto.SHA256, crypto.SHA384})
	if !errors.Is(err, ErrMissingDigest) || !errors.As(err, &re) || re.Index != 1 {
		t.Fatalf("Replay(sha384) = %v, want ErrMissingDigest at record 1", err)
	}
	if cerr := values.Compare(11, crypto.SHA384, make([]byte, 48)); !errors.Is(cerr, ErrMissingDigest) {
		t.Errorf("Compare(11, sha384) = %v, want ErrMissingDigest", cerr)
	}
	if cerr := values.Compare(11, crypto.SHA256, hashtest.ExtendDigests(crypto.SHA256, nil, hashtest.Sum(crypto.SHA256, []byte("a")), hashtest.Sum(crypto.SHA256, []byte("b")))); cerr != nil {
		t.Errorf("Compare(11, sha256) = %v: the bank that every record has is replayed", cerr)
	}
	if cerr := values.Compare(15, crypto.SHA384, hashtest.ExtendDigests(crypto.SHA384, nil, hashtest.Sum(crypto.SHA384, []byte("c")))); cerr != nil {
		t.Errorf("Compare(15, sha384) = %v: a PCR whose records have the bank is replayed", cerr)
	}
	if _, err := Replay(recs, []crypto.Hash{crypto.SHA224}); !errors.Is(err, pcr.ErrUnknownBank) {
		t.Fatalf("Replay(sha224) = %v, want pcr.ErrUnknownBank", err)
	}
}

func TestCompareMismatch(t *testing.T) {
	values, err := Replay(nil, []crypto.Hash{crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	actual := hashtest.Sum(crypto.SHA256, []byte("something else"))
	err = values.Compare(9, crypto.SHA256, actual)
	var me *MismatchError
	if !errors.Is(err, ErrMismatch) || !errors.As(err, &me) {
		t.Fatalf("Compare = %v, want *MismatchError", err)
	}
	if me.PCR != 9 || me.Bank != crypto.SHA256 || !bytes.Equal(me.Actual, actual) || !bytes.Equal(me.Replayed, make([]byte, 32)) {
		t.Errorf("MismatchError = %+v", me)
	}
	if msg := err.Error(); !strings.Contains(msg, "PCR 9") || !strings.Contains(msg, "sha256") || !strings.Contains(msg, fmt.Sprintf("%x", actual)) {
		t.Errorf("message %q does not name the PCR, bank and value", msg)
	}
	if err := values.Compare(9, crypto.SHA1, actual); !errors.Is(err, ErrMissingDigest) {
		t.Errorf("Compare of a bank not replayed = %v", err)
	}
}
