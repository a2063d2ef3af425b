//go:build integration

package integration

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/internal/newc"
)

// guestPrelude starts both stages' init scripts: it mounts the pseudo file
// systems, installs the busybox applets and defines the helpers
// (guestHelpers) that print the markers console_test.go parses.
const guestPrelude = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /run /tmp /sbin /usr/bin /usr/sbin
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t tmpfs tmpfs /run
mkdir -p /run/log/systemd
` + guestHelpers

// guestHelpers defines the shell functions that print the markers
// console_test.go parses. An init that runs where the pseudo file systems
// are already mounted (after an initramfs switched root) starts with it
// instead of guestPrelude.
const guestHelpers = `km() { echo "@@KM $*"; }
pcrs() { for d in /sys/class/tpm/tpm0/pcr-*; do km pcr "$1" "${d##*/pcr-}" 9 "$(cat "$d/9")"; done; }
loaded() { km loaded "$1" "$(cat /sys/kernel/kexec_loaded)" "$(cat /sys/kernel/kexec_crash_loaded)"; }
run() { n=$1; shift; echo "+ $*"; "$@"; km rc "$n" $?; }
dump() { if [ -f "$2" ]; then km file "$1" "$(sha256sum "$2" | cut -d' ' -f1)"; base64 "$2" | sed "s/^/@@B64 $1 /"; else km nofile "$1"; fi; }
finish() { km end; sync; poweroff -f; sleep 10; }
LOG=/run/log/systemd/tpm2-measure.log
`

// stage2Init is the init of the second kernel. It comes from an initrd
// component and reports what the second kernel sees: its command line, its
// PCR values and every file the components put under /fw, /modules, /extra
// and /split, with digests.
const stage2Init = guestPrelude + `km stage2
km cmdline $(cat /proc/cmdline)
pcrs stage2
for f in /init /bin/busybox $(find /fw /modules /extra /split -type f 2>/dev/null | sort); do
	km sum "$f" "$(sha256sum "$f" | cut -d' ' -f1)"
done
finish
`

// stage1Cmdline is the first kernel's command line; stage2Cmdline the one
// kexec-measured loads (and measures) for the second kernel.
const (
	stage1Cmdline = "console=ttyS0 panic=-1 quiet loglevel=3"
	stage2Cmdline = "console=ttyS0 panic=-1 quiet loglevel=3 stage=2"
)

// component is one initrd component: its name in the stage-1 initramfs
// (/components/NAME), its bytes, and the files it unpacks to (path → data).
type component struct {
	Name  string
	Data  []byte
	Files map[string][]byte
}

// randomBytes returns n bytes from crypto/rand: incompressible filler that
// makes every run's components and digests new.
func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// compress runs the host's compressor (gzip or zstd) over data.
func compress(t *testing.T, tool string, data []byte) []byte {
	t.Helper()
	var args []string
	switch tool {
	case "gzip":
		args = []string{"-9", "-n", "-c"}
	case "zstd":
		args = []string{"-q", "-c", "-3"}
	default:
		t.Fatalf("unknown compressor %q", tool)
	}
	cmd := exec.Command(tool, args...)
	cmd.Stdin = bytes.NewReader(data)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v: %s", tool, err, errb.String())
	}
	return out.Bytes()
}

// executable reports whether a guest file (path without leading slash) is a
// program: /init, what is under a bin or sbin directory, systemd's programs
// under /usr/lib/systemd, the dynamic loader, and everything under trixie/
// (Debian 13's tools, see trixie_test.go).
func executable(name string) bool {
	return name == "init" || strings.HasPrefix(name, "trixie/") ||
		strings.HasPrefix(name, "bin/") || strings.HasPrefix(name, "sbin/") ||
		strings.HasPrefix(name, "usr/bin/") || strings.HasPrefix(name, "usr/sbin/") ||
		strings.HasPrefix(name, "usr/lib/systemd/systemd-") ||
		strings.HasPrefix(name, "lib64/ld-linux")
}

// cpioArchive returns the newc cpio (internal/newc) of a path → data map,
// sorted by path, with every parent directory; the executable ones get mode
// 0755.
func cpioArchive(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var out []newc.File
	for _, name := range sortedKeys(files) {
		perm := uint32(0o644)
		if executable(name) {
			perm = 0o755
		}
		out = append(out, newc.File{Name: name, Perm: perm, Data: files[name]})
	}
	arch, err := newc.Archive(out)
	if err != nil {
		t.Fatal(err)
	}
	return arch
}

// newComponent returns a component whose bytes are the newc cpio of files,
// compressed with tool ("" for none).
func newComponent(t *testing.T, name, tool string, files map[string][]byte) component {
	t.Helper()
	data := cpioArchive(t, files)
	if tool != "" {
		data = compress(t, tool, data)
	}
	return component{Name: name, Data: data, Files: files}
}

// mainComponents returns the three components of the main scenario: an
// uncompressed early cpio (firmware-like blobs), a gzip cpio with busybox
// (the userspace and "modules"), and a zstd cpio with the stage-2 init.
func mainComponents(t *testing.T, e *env) []component {
	t.Helper()
	bb, err := os.ReadFile(e.Busybox)
	if err != nil {
		t.Fatal(err)
	}
	return []component{
		newComponent(t, "fw.cpio", "", map[string][]byte{
			"fw/marker":   []byte(fmt.Sprintf("fw %x\n", randomBytes(t, 16))),
			"fw/blob.bin": randomBytes(t, 64<<10),
		}),
		newComponent(t, "modules.cpio.gz", "gzip", map[string][]byte{
			"bin/busybox":      bb,
			"modules/marker":   []byte(fmt.Sprintf("modules %x\n", randomBytes(t, 16))),
			"modules/blob.bin": randomBytes(t, 512<<10),
		}),
		newComponent(t, "extra.cpio.zst", "zstd", map[string][]byte{
			"init":           []byte(stage2Init),
			"extra/marker":   []byte(fmt.Sprintf("extra %x\n", randomBytes(t, 16))),
			"extra/blob.bin": randomBytes(t, 128<<10),
		}),
	}
}

// stage1 is the first kernel's initramfs: busybox, kexec-measured, the
// stage-2 kernel at /stage2/vmlinuz, the components under /components, and
// an init made of guestPrelude and script.
type stage1 struct {
	Components []component
	Script     string
	Files      map[string][]byte // more files, by path without leading slash
}

// build writes the stage-1 initramfs into dir and returns its path.
func (s stage1) build(t *testing.T, e *env, dir string) string {
	t.Helper()
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	files := map[string][]byte{
		"bin/busybox":    read(e.Busybox),
		"stage2/vmlinuz": read(e.Kernel),
		"init":           []byte(guestPrelude + s.Script + "\nfinish\n"),
	}
	if e.BuildErr == nil {
		files["bin/kexec-measured"] = read(e.Binary)
	}
	for _, c := range s.Components {
		files["components/"+c.Name] = c.Data
	}
	for name, data := range s.Files {
		files[name] = data
	}
	p := filepath.Join(dir, "stage1.cpio")
	if err := os.WriteFile(p, cpioArchive(t, files), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// initrdArgs returns "--initrd /components/A --initrd /components/B ...".
func initrdArgs(cs []component) string {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, " --initrd /components/%s", c.Name)
	}
	return strings.TrimSpace(b.String())
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
