//go:build integration

package integration

import (
	"fmt"
	"testing"
	"time"
)

// loadCmd returns the kexec-measured command line that loads the stage-2
// kernel with comps, with the given mode option (-l or -p) and extra options.
func loadCmd(mode string, comps []component, extra string) string {
	return fmt.Sprintf(`kexec-measured %s /stage2/vmlinuz %s %s --append "%s"`, mode, initrdArgs(comps), extra, stage2Cmdline)
}

// TestUnload loads, checks that -l -S reports the kernel loaded (exit
// status 1), unloads with -u, and checks that -l -S and -S (which, as in
// kexec-tools, asks about the panic kernel) then report nothing loaded (exit
// status 0). Then the same for a panic kernel: -p, -S → 1, -p -u, -S → 0.
// The log and PCR 9 keep both loads' measurements; unloading measures
// nothing.
func TestUnload(t *testing.T) {
	e := getEnv(t, true)
	comps := mainComponents(t, e)
	items := componentItems(t, e, comps, stage2Cmdline)
	tpm := startSwtpm(t)
	script := `pcrs before
run load ` + loadCmd("-l", comps, "") + `
loaded after-load
run status-loaded kexec-measured -l -S
run unload kexec-measured -u
loaded after-unload
run status-unloaded kexec-measured -S
run status-l-unloaded kexec-measured -l -S
run pload ` + loadCmd("-p", comps, "") + `
loaded after-pload
run pstatus-loaded kexec-measured -S
run punload kexec-measured -p -u
loaded after-punload
run pstatus-unloaded kexec-measured -S
pcrs after
dump log $LOG
`
	c := run(t, e, vmConfig{
		Initrd:  stage1{Components: comps, Script: script}.build(t, e, t.TempDir()),
		Cmdline: stage1Cmdline + " crashkernel=256M",
		TPM:     tpm,
	})
	for _, want := range []struct {
		cmd string
		rc  int
	}{
		{"load", 0}, {"status-loaded", 1}, {"unload", 0}, {"status-unloaded", 0}, {"status-l-unloaded", 0},
		{"pload", 0}, {"pstatus-loaded", 1}, {"punload", 0}, {"pstatus-unloaded", 0},
	} {
		if got := c.RC(t, want.cmd); got != want.rc {
			t.Errorf("%s: exit status %d, want %d", want.cmd, got, want.rc)
		}
	}
	for _, want := range []struct{ tag, kexec, crash string }{
		{"after-load", "1", "0"}, {"after-unload", "0", "0"}, {"after-pload", "0", "1"}, {"after-punload", "0", "0"},
	} {
		if k, cr := c.Loaded(t, want.tag); k != want.kexec || cr != want.crash {
			t.Errorf("%s: kexec_loaded %s, kexec_crash_loaded %s, want %s %s", want.tag, k, cr, want.kexec, want.crash)
		}
	}
	logData, ok := c.File(t, "log")
	if !ok {
		t.Fatal("no log after the loads")
	}
	both := append(append([]measured(nil), items...), items...)
	checkLog(t, parseLog(t, logData), both, allBanks)
	before := c.PCRs(t, "before", 9)
	comparePCRs(t, "PCR 9 after two loads and unloads vs. host files", c.PCRs(t, "after", 9), expectPCRs(t, before, both))
	checkReplayWithEventlog(t, logData, before, c.PCRs(t, "after", 9))
}

// TestPanicKernel reserves crashkernel= memory in stage 1, loads the
// stage-2 kernel as the panic kernel with -p, checks that -p -S and -S
// report it loaded (exit status 1) and that its events are in the log, then crashes
// stage 1 on purpose: the panic kernel boots, and its PCR 9 equals the
// replayed log and the host's computation.
func TestPanicKernel(t *testing.T) {
	e := getEnv(t, true)
	comps := mainComponents(t, e)
	cmdline := stage2Cmdline
	items := componentItems(t, e, comps, cmdline)
	r := kexecRun{
		Components: comps,
		Cmdline:    stage1Cmdline + " crashkernel=256M",
		Load:       loadCmd("-p", comps, ""),
		Items:      items,
		Panic:      true,
		Extra:      "run status-p kexec-measured -p -S\nrun status kexec-measured -S",
		Trigger:    "echo 1 > /proc/sys/kernel/sysrq; echo c > /proc/sysrq-trigger",
	}
	res := r.do(t, e)
	if got := res.Console.RC(t, "status-p"); got != 1 {
		t.Errorf("-p -S with a panic kernel loaded: exit status %d, want 1", got)
	}
	if got := res.Console.RC(t, "status"); got != 1 {
		t.Errorf("-S (which asks about the panic kernel) with a panic kernel loaded: exit status %d, want 1", got)
	}
}

