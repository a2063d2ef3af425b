//go:build integration

package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// trixieSoname matches the shared objects a Debian 13 tool needs at run
// time by the names the dynamic loader looks them up under (libfoo.so.N,
// ld-linux-x86-64.so.2, libsystemd-shared-257.so), not the versioned files
// those are links to.
var trixieSoname = regexp.MustCompile(`^(ld-linux-x86-64\.so\.2|lib[^/]*\.so\.[0-9]+|libsystemd-shared-[0-9]+\.so)$`)

// trixieGuestFiles returns the files that run Debian 13's progs (names
// under usr/lib/systemd or usr/bin of integration/.cache/trixie/root,
// which integration/setup unpacks) in the guest: the run wrapper at
// /trixie/run and, under /trixie/root, the programs and every shared
// object of usr/lib/x86_64-linux-gnu (with links resolved), which covers
// what systemd dlopens (libtss2-*, libcrypto). In the guest,
// `/trixie/run systemd-pcrlock ...` runs as integration/.cache/trixie/run
// does on the host.
func trixieGuestFiles(t *testing.T, progs ...string) map[string][]byte {
	t.Helper()
	cache, err := filepath.Abs(filepath.Join(".cache", "trixie"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cache, "run")); err != nil {
		t.Fatalf("Debian 13's tools: %v (run integration/setup first)", err)
	}
	files := map[string][]byte{"trixie/run": readFile(t, filepath.Join(cache, "run"))}
	root := filepath.Join(cache, "root")
	for _, prog := range progs {
		found := false
		for _, dir := range []string{"usr/lib/systemd", "usr/bin"} {
			p := filepath.Join(root, dir, prog)
			if b, err := os.ReadFile(p); err == nil {
				files[filepath.Join("trixie/root", dir, prog)] = b
				found = true
				break
			}
		}
		if !found {
			t.Fatalf("Debian 13's %s is not in %s", prog, root)
		}
	}
	libdir := "usr/lib/x86_64-linux-gnu"
	for _, dir := range []string{libdir, libdir + "/systemd"} {
		ents, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, ent := range ents {
			if !trixieSoname.MatchString(ent.Name()) || strings.Contains(ent.Name(), "systemd-core") {
				continue
			}
			// os.ReadFile follows the link to the versioned file.
			files[filepath.Join("trixie/root", dir, ent.Name())] = readFile(t, filepath.Join(root, dir, ent.Name()))
		}
	}
	return files
}
