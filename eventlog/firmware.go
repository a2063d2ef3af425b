package eventlog

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-attestation/attest"

	"github.com/kexec-measured/kexec-measured/pcr"
)

// FirmwareLogPath is where Linux exposes the firmware's TCG event log
// (TCG PC Client Platform Firmware Profile, crypto-agile format) when
// securityfs is mounted.
const FirmwareLogPath = "/sys/kernel/security/tpm0/binary_bios_measurements"

// MaxFirmwareLog bounds the size of a firmware log we parse. Real logs are
// tens to a few hundred KiB (a UEFI machine with many boot entries and
// Secure Boot variables stays well under 1 MiB); 16 MiB leaves room while
// keeping a hostile file from costing more than that much memory.
const MaxFirmwareLog = 16 << 20

// ErrFirmwareLog reports a firmware log that does not parse.
var ErrFirmwareLog = errors.New("eventlog: firmware log")

// evNoAction is EV_NO_ACTION (PFP §10.4.1): an event that extends nothing.
const evNoAction = 0x03

// FirmwareEvent is one event of a firmware TCG log. Its fields are
// unverified until the log has been replayed against the TPM.
type FirmwareEvent struct {
	Seq     int    // position in the log, from 1 (the Spec ID event is 0)
	PCR     int    // PCR index
	Type    uint32 // event type (PFP §10.4.1)
	Data    []byte // event data
	Digests map[crypto.Hash][]byte
}

// TypeName returns the PFP name of the event type, e.g. "EV_SEPARATOR".
func (e FirmwareEvent) TypeName() string { return attest.EventType(e.Type).String() }

// Extends reports whether the event extends its PCR (EV_NO_ACTION events
// do not).
func (e FirmwareEvent) Extends() bool { return e.Type != evNoAction }

// Summary returns a short printable description of the event: its type
// and, where the data is text (EV_POST_CODE, EV_ACTION, EV_S_CRTM_VERSION,
// ...), the text.
func (e FirmwareEvent) Summary() string {
	s := e.TypeName()
	text := strings.TrimRight(string(e.Data), "\x00")
	if text != "" && len(text) <= 64 && printable(text) {
		s += " " + fmt.Sprintf("%q", text)
	}
	return s
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return false
		}
	}
	return true
}

// FirmwareLog is a parsed firmware TCG event log.
type FirmwareLog struct {
	// Banks are the hash algorithms the log's Spec ID event declares that
	// we compute (pcr.Banks order).
	Banks  []crypto.Hash
	events []FirmwareEvent
}

// ParseFirmwareLog parses a firmware TCG event log, the crypto-agile (TPM
// 2.0) format or the SHA-1 format, with go-attestation's
// attest.ParseEventLog. A log over MaxFirmwareLog bytes, or one that does
// not parse, gives an error wrapping ErrFirmwareLog.
func ParseFirmwareLog(raw []byte) (*FirmwareLog, error) {
	if len(raw) > MaxFirmwareLog {
		return nil, fmt.Errorf("%w: %d bytes, more than the %d we read", ErrFirmwareLog, len(raw), MaxFirmwareLog)
	}
	if len(bytes.TrimRight(raw, "\x00")) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrFirmwareLog)
	}
	el, err := attest.ParseEventLog(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFirmwareLog, err)
	}
	fl := &FirmwareLog{}
	var perBank [][]attest.Event
	for _, h := range pcr.Banks() {
		alg, err := attest.FromCryptoHash(h)
		if err != nil {
			continue
		}
		declared := false
		for _, a := range el.Algs {
			declared = declared || a == alg
		}
		if !declared {
			continue
		}
		fl.Banks = append(fl.Banks, h)
		perBank = append(perBank, el.Events(alg))
	}
	if len(perBank) == 0 {
		return nil, fmt.Errorf("%w: declares none of the banks sha1, sha256, sha384, sha512", ErrFirmwareLog)
	}
	for i, ev := range perBank[0] {
		fe := FirmwareEvent{Seq: i + 1, PCR: ev.Index, Type: uint32(ev.Type), Data: ev.Data, Digests: map[crypto.Hash][]byte{}}
		if err := pcr.Check(ev.Index); err != nil {
			return nil, fmt.Errorf("%w: event %d: %v", ErrFirmwareLog, fe.Seq, err)
		}
		for b, h := range fl.Banks {
			if d := perBank[b][i].Digest; d != nil {
				fe.Digests[h] = d
			}
		}
		fl.events = append(fl.events, fe)
	}
	return fl, nil
}

// Events returns the log's events in order (the Spec ID event excluded).
func (fl *FirmwareLog) Events() []FirmwareEvent { return fl.events }

// Replay returns, for each bank of banks, the values the PCRs hold after
// the log's events, from the reset values (pcr.Initial; PCR 0 starts at
// the locality of a StartupLocality EV_NO_ACTION event when there is one,
// PFP §10.4.5.3). A bank the log does not carry, or an extending event
// without a digest for a bank, gives an error wrapping ErrMissingDigest
// naming the event and the PCR.
func (fl *FirmwareLog) Replay(banks []crypto.Hash) (map[crypto.Hash][pcr.Count][]byte, error) {
	out := make(map[crypto.Hash][pcr.Count][]byte, len(banks))
	for _, h := range banks {
		name, err := pcr.Name(h)
		if err != nil {
			return nil, fmt.Errorf("eventlog: firmware replay: %w", err)
		}
		var v [pcr.Count][]byte
		for i := range v {
			v[i] = pcr.Initial(h, i)
		}
		for _, ev := range fl.events {
			if !ev.Extends() {
				if ev.PCR == 0 && len(ev.Data) == 17 && strings.HasPrefix(string(ev.Data), "StartupLocality") {
					v[0][h.Size()-1] = ev.Data[16]
				}
				continue
			}
			d, ok := ev.Digests[h]
			if !ok || len(d) != h.Size() {
				return nil, fmt.Errorf("%w: firmware log event %d (%s, PCR %d) has no %s digest", ErrMissingDigest, ev.Seq, ev.TypeName(), ev.PCR, name)
			}
			v[ev.PCR] = pcr.Extend(h, v[ev.PCR], d)
		}
		out[h] = v
	}
	return out, nil
}
