//go:build integration

package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"
)

// kexecRun is a scenario that loads a second kernel in stage 1, executes it,
// and checks what the second kernel sees.
type kexecRun struct {
	Components []component // put under /components in stage 1
	Load       string      // the shell command that loads (and measures)
	Exec       string      // the shell command that executes the loaded kernel
	Items      []measured  // what Load must measure, in log order
	Cmdline    string      // stage-1 command line; default stage1Cmdline
	Trigger    string      // instead of Exec, e.g. a crash for a panic kernel
	Extra      string      // shell run after the load, before Exec
	Prepare    string      // shell run before anything else
	Panic      bool        // Load loads a panic (crash) kernel
	// PreLog, when set, is copied to the log before anything runs, as the
	// records systemd wrote earlier in the boot; it must stay the log's
	// prefix byte for byte, and the checks apply to what follows it.
	PreLog []byte
	// Files are more files of the stage-1 initramfs (path without leading
	// slash → data), e.g. tools a scenario runs.
	Files map[string][]byte
	// Timeout bounds both boots together (default vmTimeout).
	Timeout time.Duration
}

// result is what a kexecRun observed, for scenario-specific checks.
type result struct {
	Console *console
	Records []logRecord
	Before  map[string][]byte // PCR 9 per bank before the load
	Want    map[string][]byte // independently computed PCR 9 after the load
}

// stage1Script returns the stage-1 script of r.
func (r kexecRun) stage1Script() string {
	var b strings.Builder
	if r.PreLog != nil {
		b.WriteString("cp /prelog $LOG\n")
	}
	b.WriteString(r.Prepare + "\n")
	b.WriteString("pcrs before\n")
	fmt.Fprintf(&b, "run load %s\n", r.Load)
	b.WriteString("loaded after-load\npcrs after-load\ndump log $LOG\n")
	b.WriteString(r.Extra + "\n")
	if r.Trigger != "" {
		b.WriteString(r.Trigger + "\n")
	} else {
		fmt.Fprintf(&b, "run exec %s\n", r.Exec)
	}
	b.WriteString("km exec-returned\n")
	return b.String()
}

// do boots stage 1 with r, and checks: the load succeeded; the log holds
// one record per item with the host's digests in every bank; PCR 9 after
// the load equals both the replayed log and an independent computation
// from the host's files, in every bank, in stage 1 and in stage 2; stage 2
// runs with the loaded command line and sees every component's files.
func (r kexecRun) do(t *testing.T, e *env) result {
	t.Helper()
	tpm := startSwtpm(t)
	dir := t.TempDir()
	cmdline := r.Cmdline
	if cmdline == "" {
		cmdline = stage1Cmdline
	}
	s1 := stage1{Components: r.Components, Script: r.stage1Script(), Files: map[string][]byte{}}
	for name, data := range r.Files {
		s1.Files[name] = data
	}
	if r.PreLog != nil {
		s1.Files["prelog"] = r.PreLog
	}
	initrd := s1.build(t, e, dir)
	c := run(t, e, vmConfig{Initrd: initrd, Cmdline: cmdline, TPM: tpm, Timeout: r.Timeout})

	if rc := c.RC(t, "load"); rc != 0 {
		t.Fatalf("load: exit status %d, want 0", rc)
	}
	wantLoaded := [2]string{"1", "0"}
	if r.Panic {
		wantLoaded = [2]string{"0", "1"}
	}
	if k, cr := c.Loaded(t, "after-load"); [2]string{k, cr} != wantLoaded {
		t.Errorf("after the load: kexec_loaded %s, kexec_crash_loaded %s; want %s, %s", k, cr, wantLoaded[0], wantLoaded[1])
	}
	res := result{Console: c, Before: c.PCRs(t, "before", 9)}
	if got := sortedKeys(res.Before); strings.Join(got, ",") != strings.Join(allBanks, ",") {
		t.Fatalf("guest sees PCR banks %v, want %v", got, allBanks)
	}
	logData, ok := c.File(t, "log")
	if !ok {
		t.Fatalf("no log at /run/log/systemd/tpm2-measure.log after the load")
	}
	if !bytes.HasPrefix(logData, r.PreLog) {
		t.Fatalf("the log's first %d bytes are not the records that were there before the load", len(r.PreLog))
	}
	res.Records = parseLog(t, logData[len(r.PreLog):])
	checkLog(t, res.Records, r.Items, allBanks)
	checkReplayWithEventlog(t, logData, res.Before, c.PCRs(t, "after-load", 9))

	res.Want = expectPCRs(t, res.Before, r.Items)
	comparePCRs(t, "stage 1 after the load vs. host files", c.PCRs(t, "after-load", 9), res.Want)
	comparePCRs(t, "stage 1 after the load vs. log replay", c.PCRs(t, "after-load", 9), replayRecords(t, res.Before, res.Records, 9))

	if c.Has("exec-returned") {
		t.Fatalf("stage 1 went on after the exec (status %v): the second kernel did not start", c.find("rc", "exec"))
	}
	if !c.Has("stage2") {
		t.Fatalf("the second kernel's init did not run")
	}
	stage2 := c.PCRs(t, "stage2", 9)
	comparePCRs(t, "stage 2 vs. host files", stage2, res.Want)
	comparePCRs(t, "stage 2 vs. log replay", stage2, replayRecords(t, res.Before, res.Records, 9))
	checkStage2(t, c, r.Components, r.Items, r.Panic)
	return res
}

