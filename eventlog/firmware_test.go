package eventlog

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/pcr"
)

// tpmAlg are the TPM_ALG_ID values of the banks (TPM 2.0 Part 2 §6.3).
var tpmAlg = map[crypto.Hash]uint16{crypto.SHA1: 0x0004, crypto.SHA256: 0x000b, crypto.SHA384: 0x000c, crypto.SHA512: 0x000d}

// fwEvent is one event of a test firmware log.
type fwEvent struct {
	pcr  uint32
	typ  uint32
	data []byte
}

// firmwareLog writes a crypto-agile TCG log (PFP §10.2.1 Spec ID event in
// the SHA-1 format, then TCG_PCR_EVENT2 records) for events, with digests
// in banks computed by hashtest; it is written field by field from the
// spec, independently of go-attestation.
func firmwareLog(banks []crypto.Hash, events []fwEvent) []byte {
	le := binary.LittleEndian
	var spec bytes.Buffer
	spec.WriteString("Spec ID Event03\x00")
	binary.Write(&spec, le, uint32(0)) // platformClass
	spec.Write([]byte{0, 2, 0, 2})     // minor 0, major 2, errata 0, uintnSize 2
	binary.Write(&spec, le, uint32(len(banks)))
	for _, h := range banks {
		binary.Write(&spec, le, tpmAlg[h])
		binary.Write(&spec, le, uint16(h.Size()))
	}
	spec.WriteByte(0) // vendorInfoSize
	var b bytes.Buffer
	binary.Write(&b, le, uint32(0))          // PCR 0
	binary.Write(&b, le, uint32(evNoAction)) // EV_NO_ACTION
	b.Write(make([]byte, 20))
	binary.Write(&b, le, uint32(spec.Len()))
	b.Write(spec.Bytes())
	for _, e := range events {
		binary.Write(&b, le, e.pcr)
		binary.Write(&b, le, e.typ)
		binary.Write(&b, le, uint32(len(banks)))
		for _, h := range banks {
			binary.Write(&b, le, tpmAlg[h])
			if e.typ == evNoAction {
				b.Write(make([]byte, h.Size()))
			} else {
				b.Write(hashtest.Sum(h, e.data))
			}
		}
		binary.Write(&b, le, uint32(len(e.data)))
		b.Write(e.data)
	}
	return b.Bytes()
}

func TestParseAndReplayFirmwareLog(t *testing.T) {
	banks := []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}
	events := []fwEvent{
		{0, evNoAction, append([]byte("StartupLocality\x00"), 3)},
		{0, 0x08, []byte("SeaBIOS")},    // EV_S_CRTM_VERSION
		{4, 0x0d, []byte("boot 1")},     // EV_IPL
		{0, 0x04, []byte{0, 0, 0, 0}},   // EV_SEPARATOR
		{7, 0x04, []byte{0, 0, 0, 0}},   // EV_SEPARATOR
		{4, 0x0d, []byte("second IPL")}, // EV_IPL
	}
	fl, err := ParseFirmwareLog(firmwareLog(banks, events))
	if err != nil {
		t.Fatal(err)
	}
	if len(fl.Banks) != 4 || len(fl.Events()) != len(events) {
		t.Fatalf("banks %v, %d events; want 4 banks, %d events", fl.Banks, len(fl.Events()), len(events))
	}
	if got := fl.Events()[1].Summary(); got != `EV_S_CRTM_VERSION "SeaBIOS"` {
		t.Errorf("Summary = %q", got)
	}
	values, err := fl.Replay(banks)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range banks {
		start0 := make([]byte, h.Size())
		start0[h.Size()-1] = 3 // StartupLocality 3
		want := map[int][]byte{
			0: hashtest.PCR(h, start0, []byte("SeaBIOS"), []byte{0, 0, 0, 0}),
			4: hashtest.PCR(h, nil, []byte("boot 1"), []byte("second IPL")),
			7: hashtest.PCR(h, nil, []byte{0, 0, 0, 0}),
			9: make([]byte, h.Size()),
		}
		for i, w := range want {
			if !bytes.Equal(values[h][i], w) {
				t.Errorf("%v PCR %d = %x, want %x", h, i, values[h][i], w)
			}
		}
	}
}

func TestReplayFirmwareLogMissingBank(t *testing.T) {
	fl, err := ParseFirmwareLog(firmwareLog([]crypto.Hash{crypto.SHA256}, []fwEvent{{4, 0x0d, []byte("x")}}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fl.Replay([]crypto.Hash{crypto.SHA1}); !errors.Is(err, ErrMissingDigest) {
		t.Fatalf("Replay(sha1) of a sha256-only log = %v, want ErrMissingDigest", err)
	}
}

func TestParseFirmwareLogErrors(t *testing.T) {
	good := firmwareLog([]crypto.Hash{crypto.SHA256}, []fwEvent{{4, 0x0d, []byte("x")}})
	badPCR := firmwareLog([]crypto.Hash{crypto.SHA256}, []fwEvent{{99, 0x0d, []byte("x")}})
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"empty", nil},
		{"zeros", make([]byte, 64)},
		{"truncated", good[:len(good)-3]},
		{"PCR out of range", badPCR},
		{"too large", make([]byte, MaxFirmwareLog+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseFirmwareLog(tc.raw); !errors.Is(err, ErrFirmwareLog) {
				t.Fatalf("ParseFirmwareLog = %v, want ErrFirmwareLog", err)
			}
		})
	}
}

func FuzzParseFirmwareLog(f *testing.F) {
	f.Add(firmwareLog([]crypto.Hash{crypto.SHA1, crypto.SHA256}, []fwEvent{{4, 0x0d, []byte("x")}, {0, 4, []byte{0, 0, 0, 0}}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		fl, err := ParseFirmwareLog(raw)
		if err != nil {
			return
		}
		if _, err := fl.Replay(fl.Banks); err != nil && !errors.Is(err, ErrMissingDigest) {
			t.Fatalf("Replay of a parsed log: %v", err)
		}
		for _, e := range fl.Events() {
			if pcr.Check(e.PCR) != nil {
				t.Fatalf("event with PCR %d", e.PCR)
			}
		}
	})
}
