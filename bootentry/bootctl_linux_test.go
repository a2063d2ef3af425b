package bootentry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// bootctlEntry is one line of `bootctl list --json=short`.
type bootctlEntry struct {
	ID        string   `json:"id"`
	Path      string   `json:"path"`
	Root      string   `json:"root"`
	Linux     string   `json:"linux"`
	Initrd    []string `json:"initrd"`
	Options   string   `json:"options"`
	SortKey   string   `json:"sortKey"`
	Version   string   `json:"version"`
	TriesLeft *int     `json:"triesLeft"`
	TriesDone *int     `json:"triesDone"`
}

// runBootctl lists the fixture with Debian 12's bootctl: the trees are
// copied onto tmpfs mounts (bootctl insists that the ESP and XBOOTLDR
// are the roots of file systems, on different devices) in a private mount
// namespace, with SYSTEMD_RELAX_*_CHECKS for the partition type checks. It
// returns the entries in bootctl's order, the ID bootctl marks "(default)",
// and the mount points (esp, xbootldr).
func runBootctl(t *testing.T, fx fixture) ([]bootctlEntry, string, string, string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("the bootctl cross-check mounts tmpfs in a private mount namespace (unshare -m): needs root (CI runs as root)")
	}
	for _, tool := range []string{"bootctl", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian 12 package systemd-boot / util-linux; scripts/test installs them)", tool)
		}
	}
	dir := t.TempDir()
	esp, xb := filepath.Join(dir, "esp"), filepath.Join(dir, "xbootldr")
	fx.esp.write(t, filepath.Join(dir, "src-esp"))
	os.MkdirAll(esp, 0o755)
	os.MkdirAll(xb, 0o755)
	bootArg := esp // no XBOOTLDR: bootctl then sees the ESP only
	script := fmt.Sprintf("set -e; mount -t tmpfs none %[1]s; cp -a %[2]s/. %[1]s/\n", esp, filepath.Join(dir, "src-esp"))
	if fx.xbootldr != nil {
		fx.xbootldr.write(t, filepath.Join(dir, "src-xb"))
		script += fmt.Sprintf("mount -t tmpfs none %[1]s; cp -a %[2]s/. %[1]s/\n", xb, filepath.Join(dir, "src-xb"))
		bootArg = xb
	}
	args := fmt.Sprintf("--esp-path=%s --boot-path=%s --no-pager", esp, bootArg)
	script += "bootctl " + args + " list --json=short; echo '@@@'; bootctl " + args + " list\n"
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "SYSTEMD_RELAX_ESP_CHECKS=1", "SYSTEMD_RELAX_XBOOTLDR_CHECKS=1", "SYSTEMD_COLORS=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bootctl: %v\n%s", err, stderr.String())
	}
	jsonPart, text, _ := bytes.Cut(out, []byte("@@@\n"))
	var list []bootctlEntry
	dec := json.NewDecoder(bytes.NewReader(jsonPart))
	for dec.More() {
		var e bootctlEntry
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("bootctl --json=short: %v\n%s", err, jsonPart)
		}
		list = append(list, e)
	}
	// The text listing marks the default: "title: X (default)" then "id: ID".
	def := ""
	sc := bufio.NewScanner(bytes.NewReader(text))
	marked := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "title:") {
			marked = strings.Contains(line, "(default)")
		}
		if id, ok := strings.CutPrefix(line, "id: "); ok && marked {
			def = id
		}
	}
	if fx.xbootldr == nil {
		xb = ""
	}
	return list, def, esp, xb
}

// TestBootctlCrossCheck compares our view of every fixture with bootctl's:
// the same entries in the same order, the same default, the same kernel,
// initrds, options, sort keys, versions and boot counters.
func TestBootctlCrossCheck(t *testing.T) {
	for _, fx := range fixtures() {
		t.Run(fx.name, func(t *testing.T) { crossCheck(t, fx) })
	}
}

