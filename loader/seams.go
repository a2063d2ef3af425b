package loader

import (
	"crypto"
	"errors"

	"github.com/kexec-measured/kexec-measured/eventlog"
)

// PCRExtender is the part of a TPM the loader uses. *tpm.TPM implements it.
type PCRExtender interface {
	// Banks returns the hash algorithms of the allocated PCR banks, in a
	// stable order (crypto.Hash order).
	Banks() []crypto.Hash
	// Extend extends PCR pcr with one digest per allocated bank in ONE
	// TPM2_PCR_Extend command. sums must hold a digest for every bank. An
	// error matching ErrPCRUnchanged says that the PCR is known not to have
	// changed (the TPM refused the command); any other error leaves the
	// outcome unknown.
	Extend(pcr int, sums map[crypto.Hash][]byte) error
}

// EventLog is the part of the userspace measurement log the loader uses.
// *eventlog.Writer implements it.
type EventLog interface {
	// Lock takes the exclusive lock (flock LOCK_EX) on the log.
	Lock() error
	// BeginWrite marks the log as being written (sets the sticky bit). It is
	// called after Lock and before the PCR extend of each record.
	BeginWrite() error
	// Append writes one record, fsyncs the file and clears the sticky bit.
	Append(rec eventlog.Record) error
	// AbortWrite clears the mark of BeginWrite when the PCR extend failed,
	// so that no record is missing.
	AbortWrite() error
	// Unlock releases the lock.
	Unlock() error
}

// HandoffBuilder builds the handoff component: the bytes the loader appends
// to the initrd after the user's components, so that the next kernel finds
// the measurement log (package handoff). *handoff.Builder implements it.
type HandoffBuilder interface {
	// Build returns the component. The loader calls it under the log's
	// exclusive lock, after this load's records were appended, so that it
	// reads the log as it then stands.
	Build() ([]byte, error)
}

// ErrPCRUnchanged marks a failed Extend after which the PCR is known to be
// unchanged: the TPM answered with an error code.
var ErrPCRUnchanged = errors.New("loader: the PCR was not changed")
