package verify

import (
	"bytes"
	"compress/gzip"
	"crypto"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/internal/newc"
	"github.com/kexec-measured/kexec-measured/pcr"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixtureFiles writes deterministic inputs into dir: a bzImage-like
// kernel, a PE kernel, and an initrd of an uncompressed cpio followed by a
// gzip cpio (two segments).
func fixtureFiles(t *testing.T, dir string) (kernel, pe, initrd string, initrdData []byte) {
	t.Helper()
	bz := make([]byte, 0x1000)
	copy(bz[0x202:], "HdrS")
	pebytes := make([]byte, 0x200)
	copy(pebytes, "MZ")
	pebytes[0x3c] = 0x80
	copy(pebytes[0x80:], "PE\x00\x00")
	early, err := newc.Archive([]newc.File{{Name: "kernel/x86/microcode/GenuineIntel.bin", Perm: 0o644, Data: []byte("microcode")}})
	if err != nil {
		t.Fatal(err)
	}
	main, err := newc.Archive([]newc.File{{Name: "init", Perm: 0o755, Data: []byte("#!/bin/sh\n")}})
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(main)
	zw.Close()
	initrdData = append(early, gz.Bytes()...)
	kernel, pe, initrd = filepath.Join(dir, "vmlinuz-6.1"), filepath.Join(dir, "uki.efi"), filepath.Join(dir, "initrd.img")
	for p, b := range map[string][]byte{kernel: bz, pe: pebytes, initrd: initrdData} {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return kernel, pe, initrd, initrdData
}

// TestReferenceGolden builds a manifest with every kind of entry and
// compares it with testdata/reference.golden.json (go test -update
// rewrites it). The digests are checked independently below.
func TestReferenceGolden(t *testing.T) {
	dir := t.TempDir()
	kernel, pe, initrd, data := fixtureFiles(t, dir)
	m, warnings, err := Reference([]string{kernel, pe, initrd}, ReferenceOptions{
		Names: []string{"", "my-uki"}, Cmdlines: []string{"console=ttyS0 <&>"}, Split: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings %q", warnings)
	}
	var got bytes.Buffer
	if err := m.Encode(&got); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "reference.golden.json")
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("manifest differs from %s (go test -update rewrites it):\n%s", golden, got.Bytes())
	}
	// Same inputs, same bytes.
	m2, _, _ := Reference([]string{kernel, pe, initrd}, ReferenceOptions{Names: []string{"", "my-uki"}, Cmdlines: []string{"console=ttyS0 <&>"}, Split: true})
	var again bytes.Buffer
	m2.Encode(&again)
	if !bytes.Equal(again.Bytes(), got.Bytes()) {
		t.Error("a second run gives other bytes")
	}

	wantKinds := []struct {
		name, kind string
		data       []byte
	}{
		{"vmlinuz-6.1", KindKernel, readBytes(t, kernel)},
		{"my-uki", KindKernel, readBytes(t, pe)},
		{"initrd.img", KindInitrd, data},
		{"initrd.img", KindSegment, data[:len(data)-gzLen(t, data)]},
		{"initrd.img", KindSegment, data[len(data)-gzLen(t, data):]},
		{"cmdline", KindCmdline, []byte("console=ttyS0 <&>")},
	}
	if len(m.Entries) != len(wantKinds) {
		t.Fatalf("%d entries, want %d", len(m.Entries), len(wantKinds))
	}
	for i, w := range wantKinds {
		e := m.Entries[i]
		if e.Name != w.name || e.Kind != w.kind || e.Size != int64(len(w.data)) {
			t.Errorf("entry %d = %s %s size %d, want %s %s size %d", i, e.Name, e.Kind, e.Size, w.name, w.kind, len(w.data))
		}
		for _, h := range pcr.Banks() {
			if got := e.Sum(h); !bytes.Equal(got, hashtest.Sum(h, w.data)) {
				t.Errorf("entry %d %v digest %x, want %x", i, h, got, hashtest.Sum(h, w.data))
			}
		}
	}
	if s := m.Entries[4]; s.Segment == nil || *s.Segment != 1 || s.SegmentKind != "gzip" {
		t.Errorf("second segment: %+v, want segment 1, gzip", s)
	}
}

// gzLen returns the length of the gzip member at the end of data (it
// starts at the gzip magic).
func gzLen(t *testing.T, data []byte) int {
	t.Helper()
	i := bytes.Index(data, []byte{0x1f, 0x8b, 0x08})
	if i < 0 {
		t.Fatal("no gzip member")
	}
	return len(data) - i
}

func TestDetectKernel(t *testing.T) {
	bz := make([]byte, 0x300)
	copy(bz[0x202:], "HdrS")
	pe := make([]byte, 0x100)
	copy(pe, "MZ")
	pe[0x3c] = 0x40
	copy(pe[0x40:], "PE\x00\x00")
	badPE := bytes.Clone(pe)
	badPE[0x3c] = 0xf0 // e_lfanew past the end
	tests := []struct {
		name string
		data []byte
		want bool
	}{
		{"bzImage", bz, true},
		{"PE", pe, true},
		{"MZ without PE", badPE, false},
		{"cpio", []byte("070701" + strings.Repeat("0", 600)), false},
		{"short", []byte("MZ"), false},
		{"empty", nil, false},
	}
	for _, tc := range tests {
		if got := DetectKernel(tc.data); got != tc.want {
			t.Errorf("%s: DetectKernel = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseManifestRoundTrip(t *testing.T) {
	golden := readBytes(t, filepath.Join("testdata", "reference.golden.json"))
	m, err := ParseManifest(golden, "golden")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := m.Encode(&out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), golden) {
		t.Errorf("read and written again, the manifest differs:\n%s", out.Bytes())
	}
}

func TestParseManifestRefuses(t *testing.T) {
	d := func(h crypto.Hash) string { return hexOf(hashtest.Sum(h, []byte("x"))) }
	entry := `{"name":"a","kind":"initrd","size":1,"digests":{"sha256":"` + d(crypto.SHA256) + `"}}`
	tests := []struct {
		name, text, want string
	}{
		{"not JSON", `{`, "unexpected EOF"},
		{"trailing data", `{"version":1,"entries":[]} {}`, "data after"},
		{"unknown field", `{"version":1,"entries":[],"x":1}`, "unknown field"},
		{"wrong version", `{"version":2,"entries":[]}`, "version 2"},
		{"no name", `{"version":1,"entries":[{"kind":"initrd","size":1,"digests":{"sha256":"` + d(crypto.SHA256) + `"}}]}`, "no name"},
		{"bad kind", strings.Replace(`{"version":1,"entries":[`+entry+`]}`, `"initrd"`, `"firmware"`, 1), "kind \"firmware\""},
		{"negative size", strings.Replace(`{"version":1,"entries":[`+entry+`]}`, `"size":1`, `"size":-1`, 1), "size -1"},
		{"no digests", `{"version":1,"entries":[{"name":"a","kind":"initrd","size":1,"digests":{}}]}`, "no digests"},
		{"unknown bank", `{"version":1,"entries":[{"name":"a","kind":"initrd","size":1,"digests":{"sm3_256":"00"}}]}`, "unknown hash bank"},
		{"upper-case bank", `{"version":1,"entries":[{"name":"a","kind":"initrd","size":1,"digests":{"SHA256":"` + d(crypto.SHA256) + `"}}]}`, "write it \"sha256\""},
		{"short digest", `{"version":1,"entries":[{"name":"a","kind":"initrd","size":1,"digests":{"sha256":"` + d(crypto.SHA1) + `"}}]}`, "not 32 bytes"},
		{"upper-case hex", `{"version":1,"entries":[{"name":"a","kind":"initrd","size":1,"digests":{"sha256":"` + strings.ToUpper(d(crypto.SHA256)) + `"}}]}`, "lower-case"},
		{"segment without index", strings.Replace(`{"version":1,"entries":[`+entry+`]}`, `"initrd"`, `"segment"`, 1), "segment entry needs"},
		{"segment fields on an initrd", strings.Replace(`{"version":1,"entries":[`+entry+`]}`, `"size":1`, `"size":1,"segment":0,"offset":0`, 1), "belong to segment"},
		{"cmdline on an initrd", strings.Replace(`{"version":1,"entries":[`+entry+`]}`, `"size":1`, `"size":1,"cmdline":"x"`, 1), "cmdline belongs"},
		{"cmdline of another size", strings.Replace(strings.Replace(`{"version":1,"entries":[`+entry+`]}`, `"size":1`, `"size":2,"cmdline":"x"`, 1), `"initrd"`, `"cmdline"`, 1), "size says 2"},
	}
	for _, tc := range tests {
		_, err := ParseManifest([]byte(tc.text), "m.json")
		if err == nil || !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "m.json") {
			t.Errorf("%s: error %v, want ErrManifest naming m.json and %q", tc.name, err, tc.want)
		}
	}
	if _, err := ParseManifest([]byte(`{"version":1,"entries":[`+entry+`]}`), "ok"); err != nil {
		t.Errorf("the valid base case: %v", err)
	}
}

// entryOf builds an entry of data with digests in banks.
func entryOf(name, kind string, data []byte, banks ...crypto.Hash) Entry {
	e := Entry{Name: name, Kind: kind, Size: int64(len(data)), Digests: map[string]string{}}
	for _, h := range banks {
		n, _ := pcr.Name(h)
		e.Digests[n] = hexOf(hashtest.Sum(h, data))
	}
	return e
}

func sumsOf(data []byte, banks ...crypto.Hash) map[crypto.Hash][]byte {
	out := map[crypto.Hash][]byte{}
	for _, h := range banks {
		out[h] = hashtest.Sum(h, data)
	}
	return out
}

func TestReferencesMergeAndMatch(t *testing.T) {
	fw := []byte("fw")
	a := Manifest{Version: 1, Entries: []Entry{
		entryOf("fw.cpio", KindInitrd, fw, crypto.SHA1, crypto.SHA256),
		entryOf("vmlinuz", KindKernel, []byte("k"), crypto.SHA256),
	}}
	b := Manifest{Version: 1, Entries: []Entry{
		entryOf("fw.cpio", KindInitrd, fw, crypto.SHA1, crypto.SHA256),     // exact duplicate: collapsed
		entryOf("microcode.cpio", KindInitrd, fw, crypto.SHA256),           // same bytes, another name
		entryOf("vmlinuz-old", KindKernel, []byte("k-old"), crypto.SHA256), // another version
	}}
	r, err := NewReferences(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(r.Entries()); n != 4 {
		t.Errorf("%d entries after the merge, want 4 (the exact duplicate collapsed)", n)
	}
	tests := []struct {
		name  string
		event string
		sums  map[crypto.Hash][]byte
		want  string
	}{
		{"duplicates by digest", "kexec-initrd", sumsOf(fw, crypto.SHA256), "fw.cpio = microcode.cpio"},
		{"all common banks agree", "kexec-initrd", sumsOf(fw, crypto.SHA1, crypto.SHA256, crypto.SHA384), "fw.cpio = microcode.cpio"},
		{"one bank differs", "kexec-initrd", map[crypto.Hash][]byte{crypto.SHA256: hashtest.Sum(crypto.SHA256, fw), crypto.SHA1: hashtest.Sum(crypto.SHA1, []byte("other"))}, "microcode.cpio"},
		{"no common bank", "kexec-initrd", sumsOf(fw, crypto.SHA512), ""},
		{"kind must fit", "kexec-kernel", sumsOf(fw, crypto.SHA256), ""},
		{"kernel", "kexec-kernel", sumsOf([]byte("k-old"), crypto.SHA256), "vmlinuz-old"},
		{"unknown", "kexec-initrd", sumsOf([]byte("nope"), crypto.SHA256), ""},
	}
	for _, tc := range tests {
		if got := Names(r.Match(tc.event, tc.sums)); got != tc.want {
			t.Errorf("%s: match %q, want %q", tc.name, got, tc.want)
		}
	}

	// Two entries that agree in sha256 and differ in sha1: a broken manifest.
	bad := entryOf("fw.cpio", KindInitrd, fw, crypto.SHA256)
	bad.Digests["sha1"] = hexOf(hashtest.Sum(crypto.SHA1, []byte("not fw")))
	bad.Source = "bad.json"
	if _, err := NewReferences(a, Manifest{Version: 1, Entries: []Entry{bad}}); !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("conflicting entries: %v, want ErrManifest naming bad.json", err)
	}
}

func TestLoadReferencesDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, m Manifest) {
		var b bytes.Buffer
		if err := m.Encode(&b); err != nil {
			t.Fatal(err)
		}
		writeBytes(t, filepath.Join(dir, name), b.Bytes())
	}
	write("b.json", Manifest{Version: 1, Entries: []Entry{entryOf("b", KindInitrd, []byte("b"), crypto.SHA256)}})
	write("a.json", Manifest{Version: 1, Entries: []Entry{entryOf("a", KindInitrd, []byte("a"), crypto.SHA256)}})
	writeBytes(t, filepath.Join(dir, "notes.txt"), []byte("not a manifest"))
	r, err := LoadReferences([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range r.Entries() {
		names = append(names, e.Name+"@"+filepath.Base(e.Source))
	}
	if got := strings.Join(names, ","); got != "a@a.json,b@b.json" {
		t.Errorf("entries %s, want a@a.json,b@b.json (the *.json files in name order)", got)
	}
	writeBytes(t, filepath.Join(dir, "c.json"), []byte("{"))
	if _, err := LoadReferences([]string{dir}); !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), "c.json") {
		t.Errorf("a broken manifest in the directory: %v, want ErrManifest naming c.json", err)
	}
	if _, err := LoadReferences([]string{filepath.Join(dir, "missing.json")}); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("a missing manifest: %v", err)
	}
}
