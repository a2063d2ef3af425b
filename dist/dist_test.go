//go:build linux

// Package dist holds what a distribution installs besides the binary: the
// Debian packaging (debian/), the man page source (man/), bash completion
// (bash-completion/), systemd units and initramfs hooks. Its tests build
// the packages with scripts/package and check them: contents and modes, a
// static binary that runs, lintian, install and removal with the diversion
// of kexec-tools' kexec in scratch roots (never the host's /usr), the man
// page, and completion in an interactive bash.
package dist

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// need returns the path of tool, skipping the test when it is missing on
// a developer's machine; under CI (CI set) a missing tool fails the test,
// since scripts/test installs every one.
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (scripts/test installs it)", tool)
		}
		t.Skipf("%s is not installed (scripts/test installs it)", tool)
	}
	return p
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// debs are the packages scripts/package built, once per test binary.
type debs struct {
	main, kexec string // paths of kexec-measured_*.deb and kexec-measured-kexec_*.deb
	err         error
	out         string
}

var (
	buildOnce sync.Once
	built     debs
	builtDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

func packages(t *testing.T) debs {
	t.Helper()
	for _, tool := range []string{"go", "dpkg-deb", "help2man"} {
		need(t, tool)
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kexec-measured-package-")
		if err != nil {
			built.err = err
			return
		}
		builtDir = dir
		cmd := exec.Command("../scripts/package", dir)
		out, err := cmd.CombinedOutput()
		built.out = string(out)
		if err != nil {
			built.err = err
			return
		}
		m, _ := filepath.Glob(filepath.Join(dir, "kexec-measured_*.deb"))
		k, _ := filepath.Glob(filepath.Join(dir, "kexec-measured-kexec_*_all.deb"))
		if len(m) != 1 || len(k) != 1 {
			built.err = os.ErrNotExist
			return
		}
		built.main, built.kexec = m[0], k[0]
	})
	if built.err != nil {
		t.Fatalf("scripts/package: %v\n%s", built.err, built.out)
	}
	return built
}

// entry is one line of dpkg-deb --contents.
type entry struct{ mode, path, link string }

func contents(t *testing.T, deb string) map[string]entry {
	t.Helper()
	out := run(t, "", nil, "dpkg-deb", "--contents", deb)
	m := map[string]entry{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents line %q", line)
		}
		if f[1] != "root/root" {
			t.Errorf("%s: owner %s, want root/root", line, f[1])
		}
		e := entry{mode: f[0], path: strings.TrimPrefix(f[5], ".")}
		if len(f) == 8 && f[6] == "->" {
			e.link = f[7]
		}
		m[e.path] = e
	}
	return m
}

func TestPackageContents(t *testing.T) {
	d := packages(t)
	main := contents(t, d.main)
	for path, mode := range map[string]string{
		"/usr/sbin/kexec-measured":                              "-rwxr-xr-x",
		"/usr/share/man/man8/kexec-measured.8.gz":               "-rw-r--r--",
		"/usr/share/bash-completion/completions/kexec-measured": "-rw-r--r--",
		"/usr/share/doc/kexec-measured/copyright":               "-rw-r--r--",
		"/usr/share/doc/kexec-measured/changelog.gz":            "-rw-r--r--",
		"/usr/share/lintian/overrides/kexec-measured":           "-rw-r--r--",
	} {
		if e, ok := main[path]; !ok || e.mode != mode {
			t.Errorf("kexec-measured: %s: %+v, want mode %s", path, e, mode)
		}
	}
	for path, e := range main {
		if strings.HasSuffix(path, "/") && e.mode != "drwxr-xr-x" {
			t.Errorf("kexec-measured: directory %s has mode %s", path, e.mode)
		}
		if path == "/usr/sbin/kexec" || path == "/sbin/kexec" {
			t.Errorf("kexec-measured ships %s: it must leave kexec-tools' kexec alone", path)
		}
	}
	// Every file of dist/ that a system loads is installed.
	for src, dst := range distInstalls(t) {
		if _, ok := main[dst]; !ok {
			t.Errorf("dist/%s is not installed at %s", src, dst)
		}
	}
	if trig := run(t, "", nil, "dpkg-deb", "--info", d.main, "triggers"); !strings.Contains(trig, "activate-noawait update-initramfs") {
		t.Errorf("kexec-measured: triggers %q, want update-initramfs activated (the hook must reach the initramfs)", trig)
	}
	kx := contents(t, d.kexec)
	if e := kx["/usr/sbin/kexec"]; e.mode != "lrwxrwxrwx" || e.link != "kexec-measured" {
		t.Errorf("kexec-measured-kexec: /usr/sbin/kexec is %+v, want a link to kexec-measured", e)
	}
	if _, ok := kx["/usr/share/man/man8/kexec.8.gz"]; !ok {
		t.Errorf("kexec-measured-kexec: no kexec(8)")
	}
	info := run(t, "", nil, "dpkg-deb", "--field", d.kexec, "Depends")
	if !strings.HasPrefix(info, "kexec-measured (= ") {
		t.Errorf("kexec-measured-kexec Depends %q, want kexec-measured (= VERSION)", info)
	}
}

