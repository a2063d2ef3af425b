//go:build linux

package main

import (
	"crypto"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/bootentry/ukitest"
	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/handoff"
	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/internal/newc"
)

// writeTree writes files (relative path to contents) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// testPlan is the part of a --dry-run --json plan these tests read.
type testPlan struct {
	Kernel  *componentJSON    `json:"kernel"`
	Initrd  *initrdJSON       `json:"initrd"`
	Cmdline *string           `json:"cmdline"`
	Events  []json.RawMessage `json:"events"`
}

// dryRunJSON runs a --dry-run --json and decodes the plan and its events.
func dryRunJSON(t *testing.T, e env, args ...string) (testPlan, []eventlog.KexecContent, []map[string]string) {
	t.Helper()
	code, out, stderr := runTest(e, append(args, "--dry-run", "--json", "--tpm=none")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var p testPlan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var cs []eventlog.KexecContent
	var sums []map[string]string
	for _, ev := range p.Events {
		var r struct {
			Digests []eventlog.Digest     `json:"digests"`
			Content eventlog.KexecContent `json:"content"`
		}
		if err := json.Unmarshal(ev, &r); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, r.Content)
		m := map[string]string{}
		for _, d := range r.Digests {
			m[d.HashAlg] = d.Digest
		}
		sums = append(sums, m)
	}
	return p, cs, sums
}

func TestEntryDefault(t *testing.T) {
	dir := t.TempDir()
	esp, xb := filepath.Join(dir, "esp"), filepath.Join(dir, "xbootldr")
	writeTree(t, esp, map[string]string{
		"loader/loader.conf":           "default deb*\n",
		"loader/entries/other.conf":    "linux /other\n",
		"loader/entries/broken.conf":   "linux /k\ndevicetree /x.dtb\n",
		"other":                        "other kernel",
		"loader/entries/unrelated.txt": "x",
	})
	writeTree(t, xb, map[string]string{
		"loader/entries/debian.conf": "title Debian\nlinux /vmlinuz\ninitrd /ucode.cpio\ninitrd /main.cpio\ninitrd /modules.cpio\noptions root=/dev/vda\noptions quiet\n",
		"vmlinuz":                    "the kernel",
		"ucode.cpio":                 "ucode",
		"main.cpio":                  "main-initrd",
		"modules.cpio":               "modules",
	})
	e, _ := testEnv(t)
	base := []string{"-l", "--entry=default", "--esp-path=" + esp, "--boot-path=" + xb}
	p, cs, sums := dryRunJSON(t, e, base...)
	if p.Kernel.Path != filepath.Join(xb, "vmlinuz") {
		t.Errorf("kernel %s", p.Kernel.Path)
	}
	want := []string{"ucode.cpio", "main.cpio", "modules.cpio"}
	if len(p.Initrd.Components) != 3 {
		t.Fatalf("components %+v, want %v", p.Initrd.Components, want)
	}
	for i, c := range p.Initrd.Components {
		if c.Path != filepath.Join(xb, want[i]) {
			t.Errorf("component %d = %s, want %s", i, c.Path, want[i])
		}
	}
	if *p.Cmdline != "root=/dev/vda quiet" {
		t.Errorf("cmdline %q", *p.Cmdline)
	}
	data := []string{"the kernel", "ucode", "main-initrd", "modules", handoff.EventText, "root=/dev/vda quiet"}
	for i, d := range data {
		if got, w := sums[i]["sha256"], hashtest.Sum(crypto.SHA256, []byte(d)); got != hexString(w) {
			t.Errorf("event %d (%s) sha256 %s, want %x", i, cs[i].Event, got, w)
		}
	}

	// --append replaces the entry's options; --initrd adds a component.
	extra := filepath.Join(dir, "extra.cpio")
	os.WriteFile(extra, []byte("extra"), 0o644)
	p, _, _ = dryRunJSON(t, e, append(base, "--append=console=ttyS0", "--initrd", extra)...)
	if *p.Cmdline != "console=ttyS0" || len(p.Initrd.Components) != 4 || p.Initrd.Components[3].Path != extra {
		t.Errorf("with --append and --initrd: cmdline %q, components %+v", *p.Cmdline, p.Initrd.Components)
	}

	// The broken entry and an unknown one are refused (exit 1), naming why.
	for _, c := range []struct{ id, want string }{{"broken.conf", `"devicetree"`}, {"nope", "no boot entry"}} {
		code, _, stderr := runTest(e, "-l", "--entry="+c.id, "--esp-path="+esp, "--boot-path="+xb, "--dry-run", "--tpm=none")
		if code != exitRefused || !strings.Contains(stderr, c.want) {
			t.Errorf("--entry=%s: exit %d, %q; want 1 and %s", c.id, code, stderr, c.want)
		}
	}
	// An EFI variable picks another entry.
	vars := t.TempDir()
	b := []byte{7, 0, 0, 0}
	for _, r := range "other.conf\x00" {
		b = append(b, byte(r), 0)
	}
	os.WriteFile(filepath.Join(vars, "LoaderEntryDefault-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"), b, 0o644)
	e.efivars = vars
	p, _, _ = dryRunJSON(t, e, base...)
	if p.Kernel.Path != filepath.Join(esp, "other") {
		t.Errorf("with LoaderEntryDefault=other.conf: kernel %s", p.Kernel.Path)
	}
}

