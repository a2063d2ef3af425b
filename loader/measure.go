package loader

import (
	"errors"
	"fmt"
	"io"

	"github.com/kexec-measured/kexec-measured/eventlog"
)

// onlyLogWarnings reports whether a Lock error is one after which the lock
// is held (eventlog.ErrInterrupted, eventlog.ErrDamaged, or both joined).
func onlyLogWarnings(err error) bool {
	return errors.Is(err, eventlog.ErrInterrupted) || errors.Is(err, eventlog.ErrDamaged)
}

// describe names a measurement for messages: "kexec-initrd /boot/fw.cpio".
func (m *Measurement) describe() string {
	s := m.Event
	if m.Path != "" {
		s += " " + m.Path
	}
	if m.Segment != nil {
		s += fmt.Sprintf(" segment %d", *m.Segment)
	}
	return s
}

// measure extends the PCR and appends one log record per measurement, in
// order, under the log's exclusive lock (docs/log.md, Locking protocol):
// for each event the sticky bit is set, the PCR extended in all banks with
// one command, the record appended and fsync'd (which clears the sticky
// bit). On failure it
// stops at once and returns a *MeasureError that says which events were
// already extended. A failed extend clears the log's mark only when the
// PCR is known unchanged (ErrPCRUnchanged); otherwise the mark stays, so
// that the next reader knows the log may not explain the PCR.
//
// A log whose earlier write was interrupted (eventlog.ErrInterrupted from
// Lock) or that holds ranges that are not records (eventlog.ErrDamaged) may
// no longer explain the PCR, but refusing would block every later kexec
// until a reboot: the records we add are still right (and readable after
// the damage), so measure goes on and warns, naming what Lock found. With
// strict (--require-tpm) it refuses instead, before anything is extended.
//
// After the last record, still under the lock, measure calls after (the
// handoff is built there, from the log as it then stands); its error is
// returned as a *MeasureError too.
func measure(pcrs PCRExtender, log EventLog, pcr int, ms []Measurement, strict bool, warn io.Writer, after func() error) (err error) {
	var extended []string
	logged := 0
	fail := func(e error) error {
		return &MeasureError{PCR: pcr, Extended: extended, Logged: logged, Err: e}
	}
	if err := log.Lock(); err != nil {
		if !onlyLogWarnings(err) {
			return fail(fmt.Errorf("locking the measurement log: %w", err))
		}
		if strict {
			uerr := log.Unlock()
			return fail(errors.Join(fmt.Errorf("%w: %w", ErrLogCannotExplain, err), uerr))
		}
		fmt.Fprintf(warn, "kexec-measured: warning: %v; the log may not explain the PCRs of this boot any more; appending anyway\n", err)
	}
	defer func() {
		if uerr := log.Unlock(); uerr != nil && err == nil {
			err = fail(fmt.Errorf("unlocking the measurement log: %w", uerr))
		}
	}()
	for i := range ms {
		m := &ms[i]
		if err := log.BeginWrite(); err != nil {
			return fail(fmt.Errorf("marking the measurement log for writing before %s: %w", m.describe(), err))
		}
		if err := pcrs.Extend(pcr, m.Sums); err != nil {
			if !errors.Is(err, ErrPCRUnchanged) {
				// The command may have reached the TPM: the log stays
				// marked as interrupted, which is the truth.
				return &MeasureError{PCR: pcr, Extended: extended, Logged: logged, Unknown: m.describe(),
					Err: fmt.Errorf("extending PCR %d with %s: %w", pcr, m.describe(), err)}
			}
			if aerr := log.AbortWrite(); aerr != nil {
				err = fmt.Errorf("%w; and clearing the log's write mark: %v", err, aerr)
			}
			return fail(fmt.Errorf("extending PCR %d with %s: %w", pcr, m.describe(), err))
		}
		extended = append(extended, m.describe())
		if err := log.Append(m.Record); err != nil {
			return fail(fmt.Errorf("appending the record of %s to the measurement log: %w", m.describe(), err))
		}
		logged++
	}
	if err := after(); err != nil {
		return fail(fmt.Errorf("building the handoff: %w", err))
	}
	return nil
}
