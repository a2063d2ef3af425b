package eventlog

import (
	"bytes"
	"crypto"
	"fmt"
	"slices"

	"github.com/kexec-measured/kexec-measured/pcr"
)

// PCRValues are replayed PCR values: for each bank, the 24 PCR values.
type PCRValues map[crypto.Hash][pcr.Count][]byte

// Replay computes the PCR values that extending records in order, starting
// from the reset values (pcr.Initial), produces in every bank of banks:
// new = H(old || digest). The values are what the TPM holds if these
// records are every extend since the reset, which for a userspace log holds
// for the PCRs that only userspace extends (e.g. PCR 9 on a kexec'd boot,
// or 11-15), not for the firmware's.
//
// A record without a digest for one of banks gives a *RecordError wrapping
// ErrMissingDigest; a hash without a CEL-JSON name pcr.ErrUnknownBank.
func Replay(records []Record, banks []crypto.Hash) (PCRValues, error) {
	values := make(PCRValues, len(banks))
	for _, h := range banks {
		if _, err := pcr.Name(h); err != nil {
			return nil, fmt.Errorf("eventlog: replay: %w", err)
		}
		var pcrs [pcr.Count][]byte
		for i := range pcrs {
			pcrs[i] = pcr.Initial(h, i)
		}
		values[h] = pcrs
	}
	for i, rec := range records {
		if pcr.Check(rec.PCR) != nil {
			return nil, &RecordError{Index: i, Offset: -1, Err: fmt.Errorf("%w: PCR %d out of range", ErrMalformed, rec.PCR)}
		}
		for _, h := range banks {
			sum, err := rec.Sum(h)
			if err != nil {
				return nil, &RecordError{Index: i, Offset: -1, Err: err}
			}
			pcrs := values[h]
			pcrs[rec.PCR] = pcr.Extend(h, pcrs[rec.PCR], sum)
			values[h] = pcrs
		}
	}
	return values, nil
}

// Compare checks the value actual read from PCR index of bank h against the
// replayed value. A difference gives a *MismatchError (errors.Is
// ErrMismatch) carrying the PCR, the bank and both values; a bank that was
// not replayed gives an error wrapping ErrMissingDigest.
func (v PCRValues) Compare(index int, h crypto.Hash, actual []byte) error {
	pcrs, ok := v[h]
	if !ok {
		return fmt.Errorf("%w: bank %v was not replayed", ErrMissingDigest, h)
	}
	if err := pcr.Check(index); err != nil {
		return fmt.Errorf("eventlog: compare: %w", err)
	}
	if !bytes.Equal(pcrs[index], actual) {
		return &MismatchError{PCR: index, Bank: h, Replayed: slices.Clone(pcrs[index]), Actual: slices.Clone(actual)}
	}
	return nil
}
