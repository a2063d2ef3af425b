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
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/kexec-measured/kexec-measured/pcr"
)

// ContentType is the content_type of the records kexec-measured writes.
const ContentType = "kexec-measured"

// SystemdContentType is the content_type of the records systemd writes
// (systemd-pcrextend, systemd-cryptsetup, ...).
const SystemdContentType = "systemd"

// Event names of kexec-measured records (docs/measurement.md, Events).
const (
	EventKernel  = "kexec-kernel"
	EventInitrd  = "kexec-initrd"
	EventCmdline = "kexec-cmdline"
	// EventHandoff is the handoff component (package handoff): its digest
	// is the bank hash of a constant text, its size 0.
	EventHandoff = "kexec-handoff"
)

// Digest is one bank's digest of a record, as CEL-JSON spells it.
type Digest struct {
	HashAlg string `json:"hashAlg"` // "sha1", "sha256", "sha384", "sha512"
	Digest  string `json:"digest"`  // hex; lower-case when we write it
}

// KexecContent is the content of a kexec-measured record. Its fields are
// informational: a verifier trusts the digests, not the names.
type KexecContent struct {
	Event   string `json:"event"`
	Path    string `json:"path,omitempty"`
	Offset  int64  `json:"offset"`
	Size    int64  `json:"size"`
	Segment *int   `json:"segment,omitempty"`
	Kind    string `json:"kind,omitempty"`
	// Section is the PE section of a unified kernel image the measured
	// bytes are (".linux", ".ucode", ".initrd", ".cmdline").
	Section   string `json:"section,omitempty"`
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

// celBank returns the bank a CEL-JSON hashAlg names. Names are matched
// exactly (lower case, as systemd writes them), unlike pcr.Parse, which
// also takes a user's "SHA256": a log record's name must be the one Sum
// looks for.
func celBank(name string) (crypto.Hash, bool) {
	h, err := pcr.Parse(name)
	if err != nil {
		return 0, false
	}
	if canon, _ := pcr.Name(h); canon != name {
		return 0, false
	}
	return h, true
}

// NewKexecRecord builds a kexec-measured record for PCR index with one digest per
// bank in sums (ordered by crypto.Hash) and content c. An index out of
// range gives an error wrapping pcr.ErrOutOfRange, a hash that is not a
// bank pcr.ErrUnknownBank, an empty sums or a digest of the wrong size for
// its hash ErrMalformed.
func NewKexecRecord(index int, sums map[crypto.Hash][]byte, c KexecContent) (Record, error) {
	if err := pcr.Check(index); err != nil {
		return Record{}, fmt.Errorf("eventlog: new record: %w", err)
	}
	digests, err := digestList(sums)
	if err != nil {
		return Record{}, fmt.Errorf("eventlog: new record for PCR %d: %w", index, err)
	}
	content, err := marshalCompact(c)
	if err != nil {
		return Record{}, fmt.Errorf("eventlog: new record for PCR %d: encode content: %w", index, err)
	}
	return Record{PCR: index, Digests: digests, ContentType: ContentType, Content: content}, nil
}

// digestList turns sums into Digests ordered by crypto.Hash.
func digestList(sums map[crypto.Hash][]byte) ([]Digest, error) {
	if len(sums) == 0 {
		return nil, fmt.Errorf("%w: no digests", ErrMalformed)
	}
	hashes := make([]crypto.Hash, 0, len(sums))
	for h := range sums {
		hashes = append(hashes, h)
	}
	slices.Sort(hashes)
	digests := make([]Digest, 0, len(hashes))
	for _, h := range hashes {
		name, err := pcr.Name(h)
		if err != nil {
			return nil, err
		}
		if len(sums[h]) != h.Size() {
			return nil, fmt.Errorf("%w: %s digest has %d bytes, want %d", ErrMalformed, name, len(sums[h]), h.Size())
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
	name, err := pcr.Name(h)
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
// checks it: pcr an integer in 0-pcr.Max, digests a non-empty list whose
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
	index, err := strconv.ParseInt(string(w.PCR), 10, 8)
	if err != nil || pcr.Check(int(index)) != nil {
		return Record{}, fmt.Errorf("%w: \"pcr\" %.20s is not an integer in 0-%d", ErrMalformed, w.PCR, pcr.Max)
	}
	if len(w.Digests) == 0 {
		return Record{}, fmt.Errorf("%w: no \"digests\"", ErrMalformed)
	}
	for _, d := range w.Digests {
		h, ok := celBank(d.HashAlg)
		if !ok {
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
		PCR:         int(index),
		Digests:     w.Digests,
		ContentType: *w.ContentType,
		Content:     w.Content,
		Raw:         slices.Clone(text),
	}, nil
}
