package handoff

import (
	"bytes"

	"github.com/kexec-measured/kexec-measured/eventlog"
)

// Merge returns the log that importing handed (the log an earlier boot
// handed over) into current (this boot's log as it stands) gives: the
// handed-over bytes ahead of this boot's, each byte for byte. Every record
// of handed was extended before every record of current (an earlier boot's
// extends come before a later boot's), so this order keeps each PCR's
// order and replays to the TPM's values.
//
// Import is idempotent by content: if current already starts with handed
// (an earlier run imported it, and this boot's records, systemd's or ours,
// were appended after it), Merge returns current unchanged and already
// true. An empty handed changes nothing. A handed-over log with ranges that
// are not records (damage, a record cut short at its end) is merged as it
// is: the log reader skips such a range up to the next record separator
// (RFC 7464 §2.3), and every record of current starts with one, so none of
// this boot's records is lost; Count says how many ranges are damaged.
func Merge(handed, current []byte) (merged []byte, already bool) {
	if len(handed) == 0 || bytes.HasPrefix(current, handed) {
		return current, true
	}
	merged = make([]byte, 0, len(handed)+len(current))
	merged = append(merged, handed...)
	return append(merged, current...), false
}

// Count returns the number of well-formed records in log and the number of
// ranges that are not records.
func Count(log []byte) (records, damaged int) {
	lr := eventlog.NewReader(bytes.NewReader(log))
	for {
		_, err := lr.Next()
		if err == nil {
			records++
			continue
		}
		if _, ok := err.(*eventlog.SkipError); ok {
			continue
		}
		return records, len(lr.Skipped())
	}
}
