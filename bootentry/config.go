package bootentry

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf16"
)

// DefaultEFIVars is where efivarfs is mounted.
const DefaultEFIVars = "/sys/firmware/efi/efivars"

// loaderGUID is the vendor GUID of systemd-boot's variables (the Boot
// Loader Interface).
const loaderGUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"

// Config says where to look. Its zero value finds nothing: set ESP and/or
// XBOOTLDR (Find fills them the way bootctl does).
type Config struct {
	ESP      string // the EFI System Partition's mount point; "" for none
	XBOOTLDR string // the Extended Boot Loader partition's; "" for none
	// EFIVars is the efivarfs directory to read LoaderEntryDefault and the
	// other entry pointers from; "" reads none (as bootctl when not booted
	// with EFI). Commands pass DefaultEFIVars.
	EFIVars string
}

// LoaderConf is what loader/loader.conf says about the default entry.
type LoaderConf struct {
	Default   string // the "default" glob, or "@saved"
	Preferred string // the "preferred" glob (systemd 258+)
}

// Set is the entries of a Config, sorted as systemd-boot and bootctl list
// them, and the entry pointers that choose the default.
type Set struct {
	Entries []*Entry
	// Skipped are the entry files that systemd ignores because they do not
	// parse (a bad name, a line too long), with the reason.
	Skipped  []error
	Conf     LoaderConf
	OneShot  string // LoaderEntryOneShot
	Pref     string // LoaderEntryPreferred
	EFIDef   string // LoaderEntryDefault
	Selected string // LoaderEntrySelected (what "@saved" means)
}

// Load reads loader.conf of the ESP, the type #1 and type #2 entries of the
// ESP and then of XBOOTLDR (bootspec.c boot_config_load()), the entry
// pointers from EFIVars, and sorts the entries (boot_entry_compare). A file
// seen twice (the same inode through a bind mount or symlinked directory)
// counts once. Entry files that fail to parse are skipped as bootctl skips
// them and listed in Set.Skipped. Errors: reading a directory or loader.conf
// fails for a reason other than its absence.
func (c Config) Load() (*Set, error) {
	s := &Set{}
	seen := map[fileID]bool{}
	if c.ESP != "" {
		conf, err := readLoaderConf(filepath.Join(c.ESP, "loader", "loader.conf"))
		if err != nil {
			return nil, err
		}
		s.Conf = conf
	}
	for _, root := range []struct {
		dir string
		src Source
	}{{c.ESP, SourceESP}, {c.XBOOTLDR, SourceXBOOTLDR}} {
		if root.dir == "" {
			continue
		}
		if err := s.addType1(root.dir, root.src, seen); err != nil {
			return nil, err
		}
		if err := s.addType2(root.dir, root.src, seen); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(s.Entries, compareEntries)
	if c.EFIVars != "" {
		s.OneShot = readEFIString(c.EFIVars, "LoaderEntryOneShot")
		s.Pref = readEFIString(c.EFIVars, "LoaderEntryPreferred")
		s.EFIDef = readEFIString(c.EFIVars, "LoaderEntryDefault")
		s.Selected = readEFIString(c.EFIVars, "LoaderEntrySelected")
	}
	return s, nil
}

// addType1 adds root/loader/entries/*.conf.
func (s *Set) addType1(root string, src Source, seen map[fileID]bool) error {
	dir := filepath.Join(root, "loader", "entries")
	return eachFile(dir, ".conf", seen, func(p string) {
		data, err := os.ReadFile(p)
		if err != nil {
			s.Skipped = append(s.Skipped, err)
			return
		}
		e, err := ParseType1(filepath.Base(p), data)
		if err != nil {
			s.Skipped = append(s.Skipped, fmt.Errorf("%s: %w", p, err))
			return
		}
		e.Source, e.Path, e.Root = src, p, root
		s.Entries = append(s.Entries, e)
	})
}

// eachFile calls f for every regular file (not a symlink) in dir whose name
// ends in suffix (case-insensitively), in name order, once per inode. A
// missing dir has no files.
func eachFile(dir, suffix string, seen map[fileID]bool, f func(path string)) error {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bootentry: reading %s: %w", dir, err)
	}
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".") || !hasSuffixFold(name, suffix) || !de.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, name)
		id, ok := statID(p)
		if ok && seen[id] {
			continue
		}
		if ok {
			seen[id] = true
		}
		f(p)
	}
	return nil
}

// readLoaderConf reads the default and preferred keys of loader.conf
// (bootspec.c boot_loader_read_conf()); a missing file is empty.
func readLoaderConf(p string) (LoaderConf, error) {
	var c LoaderConf
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("bootentry: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.Trim(line, whitespace)
		if line == "" || line[0] == '#' {
			continue
		}
		key, val := splitKey(line)
		if val == "" {
			continue
		}
		switch key {
		case "default":
			c.Default = val
		case "preferred":
			c.Preferred = val
		}
	}
	return c, nil
}

