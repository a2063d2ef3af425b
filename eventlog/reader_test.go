package eventlog

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/kexec-measured/kexec-measured/internal/hashtest"
)

// systemdRecord returns a record exactly as systemd's tpm2_userspace_log
// writes it (src/shared/tpm2-util.c): RS, compact JSON with the fields pcr,
// digests, content_type "systemd", content {string, bootId, timestamp,
// eventType}, LF. The digests are of the measured string.
func systemdRecord(pcr int, measured, eventType string, timestamp int) string {
	return fmt.Sprintf("\x1e"+`{"pcr":%d,"digests":[{"hashAlg":"sha1","digest":"%x"},{"hashAlg":"sha256","digest":"%x"}],`+
		`"content_type":"systemd","content":{"string":"%s","bootId":"8f2c7b1e0d9a4c6b9e3f5a7d1c2b4e6f","timestamp":%d,"eventType":"%s"}}`+"\n",
		pcr, hashtest.Sum(crypto.SHA1, []byte(measured)), hashtest.Sum(crypto.SHA256, []byte(measured)), measured, timestamp, eventType)
}

// mixedLog is a log with systemd's records, ours, and records with fields
// and banks we do not know.
func mixedLog(t *testing.T) []byte {
	t.Helper()
	var b strings.Builder
	b.WriteString(systemdRecord(11, "enter-initrd", "phase", 3141592))
	b.WriteString(systemdRecord(15, "machine-id:0123", "machine-id", 4000000))
	rec, err := NewKexecRecord(9, map[crypto.Hash][]byte{
		crypto.SHA1:   hashtest.Sum(crypto.SHA1, []byte("kernel")),
		crypto.SHA256: hashtest.Sum(crypto.SHA256, []byte("kernel")),
	}, KexecContent{Event: EventKernel, Path: "/boot/vmlinuz", Size: 6})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := rec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	b.Write(enc)
	// Another writer's record: unknown fields, an unknown bank, white
	// space, upper-case hex and escapes that a re-encoding would change.
	fmt.Fprintf(&b, "\x1e { \"recnum\": 7, \"pcr\": 12, \"digests\": [ {\"hashAlg\": \"sm3_256\", \"digest\": \"%x\"}, {\"hashAlg\": \"sha256\", \"digest\": \"%X\"} ],"+
		" \"content_type\": \"x-other\", \"content\": {\"a\\u0041\": [1, 2.50, null]}, \"extra\": true } \n",
		make([]byte, 32), hashtest.Sum(crypto.SHA256, []byte("other")))
	b.WriteString(systemdRecord(11, "ready", "phase", 5000000))
	return []byte(b.String())
}