// distInstalls maps the files under dist/ that systems load to where the
// package must install them.
func distInstalls(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	walk := func(dir string, dst func(rel string) string) {
		filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
			if err == nil && !de.IsDir() {
				m[p] = dst(p)
			}
			return nil
		})
	}
	walk("systemd", func(p string) string { return "/usr/lib/systemd/system/" + filepath.Base(p) })
	walk("initramfs-tools", func(p string) string { return "/usr/share/" + p })
	walk("dracut", func(p string) string { return "/usr/lib/dracut/modules.d/" + strings.TrimPrefix(p, "dracut/") })
	return m
}

func TestBinaryIsStaticAndRuns(t *testing.T) {
	d := packages(t)
	dir := t.TempDir()
	run(t, "", nil, "dpkg-deb", "--extract", d.main, dir)
	bin := filepath.Join(dir, "usr/sbin/kexec-measured")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("%s has a %v program header: it is not static", bin, p.Type)
		}
	}
	out := run(t, "", nil, bin, "-v")
	version := strings.TrimSpace(run(t, "", nil, "dpkg-deb", "--field", d.main, "Version"))
	want := regexp.MustCompile(`^kexec-measured ` + regexp.QuoteMeta(version) + ` \(commit [0-9a-f]{12}(\+dirty)?[,;]`)
	if !want.MatchString(out) {
		t.Fatalf("-v printed %q, want the package version %s and a commit", out, version)
	}
}

func TestLintian(t *testing.T) {
	need(t, "lintian")
	d := packages(t)
	cmd := exec.Command("lintian", "--pedantic", "-I", "-E", "--fail-on", "error,warning,info,pedantic", d.main, d.kexec)
	out, err := cmd.CombinedOutput()
	var tags []string
	for _, line := range strings.Split(string(out), "\n") {
		// lintian checks the diversion of /sbin/kexec only in some of
		// its runs over the group (the override then goes unused): that
		// one "unused-override" is not a finding.
		if strings.HasPrefix(line, "I: kexec-measured-kexec: unused-override diversion-for-unknown-file sbin/kexec ") {
			continue
		}
		if len(line) > 2 && line[1] == ':' && strings.ContainsRune("EWIPX", rune(line[0])) {
			tags = append(tags, line)
		}
	}
	if len(tags) > 0 || (err != nil && !isOnlyUnusedOverride(out)) {
		t.Fatalf("lintian: %v\n%s\n(all output:)\n%s", err, strings.Join(tags, "\n"), out)
	}
}

