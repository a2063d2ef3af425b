//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// chainInit is the init of every boot after the first in TestHandoffChain:
// the boot number comes from chain=N on the command line. It imports the
// handoff, shows the history with `kexec-measured log`, and in boot 1 also
// checks a tampered copy of the handoff and then kexecs into boot 2.
const chainInit = guestPrelude + `boot=$(sed -n 's/.*chain=\([0-9]*\).*/\1/p' /proc/cmdline)
km chain-boot $boot
pcrs boot$boot
run import$boot kexec-measured log import
kexec-measured log >/tmp/log.txt 2>&1; km rc log$boot $?
dump logtext$boot /tmp/log.txt
dump log$boot $LOG
if [ "$boot" = 1 ]; then
	# A tampered handoff: one sha256 digest of boot 0's first record changed.
	mkdir -p /tmp/th
	awk '{ if (!done) { i = index($0, "\"sha256\",\"digest\":\""); if (i > 0) { p = i + 19; c = substr($0, p, 1); r = "0"; if (c == "0") r = "1"; $0 = substr($0, 1, p - 1) r substr($0, p + 1); done = 1 } } print }' \
		/kexec-measured/handoff/tpm2-measure.log >/tmp/th/tpm2-measure.log
	kexec-measured log --log /tmp/none.log --handoff /tmp/th >/tmp/tamper.txt 2>&1; km rc tamper $?
	dump tampertext /tmp/tamper.txt
	run load1 kexec-measured -l /stage2/vmlinuz --initrd /chain/boot2.cpio --append "` + stage1Cmdline + ` chain=2"
	run exec1 kexec-measured -e
	km exec-returned
fi
`

