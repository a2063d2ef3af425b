package loader

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/segments"
)

// DefaultMaxEvents is the default cap on the events of one load
// (Loader.MaxEvents): far above what real loads need (a kernel, a few
// components or, with --split-initrd, a few segments each, a command line),
// far below what would make a load take minutes of TPM extends and
// megabytes of log (a hardware TPM takes a few milliseconds per extend).
const DefaultMaxEvents = 1024

// MaxCmdline is COMMAND_LINE_SIZE of x86-64 (and arm64): the command line
// and its terminating NUL must fit in it.
const MaxCmdline = 2048

// Request is what kexec(8)'s options ask for, with kexec-tools' meaning of
// each step (see cmd/kexec-measured for how options set them).
type Request struct {
	Kernel       string
	Initrds      []string // components, concatenated in order
	Append       string   // --append / --command-line
	ReuseCmdline bool     // --reuse-cmdline: /proc/cmdline, then Append
	Panic        bool     // -p: the crash kernel (KEXEC_FILE_ON_CRASH)
	Debug        bool     // -d: KEXEC_FILE_DEBUG
	SplitInitrd  bool     // --split-initrd: one event per segment of each component
	NoHandoff    bool     // --no-handoff: no handoff component and no kexec-handoff event

	Status   bool // -S: report whether a kernel is loaded
	Unload   bool // -u
	Load     bool // -l, -p, -f, or no mode
	Shutdown bool // no mode: shutdown -r now after loading
	Sync     bool
	IfDown   bool
	Exec     bool // -e, -f: reboot(LINUX_REBOOT_CMD_KEXEC)

	InitrdOut string // write the concatenated initrd here

	// KernelRange and InitrdRanges narrow inputs to byte ranges of their
	// files, such as the PE sections of a unified kernel image; nil loads
	// the whole file. InitrdRanges is nil or has one element per Initrds.
	// CmdlineSection is the section field of the command line's event
	// (".cmdline" when it came from a UKI).
	KernelRange    *Range
	InitrdRanges   []*Range
	CmdlineSection string
}

// Range is Size bytes at Offset of an input file; Section names them in
// the log record (eventlog.KexecContent.Section).
type Range struct {
	Offset, Size int64
	Section      string
}

// Loader runs requests. Its zero value is not usable: Sys is required.
type Loader struct {
	Sys Syscalls
	// PCRs and Log measure the loads; both nil means loading without
	// measuring. With one of them, the other is required.
	PCRs PCRExtender
	Log  EventLog
	PCR  int
	// Banks are the hash algorithms to digest with when PCRs is nil (for a
	// dry run); with a TPM its allocated banks are used.
	Banks []crypto.Hash
	// DryRun does everything but the system calls that change state, the
	// TPM extends and the log writes; Result.Steps says what would be done.
	DryRun bool
	// Clock returns the record timestamp (microseconds since boot); nil,
	// or an error (with a warning), means records without a timestamp.
	Clock func() (int64, error)
	// StrictLog refuses to measure into a log that may no longer explain
	// the PCRs (interrupted or damaged, see measure) instead of warning.
	StrictLog bool
	// Limits bound the segment walk of SplitInitrd (zero: defaults).
	Limits segments.Limits
	// Warn receives warnings; nil discards them.
	Warn io.Writer
	// Handoff builds the handoff component (docs/handoff.md). With it, and
	// unless Request.NoHandoff, a load lists the kexec-handoff event after
	// the initrd components and appends the component after them; nil
	// means no handoff (an unmeasured load).
	Handoff HandoffBuilder
	// LogPath is the log's path, recorded in Result.State.
	LogPath string
	// MaxEvents caps the events of one load (zero: DefaultMaxEvents); a
	// load with more is refused before anything is digested or extended.
	MaxEvents int

	afterChunk func() // tests: runs after each chunk copied into a memfd
}

// Result is what Run did, or would do in a dry run.
type Result struct {
	Image  *Image   // the prepared load, nil when nothing was loaded; the caller closes it
	Loaded bool     // for Status: whether the kernel asked about is loaded
	Steps  []string // the state-changing steps, in order
	// State describes a measured load with a handoff (not -p), for a later
	// Refresh; nil otherwise.
	State *LoadState
}

