package tpm

import (
	"crypto"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/kexec-measured/kexec-measured/pcr"
)

// ReadAll returns every PCR (0-23) of every allocated bank: for each bank,
// the 24 values in PCR order. It sends one TPM2_PCR_Read (Part 3 §22.4) per
// group of PCRs of a bank that fits one response: a response carries at
// most 8 digests (TPML_DIGEST), so a bank takes three commands, and the
// TPM's pcrSelectionOut says which PCRs each one returned. A TPM that
// returns nothing for a PCR it was asked for, or a value of the wrong size,
// is an error naming the PCR and bank.
func (t *TPM) ReadAll() (map[crypto.Hash][pcr.Count][]byte, error) {
	out := make(map[crypto.Hash][pcr.Count][]byte, len(t.banks))
	for _, h := range t.banks {
		vals, err := t.readBank(h)
		if err != nil {
			return nil, err
		}
		out[h] = vals
	}
	return out, nil
}

// readBank reads PCRs 0-23 of bank h, asking again for what the previous
// response left out.
func (t *TPM) readBank(h crypto.Hash) ([pcr.Count][]byte, error) {
	var vals [pcr.Count][]byte
	want := uint32(1)<<pcr.Count - 1 // the PCRs still to read
	t.mu.Lock()
	defer t.mu.Unlock()
	for want != 0 {
		sel := tpm2.TPMSPCRSelection{Hash: tpm2.TPMIAlgHash(t.algs[h]), PCRSelect: []byte{byte(want), byte(want >> 8), byte(want >> 16)}}
		rsp, err := (tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{sel}}}).Execute(t.rc)
		if err != nil {
			return vals, fmt.Errorf("tpm: TPM2_PCR_Read of bank %v: %w", h, err)
		}
		got := 0
		digests := rsp.PCRValues.Digests
		for _, s := range rsp.PCRSelectionOut.PCRSelections {
			if sh, err := s.Hash.Hash(); err != nil || sh != h {
				continue
			}
			for i := 0; i < pcr.Count; i++ {
				if i/8 >= len(s.PCRSelect) || s.PCRSelect[i/8]&(1<<(i%8)) == 0 {
					continue
				}
				if want&(1<<i) == 0 {
					return vals, fmt.Errorf("tpm: TPM2_PCR_Read of bank %v returned PCR %d, which was not asked for", h, i)
				}
				if got >= len(digests) {
					return vals, fmt.Errorf("tpm: TPM2_PCR_Read of bank %v: fewer digests than selected PCRs", h)
				}
				d := digests[got].Buffer
				got++
				if len(d) != h.Size() {
					return vals, fmt.Errorf("tpm: TPM2_PCR_Read of bank %v: PCR %d value has %d bytes, want %d", h, i, len(d), h.Size())
				}
				vals[i] = d
				want &^= 1 << i
			}
		}
		if got == 0 {
			return vals, fmt.Errorf("tpm: TPM2_PCR_Read of bank %v: no value for PCRs %06x", h, want)
		}
	}
	return vals, nil
}
