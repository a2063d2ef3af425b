//go:build linux

package dist

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// shellScripts returns the files of dist/ that a shell runs or sources.
func shellScripts() []string {
	return []string{
		"initramfs-tools/hooks/kexec-measured",
		"initramfs-tools/scripts/init-bottom/kexec-measured",
		"dracut/90kexec-measured/module-setup.sh",
		"dracut/90kexec-measured/kexec-measured-import.sh",
	}
}

// units returns the systemd units of dist/.
func units(t *testing.T) []string {
	t.Helper()
	us, err := filepath.Glob("systemd/*.service")
	if err != nil || len(us) == 0 {
		t.Fatalf("no units in dist/systemd (%v)", err)
	}
	return us
}

// TestShellSyntax parses every script with dash (the /bin/sh of Debian and
// of the initramfs) or bash for dracut's module-setup.sh, and checks that
// the scripts that run on their own (initramfs-tools') are executable and
// the ones dracut sources are not.
func TestShellSyntax(t *testing.T) {
	for _, p := range shellScripts() {
		t.Run(p, func(t *testing.T) {
			sh := "dash"
			if filepath.Base(p) == "module-setup.sh" {
				sh = "bash"
			}
			if out, err := exec.Command(need(t, sh), "-n", p).CombinedOutput(); err != nil {
				t.Errorf("%s -n %s: %v\n%s", sh, p, err, out)
			}
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			// initramfs-tools runs its hooks and scripts; dracut sources
			// module-setup.sh and its hooks.
			if exec := !strings.HasPrefix(p, "dracut/"); exec != (fi.Mode().Perm()&0o111 != 0) {
				t.Errorf("%s: mode %v, want executable %v", p, fi.Mode().Perm(), exec)
			}
		})
	}
}

// TestUnitsVerify runs systemd-analyze verify on the units in a scratch
// root that holds the host's own units (so ordering against systemd's units
// is checked), the units under test and stand-ins for the binaries they
// run. Any message fails the test: systemd-analyze exits 0 after warnings
// such as an unknown key.
func TestUnitsVerify(t *testing.T) {
	analyze := need(t, "systemd-analyze")
	hostUnits := "/usr/lib/systemd/system"
	if _, err := os.Stat(filepath.Join(hostUnits, "kexec.target")); err != nil {
		t.Skipf("no systemd units in %s: %v", hostUnits, err)
	}
	root := t.TempDir()
	copyTree(t, hostUnits, filepath.Join(root, hostUnits))
	for _, u := range units(t) {
		copyFile(t, u, filepath.Join(root, "etc/systemd/system", filepath.Base(u)), 0o644)
	}
	for _, bin := range []string{"/usr/sbin/kexec-measured", "/usr/bin/true"} {
		copyFile(t, "/usr/bin/true", filepath.Join(root, bin), 0o755)
	}
	// --man=no: the man page of Documentation= is the package's, not the
	// host's.
	args := []string{"verify", "--man=no", "--root=" + root}
	for _, u := range units(t) {
		args = append(args, filepath.Base(u))
	}
	cmd := exec.Command(analyze, args...)
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies the regular files and symbolic links under from into to.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, b, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("copying %s: %v", from, err)
	}
}
