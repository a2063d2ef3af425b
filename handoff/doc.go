// Package handoff carries the userspace measurement log over a kexec.
//
// A measured load appends one more initrd component after the user's
// components: a newc cpio archive (written with internal/newc) that holds
// exactly
//
//	kexec-measured/                                  directory, 0755
//	kexec-measured/handoff/                          directory, 0755
//	kexec-measured/handoff/tpm2-measure.log          0444 (01444: interrupted)
//	kexec-measured/handoff/binary_bios_measurements  0444, when readable
//
// The log file is the userspace log byte for byte as it stood after the
// load's records were appended, under the log's lock; its sticky bit says
// that the log had been left by an interrupted write. The firmware file is a
// copy of the firmware's TCG event log, for kernels that do not keep it
// over kexec. Nothing in the archive is executable and nothing lies outside
// the one directory; Parse and ReadDir refuse anything else.
//
// The loader extends one event for the component, kexec-handoff, whose
// digest is the bank hash of the constant EventText, so that the PCR stays
// predictable: the content is verified by replaying the handed-over log
// against the PCRs, never by a digest of its bytes. In the next boot,
// Import puts the handed-over records ahead of that boot's records in the
// userspace log. docs/handoff.md describes the format, the import order and
// the reasons.
package handoff

import (
	"errors"

	"github.com/kexec-measured/kexec-measured/eventlog"
)

// Names inside the archive and the unpacked root file system.
const (
	// Dir is the archive's one data directory, relative to the root.
	Dir = "kexec-measured/handoff"
	// LogName is the file that holds the userspace log.
	LogName = "tpm2-measure.log"
	// FirmwareName is the file that holds the firmware log copy.
	FirmwareName = "binary_bios_measurements"
	// DefaultDir is where the kernel unpacks the handoff in the next boot.
	DefaultDir = "/" + Dir
	// FirmwareCopyPath is where Import keeps the firmware log copy, for
	// the readers that find no firmware log in sysfs.
	FirmwareCopyPath = "/run/log/kexec-measured/binary_bios_measurements"
)

// EventText is the text whose bank hash is the digest of the kexec-handoff
// event in every bank: a constant, so that the event can be predicted
// before a load.
const EventText = "kexec-measured handoff v1"

// Size bounds. A writer refuses to build a handoff the reader would refuse.
const (
	// MaxLogSize bounds the handed-over userspace log (a record is a few
	// hundred bytes: 64 MiB is some 200 000 records).
	MaxLogSize = 64 << 20
	// MaxFirmwareSize bounds the firmware log copy (real logs are tens of
	// KiB).
	MaxFirmwareSize = eventlog.MaxFirmwareLog
	// MaxSize bounds the whole archive: both files and the cpio headers.
	MaxSize = MaxLogSize + MaxFirmwareSize + 4096
)

// Permissions of the archive's entries.
const (
	dirPerm         = 0o755
	filePerm        = 0o444
	interruptedPerm = 0o1444 // the log's sticky bit: an interrupted write
)

var (
	// ErrFormat reports a handoff that is not what Build writes: an entry
	// outside Dir, an unknown name, a symlink or another non-regular file,
	// an executable or writable file, a file given twice, no log.
	ErrFormat = errors.New("handoff: not a kexec-measured handoff")
	// ErrTooLarge reports a file larger than its bound (MaxLogSize,
	// MaxFirmwareSize).
	ErrTooLarge = errors.New("handoff: too large")
)

// Handoff is what one boot hands over to the next.
type Handoff struct {
	// Log is the userspace log, byte for byte.
	Log []byte
	// Interrupted is true when the log's sticky bit was set: a write was
	// interrupted in the boot that handed it over, so the log may lack a
	// record for an extend.
	Interrupted bool
	// Firmware is the firmware TCG log, nil when there was none to copy.
	Firmware []byte
}