// TestBootctlCrossCheckUKI adds type #2 entries (UKIs built with objcopy,
// one with a boot counter) to type #1 entries on both partitions.
func TestBootctlCrossCheckUKI(t *testing.T) {
	uki := func(osrel, cmdline string) string {
		p := buildUKI(t, []sec{{".osrel", []byte(osrel)}, {".cmdline", []byte(cmdline)}, {".linux", pattern(2000, 1)}, {".initrd", pattern(300, 2)}})
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	crossCheck(t, fixture{
		name: "UKIs",
		esp: tree{
			"EFI/Linux/debian-6.1.efi":       uki("ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"Debian 12\"\n", "root=/dev/vda quiet\n"),
			"EFI/Linux/arch-6.9+1-2.efi":     uki("ID=arch\nIMAGE_VERSION=6.9\nNAME=Arch\n", ""),
			"loader/entries/debian-6.0.conf": "sort-key debian\nversion 13\nlinux /vmlinuz\n",
		},
		xbootldr: tree{
			"EFI/Linux/fedora.efi": uki("ID=fedora\nVERSION_ID=40\n", " x "),
		},
	})
}

// crossCheck compares our Set of fx with bootctl's listing.
func crossCheck(t *testing.T, fx fixture) {
	{
		{
			list, def, esp, xb := runBootctl(t, fx)
			// Our side reads the source trees; map their paths onto the mounts.
			dir := filepath.Dir(esp)
			c := Config{ESP: filepath.Join(dir, "src-esp")}
			if xb != "" {
				c.XBOOTLDR = filepath.Join(dir, "src-xb")
			}
			s, err := c.Load()
			if err != nil {
				t.Fatal(err)
			}
			mapRoot := func(p string) string {
				p = strings.Replace(p, c.ESP, esp, 1)
				if xb != "" {
					p = strings.Replace(p, c.XBOOTLDR, xb, 1)
				}
				return p
			}
			if len(list) == 0 {
				t.Fatal("bootctl listed no entries")
			}
			var theirs []string
			for _, e := range list {
				theirs = append(theirs, e.ID)
			}
			if got := ids(s.Entries); !slices.Equal(got, theirs) {
				t.Fatalf("order %q, bootctl %q", got, theirs)
			}
			d, _, err := s.Default()
			if err != nil {
				t.Fatal(err)
			}
			if d.ID != def {
				t.Errorf("default %s, bootctl %s", d.ID, def)
			}
			for i, b := range list {
				e := s.Entries[i]
				// systemd 252 spells a UKI's path without the leading
				// slash, newer bootspec.c (path_make_absolute) with it.
				b.Linux = "/" + strings.TrimPrefix(b.Linux, "/")
				want := bootctlEntry{ID: e.ID, Path: mapRoot(e.Path), Root: mapRoot(e.Root), Linux: e.Linux, Initrd: e.Initrd,
					Options: e.Cmdline(), SortKey: e.SortKey, Version: e.Version}
				if e.TriesLeft >= 0 {
					want.TriesLeft = &e.TriesLeft
				}
				if e.TriesDone >= 0 {
					want.TriesDone = &e.TriesDone
				}
				if fmt.Sprint(deref(b)) != fmt.Sprint(deref(want)) {
					t.Errorf("entry %d:\n ours    %+v\n bootctl %+v", i, deref(want), deref(b))
				}
			}
		}
	}
}

// deref prints the counters' values instead of their addresses.
func deref(e bootctlEntry) string {
	p := func(n *int) string {
		if n == nil {
			return "-"
		}
		return fmt.Sprint(*n)
	}
	return fmt.Sprintf("%s %s %s %s %q %q %q %q left=%s done=%s", e.ID, e.Path, e.Root, e.Linux, e.Initrd, e.Options, e.SortKey, e.Version, p(e.TriesLeft), p(e.TriesDone))
}
