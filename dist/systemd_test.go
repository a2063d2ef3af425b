package dist

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnitsVerify (files_test.go) runs systemd-analyze verify on every unit
// here, this one included.

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