// Run carries out req in kexec-tools' order: status; unload; load (read,
// measure, kexec_file_load); check that something is loaded; shutdown;
// sync; bring interfaces down; exec. It stops at the first error. Errors:
// *InputError and ErrNoKernel, ErrCmdlineTooLong, ErrCrashNotReserved for
// refused requests (nothing changed); *MeasureError when measuring failed
// (nothing loaded); ErrNothingLoaded; *SyscallError from the kernel.
func (l *Loader) Run(req Request) (*Result, error) {
	res := &Result{}
	if req.Status {
		loaded, err := l.loaded(req.Panic)
		res.Loaded = loaded
		return res, err
	}
	if req.Load {
		if err := l.checkLoad(req); err != nil {
			return res, err
		}
	}
	if req.Unload {
		flags := FlagUnload
		if req.Panic {
			flags |= FlagOnCrash
		}
		if err := l.step(res, fmt.Sprintf("kexec_file_load(-1, -1, \"\", %s)", flagNames(flags)), func() error {
			return l.Sys.KexecFileLoad(noFD, noFD, "", flags)
		}); err != nil {
			return res, err
		}
	}
	if req.Load {
		im, err := l.load(res, req)
		res.Image = im
		if err != nil {
			return res, err
		}
	}
	if (req.Shutdown || req.Exec) && !l.DryRun {
		loaded, err := l.loaded(false)
		if err != nil {
			return res, err
		}
		if !loaded {
			return res, ErrNothingLoaded
		}
	}
	if req.Shutdown {
		if err := l.step(res, "shutdown -r now", l.Sys.Shutdown); err != nil {
			return res, err
		}
	}
	if req.Sync {
		l.step(res, "sync", func() error { l.Sys.Sync(); return nil })
	}
	if req.IfDown {
		if err := l.step(res, "bring non-loopback network interfaces down", l.Sys.IfDown); err != nil {
			return res, err
		}
	}
	if req.Exec {
		if err := l.step(res, "reboot(LINUX_REBOOT_CMD_KEXEC)", l.Sys.RebootKexec); err != nil {
			return res, err
		}
	}
	return res, nil
}

// step records a state-changing step and runs it unless this is a dry run.
func (l *Loader) step(res *Result, what string, do func() error) error {
	res.Steps = append(res.Steps, what)
	if l.DryRun {
		return nil
	}
	return do()
}

// checkLoad refuses a load that cannot work, before anything is read.
func (l *Loader) checkLoad(req Request) error {
	if req.Kernel == "" {
		return ErrNoKernel
	}
	if (l.PCRs == nil) != (l.Log == nil) {
		return errors.New("loader: measuring needs both a TPM and a log")
	}
	if req.Panic && !l.DryRun {
		b, err := l.Sys.ReadFile(crashSizePath)
		if err != nil || strings.TrimSpace(string(b)) == "0" {
			return ErrCrashNotReserved
		}
	}
	return nil
}

