package eventlog

import (
	"bytes"
	"crypto"
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
	f.Fuzz(func(t *testing.T, in []byte) {
		recs, err := ReadAll(bytes.NewReader(in))
		if err != nil {
			// The records before the error re-encode to a prefix of in.
			out, encErr := Encode(recs)
			if encErr != nil || !bytes.HasPrefix(in, out) {
				t.Fatalf("records before the error do not re-encode to a prefix: %v", encErr)
			}
			return
		}
		out, err := Encode(recs)
		if err != nil {
			t.Fatalf("Encode of accepted records: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("round trip differs:\nin  %q\nout %q", in, out)
		}
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
			Replay(recs, []crypto.Hash{h}) //nolint:errcheck // must not panic; missing digests are errors
		}
	})
}