// TestHandoffChain is the chain of three boots of docs/handoff.md, on a
// real kernel, swtpm and real kexecs:
//
//   - boot 0 loads boot 1 with three components, then a panic kernel with
//     --no-handoff (records written after the load, without a
//     kexec-handoff event), runs `log refresh`, and executes with -e;
//   - boot 1 imports the handoff: its log starts with boot 0's whole log
//     (the panic load's records too, thanks to the refresh), and `log`
//     shows them and says MATCH for PCR 9 in all four banks; a copy of the
//     handoff with one changed digest makes `log` exit 1 naming PCR 9 and
//     sha256; boot 1 loads and executes boot 2;
//   - boot 2 imports and `log` shows both boots' records and MATCH again;
//     PCR 9 equals an independent replay of the log by the test.
func TestHandoffChain(t *testing.T) {
	e := getEnv(t, true)
	bb, kernel, binary := readFile(t, e.Busybox), readFile(t, e.Kernel), readFile(t, e.Binary)
	boot2 := compress(t, "zstd", cpioArchive(t, map[string][]byte{"init": []byte(chainInit + "\nfinish\n"), "bin/busybox": bb, "bin/kexec-measured": binary}))
	comps := []component{
		newComponent(t, "fw.cpio", "", map[string][]byte{"fw/marker": []byte(fmt.Sprintf("fw %x\n", randomBytes(t, 16)))}),
		newComponent(t, "tools.cpio.zst", "zstd", map[string][]byte{
			"bin/busybox": bb, "bin/kexec-measured": binary, "stage2/vmlinuz": kernel, "chain/boot2.cpio": boot2,
		}),
		newComponent(t, "init.cpio.gz", "gzip", map[string][]byte{"init": []byte(chainInit + "\nfinish\n")}),
	}
	load := `kexec-measured -l /stage2/vmlinuz ` + initrdArgs(comps) + ` --append "` + stage1Cmdline + ` chain=1"`
	// Boot 0 tests `log refresh`, so it removes the load state before -e
	// (whose own refresh would hide a broken `log refresh`); boot 1 tests
	// the refresh of -e.
	script := `pcrs before
km t $(cut -d' ' -f1 /proc/uptime)
run load0 ` + load + `
km t $(cut -d' ' -f1 /proc/uptime)
run pload kexec-measured -p --no-handoff /stage2/vmlinuz --append "` + stage1Cmdline + ` crash"
km t $(cut -d' ' -f1 /proc/uptime)
run refresh kexec-measured log refresh
km t $(cut -d' ' -f1 /proc/uptime)
rm /run/kexec-measured/load.json
dump log0 $LOG
run exec0 kexec-measured -e
km exec-returned
`
	tpm := startSwtpm(t)
	c := run(t, e, vmConfig{
		Initrd:  stage1{Components: comps, Script: script}.build(t, e, t.TempDir()),
		Cmdline: stage1Cmdline + " crashkernel=256M",
		TPM:     tpm,
		Timeout: 20 * time.Minute, // three boots, four measured loads and two refreshes under TCG
	})
	t.Logf("accelerator: %s", e.Accel)
	for _, want := range []struct {
		cmd string
		rc  int
	}{
		{"load0", 0}, {"pload", 0}, {"refresh", 0},
		{"import1", 0}, {"log1", 0}, {"tamper", 1}, {"load1", 0}, {"import2", 0}, {"log2", 0},
	} {
		if got := c.RC(t, want.cmd); got != want.rc {
			t.Errorf("%s: exit status %d, want %d", want.cmd, got, want.rc)
		}
	}
	if c.Has("exec-returned") {
		t.Fatal("an exec returned: a kexec did not happen")
	}

	log0, _ := c.File(t, "log0")
	var events []string
	for _, r := range parseLog(t, log0) {
		events = append(events, r.Content.Event)
	}
	wantEvents := "kexec-kernel kexec-initrd kexec-initrd kexec-initrd kexec-handoff kexec-cmdline " + // boot 1, three components
		"kexec-kernel kexec-cmdline" // the panic kernel, after the load, --no-handoff: no kexec-handoff
	if got := strings.Join(events, " "); got != wantEvents {
		t.Errorf("boot 0's log: events\n %s\nwant\n %s", got, wantEvents)
	}

	log1, _ := c.File(t, "log1")
	if !bytes.Equal(log1, log0) {
		t.Errorf("boot 1's imported log (%d bytes) is not boot 0's log at the exec (%d bytes): the refresh did not carry the records written after the load", len(log1), len(log0))
	}
	log2, _ := c.File(t, "log2")
	if !bytes.HasPrefix(log2, log0) || len(log2) <= len(log0) {
		t.Errorf("boot 2's log does not start with boot 0's and hold boot 1's records after it")
	}
	text1, _ := c.File(t, "logtext1")
	text2, _ := c.File(t, "logtext2")
	tamper, _ := c.File(t, "tampertext")
	for _, bank := range allBanks {
		want := fmt.Sprintf("PCR 9  %-6s MATCH", bank)
		for name, text := range map[string][]byte{"boot 1": text1, "boot 2": text2} {
			if !bytes.Contains(text, []byte(want)) {
				t.Errorf("%s's `log` lacks %q:\n%s", name, want, text)
			}
		}
	}
	for _, want := range []string{"/stage2/vmlinuz", "/components/tools.cpio.zst", "kexec-handoff", "Boot 1 of 1"} {
		if !bytes.Contains(text1, []byte(want)) {
			t.Errorf("boot 1's `log` lacks %q:\n%s", want, text1)
		}
	}
	for _, want := range []string{"/chain/boot2.cpio", "Boot 1 of 2", "Boot 2 of 2"} {
		if !bytes.Contains(text2, []byte(want)) {
			t.Errorf("boot 2's `log` lacks %q:\n%s", want, text2)
		}
	}
	if !bytes.Contains(tamper, []byte("PCR 9  sha256 MISMATCH")) || bytes.Contains(tamper, []byte("sha1   MISMATCH")) {
		t.Errorf("the tampered handoff: `log` does not name PCR 9 sha256 alone:\n%s", tamper)
	}

	zero := map[string][]byte{}
	for _, bank := range allBanks {
		zero[bank] = make([]byte, bankHash(t, bank).Size())
	}
	comparePCRs(t, "boot 0 before the loads vs. reset", c.PCRs(t, "before", 9), zero)
	comparePCRs(t, "boot 1 PCR 9 vs. replay of boot 1's log by the test", c.PCRs(t, "boot1", 9), replayRecords(t, zero, parseLog(t, log1), 9))
	comparePCRs(t, "boot 2 PCR 9 vs. replay of boot 2's log by the test", c.PCRs(t, "boot2", 9), replayRecords(t, zero, parseLog(t, log2), 9))
	if testing.Verbose() {
		t.Logf("== boot 2: kexec-measured log ==\n%s", text2)
	}
}