// load reads, measures and loads the image of req.
func (l *Loader) load(res *Result, req Request) (*Image, error) {
	cmdline, err := l.cmdline(req)
	if err != nil {
		return nil, err
	}
	if req.InitrdRanges != nil && len(req.InitrdRanges) != len(req.Initrds) {
		return nil, fmt.Errorf("loader: %d initrd ranges for %d initrds", len(req.InitrdRanges), len(req.Initrds))
	}
	measuring := l.PCRs != nil // checkLoad: a log with it
	// The whole inputs are digested while they are copied; segments
	// (--split-initrd) only once the component is in its memfd.
	var banks []crypto.Hash
	if measuring || l.DryRun {
		if banks, err = l.banks(); err != nil {
			return nil, err
		}
	}
	copyBanks := banks
	if req.SplitInitrd {
		copyBanks = nil
	}
	if req.InitrdOut != "" {
		if err := CheckOutput(req.InitrdOut); err != nil {
			return nil, err
		}
	}
	im, err := readInputs(req.Kernel, req.Initrds, req.KernelRange, req.InitrdRanges, copyBanks, pipeline{chunk: pipeChunk, afterChunk: l.afterChunk})
	if err != nil {
		return nil, err
	}
	im.Cmdline, im.CmdlineSection = cmdline, req.CmdlineSection
	if req.InitrdOut != "" {
		if err := im.WriteInitrd(req.InitrdOut); err != nil {
			return im, err
		}
	}
	withHandoff := l.Handoff != nil && !req.NoHandoff
	if err := im.addMeasurements(req.SplitInitrd, withHandoff, l.Limits, l.warn()); err != nil {
		return im, err
	}
	if err := l.checkEvents(im); err != nil {
		return im, err
	}
	if banks != nil {
		if err := l.digest(im); err != nil {
			return im, err
		}
		if err := l.buildRecords(im); err != nil {
			return im, err
		}
	}
	var handoff []byte
	if measuring {
		desc := fmt.Sprintf("extend PCR %d and log %d event(s)", l.PCR, len(im.Measurements))
		build := func() error { return nil }
		if withHandoff {
			desc += ", then build the handoff from the log as it stands"
			build = func() (err error) { handoff, err = l.Handoff.Build(); return err }
		}
		if err := l.step(res, desc, func() error { return measure(l.PCRs, l.Log, l.PCR, im.Measurements, l.StrictLog, l.warn(), build) }); err != nil {
			return im, err
		}
	}
	if withHandoff && (measuring || l.DryRun) {
		desc := fmt.Sprintf("append the handoff component to the initrd at offset %d", align4(im.InitrdSize))
		if err := l.step(res, desc, func() error { return im.appendHandoff(handoff, l.memAvailable()) }); err != nil {
			return im, err
		}
	}
	if err := im.Seal(); err != nil {
		return im, err
	}
	flags := 0
	initrdFD := int(im.initrd.Fd())
	if im.InitrdSize == 0 {
		flags |= FlagNoInitramfs
		initrdFD = noFD
	}
	if req.Panic {
		flags |= FlagOnCrash
	}
	if req.Debug {
		flags |= FlagDebug
	}
	desc := fmt.Sprintf("kexec_file_load(kernel memfd, %s, %q, %s)", initrdDesc(im), cmdline, flagNames(flags))
	err = l.step(res, desc, func() error {
		return l.Sys.KexecFileLoad(int(im.kernel.Fd()), initrdFD, cmdline, flags)
	})
	if err == nil && measuring && !l.DryRun {
		res.State, err = newState(req, im, l.PCR, l.LogPath)
	}
	return im, err
}

// checkEvents refuses a load with more events than MaxEvents.
func (l *Loader) checkEvents(im *Image) error {
	max := l.MaxEvents
	if max <= 0 {
		max = DefaultMaxEvents
	}
	if n := len(im.Measurements); n > max {
		return fmt.Errorf("%w: %d events, the limit is %d (--max-events raises it); nothing was measured or loaded", ErrTooManyEvents, n, max)
	}
	return nil
}

// banks returns the banks to digest with: the TPM's, or Banks for a dry run.
func (l *Loader) banks() ([]crypto.Hash, error) {
	banks := l.Banks
	if l.PCRs != nil {
		banks = l.PCRs.Banks()
	}
	if len(banks) == 0 {
		return nil, errors.New("loader: no PCR banks to digest with")
	}
	return banks, nil
}

func initrdDesc(im *Image) string {
	if im.InitrdSize == 0 {
		return "no initrd"
	}
	return fmt.Sprintf("initrd memfd of %d bytes", im.InitrdSize)
}

// digest computes the digests of every measurement in every bank (the
// banks of l.banks) that are not there yet.
func (l *Loader) digest(im *Image) error {
	banks, err := l.banks()
	if err != nil {
		return err
	}
	im.Banks = banks
	return digestAll(im.Measurements, banks)
}

