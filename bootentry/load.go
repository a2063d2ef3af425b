package bootentry

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// Part is one input of a load: a whole file (Size -1) or Size bytes at
// Offset of it (a PE section of a UKI, named by Section).
type Part struct {
	Path         string
	Offset, Size int64
	Section      string
}

// Load is what a kexec load of an entry or UKI takes.
type Load struct {
	Entry   *Entry // the entry, nil for a UKI named directly
	Kernel  Part
	Initrds []Part // in load order
	// Cmdline is the entry's command line; HasCmdline says whether it has
	// one (options lines, or a .cmdline section). CmdlineSection is
	// ".cmdline" when it came from a UKI.
	Cmdline        string
	HasCmdline     bool
	CmdlineSection string
}

// ErrUnsupported is an entry or UKI that asks for something a kexec load
// cannot do as systemd-boot would; the error names the key, section or file.
var ErrUnsupported = errors.New("bootentry: cannot load as the boot loader would")

// unsupportedf wraps ErrUnsupported with a message.
func unsupportedf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, a...)...)
}

// EFIArch is the Boot Loader Specification's architecture name of
// runtime.GOARCH ("x64" for amd64), "" for one it does not name.
func EFIArch() string {
	return map[string]string{
		"amd64": "x64", "386": "ia32", "arm64": "aa64", "arm": "arm",
		"riscv64": "riscv64", "loong64": "loongarch64",
	}[runtime.GOARCH]
}

// Load turns the entry into a load. A type #1 entry loads its linux file,
// each initrd file as its own component in order, and its options lines
// joined; a type #2 entry loads its UKI with its addons (LoadUKI). Errors wrap
// ErrUnsupported and name the key for what systemd-boot would honour and
// a kexec load cannot: efi, uki, uki-url, profile, devicetree,
// devicetree-overlay, an architecture other than this machine's, no linux.
func (e *Entry) Load() (*Load, error) {
	if e.Type == Type2 {
		prof := -1
		if e.Profile != nil {
			prof = int(*e.Profile)
		}
		l, err := LoadUKI(e.Path, prof, e.Root)
		if err != nil {
			return nil, err
		}
		l.Entry = e
		return l, nil
	}
	for _, k := range []struct{ key, val string }{
		{"efi", e.EFI}, {"uki", e.UKI}, {"uki-url", e.UKIURL},
		{"devicetree", e.Devicetree}, {"devicetree-overlay", strings.Join(e.DevicetreeOverlay, " ")},
	} {
		if k.val != "" {
			return nil, unsupportedf("%s: key %q (%s): kexec_file_load cannot do what systemd-boot does with it", e.Path, k.key, k.val)
		}
	}
	if e.Profile != nil {
		return nil, unsupportedf("%s: key \"profile\": only meaningful with \"uki\"", e.Path)
	}
	if e.Architecture != "" && !strings.EqualFold(e.Architecture, EFIArch()) {
		return nil, unsupportedf("%s: key \"architecture\" is %q, this machine is %q", e.Path, e.Architecture, EFIArch())
	}
	if e.Linux == "" {
		return nil, unsupportedf("%s: no \"linux\" key", e.Path)
	}
	l := &Load{
		Entry:      e,
		Kernel:     Part{Path: filepath.Join(e.Root, e.Linux), Size: -1},
		Cmdline:    e.Cmdline(),
		HasCmdline: len(e.Options) > 0,
	}
	for _, p := range e.Initrd {
		l.Initrds = append(l.Initrds, Part{Path: filepath.Join(e.Root, p), Size: -1})
	}
	return l, nil
}

