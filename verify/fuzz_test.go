package verify

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParsePCRValues feeds the --pcrs parser arbitrary bytes: it must not
// panic, every error must wrap ErrPCRFile, and whatever it accepts must
// come back the same through EncodePCRValues.
func FuzzParsePCRValues(f *testing.F) {
	f.Add([]byte("  sha1:\n    9 : 0x" + sha1Nine + "\n  sha256:\n    0 : 0x" + sha256Zero + "\n"))
	f.Add([]byte("quoted: ff\nsignature:\n  alg: rsassa\npcrs:\n  sha256:\n    9  : 0x" + sha256Nine + "\n"))
	f.Add([]byte("events:\n- EventNum: 0\n  x: y\npcrs:\n  sha1:\n"))
	f.Add([]byte(`{"pcrs":{"sha256":{"9":"` + sha256Nine + `"}}}`))
	if b, err := os.ReadFile(seabiosPCRs); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ParsePCRValues(data, "fuzz")
		if err != nil {
			if !strings.Contains(err.Error(), ErrPCRFile.Error()) {
				t.Fatalf("error %v does not wrap ErrPCRFile", err)
			}
			return
		}
		var b bytes.Buffer
		if err := EncodePCRValues(&b, v); err != nil {
			t.Fatal(err)
		}
		again, err := ParsePCRValues(b.Bytes(), "again")
		if err != nil {
			t.Fatalf("re-reading our own encoding: %v\n%s", err, b.Bytes())
		}
		for h, vals := range v {
			for i := range vals {
				if !bytes.Equal(vals[i], again[h][i]) {
					t.Fatalf("%v PCR %d: %x, re-read %x", h, i, vals[i], again[h][i])
				}
			}
		}
	})
}

// FuzzParseManifest feeds the manifest reader arbitrary bytes: no panic,
// errors wrap ErrManifest, and an accepted manifest is written and read
// back to the same entries, and merges (or is refused with ErrManifest).
func FuzzParseManifest(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "reference.golden.json")); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"version":1,"entries":[]}`))
	f.Add([]byte(`{"version":1,"entries":[{"name":"a","kind":"segment","segment":0,"offset":4,"size":1,"digests":{"sha1":"` + sha1Nine + `"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data, "fuzz")
		if err != nil {
			if !strings.Contains(err.Error(), ErrManifest.Error()) {
				t.Fatalf("error %v does not wrap ErrManifest", err)
			}
			return
		}
		var b bytes.Buffer
		if err := m.Encode(&b); err != nil {
			t.Fatal(err)
		}
		again, err := ParseManifest(b.Bytes(), "fuzz")
		if err != nil {
			t.Fatalf("re-reading our own encoding: %v\n%s", err, b.Bytes())
		}
		if len(again.Entries) != len(m.Entries) {
			t.Fatalf("%d entries, re-read %d", len(m.Entries), len(again.Entries))
		}
		for i := range m.Entries {
			if !sameBlock(m.Entries[i], again.Entries[i]) {
				t.Fatalf("entry %d changed: %+v, re-read %+v", i, m.Entries[i], again.Entries[i])
			}
		}
		if _, err := NewReferences(m); err != nil && !strings.Contains(err.Error(), ErrManifest.Error()) {
			t.Fatalf("merge: %v", err)
		}
	})
}
