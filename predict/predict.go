// Package predict computes the value a PCR will hold right after a planned
// kexec load, in every bank, and writes it in the forms that policies are
// written in: a systemd-pcrlock component (pcrlock.go) and a Keylime
// tpm_policy fragment (keylime.go). See docs/predict.md.
//
// A prediction is a start value per bank (the PCR as it is now: read from
// the TPM, replayed from the logs, or the reset value) extended with the
// digests of the planned load's events, in order: new = H(old || digest)
// (TPM 2.0 Part 1 §17.2). The events come from the loader's own dry run,
// so a prediction lists exactly what the load will extend; this package
// computes nothing from files itself.
package predict

import (
	"crypto"
	"errors"
	"fmt"
	"slices"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/pcr"
)

// ErrBank reports a bank that a start value, an event or a log lacks.
var ErrBank = errors.New("predict: missing bank")

// Source says where a start value came from.
type Source string

// The sources of a start value.
const (
	SourceTPM  Source = "tpm"  // TPM2_PCR_Read of the PCR now
	SourceLog  Source = "log"  // replay of the firmware log and/or the userspace log
	SourceZero Source = "zero" // the reset value (pcr.Initial)
)

// Start is the value of the PCR before the load, in each bank.
type Start struct {
	Source Source
	// What names the TPM or the log files, for messages.
	What   string
	Values map[crypto.Hash][]byte
	// History are the kexec-measured records on the PCR that the replayed
	// userspace log holds, in log order: the loads of earlier boots of a
	// kexec chain. Only a log start knows them (nil otherwise); the
	// systemd-pcrlock component lists them ahead of the planned load's
	// records, so that it matches the whole chain (docs/predict.md).
	History []eventlog.Record
}

// Zero returns the reset value of PCR index in each bank.
func Zero(index int, banks []crypto.Hash) (Start, error) {
	if err := check(index, banks); err != nil {
		return Start{}, err
	}
	s := Start{Source: SourceZero, What: "the reset value", Values: map[crypto.Hash][]byte{}}
	for _, h := range banks {
		s.Values[h] = pcr.Initial(h, index)
	}
	return s, nil
}

// FromValues returns a start value read elsewhere (from a TPM: source
// SourceTPM, what names it). vals must hold every bank of banks, each of
// its hash's size; an absent bank gives an error wrapping ErrBank.
func FromValues(source Source, what string, vals map[crypto.Hash][]byte, banks []crypto.Hash) (Start, error) {
	if len(banks) == 0 {
		return Start{}, errors.New("predict: no banks")
	}
	s := Start{Source: source, What: what, Values: map[crypto.Hash][]byte{}}
	for _, h := range banks {
		name, err := pcr.Name(h)
		if err != nil {
			return Start{}, fmt.Errorf("predict: %w", err)
		}
		v, ok := vals[h]
		if !ok {
			return Start{}, fmt.Errorf("%w: %s has no %s value", ErrBank, what, name)
		}
		if len(v) != h.Size() {
			return Start{}, fmt.Errorf("predict: %s: the %s value has %d bytes, want %d", what, name, len(v), h.Size())
		}
		s.Values[h] = slices.Clone(v)
	}
	return s, nil
}

// FromLogs replays PCR index in each bank: from the firmware log's replayed
// values (firmware, as eventlog.FirmwareLog.Replay returns them; nil: the
// reset value), then every record of the userspace log on that PCR, in
// order. what names the logs for messages. A bank the firmware replay
// lacks, or a record without a digest of one of banks, is an error.
func FromLogs(what string, firmware map[crypto.Hash][pcr.Count][]byte, records []eventlog.Record, index int, banks []crypto.Hash) (Start, error) {
	if err := check(index, banks); err != nil {
		return Start{}, err
	}
	s := Start{Source: SourceLog, What: what, Values: map[crypto.Hash][]byte{}}
	for _, h := range banks {
		v := pcr.Initial(h, index)
		if firmware != nil {
			pcrs, ok := firmware[h]
			if !ok || len(pcrs[index]) != h.Size() {
				name, _ := pcr.Name(h)
				return Start{}, fmt.Errorf("%w: the firmware log has no %s bank", ErrBank, name)
			}
			v = slices.Clone(pcrs[index])
		}
		s.Values[h] = v
	}
	for i, rec := range records {
		if rec.PCR != index {
			continue
		}
		for _, h := range banks {
			sum, err := rec.Sum(h)
			if err != nil {
				return Start{}, fmt.Errorf("predict: %s: record %d: %w", what, i, err)
			}
			s.Values[h] = pcr.Extend(h, s.Values[h], sum)
		}
		if rec.ContentType == eventlog.ContentType {
			s.History = append(s.History, rec)
		}
	}
	return s, nil
}

// check checks a PCR index and a bank list.
func check(index int, banks []crypto.Hash) error {
	if err := pcr.Check(index); err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	if len(banks) == 0 {
		return errors.New("predict: no banks")
	}
	for _, h := range banks {
		if !pcr.Supported(h) {
			return fmt.Errorf("predict: %w: %v", pcr.ErrUnknownBank, h)
		}
	}
	return nil
}

// Event is one planned extend: what the loader will log (its content) and
// its digest in each bank.
type Event struct {
	eventlog.KexecContent
	Sums map[crypto.Hash][]byte
}

// Prediction is the value PCR will hold after Events are extended onto
// Start, in each bank of Banks.
type Prediction struct {
	PCR    int
	Banks  []crypto.Hash // crypto.Hash order
	Start  Start
	Events []Event
	Values map[crypto.Hash][]byte
}

// New extends events onto start for PCR index, in every bank of start. An
// event without a digest of one of those banks, or with a digest of the
// wrong size, gives an error (wrapping ErrBank for an absent one).
func New(start Start, index int, events []Event) (*Prediction, error) {
	if err := pcr.Check(index); err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	if len(start.Values) == 0 {
		return nil, errors.New("predict: the start value has no banks")
	}
	p := &Prediction{PCR: index, Start: start, Events: events, Values: map[crypto.Hash][]byte{}}
	for h, v := range start.Values {
		p.Banks = append(p.Banks, h)
		p.Values[h] = slices.Clone(v)
	}
	slices.Sort(p.Banks)
	for i, ev := range events {
		for _, h := range p.Banks {
			name, _ := pcr.Name(h)
			sum, ok := ev.Sums[h]
			if !ok {
				return nil, fmt.Errorf("%w: event %d (%s) has no %s digest", ErrBank, i, ev.Event, name)
			}
			if len(sum) != h.Size() {
				return nil, fmt.Errorf("predict: event %d (%s): the %s digest has %d bytes, want %d", i, ev.Event, name, len(sum), h.Size())
			}
			p.Values[h] = pcr.Extend(h, p.Values[h], sum)
		}
	}
	return p, nil
}
