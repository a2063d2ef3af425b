package tpm

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenFirstNoDevice(t *testing.T) {
	dir := t.TempDir()
	paths := []string{filepath.Join(dir, "tpmrm0"), filepath.Join(dir, "tpm0")}
	_, err := openFirst(paths)
	if !errors.Is(err, ErrNoTPM) {
		t.Fatalf("openFirst(missing paths) = %v, want ErrNoTPM", err)
	}
	// The second path exists but is no device: an error naming it, no
	// fallback and no ErrNoTPM.
	if err := os.WriteFile(paths[1], nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = openFirst(paths)
	if err == nil || errors.Is(err, ErrNoTPM) || !strings.Contains(err.Error(), paths[1]) {
		t.Fatalf("openFirst with a regular file = %v; want an error naming %s", err, paths[1])
	}
}

// fakeTPM answers every command with a fixed response.
type fakeTPM struct{ rsp []byte }

func (f fakeTPM) Send([]byte) ([]byte, error) { return f.rsp, nil }

// capabilityResponse builds a TPM2_GetCapability(TPM_CAP_PCRS) response
// with one full PCR selection per algorithm in algs (Part 3 §30.2,
// Part 2 §10.9.7).
func capabilityResponse(algs ...uint16) []byte {
	b := []byte{
		0x80, 0x01, // tag TPM_ST_NO_SESSIONS
		0, 0, 0, 0, // size, set below
		0, 0, 0, 0, // TPM_RC_SUCCESS
		0x00,                   // moreData NO
		0x00, 0x00, 0x00, 0x05, // capability TPM_CAP_PCRS
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(algs))) // TPML_PCR_SELECTION count
	for _, a := range algs {
		b = binary.BigEndian.AppendUint16(b, a) // hash
		b = append(b, 3, 0xff, 0xff, 0xff)      // sizeofSelect, PCRs 0-23
	}
	binary.BigEndian.PutUint32(b[2:6], uint32(len(b)))
	return b
}

func TestUnsupportedBank(t *testing.T) {
	tests := []struct {
		name string
		algs []uint16
		want string
	}{
		{"SM3", []uint16{0x000b, 0x0012}, "SM3_256"},
		{"SHA3", []uint16{0x0027}, "SHA3_256"},
		{"unknown", []uint16{0x000b, 0x7777}, "0x7777"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(fakeTPM{capabilityResponse(tc.algs...)})
			if !errors.Is(err, ErrUnsupportedBank) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v; want ErrUnsupportedBank naming %s", err, tc.want)
			}
		})
	}
}

func TestReadResponseBadSize(t *testing.T) {
	tests := []struct {
		name string
		rsp  []byte
	}{
		{"short header", []byte{0x80, 0x01, 0, 0}},
		{"size below header", []byte{0x80, 0x01, 0, 0, 0, 9, 0, 0, 0, 0}},
		{"size too big", []byte{0x80, 0x01, 0x7f, 0, 0, 0, 0, 0, 0, 0}},
		{"body cut short", []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0, 0, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := readResponse(strings.NewReader(string(tc.rsp)), "test"); err == nil {
				t.Fatal("no error")
			}
		})
	}
	rsp := []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0, 0, 0xaa, 0xbb, 0xcc}
	got, err := readResponse(strings.NewReader(string(rsp)), "test")
	if err != nil || string(got) != string(rsp[:12]) {
		t.Fatalf("readResponse = %x, %v; want the first 12 bytes", got, err)
	}
}
