package eventlog

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"slices"
)

// NumPCRs is the number of PCRs of a PC Client TPM (0-23).
const NumPCRs = MaxPCR + 1

// PCRValues are replayed PCR values: for each bank, the 24 PCR values.
type PCRValues map[crypto.Hash][NumPCRs][]byte

// InitialValue returns the value PCR pcr of bank h holds after a TPM reset
// (TCG PC Client Platform TPM Profile, PCR attributes): all zeros for PCRs
// 0-16 and 23, all ones for the dynamic-RTM PCRs 17-22 (which a TPM reset,
// unlike a D-RTM event, leaves at all ones). PCR 0's locality byte of a
// firmware StartupLocality event is not modelled: the userspace log never
// holds PCR 0's first event.
func InitialValue(h crypto.Hash, pcr int) []byte {
	v := make([]byte, h.Size())
	if pcr >= 17 && pcr <= 22 {
		for i := range v {
			v[i] = 0xff
		}
	}
	return v
}

// Replay computes the PCR values that extending records in order, starting
// from the reset values (InitialValue), produces in every bank of banks:
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
// (ErrUnknownAlgorithm) gives no values.
func Replay(records []Record, banks []crypto.Hash) (PCRValues, error) {
	values := make(PCRValues, len(banks))
	for _, h := range banks {
		if _, err := AlgName(h); err != nil {
			return nil, fmt.Errorf("eventlog: replay: %w", err)
		}
		var pcrs [NumPCRs][]byte
		for i := range pcrs {
			pcrs[i] = InitialValue(h, i)
		}
		values[h] = pcrs
	}
	var errs []error
	for i, rec := range records {
		if rec.PCR < 0 || rec.PCR > MaxPCR {
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
				pcrs[rec.PCR] = ExtendValue(h, pcrs[rec.PCR], sum)
			}
			values[h] = pcrs
		}
	}
	return values, errors.Join(errs...)
}

// ExtendValue returns H(old || digest), the value a TPM2_PCR_Extend of
// digest gives a PCR of bank h holding old.
func ExtendValue(h crypto.Hash, old, digest []byte) []byte {
	d := h.New()
	d.Write(old)
	d.Write(digest)
	return d.Sum(nil)
}

// Compare checks the value actual read from PCR pcr of bank h against the
// replayed value. A difference gives a *MismatchError (errors.Is
// ErrMismatch) carrying the PCR, the bank and both values; a bank that was
// not replayed gives an error wrapping ErrMissingDigest.
func (v PCRValues) Compare(pcr int, h crypto.Hash, actual []byte) error {
	pcrs, ok := v[h]
	if !ok {
		return fmt.Errorf("%w: bank %v was not replayed", ErrMissingDigest, h)
	}
	if pcr < 0 || pcr > MaxPCR {
		return fmt.Errorf("eventlog: compare: PCR %d out of range 0-%d", pcr, MaxPCR)
	}
	if pcrs[pcr] == nil {
		return fmt.Errorf("%w: PCR %d of bank %v could not be replayed", ErrMissingDigest, pcr, h)
	}
	if !bytes.Equal(pcrs[pcr], actual) {
		return &MismatchError{PCR: pcr, Bank: h, Replayed: slices.Clone(pcrs[pcr]), Actual: slices.Clone(actual)}
	}
	return nil
}
