package verify

import (
	"bytes"
	"crypto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/internal/hashtest"
)

// part is one measured thing of a test log.
type part struct {
	event, name string // name: the file's base name (and reference name)
	data        []byte
	boot        string
}

// testParts is a load of a kernel, two initrd components and a command
// line in boot "boot-a".
func testParts() []part {
	kernel := make([]byte, 0x400)
	copy(kernel[0x202:], "HdrS")
	return []part{
		{eventlog.EventKernel, "vmlinuz", kernel, "boot-a"},
		{eventlog.EventInitrd, "fw.cpio", []byte("070701 fw"), "boot-a"},
		{eventlog.EventInitrd, "modules.cpio.gz", []byte("\x1f\x8b modules"), "boot-a"},
		{eventlog.EventCmdline, "cmdline", []byte("console=ttyS0 root=/dev/vda"), "boot-a"},
	}
}

// writeLog appends one record per part to a new log in dir with our
// writer (eventlog.Writer, the locking protocol) and returns its path.
func writeLog(t *testing.T, dir string, pcrIndex int, banks []crypto.Hash, parts []part) string {
	t.Helper()
	path := filepath.Join(dir, "tpm2-measure.log")
	w, err := eventlog.OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Lock(); err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		sums := map[crypto.Hash][]byte{}
		for _, h := range banks {
			sums[h] = hashtest.Sum(h, p.data)
		}
		c := eventlog.KexecContent{Event: p.event, Size: int64(len(p.data)), BootID: p.boot}
		if p.event != eventlog.EventCmdline {
			c.Path = "/boot/" + p.name
		}
		rec, err := eventlog.NewKexecRecord(pcrIndex, sums, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.BeginWrite(); err != nil {
			t.Fatal(err)
		}
		if err := w.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Unlock(); err != nil {
		t.Fatal(err)
	}
	return path
}

// extendParts returns v with PCR index of every bank extended by the
// digests of parts (hashtest, independent of the code under test).
func extendParts(v PCRValues, index int, parts []part) PCRValues {
	out := PCRValues{}
	for h, vals := range v {
		for _, p := range parts {
			vals[index] = hashtest.Extend(h, vals[index], hashtest.Sum(h, p.data))
		}
		out[h] = vals
	}
	return out
}

// references writes the parts' files into dir and builds their manifest
// with Reference (cmdline parts with --cmdline).
func references(t *testing.T, dir string, parts []part) *References {
	t.Helper()
	var files, cmdlines []string
	for _, p := range parts {
		if p.event == eventlog.EventCmdline {
			cmdlines = append(cmdlines, string(p.data))
			continue
		}
		f := filepath.Join(dir, p.name)
		if err := os.WriteFile(f, p.data, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	m, _, err := Reference(files, ReferenceOptions{Cmdlines: cmdlines})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReferences(m)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func verifyLog(t *testing.T, path string, actual PCRValues, refs *References, ignore []int) *Verdict {
	t.Helper()
	log, err := ReadLog(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := Verify(NewInput(actual, log, &Firmware{}, refs, ignore))
	var text bytes.Buffer
	if err := v.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("verdict:\n%s", text.String())
	return v
}

func TestVerifyCleanLog(t *testing.T) {
	dir := t.TempDir()
	parts := testParts()
	path := writeLog(t, dir, 9, allBanks, parts)
	refs := references(t, dir, parts)
	v := verifyLog(t, path, extendParts(resetPCRs(allBanks), 9, parts), refs, nil)
	if !v.OK {
		t.Fatalf("verdict not OK: %q", findings(v))
	}
	if len(v.Boots) != 1 || v.Boots[0].BootID != "boot-a" || len(v.Boots[0].Events) != len(parts) {
		t.Fatalf("boots = %+v, want one boot-a with %d events", v.Boots, len(parts))
	}
	for i, e := range v.Boots[0].Events {
		if len(e.Match) != 1 || e.Match[0] != parts[i].name {
			t.Errorf("event %d (%s) matched %q, want %q", i, e.Describe(), e.Match, parts[i].name)
		}
	}
	if len(v.PCRs) != len(allBanks) {
		t.Errorf("PCR table has %d rows, want PCR 9 in %d banks: %+v", len(v.PCRs), len(allBanks), v.PCRs)
	}
	for _, r := range v.PCRs {
		if r.PCR != 9 || r.Status != StatusMatch || r.Records != len(parts) {
			t.Errorf("row %+v, want PCR 9 MATCH with %d records", r, len(parts))
		}
	}
}

// TestVerifyFindings breaks one thing at a time and checks that it is a
// finding naming what it is about, and only that.
func TestVerifyFindings(t *testing.T) {
	tests := []struct {
		name string
		// change alters the log file, the PCR values, the references or
		// the ignored PCRs.
		change func(t *testing.T, path string, actual PCRValues, parts []part) (PCRValues, []part, []int)
		want   []string // substrings, one per expected finding, in order
	}{
		{
			name: "component missing from the references",
			change: func(t *testing.T, path string, actual PCRValues, parts []part) (PCRValues, []part, []int) {
				return actual, append(parts[:2:2], parts[3]), nil
			},
			want: []string{"PCR 9 record 2 kexec-initrd /boot/modules.cpio.gz: UNKNOWN"},
		},
		{
			name: "record altered in one bank",
			change: func(t *testing.T, path string, actual PCRValues, parts []part) (PCRValues, []part, []int) {
				b := readBytes(t, path)
				old := hashtest.Sum(crypto.SHA384, parts[1].data)
				alt := bytes.Clone(old)
				alt[0] ^= 1
				b = bytes.Replace(b, []byte(hexOf(old)), []byte(hexOf(alt)), 1)
				writeBytes(t, path, b)
				return actual, parts, nil
			},
			// the altered digest matches no reference either
			want: []string{"PCR 9 sha384: MISMATCH", "PCR 9 record 1 kexec-initrd /boot/fw.cpio: UNKNOWN"},
		},
		{
			name: "extend without a record",
			change: func(t *testing.T, path string, actual PCRValues, parts []part) (PCRValues, []part, []int) {
				return extendParts(actual, 9, []part{{data: []byte("unlogged")}}), parts, nil
			},
			want: []string{"PCR 9 sha1: MISMATCH", "PCR 9 sha256: MISMATCH", "PCR 9 sha384: MISMATCH", "PCR 9 sha512: MISMATCH"},
		},
		{
			name: "PCR extended with no record at all",
			change: func(t *testing.T, path string, actual PCRValues, parts []part) (PCRValues, []part, []int) {
				return extendParts(actual, 11, []part{{data: []byte("x")}}), parts, []int{10}
			},
			want: []string{"PCR 11 sha1: unexplained", "PCR 11 sha256: unexplained", "PCR 11 sha384: unexplained", "PCR 11 sha512: unexplained"},
		},
		{
			name: "ignored PCR",
			change: func(t *testing.T, path string, actual PCRValues, parts []part) (PCRValues, []part, []int) {
				return extendParts(actual, 10, []part{{data: []byte("ima")}}), parts, []int{10}
			},
		},
		{
			name: "sticky bit",
			change: func(t *testing.T, path string, actual PCRValues, parts []part) (PCRValues, []part, []int) {
				if err := os.Chmod(path, 0o600|os.ModeSticky); err != nil {
					t.Fatal(err)
				}
				return actual, parts, nil
			},
			want: []string{"userspace log: eventlog: " + "SUB:interrupted write"},
		},
		{
			name: "record that does not parse",
			change: func(t *testing.T, path string, actual PCRValues, parts []part) (PCRValues, []part, []int) {
				writeBytes(t, path, append(readBytes(t, path), "\x1e{\"pcr\":9,\n"...))
				return actual, parts, nil
			},
			want: []string{"userspace log: SUB:tpm2-measure.log: SUB:record 4 at offset SUB:replayed the 4 records that parse"},
		},
		{
			name: "record cut short at the end",
			change: func(t *testing.T, path string, actual PCRValues, parts []part) (PCRValues, []part, []int) {
				b := readBytes(t, path)
				writeBytes(t, path, b[:len(b)-1])
				return actual, parts, nil
			},
			// the TPM was extended for the record the log lost
			want: []string{"userspace log: SUB:record 3 SUB:truncated record", "PCR 9 sha1: MISMATCH", "PCR 9 sha256: MISMATCH", "PCR 9 sha384: MISMATCH", "PCR 9 sha512: MISMATCH"},
		},
		{
			name: "garbage before the records hides nothing",
			change: func(t *testing.T, path string, actual PCRValues, parts []part) (PCRValues, []part, []int) {
				writeBytes(t, path, append([]byte("garbage\n"), readBytes(t, path)...))
				return actual, parts, nil
			},
			want: []string{"userspace log: SUB:skipped bytes SUB:every compared PCR matches without the skipped bytes"},
		},
		{
			name: "a record overwritten by garbage",
			change: func(t *testing.T, path string, actual PCRValues, parts []part) (PCRValues, []part, []int) {
				b := readBytes(t, path)
				i := bytes.IndexByte(b[1:], 0x1e) + 1       // the second record's RS
				j := bytes.IndexByte(b[i+1:], 0x1e) + i + 1 // the third's
				copy(b[i:j], bytes.Repeat([]byte("x"), j-i))
				writeBytes(t, path, b)
				return actual, parts, nil
			},
			// the TPM was extended for the record the garbage replaced
			want: []string{"userspace log: SUB:skipped bytes SUB:may hide records of PCR 9", "PCR 9 sha1: MISMATCH", "PCR 9 sha256: MISMATCH", "PCR 9 sha384: MISMATCH", "PCR 9 sha512: MISMATCH"},
		},
		{
			name: "record without a digest for a bank",
			change: func(t *testing.T, path string, actual PCRValues, parts []part) (PCRValues, []part, []int) {
				d := `{"hashAlg":"sha1","digest":"` + hexOf(hashtest.Sum(crypto.SHA1, parts[1].data)) + `"},`
				writeBytes(t, path, bytes.Replace(readBytes(t, path), []byte(d), nil, 1))
				return actual, parts, nil
			},
			want: []string{"PCR 9 sha1: MISMATCH: record 1 has no sha1 digest"},
		},
		{
			name: "PCR value not given",
			change: func(t *testing.T, path string, actual PCRValues, parts []part) (PCRValues, []part, []int) {
				vals := actual[crypto.SHA256]
				vals[9] = nil
				actual[crypto.SHA256] = vals
				return actual, parts, nil
			},
			want: []string{"PCR 9 sha256: 4 record(s) but no PCR value"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			parts := testParts()
			path := writeLog(t, dir, 9, allBanks, parts)
			actual, refParts, ignore := tc.change(t, path, extendParts(resetPCRs(allBanks), 9, parts), parts)
			v := verifyLog(t, path, actual, references(t, t.TempDir(), refParts), ignore)
			got := findings(v)
			if v.OK != (len(tc.want) == 0) {
				t.Errorf("OK = %v with findings %q", v.OK, got)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("findings %q, want %d: %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !matches(got[i], w) {
					t.Errorf("finding %d = %q, want %q", i, got[i], w)
				}
			}
		})
	}
}

func TestVerifyBoots(t *testing.T) {
	dir := t.TempDir()
	parts := testParts()
	second := []part{
		{eventlog.EventKernel, "vmlinuz", parts[0].data, ""}, // no bootId: the boot of the next record that has one
		{eventlog.EventCmdline, "cmdline", []byte("quiet"), "boot-b"},
	}
	all := append(append([]part{}, parts...), second...)
	path := writeLog(t, dir, 9, allBanks, all)
	v := verifyLog(t, path, extendParts(resetPCRs(allBanks), 9, all), references(t, dir, all), nil)
	if !v.OK {
		t.Fatalf("findings %q", findings(v))
	}
	if len(v.Boots) != 2 || v.Boots[0].BootID != "boot-a" || v.Boots[1].BootID != "boot-b" ||
		len(v.Boots[0].Events) != 4 || len(v.Boots[1].Events) != 2 {
		t.Fatalf("boots %+v, want boot-a with 4 events and boot-b with 2", v.Boots)
	}
}

// TestVerifyOneBankTPM checks that only the TPM's banks are compared and
// matched: a record's digests for other banks are neither.
func TestVerifyOneBankTPM(t *testing.T) {
	dir := t.TempDir()
	parts := testParts()
	path := writeLog(t, dir, 9, allBanks, parts)
	writeBytes(t, path, bytes.Replace(readBytes(t, path), []byte(hexOf(hashtest.Sum(crypto.SHA1, parts[1].data))), []byte(strings.Repeat("0", 40)), 1))
	actual := extendParts(resetPCRs([]crypto.Hash{crypto.SHA256}), 9, parts)
	v := verifyLog(t, path, actual, references(t, dir, parts), nil)
	if !v.OK || len(v.PCRs) != 1 || v.PCRs[0].Bank != "sha256" {
		t.Fatalf("OK %v, rows %+v, findings %q; want OK with PCR 9 sha256 only", v.OK, v.PCRs, findings(v))
	}
}
