//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// trixieGuestFiles returns the files that run Debian 13's progs (names
// under usr/lib/systemd or usr/bin of integration/.cache/trixie/root,
// which integration/setup unpacks) in the guest: the run wrapper at
// trixie/run and, under trixie/root, the programs, every library they link
// against (as trixie's loader resolves them with --list), the TPM
// libraries systemd and the TSS load with dlopen (tss2-esys, -rc, -mu, the
// TCTI loader and the device TCTI) with their libraries, and the loader.
// Nothing else: the guest has no libraries of its own, and every megabyte
// costs boot time. Libraries go under their soname paths with the content
// of the file the link points to. In the guest, `/trixie/run
// systemd-pcrlock ...` runs as integration/.cache/trixie/run does on the
// host (dlopen searches its --library-path too).
func trixieGuestFiles(t *testing.T, progs ...string) map[string][]byte {
	t.Helper()
	cache, err := filepath.Abs(filepath.Join(".cache", "trixie"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cache, "run")); err != nil {
		t.Fatalf("Debian 13's tools: %v (run integration/setup first)", err)
	}
	root := filepath.Join(cache, "root")
	libdir := "usr/lib/x86_64-linux-gnu"
	lib := filepath.Join(root, libdir)
	loader := filepath.Join(lib, "ld-linux-x86-64.so.2")
	files := map[string][]byte{
		"trixie/run": readFile(t, filepath.Join(cache, "run")),
		filepath.Join("trixie/root", libdir, "ld-linux-x86-64.so.2"): readFile(t, loader),
	}
	var objects []string
	for _, prog := range progs {
		found := false
		for _, dir := range []string{"usr/lib/systemd", "usr/bin"} {
			if _, err := os.Stat(filepath.Join(root, dir, prog)); err == nil {
				objects = append(objects, filepath.Join(dir, prog))
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("Debian 13's %s is not in %s", prog, root)
		}
	}
	for _, l := range []string{"libtss2-esys.so.0", "libtss2-rc.so.0", "libtss2-mu.so.0",
		"libtss2-tctildr.so.0", "libtss2-tcti-device.so.0"} {
		objects = append(objects, filepath.Join(libdir, l))
	}
	for _, obj := range objects {
		files[filepath.Join("trixie/root", obj)] = readFile(t, filepath.Join(root, obj))
		cmd := exec.Command(loader, "--library-path", lib+":"+lib+"/systemd", "--list", filepath.Join(root, obj))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s --list %s: %v", loader, obj, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			// "\tlibc.so.6 => /root/usr/lib/x86_64-linux-gnu/libc.so.6 (0x...)"
			f := strings.Fields(sc.Text())
			if len(f) < 3 || f[1] != "=>" {
				continue
			}
			rel, err := filepath.Rel(root, f[2])
			if err != nil || strings.HasPrefix(rel, "..") {
				t.Fatalf("Debian 13's %s needs %s from outside trixie's root (%s): add its package to integration/setup", obj, f[0], f[2])
			}
			if name := filepath.Join("trixie/root", rel); files[name] == nil {
				files[name] = readFile(t, f[2])
			}
		}
	}
	return files
}

// trixieEnv mounts the disk with Debian 13's tools (trixieGuestFiles and
// kexec-measured, as an NVMe disk: the driver is built into the kernel,
// unlike virtio's) at /disk, links /trixie to its trixie/ (so
// /trixie/run PROG runs a tool), and points the tools at the guest's TPM,
// its userspace log and its firmware log ($FW).
const trixieEnv = `mkdir -p /disk
mount -t ext2 -o ro /dev/nvme0n1 /disk || km no-trixie-disk
ln -sfn /disk/trixie /trixie
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
# sysfs files have size 0: copy the firmware log to see whether it is there.
FW=/tmp/binary_bios_measurements
cat /sys/kernel/security/tpm0/binary_bios_measurements >$FW 2>/dev/null
[ -s $FW ] || cp /run/log/kexec-measured/binary_bios_measurements $FW
export SYSTEMD_FORCE_MEASURE=1 SYSTEMD_TPM2_DEVICE=/dev/tpmrm0 SYSTEMD_MEASURE_LOG_USERSPACE=$LOG SYSTEMD_MEASURE_LOG_FIRMWARE=$FW SYSTEMD_COLORS=0
`

// pcrlockScript runs systemd-pcrlock log and reports its JSON verdict as
// file NAME.
func pcrlockScript(name string) string {
	return `km fwlog ` + name + ` $FW $(wc -c <$FW)
/trixie/run systemd-pcrlock log --json=short >/tmp/` + name + `.json; km rc ` + name + ` $?
dump ` + name + ` /tmp/` + name + `.json
`
}

// pcrlockVerdict is the part of `systemd-pcrlock log --json=short` the test
// reads: per PCR, whether the TPM's value is the log's replay.
type pcrlockVerdict struct {
	PCRs []struct {
		PCR       int  `json:"pcr"`
		HashMatch bool `json:"hashMatchesEventLog"`
		Count     *int `json:"count"`
	} `json:"pcrs"`
}

