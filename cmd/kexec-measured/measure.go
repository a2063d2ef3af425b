package main

import (
	"crypto"
	"errors"
	"fmt"
	"io"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/loader"
	"github.com/kexec-measured/kexec-measured/tpm"
)

// tpmDevice is an open TPM as the command uses it.
type tpmDevice interface {
	loader.PCRExtender
	ReadPCRs(pcr int) (map[crypto.Hash][]byte, error)
	Close() error
}

// openTPM opens the TPM that --tpm names (see tpm.Open).
func openTPM(spec string) (tpmDevice, error) { return tpm.Open(spec) }

// devices are the TPM and, unless this is a dry run, the log that a load
// is measured into: what openDevices opened and close closes.
type devices struct {
	tpm tpmDevice
	log *eventlog.Writer // nil in a dry run
}

// apply sets the loader up to measure into d: the TPM and the log, or in
// a dry run the TPM's banks to digest with.
func (d *devices) apply(l *loader.Loader) {
	if d.log == nil {
		l.Banks = d.tpm.Banks()
		return
	}
	l.PCRs, l.Log = pcrDevice{d.tpm}, d.log
}

// close closes the TPM and the log (which releases the log's lock if it
// is still held) and returns their errors.
func (d *devices) close() error {
	var errs []error
	if err := d.tpm.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing the TPM: %w", err))
	}
	if d.log != nil {
		if err := d.log.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the measurement log: %w", err))
		}
	}
	return errors.Join(errs...)
}

// openDevices opens the TPM of --tpm and, unless this is a dry run, the
// log of --log. It returns nil (and no error) when loading goes on without
// measuring: --tpm=none, or --tpm=auto with no TPM (with a warning), or a dry
// run with --tpm=auto (a dry run opens a TPM only when --tpm names one, so
// that trying a command never touches the machine's TPM).
func openDevices(o *options, e env, stderr io.Writer) (*devices, error) {
	switch {
	case o.tpm == "none" && o.requireTPM:
		return nil, usagef("--require-tpm contradicts --tpm=none")
	case o.tpm == "none", o.dryRun && o.tpm == "auto":
		return nil, nil
	}
	dev, err := e.openTPM(o.tpm)
	if errors.Is(err, tpm.ErrNoTPM) {
		if o.requireTPM {
			return nil, &refusedError{fmt.Errorf("--require-tpm: %w", err)}
		}
		fmt.Fprintf(stderr, "kexec-measured: warning: %v; loading WITHOUT measuring (use --require-tpm to refuse)\n", err)
		return nil, nil
	}
	if errors.Is(err, tpm.ErrBadSpec) {
		return nil, usagef("--tpm=%s: %v", o.tpm, err)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the TPM (--tpm=%s): %w", o.tpm, err)
	}
	d := &devices{tpm: dev}
	if o.dryRun {
		return d, nil
	}
	if d.log, err = eventlog.OpenWriter(logPath(o, e)); err != nil {
		return nil, errors.Join(fmt.Errorf("opening the measurement log: %w", err), d.close())
	}
	return d, nil
}

// logPath is the log of --log, $SYSTEMD_MEASURE_LOG_USERSPACE or the
// default.
func logPath(o *options, e env) string {
	if o.logPath != "" {
		return o.logPath
	}
	return eventlog.DefaultPath(e.getenv)
}

// refusedError is a request refused before anything changed: exit 1.
type refusedError struct{ err error }

func (e *refusedError) Error() string { return e.err.Error() }
func (e *refusedError) Unwrap() error { return e.err }

// pcrDevice adapts a TPM to the loader: a TPM2_PCR_Extend the TPM refused
// with an error code (tpm.ErrNotExtended) is one that left the PCR
// unchanged (loader.ErrPCRUnchanged).
type pcrDevice struct{ tpmDevice }

func (d pcrDevice) Extend(pcr int, sums map[crypto.Hash][]byte) error {
	err := d.tpmDevice.Extend(pcr, sums)
	if errors.Is(err, tpm.ErrNotExtended) {
		return fmt.Errorf("%w: %w", loader.ErrPCRUnchanged, err)
	}
	return err
}
