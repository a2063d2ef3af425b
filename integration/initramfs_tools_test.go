//go:build integration

package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// initramfsToolsConf is the initramfs.conf of the test image: only the
// modules listed in CONFDIR/modules (virtio_pci and virtio_blk for the root
// disk; ext4, which mounts ext2, is built in), zstd as Debian's default.
const initramfsToolsConf = `MODULES=list
BUSYBOX=auto
KEYMAP=n
COMPRESS=zstd
RUNSIZE=10%
FSTYPE=ext2
`

// mkinitramfs builds a real initramfs-tools image for the test kernel with
// dist/'s hook and init-bottom script, and returns its path. Nothing is
// installed on the host: the configuration directory is private (-d), the
// hook copies e.Binary (KEXEC_MEASURED), and the kernel's unpacked modules
// (integration/.cache/kernel-VERSION, with the modules.dep that setup
// writes) and config appear at /lib/modules/VERSION and /boot/config-VERSION
// only inside a private mount namespace (unshare --mount), because
// mkinitramfs reads both from those fixed paths.
func mkinitramfs(t *testing.T, e *env) string {
	t.Helper()
	for _, bin := range []string{"mkinitramfs", "unshare"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s: %v (run integration/setup first)", bin, err)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatal("mkinitramfs needs root here: it runs in a private mount namespace")
	}
	cache, err := filepath.Abs(".cache")
	if err != nil {
		t.Fatal(err)
	}
	kver := strings.TrimSpace(string(readFile(t, filepath.Join(cache, "kernel-version"))))
	modules := filepath.Join(cache, "kernel-"+kver, "lib/modules", kver)
	if _, err := os.Stat(filepath.Join(modules, "modules.dep")); err != nil {
		t.Fatalf("%v (run integration/setup first)", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "conf")
	files := map[string][]byte{
		"initramfs.conf": []byte(initramfsToolsConf),
		"modules":        []byte("virtio_pci\nvirtio_blk\n"),
	}
	for _, f := range []string{"hooks/kexec-measured", "scripts/init-bottom/kexec-measured"} {
		files[f] = readFile(t, filepath.Join("../dist/initramfs-tools", f))
	}
	for name, data := range files {
		p := filepath.Join(conf, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(conf, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "initrd.img")
	// /lib is /usr/lib on Debian 12. Where the host has no /usr/lib/modules,
	// an overlay over /usr/lib (upper layer in dir) provides the mount point.
	script := `set -e
mount --make-rprivate /
if [ -d /usr/lib/modules ]; then
	mount -t tmpfs tmpfs /usr/lib/modules
else
	mkdir -p "$DIR/ov/upper" "$DIR/ov/work"
	mount -t overlay overlay -o "lowerdir=/usr/lib,upperdir=$DIR/ov/upper,workdir=$DIR/ov/work" /usr/lib
fi
mkdir -p "/usr/lib/modules/$KVER"
mount --bind -o ro "$MODULES" "/usr/lib/modules/$KVER"
mount -t tmpfs tmpfs /boot
cp "$CONFIG" "/boot/config-$KVER"
mkinitramfs -d "$CONF" -o "$OUT" "$KVER"
`
	cmd := exec.Command("unshare", "--mount", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "DIR="+dir, "KVER="+kver, "MODULES="+modules,
		"CONFIG="+filepath.Join(cache, "config"), "CONF="+conf, "OUT="+out,
		"KEXEC_MEASURED="+e.Binary, "TMPDIR="+dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkinitramfs in a private mount namespace: %v\n%s", err, b)
	}
	return out
}

// ext2Image writes a small ext2 file system holding files (path without
// leading slash → data; executable() ones get mode 0755) and the mount
// points dirs into dir, with mke2fs -d, and returns its path.
func ext2Image(t *testing.T, dir string, files map[string][]byte, dirs []string) string {
	t.Helper()
	if _, err := exec.LookPath("mke2fs"); err != nil {
		t.Fatalf("mke2fs: %v (run integration/setup first)", err)
	}
	tree := filepath.Join(dir, "rootfs")
	var size int64
	for name, data := range files {
		p := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if executable(name) {
			mode = 0o755
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		size += int64(len(data))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "root.ext2")
	kib := size/1024*2 + 8192
	cmd := exec.Command("mke2fs", "-q", "-F", "-t", "ext2", "-E", "root_owner=0:0", "-d", tree, img, strconv.FormatInt(kib, 10)+"k")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, b)
	}
	return img
}

// newRootInit is /sbin/init of the root file system that initramfs-tools
// switches into. /proc, /sys, /dev and /run are already there: initramfs-tools
// moved them into the new root. It reports the root device, whether the
// handoff directory is (wrongly) still visible, PCR 9, the log, and what
// `kexec-measured log` says about it.
func newRootInit() string {
	return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/sbin
` + guestHelpers + `km newroot
km uptime newroot $(cut -d' ' -f1 /proc/uptime)
km root $(awk '$2 == "/" {d = $1; f = $3} END {print d, f}' /proc/mounts)
[ -e /kexec-measured ] && km handoff-visible
pcrs newroot
dump newlog $LOG
` + ourLogScript("log") + `finish
`
}

// TestInitramfsTools boots, from stage 1, a real initramfs-tools image
// (mkinitramfs for the test kernel, with dist/'s hook and init-bottom
// script) that mounts an ext2 root file system from a virtio disk and
// switches into it. The handoff that kexec-measured appended to the image
// is imported by the init-bottom script before run-init, and initramfs-tools
// moves /run into the new root: there the log holds the records stage 1
// wrote, byte for byte, `kexec-measured log` says MATCH, and PCR 9 is the
// replayed log.
func TestInitramfsTools(t *testing.T) {
	e := getEnv(t, true)
	dir := t.TempDir()
	start := time.Now()
	img := mkinitramfs(t, e)
	t.Logf("mkinitramfs: %d bytes in %.1f s", len(readFile(t, img)), time.Since(start).Seconds())
	root := ext2Image(t, dir, map[string][]byte{
		"sbin/init":               []byte(newRootInit()),
		"bin/busybox":             readFile(t, e.Busybox),
		"usr/sbin/kexec-measured": readFile(t, e.Binary),
	}, []string{"proc", "sys", "dev", "run", "tmp"})
	comps := []component{{Name: "initrd.img", Data: readFile(t, img)}}
	cmdline := stage2Cmdline + " root=/dev/vda rootfstype=ext2 rw"
	script := `pcrs before
run load kexec-measured -l /stage2/vmlinuz --initrd /components/initrd.img --append "` + cmdline + `"
km uptime load $(cut -d' ' -f1 /proc/uptime)
loaded after-load
dump log $LOG
run exec kexec-measured -e
km exec-returned
`
	start = time.Now()
	c := run(t, e, vmConfig{
		Initrd:  stage1{Components: comps, Script: script}.build(t, e, dir),
		Cmdline: stage1Cmdline,
		TPM:     startSwtpm(t),
		Disk:    root,
		Timeout: 8 * time.Minute,
	})
	t.Logf("both boots: %.1f s (guest uptime: load done %s s, new root %s s)", time.Since(start).Seconds(), uptimeAt(c, "load"), uptimeAt(c, "newroot"))
	if rc := c.RC(t, "load"); rc != 0 {
		t.Fatalf("load: exit status %d, want 0", rc)
	}
	if !c.Has("newroot") {
		t.Fatal("the new root's init did not run (initramfs-tools did not switch root)")
	}
	if m := c.find("root"); strings.Join(m, " ") != "root /dev/vda ext2" {
		t.Errorf("new root: mounted %v, want /dev/vda ext2", m[1:])
	}
	if c.Has("handoff-visible") {
		t.Error("the handoff directory is visible in the new root")
	}
	stage1Log, ok := c.File(t, "log")
	if !ok {
		t.Fatal("no log in stage 1 after the load")
	}
	newLog, ok := c.File(t, "newlog")
	if !ok {
		t.Fatal("no /run/log/systemd/tpm2-measure.log in the new root: the handoff was not imported, or /run not moved")
	}
	if !bytes.Equal(newLog, stage1Log) {
		t.Errorf("the new root's log (%d bytes) is not stage 1's log after the load (%d bytes)", len(newLog), len(stage1Log))
	}
	items := componentItems(t, e, comps, cmdline)
	recs := parseLog(t, newLog)
	before := c.PCRs(t, "before", 9)
	comparePCRs(t, "new root PCR 9 vs. its log replayed", c.PCRs(t, "newroot", 9), replayRecords(t, before, recs, 9))
	comparePCRs(t, "new root PCR 9 vs. host files", c.PCRs(t, "newroot", 9), expectPCRs(t, before, items))
	checkOurLog(t, c, "log", 9)
}

// ourLogScript runs `kexec-measured log` in the guest and prints its lines
// as markers "NAME ...".
func ourLogScript(name string) string {
	return `kexec-measured log >/tmp/` + name + `.txt; km rc ` + name + ` $?
sed "s/^/@@KM ` + name + ` /" /tmp/` + name + `.txt
`
}

// checkOurLog checks what ourLogScript(name) printed: exit status 0, and
// MATCH for each of pcrs in every bank.
func checkOurLog(t *testing.T, c *console, name string, pcrs ...int) {
	t.Helper()
	if rc := c.RC(t, name); rc != 0 {
		t.Errorf("%s: kexec-measured log: exit status %d, want 0", name, rc)
	}
	for _, p := range pcrs {
		for _, bank := range allBanks {
			// "  PCR 9  sha256 MATCH       replayed ... TPM ..."
			if !c.Has(name, "PCR", strconv.Itoa(p), bank, "MATCH") {
				t.Errorf("%s: kexec-measured log does not say MATCH for PCR %d %s", name, p, bank)
			}
		}
	}
}

// uptimeAt returns the guest's uptime that a "km uptime TAG SECONDS" marker
// reported, or "?".
func uptimeAt(c *console, tag string) string {
	if m := c.find("uptime", tag); len(m) == 3 {
		return m[2]
	}
	return "?"
}
