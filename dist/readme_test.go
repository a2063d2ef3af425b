//go:build linux

package dist

import (
	"crypto"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/internal/hashtest"
)

// readmeSteps returns the command lines of README.md's "On a real machine"
// section: its first indented block.
func readmeSteps(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "\n## On a real machine")
	if i < 0 {
		t.Fatal(`README.md has no "## On a real machine" section`)
	}
	var steps []string
	for _, line := range strings.Split(text[i+1:], "\n")[1:] {
		switch {
		case strings.HasPrefix(line, "    "):
			steps = append(steps, strings.TrimSpace(line))
		case len(steps) > 0:
			return steps
		case strings.HasPrefix(line, "## "):
			t.Fatal(`README.md's "On a real machine" section has no command block`)
		}
	}
	return steps
}

// TestReadmeRealMachine runs README's real-machine steps in a scratch root:
// the package build, the install (dpkg --root, what apt does on a real
// system), a unit enabled (systemctl --root), and every other line that
// neither loads nor boots anything verbatim, with the installed
// kexec-measured, in a chroot of the scratch root whose ESP holds a boot
// loader entry. The load, the kexec and the verdict after it run in the
// QEMU guest (integration: TestEntryDefault loads --entry=default,
// TestVerifyAfterKexec runs `verify --reference DIR`).
func TestReadmeRealMachine(t *testing.T) {
	need(t, "dpkg")
	need(t, "systemctl")
	if os.Getuid() != 0 {
		t.Skip("dpkg --root and chroot need root (CI runs as root)")
	}
	busybox := "../integration/.cache/busybox"
	if _, err := os.Stat(busybox); err != nil {
		if os.Getenv("CI") != "" && os.Getenv("SKIP_INTEGRATION") == "" {
			t.Fatalf("no static busybox at %s (integration/setup provides it)", busybox)
		}
		t.Skipf("no static busybox at %s (run integration/setup)", busybox)
	}
	d := packages(t)
	r := scratchRoot(t, true)
	for _, dir := range []string{"bin", "tmp"} {
		os.MkdirAll(filepath.Join(r, dir), 0o755)
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(r, "bin/busybox"), bb, 0o755)
	for _, applet := range []string{"sh", "mkdir", "cat"} {
		os.Symlink("busybox", filepath.Join(r, "bin", applet))
	}
	// The default entry of the machine: loader.conf picks it over one that
	// sorts first.
	entry := map[string]string{
		"efi/loader/loader.conf":             "default debian-*\n",
		"efi/loader/entries/aaa.conf":        "linux /other\n",
		"efi/loader/entries/debian-6.1.conf": "title Debian\nlinux /vmlinuz-6.1\ninitrd /ucode.cpio\ninitrd /initrd.img-6.1\noptions root=/dev/vda1 ro\n",
		"efi/vmlinuz-6.1":                    "the kernel of the default entry",
		"efi/other":                          "another kernel",
		"efi/ucode.cpio":                     "microcode",
		"efi/initrd.img-6.1":                 "the initramfs",
	}
	for name, data := range entry {
		p := filepath.Join(r, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	steps := readmeSteps(t)
	ran := map[string]bool{}
	for _, line := range steps {
		f := strings.Fields(line)
		switch {
		case line == "./scripts/package":
			ran["package"] = true // built by packages(): the same script, into a temporary OUTDIR
		case f[0] == "apt" && f[1] == "install":
			var debs []string
			for _, pat := range f[2:] {
				m, _ := filepath.Glob(filepath.Join(filepath.Dir(d.main), filepath.Base(pat)))
				if len(m) != 1 || !strings.HasPrefix(pat, "./out/") {
					t.Fatalf("README: %q: %s matches %v of the built packages", line, pat, m)
				}
				debs = append(debs, m[0])
			}
			dpkg(t, r, append([]string{"--install"}, debs...)...)
			ran["install"] = true
		case f[0] == "systemctl" && f[1] == "enable":
			run(t, "", nil, "systemctl", append([]string{"--root=" + r, "enable"}, f[2:]...)...)
			for _, unit := range f[2:] {
				if _, err := os.Lstat(filepath.Join(r, "etc/systemd/system/kexec.target.wants", unit)); err != nil {
					t.Errorf("README: %q: %s is not wanted by kexec.target: %v", line, unit, err)
				}
			}
		case (f[0] == "kexec-measured" || f[0] == "kexec") && slices.Contains(f, "-l"):
			// A real load (kexec_file_load): never on this machine. The
			// guest's TestEntryDefault loads --entry=default.
			ran["load"] = true
		case line == "systemctl kexec":
			ran["kexec"] = true // boots: the QEMU guest's part
		case f[0] == "kexec-measured" && f[1] == "verify":
			ran["verify"] = true // after the kexec: the QEMU guest's part
		case f[0] == "mkdir", f[0] == "kexec-measured" && f[1] == "reference":
			// Safe to run as written: they read files and write files.
			cmd := exec.Command("chroot", r, "/bin/sh", "-c", line)
			cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_ESP_PATH=/efi", "SYSTEMD_XBOOTLDR_PATH=/efi"}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("README: %q in the scratch root: %v\n%s", line, err, out)
			}
			ran[f[0]+" "+f[1]] = true
		default:
			// Anything else could load or execute a kernel, or reboot:
			// never run an unknown line on this machine.
			t.Fatalf("README: %q: the test does not know how to run this step safely; teach it", line)
		}
	}
	for _, step := range []string{"package", "install", "kexec-measured reference", "load", "kexec", "verify"} {
		if !ran[step] {
			t.Errorf("README's real-machine steps lack %q: %q", step, steps)
		}
	}

	// The reference line wrote the default entry's parts, each with its
	// own digest.
	out, err := os.ReadFile(filepath.Join(r, "var/lib/kexec-measured/refs/default.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Entries []struct {
			Name    string            `json:"name"`
			Digests map[string]string `json:"digests"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("references: %v\n%s", err, out)
	}
	have := map[string]bool{}
	for _, e := range m.Entries {
		have[e.Digests["sha256"]] = true
	}
	for _, part := range []string{"the kernel of the default entry", "microcode", "the initramfs", "root=/dev/vda1 ro"} {
		if !have[hex.EncodeToString(hashtest.Sum(crypto.SHA256, []byte(part)))] {
			t.Errorf("references lack %q:\n%s", part, out)
		}
	}
}
