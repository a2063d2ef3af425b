package loader

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// Conditions the loader reports. Wrapped in an *InputError or returned with
// context; test with errors.Is.
var (
	ErrNotRegular       = errors.New("loader: not a regular file")
	ErrEmptyKernel      = errors.New("loader: the kernel image is empty")
	ErrNoKernel         = errors.New("loader: no kernel specified")
	ErrBadRange         = errors.New("loader: range outside the file")
	ErrCmdlineTooLong   = errors.New("loader: command line too long")
	ErrCmdlineNUL       = errors.New("loader: the command line contains a NUL byte")
	ErrNoFixedSize      = errors.New("loader: not a file with a fixed size")
	ErrSizeChanged      = errors.New("loader: the file changed size while it was read")
	ErrTooManyEvents    = errors.New("loader: too many events for one load")
	ErrTooLarge         = errors.New("loader: too large for kexec_file_load")
	ErrNothingLoaded    = errors.New("loader: Nothing has been loaded!") // kexec-tools' words after the prefix
	ErrCrashNotReserved = errors.New("loader: memory for the crash kernel is not reserved (boot with crashkernel=SIZE)")
	// ErrLogCannotExplain is a refusal (Loader.StrictLog) to measure into a
	// log that was left interrupted or holds damaged ranges.
	ErrLogCannotExplain = errors.New("loader: refusing to measure into a log that may not explain the PCRs")
)

// InputError is a problem with a file named on the command line, found
// before any system call that changes state: the request is refused.
type InputError struct {
	Path string
	Err  error
}

func (e *InputError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// MeasureError is a failed TPM extend or log write. Nothing was loaded.
// Extended lists the events whose PCR extend had already succeeded, so that
// an operator knows the state of the PCR; Logged says how many of them also
// reached the log.
type MeasureError struct {
	PCR      int
	Extended []string
	Logged   int
	// Unknown names the event whose extend failed with an unknown outcome
	// (the command may have changed the PCR); empty otherwise.
	Unknown string
	Err     error
}

func (e *MeasureError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "measurement failed, nothing loaded: %v", e.Err)
	switch {
	case len(e.Extended) == 0 && e.Unknown == "":
		fmt.Fprintf(&b, "; PCR %d was not extended", e.PCR)
	case len(e.Extended) > 0:
		fmt.Fprintf(&b, "; PCR %d was extended with %d event(s): %s", e.PCR, len(e.Extended), strings.Join(e.Extended, ", "))
		if e.Logged < len(e.Extended) {
			fmt.Fprintf(&b, " (the last %d not in the log)", len(e.Extended)-e.Logged)
		}
	}
	if e.Unknown != "" {
		fmt.Fprintf(&b, "; whether PCR %d was extended with %s is unknown, and the log is left marked as interrupted", e.PCR, e.Unknown)
	}
	return b.String()
}

func (e *MeasureError) Unwrap() error { return e.Err }

func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file"
}
