package predict

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/pcr"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var allBanks = []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}

// event is a planned event whose digests are hashtest's of data.
func event(name string, data string) Event {
	ev := Event{KexecContent: eventlog.KexecContent{Event: name, Size: int64(len(data))}, Sums: map[crypto.Hash][]byte{}}
	for _, h := range allBanks {
		ev.Sums[h] = hashtest.Sum(h, []byte(data))
	}
	return ev
}

func TestNew(t *testing.T) {
	start, err := Zero(9, allBanks)
	if err != nil {
		t.Fatal(err)
	}
	items := []string{"kernel", "initrd", "console=ttyS0"}
	var events []Event
	for i, it := range items {
		events = append(events, event([]string{eventlog.EventKernel, eventlog.EventInitrd, eventlog.EventCmdline}[i], it))
	}
	p, err := New(start, 9, events)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Banks, allBanks) {
		t.Errorf("banks %v", p.Banks)
	}
	for _, h := range allBanks {
		want := hashtest.PCR(h, nil, []byte(items[0]), []byte(items[1]), []byte(items[2]))
		if !bytes.Equal(p.Values[h], want) {
			t.Errorf("%v: %x, want %x", h, p.Values[h], want)
		}
	}

	// An event without a bank of the start is an error, not a guess.
	bad := event(eventlog.EventKernel, "k")
	delete(bad.Sums, crypto.SHA384)
	if _, err := New(start, 9, []Event{bad}); !errors.Is(err, ErrBank) {
		t.Errorf("missing bank: %v, want ErrBank", err)
	}
	short := event(eventlog.EventKernel, "k")
	short.Sums[crypto.SHA1] = short.Sums[crypto.SHA1][:4]
	if _, err := New(start, 9, []Event{short}); err == nil || !strings.Contains(err.Error(), "4 bytes") {
		t.Errorf("short digest: %v", err)
	}
	if _, err := New(start, 24, nil); err == nil {
		t.Error("PCR 24 accepted")
	}
}

func TestStarts(t *testing.T) {
	// The dynamic-RTM PCRs reset to all ones.
	z, err := Zero(17, []crypto.Hash{crypto.SHA256})
	if err != nil || !bytes.Equal(z.Values[crypto.SHA256], bytes.Repeat([]byte{0xff}, 32)) {
		t.Errorf("Zero(17): %x, %v", z.Values[crypto.SHA256], err)
	}
	if _, err := Zero(9, nil); err == nil {
		t.Error("no banks accepted")
	}

	vals := map[crypto.Hash][]byte{crypto.SHA256: hashtest.Sum(crypto.SHA256, []byte("tpm"))}
	s, err := FromValues(SourceTPM, "swtpm", vals, []crypto.Hash{crypto.SHA256})
	if err != nil || !bytes.Equal(s.Values[crypto.SHA256], vals[crypto.SHA256]) {
		t.Errorf("FromValues: %v", err)
	}
	if _, err := FromValues(SourceTPM, "swtpm", vals, allBanks); !errors.Is(err, ErrBank) {
		t.Errorf("FromValues without sha1: %v", err)
	}
}

// record is a log record on pcrIndex of content type ct over data.
func record(t *testing.T, pcrIndex int, ct, data string) eventlog.Record {
	t.Helper()
	var ds []eventlog.Digest
	for _, h := range allBanks {
		name, _ := pcr.Name(h)
		ds = append(ds, eventlog.Digest{HashAlg: name, Digest: hex.EncodeToString(hashtest.Sum(h, []byte(data)))})
	}
	return eventlog.Record{PCR: pcrIndex, Digests: ds, ContentType: ct, Content: []byte(`{}`)}
}

func TestFromLogs(t *testing.T) {
	var fw map[crypto.Hash][pcr.Count][]byte = map[crypto.Hash][pcr.Count][]byte{}
	for _, h := range allBanks {
		var pcrs [pcr.Count][]byte
		for i := range pcrs {
			pcrs[i] = pcr.Initial(h, i)
		}
		pcrs[9] = hashtest.PCR(h, nil, []byte("grub"))
		fw[h] = pcrs
	}
	recs := []eventlog.Record{
		record(t, 11, eventlog.SystemdContentType, "enter-initrd"),
		record(t, 9, eventlog.ContentType, "earlier kernel"),
		record(t, 9, eventlog.SystemdContentType, "something on 9"),
	}
	s, err := FromLogs("logs", fw, recs, 9, allBanks)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range allBanks {
		want := hashtest.PCR(h, fw[h][9], []byte("earlier kernel"), []byte("something on 9"))
		if !bytes.Equal(s.Values[h], want) {
			t.Errorf("%v: %x, want %x", h, s.Values[h], want)
		}
	}
	if len(s.History) != 1 || s.History[0].ContentType != eventlog.ContentType {
		t.Errorf("history %v, want the one kexec-measured record", s.History)
	}
	// Without a firmware log the replay starts at the reset value.
	s, err = FromLogs("log", nil, recs, 9, []crypto.Hash{crypto.SHA256})
	if want := hashtest.PCR(crypto.SHA256, nil, []byte("earlier kernel"), []byte("something on 9")); err != nil || !bytes.Equal(s.Values[crypto.SHA256], want) {
		t.Errorf("no firmware log: %x, %v", s.Values[crypto.SHA256], err)
	}
	// A record without a bank asked for, or a firmware log without it.
	noSHA1 := record(t, 9, eventlog.ContentType, "x")
	noSHA1.Digests = noSHA1.Digests[1:]
	if _, err := FromLogs("log", nil, []eventlog.Record{noSHA1}, 9, allBanks); !errors.Is(err, eventlog.ErrMissingDigest) {
		t.Errorf("record without sha1: %v", err)
	}
	delete(fw, crypto.SHA512)
	if _, err := FromLogs("log", fw, nil, 9, allBanks); !errors.Is(err, ErrBank) {
		t.Errorf("firmware log without sha512: %v", err)
	}
}