func TestEntryUsage(t *testing.T) {
	e, _ := testEnv(t)
	for _, args := range [][]string{
		{"-l", "--entry=default", "/vmlinuz"},
		{"-l", "--entry="},
		{"-l", "--entry=x", "--uki-profile=1"},
		{"-l", "/x.efi", "--uki-profile=256"},
	} {
		if code, _, _ := runTest(e, args...); code != exitRefused {
			t.Errorf("%q: exit %d, want 1", args, code)
		}
	}
}

func TestUKIDryRun(t *testing.T) {
	linux, ucode, initrd := "LINUX-SECTION", "UCODE", "INITRD-SECTION-BYTES"
	uki := ukitest.Build(t, []ukitest.Section{
		{Name: ".osrel", Data: []byte("ID=test\n")},
		{Name: ".cmdline", Data: []byte("console=ttyS0 quiet\n")},
		{Name: ".linux", Data: []byte(linux)},
		{Name: ".ucode", Data: []byte(ucode)},
		{Name: ".initrd", Data: []byte(initrd)},
	})
	e, _ := testEnv(t)
	_, cs, sums := dryRunJSON(t, e, "-l", uki)
	want := []struct{ event, section, data string }{
		{eventlog.EventKernel, ".linux", linux},
		{eventlog.EventInitrd, ".ucode", ucode},
		{eventlog.EventInitrd, ".initrd", initrd},
		{eventlog.EventHandoff, "", handoff.EventText},
		{eventlog.EventCmdline, ".cmdline", "console=ttyS0 quiet"},
	}
	if len(cs) != len(want) {
		t.Fatalf("%d events, want %d", len(cs), len(want))
	}
	for i, w := range want {
		if cs[i].Event != w.event || cs[i].Section != w.section {
			t.Errorf("event %d: %s %s, want %s %s", i, cs[i].Event, cs[i].Section, w.event, w.section)
		}
		if got, d := sums[i]["sha256"], hashtest.Sum(crypto.SHA256, []byte(w.data)); got != hexString(d) {
			t.Errorf("event %d: digest %s, want %x", i, got, d)
		}
	}
	// A plain EFI-stub kernel (the stub itself has no .linux) loads whole.
	_, cs, _ = dryRunJSON(t, e, "-l", ukitest.StubPath)
	if cs[0].Section != "" || cs[0].Path != ukitest.StubPath {
		t.Errorf("plain PE kernel: %+v", cs[0])
	}
}

func hexString(b []byte) string { return hex.EncodeToString(b) }

// TestInspectUKI: inspect lists a UKI's sections with the digests a load
// measures, and the segments inside .initrd.
func TestInspectUKI(t *testing.T) {
	a, err := newc.Archive([]newc.File{{Name: "a", Perm: 0o644, Data: []byte("first")}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newc.Archive([]newc.File{{Name: "b", Perm: 0o644, Data: []byte("second")}})
	initrd := append(append([]byte{}, a...), b...)
	uki := ukitest.Build(t, []ukitest.Section{
		{Name: ".osrel", Data: []byte("ID=test\n")},
		{Name: ".linux", Data: []byte("LINUX")},
		{Name: ".initrd", Data: initrd},
	})
	var stdout, stderr strings.Builder
	if code := runInspect([]string{"--json", uki}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rep struct {
		Sections []struct {
			Name    string            `json:"name"`
			Size    int64             `json:"size"`
			Digests map[string]string `json:"digests"`
			Initrd  *struct {
				Segments []json.RawMessage `json:"segments"`
			} `json:"initrd"`
		} `json:"sections"`
	}
	if err := json.Unmarshal([]byte(stdout.String()), &rep); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, s := range rep.Sections {
		switch s.Name {
		case ".linux":
			found[s.Name] = s.Digests["sha256"] == hexString(hashtest.Sum(crypto.SHA256, []byte("LINUX")))
		case ".initrd":
			found[s.Name] = s.Digests["sha256"] == hexString(hashtest.Sum(crypto.SHA256, initrd)) && s.Initrd != nil && len(s.Initrd.Segments) == 2
		}
	}
	if !found[".linux"] || !found[".initrd"] {
		t.Errorf("sections %+v: want .linux with its digest and .initrd with two segments", rep.Sections)
	}
	stdout.Reset()
	if code := runInspect([]string{uki}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "[.initrd]: ") {
		t.Errorf("text: exit %d\n%s", code, stdout.String())
	}
}

// TestPredictEntry: predict resolves --entry as the load does.
func TestPredictEntry(t *testing.T) {
	esp := t.TempDir()
	writeTree(t, esp, map[string]string{
		"loader/entries/a.conf": "linux /vmlinuz\ninitrd /one.cpio\ninitrd /two.cpio\noptions quiet\n",
		"vmlinuz":               "kernel", "one.cpio": "one", "two.cpio": "two",
	})
	e, _ := testEnv(t)
	var stdout, stderr strings.Builder
	code := predictMain([]string{"-l", "--entry=default", "--esp-path=" + esp, "--from-zero"}, e, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{filepath.Join(esp, "vmlinuz"), filepath.Join(esp, "one.cpio"), filepath.Join(esp, "two.cpio")} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("predict output lacks %s:\n%s", want, stdout.String())
		}
	}
}
