package verify

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/handoff"
	"github.com/kexec-measured/kexec-measured/history"
	"github.com/kexec-measured/kexec-measured/pcr"
)

// PCR statuses in the verdict's table.
const (
	StatusMatch       = "MATCH"       // events replay to the PCR's value
	StatusMismatch    = "MISMATCH"    // events replay to another value
	StatusUnexplained = "unexplained" // no event, but the PCR is not at its reset value
	StatusUnchecked   = "unchecked"   // events, but no value to compare with
	StatusIgnored     = "ignored"     // not compared (Input.Ignore)
)

// Unknown is printed for a kexec event that no reference matches.
const Unknown = "UNKNOWN"

// Input is everything Verify judges.
type Input struct {
	// Actual are the PCR values to compare with (the TPM's, or a --pcrs
	// file's). Its banks are the banks replayed and compared.
	Actual PCRValues
	// Firmware is the firmware's TCG event log; nil when there is none
	// (then the firmware's PCRs are unexplained unless at their reset
	// values).
	Firmware *eventlog.FirmwareLog
	// FirmwareErr says why the firmware log could not be used (it does not
	// parse); it is a finding.
	FirmwareErr error
	// Records is the userspace log: earlier boots' records (after a
	// handoff import) and this boot's, in order.
	Records []eventlog.Record
	// LogErr is an error of reading the log: a record that does not parse
	// (Records holds those before it) or the sticky bit
	// (eventlog.ErrInterrupted). It is a finding.
	LogErr error
	// References are the known building blocks; nil means none.
	References *References
	// Ignore lists PCRs that are not compared (e.g. 10, IMA's, whose log
	// verify does not read).
	Ignore []int
	// Notes are copied into the verdict (where the inputs came from).
	Notes []string
	// CurrentBootID is the running boot's ID
	// (/proc/sys/kernel/random/boot_id), to tell this boot's records from
	// earlier boots' (history.Group); "" when unknown.
	CurrentBootID string
}

// NewInput assembles the Input of a verification from what ReadLog and
// ReadFirmware read, with notes that say where each came from.
func NewInput(actual PCRValues, log *Log, fw *Firmware, refs *References, ignore []int) Input {
	in := Input{Actual: actual, References: refs, Ignore: ignore}
	if log != nil {
		in.Records, in.LogErr = log.Records, log.Err
		if log.Missing {
			in.Notes = append(in.Notes, fmt.Sprintf("no userspace log at %s: replaying no records", log.Path))
		} else {
			in.Notes = append(in.Notes, fmt.Sprintf("userspace log %s: %d records", log.Path, len(log.Records)))
		}
	}
	switch {
	case fw == nil || fw.Path == "":
		in.Notes = append(in.Notes, "no firmware log found: the firmware's PCRs are unexplained unless at their reset values")
	case fw.Err != nil:
		in.FirmwareErr = fw.Err
	default:
		in.Firmware = fw.Log
		in.Notes = append(in.Notes, fmt.Sprintf("firmware log %s: %d events", fw.Path, len(fw.Log.Events())))
	}
	return in
}

// Verdict is the result of Verify. Its JSON form is what verify --json
// prints.
type Verdict struct {
	OK       bool      `json:"ok"`
	Notes    []string  `json:"notes"`
	Boots    []Boot    `json:"boots"`
	PCRs     []PCRRow  `json:"pcrs"`
	Findings []Finding `json:"findings"`
}

// Boot is the kexec events of one boot, told apart by content.bootId.
type Boot struct {
	BootID  string  `json:"bootId"` // "" for records that carry none
	Current bool    `json:"current"`
	Records int     `json:"records"`
	Events  []Event `json:"events"`
}

// Event is one kexec-measured record and what it matched.
type Event struct {
	Record  int      `json:"record"` // index in the userspace log
	PCR     int      `json:"pcr"`
	Event   string   `json:"event"`
	Path    string   `json:"path,omitempty"`
	Segment *int     `json:"segment,omitempty"`
	Offset  int64    `json:"offset"`
	Size    int64    `json:"size"`
	Match   []string `json:"match"` // labels of the matching references; empty: UNKNOWN
}

