package loader

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"unicode/utf8"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/handoff"
	"github.com/kexec-measured/kexec-measured/segments"
)

// Component is one input as placed in its memfd.
type Component struct {
	Path    string // as named on the command line
	Offset  int64  // within the concatenated initrd; 0 for the kernel
	Size    int64
	Section string // the PE section of Path it was read from (Request.KernelRange, InitrdRanges); "" for the whole file

	sums map[crypto.Hash][]byte // digests of the whole input, computed while copying
}

// Measurement is one event: a range of loaded bytes (or the command line),
// its digests in every bank, and the log record that describes it.
type Measurement struct {
	eventlog.KexecContent
	Sums   map[crypto.Hash][]byte
	Record eventlog.Record
	data   []byte // the measured bytes: a slice of a read-only mapping of a sealed memfd, or the command line
}

// Image is a prepared load: the sealed memfds and what was measured of
// them. Close releases it.
type Image struct {
	Kernel     Component
	Initrd     []Component
	InitrdSize int64 // with the handoff component, once appended
	// Handoff is the handoff component once appended (Path "handoff"),
	// nil before and without one.
	Handoff *Component
	Cmdline string
	// CmdlineSection is the PE section the command line came from.
	CmdlineSection string
	Banks          []crypto.Hash
	// Measurements in extend order: kernel, initrd components (or their
	// segments), command line.
	Measurements []Measurement

	kernel, initrd       *os.File
	kernelMap, initrdMap []byte
}

// Close unmaps and closes the memfds.
func (im *Image) Close() error {
	var errs []error
	errs = append(errs, unmap(im.kernelMap), unmap(im.initrdMap))
	im.kernelMap, im.initrdMap = nil, nil
	for _, f := range []*os.File{im.kernel, im.initrd} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	im.kernel, im.initrd = nil, nil
	return errors.Join(errs...)
}

// align4 rounds n up to a multiple of 4.
func align4(n int64) int64 { return (n + 3) &^ 3 }

// CheckInputs checks, without reading more than their ends, that the
// kernel and every initrd component can be opened for reading, are regular
// files and end where fstat says (a file of /proc that says 0 bytes and has
// content is refused: ErrNoFixedSize), that the kernel is not empty, and
// that neither it nor the concatenated initrd is larger than MaxInputSize.
// Errors: ErrNoKernel, or an *InputError naming the file.
func CheckInputs(kernel string, initrds []string) error {
	files, err := openInputs(kernel, initrds)
	closeAll(files)
	return err
}

// openInputs opens the kernel and the initrd components, in that order, and
// checks them as CheckInputs says. On error it closes what it opened.
func openInputs(kernel string, initrds []string) ([]*os.File, error) {
	if kernel == "" {
		return nil, ErrNoKernel
	}
	paths := append([]string{kernel}, initrds...)
	files := make([]*os.File, 0, len(paths))
	var initrdEnd int64
	for i, p := range paths {
		f, size, err := openInput(p)
		if err != nil {
			closeAll(files)
			return nil, err
		}
		files = append(files, f)
		if i == 0 && size == 0 {
			closeAll(files)
			return nil, &InputError{Path: p, Err: ErrEmptyKernel}
		}
		if i > 0 {
			initrdEnd = align4(initrdEnd) + size
		}
		if i == 0 && size > MaxInputSize {
			closeAll(files)
			return nil, &InputError{Path: p, Err: fmt.Errorf("%w: %d bytes; kexec_file_load reads a kernel of at most %d bytes", ErrTooLarge, size, int64(MaxInputSize))}
		}
		if i > 0 && (size > MaxInputSize || initrdEnd > MaxInputSize) {
			closeAll(files)
			return nil, &InputError{Path: p, Err: fmt.Errorf("%w: with it the concatenated initrd would be at least %d bytes; kexec_file_load reads at most %d bytes", ErrTooLarge, max(size, initrdEnd), int64(MaxInputSize))}
		}
	}
	return files, nil
}

// MaxInputSize is the largest kernel, and the largest concatenated initrd,
// that kexec_file_load reads: KEXEC_FILE_SIZE_MAX, 4 GiB. Larger inputs are
// refused before anything is read (a file like /proc/kcore says it is 128
// TiB).
const MaxInputSize = 4 << 30

