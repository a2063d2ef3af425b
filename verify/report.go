package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText prints the verdict for people: per boot each kexec event and
// what it matched (or UNKNOWN), then the PCR table, then the verdict line
// and one line per finding.
func (v *Verdict) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, n := range v.Notes {
		fmt.Fprintf(tw, "note: %s\n", n)
	}
	for i, b := range v.Boots {
		id := b.BootID
		if id == "" {
			id = "(no boot id)"
		}
		current := ""
		if b.Current {
			current = ", this boot"
		}
		fmt.Fprintf(tw, "boot %d of %d: %s (%d records, %d kexec events%s)\n", i+1, len(v.Boots), id, b.Records, len(b.Events), current)
		for _, e := range b.Events {
			match := Unknown
			if len(e.Match) > 0 {
				match = strings.Join(e.Match, " = ")
			}
			fmt.Fprintf(tw, "  record %d\tPCR %d\t%s\t%s\t%s\n", e.Record, e.PCR, e.Event, pathOf(e), match)
		}
	}
	if len(v.Boots) == 0 {
		fmt.Fprintln(tw, "no userspace records")
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "PCR\tbank\tstatus\tfirmware events\trecords")
	for _, r := range v.PCRs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\n", r.PCR, r.Bank, r.Status, r.Firmware, r.Records)
	}
	fmt.Fprintln(tw)
	if v.OK {
		fmt.Fprintf(tw, "verdict: OK: every PCR with events matches its replay, every kexec event is known\n")
	} else {
		fmt.Fprintf(tw, "verdict: FAIL: %d finding(s)\n", len(v.Findings))
		for _, f := range v.Findings {
			fmt.Fprintf(tw, "finding: %s\n", f)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("verify: write the verdict: %w", err)
	}
	return nil
}

func pathOf(e Event) string {
	s := e.Path
	if e.Segment != nil {
		s += fmt.Sprintf(" segment %d", *e.Segment)
	}
	if s == "" {
		s = "-"
	}
	return s
}

// WriteJSON prints the verdict as one JSON object and a newline.
func (v *Verdict) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("verify: write the verdict: %w", err)
	}
	return nil
}