// TestSplitInitrd loads one initrd image made of an uncompressed early cpio
// followed by a zstd cpio with --split-initrd: the log holds one event per
// segment, with the digest of that segment's bytes, and replaying it gives
// the TPM's values.
func TestSplitInitrd(t *testing.T) {
	e := getEnv(t, true)
	main := mainComponents(t, e)
	early := newComponent(t, "early.cpio", "", main[0].Files)
	rest := map[string][]byte{"split/marker": []byte(fmt.Sprintf("split %x\n", randomBytes(t, 16)))}
	for _, c := range main[1:] {
		for n, d := range c.Files {
			rest[n] = d
		}
	}
	late := newComponent(t, "late.cpio.zst", "zstd", rest)
	img := component{Name: "initrd.img", Data: append(append([]byte(nil), early.Data...), late.Data...), Files: map[string][]byte{}}
	for _, c := range []component{early, late} {
		for n, d := range c.Files {
			img.Files[n] = d
		}
	}
	items := []measured{
		{Event: "kexec-kernel", What: "vmlinuz", Data: readFile(t, e.Kernel)},
		{Event: "kexec-initrd", What: "initrd.img segment 0 (early cpio)", Data: early.Data},
		{Event: "kexec-initrd", What: "initrd.img segment 1 (zstd cpio)", Data: late.Data},
		handoffItem,
		{Event: "kexec-cmdline", What: "cmdline", Data: []byte(stage2Cmdline)},
	}
	r := kexecRun{
		Components: []component{img},
		Load:       loadCmd("-l", []component{img}, "--split-initrd"),
		Exec:       "kexec-measured -e",
		Items:      items,
	}
	res := r.do(t, e)
	for i, rec := range res.Records[1:3] {
		if rec.Content.Segment == nil || *rec.Content.Segment != i {
			t.Errorf("initrd record %d: segment %v, want %d", i, rec.Content.Segment, i)
		}
	}
	checkOffsets(t, res.Records)
}

// TestTPMGoesAway kills swtpm (see swtpm.Stop) while stage 1
// runs, before the load: kexec-measured must fail with exit status 255,
// load nothing and write no record, and the guest must go on running.
func TestTPMGoesAway(t *testing.T) {
	e := getEnv(t, true)
	comps := mainComponents(t, e)
	tpm := startSwtpm(t)
	script := `pcrs before
km stop-tpm
i=0
while [ -n "$(cat /sys/class/tpm/tpm0/pcr-sha256/0 2>/dev/null)" ]; do
	i=$((i+1)); [ $i -gt 60 ] && break; sleep 1
done
if [ $i -gt 60 ]; then km tpm-gone no; else km tpm-gone yes; fi
run load ` + loadCmd("-l", comps, "") + `
loaded after-load
dump log $LOG
km survived
`
	v := startVM(t, e, vmConfig{Initrd: stage1{Components: comps, Script: script}.build(t, e, t.TempDir()), Cmdline: stage1Cmdline, TPM: tpm})
	v.Expect(t, "@@KM stop-tpm", vmTimeout)
	tpm.Stop(t)
	c := v.Wait(t)
	if !c.Has("tpm-gone", "yes") {
		t.Fatal("the guest still reads PCRs a minute after swtpm stopped")
	}
	if got := c.RC(t, "load"); got != 255 {
		t.Errorf("load without a TPM: exit status %d, want 255", got)
	}
	if k, cr := c.Loaded(t, "after-load"); k != "0" || cr != "0" {
		t.Errorf("after the failed load: kexec_loaded %s, kexec_crash_loaded %s, want 0 0", k, cr)
	}
	if data, ok := c.File(t, "log"); ok {
		if recs := parseLog(t, data); len(recs) != 0 {
			t.Errorf("log has %d records after a load whose TPM was gone, want 0", len(recs))
		}
	}
	if !c.Has("survived") || !c.Has("end") {
		t.Error("the guest did not go on after the failed load")
	}
}