// readEFIString reads a systemd-boot variable from efivarfs: 4 bytes of
// attributes, then UTF-16LE text with an optional terminating NUL. A missing
// or malformed variable is "".
func readEFIString(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name+"-"+loaderGUID))
	if err != nil || len(b) < 4 || (len(b)-4)%2 != 0 {
		return ""
	}
	b = b[4:]
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := uint16(b[i]) | uint16(b[i+1])<<8
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}

// compareEntries is bootspec.c's boot_entry_compare() (which mimics
// systemd-boot's): entries with no tries left go last; entries with a
// sort-key go before those without; two entries with sort keys order by
// sort-key, then machine-id, then version (newest first, CompareVersions);
// then by ID, newest first (CompareVersions), and the profiles of one UKI
// by profile number.
func compareEntries(a, b *Entry) int {
	if r := cmpBool(a.TriesLeft == 0, b.TriesLeft == 0); r != 0 {
		return r
	}
	if r := cmpBool(a.SortKey == "", b.SortKey == ""); r != 0 {
		return r
	}
	if a.SortKey != "" && b.SortKey != "" {
		if r := strings.Compare(a.SortKey, b.SortKey); r != 0 {
			return r
		}
		if r := strings.Compare(a.MachineID, b.MachineID); r != 0 {
			return r
		}
		if r := -CompareVersions(a.Version, b.Version); r != 0 {
			return r
		}
	}
	ida, idb := a.ID, b.ID
	if a.idWithoutProfile != "" {
		ida = a.idWithoutProfile
	}
	if b.idWithoutProfile != "" {
		idb = b.idWithoutProfile
	}
	if r := -CompareVersions(ida, idb); r != 0 {
		return r
	}
	if a.idWithoutProfile != "" && b.idWithoutProfile != "" && a.Profile != nil && b.Profile != nil {
		return cmp.Compare(int(*a.Profile), int(*b.Profile))
	}
	return 0
}

// find returns the first entry whose ID matches the glob pattern, case
// insensitively (bootspec.c boot_config_find(): fnmatch FNM_CASEFOLD);
// "@saved" means LoaderEntrySelected, other "@" words match nothing.
func (s *Set) find(pattern string) *Entry {
	if pattern == "" {
		return nil
	}
	if pattern[0] == '@' {
		if !strings.EqualFold(pattern, "@saved") || s.Selected == "" {
			return nil
		}
		pattern = s.Selected
	}
	pat := strings.ToLower(pattern)
	for _, e := range s.Entries {
		if ok, err := path.Match(pat, strings.ToLower(e.ID)); err == nil && ok {
			return e
		}
	}
	return nil
}

// Default returns the entry systemd would boot, and why: the entry the
// LoaderEntryOneShot, LoaderEntryPreferred or LoaderEntryDefault variable
// matches, else loader.conf's preferred, else its default pattern, else
// the first entry in sort order (bootspec.c boot_entries_select_default(),
// which systemctl kexec uses). Errors: ErrNoEntries.
func (s *Set) Default() (*Entry, string, error) {
	for _, p := range []struct{ pattern, why string }{
		{s.OneShot, "the LoaderEntryOneShot EFI variable"},
		{s.Pref, "the LoaderEntryPreferred EFI variable"},
		{s.EFIDef, "the LoaderEntryDefault EFI variable"},
		{s.Conf.Preferred, "loader.conf's preferred"},
		{s.Conf.Default, "loader.conf's default"},
	} {
		if e := s.find(p.pattern); e != nil {
			return e, fmt.Sprintf("matched by %s %q", p.why, p.pattern), nil
		}
	}
	if len(s.Entries) == 0 {
		return nil, "", ErrNoEntries
	}
	return s.Entries[0], "the first entry in sort order", nil
}

// Lookup returns the entry named id: "default" is Default, anything else
// an entry ID compared case-insensitively, with or without its ".conf"
// suffix (bootspec.c boot_config_find_entry() also accepts the old ID).
// Errors: ErrNoEntries, or an *UnknownEntryError listing the IDs.
func (s *Set) Lookup(id string) (*Entry, error) {
	if id == "default" {
		e, _, err := s.Default()
		return e, err
	}
	for _, e := range s.Entries {
		if strings.EqualFold(e.ID, id) || (e.Type == Type1 && strings.EqualFold(strings.TrimSuffix(strings.ToLower(e.ID), ".conf"), id)) {
			return e, nil
		}
	}
	ids := make([]string, len(s.Entries))
	for i, e := range s.Entries {
		ids[i] = e.ID
	}
	return nil, &UnknownEntryError{ID: id, Known: ids, Skipped: s.Skipped}
}

// ErrNoEntries means no boot entry was found.
var ErrNoEntries = errors.New("bootentry: no boot loader entries found")

// UnknownEntryError is an --entry=ID that names no entry.
type UnknownEntryError struct {
	ID      string
	Known   []string
	Skipped []error
}

func (e *UnknownEntryError) Error() string {
	s := fmt.Sprintf("bootentry: no boot entry %q (entries: %s)", e.ID, strings.Join(e.Known, ", "))
	for _, sk := range e.Skipped {
		s += "; skipped " + sk.Error()
	}
	return s
}