// fixedPrediction is a prediction of two events from zero in sha1 and
// sha256, with one earlier load in its history.
func fixedPrediction(t *testing.T, cmdline string) *Prediction {
	t.Helper()
	banks := []crypto.Hash{crypto.SHA1, crypto.SHA256}
	s, err := FromLogs("log", nil, []eventlog.Record{record(t, 9, eventlog.ContentType, "earlier")}, 9, banks)
	if err != nil {
		t.Fatal(err)
	}
	evs := []Event{event(eventlog.EventKernel, "kernel"), event(eventlog.EventCmdline, cmdline)}
	p, err := New(s, 9, evs)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestComponentGolden checks the .pcrlock format byte for byte (go test
// -update rewrites testdata/component.pcrlock).
func TestComponentGolden(t *testing.T) {
	b, err := Component(fixedPrediction(t, "quiet"), "vmlinuz-6.12")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "component.pcrlock")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("component differs from %s:\n%s", golden, b)
	}
}

func TestWriteVariants(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "900-kexec-measured.pcrlock.d")
	var written []Variant
	for i, name := range []string{"a", "b", "c", "b"} {
		p := fixedPrediction(t, "cmdline "+name)
		vs, err := Write(dir, name, 2, p)
		if err != nil {
			t.Fatal(err)
		}
		if vs[0].Name != name || !bytes.Equal(vs[0].Values[crypto.SHA256], p.Values[crypto.SHA256]) {
			t.Errorf("write %d: newest variant %q %x, want %q %x", i, vs[0].Name, vs[0].Values[crypto.SHA256], name, p.Values[crypto.SHA256])
		}
		written = vs
		time.Sleep(10 * time.Millisecond) // distinct modification times
	}
	names := []string{}
	for _, v := range written {
		names = append(names, v.Name)
	}
	// b rewritten is the newest; a was dropped when c came.
	if !slices.Equal(names, []string{"b", "c"}) {
		t.Errorf("variants %v, want [b c]", names)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 2 {
		t.Errorf("files %v", files)
	}
	read, err := ReadVariants(dir)
	if err != nil || len(read) != 2 || read[0].Name != "b" {
		t.Errorf("ReadVariants: %v, %v", read, err)
	}

	// A foreign file in our directory is reported, not silently counted.
	os.WriteFile(filepath.Join(dir, "foreign.pcrlock"), []byte(`{"records":[]}`), 0o644)
	if _, err := ReadVariants(dir); !errors.Is(err, ErrVariant) {
		t.Errorf("foreign file: %v", err)
	}

	// One component file: no variants.
	file := filepath.Join(t.TempDir(), "sub", "900-kexec-measured.pcrlock")
	if _, err := Write(file, "", 2, fixedPrediction(t, "x")); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(file, "v", 2, fixedPrediction(t, "x")); !errors.Is(err, ErrVariant) {
		t.Errorf("variant of a file: %v", err)
	}
	if _, err := Write(filepath.Join(t.TempDir(), "x.json"), "", 2, fixedPrediction(t, "x")); err == nil {
		t.Error("a name systemd-pcrlock ignores was accepted")
	}
	if _, err := Write(dir, "a", 0, fixedPrediction(t, "x")); err == nil {
		t.Error("keep 0 accepted")
	}
}

func TestVariantNames(t *testing.T) {
	for _, ok := range []string{"vmlinuz-6.12.9+deb13-amd64", "a", "A_b.c-d+e"} {
		if err := CheckVariantName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".hidden", "a/b", "..", "a b", "ä", strings.Repeat("x", 129)} {
		if err := CheckVariantName(bad); !errors.Is(err, ErrVariant) {
			t.Errorf("%q accepted", bad)
		}
	}
	for in, want := range map[string]string{"/boot/vmlinuz-6.1.0-18-amd64": "vmlinuz-6.1.0-18-amd64", "/k/.weird name": "weird_name", "/": "_"} {
		if got := VariantName(in); got != want || CheckVariantName(got) != nil {
			t.Errorf("VariantName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKeylime(t *testing.T) {
	a := hashtest.Sum(crypto.SHA256, []byte("a"))
	b := hashtest.Sum(crypto.SHA256, []byte("b"))
	got, err := Keylime(9, [][]byte{a, b, a})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"9":["` + hex.EncodeToString(a) + `","` + hex.EncodeToString(b) + `"]}` + "\n"
	if string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if _, err := Keylime(9, nil); err == nil {
		t.Error("empty policy accepted")
	}

	p := fixedPrediction(t, "x")
	other := Variant{Name: "old", Path: "old.pcrlock", PCR: 9, Values: map[crypto.Hash][]byte{crypto.SHA256: b}}
	vals, err := KeylimeValues(p, KeylimeBank, []Variant{other})
	if err != nil || len(vals) != 2 || !bytes.Equal(vals[0], p.Values[crypto.SHA256]) || !bytes.Equal(vals[1], b) {
		t.Errorf("KeylimeValues: %x, %v", vals, err)
	}
	other.PCR = 12
	if _, err := KeylimeValues(p, KeylimeBank, []Variant{other}); !errors.Is(err, ErrVariant) {
		t.Errorf("variant of another PCR: %v", err)
	}
	if _, err := KeylimeValues(p, crypto.SHA384, nil); !errors.Is(err, ErrBank) {
		t.Errorf("no sha384 value: %v", err)
	}
}