// Describe names the event for messages: "kexec-initrd /boot/fw.cpio
// segment 1".
func (e Event) Describe() string {
	s := e.Event
	if e.Path != "" {
		s += " " + e.Path
	}
	if e.Segment != nil {
		s += fmt.Sprintf(" segment %d", *e.Segment)
	}
	return s
}

// PCRRow is one PCR of one bank.
type PCRRow struct {
	PCR      int    `json:"pcr"`
	Bank     string `json:"bank"`
	Status   string `json:"status"`
	Firmware int    `json:"firmwareEvents"`
	Records  int    `json:"records"`
	Replayed string `json:"replayed"`
	Actual   string `json:"actual,omitempty"`
}

// Finding is one reason the verdict is not OK. PCR, Bank, Record and
// Event say what it is about when they apply.
type Finding struct {
	PCR     *int   `json:"pcr,omitempty"`
	Bank    string `json:"bank,omitempty"`
	Record  *int   `json:"record,omitempty"`
	Event   string `json:"event,omitempty"`
	Message string `json:"message"`
}

// String formats a finding as one line.
func (f Finding) String() string {
	s := ""
	if f.PCR != nil {
		s += fmt.Sprintf("PCR %d ", *f.PCR)
	}
	if f.Bank != "" {
		s += f.Bank + " "
	}
	if f.Record != nil {
		s += fmt.Sprintf("record %d ", *f.Record)
	}
	if f.Event != "" {
		s += f.Event + " "
	}
	if s != "" {
		s = s[:len(s)-1] + ": "
	}
	return s + f.Message
}