// fakeKexecTools builds a package named kexec-tools that owns kexecPath,
// as Debian 12's (/sbin/kexec) or Debian 13's (/usr/sbin/kexec) does, and
// kexec(8); its kexec prints "kexec-tools".
func fakeKexecTools(t *testing.T, kexecPath string) string {
	t.Helper()
	root := t.TempDir()
	for path, data := range map[string]string{
		kexecPath:                        "#!/bin/sh\necho kexec-tools\n",
		"/usr/share/man/man8/kexec.8.gz": "kexec-tools' page",
		"/DEBIAN/control":                "Package: kexec-tools\nVersion: 1:2.0.25-3\nArchitecture: all\nMaintainer: test <test@users.noreply.github.com>\nDescription: stand-in for the test\n stand-in\n",
	} {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	deb := filepath.Join(t.TempDir(), "kexec-tools.deb")
	run(t, "", nil, "dpkg-deb", "--root-owner-group", "--build", root, deb)
	return deb
}

// scratchRoot returns an empty dpkg root; merged makes /sbin a link to
// usr/sbin, as on a merged-/usr system.
func scratchRoot(t *testing.T, merged bool) string {
	t.Helper()
	r := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "usr/sbin"} {
		if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(r, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if merged {
		if err := os.Symlink("usr/sbin", filepath.Join(r, "sbin")); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func dpkg(t *testing.T, root string, args ...string) string {
	t.Helper()
	return run(t, "", nil, "dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--log=/dev/null"}, args...)...)
}

// runKexec runs the root's kexec (by the path a caller would use) and
// returns its first line.
func runKexec(t *testing.T, root, path string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(root, path), "-v").CombinedOutput()
	if err != nil {
		t.Fatalf("%s -v: %v\n%s", path, err, out)
	}
	return strings.SplitN(string(out), "\n", 2)[0]
}

func TestInstallRemoveDiversion(t *testing.T) {
	need(t, "dpkg")
	if os.Getuid() != 0 {
		t.Skip("dpkg --root needs root (CI runs as root)")
	}
	d := packages(t)
	for _, tc := range []struct {
		name      string
		merged    bool
		kexecPath string
	}{
		{"Debian 12 layout, split /usr", false, "/sbin/kexec"},
		{"Debian 12 layout, merged /usr", true, "/sbin/kexec"},
		{"Debian 13 layout", true, "/usr/sbin/kexec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := scratchRoot(t, tc.merged)
			// Unpacked only: the stand-in has no maintainer scripts to run.
			dpkg(t, r, "--unpack", fakeKexecTools(t, tc.kexecPath))
			if got := runKexec(t, r, tc.kexecPath); got != "kexec-tools" {
				t.Fatalf("before: %s -v = %q", tc.kexecPath, got)
			}

			// kexec-measured alone coexists: kexec is still kexec-tools'.
			dpkg(t, r, "--install", d.main)
			if got := runKexec(t, r, tc.kexecPath); got != "kexec-tools" {
				t.Fatalf("with kexec-measured: %s -v = %q, want kexec-tools'", tc.kexecPath, got)
			}
			if got := runKexec(t, r, "/usr/sbin/kexec-measured"); !strings.HasPrefix(got, "kexec-measured ") {
				t.Fatalf("kexec-measured -v = %q", got)
			}

			// kexec-measured-kexec: /usr/sbin/kexec is ours, kexec-tools'
			// binary is kept under its diverted name.
			dpkg(t, r, "--install", d.kexec)
			if got := runKexec(t, r, "/usr/sbin/kexec"); !strings.HasPrefix(got, "kexec-measured ") {
				t.Fatalf("diverted: /usr/sbin/kexec -v = %q, want kexec-measured", got)
			}
			diverted := filepath.Dir(tc.kexecPath) + "/kexec.kexec-tools"
			if got := runKexec(t, r, diverted); got != "kexec-tools" {
				t.Fatalf("diverted: %s -v = %q, want kexec-tools", diverted, got)
			}
			list := run(t, "", nil, "dpkg-divert", "--root="+r, "--list", "*kexec*")
			for _, p := range []string{"/usr/sbin/kexec", "/sbin/kexec", "/usr/share/man/man8/kexec.8.gz"} {
				if !strings.Contains(list, "diversion of "+p+" to ") {
					t.Errorf("no diversion of %s:\n%s", p, list)
				}
			}

			// Removing it gives kexec back to kexec-tools; purging both
			// leaves no trace.
			dpkg(t, r, "--remove", "kexec-measured-kexec")
			if got := runKexec(t, r, tc.kexecPath); got != "kexec-tools" {
				t.Fatalf("after removal: %s -v = %q, want kexec-tools'", tc.kexecPath, got)
			}
			dpkg(t, r, "--purge", "kexec-measured-kexec", "kexec-measured")
			if list := run(t, "", nil, "dpkg-divert", "--root="+r, "--list", "*kexec*"); list != "" {
				t.Errorf("diversions left after removal:\n%s", list)
			}
			if _, err := os.Lstat(filepath.Join(r, "usr/sbin/kexec-measured")); !os.IsNotExist(err) {
				t.Errorf("/usr/sbin/kexec-measured left after purge: %v", err)
			}
			status := dpkg(t, r, "--get-selections")
			if !slices.Equal(strings.Fields(status), []string{"kexec-tools", "install"}) {
				t.Errorf("dpkg --get-selections after removal: %q", status)
			}
		})
	}
}

