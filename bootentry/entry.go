// Package bootentry finds the boot entries that systemd-boot and bootctl
// see (Boot Loader Specification type #1 entries, loader/entries/*.conf,
// and type #2 entries, unified kernel images in EFI/Linux/*.efi), picks the
// default entry the way systemd does, and turns an entry or a UKI into what
// a kexec load needs: the kernel, the initrd components in order and the
// command line, each as a file or a byte range of one (a PE section).
//
// The rules follow systemd's own code, cited at each function:
// src/shared/bootspec.c (bootctl, systemctl kexec), src/boot/boot.c
// (systemd-boot), src/boot/stub.c (systemd-stub) and
// src/fundamental/string-util-fundamental.c. docs/entries.md describes them
// for users.
package bootentry

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// Type is the kind of a boot entry.
type Type string

const (
	Type1 Type = "type1" // a loader/entries/*.conf file
	Type2 Type = "type2" // a unified kernel image in EFI/Linux/
)

// Source says which partition an entry was found on.
type Source string

const (
	SourceESP      Source = "esp"
	SourceXBOOTLDR Source = "xbootldr"
)

// Entry is one boot entry. Paths in Linux, Initrd and the other path keys
// are absolute within Root, as bootspec.c normalises them.
type Entry struct {
	Type   Type
	Source Source
	ID     string // the file name without the boot counting suffix, e.g. "debian-6.1.conf"
	Path   string // the entry file (the UKI for type #2)
	Root   string // the partition's mount point (or the --esp-path/--boot-path directory)

	Title, SortKey, Version, MachineID, Architecture string

	Linux   string
	Initrd  []string
	Options []string // one per options line (type #2: the .cmdline text)

	// Keys we parse but cannot honour in a kexec load: loading an entry
	// that sets one fails with an error naming it.
	EFI, UKI, UKIURL, Devicetree string
	DevicetreeOverlay            []string
	Profile                      *uint // type #1 "profile"; type #2: the UKI profile of this entry

	// TriesLeft and TriesDone are the boot counters of the file name
	// ("+LEFT-DONE"); -1 when absent.
	TriesLeft, TriesDone int

	// Warnings are the lines systemd ignores with a warning.
	Warnings []string

	// idWithoutProfile is the UKI's ID for a profile entry ("x.efi" of "x.efi@1").
	idWithoutProfile string
}

// Cmdline is the entry's command line: its options lines joined by single
// spaces, as bootspec.c (strv_join(options, " ")) and systemd-boot do.
func (e *Entry) Cmdline() string { return strings.Join(e.Options, " ") }

// maxLine is systemd's LONG_LINE_MAX: a longer line makes the file invalid.
const maxLine = 1 << 20

// ErrInvalidName is a loader entry file name that systemd refuses
// (efi_loader_entry_name_valid).
var ErrInvalidName = errors.New("bootentry: invalid loader entry name")