// Verify replays every PCR of every bank of in.Actual from the firmware
// log and the userspace records, compares each with its actual value, and
// matches every kexec event against the references. The replay and the
// comparison are package history's (history.NewReport, once per bank with
// the PCRs that bank has values for); Verify adds what a verdict needs on
// top: PCRs away from their reset value without any event, ignored and
// unchecked PCRs, and the matching. Everything wrong is a finding in the
// verdict, never an error: a PCR that differs from its replay (MISMATCH),
// a PCR away from its reset value without any event (unexplained), events
// on a PCR without a value to compare (unchecked), a record without a
// digest for a compared bank, an unknown kexec event, a log that does not
// parse or was interrupted, a firmware log that is broken or lacks a bank.
func Verify(in Input) *Verdict {
	v := &Verdict{Notes: append([]string{}, in.Notes...), Boots: []Boot{}, PCRs: []PCRRow{}, Findings: []Finding{}}
	banks := in.Actual.Banks()
	if len(banks) == 0 {
		v.add(Finding{Message: "no PCR values to compare the replay to (the TPM has no bank, or --pcrs gives none)"})
	}
	if in.FirmwareErr != nil {
		v.add(Finding{Message: fmt.Sprintf("firmware log: %v", in.FirmwareErr)})
	}
	logFinding := -1
	if in.LogErr != nil {
		msg := fmt.Sprintf("userspace log: %v", in.LogErr)
		if errors.Is(in.LogErr, eventlog.ErrMalformed) || errors.Is(in.LogErr, eventlog.ErrTruncated) {
			msg += fmt.Sprintf(" (replayed the %d records that parse)", len(in.Records))
		}
		logFinding = len(v.Findings)
		v.add(Finding{Message: msg})
	}

	var fwEvents, recordsOn [pcr.Count]int
	if in.Firmware != nil {
		for _, ev := range in.Firmware.Events() {
			if ev.Extends() {
				fwEvents[ev.PCR]++
			}
		}
		for _, h := range banks {
			if _, err := in.Firmware.Replay([]crypto.Hash{h}); err != nil {
				bank, _ := pcr.Name(h)
				v.add(Finding{Bank: bank, Message: fmt.Sprintf("firmware log: %v", err)})
			}
		}
	}
	for _, r := range in.Records {
		if pcr.Check(r.PCR) == nil {
			recordsOn[r.PCR]++
		}
	}
	log := &eventlog.Log{Records: in.Records, Interrupted: errors.Is(in.LogErr, eventlog.ErrInterrupted)}
	// One history.NewReport per set of PCRs with values: with a TPM every
	// bank has all 24, so it is one call for all banks.
	var report *history.Report
	groups := map[string][]crypto.Hash{}
	var keys []string
	for _, h := range banks {
		key := fmt.Sprint(comparedPCRs(in, h))
		if _, ok := groups[key]; !ok {
			keys = append(keys, key)
		}
		groups[key] = append(groups[key], h)
	}
	for _, key := range keys {
		group := groups[key]
		rep, err := history.NewReport(history.Input{Log: log, Firmware: in.Firmware, CurrentBootID: in.CurrentBootID,
			Banks: group, PCRs: comparedPCRs(in, group[0]), TPM: valueReader(in.Actual)})
		if err != nil { // cannot happen: valueReader has every compared value
			v.add(Finding{Message: err.Error()})
			continue
		}
		report = rep
		checks := map[crypto.Hash]map[int]history.PCRCheck{}
		for _, c := range rep.Checks {
			if checks[c.Bank] == nil {
				checks[c.Bank] = map[int]history.PCRCheck{}
			}
			checks[c.Bank][c.PCR] = c
		}
		for _, h := range group {
			for i := 0; i < pcr.Count; i++ {
				c, compared := checks[h][i]
				v.addRow(in, h, i, c, compared, fwEvents[i], recordsOn[i])
			}
		}
	}
	slices.SortStableFunc(v.PCRs, func(a, b PCRRow) int { return a.PCR - b.PCR })

	if report == nil {
		report = &history.Report{Boots: history.Group(history.Entries(in.Records), in.CurrentBootID)}
	}
	for _, b := range report.Boots {
		out := Boot{BootID: b.ID, Current: b.Current, Records: len(b.Entries), Events: []Event{}}
		for _, e := range b.Entries {
			if e.ContentType == eventlog.ContentType {
				out.Events = append(out.Events, matchEvent(in, banks, e.Index, e.Record, v))
			}
		}
		v.Boots = append(v.Boots, out)
	}
	var skip *eventlog.SkipError
	if logFinding >= 0 && errors.As(in.LogErr, &skip) {
		v.Findings[logFinding].Message += "; " + mayHide(v.PCRs)
	}
	v.OK = len(v.Findings) == 0
	return v
}

// mayHide says which PCRs ranges of the log that are not records may hide
// records of: those whose replay does not match in some bank (a skipped
// range can have held a record of any PCR).
func mayHide(rows []PCRRow) string {
	var pcrs []string
	for _, r := range rows {
		if p := fmt.Sprint(r.PCR); r.Status == StatusMismatch && !slices.Contains(pcrs, p) {
			pcrs = append(pcrs, p)
		}
	}
	if len(pcrs) == 0 {
		return "every compared PCR matches without the skipped bytes"
	}
	return "the skipped bytes may hide records of PCR " + strings.Join(pcrs, ", ")
}

func (v *Verdict) add(f Finding) { v.Findings = append(v.Findings, f) }

