package handoff

import (
	"bytes"
	"testing"
)

// FuzzParse feeds Parse arbitrary archives: it must never panic, and what it
// accepts must be what Build writes for the result.
func FuzzParse(f *testing.F) {
	for _, h := range []Handoff{
		{Log: testLog(f, 2)},
		{Log: []byte{}, Firmware: []byte("fw")},
		{Log: testLog(f, 1), Interrupted: true},
	} {
		data, err := Build(&h)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(archive(f, true, top, sub, logH, named(logH, "init")))
	f.Add([]byte("070701"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := Parse(data)
		if err != nil {
			return
		}
		again, err := Build(h)
		if err != nil {
			t.Fatalf("Build of what Parse accepted: %v", err)
		}
		back, err := Parse(again)
		if err != nil || !bytes.Equal(back.Log, h.Log) || !bytes.Equal(back.Firmware, h.Firmware) || back.Interrupted != h.Interrupted {
			t.Fatalf("round trip of an accepted archive: %+v, %v", back, err)
		}
	})
}
