// Package eventlog reads and writes the userspace measurement log that
// systemd keeps at /run/log/systemd/tpm2-measure.log: JSON-SEQ (RFC 7464) of
// TCG Canonical Event Log (CEL-JSON) records without recnum.
//
// The file format, the locking protocol and the sticky-bit rule are described
// in docs/log.md. Records written by systemd (content_type "systemd") and by
// kexec-measured (content_type "kexec-measured") live in the same file; a
// record that was read keeps its bytes (Record.Raw) and is written back byte
// for byte, so no field, known or unknown, is lost on a round trip.
package eventlog

import (
	"bytes"
	"crypto"
	_ "crypto/sha1" // link the bank hashes so crypto.Hash.New works
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// ContentType is the content_type of the records kexec-measured writes.
const ContentType = "kexec-measured"

// SystemdContentType is the content_type of the records systemd writes
// (systemd-pcrextend, systemd-cryptsetup, ...).
const SystemdContentType = "systemd"

// Event names of kexec-measured records (DESIGN §5).
const (
	EventKernel  = "kexec-kernel"
	EventInitrd  = "kexec-initrd"
	EventCmdline = "kexec-cmdline"
	// EventHandoff is the handoff component (package handoff): its digest
	// is the bank hash of a constant text, its size 0.
	EventHandoff = "kexec-handoff"
)

// MaxPCR is the highest PCR index a record may name (a PC Client TPM has
// PCRs 0-23).
const MaxPCR = 23

// Digest is one bank's digest of a record, as CEL-JSON spells it.
type Digest struct {
	HashAlg string `json:"hashAlg"` // "sha1", "sha256", "sha384", "sha512"
	Digest  string `json:"digest"`  // hex; lower-case when we write it
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
	// Raw holds the record's JSON text exactly as read (without the leading
	// RS and the terminating LF); nil for a record built in memory. A record
	// with Raw is written back byte for byte.
	Raw []byte
}

// algNames maps the bank hashes to their CEL-JSON (and systemd) names.
var algNames = [...]struct {
	h    crypto.Hash
	name string
}{
	{crypto.SHA1, "sha1"},
	{crypto.SHA256, "sha256"},
	{crypto.SHA384, "sha384"},
	{crypto.SHA512, "sha512"},
}

// AlgName returns the CEL-JSON name of h ("sha1", "sha256", "sha384",
// "sha512"). Any other hash gives an error wrapping ErrUnknownAlgorithm.
func AlgName(h crypto.Hash) (string, error) {
	for _, a := range algNames {
		if a.h == h {
			return a.name, nil
		}
	}
	return "", fmt.Errorf("%w: crypto.Hash %v", ErrUnknownAlgorithm, h)
}

// ParseAlg returns the hash named by a CEL-JSON hashAlg name. Names are
// matched exactly (lower case, as systemd writes them). An unknown name
// gives an error wrapping ErrUnknownAlgorithm.
func ParseAlg(name string) (crypto.Hash, error) {
	for _, a := range algNames {
		if a.name == name {
			return a.h, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownAlgorithm, name)
}

// NewKexecRecord builds a kexec-measured record for pcr with one digest per
// bank in sums (ordered by crypto.Hash) and content c. It returns an error if
// pcr is out of range, sums is empty, a hash has no CEL-JSON name or a
// digest has the wrong size for its hash.
func NewKexecRecord(pcr int, sums map[crypto.Hash][]byte, c KexecContent) (Record, error) {
	if pcr < 0 || pcr > MaxPCR {
		return Record{}, fmt.Errorf("eventlog: new record: PCR %d out of range 0-%d", pcr, MaxPCR)
	}
	digests, err := digestList(sums)
	if err != nil {
		return Record{}, fmt.Errorf("eventlog: new record for PCR %d: %w", pcr, err)
	}
	content, err := marshalCompact(c)
	if err != nil {
		return Record{}, fmt.Errorf("eventlog: new record for PCR %d: encode content: %w", pcr, err)
	}
	return Record{PCR: pcr, Digests: digests, ContentType: ContentType, Content: content}, nil
}

// digestList turns sums into Digests ordered by crypto.Hash.
func digestList(sums map[crypto.Hash][]byte) ([]Digest, error) {
	if len(sums) == 0 {
		return nil, fmt.Errorf("no digests")
	}
	hashes := make([]crypto.Hash, 0, len(sums))
	for h := range sums {
		hashes = append(hashes, h)
	}
	slices.Sort(hashes)
	digests := make([]Digest, 0, len(hashes))
	for _, h := range hashes {
		name, err := AlgName(h)
		if err != nil {
			return nil, err
		}
		if len(sums[h]) != h.Size() {
			return nil, fmt.Errorf("%s digest has %d bytes, want %d", name, len(sums[h]), h.Size())
		}
		digests = append(digests, Digest{HashAlg: name, Digest: hex.EncodeToString(sums[h])})
	}
	return digests, nil
}

// wireRecord fixes the field order of an encoded record; it is the order
// systemd writes (src/shared/tpm2-util.c, tpm2_userspace_log).
type wireRecord struct {
	PCR         int             `json:"pcr"`
	Digests     []Digest        `json:"digests"`
	ContentType string          `json:"content_type"`
	Content     json.RawMessage `json:"content"`
}

// MarshalJSON returns the record's JSON text: Raw if the record was read,
// else the deterministic encoding {"pcr":..,"digests":[..],
// "content_type":..,"content":{..}} with no insignificant white space and
// no HTML escaping. Note that json.Marshal re-escapes '<', '>' and '&' in
// what MarshalJSON returns; use Encode for the exact bytes of the log.
func (r Record) MarshalJSON() ([]byte, error) {
	if r.Raw != nil {
		return slices.Clone(r.Raw), nil
	}
	content := r.Content
	if content == nil {
		content = json.RawMessage("{}")
	}
	digests := r.Digests
	if digests == nil {
		digests = []Digest{}
	}
	b, err := marshalCompact(wireRecord{PCR: r.PCR, Digests: digests, ContentType: r.ContentType, Content: content})
	if err != nil {
		return nil, fmt.Errorf("eventlog: encode record for PCR %d: %w", r.PCR, err)
	}
	return b, nil
}

// Encode returns the bytes that appending r to a log writes: RS (0x1E), the
// JSON text of MarshalJSON, LF.
func (r Record) Encode() ([]byte, error) {
	text, err := r.MarshalJSON()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(text)+2)
	out = append(out, recordSeparator)
	out = append(out, text...)
	return append(out, '\n'), nil
}

// Sum returns the record's digest for bank h. A record without a digest for
// h gives an error wrapping ErrMissingDigest; a digest that is not hex of
// h's size gives an error wrapping ErrMalformed.
func (r Record) Sum(h crypto.Hash) ([]byte, error) {
	name, err := AlgName(h)
	if err != nil {
		return nil, err
	}
	for _, d := range r.Digests {
		if d.HashAlg != name {
			continue
		}
		sum, err := hex.DecodeString(d.Digest)
		if err != nil || len(sum) != h.Size() {
			return nil, fmt.Errorf("%w: %s digest %q is not %d bytes of hex", ErrMalformed, name, d.Digest, h.Size())
		}
		return sum, nil
	}
	return nil, fmt.Errorf("%w: no %s digest in record for PCR %d", ErrMissingDigest, name, r.PCR)
}

// marshalCompact encodes v as compact JSON without HTML escaping (as systemd
// does) and without the trailing newline of json.Encoder.
func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// parseRecord decodes the JSON text of one record (between RS and LF) and
// checks it: pcr an integer in 0-MaxPCR, digests a non-empty list whose
// known algorithms carry hex of the right size, content_type a string. The
// returned record keeps text as Raw. Errors wrap ErrMalformed.
func parseRecord(text []byte) (Record, error) {
	var w struct {
		PCR         json.RawMessage `json:"pcr"`
		Digests     []Digest        `json:"digests"`
		ContentType *string         `json:"content_type"`
		Content     json.RawMessage `json:"content"`
	}
	if !json.Valid(text) {
		return Record{}, fmt.Errorf("%w: not one valid JSON value", ErrMalformed)
	}
	if err := json.Unmarshal(text, &w); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if w.PCR == nil {
		return Record{}, fmt.Errorf("%w: no \"pcr\"", ErrMalformed)
	}
	pcr, err := strconv.ParseInt(string(w.PCR), 10, 8)
	if err != nil || pcr < 0 || pcr > MaxPCR {
		return Record{}, fmt.Errorf("%w: \"pcr\" %.20s is not an integer in 0-%d", ErrMalformed, w.PCR, MaxPCR)
	}
	if len(w.Digests) == 0 {
		return Record{}, fmt.Errorf("%w: no \"digests\"", ErrMalformed)
	}
	for _, d := range w.Digests {
		h, err := ParseAlg(d.HashAlg)
		if err != nil {
			continue // a bank we do not know (e.g. sm3_256) is kept, not checked
		}
		if sum, err := hex.DecodeString(d.Digest); err != nil || len(sum) != h.Size() {
			return Record{}, fmt.Errorf("%w: %s digest %q is not %d bytes of hex", ErrMalformed, d.HashAlg, d.Digest, h.Size())
		}
	}
	if w.ContentType == nil {
		return Record{}, fmt.Errorf("%w: no \"content_type\"", ErrMalformed)
	}
	return Record{
		PCR:         int(pcr),
		Digests:     w.Digests,
		ContentType: *w.ContentType,
		Content:     w.Content,
		Raw:         slices.Clone(text),
	}, nil
}
