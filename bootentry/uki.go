package bootentry

import (
	"bytes"
	"debug/pe"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxSections bounds the section table (systemd's pe_load_sections refuses
// more than a few hundred; a UKI has about ten per profile).
const maxSections = 1024

// maxTextSection bounds the text sections we read (.osrel, .cmdline,
// .profile, .uname): bootspec.c's PE_SECTION_SIZE_MAX.
const maxTextSection = 4 << 20

// Errors of the UKI parser; wrapped with the file name.
var (
	ErrNotPE          = errors.New("bootentry: not a PE image")
	ErrNotUKI         = errors.New("bootentry: not a unified kernel image (no .linux section)")
	ErrNoProfile      = errors.New("bootentry: no such UKI profile")
	ErrSectionTrunc   = errors.New("bootentry: PE section extends past the end of the file")
	ErrSectionVirtual = errors.New("bootentry: PE section's VirtualSize exceeds its SizeOfRawData")
)

// Section is one PE section of a UKI.
type Section struct {
	Name string
	// Offset is the section's PointerToRawData and Size its VirtualSize:
	// systemd-stub uses the VirtualSize bytes at the section's address
	// (PeSectionVector.memory_size), so Size bytes from Offset of the file
	// are the section's data as long as Size <= RawSize.
	Offset, Size int64
	RawSize      int64 // SizeOfRawData (rounded up to the file alignment)
	// Profile is -1 for the base sections (before the first .profile
	// section), otherwise the number of the .profile section this one
	// follows (the .profile section itself included).
	Profile int
}

// UKI is a unified kernel image's section table.
type UKI struct {
	Sections []Section // in table order
	Profiles int       // the number of .profile sections
	size     int64
}

// ParseUKI reads the section table of the PE image r of size bytes with
// the standard library's debug/pe. Errors: ErrNotPE, ErrNotUKI (a PE
// without .linux, such as a plain EFI-stub kernel), ErrSectionTrunc.
func ParseUKI(r io.ReaderAt, size int64) (*UKI, error) {
	u, err := parsePE(r, size)
	if err != nil {
		return nil, err
	}
	for _, s := range u.Sections {
		if s.Name == ".linux" {
			return u, nil
		}
	}
	return nil, ErrNotUKI
}

// parsePE reads the section table of any PE image (a UKI or an addon).
func parsePE(r io.ReaderAt, size int64) (*UKI, error) {
	if !IsPE(r) {
		return nil, ErrNotPE
	}
	f, err := pe.NewFile(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotPE, err)
	}
	if len(f.Sections) > maxSections {
		return nil, fmt.Errorf("%w: %d sections", ErrNotPE, len(f.Sections))
	}
	u := &UKI{size: size}
	profile := -1
	for _, s := range f.Sections {
		if s.Name == ".profile" {
			profile++
			u.Profiles++
		}
		sec := Section{Name: s.Name, Offset: int64(s.Offset), Size: int64(s.VirtualSize), RawSize: int64(s.Size), Profile: profile}
		if sec.RawSize > 0 && sec.Offset+sec.RawSize > size {
			return nil, fmt.Errorf("%w: %s at %d, %d bytes, file of %d bytes", ErrSectionTrunc, s.Name, sec.Offset, sec.RawSize, size)
		}
		u.Sections = append(u.Sections, sec)
	}
	return u, nil
}

// IsPE reports whether r starts with the DOS magic "MZ" and a PE header.
func IsPE(r io.ReaderAt) bool {
	var dos [64]byte
	if _, err := r.ReadAt(dos[:], 0); err != nil || dos[0] != 'M' || dos[1] != 'Z' {
		return false
	}
	off := int64(dos[60]) | int64(dos[61])<<8 | int64(dos[62])<<16 | int64(dos[63])<<24
	var sig [4]byte
	if _, err := r.ReadAt(sig[:], off); err != nil {
		return false
	}
	return sig == [4]byte{'P', 'E', 0, 0}
}

// Select returns the sections of profile (-1 or 0 for a UKI without
// profiles: the base), by name, as systemd-stub's find_sections() and
// pe_locate_profile_sections() choose them: the base sections, overridden
// by the sections of the profile's part of the table; a section of
// VirtualSize 0 in the profile masks the base one. Profile 0 exists
// implicitly. Errors: ErrNoProfile.
func (u *UKI) Select(profile int) (map[string]Section, error) {
	if profile >= 0 && profile >= max(u.Profiles, 1) {
		return nil, fmt.Errorf("%w: @%d (the image has %d profile(s))", ErrNoProfile, profile, max(u.Profiles, 1))
	}
	out := map[string]Section{}
	for _, s := range u.Sections {
		if s.Profile == -1 {
			if _, dup := out[s.Name]; !dup {
				out[s.Name] = s
			}
		}
	}
	if profile < 0 {
		return out, nil
	}
	seen := map[string]bool{}
	for _, s := range u.Sections {
		if s.Profile != profile || seen[s.Name] {
			continue
		}
		seen[s.Name] = true
		if s.Size == 0 {
			delete(out, s.Name)
			continue
		}
		out[s.Name] = s
	}
	return out, nil
}

// readText reads a text section (up to the first NUL), bounded by
// maxTextSection.
func readText(r io.ReaderAt, s Section) (string, error) {
	if s.Size > maxTextSection {
		return "", fmt.Errorf("section %s: %d bytes, more than %d", s.Name, s.Size, maxTextSection)
	}
	if err := s.check(); err != nil {
		return "", err
	}
	b := make([]byte, s.Size)
	if _, err := r.ReadAt(b, s.Offset); err != nil {
		return "", fmt.Errorf("section %s: %w", s.Name, err)
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b), nil
}

// check refuses a section whose VirtualSize is larger than its raw data:
// systemd-stub would see zeros after the raw bytes, which are not in the
// file, so the file range would not be the loaded bytes.
func (s Section) check() error {
	if s.Size > s.RawSize {
		return fmt.Errorf("%w: %s has VirtualSize %d and SizeOfRawData %d", ErrSectionVirtual, s.Name, s.Size, s.RawSize)
	}
	return nil
}

// stubCmdline is what systemd-stub makes of a .cmdline section
// (mangle_stub_cmdline): control characters become spaces, leading and
// trailing spaces go.
func stubCmdline(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < ' ' {
			b[i] = ' '
		}
	}
	return strings.Trim(string(b), " ")
}

// parseEnv reads os-release(5) style KEY=VALUE lines (the .osrel and
// .profile sections), unquoting single and double quotes.
func parseEnv(text string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		m[strings.TrimSpace(k)] = v
	}
	return m
}
