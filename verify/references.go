package verify

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/pcr"
)

// References is the merge of any number of manifests, indexed by digest.
type References struct {
	entries  []Entry
	byDigest map[string][]int // "sha256:<hex>" → indexes into entries
}

// NewReferences merges manifests. An entry that repeats an earlier one
// (same name, kind, segment fields and digests) is dropped. Entries with
// the same digests and different names are all kept: a matching event is
// reported with every name (Match). Two entries that agree in one bank and
// differ in another are an error wrapping ErrManifest naming both: one of
// the manifests is wrong.
func NewReferences(manifests ...Manifest) (*References, error) {
	r := &References{byDigest: map[string][]int{}}
	for _, m := range manifests {
		for _, e := range m.Entries {
			if err := r.add(e); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

func digestKey(h crypto.Hash, sum []byte) string {
	name, _ := pcr.Name(h)
	return name + ":" + hex.EncodeToString(sum)
}

func (r *References) add(e Entry) error {
	seen := map[int]bool{}
	for _, h := range banksOf(e) {
		for _, j := range r.byDigest[digestKey(h, e.Sum(h))] {
			if seen[j] {
				continue
			}
			seen[j] = true
			o := r.entries[j]
			if sameBlock(o, e) {
				return nil
			}
			for _, g := range banksOf(o) {
				if a, b := e.Sum(g), o.Sum(g); a != nil && !bytes.Equal(a, b) {
					name, _ := pcr.Name(h)
					gname, _ := pcr.Name(g)
					return fmt.Errorf("%w: %q (%s) and %q (%s) have the same %s digest but different %s digests",
						ErrManifest, e.Label(), e.Source, o.Label(), o.Source, name, gname)
				}
			}
		}
	}
	r.entries = append(r.entries, e)
	for _, h := range banksOf(e) {
		k := digestKey(h, e.Sum(h))
		r.byDigest[k] = append(r.byDigest[k], len(r.entries)-1)
	}
	return nil
}

// Entries returns the merged entries in the order they were added.
func (r *References) Entries() []Entry { return slices.Clone(r.entries) }

// Match returns the entries whose digests equal sums in every bank both
// have (at least one), and whose kind fits event: kexec-kernel matches
// kernel entries, kexec-cmdline cmdline entries, kexec-initrd initrd and
// segment entries (a component of one segment without padding has the
// digest of that segment). The result is in the order the entries were
// added; nil means UNKNOWN.
func (r *References) Match(event string, sums map[crypto.Hash][]byte) []Entry {
	var hits []int
	for _, h := range pcr.Banks() {
		s, ok := sums[h]
		if !ok {
			continue
		}
		for _, j := range r.byDigest[digestKey(h, s)] {
			if e := r.entries[j]; !slices.Contains(hits, j) && kindFits(event, e.Kind) && agrees(e, sums) {
				hits = append(hits, j)
			}
		}
	}
	slices.Sort(hits)
	var out []Entry
	for _, j := range hits {
		out = append(out, r.entries[j])
	}
	return out
}

// agrees reports whether every bank of sums that e has a digest for holds
// the same digest.
func agrees(e Entry, sums map[crypto.Hash][]byte) bool {
	common := 0
	for h, s := range sums {
		if d := e.Sum(h); d != nil {
			if !bytes.Equal(d, s) {
				return false
			}
			common++
		}
	}
	return common > 0
}

func kindFits(event, kind string) bool {
	switch event {
	case eventlog.EventKernel:
		return kind == KindKernel
	case eventlog.EventInitrd:
		return kind == KindInitrd || kind == KindSegment
	case eventlog.EventCmdline:
		return kind == KindCmdline
	}
	return false
}

// Names returns the distinct labels of entries, in order, as a match is
// printed: "fw.cpio" or, for duplicates, "fw.cpio = microcode.cpio".
func Names(entries []Entry) string {
	var names []string
	for _, e := range entries {
		if l := e.Label(); !slices.Contains(names, l) {
			names = append(names, l)
		}
	}
	return strings.Join(names, " = ")
}

// LoadReferences reads and merges the manifests at paths. A path that is a
// directory contributes every *.json file in it (not in subdirectories),
// in name order. Errors name the file.
func LoadReferences(paths []string) (*References, error) {
	var ms []Manifest
	for _, p := range paths {
		files := []string{p}
		if fi, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("verify: reference: %w", err)
		} else if fi.IsDir() {
			files, err = filepath.Glob(filepath.Join(p, "*.json"))
			if err != nil {
				return nil, fmt.Errorf("verify: reference directory %s: %w", p, err)
			}
			slices.Sort(files)
		}
		for _, f := range files {
			m, err := readManifest(f)
			if err != nil {
				return nil, err
			}
			ms = append(ms, m)
		}
	}
	return NewReferences(ms...)
}

func readManifest(path string) (Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return Manifest{}, fmt.Errorf("verify: reference: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxManifestSize+1))
	if err != nil {
		return Manifest{}, fmt.Errorf("verify: reference: %s: %w", path, err)
	}
	return ParseManifest(data, path)
}
