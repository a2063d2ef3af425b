//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestGuestSeesTPM boots the kernel with busybox only (no kexec-measured)
// and checks the harness itself: the guest finds the swtpm TPM with all four
// PCR banks, and PCR 9 holds its reset value (zeros) in each.
func TestGuestSeesTPM(t *testing.T) {
	e := getEnv(t, false)
	tpm := startSwtpm(t)
	initrd := stage1{Script: "pcrs before\n"}.build(t, e, t.TempDir())
	c := run(t, e, vmConfig{Initrd: initrd, Cmdline: stage1Cmdline, TPM: tpm})
	if !c.Has("end") {
		t.Fatal("the guest's init did not finish")
	}
	got := c.PCRs(t, "before", 9)
	for _, bank := range allBanks {
		want := make([]byte, bankHash(t, bank).Size())
		if !bytes.Equal(got[bank], want) {
			t.Errorf("PCR 9 %s = %x, want %d zero bytes", bank, got[bank], len(want))
		}
	}
	if len(got) != len(allBanks) {
		t.Errorf("guest sees banks %v, want %v", sortedKeys(got), allBanks)
	}
	t.Logf("accelerator: %s", e.Accel)
}

// TestMainScenario is the product's main job: stage 1 measures and loads a
// second kernel with three initrd components (an uncompressed early cpio, a
// gzip cpio, a zstd cpio) and executes it; the second kernel's PCR 9 in
// every bank equals both the replayed log and an independent computation
// from the host's files, and its initramfs holds every component's files.
// Run with -v for a readable transcript (integration/demo does).
func TestMainScenario(t *testing.T) {
	e := getEnv(t, true)
	comps := mainComponents(t, e)
	items := componentItems(t, e, comps, stage2Cmdline)
	r := kexecRun{
		Components: comps,
		Load:       "kexec-measured -l /stage2/vmlinuz " + initrdArgs(comps) + ` --append "` + stage2Cmdline + `"`,
		Exec:       "kexec-measured -e",
		Items:      items,
	}
	res := r.do(t, e)
	for i, rec := range res.Records {
		if want := items[i].Event; rec.Content.Event == "kexec-initrd" && rec.Content.Size != int64(len(items[i].Data)) {
			t.Errorf("record %d (%s %s): size %d, want %d", i, want, items[i].What, rec.Content.Size, len(items[i].Data))
		}
	}
	checkOffsets(t, res.Records)
	transcript(t, res, items, r.Load)
}

// checkOffsets checks that the initrd records' offsets place each component
// at a 4-byte-aligned offset after the previous one, starting at 0
// (docs/cli.md, Initrd components).
func checkOffsets(t *testing.T, recs []logRecord) {
	t.Helper()
	var next int64
	for i, r := range recs {
		if r.Content.Event != "kexec-initrd" {
			continue
		}
		want := (next + 3) &^ 3
		if r.Content.Offset != want {
			t.Errorf("record %d (%s): offset %d, want %d", i, r.Content.Path, r.Content.Offset, want)
		}
		next = r.Content.Offset + r.Content.Size
	}
}

// TestSystemdArgv loads the way systemd's "systemctl kexec" does, with
// kexec-measured installed as /usr/sbin/kexec: `kexec --load KERNEL --append
// OPTIONS --initrd INITRD`, then `kexec -e`. The log already holds records
// systemd wrote earlier in the boot; ours are appended after them, which stay
// byte for byte, and the eventlog package replays the mixed log.
func TestSystemdArgv(t *testing.T) {
	e := getEnv(t, true)
	var all = map[string][]byte{}
	for _, c := range mainComponents(t, e) {
		for n, d := range c.Files {
			all[n] = d
		}
	}
	comps := []component{newComponent(t, "initrd.img", "zstd", all)}
	items := componentItems(t, e, comps, stage2Cmdline)
	r := kexecRun{
		Components: comps,
		Prepare:    "ln -s /bin/kexec-measured /usr/sbin/kexec",
		Load:       `/usr/sbin/kexec --load /stage2/vmlinuz --append "` + stage2Cmdline + `" --initrd /components/initrd.img`,
		Exec:       "/usr/sbin/kexec -e",
		Items:      items,
	}
	r.do(t, e)
}

// systemdRecords returns a log as systemd-pcrphase writes it on PCR 11: one
// record per phase string, content_type "systemd", with the digest of the
// string in every bank.
func systemdRecords(t *testing.T, phases ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, p := range phases {
		var ds []string
		for _, bank := range allBanks {
			ds = append(ds, fmt.Sprintf(`{"hashAlg":"%s","digest":"%x"}`, bank, digest(t, bank, []byte(p))))
		}
		fmt.Fprintf(&b, "\x1e{\"pcr\":11,\"digests\":[%s],\"content_type\":\"systemd\",\"content\":{\"eventType\":\"phase\",\"string\":\"%s\"}}\n",
			strings.Join(ds, ","), p)
	}
	return b.Bytes()
}

// TestNoMode loads with no mode option (`kexec-measured KERNEL --initrd ...
// --append ...`), which, as in kexec-tools, loads and then runs
// `shutdown -r now`; on a systemd machine the shutdown then reboots into the
// loaded kernel. Here /sbin/shutdown records its arguments and returns, as
// systemd's does, and the test executes the kernel with -e.
func TestNoMode(t *testing.T) {
	e := getEnv(t, true)
	comps := mainComponents(t, e)
	r := kexecRun{
		Components: comps,
		Prepare:    "rm -f /sbin/shutdown; printf '#!/bin/sh\\necho \"@@KM shutdown-called $*\"\\n' >/sbin/shutdown; chmod 0755 /sbin/shutdown",
		Load:       `kexec-measured /stage2/vmlinuz ` + initrdArgs(comps) + ` --append "` + stage2Cmdline + `"`,
		Exec:       "kexec-measured -e",
		Items:      componentItems(t, e, comps, stage2Cmdline),
	}
	res := r.do(t, e)
	if !res.Console.Has("shutdown-called", "-r", "now") {
		t.Error("kexec-measured with no mode did not run shutdown -r now")
	}
}
