package handoff

import (
	"bytes"
	"fmt"

	"github.com/kexec-measured/kexec-measured/eventlog"
)

// Merge returns the log that importing handed (the log an earlier boot
// handed over) into current (this boot's log as it stands) gives: the
// handed-over records ahead of this boot's records, each byte for byte.
// Every record of handed was extended before every record of current (an
// earlier boot's extends come before a later boot's), so this order keeps
// each PCR's order and replays to the TPM's values.
//
// Import is idempotent by content: if current already starts with handed
// (an earlier run imported it, and this boot's records, systemd's or ours,
// were appended after it), Merge returns current unchanged and already
// true. handed must be a whole log (every record complete: a log cut in
// the middle of a record would swallow this boot's first record); a
// malformed one gives an error wrapping eventlog.ErrMalformed or
// eventlog.ErrTruncated. An empty handed changes nothing.
func Merge(handed, current []byte) (merged []byte, already bool, err error) {
	if len(handed) == 0 || bytes.HasPrefix(current, handed) {
		return current, true, nil
	}
	if _, err := eventlog.ReadAll(bytes.NewReader(handed)); err != nil {
		return nil, false, fmt.Errorf("handoff: the handed-over log: %w", err)
	}
	merged, already = mergeChecked(handed, current)
	return merged, already, nil
}

// mergeChecked is Merge for a handed-over log already checked to be whole.
func mergeChecked(handed, current []byte) (merged []byte, already bool) {
	if len(handed) == 0 || bytes.HasPrefix(current, handed) {
		return current, true
	}
	merged = make([]byte, 0, len(handed)+len(current))
	merged = append(merged, handed...)
	return append(merged, current...), false
}