func TestRoundTripMixedLog(t *testing.T) {
	in := mixedLog(t)
	recs, err := ReadAll(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := []string{"systemd", "systemd", "kexec-measured", "x-other", "systemd"}
	wantPCRs := []int{11, 15, 9, 12, 11}
	if len(recs) != len(wantTypes) {
		t.Fatalf("read %d records, want %d", len(recs), len(wantTypes))
	}
	for i, rec := range recs {
		if rec.ContentType != wantTypes[i] || rec.PCR != wantPCRs[i] {
			t.Errorf("record %d: content_type %q PCR %d, want %q PCR %d", i, rec.ContentType, rec.PCR, wantTypes[i], wantPCRs[i])
		}
	}
	if got, err := recs[3].Sum(crypto.SHA256); err != nil || !bytes.Equal(got, hashtest.Sum(crypto.SHA256, []byte("other"))) {
		t.Errorf("upper-case hex digest = %x, %v", got, err)
	}
	if string(recs[0].Content) != `{"string":"enter-initrd","bootId":"8f2c7b1e0d9a4c6b9e3f5a7d1c2b4e6f","timestamp":3141592,"eventType":"phase"}` {
		t.Errorf("systemd content = %s", recs[0].Content)
	}
	out, err := Encode(recs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, in) {
		t.Fatalf("round trip differs:\nin  %q\nout %q", in, out)
	}
}

func TestReaderEmpty(t *testing.T) {
	recs, err := ReadAll(bytes.NewReader(nil))
	if err != nil || len(recs) != 0 {
		t.Fatalf("ReadAll(empty) = %v, %v", recs, err)
	}
}

func TestReaderErrors(t *testing.T) {
	good := systemdRecord(11, "x", "phase", 1)
	sha256hex := fmt.Sprintf("%x", hashtest.Sum(crypto.SHA256, nil))
	tests := []struct {
		name   string
		in     string
		want   error
		index  int   // of the bad record
		offset int64 // of its RS
		nGood  int   // records returned before the error
	}{
		{"bytes before the first RS", "{}\n", ErrMalformed, 0, 0, 0},
		{"garbage between records", good + "x", ErrMalformed, 1, int64(len(good)), 1},
		{"no LF at the end", good + strings.TrimSuffix(good, "\n"), ErrTruncated, 1, int64(len(good)), 1},
		{"empty record", "\x1e", ErrTruncated, 0, 0, 0},
		{"only LF", "\x1e\n", ErrMalformed, 0, 0, 0},
		{"two objects", "\x1e{} {}\n", ErrMalformed, 0, 0, 0},
		{"not an object", "\x1e[1]\n", ErrMalformed, 0, 0, 0},
		{"bad JSON", "\x1e{\"pcr\":\n", ErrMalformed, 0, 0, 0},
		{"no pcr", `` + "\x1e" + `{"digests":[{"hashAlg":"sha256","digest":"` + sha256hex + `"}],"content_type":"x"}` + "\n", ErrMalformed, 0, 0, 0},
		{"pcr 24", "\x1e" + `{"pcr":24,"digests":[{"hashAlg":"sha256","digest":"` + sha256hex + `"}],"content_type":"x"}` + "\n", ErrMalformed, 0, 0, 0},
		{"pcr -1", "\x1e" + `{"pcr":-1,"digests":[{"hashAlg":"sha256","digest":"` + sha256hex + `"}],"content_type":"x"}` + "\n", ErrMalformed, 0, 0, 0},
		{"pcr 9.5", "\x1e" + `{"pcr":9.5,"digests":[{"hashAlg":"sha256","digest":"` + sha256hex + `"}],"content_type":"x"}` + "\n", ErrMalformed, 0, 0, 0},
		{"pcr string", "\x1e" + `{"pcr":"9","digests":[{"hashAlg":"sha256","digest":"` + sha256hex + `"}],"content_type":"x"}` + "\n", ErrMalformed, 0, 0, 0},
		{"no digests", "\x1e" + `{"pcr":9,"digests":[],"content_type":"x"}` + "\n", ErrMalformed, 0, 0, 0},
		{"short digest", "\x1e" + `{"pcr":9,"digests":[{"hashAlg":"sha256","digest":"00"}],"content_type":"x"}` + "\n", ErrMalformed, 0, 0, 0},
		{"digest not hex", "\x1e" + `{"pcr":9,"digests":[{"hashAlg":"sha1","digest":"zz00000000000000000000000000000000000000"}],"content_type":"x"}` + "\n", ErrMalformed, 0, 0, 0},
		{"no content_type", "\x1e" + `{"pcr":9,"digests":[{"hashAlg":"sha256","digest":"` + sha256hex + `"}]}` + "\n", ErrMalformed, 0, 0, 0},
		{"too long", "\x1e" + strings.Repeat(" ", MaxRecordSize+1) + "\n", ErrMalformed, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The bad bytes are skipped and a good record after them is
			// still read (RFC 7464 §2.3).
			recs, err := ReadAll(strings.NewReader(tc.in + good))
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadAll = %v, want %v", err, tc.want)
			}
			var re *RecordError
			if !errors.As(err, &re) || re.Index != tc.index || re.Offset != tc.offset {
				t.Errorf("error %v: want record %d at offset %d", err, tc.index, tc.offset)
			}
			var se *SkipError
			if !errors.As(err, &se) || se.Offset < tc.offset || se.Offset+se.Size != int64(len(tc.in)) {
				t.Errorf("error %v: want a skipped range from offset %d to %d", err, tc.offset, len(tc.in))
			}
			if len(recs) != tc.nGood+1 || string(recs[len(recs)-1].Raw)+"\n" != good[1:] {
				t.Errorf("%d records, want %d and the good one last", len(recs), tc.nGood+1)
			}
		})
	}
}

