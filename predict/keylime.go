package predict

import (
	"crypto"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/kexec-measured/kexec-measured/pcr"
)

// KeylimeBank is the bank Keylime's verifier compares tpm_policy values
// in: the agent's tpm_hash_alg, "sha256" by default (keylime-agent.conf;
// the verifier's Tpm.check_quote defaults hash_alg to SHA256).
const KeylimeBank = crypto.SHA256

// Keylime returns a Keylime tpm_policy fragment that allows PCR index to
// hold any of values: {"9": ["<hex>", ...]}, lower-case hex (the
// verifier compares the quote's lower-cased values with `in`), in the
// given order, without repeats. Keylime's verifier ignores a "mask" key and
// reads every other key as a PCR number (keylime/tpm/tpm_main.py,
// check_pcrs). See docs/fleet.md.
func Keylime(index int, values [][]byte) ([]byte, error) {
	if err := pcr.Check(index); err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	if len(values) == 0 {
		return nil, fmt.Errorf("predict: a Keylime policy for PCR %d needs at least one value", index)
	}
	list := []string{}
	for _, v := range values {
		x := hex.EncodeToString(v)
		if !slices.Contains(list, x) {
			list = append(list, x)
		}
	}
	b, err := json.Marshal(map[string][]string{strconv.Itoa(index): list})
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	return append(b, '\n'), nil
}

// KeylimeValues returns the values of bank h a Keylime policy allows: the
// planned load's first, then those of the other variants (newest first,
// as Write returns them). A variant for another PCR, or without a value of
// bank h, gives an error wrapping ErrBank or ErrVariant.
func KeylimeValues(p *Prediction, h crypto.Hash, variants []Variant) ([][]byte, error) {
	name, err := pcr.Name(h)
	if err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	v, ok := p.Values[h]
	if !ok {
		return nil, fmt.Errorf("%w: Keylime compares the %s bank, and the prediction has no %s value (predict with it: --banks or a TPM that has it)", ErrBank, name, name)
	}
	out := [][]byte{v}
	for _, va := range variants {
		if va.PCR != p.PCR {
			return nil, fmt.Errorf("%w: %s is for PCR %d, the prediction for PCR %d", ErrVariant, va.Path, va.PCR, p.PCR)
		}
		x, ok := va.Values[h]
		if !ok {
			return nil, fmt.Errorf("%w: the variant %s has no %s value", ErrBank, va.Path, name)
		}
		out = append(out, x)
	}
	return out, nil
}
