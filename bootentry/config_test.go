package bootentry

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
)

func TestOrderAndDefault(t *testing.T) {
	for _, fx := range fixtures() {
		t.Run(fx.name, func(t *testing.T) {
			s, _ := fx.load(t, "")
			if got := ids(s.Entries); !slices.Equal(got, fx.wantOrder) {
				t.Errorf("order %q, want %q", got, fx.wantOrder)
			}
			e, why, err := s.Default()
			if err != nil {
				t.Fatal(err)
			}
			if e.ID != fx.wantDefault {
				t.Errorf("default %s (%s), want %s", e.ID, why, fx.wantDefault)
			}
		})
	}
}

func TestSkippedEntry(t *testing.T) {
	s, _ := fixtures()[0].load(t, "")
	if len(s.Skipped) != 1 || !errors.Is(s.Skipped[0], ErrInvalidName) || !strings.Contains(s.Skipped[0].Error(), "bad~name.conf") {
		t.Errorf("skipped %v, want bad~name.conf as an invalid name", s.Skipped)
	}
	_, err := s.Lookup("bad~name.conf")
	var ue *UnknownEntryError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "bad~name.conf") {
		t.Errorf("Lookup of a skipped entry: %v, want an UnknownEntryError naming why it was skipped", err)
	}
}

// writeEFIVar writes a systemd-boot variable as efivarfs shows it.
func writeEFIVar(t *testing.T, dir, name, value string) {
	t.Helper()
	b := []byte{7, 0, 0, 0} // attributes: NV|BS|RT
	for _, u := range utf16.Encode([]rune(value + "\x00")) {
		b = append(b, byte(u), byte(u>>8))
	}
	if err := os.WriteFile(filepath.Join(dir, name+"-"+loaderGUID), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEFIVariables(t *testing.T) {
	for _, c := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"none: loader.conf", nil, "fedora.conf"},
		{"LoaderEntryDefault wins over loader.conf", map[string]string{"LoaderEntryDefault": "a-6.2.conf"}, "a-6.2.conf"},
		{"LoaderEntryDefault is a glob", map[string]string{"LoaderEntryDefault": "A-6.1*"}, "a-6.10.conf"},
		{"LoaderEntryDefault matching nothing", map[string]string{"LoaderEntryDefault": "zzz"}, "fedora.conf"},
		{"LoaderEntryOneShot wins", map[string]string{"LoaderEntryDefault": "a-6.2.conf", "LoaderEntryOneShot": "a-6.1.conf"}, "a-6.1.conf"},
		{"@saved is LoaderEntrySelected", map[string]string{"LoaderEntryDefault": "@saved", "LoaderEntrySelected": "a-6.2.conf"}, "a-6.2.conf"},
	} {
		t.Run(c.name, func(t *testing.T) {
			vars := t.TempDir()
			for k, v := range c.vars {
				writeEFIVar(t, vars, k, v)
			}
			s, _ := fixtures()[1].load(t, vars)
			e, why, err := s.Default()
			if err != nil {
				t.Fatal(err)
			}
			if e.ID != c.want {
				t.Errorf("default %s (%s), want %s", e.ID, why, c.want)
			}
		})
	}
}

func TestLoadType1(t *testing.T) {
	s, _ := fixtures()[0].load(t, "")
	e, err := s.Lookup("default")
	if err != nil {
		t.Fatal(err)
	}
	e, err = s.Lookup("debian-6.1.0-10") // without .conf, as bootctl accepts
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.Load()
	if err != nil {
		t.Fatal(err)
	}
	wantInitrds := []string{"/debian/ucode.img", "/debian/initrd.img-6.1.0-10", "/debian/modules.img"}
	if len(l.Initrds) != len(wantInitrds) {
		t.Fatalf("initrds %v, want %v", l.Initrds, wantInitrds)
	}
	for i, p := range l.Initrds {
		if p.Path != filepath.Join(e.Root, wantInitrds[i]) || p.Size != -1 {
			t.Errorf("initrd %d = %+v, want the whole of %s", i, p, wantInitrds[i])
		}
	}
	if l.Kernel.Path != filepath.Join(e.Root, "/debian/vmlinuz-6.1.0-10") || l.Kernel.Size != -1 {
		t.Errorf("kernel %+v", l.Kernel)
	}
	if l.Cmdline != "root=/dev/vda rw quiet" || !l.HasCmdline {
		t.Errorf("cmdline %q (%v), want the options lines joined", l.Cmdline, l.HasCmdline)
	}

	// The broken entry: a key we cannot honour is an error naming it.
	b, err := s.Lookup("board.conf")
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Load()
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), `"devicetree"`) || !strings.Contains(err.Error(), "board.conf") {
		t.Errorf("loading an entry with devicetree: %v, want ErrUnsupported naming the key and the file", err)
	}
}

func TestLoadType1Refusals(t *testing.T) {
	for _, c := range []struct{ entry, key string }{
		{"linux /k\nefi /x.efi\n", `"efi"`},
		{"linux /k\nuki /x.efi\n", `"uki"`},
		{"linux /k\nuki-url http://x\n", `"uki-url"`},
		{"linux /k\ndevicetree-overlay /a.dtbo /b.dtbo\n", `"devicetree-overlay"`},
		{"linux /k\narchitecture zz99\n", `"architecture"`},
		{"title no kernel\n", `"linux"`},
		{"linux /k\nprofile 1\n", `"profile"`},
	} {
		e, err := ParseType1("e.conf", []byte(c.entry))
		if err != nil {
			t.Fatal(err)
		}
		e.Path = "/esp/loader/entries/e.conf"
		if _, err := e.Load(); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%q: %v, want ErrUnsupported naming %s", c.entry, err, c.key)
		}
	}
	e, _ := ParseType1("e.conf", []byte("linux /k\narchitecture "+strings.ToUpper(EFIArch())+"\n"))
	if _, err := e.Load(); err != nil {
		t.Errorf("this machine's architecture (upper case): %v", err)
	}
}

func TestFindExplicit(t *testing.T) {
	env := map[string]string{"SYSTEMD_XBOOTLDR_PATH": "/from/env"}
	c, err := Find("/my/esp", "", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.ESP != "/my/esp" || c.XBOOTLDR != "/from/env" || c.EFIVars != DefaultEFIVars {
		t.Errorf("Find = %+v", c)
	}
}