// CheckOutput checks that path, where the concatenated initrd is to be
// written (--initrd-out), is a regular file or does not exist yet: a FIFO
// would block the load, a device would be overwritten. Errors: an
// *InputError naming path.
func CheckOutput(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &InputError{Path: path, Err: err}
	}
	if !fi.Mode().IsRegular() {
		return &InputError{Path: path, Err: fmt.Errorf("%w (it is %s): the concatenated initrd is written only to a regular file", ErrNotRegular, describeMode(fi.Mode()))}
	}
	return nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// readInputs opens every input, checks it, and copies it into memfds: the
// kernel into its own, the initrd components into one, each at a
// 4-byte-aligned offset with zero bytes between them, and while copying
// digests the kernel and each component in every one of banks (none: no
// digests) from the read-only mappings. Every input is checked before
// anything is copied (p says how, see copyAndDigest). The kernel memfd is sealed on return; the initrd
// memfd carries F_SEAL_SHRINK until Seal. kr and irs[i], when set, narrow
// the kernel and initrd i to a range of their files (a PE section).
func readInputs(kernel string, initrds []string, kr *Range, irs []*Range, banks []crypto.Hash, p pipeline) (*Image, error) {
	files, err := openInputs(kernel, initrds)
	if err != nil {
		return nil, err
	}
	defer closeAll(files)

	rangeOf := func(i int) *Range {
		if i == 0 {
			return kr
		}
		if i-1 < len(irs) {
			return irs[i-1]
		}
		return nil
	}
	im := &Image{Kernel: Component{Path: kernel, Section: kr.section()}}
	ok := false
	defer func() {
		if !ok {
			im.Close()
		}
	}()
	if im.kernel, err = newMemfd("kernel"); err != nil {
		return nil, err
	}
	if im.initrd, err = newMemfd("initrd"); err != nil {
		return nil, err
	}
	inputs := make([]input, len(files))
	for i, f := range files {
		fi, err := f.Stat()
		if err != nil {
			return nil, &InputError{Path: f.Name(), Err: err}
		}
		inputs[i] = input{path: f.Name(), src: f, size: fi.Size(), fileSize: fi.Size(), dst: im.initrd}
		if r := rangeOf(i); r != nil {
			if r.Offset < 0 || r.Size < 0 || r.Offset > fi.Size() || r.Size > fi.Size()-r.Offset {
				return nil, &InputError{Path: f.Name(), Err: fmt.Errorf("%w: %s: %d bytes at offset %d of a %d-byte file", ErrBadRange, r.Section, r.Size, r.Offset, fi.Size())}
			}
			inputs[i].base, inputs[i].size = r.Offset, r.Size
		}
	}
	if inputs[0].size == 0 {
		return nil, &InputError{Path: kernel, Err: ErrEmptyKernel}
	}
	inputs[0].dst = im.kernel
	im.Kernel.Size = inputs[0].size
	var off int64
	for i := range initrds {
		in := &inputs[i+1]
		in.pad = align4(off) - off
		off += in.pad
		im.Initrd = append(im.Initrd, Component{Path: initrds[i], Offset: off, Size: in.size, Section: rangeOf(i + 1).section()})
		off += in.size
	}
	im.InitrdSize = off
	if im.kernelMap, err = mapReadOnly(im.kernel, im.Kernel.Size); err != nil {
		return nil, err
	}
	if im.initrdMap, err = mapReadOnly(im.initrd, im.InitrdSize); err != nil {
		return nil, err
	}
	inputs[0].view = im.kernelMap
	for i, c := range im.Initrd {
		inputs[i+1].view = im.initrdMap[c.Offset : c.Offset+c.Size]
	}
	sums, err := p.copyAndDigest(inputs, banks)
	if err != nil {
		return nil, err
	}
	if len(banks) > 0 {
		im.Kernel.sums = bankMap(banks, sums[0])
		for i := range im.Initrd {
			im.Initrd[i].sums = bankMap(banks, sums[i+1])
		}
	}
	if err := seal(im.kernel); err != nil {
		return nil, err
	}
	ok = true
	return im, nil
}

// section is the Section of r, "" for nil.
func (r *Range) section() string {
	if r == nil {
		return ""
	}
	return r.Section
}

// bankMap pairs banks with their digests.
func bankMap(banks []crypto.Hash, sums [][]byte) map[crypto.Hash][]byte {
	m := make(map[crypto.Hash][]byte, len(banks))
	for b, h := range banks {
		m[h] = sums[b]
	}
	return m
}

// Seal seals the initrd memfd against every further change
// (F_SEAL_WRITE|F_SEAL_GROW|F_SEAL_SHRINK|F_SEAL_SEAL). The load calls it
// right before kexec_file_load, after the last byte was appended; until
// then the memfd is only sealed against shrinking, and nothing writes below
// its end (docs/measurement.md).
func (im *Image) Seal() error {
	return seal(im.initrd)
}