// addRow adds the row of PCR i in bank h, and its finding if any. c is
// history's check of it when compared; fwEvents and records count the
// events on the PCR.
func (v *Verdict) addRow(in Input, h crypto.Hash, i int, c history.PCRCheck, compared bool, fwEvents, records int) {
	bank, _ := pcr.Name(h)
	actual := in.Actual[h][i]
	row := PCRRow{PCR: i, Bank: bank, Firmware: fwEvents, Records: records}
	if actual != nil {
		row.Actual = hex.EncodeToString(actual)
	}
	events := row.Firmware + row.Records
	atReset := actual != nil && bytes.Equal(actual, pcr.Initial(h, i))
	if compared {
		row.Replayed = hex.EncodeToString(c.Replayed)
	}
	switch {
	case slices.Contains(in.Ignore, i):
		if events == 0 && (actual == nil || atReset) {
			return
		}
		row.Status = StatusIgnored
	case actual == nil:
		if events == 0 {
			return
		}
		row.Status = StatusUnchecked
		if row.Records > 0 {
			v.add(Finding{PCR: &i, Bank: bank, Message: fmt.Sprintf("%d record(s) but no PCR value to check them against", row.Records)})
		}
	case events == 0 && atReset:
		return
	case events == 0:
		row.Status = StatusUnexplained
		v.add(Finding{PCR: &i, Bank: bank, Message: fmt.Sprintf("unexplained: the PCR holds %x, but no log records an extend of it", actual)})
	case c.State == history.Match:
		row.Status = StatusMatch
	case c.Replayed == nil:
		row.Status = StatusMismatch
		v.add(Finding{PCR: &i, Bank: bank, Message: "MISMATCH: " + c.Reason})
	default:
		row.Status = StatusMismatch
		v.add(Finding{PCR: &i, Bank: bank, Message: fmt.Sprintf("MISMATCH: the PCR holds %x, the logs replay to %x (%d firmware event(s), %d record(s)): %s",
			actual, c.Replayed, row.Firmware, row.Records, c.Reason)})
	}
	v.PCRs = append(v.PCRs, row)
}

// comparedPCRs returns the PCRs of bank h that have a value and are not
// ignored; never nil (nil asks history for every PCR with events).
func comparedPCRs(in Input, h crypto.Hash) []int {
	out := []int{}
	for i := 0; i < pcr.Count; i++ {
		if !slices.Contains(in.Ignore, i) && in.Actual[h][i] != nil {
			out = append(out, i)
		}
	}
	return out
}

// valueReader serves PCR values that were read already (or given in a
// file) to history.NewReport.
type valueReader PCRValues

func (r valueReader) ReadPCR(index int, h crypto.Hash) ([]byte, error) {
	if err := pcr.Check(index); err != nil {
		return nil, err
	}
	if v := r[h][index]; v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("verify: no value for PCR %d in bank %v", index, h)
}

// matchEvent matches one kexec-measured record against the references,
// comparing only the digests of the banks that are checked against the
// PCRs.
func matchEvent(in Input, banks []crypto.Hash, i int, rec eventlog.Record, v *Verdict) Event {
	var c eventlog.KexecContent
	_ = json.Unmarshal(rec.Content, &c) // an unreadable content leaves an unnamed event
	ev := Event{Record: i, PCR: rec.PCR, Event: c.Event, Path: c.Path, Segment: c.Segment, Offset: c.Offset, Size: c.Size, Match: []string{}}
	sums := map[crypto.Hash][]byte{}
	for _, h := range banks {
		if s, err := rec.Sum(h); err == nil {
			sums[h] = s
		}
	}
	if c.Event == eventlog.EventHandoff {
		if len(sums) > 0 && isHandoffDigest(sums) {
			ev.Match = append(ev.Match, "(handoff)")
			return ev
		}
	} else if in.References != nil {
		for _, e := range in.References.Match(c.Event, sums) {
			if l := e.Label(); !slices.Contains(ev.Match, l) {
				ev.Match = append(ev.Match, l)
			}
		}
	}
	if len(ev.Match) == 0 {
		p := rec.PCR
		msg := Unknown + ": no reference has this digest"
		if s, ok := sums[crypto.SHA256]; ok {
			msg += fmt.Sprintf(" (sha256 %x)", s)
		}
		if c.Event == eventlog.EventHandoff {
			msg = Unknown + ": the digest is not the handoff's constant"
		}
		v.add(Finding{PCR: &p, Record: &i, Event: ev.Describe(), Message: msg})
	}
	return ev
}

func isHandoffDigest(sums map[crypto.Hash][]byte) bool {
	for h, s := range sums {
		d := h.New()
		d.Write([]byte(handoff.EventText))
		if !bytes.Equal(d.Sum(nil), s) {
			return false
		}
	}
	return true
}