// checkStage2 checks the second kernel's command line (the measured one) and
// that every file of every component was unpacked, with its content.
//
// A panic kernel's command line starts with the elfcorehdr= option that
// kexec_file_load adds in front of the loaded one (arch/x86 setup_cmdline);
// with crash set, that option is skipped.
func checkStage2(t *testing.T, c *console, comps []component, items []measured, crash bool) {
	t.Helper()
	var wantCmdline string
	for _, it := range items {
		if it.Event == "kexec-cmdline" {
			wantCmdline = string(it.Data)
		}
	}
	m := c.find("cmdline")
	if crash && len(m) > 1 && strings.HasPrefix(m[1], "elfcorehdr=") {
		m = m[1:]
	}
	if got := strings.Join(m[1:], " "); got != strings.Join(strings.Fields(wantCmdline), " ") {
		t.Errorf("stage 2 /proc/cmdline = %q, want %q", got, wantCmdline)
	}
	want := map[string]string{}
	for _, comp := range comps {
		for name, data := range comp.Files {
			sum := sha256.Sum256(data)
			want["/"+name] = hex.EncodeToString(sum[:])
		}
	}
	got := c.Sums()
	for _, p := range sortedKeys(want) {
		if got[p] != want[p] {
			t.Errorf("stage 2 %s: sha256 %q, want %q (component not unpacked?)", p, got[p], want[p])
		}
	}
	for _, p := range sortedKeys(got) {
		if _, ok := want[p]; !ok {
			t.Errorf("stage 2 has %s, which no component holds", p)
		}
	}
}

// componentItems returns the measured items of a kernel, components, the
// handoff and a command line, in the order docs/measurement.md gives.
func componentItems(t *testing.T, e *env, comps []component, cmdline string) []measured {
	t.Helper()
	items := []measured{{Event: "kexec-kernel", What: "vmlinuz", Data: readFile(t, e.Kernel)}}
	for _, c := range comps {
		items = append(items, measured{Event: "kexec-initrd", What: c.Name, Data: c.Data})
	}
	return append(items, handoffItem, measured{Event: "kexec-cmdline", What: "cmdline", Data: []byte(cmdline)})
}

// handoffItem is the kexec-handoff event: its digest is over this constant
// text (docs/handoff.md), whatever the handoff holds.
var handoffItem = measured{Event: "kexec-handoff", What: "handoff", Data: []byte("kexec-measured handoff v1")}

// withoutHandoff drops the kexec-handoff item, for loads with --no-handoff.
func withoutHandoff(items []measured) []measured {
	var out []measured
	for _, it := range items {
		if it.Event != handoffItem.Event {
			out = append(out, it)
		}
	}
	return out
}

// transcript writes what a newcomer wants to see into the test log: the
// components and their digests, the log's events, the PCR values and the
// verdict.
func transcript(t *testing.T, res result, items []measured, load string) {
	t.Helper()
	t.Log("== stage 1 (first kernel, under QEMU with swtpm) ran ==")
	t.Logf("  %s", load)
	t.Log("  kexec-measured -e")
	t.Log("== measured inputs (host copies) ==")
	for _, it := range items {
		t.Logf("  %-14s %-16s %8d bytes  sha256 %x", it.Event, it.What, len(it.Data), digest(t, "sha256", it.Data))
	}
	t.Log("== events in the guest's /run/log/systemd/tpm2-measure.log ==")
	for i, r := range res.Records {
		t.Logf("  #%d pcr %d %-14s %-34s offset %-8d size %-8d sha256 %x", i, r.PCR, r.Content.Event,
			r.Content.Path, r.Content.Offset, r.Content.Size, r.digests(t)["sha256"])
	}
	stage2 := res.Console.PCRs(t, "stage2", 9)
	replay := replayRecords(t, res.Before, res.Records, 9)
	t.Log("== PCR 9 ==")
	verdict := "MATCH"
	for _, bank := range allBanks {
		t.Logf("  %-6s stage 1 before load %x", bank, res.Before[bank])
		t.Logf("  %-6s stage 2 (TPM)       %x", bank, stage2[bank])
		t.Logf("  %-6s log replay          %x", bank, replay[bank])
		t.Logf("  %-6s from host files     %x", bank, res.Want[bank])
		if !bytes.Equal(stage2[bank], replay[bank]) || !bytes.Equal(stage2[bank], res.Want[bank]) {
			verdict = "MISMATCH"
		}
	}
	t.Log("== stage 2 sees ==")
	sums := res.Console.Sums()
	for _, p := range sortedKeys(sums) {
		t.Logf("  %-24s sha256 %s", p, sums[p])
	}
	t.Logf("VERDICT: %s: the second kernel's PCR 9 in all %d banks equals the replayed log and the host's computation", verdict, len(allBanks))
	if verdict != "MATCH" {
		t.Errorf("verdict %s", verdict)
	}
}
