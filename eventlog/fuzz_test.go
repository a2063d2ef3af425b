package eventlog

import (
	"bytes"
	"crypto"
	"errors"
	"io"
	"testing"
)

// FuzzReader feeds arbitrary bytes to the reader. It must not panic, and
// whatever it accepts must encode back to the same bytes; a record it
// accepts must replay in every bank it carries or fail with an error.
func FuzzReader(f *testing.F) {
	f.Add([]byte(systemdRecord(11, "enter-initrd", "phase", 1)))
	f.Add([]byte(systemdRecord(11, "a", "phase", 1) + systemdRecord(15, "b", "machine-id", 2)))
	f.Add([]byte("\x1e{\"pcr\":9,\"digests\":[{\"hashAlg\":\"sm3_256\",\"digest\":\"00\"}],\"content_type\":\"x\",\"z\":[{}]}\n"))
	f.Add([]byte("\x1e{\"pcr\":9}\n\x1e"))
	f.Add([]byte("\x1e\n"))
	f.Add([]byte{})
	f.Add([]byte("garbage\x1e{\"pcr\":9,]\n" + systemdRecord(11, "a", "phase", 1) + "tail"))
	f.Fuzz(func(t *testing.T, in []byte) {
		// The records and the skipped ranges tile the input, in order.
		r := NewReader(bytes.NewReader(in))
		var recs []Record
		pos := 0
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			var se *SkipError
			if errors.As(err, &se) {
				if se.Offset != int64(pos) || se.Size <= 0 {
					t.Fatalf("skipped range %d+%d, want one at %d", se.Offset, se.Size, pos)
				}
				pos += int(se.Size)
				continue
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			enc, err := rec.Encode()
			if err != nil || !bytes.HasPrefix(in[pos:], enc) {
				t.Fatalf("record at %d does not re-encode to its bytes (%v)", pos, err)
			}
			pos += len(enc)
			recs = append(recs, rec)
		}
		if pos != len(in) {
			t.Fatalf("records and skipped ranges cover %d of %d bytes", pos, len(in))
		}
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
			Replay(recs, []crypto.Hash{h}) //nolint:errcheck // must not panic; missing digests are errors
		}
	})
}

// FuzzReaderRecovery puts any bytes before well-formed records: the records
// are all returned, after whatever the garbage held.
func FuzzReaderRecovery(f *testing.F) {
	f.Add([]byte("garbage"))
	f.Add([]byte("\x1e{\"pcr\":"))
	f.Add([]byte(systemdRecord(11, "a", "phase", 1) + "x"))
	f.Add([]byte{0x1e, 0x1e, '\n'})
	good := systemdRecord(9, "ours", "phase", 1) + systemdRecord(11, "theirs", "phase", 2)
	f.Fuzz(func(t *testing.T, garbage []byte) {
		recs, _ := ReadAll(bytes.NewReader(append(bytes.Clone(garbage), good...)))
		if len(recs) < 2 {
			t.Fatalf("%d records after %q, want at least the 2 good ones", len(recs), garbage)
		}
		out, err := Encode(recs[len(recs)-2:])
		if err != nil || string(out) != good {
			t.Fatalf("the last records are not the good ones after %q", garbage)
		}
	})
}
