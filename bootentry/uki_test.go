package bootentry

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/bootentry/ukitest"
)

// stubPath is systemd-boot-efi's stub (a PE without .linux).
const stubPath = ukitest.StubPath

// sec is one section of a UKI.
type sec struct {
	name string
	data []byte
}

// buildUKI builds a UKI with objcopy (ukitest.Build).
func buildUKI(t testing.TB, secs []sec) string {
	var us []ukitest.Section
	for _, s := range secs {
		us = append(us, ukitest.Section{Name: s.name, Data: s.data})
	}
	return ukitest.Build(t, us)
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// readPart reads a part's bytes from its file.
func readPart(t *testing.T, p Part) []byte {
	t.Helper()
	data, err := os.ReadFile(p.Path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Size < 0 {
		return data
	}
	return data[p.Offset : p.Offset+p.Size]
}

func TestLoadUKI(t *testing.T) {
	linux, initrd, ucode := pattern(100001, 1), pattern(5003, 2), pattern(777, 3)
	path := buildUKI(t, []sec{
		{".osrel", []byte("ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"Debian 12\"\n")},
		{".cmdline", []byte("  root=/dev/vda\tquiet\n\x00")},
		{".linux", linux},
		{".initrd", initrd},
		{".ucode", ucode}, // after .initrd in the table, still first in the load
	})
	l, err := LoadUKI(path, -1, "")
	if err != nil {
		t.Fatal(err)
	}
	if l.Kernel.Section != ".linux" || !bytes.Equal(readPart(t, l.Kernel), linux) {
		t.Errorf("kernel %+v is not the .linux bytes", l.Kernel)
	}
	if len(l.Initrds) != 2 || l.Initrds[0].Section != ".ucode" || l.Initrds[1].Section != ".initrd" {
		t.Fatalf("initrds %+v, want .ucode then .initrd", l.Initrds)
	}
	if !bytes.Equal(readPart(t, l.Initrds[0]), ucode) || !bytes.Equal(readPart(t, l.Initrds[1]), initrd) {
		t.Error("initrd parts are not the section bytes")
	}
	if l.Cmdline != "root=/dev/vda quiet" || !l.HasCmdline || l.CmdlineSection != ".cmdline" {
		t.Errorf("cmdline %q %v %q", l.Cmdline, l.HasCmdline, l.CmdlineSection)
	}
}

func TestUKIProfiles(t *testing.T) {
	linux, initrd := pattern(4096, 1), pattern(999, 2)
	path := buildUKI(t, []sec{
		{".osrel", []byte("ID=debian\nVERSION_ID=12\nPRETTY_NAME=\"Debian 12\"\n")},
		{".linux", linux},
		{".initrd", initrd},
		{".profile", []byte("ID=main\n")},
		{".cmdline", []byte("root=/dev/vda")},
		{".profile", []byte("ID=rescue\nTITLE=\"Rescue shell\"\n")},
		{".cmdline", []byte("rescue")},
	})
	for _, c := range []struct {
		profile int
		cmdline string
		initrds int
	}{{-1, "root=/dev/vda", 1}, {0, "root=/dev/vda", 1}, {1, "rescue", 1}} {
		l, err := LoadUKI(path, c.profile, "")
		if err != nil {
			t.Fatalf("profile %d: %v", c.profile, err)
		}
		if l.Cmdline != c.cmdline || len(l.Initrds) != c.initrds || !bytes.Equal(readPart(t, l.Kernel), linux) {
			t.Errorf("profile %d: cmdline %q, %d initrds, want %q and %d", c.profile, l.Cmdline, len(l.Initrds), c.cmdline, c.initrds)
		}
	}
	if _, err := LoadUKI(path, 2, ""); !errors.Is(err, ErrNoProfile) {
		t.Errorf("profile 2: %v, want ErrNoProfile", err)
	}

	// As type #2 entries: one per profile, named by the profile IDs.
	esp := t.TempDir()
	os.MkdirAll(filepath.Join(esp, "EFI", "Linux"), 0o755)
	data, _ := os.ReadFile(path)
	os.WriteFile(filepath.Join(esp, "EFI", "Linux", "deb+3.efi"), data, 0o644)
	s, err := Config{ESP: esp}.Load()
	if err != nil {
		t.Fatal(err)
	}
	got := ids(s.Entries)
	if strings.Join(got, " ") != "deb.efi@main deb.efi@rescue" {
		t.Fatalf("entries %q, want deb.efi@main deb.efi@rescue", got)
	}
	if s.Entries[1].Title != "Debian 12 (Rescue shell)" || s.Entries[0].TriesLeft != 3 || s.Entries[0].SortKey != "debian" || s.Entries[0].Version != "12" {
		t.Errorf("entry %+v", s.Entries[1])
	}
	e, err := s.Lookup("deb.efi@rescue")
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.Load()
	if err != nil || l.Cmdline != "rescue" {
		t.Errorf("loading the rescue profile: %v, cmdline %q", err, l.Cmdline)
	}
}

func TestUKIRefusals(t *testing.T) {
	base := []sec{{".osrel", []byte("ID=x\n")}, {".linux", pattern(1000, 1)}, {".initrd", pattern(100, 2)}}
	t.Run("dtb", func(t *testing.T) {
		path := buildUKI(t, append(base, sec{".dtb", pattern(64, 3)}))
		if _, err := LoadUKI(path, -1, ""); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), ".dtb") {
			t.Errorf("%v, want ErrUnsupported naming .dtb", err)
		}
	})
	t.Run("addon with a devicetree", func(t *testing.T) {
		path := buildUKI(t, base)
		os.MkdirAll(path+".extra.d", 0o755)
		os.WriteFile(filepath.Join(path+".extra.d", "board.addon.efi"), makePE([]sec{{".dtb", []byte("dtb")}}), 0o644)
		if _, err := LoadUKI(path, -1, ""); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "board.addon.efi") || !strings.Contains(err.Error(), ".dtb") {
			t.Errorf("%v, want ErrUnsupported naming the addon and .dtb", err)
		}
	})
	t.Run("VirtualSize beyond the raw data", func(t *testing.T) {
		path := buildUKI(t, base)
		data, _ := os.ReadFile(path)
		patchVirtualSize(t, data, ".initrd", 1<<20)
		os.WriteFile(path, data, 0o644)
		if _, err := LoadUKI(path, -1, ""); !errors.Is(err, ErrSectionVirtual) || !strings.Contains(err.Error(), ".initrd") {
			t.Errorf("%v, want ErrSectionVirtual naming .initrd", err)
		}
	})
	t.Run("a plain kernel", func(t *testing.T) {
		if _, err := LoadUKI(stubPath, -1, ""); !errors.Is(err, ErrNotUKI) {
			t.Errorf("%v, want ErrNotUKI", err)
		}
	})
}

