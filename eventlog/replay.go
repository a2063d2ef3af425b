package eventlog

import (
	"bytes"
	"crypto"
	"errors"
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
// A record without a digest for one of banks makes that PCR of that bank
// unknown: its value is nil, Compare fails for it, and the error is a
// *RecordError wrapping ErrMissingDigest (one per PCR and bank, joined with
// errors.Join). Every other PCR is still replayed, so the values come back
// together with the error. A record of a PCR out of range is left out the
// same way (ErrMalformed). Only a hash without a CEL-JSON name
// (pcr.ErrUnknownBank) gives no values.
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
	var errs []error
	for i, rec := range records {
		if pcr.Check(rec.PCR) != nil {
			errs = append(errs, &RecordError{Index: i, Offset: -1, Err: fmt.Errorf("%w: PCR %d out of range", ErrMalformed, rec.PCR)})
			continue
		}
		for _, h := range banks {
			pcrs := values[h]
			if pcrs[rec.PCR] == nil {
				continue // already unknown
			}
			sum, err := rec.Sum(h)
			if err != nil {
				errs = append(errs, &RecordError{Index: i, Offset: -1, Err: fmt.Errorf("PCR %d: %w", rec.PCR, err)})
				pcrs[rec.PCR] = nil
			} else {
				pcrs[rec.PCR] = pcr.Extend(h, pcrs[rec.PCR], sum)
			}
			values[h] = pcrs
		}
	}
	return values, errors.Join(errs...)
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
	if pcrs[index] == nil {
		return fmt.Errorf("%w: PCR %d of bank %v could not be replayed", ErrMissingDigest, index, h)
	}
	if !bytes.Equal(pcrs[index], actual) {
		return &MismatchError{PCR: index, Bank: h, Replayed: slices.Clone(pcrs[index]), Actual: slices.Clone(actual)}
	}
	return nil
}