// LoadUKI turns the unified kernel image at path into a load, as
// systemd-stub boots it: profile (-1: the default, profile 0) selects the
// sections (UKI.Select); the kernel is .linux; the initrd components are
// .ucode and then .initrd (stub.c's INITRD_UCODE, INITRD_BASE order); the
// command line is .cmdline (mangled as the stub does). Each part is the
// section's VirtualSize bytes at its PointerToRawData. root, when not
// empty, is the partition the UKI is on, whose loader/addons/ is checked
// as well as path's .extra.d/.
//
// PE addons are applied as systemd-stub applies them (loadAddons): their
// microcode first, their initrds after the UKI's, their command lines
// appended to the UKI's.
//
// Errors: ErrNotUKI and the other parser errors; ErrNoProfile;
// ErrSectionVirtual for a part whose raw data is shorter than its
// VirtualSize; ErrUnsupported naming the section (.dtb, .dtbauto, .efifw)
// of the UKI or an addon, because systemd-stub would install it and a kexec
// load cannot.
func LoadUKI(path string, profile int, root string) (*Load, error) {
	f, u, err := openUKI(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if profile < 0 {
		profile = 0
	}
	secs, err := u.Select(profile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, name := range []string{".dtb", ".dtbauto", ".efifw"} {
		if s, ok := secs[name]; ok && s.Size > 0 {
			return nil, unsupportedf("%s: section %s: systemd-stub would install it, and a kexec load cannot", path, name)
		}
	}
	uname := ""
	if s, ok := secs[".uname"]; ok && s.Size > 0 {
		if uname, err = readText(f, s); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	add, err := loadAddons(path, root, uname)
	if err != nil {
		return nil, err
	}
	part := func(name string) (Part, bool, error) {
		s, ok := secs[name]
		if !ok || s.Size == 0 {
			return Part{}, false, nil
		}
		if err := s.check(); err != nil {
			return Part{}, false, fmt.Errorf("%s: %w", path, err)
		}
		return Part{Path: path, Offset: s.Offset, Size: s.Size, Section: name}, true, nil
	}
	l := &Load{}
	var ok bool
	if l.Kernel, ok, err = part(".linux"); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%s: %w (profile @%d has an empty one)", path, ErrNotUKI, profile)
	}
	// stub.c's order: microcode of the addons, the UKI's .ucode and
	// .initrd, then the addons' initrds.
	l.Initrds = append(l.Initrds, add.ucode...)
	for _, name := range []string{".ucode", ".initrd"} {
		p, ok, err := part(name)
		if err != nil {
			return nil, err
		}
		if ok {
			l.Initrds = append(l.Initrds, p)
		}
	}
	l.Initrds = append(l.Initrds, add.initrd...)
	var cmdline []string
	if s, ok := secs[".cmdline"]; ok && s.Size > 0 {
		text, err := readText(f, s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if c := stubCmdline(text); c != "" {
			cmdline = append(cmdline, c)
		}
		l.HasCmdline, l.CmdlineSection = true, ".cmdline"
	}
	if len(add.cmdline) > 0 {
		cmdline = append(cmdline, add.cmdline...)
		l.HasCmdline, l.CmdlineSection = true, ".cmdline"
	}
	l.Cmdline = strings.Join(cmdline, " ")
	return l, nil
}

// openUKI opens the UKI at path and parses its section table; errors name
// the file.
func openUKI(path string) (*os.File, *UKI, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	u, err := ParseUKI(f, fi.Size())
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, u, nil
}

// addons are the parts PE addons add to a UKI's load.
type addons struct {
	ucode, initrd []Part
	cmdline       []string
}

// loadAddons reads the PE addons (*.addon.efi) that systemd-stub would
// apply to the UKI at path (stub.c load_all_addons(), load_addons()): the
// global ones in root's loader/addons/ (when root is not empty), then the
// UKI's own in path's .extra.d/, each directory in file name order. An
// addon whose .uname differs from the UKI's is skipped, as the stub skips
// it; a PE with a .linux section is no addon and is skipped too. Each
// addon contributes its .cmdline (appended to the UKI's), .ucode and
// .initrd. Errors: ErrUnsupported naming the addon for a .dtb or .dtbauto
// section (a devicetree kexec_file_load cannot install), and the parser's.
//
// systemd-stub loads addons through the firmware (LoadImage), which under
// Secure Boot verifies their signatures; kexec-measured cannot, and
// applies every addon it finds: their bytes are measured like the rest.
func loadAddons(path, root, uname string) (*addons, error) {
	dirs := []string{}
	if root != "" {
		dirs = append(dirs, filepath.Join(root, "loader", "addons"))
	}
	dirs = append(dirs, path+".extra.d")
	a := &addons{}
	for _, dir := range dirs {
		des, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		var names []string
		for _, de := range des {
			if hasSuffixFold(de.Name(), ".addon.efi") && de.Type().IsRegular() {
				names = append(names, de.Name())
			}
		}
		slices.Sort(names)
		for _, name := range names {
			if err := a.add(filepath.Join(dir, name), uname); err != nil {
				return nil, err
			}
		}
	}
	return a, nil
}

// add reads one addon.
func (a *addons) add(p, uname string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	u, err := parsePE(f, fi.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	secs, _ := u.Select(-1)
	if _, ok := secs[".linux"]; ok {
		return nil // a UKI, not an addon
	}
	if s, ok := secs[".uname"]; ok && uname != "" {
		own, err := readText(f, s)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if strings.TrimSpace(own) != strings.TrimSpace(uname) {
			return nil
		}
	}
	for _, name := range []string{".dtb", ".dtbauto"} {
		if s, ok := secs[name]; ok && s.Size > 0 {
			return unsupportedf("PE addon %s: section %s: systemd-stub would install the devicetree, and a kexec load cannot", p, name)
		}
	}
	if s, ok := secs[".cmdline"]; ok && s.Size > 0 {
		text, err := readText(f, s)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if c := stubCmdline(text); c != "" {
			a.cmdline = append(a.cmdline, c)
		}
	}
	for _, name := range []string{".ucode", ".initrd"} {
		s, ok := secs[name]
		if !ok || s.Size == 0 {
			continue
		}
		if err := s.check(); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		part := Part{Path: p, Offset: s.Offset, Size: s.Size, Section: name}
		if name == ".ucode" {
			a.ucode = append(a.ucode, part)
		} else {
			a.initrd = append(a.initrd, part)
		}
	}
	return nil
}

// Resolve finds the entry id ("default" or an entry ID) in c and returns
// its load. It is what --entry does for every command that takes it.
// Errors: those of Config.Load, Set.Lookup and Entry.Load.
func Resolve(c Config, id string) (*Load, error) {
	s, err := c.Load()
	if err != nil {
		return nil, err
	}
	e, err := s.Lookup(id)
	if err != nil {
		return nil, err
	}
	return e.Load()
}
