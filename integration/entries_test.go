//go:build integration

package integration

import (
	"os"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/bootentry/ukitest"
)

// TestEntryDefault loads the default boot loader entry, as systemd-boot
// would choose it: the guest's root is the ESP (--esp-path=/), whose
// loader.conf names stage2.conf as default over an entry that sorts first;
// stage2.conf lists the stage-2 kernel, three initrd lines and two options
// lines. Stage 2 must see all three components and the joined options, and
// PCR 9 must be explained by the log.
func TestEntryDefault(t *testing.T) {
	e := getEnv(t, true)
	comps := mainComponents(t, e)
	half := strings.Index(stage2Cmdline, " quiet")
	entry := "title stage 2\nlinux /stage2/vmlinuz\n"
	for _, c := range comps {
		entry += "initrd /components/" + c.Name + "\n"
	}
	entry += "options " + stage2Cmdline[:half] + "\noptions " + stage2Cmdline[half+1:] + "\n"
	r := kexecRun{
		Components: comps,
		Files: map[string][]byte{
			"loader/loader.conf":         []byte("default stage2*\n"),
			"loader/entries/stage2.conf": []byte(entry),
			"loader/entries/zzz.conf":    []byte("title sorts first, not the default\nlinux /nonexistent\n"),
		},
		Load:  "kexec-measured -l --entry=default --esp-path=/",
		Exec:  "kexec-measured -e",
		Items: componentItems(t, e, comps, stage2Cmdline),
	}
	res := r.do(t, e)
	checkOffsets(t, res.Records)
	transcript(t, res, r.Items, r.Load)
}

// TestUKI loads a unified kernel image built from the test kernel (.linux),
// an uncompressed early cpio (.ucode) and a zstd initramfs (.initrd) with
// its command line (.cmdline): one event per section, in the order
// systemd-stub passes them, each naming its section, and stage 2 boots with
// both initrd parts unpacked and the UKI's command line.
func TestUKI(t *testing.T) {
	e := getEnv(t, true)
	main := mainComponents(t, e)
	all := map[string][]byte{}
	for _, c := range main[1:] {
		for n, d := range c.Files {
			all[n] = d
		}
	}
	comps := []component{main[0], newComponent(t, "initrd.img", "zstd", all)}
	kernel, err := os.ReadFile(e.Kernel)
	if err != nil {
		t.Fatal(err)
	}
	uki, err := os.ReadFile(ukitest.Build(t, []ukitest.Section{
		{Name: ".osrel", Data: []byte("ID=test\nPRETTY_NAME=\"kexec-measured test\"\n")},
		{Name: ".cmdline", Data: []byte(stage2Cmdline + "\n")},
		{Name: ".linux", Data: kernel},
		{Name: ".initrd", Data: comps[1].Data},
		{Name: ".ucode", Data: comps[0].Data},
	}))
	if err != nil {
		t.Fatal(err)
	}
	r := kexecRun{
		Components: comps,
		Files:      map[string][]byte{"uki.efi": uki},
		Load:       "kexec-measured -l /uki.efi",
		Exec:       "kexec-measured -e",
		Items:      componentItems(t, e, comps, stage2Cmdline),
	}
	res := r.do(t, e)
	want := []string{".linux", ".ucode", ".initrd", "", ".cmdline"} // "": the kexec-handoff event
	if len(res.Records) != len(want) {
		t.Fatalf("%d records, want one per section %v and the handoff's", len(res.Records), want)
	}
	for i, rec := range res.Records {
		if rec.Content.Section != want[i] || (i < 3 && rec.Content.Path != "/uki.efi") || (i == 3 && rec.Content.Event != "kexec-handoff") {
			t.Errorf("record %d: %s section %q path %q, want section %s of /uki.efi", i, rec.Content.Event, rec.Content.Section, rec.Content.Path, want[i])
		}
	}
	transcript(t, res, r.Items, r.Load)
}