// TestReaderRecovers is issue 13's corrupt logs: whatever is already in the
// log, the records appended after it are read, and each skipped range is
// reported with its offset.
func TestReaderRecovers(t *testing.T) {
	var five string
	for i := range 5 {
		five += systemdRecord(9, fmt.Sprintf("ours-%d", i), "phase", i)
	}
	first := systemdRecord(11, "systemd", "phase", 1)
	tests := []struct {
		name    string
		before  string
		nBefore int // good records in before
		skipped []int64
	}{
		{"garbage", "garbage \x00\xff", 0, []int64{0}},
		{"garbage after a record", first + "garbage", 1, []int64{int64(len(first))}},
		{"truncated last record", first + strings.TrimSuffix(first, "\n")[:40], 1, []int64{int64(len(first))}},
		{"invalid JSON", "\x1e{\"pcr\":9,]\n" + first, 1, []int64{0}},
		{"2 MiB record", "\x1e{\"x\":\"" + strings.Repeat("a", 2<<20) + "\"}\n" + first, 1, []int64{0}},
		{"two bad ranges", "\x1e{\n" + first + "\x1e]\n", 1, []int64{0, int64(3 + len(first))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.before + five
			r := NewReader(strings.NewReader(in))
			var recs []Record
			for {
				rec, err := r.Next()
				if err == io.EOF {
					break
				}
				var se *SkipError
				if errors.As(err, &se) {
					continue
				}
				if err != nil {
					t.Fatalf("Next: %v", err)
				}
				recs = append(recs, rec)
			}
			if len(recs) != tc.nBefore+5 {
				t.Fatalf("%d records, want %d", len(recs), tc.nBefore+5)
			}
			out, _ := Encode(recs[tc.nBefore:])
			if string(out) != five {
				t.Errorf("the records after the damage differ")
			}
			var offs []int64
			var total int64
			for _, se := range r.Skipped() {
				offs = append(offs, se.Offset)
				total += se.Size
			}
			if fmt.Sprint(offs) != fmt.Sprint(tc.skipped) {
				t.Errorf("skipped at %v, want %v", offs, tc.skipped)
			}
			whole, _ := Encode(recs)
			if int64(len(whole))+total != int64(len(in)) {
				t.Errorf("records (%d bytes) and skipped ranges (%d bytes) do not tile the %d input bytes", len(whole), total, len(in))
			}
		})
	}
}

func TestReaderReadErrorIsSticky(t *testing.T) {
	r := NewReader(io.MultiReader(strings.NewReader(systemdRecord(11, "x", "phase", 1)), iotest.ErrReader(errors.New("disk on fire"))))
	_, err1 := r.Next()
	_, err2 := r.Next()
	if err1 == nil || err1 != err2 {
		t.Fatalf("Next errors %v then %v; want the same error twice", err1, err2)
	}
}

// oneByteReader returns one byte per Read, to exercise the buffering.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func TestReaderLongRecordsAndShortReads(t *testing.T) {
	long := "\x1e" + fmt.Sprintf(`{"pcr":9,"digests":[{"hashAlg":"sha256","digest":"%x"}],"content_type":"x","content":{"pad":"%s"}}`,
		hashtest.Sum(crypto.SHA256, nil), strings.Repeat("p", 10000)) + "\n"
	in := long + systemdRecord(11, "a", "phase", 1) + long
	recs, err := ReadAll(oneByteReader{strings.NewReader(in)})
	if err != nil || len(recs) != 3 {
		t.Fatalf("ReadAll = %d records, %v", len(recs), err)
	}
	out, _ := Encode(recs)
	if string(out) != in {
		t.Fatal("round trip differs")
	}
}
