// Package pcr is the one home of what every other package says about PCRs:
// the index range of a PC Client TPM, the hash banks kexec-measured
// computes, their CEL-JSON names (the names systemd and the TCG Canonical
// Event Log use), the parser of a user's bank list, and the extend
// operation.
//
// References: TCG PC Client Platform TPM Profile (PTP) §4.6 for the 24
// PCRs; TPM 2.0 Library Part 1 §17 for the extend; TCG Canonical Event Log
// Format §5 for the hashAlg names.
package pcr

import (
	"crypto"
	_ "crypto/sha1" // link the bank hashes so crypto.Hash.New works everywhere
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Max is the highest PCR index of a PC Client TPM (PCRs 0-23).
const Max = 23

// Count is the number of PCRs of a PC Client TPM.
const Count = Max + 1

var (
	// ErrOutOfRange reports a PCR index outside 0-Max.
	ErrOutOfRange = errors.New("pcr: PCR index out of range 0-23")
	// ErrUnknownBank reports a hash that is not one of the banks we
	// compute (SHA-1, SHA-256, SHA-384, SHA-512), or a name that names
	// none of them.
	ErrUnknownBank = errors.New("pcr: unknown hash bank")
)

// bank is one row of the bank table.
type bank struct {
	h    crypto.Hash
	name string // CEL-JSON hashAlg, as systemd writes it
}

// banks is the table, in crypto.Hash order. It is read-only; the functions
// below hand out copies.
var banks = [...]bank{
	{crypto.SHA1, "sha1"},
	{crypto.SHA256, "sha256"},
	{crypto.SHA384, "sha384"},
	{crypto.SHA512, "sha512"},
}

// Check returns nil if index is a PCR of a PC Client TPM, else an error
// wrapping ErrOutOfRange that names the index.
func Check(index int) error {
	if index < 0 || index > Max {
		return fmt.Errorf("%w: %d", ErrOutOfRange, index)
	}
	return nil
}

// Banks returns every bank we compute, in crypto.Hash order (SHA-1,
// SHA-256, SHA-384, SHA-512). The slice is the caller's.
func Banks() []crypto.Hash {
	out := make([]crypto.Hash, len(banks))
	for i, b := range banks {
		out[i] = b.h
	}
	return out
}

// Supported reports whether h is one of the banks we compute.
func Supported(h crypto.Hash) bool {
	_, err := Name(h)
	return err == nil
}

// Name returns the CEL-JSON name of bank h ("sha1", "sha256", "sha384",
// "sha512"). Any other hash gives an error wrapping ErrUnknownBank.
func Name(h crypto.Hash) (string, error) {
	for _, b := range banks {
		if b.h == h {
			return b.name, nil
		}
	}
	return "", fmt.Errorf("%w: crypto.Hash %v", ErrUnknownBank, h)
}

// Parse returns the bank a name names. Names are matched without regard
// to case ("sha256", "SHA256"), as tpm2-tools and users write them; the log
// writes the lower-case form. An unknown name gives an error wrapping
// ErrUnknownBank.
func Parse(name string) (crypto.Hash, error) {
	for _, b := range banks {
		if strings.EqualFold(b.name, name) {
			return b.h, nil
		}
	}
	return 0, fmt.Errorf("%w: %q (want sha1, sha256, sha384 or sha512)", ErrUnknownBank, name)
}

// ParseList parses a comma-separated list of bank names (white space
// around a name is ignored), as --banks and inspect --digests take it, and
// returns the banks in crypto.Hash order. An unknown name gives an error
// wrapping ErrUnknownBank; a repeated name or an empty list an error that
// says so.
func ParseList(list string) ([]crypto.Hash, error) {
	var out []crypto.Hash
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		h, err := Parse(name)
		if err != nil {
			return nil, err
		}
		if slices.Contains(out, h) {
			return nil, fmt.Errorf("pcr: bank %q named twice", name)
		}
		out = append(out, h)
	}
	if len(out) == 0 {
		return nil, errors.New("pcr: empty bank list")
	}
	slices.Sort(out)
	return out, nil
}

// Extend returns H(old || digest), the value a TPM2_PCR_Extend of digest
// gives a PCR of bank h that held old (TPM 2.0 Part 1 §17.2).
func Extend(h crypto.Hash, old, digest []byte) []byte {
	d := h.New()
	d.Write(old)
	d.Write(digest)
	return d.Sum(nil)
}

// Initial returns the value PCR index of bank h holds after a TPM reset
// (PTP, PCR attributes): all zeros for PCRs 0-16 and 23, all ones for the
// dynamic-RTM PCRs 17-22. PCR 0's locality byte of a firmware
// StartupLocality event is not modelled here.
func Initial(h crypto.Hash, index int) []byte {
	v := make([]byte, h.Size())
	if index >= 17 && index <= 22 {
		for i := range v {
			v[i] = 0xff
		}
	}
	return v
}
