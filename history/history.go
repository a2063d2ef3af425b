// Package history explains the PCRs of a machine that may have been
// kexec'd several times: it groups the userspace log's records by boot,
// replays the firmware log and the userspace log per PCR and bank, and
// compares the result with the TPM's values.
//
// The log holds the records of earlier boots ahead of this boot's (see
// package handoff, docs/handoff.md). `kexec-measured log` prints a Report;
// `kexec-measured verify` builds on Replay and Check.
package history

import (
	"crypto"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/pcr"
)

// Entry is one record of the log, with what a reader wants to see of it.
type Entry struct {
	Index       int // position in the log, from 0
	PCR         int
	ContentType string
	// Event is content.event of a kexec-measured record, content.eventType
	// of a systemd record (e.g. "phase"), else the content type.
	Event string
	// What is the path of a kexec-measured record, the measured string of
	// a systemd record.
	What string
	// Size is content.size of a kexec-measured record, -1 otherwise.
	Size int64
	// Bank and Digest are the record's digest in its strongest bank
	// (SHA-512 over SHA-384 over SHA-256 over SHA-1); Bank 0 when the
	// record carries none of them.
	Bank   crypto.Hash
	Digest []byte
	// BootID is content.bootId as written ("" when the record has none);
	// Boot the boot it is counted in (see Group).
	BootID string
	Record eventlog.Record
}

// content is the union of the content fields we read.
type content struct {
	Event     string `json:"event"`
	Path      string `json:"path"`
	Size      *int64 `json:"size"`
	String    string `json:"string"`
	EventType string `json:"eventType"`
	BootID    string `json:"bootId"`
}

// Entries describes each record.
func Entries(recs []eventlog.Record) []Entry {
	out := make([]Entry, 0, len(recs))
	for i, r := range recs {
		var c content
		json.Unmarshal(r.Content, &c) //nolint:errcheck // content is informational; a record without it is still replayed
		e := Entry{Index: i, PCR: r.PCR, ContentType: r.ContentType, Size: -1, BootID: c.BootID, Record: r}
		switch r.ContentType {
		case eventlog.ContentType:
			e.Event, e.What = c.Event, c.Path
			if c.Size != nil {
				e.Size = *c.Size
			}
		case eventlog.SystemdContentType:
			e.Event, e.What = c.EventType, c.String
			if e.Event == "" {
				e.Event = "systemd"
			}
		default:
			e.Event, e.What = r.ContentType, c.String
		}
		banks := pcr.Banks()
		for i := len(banks) - 1; i >= 0; i-- {
			if sum, err := r.Sum(banks[i]); err == nil {
				e.Bank, e.Digest = banks[i], sum
				break
			}
		}
		out = append(out, e)
	}
	return out
}

// NormalizeBootID returns the form in which boot IDs are compared: lower
// case, without dashes (/proc/sys/kernel/random/boot_id has dashes,
// systemd's records have none).
func NormalizeBootID(id string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(id), "-", ""))
}

// Boot is one boot's records, in log order.
type Boot struct {
	// ID is the boot ID as its first record spells it; "" when none of
	// its records carries one.
	ID string
	// Current is true for the boot whose ID is the running boot's.
	Current bool
	Entries []Entry
}

// Group splits the entries into boots, oldest first. Records carry
// content.bootId (ours always, systemd's in recent versions); a record
// without one belongs to the boot whose records surround it: to the boot of
// the next record that has an ID (a boot's first records are systemd's,
// before our own), and after the last record with an ID to that record's
// boot if it is the running boot, else to the running boot (currentID; ""
// when unknown): records appended after the handed-over ones are this
// boot's. Boot IDs are compared as NormalizeBootID gives them.
func Group(entries []Entry, currentID string) []Boot {
	current := NormalizeBootID(currentID)
	ids := make([]string, len(entries))
	next := ""
	for i := len(entries) - 1; i >= 0; i-- {
		if id := NormalizeBootID(entries[i].BootID); id != "" {
			next = id
		}
		ids[i] = next
	}
	last := ""
	for i := range entries {
		if id := NormalizeBootID(entries[i].BootID); id != "" {
			last = id
		}
		if NormalizeBootID(entries[i].BootID) == "" && ids[i] == "" {
			// After the last record with an ID.
			ids[i] = last
			if current != "" && last != current {
				ids[i] = current
			}
		}
	}
	var boots []Boot
	for i, e := range entries {
		if len(boots) == 0 || NormalizeBootID(boots[len(boots)-1].ID) != ids[i] {
			id := ids[i]
			if id == current {
				id = strings.TrimSpace(currentID)
			}
			boots = append(boots, Boot{ID: id, Current: current != "" && ids[i] == current})
		}
		b := &boots[len(boots)-1]
		if !b.Current && e.BootID != "" && !strings.Contains(b.ID, "-") {
			b.ID = e.BootID // the spelling of the records, dashes preferred
		}
		b.Entries = append(b.Entries, e)
	}
	return boots
}

// Values are PCR values per bank.
type Values = map[crypto.Hash][pcr.Count][]byte

// Reset returns the values after a TPM reset (pcr.Initial) in banks.
func Reset(banks []crypto.Hash) Values {
	out := make(Values, len(banks))
	for _, h := range banks {
		var v [pcr.Count][]byte
		for i := range v {
			v[i] = pcr.Initial(h, i)
		}
		out[h] = v
	}
	return out
}

// Replay extends start (copied; nil means Reset) with the records' digests
// in order, per bank of banks. A record without a digest for a bank makes
// that bank of that PCR unreplayable: its value is nil and missing names
// the first such record per bank and PCR.
func Replay(start Values, recs []eventlog.Record, banks []crypto.Hash) (values Values, missing map[crypto.Hash]map[int]int) {
	if start == nil {
		start = Reset(banks)
	}
	values = make(Values, len(banks))
	missing = map[crypto.Hash]map[int]int{}
	for _, h := range banks {
		v, ok := start[h]
		if !ok {
			v = Reset([]crypto.Hash{h})[h]
		}
		var cp [pcr.Count][]byte
		for i := range v {
			cp[i] = slices.Clone(v[i])
		}
		values[h] = cp
	}
	for i, r := range recs {
		if pcr.Check(r.PCR) != nil {
			continue
		}
		for _, h := range banks {
			v := values[h]
			if v[r.PCR] == nil {
				continue
			}
			sum, err := r.Sum(h)
			if err != nil {
				if missing[h] == nil {
					missing[h] = map[int]int{}
				}
				missing[h][r.PCR] = i
				v[r.PCR] = nil
			} else {
				v[r.PCR] = pcr.Extend(h, v[r.PCR], sum)
			}
			values[h] = v
		}
	}
	return values, missing
}

// PCRs returns the PCRs the records extend, in order.
func PCRs(recs []eventlog.Record) []int {
	var out []int
	for _, r := range recs {
		if !slices.Contains(out, r.PCR) {
			out = append(out, r.PCR)
		}
	}
	slices.Sort(out)
	return out
}

func hexOrEmpty(b []byte) string {
	if b == nil {
		return ""
	}
	return hex.EncodeToString(b)
}
