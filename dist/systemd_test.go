package dist

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnitsVerify runs `systemd-analyze verify --root=SCRATCH` on every unit
// under systemd/, installed into a scratch root with a stand-in
// /usr/sbin/kexec-measured (nothing goes into the host's /usr or /etc).
func TestUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd)")
	}
	units, err := filepath.Glob(filepath.Join("systemd", "*.service"))
	if err != nil || len(units) == 0 {
		t.Fatalf("no units under systemd/ (%v)", err)
	}
	for _, u := range units {
		t.Run(filepath.Base(u), func(t *testing.T) {
			root := t.TempDir()
			sbin := filepath.Join(root, "usr", "sbin")
			unitDir := filepath.Join(root, "etc", "systemd", "system")
			for _, d := range []string{sbin, unitDir} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(sbin, "kexec-measured"), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(u)
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(unitDir, filepath.Base(u))
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("systemd-analyze", "verify", "--man=no", "--root="+root, dst).CombinedOutput()
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				t.Errorf("systemd-analyze verify %s: %v\n%s", u, err, out)
			}
		})
	}
}

// TestPreloadUnit checks what the pre-load unit must say: ordered before
// kexec.target, wanted by it, loading the default entry, skipped when a
// kernel is already loaded.
func TestPreloadUnit(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("systemd", "kexec-measured-load.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nBefore=kexec.target ", "\nWantedBy=kexec.target\n", "\nDefaultDependencies=no\n",
		"\nExecStart=/usr/sbin/kexec-measured -l --entry=default\n", "\nExecCondition=/usr/sbin/kexec-measured -l -S\n",
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}
}

// TestReadmeShowsUnit: README's systemd section shows the pre-load unit as
// it is (without its comments and Documentation line).
func TestReadmeShowsUnit(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join("systemd", "kexec-measured-load.service"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range strings.Split(string(unit), "\n") {
		if strings.HasPrefix(l, "#") || strings.HasPrefix(l, "Documentation=") || l == "" {
			continue
		}
		want = append(want, l)
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, shown, ok := strings.Cut(string(readme), "    # dist/systemd/kexec-measured-load.service\n")
	if !ok {
		t.Fatal("README does not show dist/systemd/kexec-measured-load.service")
	}
	var got []string
	for _, l := range strings.Split(shown, "\n") {
		if !strings.HasPrefix(l, "    ") && l != "" {
			break
		}
		l = strings.TrimPrefix(l, "    ")
		if strings.HasPrefix(l, "install ") {
			break
		}
		if l != "" {
			got = append(got, l)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("README shows\n%s\nthe unit is\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