func TestManPage(t *testing.T) {
	need(t, "groff")
	need(t, "man")
	d := packages(t)
	dir := t.TempDir()
	run(t, "", nil, "dpkg-deb", "--extract", d.main, dir)
	page := filepath.Join(dir, "usr/share/man/man8/kexec-measured.8.gz")
	roff := run(t, "", nil, "sh", "-c", "gzip -dc \"$1\"", "sh", page)
	cmd := exec.Command("groff", "-ww", "-man", "-z")
	cmd.Stdin = strings.NewReader(roff)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("groff -ww -man: %v\n%s", err, out)
	}
	text := run(t, "", []string{"MANWIDTH=200", "LC_ALL=C.UTF-8"}, "man", "-l", page)
	// Every option -h prints is in the page: one source for both.
	help := run(t, "", nil, filepath.Join(dir, "usr/sbin/kexec-measured"), "--help")
	for _, opt := range regexp.MustCompile(`(?m)^ +(?:-[a-zA-Z], )?(--[a-z][a-z-]*)`).FindAllStringSubmatch(help, -1) {
		if !strings.Contains(text, opt[1]) {
			t.Errorf("man page lacks %s", opt[1])
		}
	}
	for _, section := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "FILES", "SEE ALSO"} {
		if !regexp.MustCompile(`(?m)^` + section + `$`).MatchString(text) {
			t.Errorf("man page lacks the %s section", section)
		}
	}
}

// TestCompletion loads the completion in an interactive bash with
// bash-completion, as a login shell would, and completes a subcommand,
// an option and an option's value.
func TestCompletion(t *testing.T) {
	bash := need(t, "bash")
	if _, err := os.Stat("/usr/share/bash-completion/bash_completion"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("bash-completion is not installed (scripts/test installs it)")
		}
		t.Skip("bash-completion is not installed")
	}
	run(t, "", nil, bash, "-n", "bash-completion/kexec-measured")
	d := packages(t)
	dir := t.TempDir()
	run(t, "", nil, "dpkg-deb", "--extract", d.main, dir)
	rc := filepath.Join(t.TempDir(), "rc")
	os.WriteFile(rc, []byte(`. /usr/share/bash-completion/bash_completion
. `+filepath.Join(dir, "usr/share/bash-completion/completions/kexec-measured")+`
PATH=`+filepath.Join(dir, "usr/sbin")+`:$PATH
complete_line() { # complete_line WORD...: print the completions of the last word
	COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
	COMPREPLY=(); _kexec_measured; printf '%s\n' "${COMPREPLY[@]}"
}
`), 0o644)
	for _, tc := range []struct {
		name  string
		words string
		want  []string
	}{
		{"subcommand", "kexec-measured ins", []string{"inspect"}},
		{"long option", "kexec-measured --spl", []string{"--split-initrd"}},
		{"bank names", "kexec-measured --banks sha2", []string{"sha256"}},
		{"kexec has no subcommands", "kexec ins", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bash, "--rcfile", rc, "-i")
			cmd.Dir = t.TempDir() // no files named ins* to complete
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "INPUTRC=/dev/null")
			cmd.Stdin = strings.NewReader("complete_line " + tc.words + " >&3; exit\n")
			var out bytes.Buffer
			r, w, _ := os.Pipe()
			cmd.ExtraFiles = []*os.File{w}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			out.ReadFrom(r)
			cmd.Wait()
			got := strings.Fields(out.String())
			if !slices.Equal(got, tc.want) {
				t.Fatalf("completing %q: %q, want %q", tc.words, got, tc.want)
			}
		})
	}
}

// isOnlyUnusedOverride reports whether lintian's only tag is the unused
// override of the /sbin/kexec diversion (see TestLintian).
func isOnlyUnusedOverride(out []byte) bool {
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		if len(line) > 2 && line[1] == ':' && strings.ContainsRune("EWIPX", rune(line[0])) {
			if !strings.Contains(line, "unused-override diversion-for-unknown-file sbin/kexec ") {
				return false
			}
			n++
		}
	}
	return n > 0
}
