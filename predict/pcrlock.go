package predict

import (
	"bytes"
	"cmp"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/pcr"
)

// ComponentName is the systemd-pcrlock component that the records of a
// kexec load belong to. systemd-pcrlock orders components by name
// (strcmp) and, by default (--location=760-:940-), treats a component
// named at or after "760-" that is not yet in the event log as "not
// reached yet" and predicts the values after every component up to
// "940-". 900 puts the load after the boot's own components (710
// kernel-cmdline and 720 kernel-initrd on PCR 9, 750-850 on PCRs 11 and
// 15) and inside that window. See docs/predict.md.
const ComponentName = "900-kexec-measured"

// DefaultKeep is how many planned loads a component directory keeps as
// variants: this kernel and the previous one.
const DefaultKeep = 2

// Suffixes systemd-pcrlock reads (systemd.pcrlock(5)): a component file,
// and a component directory whose .pcrlock files are its variants.
const (
	FileSuffix = ".pcrlock"
	DirSuffix  = ".pcrlock.d"
)

// ErrVariant reports a variant name that cannot be a file name, or a
// variant file that kexec-measured did not write.
var ErrVariant = errors.New("predict: bad variant")

// componentFile is a .pcrlock file: systemd-pcrlock reads "records" (a
// subset of TCG CEL-JSON: pcr and digests) and ignores other keys, where we
// keep what --keylime needs to list every variant's value.
type componentFile struct {
	Records       []componentRecord `json:"records"`
	KexecMeasured *variantInfo      `json:"kexecMeasured,omitempty"`
}

type componentRecord struct {
	PCR     int               `json:"pcr"`
	Digests []eventlog.Digest `json:"digests"`
}

// variantInfo is our note in a component file: the value predicted when it
// was written.
type variantInfo struct {
	Variant string            `json:"variant,omitempty"`
	PCR     int               `json:"pcr"`
	Start   Source            `json:"start"`
	Values  map[string]string `json:"values"`
}

// Component returns the systemd-pcrlock component of p: one record per
// event of the earlier loads that p's log start knew (Start.History), then
// one per planned event, each with a digest in every bank of p. variant is
// noted in the file for --keylime (empty for a plain component file).
func Component(p *Prediction, variant string) ([]byte, error) {
	f := componentFile{Records: []componentRecord{}}
	for _, rec := range p.Start.History {
		f.Records = append(f.Records, componentRecord{PCR: rec.PCR, Digests: rec.Digests})
	}
	for _, ev := range p.Events {
		r := componentRecord{PCR: p.PCR}
		for _, h := range p.Banks {
			name, err := pcr.Name(h)
			if err != nil {
				return nil, fmt.Errorf("predict: %w", err)
			}
			r.Digests = append(r.Digests, eventlog.Digest{HashAlg: name, Digest: hex.EncodeToString(ev.Sums[h])})
		}
		f.Records = append(f.Records, r)
	}
	info := &variantInfo{Variant: variant, PCR: p.PCR, Start: p.Start.Source, Values: map[string]string{}}
	for _, h := range p.Banks {
		name, _ := pcr.Name(h)
		info.Values[name] = hex.EncodeToString(p.Values[h])
	}
	f.KexecMeasured = info
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f); err != nil {
		return nil, fmt.Errorf("predict: encoding the component: %w", err)
	}
	return b.Bytes(), nil
}

// Variant is one planned load kept in a component directory.
type Variant struct {
	Name   string // the file name without .pcrlock
	Path   string
	PCR    int
	Values map[crypto.Hash][]byte // the PCR values predicted when it was written
}

// Write writes p's component to path, creating missing parent
// directories. A path ending in FileSuffix is one component file,
// replaced; then variant must be empty and the result is that file. A path
// ending in DirSuffix is a component directory: the component is written
// as variant.pcrlock in it, and the variants beyond the keep newest
// (counting this one) are removed. It returns the variants now kept,
// newest first. Files are written to a temporary name and renamed, so
// systemd-pcrlock never reads half a file.
func Write(path, variant string, keep int, p *Prediction) ([]Variant, error) {
	switch {
	case strings.HasSuffix(path, DirSuffix):
		if err := CheckVariantName(variant); err != nil {
			return nil, err
		}
		if keep < 1 {
			return nil, fmt.Errorf("predict: keeping %d variants: at least 1 (the planned load)", keep)
		}
		b, err := Component(p, variant)
		if err != nil {
			return nil, err
		}
		file := filepath.Join(path, variant+FileSuffix)
		if err := writeAtomic(file, b); err != nil {
			return nil, err
		}
		vs, err := ReadVariants(path)
		if err != nil {
			return nil, err
		}
		// The file just written is the newest, whatever the clock's
		// resolution says.
		i := slices.IndexFunc(vs, func(v Variant) bool { return v.Path == file })
		if i > 0 {
			v := vs[i]
			vs = append(vs[:i], vs[i+1:]...)
			vs = append([]Variant{v}, vs...)
		}
		for _, old := range vs[min(keep, len(vs)):] {
			if err := os.Remove(old.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("predict: removing the old variant %s: %w", old.Path, err)
			}
		}
		return vs[:min(keep, len(vs))], nil
	case strings.HasSuffix(path, FileSuffix):
		if variant != "" {
			return nil, fmt.Errorf("%w: %s is one component file; variants need a %s directory", ErrVariant, path, DirSuffix)
		}
		b, err := Component(p, "")
		if err != nil {
			return nil, err
		}
		if err := writeAtomic(path, b); err != nil {
			return nil, err
		}
		v, err := readVariant(path)
		if err != nil {
			return nil, err
		}
		return []Variant{v}, nil
	}
	return nil, fmt.Errorf("predict: %s: a systemd-pcrlock component is a file ending in %s or a directory ending in %s (systemd-pcrlock ignores other names)", path, FileSuffix, DirSuffix)
}