// buildRecords builds the log record of every digested measurement, with
// the boot ID and the Clock's timestamp. Either one that cannot be read is
// left out of the records, with a warning.
func (l *Loader) buildRecords(im *Image) error {
	bootID := ""
	if b, err := l.Sys.ReadFile(bootIDPath); err != nil {
		fmt.Fprintf(l.warn(), "kexec-measured: warning: the log records carry no boot ID: %v\n", err)
	} else {
		bootID = strings.TrimSpace(string(b))
	}
	var now int64
	if l.Clock != nil {
		t, err := l.Clock()
		if err != nil {
			fmt.Fprintf(l.warn(), "kexec-measured: warning: the log records carry no timestamp: %v\n", err)
		} else {
			now = t
		}
	}
	for i := range im.Measurements {
		m := &im.Measurements[i]
		m.BootID, m.Timestamp = bootID, now
		rec, err := eventlog.NewKexecRecord(l.PCR, m.Sums, m.KexecContent)
		if err != nil {
			return fmt.Errorf("building the log record of %s: %w", m.describe(), err)
		}
		m.Record = rec
	}
	return nil
}

// cmdline composes the command line as kexec-tools does: with
// --reuse-cmdline, /proc/cmdline without BOOT_IMAGE= (and without
// crashkernel= for -p), then --append after a space.
func (l *Loader) cmdline(req Request) (string, error) {
	s := req.Append
	if req.ReuseCmdline {
		b, err := l.Sys.ReadFile(procCmdlinePath)
		if err != nil {
			return "", fmt.Errorf("--reuse-cmdline: reading %s: %w", procCmdlinePath, err)
		}
		base := reuseCmdline(string(b), req.Panic)
		switch {
		case base == "":
		case s == "":
			s = base
		default:
			s = base + " " + s
		}
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return "", fmt.Errorf("%w at byte %d: the kernel would stop reading it there", ErrCmdlineNUL, i)
	}
	if len(s)+1 > MaxCmdline {
		return "", fmt.Errorf("%w: %d bytes; the limit is %d bytes with the terminating NUL (COMMAND_LINE_SIZE)", ErrCmdlineTooLong, len(s), MaxCmdline)
	}
	return s, nil
}

// reuseCmdline drops BOOT_IMAGE= (and crashkernel= for a crash kernel,
// -p) from the running kernel's command line.
func reuseCmdline(proc string, crash bool) string {
	var keep []string
	for _, w := range strings.Fields(proc) {
		if strings.HasPrefix(w, "BOOT_IMAGE=") || (crash && strings.HasPrefix(w, "crashkernel=")) {
			continue
		}
		keep = append(keep, w)
	}
	return strings.Join(keep, " ")
}

// loaded reads /sys/kernel/kexec_loaded, or for the crash kernel (-p)
// kexec_crash_loaded.
func (l *Loader) loaded(crash bool) (bool, error) {
	path := kexecLoadedPath
	if crash {
		path = crashLoadedPath
	}
	b, err := l.Sys.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)) == "1", nil
}

// flagNames spells kexec_file_load flags for messages.
func flagNames(flags int) string {
	var names []string
	for _, f := range []struct {
		bit  int
		name string
	}{{FlagUnload, "KEXEC_FILE_UNLOAD"}, {FlagOnCrash, "KEXEC_FILE_ON_CRASH"}, {FlagNoInitramfs, "KEXEC_FILE_NO_INITRAMFS"}, {FlagDebug, "KEXEC_FILE_DEBUG"}} {
		if flags&f.bit != 0 {
			names = append(names, f.name)
		}
	}
	if len(names) == 0 {
		return "0"
	}
	return strings.Join(names, "|")
}

// memAvailable returns MemAvailable of /proc/meminfo in bytes, or -1 when
// it cannot be read.
func (l *Loader) memAvailable() int64 {
	b, err := l.Sys.ReadFile(procMeminfoPath)
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MemAvailable:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}

// warn returns the writer for warnings.
func (l *Loader) warn() io.Writer {
	if l.Warn == nil {
		return io.Discard
	}
	return l.Warn
}
