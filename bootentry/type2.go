package bootentry

import (
	"fmt"
	"path/filepath"
	"strconv"
)

// maxProfiles is systemd's UNIFIED_PROFILES_MAX.
const maxProfiles = 256

// addType2 adds root/EFI/Linux/*.efi: one entry per profile of each UKI
// that has an .osrel section (bootspec.c boot_entries_find_unified() and
// boot_entry_load_unified()).
func (s *Set) addType2(root string, src Source, seen map[fileID]bool) error {
	dir := filepath.Join(root, "EFI", "Linux")
	return eachFile(dir, ".efi", seen, func(p string) {
		es, err := type2Entries(root, p)
		if err != nil {
			s.Skipped = append(s.Skipped, err)
			return
		}
		for _, e := range es {
			e.Source = src
		}
		s.Entries = append(s.Entries, es...)
	})
}

// type2Entries reads the entries of the UKI at p below root.
func type2Entries(root, p string) ([]*Entry, error) {
	f, u, err := openUKI(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return nil, err
	}
	id, left, done := splitTries(filepath.Base(p))
	if !validEntryName(id) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidName, p)
	}
	var out []*Entry
	for prof := 0; prof < maxProfiles; prof++ {
		secs, err := u.Select(prof)
		if err != nil {
			break
		}
		text := map[string]string{}
		for _, name := range []string{".osrel", ".profile", ".cmdline"} {
			sec, ok := secs[name]
			if !ok || sec.Size == 0 {
				continue
			}
			if text[name], err = readText(f, sec); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
		}
		if text[".osrel"] == "" {
			return nil, fmt.Errorf("%s: the unified kernel image lacks .osrel data for profile @%d", p, prof)
		}
		osrel := parseEnv(text[".osrel"])
		name := firstOf(osrel["PRETTY_NAME"], osrel["IMAGE_ID"], osrel["NAME"], osrel["ID"])
		if name == "" {
			return nil, fmt.Errorf("%s: missing fields in the .osrel data of profile @%d", p, prof)
		}
		pr := uint(prof)
		e := &Entry{
			Type: Type2, ID: id, Path: p, Root: root, Linux: "/" + filepath.ToSlash(rel),
			Title: name, SortKey: firstOf(osrel["IMAGE_ID"], osrel["ID"]),
			Version:   firstOf(osrel["IMAGE_VERSION"], osrel["VERSION"], osrel["VERSION_ID"], osrel["BUILD_ID"]),
			TriesLeft: left, TriesDone: done, Profile: &pr,
		}
		if c := trimSpaceC(text[".cmdline"]); c != "" {
			e.Options = []string{c}
		}
		var profID, profTitle string
		if text[".profile"] != "" {
			pe := parseEnv(text[".profile"])
			profID, profTitle = pe["ID"], pe["TITLE"]
		}
		if profID != "" || prof > 0 {
			e.idWithoutProfile = id
			if profID != "" {
				e.ID = id + "@" + profID
			} else {
				e.ID = id + "@" + strconv.Itoa(prof)
			}
		}
		switch {
		case profTitle != "":
			e.Title = name + " (" + profTitle + ")"
		case profID != "":
			e.Title = name + " (" + profID + ")"
		case prof > 0:
			e.Title = fmt.Sprintf("%s (@%d)", name, prof)
		}
		out = append(out, e)
	}
	return out, nil
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// trimSpaceC strips C whitespace (" \t\n\r") at both ends, as bootspec.c's
// trim_cmdline() does.
func trimSpaceC(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t' || s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}
