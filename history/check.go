package history

import (
	"bytes"
	"crypto"
	"fmt"
	"slices"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/pcr"
)

// State is the verdict for one PCR in one bank.
type State int

const (
	NotChecked State = iota // no TPM to compare with, or nothing to replay
	Match
	Mismatch
)

func (s State) String() string {
	switch s {
	case Match:
		return "MATCH"
	case Mismatch:
		return "MISMATCH"
	}
	return "not checked"
}

// MarshalText spells the state as String does.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// PCRCheck is the verdict for one PCR in one bank.
type PCRCheck struct {
	PCR      int
	Bank     crypto.Hash
	Replayed []byte // nil when the bank cannot be replayed (a record lacks its digest)
	Actual   []byte // nil when not read
	State    State
	// Reason says why the state is not Match, in words.
	Reason string
}

// PCRReader reads a PCR value. *tpm.TPM implements it.
type PCRReader interface {
	ReadPCR(index int, h crypto.Hash) ([]byte, error)
}

// Input is what a Report is made of.
type Input struct {
	// Log is the userspace log (earlier boots' records first).
	Log *eventlog.Log
	// Firmware is the parsed firmware log; nil when there is none, or it
	// could not be parsed (say why in FirmwareNote).
	Firmware     *eventlog.FirmwareLog
	FirmwareNote string
	// CurrentBootID is the running boot's ID
	// (/proc/sys/kernel/random/boot_id), for Group.
	CurrentBootID string
	// Banks to replay and check; nil means every bank of pcr.Banks that
	// the records carry.
	Banks []crypto.Hash
	// PCRs to check; nil means every PCR a record (or a firmware event)
	// extends.
	PCRs []int
	// TPM, when not nil, is read for the values; nil leaves every PCR
	// NotChecked.
	TPM PCRReader
	// NoTPMNote says why TPM is nil ("--tpm=none").
	NoTPMNote string
}

// Report is the history of the PCRs: boots, replay, verdicts.
type Report struct {
	Boots       []Boot
	Checks      []PCRCheck
	Interrupted bool // the log's sticky bit was set
	// Skipped are the log's ranges that are not records.
	Skipped  []*eventlog.SkipError
	Firmware *eventlog.FirmwareLog
	// FirmwareNote says why there is no firmware log replay, "" when there
	// is one.
	FirmwareNote string
}

// OK reports whether every checked PCR matched and no write was
// interrupted: exit status 0 of `log`.
func (r *Report) OK() bool {
	if r.Interrupted || len(r.Skipped) > 0 {
		return false
	}
	for _, c := range r.Checks {
		if c.State == Mismatch {
			return false
		}
	}
	return true
}

// Mismatches returns the checks that did not match.
// MayHide returns the PCRs that the log's skipped ranges may hide records
// of: a range that is not a record can have held a record of any PCR, and
// the ones it may have hidden are those the remaining records do not
// explain (a mismatch in any bank), each once, in order. With no skipped
// range it returns nil.
func (r *Report) MayHide() []int {
	if len(r.Skipped) == 0 {
		return nil
	}
	var out []int
	for _, c := range r.Mismatches() {
		if !slices.Contains(out, c.PCR) {
			out = append(out, c.PCR)
		}
	}
	slices.Sort(out)
	return out
}

func (r *Report) Mismatches() []PCRCheck {
	var out []PCRCheck
	for _, c := range r.Checks {
		if c.State == Mismatch {
			out = append(out, c)
		}
	}
	return out
}

// NewReport groups the log, replays the firmware log and then the
// userspace log per bank, and compares with the TPM. It returns an error
// only when the TPM cannot be read.
func NewReport(in Input) (*Report, error) {
	var recs []eventlog.Record
	r := &Report{Firmware: in.Firmware, FirmwareNote: in.FirmwareNote}
	if in.Log != nil {
		recs = in.Log.Records
		r.Interrupted, r.Skipped = in.Log.Interrupted, in.Log.Skipped
	}
	r.Boots = Group(Entries(recs), in.CurrentBootID)
	banks := in.Banks
	if banks == nil {
		banks = recordBanks(recs)
	}
	pcrs := in.PCRs
	if pcrs == nil {
		pcrs = PCRs(recs)
		if in.Firmware != nil {
			for _, ev := range in.Firmware.Events() {
				if ev.Extends() && !slices.Contains(pcrs, ev.PCR) {
					pcrs = append(pcrs, ev.PCR)
				}
			}
			slices.Sort(pcrs)
		}
	}
	start := Reset(banks)
	fwBanks := map[crypto.Hash]bool{}
	if in.Firmware != nil {
		for _, h := range banks {
			if v, err := in.Firmware.Replay([]crypto.Hash{h}); err == nil {
				start[h] = v[h]
				fwBanks[h] = true
			}
		}
	}
	values, missing := Replay(start, recs, banks)
	for _, p := range pcrs {
		for _, h := range banks {
			c := PCRCheck{PCR: p, Bank: h, Replayed: values[h][p]}
			if i, ok := missing[h][p]; ok {
				c.Reason = fmt.Sprintf("record %d has no %s digest: this bank cannot be replayed", i, bankName(h))
				r.Checks = append(r.Checks, c)
				continue
			}
			if in.TPM == nil {
				c.Reason = in.NoTPMNote
				r.Checks = append(r.Checks, c)
				continue
			}
			actual, err := in.TPM.ReadPCR(p, h)
			if err != nil {
				return r, fmt.Errorf("history: read PCR %d (%s) from the TPM: %w", p, bankName(h), err)
			}
			c.Actual = actual
			if bytes.Equal(actual, c.Replayed) {
				c.State = Match
			} else {
				c.State = Mismatch
				c.Reason = r.mismatchReason(p, in.Firmware != nil && fwBanks[h])
			}
			r.Checks = append(r.Checks, c)
		}
	}
	return r, nil
}

// mismatchReason says what a PCR that the log does not explain most likely
// lacks.
func (r *Report) mismatchReason(p int, firmwareReplayed bool) string {
	var earlier []string
	for _, b := range r.Boots {
		if !b.Current {
			earlier = append(earlier, b.ID)
		}
	}
	msg := "not explained: the TPM holds extends that no record explains"
	if len(earlier) > 0 {
		msg += fmt.Sprintf("; records appended in boot %s after its handoff was last built (by the load, or by `kexec-measured log refresh` late in the shutdown), e.g. systemd's shutdown phases, never reached this boot", earlier[len(earlier)-1])
	} else {
		msg += "; the log holds no earlier boot: a kexec without a handoff (--no-handoff) or without `kexec-measured log import`"
	}
	if !firmwareReplayed && p <= 9 {
		msg += "; the firmware log was not replayed (" + r.firmwareWhy() + "), so the firmware's extends of this PCR are missing"
	}
	if r.Interrupted {
		msg += "; a write was interrupted (sticky bit)"
	}
	return msg + "; or a record was changed"
}

func (r *Report) firmwareWhy() string {
	if r.FirmwareNote != "" {
		return r.FirmwareNote
	}
	return "it lacks the bank"
}

// recordBanks returns the banks of pcr.Banks that any record carries.
func recordBanks(recs []eventlog.Record) []crypto.Hash {
	var out []crypto.Hash
	for _, h := range pcr.Banks() {
		for _, r := range recs {
			if _, err := r.Sum(h); err == nil {
				out = append(out, h)
				break
			}
		}
	}
	return out
}

func bankName(h crypto.Hash) string {
	if n, err := pcr.Name(h); err == nil {
		return n
	}
	return h.String()
}
