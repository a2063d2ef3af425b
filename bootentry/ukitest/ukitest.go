// Package ukitest builds unified kernel images for tests, with objcopy on
// systemd-boot-efi's stub (Debian 12 packages binutils, systemd-boot-efi).
package ukitest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// StubPath is systemd-boot-efi's UKI stub in Debian 12.
const StubPath = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

// Section is one section to add to a UKI.
type Section struct {
	Name string
	Data []byte
}

// Build builds a UKI the way ukify's documented objcopy recipe does:
// objcopy --add-section NAME=FILE --change-section-vma NAME=VMA on
// systemd-boot-efi's stub, each section at its own VMA past the stub's
// image. A name that is already in the image (the sections of a second
// profile) is added under a placeholder and renamed in a second run, as
// objcopy refuses to add a duplicate name.
func Build(t testing.TB, secs []Section) string {
	t.Helper()
	if _, err := exec.LookPath("objcopy"); err != nil {
		t.Skip("objcopy not installed (Debian package binutils; scripts/test installs it)")
	}
	if _, err := os.Stat(StubPath); err != nil {
		t.Skipf("%s missing (Debian package systemd-boot-efi; scripts/test installs it)", StubPath)
	}
	dir := t.TempDir()
	in := StubPath
	vma := 0x1000000
	inImage := map[string]bool{} // added by an earlier objcopy run
	pending := map[string]bool{} // added by the run being prepared
	var add, rename []string
	flush := func(out string) {
		args := append(add, in, out)
		if o, err := exec.Command("objcopy", args...).CombinedOutput(); err != nil {
			t.Fatalf("objcopy %q: %v\n%s", args, err, o)
		}
		in, add = out, nil
		if len(rename) > 0 {
			out2 := out + ".renamed"
			args := append(rename, in, out2)
			if o, err := exec.Command("objcopy", args...).CombinedOutput(); err != nil {
				t.Fatalf("objcopy %q: %v\n%s", args, err, o)
			}
			in, rename = out2, nil
		}
		for n := range pending {
			inImage[n] = true
		}
		pending = map[string]bool{}
	}
	for i, s := range secs {
		f := filepath.Join(dir, fmt.Sprintf("sec%d", i))
		if err := os.WriteFile(f, s.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		if pending[s.Name] {
			flush(filepath.Join(dir, fmt.Sprintf("step%d.efi", i)))
		}
		pending[s.Name] = true
		name := s.Name
		if inImage[s.Name] {
			name = fmt.Sprintf(".tmp%d", i)
			rename = append(rename, "--rename-section", name+"="+s.Name)
		}
		add = append(add, "--add-section", name+"="+f, "--change-section-vma", fmt.Sprintf("%s=%#x", name, vma))
		vma += (len(s.Data) + 0xfff) &^ 0xfff
		vma += 0x1000
	}
	out := filepath.Join(dir, "uki.efi")
	flush(out)
	if in != out {
		if err := os.Rename(in, out); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