// TestSystemdTools runs Debian 13's systemd tools, which we did not write,
// against our log. In stage 1, systemd-pcrextend measures the phases of a
// boot into PCR 11 before the load (enter-initrd, leave-initrd, sysinit,
// ready) and after it (shutdown, final), the handoff is refreshed as
// dist/systemd/kexec-measured-refresh.service does (`kexec-measured log
// refresh`), and the kernel is executed. In stage 2, after
// `kexec-measured log import`, systemd-pcrlock log, reading the TPM, the
// firmware log and the userspace log, reports that PCR 9 and PCR 11 are
// the replay of their records.
func TestSystemdTools(t *testing.T) {
	e := getEnv(t, true)
	dir := t.TempDir()
	// The disk also holds kexec-measured for stage 2, which keeps the
	// measured stage-2 component small (an init and busybox).
	tools := trixieGuestFiles(t, "systemd-pcrextend", "systemd-pcrlock")
	tools["usr/sbin/kexec-measured"] = readFile(t, e.Binary)
	disk := ext2Image(t, dir, tools, nil)
	stage2 := guestPrelude + `km stage2
` + trixieEnv + `export PATH=$PATH:/disk/usr/sbin
run import kexec-measured log import
` + pcrlockScript("pcrlock") + ourLogScript("ours") + `dump log2 $LOG
finish
`
	files := map[string][]byte{"init": []byte(stage2), "bin/busybox": readFile(t, e.Busybox)}
	comps := []component{newComponent(t, "stage2.cpio.zst", "zstd", files)}
	pcrextend := func(phases ...string) string {
		var b strings.Builder
		for _, p := range phases {
			b.WriteString("run pcrextend-" + p + " /trixie/run systemd-pcrextend " + p + "\n")
		}
		return b.String()
	}
	script := trixieEnv + `pcrs before
` + pcrextend("enter-initrd", "leave-initrd", "sysinit", "ready") +
		`run load kexec-measured -l /stage2/vmlinuz --initrd /components/stage2.cpio.zst --append "` + stage2Cmdline + `"
` + pcrextend("shutdown", "final") + `run refresh kexec-measured log refresh
dump log $LOG
run exec kexec-measured -e
km exec-returned
`
	s1 := stage1{Components: comps, Script: script}
	start := time.Now()
	c := run(t, e, vmConfig{Initrd: s1.build(t, e, dir), Cmdline: stage1Cmdline, TPM: startSwtpm(t), NVMe: disk, Timeout: 8 * time.Minute})
	t.Logf("both boots: %.1f s", time.Since(start).Seconds())
	if c.Has("no-trixie-disk") {
		t.Fatal("the guest could not mount the disk with Debian 13's tools")
	}
	for _, p := range []string{"enter-initrd", "leave-initrd", "sysinit", "ready", "load", "shutdown", "final", "refresh"} {
		name := "pcrextend-" + p
		if p == "load" || p == "refresh" {
			name = p
		}
		if rc := c.RC(t, name); rc != 0 {
			t.Errorf("%s: exit status %d, want 0", name, rc)
		}
	}
	if !c.Has("stage2") {
		t.Fatal("the second kernel's init did not run")
	}
	checkPcrlock(t, c, "pcrlock", 9, 11)
	checkOurLog(t, c, "ours", 9, 11)
	// The phases measured after the load reached stage 2: the refresh
	// carried them.
	log2, ok := c.File(t, "log2")
	if !ok {
		t.Fatal("no log in stage 2")
	}
	want := []string{"enter-initrd", "leave-initrd", "sysinit", "ready", "shutdown", "final"}
	if got := phaseStrings(t, log2); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("stage 2's log has the PCR 11 phases %q, want %q", got, want)
	}
}

// checkPcrlock checks the systemd-pcrlock log verdict the guest dumped as
// name: it ran, and each of pcrs has records whose replay is the TPM's
// value.
func checkPcrlock(t *testing.T, c *console, name string, pcrs ...int) {
	t.Helper()
	if rc := c.RC(t, name); rc != 0 {
		t.Errorf("%s: systemd-pcrlock log: exit status %d, want 0", name, rc)
	}
	data, ok := c.File(t, name)
	if !ok {
		t.Fatalf("%s: no systemd-pcrlock output", name)
	}
	var v pcrlockVerdict
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: systemd-pcrlock log --json=short: %v: %.200q", name, err, data)
	}
	for _, want := range pcrs {
		found := false
		for _, p := range v.PCRs {
			if p.PCR != want {
				continue
			}
			found = true
			if p.Count == nil || *p.Count == 0 {
				t.Errorf("%s: systemd-pcrlock sees no records on PCR %d", name, want)
			}
			if !p.HashMatch {
				t.Errorf("%s: systemd-pcrlock: PCR %d does not match its log", name, want)
			}
		}
		if !found {
			t.Errorf("%s: systemd-pcrlock reports nothing for PCR %d", name, want)
		}
	}
}

// phaseStrings returns content.string of the log's systemd records on PCR
// 11, in order.
func phaseStrings(t *testing.T, data []byte) []string {
	t.Helper()
	var out []string
	for i, chunk := range bytes.Split(bytes.TrimPrefix(data, []byte{0x1e}), []byte{0x1e}) {
		var r struct {
			PCR         int    `json:"pcr"`
			ContentType string `json:"content_type"`
			Content     struct {
				String string `json:"string"`
			} `json:"content"`
		}
		if err := json.Unmarshal(chunk, &r); err != nil {
			t.Fatalf("log record %d: %v", i, err)
		}
		if r.PCR == 11 && r.ContentType == "systemd" {
			out = append(out, r.Content.String)
		}
	}
	return out
}