// TestBadInputs runs kexec-measured in the guest with inputs it must refuse
// before touching the TPM: a missing component, a directory as a
// component, a directory and a missing file as the kernel. Each exits 1,
// nothing is loaded, PCR 9 does not change and no record is written.
func TestBadInputs(t *testing.T) {
	e := getEnv(t, true)
	comps := mainComponents(t, e)
	tpm := startSwtpm(t)
	cases := []struct{ name, cmd string }{
		{"missing-component", `kexec-measured -l /stage2/vmlinuz --initrd /components/fw.cpio --initrd /components/nope.cpio --append "` + stage2Cmdline + `"`},
		{"directory-component", `kexec-measured -l /stage2/vmlinuz --initrd /components --append "` + stage2Cmdline + `"`},
		{"directory-kernel", `kexec-measured -l /stage2 --initrd /components/fw.cpio --append "` + stage2Cmdline + `"`},
		{"missing-kernel", `kexec-measured -l /stage2/nope --initrd /components/fw.cpio --append "` + stage2Cmdline + `"`},
	}
	script := "pcrs before\n"
	for _, tc := range cases {
		script += fmt.Sprintf("run %s %s\nloaded %s\n", tc.name, tc.cmd, tc.name)
	}
	script += "pcrs after\ndump log $LOG\n"
	start := time.Now()
	c := run(t, e, vmConfig{Initrd: stage1{Components: comps, Script: script}.build(t, e, t.TempDir()), Cmdline: stage1Cmdline, TPM: tpm})
	t.Logf("guest ran %d bad loads in %v", len(cases), time.Since(start).Round(time.Second))
	for _, tc := range cases {
		if got := c.RC(t, tc.name); got != 1 {
			t.Errorf("%s: exit status %d, want 1", tc.name, got)
		}
		if k, cr := c.Loaded(t, tc.name); k != "0" || cr != "0" {
			t.Errorf("%s: kexec_loaded %s, kexec_crash_loaded %s, want 0 0", tc.name, k, cr)
		}
	}
	comparePCRs(t, "PCR 9 after the refused loads", c.PCRs(t, "after", 9), c.PCRs(t, "before", 9))
	if data, ok := c.File(t, "log"); ok {
		if recs := parseLog(t, data); len(recs) != 0 {
			t.Errorf("log has %d records after refused loads, want 0", len(recs))
		}
	}
}

// TestKernelRejected hands kexec-measured a "kernel" that kexec_file_load
// refuses (random bytes): the exit status is 255, nothing is loaded, the
// guest goes on, and whatever was measured before the refusal, the log
// still explains PCR 9 in every bank.
func TestKernelRejected(t *testing.T) {
	e := getEnv(t, true)
	tpm := startSwtpm(t)
	script := `pcrs before
run load kexec-measured -l /notakernel --append "` + stage2Cmdline + `"
loaded after-load
pcrs after
dump log $LOG
km survived
`
	s1 := stage1{Script: script, Files: map[string][]byte{"notakernel": randomBytes(t, 1<<20)}}
	c := run(t, e, vmConfig{Initrd: s1.build(t, e, t.TempDir()), Cmdline: stage1Cmdline, TPM: tpm})
	if got := c.RC(t, "load"); got != 255 {
		t.Errorf("load of a non-kernel: exit status %d, want 255", got)
	}
	if k, cr := c.Loaded(t, "after-load"); k != "0" || cr != "0" {
		t.Errorf("after the refused load: kexec_loaded %s, kexec_crash_loaded %s, want 0 0", k, cr)
	}
	if !c.Has("survived") {
		t.Error("the guest did not go on after the refused load")
	}
	before, after := c.PCRs(t, "before", 9), c.PCRs(t, "after", 9)
	var recs []logRecord
	if data, ok := c.File(t, "log"); ok {
		recs = parseLog(t, data)
		checkReplayWithEventlog(t, data, before, after)
	}
	comparePCRs(t, "PCR 9 after the refused load vs. log replay", after, replayRecords(t, before, recs, 9))
	t.Logf("records in the log after the refused load: %d", len(recs))
}
