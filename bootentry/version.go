package bootentry

import "cmp"

// CompareVersions compares two version strings the way systemd's
// strverscmp_improved() does (src/fundamental/string-util-fundamental.c),
// which is what systemd-boot and bootctl sort boot entries with: negative
// if a is older than b, positive if newer, 0 if equivalent.
//
// The strings are split into numeric and alphabetic segments, each
// optionally prefixed by '~' (a pre-release: older than anything), '-'
// (version/release separator), '^' (a patched release) or '.' (a point
// release); any other character only separates segments. Numeric segments
// compare by value (leading zeros dropped) and are newer than alphabetic
// ones; a string with more segments is newer, except for '~'.
func CompareVersions(a, b string) int {
	i, j := 0, 0
	at := func(s string, k int) byte {
		if k < len(s) {
			return s[k]
		}
		return 0
	}
	for {
		for i < len(a) && !isVersionChar(a[i]) {
			i++
		}
		for j < len(b) && !isVersionChar(b[j]) {
			j++
		}
		ca, cb := at(a, i), at(b, j)
		if ca == '~' || cb == '~' {
			if r := cmpBool(ca != '~', cb != '~'); r != 0 {
				return r
			}
			i, j = i+1, j+1
			ca, cb = at(a, i), at(b, j)
		}
		if ca == 0 || cb == 0 {
			return cmp.Compare(ca, cb)
		}
		for _, sep := range []byte{'-', '^', '.'} {
			if ca == sep || cb == sep {
				if r := cmpBool(ca != sep, cb != sep); r != 0 {
					return r
				}
				i, j = i+1, j+1
				ca, cb = at(a, i), at(b, j)
			}
		}
		if isDigit(ca) || isDigit(cb) {
			ea, eb := i, j
			for ea < len(a) && isDigit(a[ea]) {
				ea++
			}
			for eb < len(b) && isDigit(b[eb]) {
				eb++
			}
			if r := cmpBool(ea != i, eb != j); r != 0 {
				return r
			}
			for i < ea && a[i] == '0' {
				i++
			}
			for j < eb && b[j] == '0' {
				j++
			}
			if r := cmp.Compare(ea-i, eb-j); r != 0 {
				return r
			}
			if r := cmp.Compare(a[i:ea], b[j:eb]); r != 0 {
				return r
			}
			i, j = ea, eb
			continue
		}
		ea, eb := i, j
		for ea < len(a) && isAlpha(a[ea]) {
			ea++
		}
		for eb < len(b) && isAlpha(b[eb]) {
			eb++
		}
		n := min(ea-i, eb-j)
		if r := cmp.Compare(a[i:i+n], b[j:j+n]); r != 0 {
			return r
		}
		if r := cmp.Compare(ea-i, eb-j); r != 0 {
			return r
		}
		i, j = ea, eb
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isVersionChar(c byte) bool {
	return isDigit(c) || isAlpha(c) || c == '~' || c == '-' || c == '^' || c == '.'
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
