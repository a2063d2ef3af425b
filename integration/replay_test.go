//go:build integration

package integration

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/pcr"
)

// bankHash returns the hash of the PCR bank that the kernel's sysfs and
// CEL-JSON call bank.
func bankHash(t *testing.T, bank string) crypto.Hash {
	t.Helper()
	h, err := pcr.Parse(bank)
	if err != nil {
		t.Fatalf("PCR bank %q: %v", bank, err)
	}
	return h
}

// allBanks are the banks swtpm_setup allocates for the tests.
var allBanks = []string{"sha1", "sha256", "sha384", "sha512"}

// digest is the host's independent digest of data in bank.
func digest(t *testing.T, bank string, data []byte) []byte {
	t.Helper()
	return hashtest.Sum(bankHash(t, bank), data)
}

// measured is one thing kexec-measured must have measured: the event name
// and the host's copy of the bytes.
type measured struct {
	Event string // kexec-kernel, kexec-initrd, kexec-cmdline
	What  string // for messages: a file name or "cmdline"
	Data  []byte
}

// expectPCRs computes, independently of kexec-measured and of the log, the
// value of the PCR in every bank of start after extending it with the
// digest of each item's bytes, in order.
func expectPCRs(t *testing.T, start map[string][]byte, items []measured) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for bank, v := range start {
		for _, it := range items {
			v = hashtest.Extend(bankHash(t, bank), v, digest(t, bank, it.Data))
		}
		out[bank] = v
	}
	return out
}

// logRecord is a record of the userspace measurement log, decoded here
// without the eventlog package so the check does not share its code.
type logRecord struct {
	PCR         int    `json:"pcr"`
	ContentType string `json:"content_type"`
	Digests     []struct {
		HashAlg string `json:"hashAlg"`
		Digest  string `json:"digest"`
	} `json:"digests"`
	Content struct {
		Event   string `json:"event"`
		Path    string `json:"path"`
		Offset  int64  `json:"offset"`
		Size    int64  `json:"size"`
		Segment *int   `json:"segment"`
		Section string `json:"section"`
	} `json:"content"`
}

// parseLog splits a JSON-SEQ log (RFC 7464: 0x1E, JSON text, LF) into
// records. Every record must be well formed.
func parseLog(t *testing.T, data []byte) []logRecord {
	t.Helper()
	if len(data) == 0 {
		return nil
	}
	if data[0] != 0x1e {
		t.Fatalf("log does not start with RS (0x1E): %q", data[:min(len(data), 40)])
	}
	var recs []logRecord
	for i, chunk := range bytes.Split(data[1:], []byte{0x1e}) {
		if len(chunk) == 0 || chunk[len(chunk)-1] != '\n' {
			t.Fatalf("log record %d does not end with LF: %q", i, chunk)
		}
		var r logRecord
		if err := json.Unmarshal(chunk, &r); err != nil {
			t.Fatalf("log record %d: %v: %q", i, err, chunk)
		}
		recs = append(recs, r)
	}
	return recs
}

// digests returns a record's digests by bank, failing on a duplicate bank or
// bad hex.
func (r logRecord) digests(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, d := range r.Digests {
		if _, dup := out[d.HashAlg]; dup {
			t.Fatalf("record %s: bank %s twice", r.Content.Event, d.HashAlg)
		}
		v, err := hex.DecodeString(d.Digest)
		if err != nil {
			t.Fatalf("record %s: bank %s: %v", r.Content.Event, d.HashAlg, err)
		}
		out[d.HashAlg] = v
	}
	return out
}

// replayRecords replays the log's own digests of PCR pcr onto start.
func replayRecords(t *testing.T, start map[string][]byte, recs []logRecord, pcr int) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for bank, v := range start {
		for _, r := range recs {
			if r.PCR != pcr {
				continue
			}
			d, ok := r.digests(t)[bank]
			if !ok {
				t.Fatalf("record %s has no %s digest", r.Content.Event, bank)
			}
			v = hashtest.Extend(bankHash(t, bank), v, d)
		}
		out[bank] = v
	}
	return out
}

// checkLog checks that the log holds exactly one PCR-9 kexec-measured
// record per item, in order, with the event names and, in every bank of the
// TPM, the digests of the host's copies of the bytes.
func checkLog(t *testing.T, recs []logRecord, items []measured, banks []string) {
	t.Helper()
	if len(recs) != len(items) {
		t.Fatalf("log has %d records, want %d (%s)", len(recs), len(items), describe(items))
	}
	for i, r := range recs {
		it := items[i]
		if r.PCR != 9 || r.ContentType != "kexec-measured" || r.Content.Event != it.Event {
			t.Errorf("record %d: pcr %d content_type %q event %q, want pcr 9, kexec-measured, %s (%s)",
				i, r.PCR, r.ContentType, r.Content.Event, it.Event, it.What)
		}
		got := r.digests(t)
		if len(got) != len(banks) {
			t.Errorf("record %d (%s): %d digests, want one per bank %v", i, it.What, len(got), banks)
		}
		for _, bank := range banks {
			want := digest(t, bank, it.Data)
			if !bytes.Equal(got[bank], want) {
				t.Errorf("record %d (%s): %s digest %x, host's file gives %x", i, it.What, bank, got[bank], want)
			}
		}
	}
}

func describe(items []measured) string {
	var b bytes.Buffer
	for i, it := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s", it.Event, it.What)
	}
	return b.String()
}

// comparePCRs fails unless got has exactly the banks of want with equal
// values.
func comparePCRs(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	for _, bank := range sortedKeys(want) {
		if !bytes.Equal(got[bank], want[bank]) {
			t.Errorf("%s: PCR 9 %s = %x, want %x", what, bank, got[bank], want[bank])
		}
	}
	for bank := range got {
		if _, ok := want[bank]; !ok {
			t.Errorf("%s: unexpected bank %s", what, bank)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