// ParseType1 parses a type #1 entry file named fname (its base name) with
// contents data, the way bootspec.c's boot_entry_load_type1() does: lines
// are stripped; empty lines and lines starting with '#' are skipped; the
// first word is the key, the rest (after the separating whitespace) the
// value; a key without value is ignored except options and
// devicetree-overlay; options and initrd may repeat; path values are made
// absolute and simplified, and a path with a trailing slash or a ".."
// component is ignored; unknown keys are ignored. Ignored lines are listed
// in Entry.Warnings. Errors: ErrInvalidName, a line longer than 1 MiB, a
// profile that is not a number.
func ParseType1(fname string, data []byte) (*Entry, error) {
	id, left, done := splitTries(fname)
	if !validEntryName(id) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidName, fname)
	}
	if !hasSuffixFold(id, ".conf") {
		return nil, fmt.Errorf("%w: %q does not end in .conf", ErrInvalidName, fname)
	}
	e := &Entry{Type: Type1, ID: id, TriesLeft: left, TriesDone: done}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxLine)
	for n := 1; sc.Scan(); n++ {
		line := strings.Trim(sc.Text(), whitespace)
		if line == "" || line[0] == '#' {
			continue
		}
		key, val := splitKey(line)
		warn := func(format string, a ...any) {
			e.Warnings = append(e.Warnings, fmt.Sprintf("line %d: ", n)+fmt.Sprintf(format, a...))
		}
		if val == "" {
			if key != "options" && key != "devicetree-overlay" {
				warn("field %q without value, ignored", key)
			}
			continue
		}
		onePath := func(dst *string) {
			if p, ok := mangle(val); ok {
				*dst = p
			} else {
				warn("path in field %q is not normalized or names a directory, ignored: %s", key, val)
			}
		}
		switch key {
		case "title":
			e.Title = val
		case "sort-key":
			e.SortKey = val
		case "version":
			e.Version = val
		case "machine-id":
			e.MachineID = val
		case "architecture":
			e.Architecture = val
		case "options":
			e.Options = append(e.Options, val)
		case "linux":
			onePath(&e.Linux)
		case "efi":
			onePath(&e.EFI)
		case "uki":
			onePath(&e.UKI)
		case "uki-url":
			e.UKIURL = val
		case "profile":
			p, err := strconv.ParseUint(val, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%s: line %d: profile %q: not a number", fname, n, val)
			}
			u := uint(p)
			e.Profile = &u
		case "initrd":
			var p string
			onePath(&p)
			if p != "" {
				e.Initrd = append(e.Initrd, p)
			}
		case "devicetree":
			onePath(&e.Devicetree)
		case "devicetree-overlay":
			for _, f := range strings.Fields(val) {
				if p, ok := mangle(f); ok {
					e.DevicetreeOverlay = append(e.DevicetreeOverlay, p)
				}
			}
		default:
			warn("unknown key %q, ignored", key)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", fname, err)
	}
	return e, nil
}

const whitespace = " \t\n\r"

// splitKey splits a stripped line into its first word and the rest after
// the whitespace that follows it (extract_first_word with coalesced
// separators).
func splitKey(line string) (key, val string) {
	i := strings.IndexAny(line, whitespace)
	if i < 0 {
		return line, ""
	}
	return line[:i], strings.TrimLeft(line[i:], whitespace)
}

// mangle normalises a path value as bootspec.c's mangle_path(): made
// absolute, repeated and "." components dropped; a trailing slash or a ".."
// component makes it invalid.
func mangle(p string) (string, bool) {
	if strings.HasSuffix(p, "/") {
		return "", false
	}
	var parts []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return "", false
		}
		parts = append(parts, c)
	}
	if len(parts) == 0 {
		return "", false
	}
	return "/" + path.Join(parts...), true
}

// splitTries strips a boot counting suffix "+LEFT[-DONE]" that ends right
// before the last '.' of fname (bootspec.c boot_filename_extract_tries()):
// "a+3-1.conf" is "a.conf" with 3 tries left and 1 done. Absent counters
// are -1. A counter above INT_MAX leaves the name unchanged.
func splitTries(fname string) (stripped string, left, done int) {
	dot := strings.LastIndexByte(fname, '.')
	if dot < 0 {
		return fname, -1, -1
	}
	plus := strings.LastIndexByte(fname[:dot], '+')
	if plus < 0 {
		return fname, -1, -1
	}
	counters := fname[plus+1 : dot]
	l, d, hasDone := strings.Cut(counters, "-")
	left, ok := parseTries(l)
	if !ok {
		return fname, -1, -1
	}
	done = -1
	if hasDone {
		if done, ok = parseTries(d); !ok {
			return fname, -1, -1
		}
	}
	return fname[:plus] + fname[dot:], left, done
}

func parseTries(s string) (int, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

// validEntryName is efi_loader_entry_name_valid(): a valid file name of
// letters, digits and "+-_.".
func validEntryName(s string) bool {
	if s == "" || len(s) > 255 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) && !isAlpha(c) && !strings.ContainsRune("+-_.", rune(c)) {
			return false
		}
	}
	return true
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}
