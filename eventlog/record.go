// Package eventlog reads and writes the userspace measurement log that
// systemd keeps at /run/log/systemd/tpm2-measure.log: JSON-SEQ (RFC 7464) of
// TCG Canonical Event Log (CEL-JSON) records without recnum.
package eventlog

import (
	"crypto"
	"encoding/json"
)

// ContentType is the content_type of the records kexec-measured writes.
const ContentType = "kexec-measured"

// Event names of kexec-measured records (DESIGN §5).
const (
	EventKernel  = "kexec-kernel"
	EventInitrd  = "kexec-initrd"
	EventCmdline = "kexec-cmdline"
)

// Digest is one bank's digest of a record, as CEL-JSON spells it.
type Digest struct {
	HashAlg string `json:"hashAlg"` // "sha1", "sha256", "sha384", "sha512"
	Digest  string `json:"digest"`  // lower-case hex
}

// KexecContent is the content of a kexec-measured record. Its fields are
// informational: a verifier trusts the digests, not the names.
type KexecContent struct {
	Event     string `json:"event"`
	Path      string `json:"path,omitempty"`
	Offset    int64  `json:"offset"`
	Size      int64  `json:"size"`
	Segment   *int   `json:"segment,omitempty"`
	Kind      string `json:"kind,omitempty"`
	BootID    string `json:"bootId,omitempty"`
	Timestamp int64  `json:"timestamp,omitempty"`
}

// Record is one log record.
type Record struct {
	PCR         int
	Digests     []Digest
	ContentType string
	Content     json.RawMessage
	// Raw holds the record's JSON text exactly as read (without the RS and
	// LF); nil for a record built in memory. A record with Raw is written
	// back byte for byte.
	Raw []byte
}

// NewKexecRecord builds a kexec-measured record for pcr with one digest per
// bank in sums (ordered by crypto.Hash) and content c.
func NewKexecRecord(pcr int, sums map[crypto.Hash][]byte, c KexecContent) (Record, error) {
	panic("eventlog: NewKexecRecord not yet implemented")
}