// TestUKIAddons: PE addons are applied as systemd-stub applies them: the
// global ones (loader/addons/) before the UKI's own (.extra.d/), each in
// name order; their .ucode first, their .initrd after the UKI's, their
// .cmdline after the UKI's; an addon for another .uname is skipped.
func TestUKIAddons(t *testing.T) {
	path := buildUKI(t, []sec{
		{".osrel", []byte("ID=x\n")}, {".uname", []byte("6.1.0-test\n")}, {".cmdline", []byte("root=/dev/vda")},
		{".linux", pattern(1000, 1)}, {".ucode", []byte("UKI-UCODE")}, {".initrd", []byte("UKI-INITRD")},
	})
	root := t.TempDir()
	global := filepath.Join(root, "loader", "addons")
	local := path + ".extra.d"
	os.MkdirAll(global, 0o755)
	os.MkdirAll(local, 0o755)
	write := func(p string, secs []sec) {
		if err := os.WriteFile(p, makePE(secs), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(global, "10-console.addon.efi"), []sec{{".cmdline", []byte("console=ttyS0\n")}})
	write(filepath.Join(local, "b-debug.addon.efi"), []sec{{".cmdline", []byte("debug")}, {".initrd", []byte("ADDON-INITRD")}})
	write(filepath.Join(local, "a-fw.addon.efi"), []sec{{".ucode", []byte("ADDON-UCODE")}})
	write(filepath.Join(local, "c-other.addon.efi"), []sec{{".uname", []byte("5.10.0-other")}, {".cmdline", []byte("skipped")}})
	write(filepath.Join(local, "notes.txt"), []sec{{".cmdline", []byte("not an addon")}})
	l, err := LoadUKI(path, -1, root)
	if err != nil {
		t.Fatal(err)
	}
	if l.Cmdline != "root=/dev/vda console=ttyS0 debug" {
		t.Errorf("cmdline %q, want the UKI's, then the global addon's, then the local one's", l.Cmdline)
	}
	var got []string
	for _, p := range l.Initrds {
		got = append(got, string(readPart(t, p)))
	}
	if want := "ADDON-UCODE UKI-UCODE UKI-INITRD ADDON-INITRD"; strings.Join(got, " ") != want {
		t.Errorf("initrds %q, want %q", got, want)
	}
	if l.Initrds[0].Section != ".ucode" || !strings.HasSuffix(l.Initrds[0].Path, "a-fw.addon.efi") {
		t.Errorf("first initrd %+v, want the addon's .ucode", l.Initrds[0])
	}
	// Without the partition root only the UKI's own addons apply.
	if l, err = LoadUKI(path, -1, ""); err != nil || l.Cmdline != "root=/dev/vda debug" {
		t.Errorf("without root: %v, cmdline %q", err, l.Cmdline)
	}
}

// patchVirtualSize sets the VirtualSize of the named section in a PE image.
func patchVirtualSize(t *testing.T, data []byte, name string, size uint32) {
	t.Helper()
	pe := int(binary.LittleEndian.Uint32(data[60:]))
	n := int(binary.LittleEndian.Uint16(data[pe+6:]))
	opt := int(binary.LittleEndian.Uint16(data[pe+20:]))
	for i := 0; i < n; i++ {
		h := data[pe+24+opt+40*i:]
		if string(bytes.TrimRight(h[:8], "\x00")) == name {
			binary.LittleEndian.PutUint32(h[8:], size)
			return
		}
	}
	t.Fatalf("no section %s", name)
}

// makePE builds a minimal PE image by hand (DOS header, COFF header, no
// optional header, the section table, the data), for the fuzz seeds.
func makePE(secs []sec) []byte {
	var b bytes.Buffer
	dos := make([]byte, 64)
	dos[0], dos[1] = 'M', 'Z'
	binary.LittleEndian.PutUint32(dos[60:], 64)
	b.Write(dos)
	b.WriteString("PE\x00\x00")
	hdr := make([]byte, 20)
	binary.LittleEndian.PutUint16(hdr[0:], 0x8664)
	binary.LittleEndian.PutUint16(hdr[2:], uint16(len(secs)))
	b.Write(hdr)
	off := 64 + 4 + 20 + 40*len(secs)
	for i, s := range secs {
		h := make([]byte, 40)
		copy(h, s.name)
		binary.LittleEndian.PutUint32(h[8:], uint32(len(s.data)))
		binary.LittleEndian.PutUint32(h[12:], uint32(0x10000*(i+1)))
		binary.LittleEndian.PutUint32(h[16:], uint32(len(s.data)))
		binary.LittleEndian.PutUint32(h[20:], uint32(off))
		off += len(s.data)
		b.Write(h)
	}
	for _, s := range secs {
		b.Write(s.data)
	}
	return b.Bytes()
}

// TestUKIMask: a section of VirtualSize 0 in a profile masks the base
// section (objcopy drops empty sections, so the image is built by hand).
func TestUKIMask(t *testing.T) {
	img := makePE([]sec{{".linux", []byte("kernel")}, {".initrd", []byte("initrd")},
		{".profile", nil}, {".profile", nil}, {".initrd", nil}})
	u, err := ParseUKI(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if u.Profiles != 2 {
		t.Fatalf("%d profiles, want 2", u.Profiles)
	}
	p0, _ := u.Select(0)
	p1, _ := u.Select(1)
	if _, ok := p0[".initrd"]; !ok {
		t.Error("profile 0 lost the base .initrd")
	}
	if _, ok := p1[".initrd"]; ok {
		t.Error("profile 1's empty .initrd does not mask the base one")
	}
}

func TestMakePE(t *testing.T) {
	img := makePE([]sec{{".linux", []byte("kernel")}, {".initrd", []byte("initrd")}, {".cmdline", []byte("x y\n")}})
	u, err := ParseUKI(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	secs, _ := u.Select(-1)
	if s := secs[".initrd"]; string(img[s.Offset:s.Offset+s.Size]) != "initrd" {
		t.Errorf(".initrd = %+v", s)
	}
}

func FuzzParseUKI(f *testing.F) {
	f.Add(makePE([]sec{{".linux", []byte("kernel")}, {".initrd", []byte("initrd")}, {".cmdline", []byte("x y\n")}}))
	f.Add(makePE([]sec{{".osrel", []byte("ID=a\n")}, {".linux", []byte("k")}, {".profile", []byte("ID=p\n")}, {".cmdline", nil}}))
	f.Add([]byte("MZ"))
	f.Fuzz(func(t *testing.T, img []byte) {
		u, err := ParseUKI(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			return
		}
		for p := -1; p <= u.Profiles; p++ {
			secs, err := u.Select(p)
			if err != nil {
				continue
			}
			for _, s := range secs {
				if s.check() == nil && s.Size > 0 && (s.Offset < 0 || s.Offset+s.Size > int64(len(img))) {
					t.Fatalf("section %+v outside the %d-byte image", s, len(img))
				}
				if s.Size <= maxTextSection {
					readText(bytes.NewReader(img), s)
				}
			}
		}
	})
}
