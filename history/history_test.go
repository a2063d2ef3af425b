package history

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/pcr"
)

var banks = []crypto.Hash{crypto.SHA1, crypto.SHA256}

func sums(data string) map[crypto.Hash][]byte {
	m := map[crypto.Hash][]byte{}
	for _, h := range banks {
		m[h] = hashtest.Sum(h, []byte(data))
	}
	return m
}

func ours(t *testing.T, p int, boot, data string) eventlog.Record {
	t.Helper()
	r, err := eventlog.NewKexecRecord(p, sums(data), eventlog.KexecContent{Event: eventlog.EventInitrd, Path: "/" + data, Size: int64(len(data)), BootID: boot})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// systemd returns a record as systemd writes it, with a bootId in its
// spelling (no dashes) or none.
func systemd(t *testing.T, p int, boot, s string) eventlog.Record {
	t.Helper()
	var ds []string
	for _, h := range banks {
		n, _ := pcr.Name(h)
		ds = append(ds, fmt.Sprintf(`{"hashAlg":"%s","digest":"%x"}`, n, hashtest.Sum(h, []byte(s))))
	}
	bootField := ""
	if boot != "" {
		bootField = fmt.Sprintf(`,"bootId":"%s"`, strings.ReplaceAll(boot, "-", ""))
	}
	text := fmt.Sprintf("\x1e{\"pcr\":%d,\"digests\":[%s],\"content_type\":\"systemd\",\"content\":{\"string\":\"%s\",\"eventType\":\"phase\"%s}}\n", p, strings.Join(ds, ","), s, bootField)
	recs, err := eventlog.ReadAll(strings.NewReader(text))
	if err != nil || len(recs) != 1 {
		t.Fatalf("systemd record: %v", err)
	}
	return recs[0]
}

const (
	boot0 = "00000000-0000-4000-8000-000000000000"
	boot1 = "11111111-1111-4111-8111-111111111111"
	boot2 = "22222222-2222-4222-8222-222222222222"
)

func TestGroup(t *testing.T) {
	recs := []eventlog.Record{
		systemd(t, 11, "", "enter-initrd"),  // boot 0 (before its first ID)
		ours(t, 9, boot0, "kernel0"),        // boot 0
		systemd(t, 11, boot1, "sysinit"),    // boot 1, systemd's spelling
		systemd(t, 11, "", "ready"),         // between boot 1's: boot 1
		ours(t, 9, boot1, "kernel1"),        // boot 1
		systemd(t, 11, "", "enter-initrd2"), // after the last ID (boot 1, not current): this boot
	}
	boots := Group(Entries(recs), boot2)
	var got []string
	for _, b := range boots {
		var idx []string
		for _, e := range b.Entries {
			idx = append(idx, fmt.Sprint(e.Index))
		}
		got = append(got, fmt.Sprintf("%s current=%v [%s]", b.ID, b.Current, strings.Join(idx, " ")))
	}
	want := []string{
		boot0 + " current=false [0 1]",
		boot1 + " current=false [2 3 4]",
		boot2 + " current=true [5]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Group:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	e := Entries(recs)
	if e[1].Event != eventlog.EventInitrd || e[1].What != "/kernel0" || e[1].Size != 7 || e[1].Bank != crypto.SHA256 ||
		!bytes.Equal(e[1].Digest, hashtest.Sum(crypto.SHA256, []byte("kernel0"))) {
		t.Errorf("entry 1: %+v", e[1])
	}
	if e[0].Event != "phase" || e[0].What != "enter-initrd" || e[0].Size != -1 {
		t.Errorf("entry 0: %+v", e[0])
	}
	// Trailing records of the running boot stay with it.
	boots = Group(Entries(recs[:5]), boot1)
	if len(boots) != 2 || !boots[1].Current || len(boots[1].Entries) != 3 {
		t.Errorf("Group with boot 1 running: %+v", boots)
	}
}

// fakeTPM holds PCR values computed independently of Replay.
type fakeTPM map[crypto.Hash]map[int][]byte

func (f fakeTPM) ReadPCR(p int, h crypto.Hash) ([]byte, error) {
	if v, ok := f[h][p]; ok {
		return v, nil
	}
	return pcr.Initial(h, p), nil
}

func tpmFor(items map[int][]string) fakeTPM {
	f := fakeTPM{}
	for _, h := range banks {
		f[h] = map[int][]byte{}
		for p, datas := range items {
			var bs [][]byte
			for _, d := range datas {
				bs = append(bs, []byte(d))
			}
			f[h][p] = hashtest.PCR(h, nil, bs...)
		}
	}
	return f
}

func TestReport(t *testing.T) {
	recs := []eventlog.Record{
		ours(t, 9, boot0, "kernel0"),
		systemd(t, 11, "", "shutdown"),
		ours(t, 9, boot1, "kernel1"),
	}
	good := tpmFor(map[int][]string{9: {"kernel0", "kernel1"}, 11: {"shutdown"}})
	for _, tc := range []struct {
		name       string
		tpm        PCRReader
		log        *eventlog.Log
		pcrs       []int
		ok         bool
		mismatches []string // "PCR bank"
		reason     string
	}{
		{"match", good, &eventlog.Log{Records: recs}, nil, true, nil, ""},
		{"no tpm", nil, &eventlog.Log{Records: recs}, nil, true, nil, ""},
		{"interrupted", good, &eventlog.Log{Records: recs, Interrupted: true}, nil, false, nil, ""},
		{"late shutdown record", tpmFor(map[int][]string{9: {"kernel0", "kernel1"}, 11: {"shutdown", "final"}}), &eventlog.Log{Records: recs}, nil, false,
			[]string{"11 sha1", "11 sha256"}, "after its handoff was last built"},
		{"only PCR 9", tpmFor(map[int][]string{9: {"kernel0", "kernel1"}, 11: {"x"}}), &eventlog.Log{Records: recs}, []int{9}, true, nil, ""},
		{"tampered", good, &eventlog.Log{Records: []eventlog.Record{recs[0], recs[1], ours(t, 9, boot1, "kernel1 changed")}}, nil, false,
			[]string{"9 sha1", "9 sha256"}, "not explained"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := NewReport(Input{Log: tc.log, Banks: banks, TPM: tc.tpm, PCRs: tc.pcrs, CurrentBootID: boot1, NoTPMNote: "--tpm=none"})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() != tc.ok {
				t.Errorf("OK() = %v, want %v; checks %+v", rep.OK(), tc.ok, rep.Checks)
			}
			var mm []string
			for _, c := range rep.Mismatches() {
				mm = append(mm, fmt.Sprintf("%d %s", c.PCR, bankName(c.Bank)))
				if !strings.Contains(c.Reason, tc.reason) {
					t.Errorf("reason %q lacks %q", c.Reason, tc.reason)
				}
			}
			if fmt.Sprint(mm) != fmt.Sprint(tc.mismatches) {
				t.Errorf("mismatches %v, want %v", mm, tc.mismatches)
			}
			wantChecks := 2 * 2
			if tc.pcrs != nil {
				wantChecks = 2
			}
			if len(rep.Checks) != wantChecks {
				t.Errorf("%d checks, want %d", len(rep.Checks), wantChecks)
			}
			for _, c := range rep.Checks {
				if tc.tpm == nil && (c.State != NotChecked || c.Reason != "--tpm=none") {
					t.Errorf("without a TPM: %+v", c)
				}
			}
		})
	}
}

func TestReplayMissingBank(t *testing.T) {
	onlySHA256, _ := eventlog.NewKexecRecord(9, map[crypto.Hash][]byte{crypto.SHA256: hashtest.Sum(crypto.SHA256, []byte("x"))}, eventlog.KexecContent{Event: "x"})
	rep, err := NewReport(Input{Log: &eventlog.Log{Records: []eventlog.Record{onlySHA256}}, Banks: banks, TPM: tpmFor(map[int][]string{9: {"x"}})})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Checks {
		switch c.Bank {
		case crypto.SHA1:
			if c.State != NotChecked || !strings.Contains(c.Reason, "no sha1 digest") {
				t.Errorf("sha1: %+v, want not checked, naming the missing digest", c)
			}
		case crypto.SHA256:
			if c.State != Match {
				t.Errorf("sha256: %+v, want MATCH", c)
			}
		}
	}
}

type failingTPM struct{}

func (failingTPM) ReadPCR(int, crypto.Hash) ([]byte, error) { return nil, errors.New("gone") }

func TestReportTPMError(t *testing.T) {
	if _, err := NewReport(Input{Log: &eventlog.Log{Records: []eventlog.Record{ours(t, 9, "", "a")}}, Banks: banks, TPM: failingTPM{}}); err == nil {
		t.Error("NewReport hid a TPM read error")
	}
}