// WriteInitrd writes the concatenated initrd exactly as it would be loaded
// to a new file at path.
func (im *Image) WriteInitrd(path string) error {
	if err := copyOut(path, im.initrd, im.InitrdSize); err != nil {
		return fmt.Errorf("writing the concatenated initrd to %s: %w", path, err)
	}
	return nil
}

// addMeasurements lists the events of the image in extend order. With
// split, each initrd component is measured segment by segment (see
// splitComponent). With handoff, the kexec-handoff event follows the
// initrd components: its digest is over the constant handoff.EventText,
// its offset is where appendHandoff will put the component, its size 0
// (the size is not known when it is measured).
func (im *Image) addMeasurements(split, withHandoff bool, lim segments.Limits, warn io.Writer) error {
	im.Measurements = append(im.Measurements, Measurement{
		KexecContent: eventlog.KexecContent{Event: eventlog.EventKernel, Path: absPath(im.Kernel.Path), Size: im.Kernel.Size, Section: im.Kernel.Section},
		Sums:         maps.Clone(im.Kernel.sums),
		data:         im.kernelMap,
	})
	for _, c := range im.Initrd {
		whole := Measurement{
			KexecContent: eventlog.KexecContent{Event: eventlog.EventInitrd, Path: absPath(c.Path), Offset: c.Offset, Size: c.Size, Section: c.Section},
			data:         im.initrdMap[c.Offset : c.Offset+c.Size],
		}
		if !split || c.Size == 0 {
			whole.Sums = maps.Clone(c.sums)
		}
		if !split || c.Size == 0 {
			im.Measurements = append(im.Measurements, whole)
			continue
		}
		ms, err := splitComponent(whole, lim, warn)
		if err != nil {
			return &InputError{Path: c.Path, Err: err}
		}
		im.Measurements = append(im.Measurements, ms...)
	}
	if withHandoff {
		im.Measurements = append(im.Measurements, Measurement{
			KexecContent: eventlog.KexecContent{Event: eventlog.EventHandoff, Offset: align4(im.InitrdSize)},
			data:         []byte(handoff.EventText),
		})
	}
	im.Measurements = append(im.Measurements, Measurement{
		KexecContent: eventlog.KexecContent{Event: eventlog.EventCmdline, Size: int64(len(im.Cmdline)), Section: im.CmdlineSection},
		data:         []byte(im.Cmdline),
	})
	return nil
}

// splitComponent measures a component segment by segment, the way the
// kernel walks it (package segments): the segments, each with its trailing
// NUL padding, tile the component exactly, so every loaded byte is in
// exactly one event. What the kernel would reject is passed on as a
// warning; it does not stop the load.
func splitComponent(whole Measurement, lim segments.Limits, warn io.Writer) ([]Measurement, error) {
	r := segments.NewReader(bytes.NewReader(whole.data), int64(len(whole.data)), lim)
	var ms []Measurement
	var next int64
	for {
		s, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("splitting into segments: %w", err)
		}
		if s.Offset != next || s.Size <= 0 || s.Offset+s.Size > int64(len(whole.data)) {
			return nil, fmt.Errorf("splitting into segments: segment %d at %d size %d does not follow at %d", s.Index, s.Offset, s.Size, next)
		}
		next = s.Offset + s.Size
		for _, w := range s.Warnings {
			fmt.Fprintf(warn, "kexec-measured: warning: %s: segment %d: %s\n", whole.Path, s.Index, w)
		}
		m := whole
		m.Offset = whole.Offset + s.Offset
		m.Size = s.Size
		m.Segment = &s.Index
		m.Kind = s.Kind
		m.data = whole.data[s.Offset : s.Offset+s.Size]
		ms = append(ms, m)
	}
	if next != int64(len(whole.data)) {
		return nil, fmt.Errorf("splitting into segments: the segments cover %d of %d bytes", next, len(whole.data))
	}
	return ms, nil
}

// absPath is the path logged for an input: absolute, and when it is not
// valid UTF-8 (which JSON cannot carry: it would be logged as U+FFFD),
// Go-quoted (strconv.Quote: `"/boot/caf\xe9.img"`), a form that starts
// with `"` where a logged path otherwise starts with `/`, and that
// strconv.Unquote turns back into the file's name (docs/log.md).
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		p = a
	}
	if !utf8.ValidString(p) {
		return strconv.Quote(p)
	}
	return p
}