// ReadVariants reads the variants of a component directory written by
// Write, newest (by modification time) first. A .pcrlock file in it that
// kexec-measured did not write gives an error wrapping ErrVariant; a
// missing directory gives no variants.
func ReadVariants(dir string) ([]Variant, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("predict: reading the component directory: %w", err)
	}
	type dated struct {
		v     Variant
		mtime int64
	}
	var ds []dated
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), FileSuffix) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("predict: %w", err)
		}
		v, err := readVariant(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ds = append(ds, dated{v, fi.ModTime().UnixNano()})
	}
	slices.SortStableFunc(ds, func(a, b dated) int {
		if c := cmp.Compare(b.mtime, a.mtime); c != 0 {
			return c
		}
		return strings.Compare(a.v.Name, b.v.Name)
	})
	vs := make([]Variant, len(ds))
	for i, d := range ds {
		vs[i] = d.v
	}
	return vs, nil
}

// readVariant reads one component file written by Component.
func readVariant(path string) (Variant, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Variant{}, fmt.Errorf("predict: %w", err)
	}
	var f componentFile
	if err := json.Unmarshal(b, &f); err != nil {
		return Variant{}, fmt.Errorf("%w: %s: %v", ErrVariant, path, err)
	}
	if f.KexecMeasured == nil || len(f.KexecMeasured.Values) == 0 {
		return Variant{}, fmt.Errorf("%w: %s was not written by kexec-measured predict (no kexecMeasured values)", ErrVariant, path)
	}
	v := Variant{Name: strings.TrimSuffix(filepath.Base(path), FileSuffix), Path: path, PCR: f.KexecMeasured.PCR, Values: map[crypto.Hash][]byte{}}
	for name, x := range f.KexecMeasured.Values {
		h, err := pcr.Parse(name)
		if err != nil {
			return Variant{}, fmt.Errorf("%w: %s: %v", ErrVariant, path, err)
		}
		d, err := hex.DecodeString(x)
		if err != nil || len(d) != h.Size() {
			return Variant{}, fmt.Errorf("%w: %s: bad %s value %q", ErrVariant, path, name, x)
		}
		v.Values[h] = d
	}
	return v, nil
}

// CheckVariantName accepts a variant name that is a plain file name:
// letters, digits and . _ - + only, not starting with a dot, at most 128
// bytes. Other names give an error wrapping ErrVariant.
func CheckVariantName(name string) error {
	if name == "" || len(name) > 128 || name[0] == '.' || strings.IndexFunc(name, notVariantChar) >= 0 {
		return fmt.Errorf("%w: %q (a variant name is 1-128 of A-Z a-z 0-9 . _ - +, not starting with a dot)", ErrVariant, name)
	}
	return nil
}

const variantChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+"

func notVariantChar(r rune) bool { return !strings.ContainsRune(variantChars, r) }

// VariantName derives a variant name from a kernel's path: its base name
// with every other character replaced by "_" ("vmlinuz-6.12.9+deb13-amd64"
// stays as it is).
func VariantName(kernel string) string {
	base := filepath.Base(kernel)
	b := []rune(base)
	for i, r := range b {
		if notVariantChar(r) {
			b[i] = '_'
		}
	}
	name := strings.TrimLeft(string(b), ".")
	if len(name) > 128 {
		name = name[:128]
	}
	if name == "" {
		name = "kernel"
	}
	return name
}

// writeAtomic writes b to path through a temporary file in the same
// directory (a name systemd-pcrlock ignores) and a rename.
func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("predict: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("predict: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("predict: writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("predict: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	ok = true
	return nil
}
