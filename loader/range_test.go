//go:build linux

package loader

import (
	"crypto"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/loader/loadertest"
)

// TestRanges loads byte ranges of one file (as the sections of a UKI) and
// whole files: the memfds hold exactly the ranges, each is its own event
// with its section named, and the digests are over the range bytes.
func TestRanges(t *testing.T) {
	dir := t.TempDir()
	//              0         1         2         3
	//              0123456789012345678901234567890123456789
	uki := writeFile(t, dir, "uki.efi", "MZ....KERNEL-BYTES....UCODE..INITRD-DATA")
	extra := writeFile(t, dir, "extra.cpio", "extra")
	sys := loadertest.NewSys(t)
	l := &Loader{Sys: sys, PCR: 9, DryRun: false, Banks: []crypto.Hash{crypto.SHA256}}
	req := Request{
		Load: true, Kernel: uki, Initrds: []string{uki, uki, extra},
		KernelRange:    &Range{Offset: 6, Size: 12, Section: ".linux"},
		InitrdRanges:   []*Range{{Offset: 22, Size: 5, Section: ".ucode"}, {Offset: 29, Size: 11, Section: ".initrd"}, nil},
		Append:         "root=/dev/vda",
		CmdlineSection: ".cmdline",
	}
	l.DryRun = true // digests and records without a TPM
	res, err := l.Run(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Image.Close()
	im := res.Image
	wantParts := []struct{ section, data string }{
		{".linux", "KERNEL-BYTES"}, {".ucode", "UCODE"}, {".initrd", "INITRD-DATA"}, {"", "extra"}, {".cmdline", "root=/dev/vda"},
	}
	if len(im.Measurements) != len(wantParts) {
		t.Fatalf("%d measurements, want %d", len(im.Measurements), len(wantParts))
	}
	for i, w := range wantParts {
		m := im.Measurements[i]
		if m.Section != w.section || string(m.data) != w.data {
			t.Errorf("event %d: section %q data %q, want %q %q", i, m.Section, m.data, w.section, w.data)
		}
		if got, want := m.Sums[crypto.SHA256], hashtest.Sum(crypto.SHA256, []byte(w.data)); string(got) != string(want) {
			t.Errorf("event %d: digest %x, want %x", i, got, want)
		}
		var c eventlog.KexecContent
		if err := json.Unmarshal(m.Record.Content, &c); err != nil || c.Section != w.section {
			t.Errorf("event %d: record content %s, want section %q", i, m.Record.Content, w.section)
		}
	}

	// A real (fake-seam) load gets exactly those bytes.
	l.DryRun = false
	res2, err := l.Run(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Image.Close()
	c := sys.Loads[0]
	if string(c.Kernel) != "KERNEL-BYTES" {
		t.Errorf("kernel memfd %q", c.Kernel)
	}
	if want := "UCODE\x00\x00\x00INITRD-DATA\x00extra"; string(c.Initrd) != want {
		t.Errorf("initrd memfd %q, want %q", c.Initrd, want)
	}
}

func TestBadRanges(t *testing.T) {
	dir := t.TempDir()
	f := writeFile(t, dir, "uki.efi", "0123456789")
	for _, c := range []struct {
		name string
		req  Request
		want error
	}{
		{"past the end", Request{Load: true, Kernel: f, KernelRange: &Range{Offset: 5, Size: 6, Section: ".linux"}}, ErrBadRange},
		{"negative", Request{Load: true, Kernel: f, KernelRange: &Range{Offset: -1, Size: 2, Section: ".linux"}}, ErrBadRange},
		{"empty kernel", Request{Load: true, Kernel: f, KernelRange: &Range{Offset: 3, Size: 0, Section: ".linux"}}, ErrEmptyKernel},
		{"initrd", Request{Load: true, Kernel: f, Initrds: []string{f}, InitrdRanges: []*Range{{Offset: 9, Size: 2, Section: ".initrd"}}}, ErrBadRange},
	} {
		sys := loadertest.NewSys(t)
		res, err := (&Loader{Sys: sys}).Run(c.req)
		if res.Image != nil {
			res.Image.Close()
		}
		var ie *InputError
		if !errors.Is(err, c.want) || !errors.As(err, &ie) || len(sys.Loads) != 0 {
			t.Errorf("%s: %v (loads %d), want an InputError wrapping %v and no load", c.name, err, len(sys.Loads), c.want)
		}
		if c.want == ErrBadRange && !strings.Contains(err.Error(), ".") {
			t.Errorf("%s: %v does not name the section", c.name, err)
		}
	}
}
