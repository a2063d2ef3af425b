// Package tpm talks to a TPM 2.0 for kexec-measured: it opens a TPM (a
// character device or swtpm's TCP command channel), lists the allocated PCR
// banks, extends one PCR in every allocated bank with a single
// TPM2_PCR_Extend, and reads PCRs. It uses go-tpm's tpm2 direct API over the
// one-method transport.TPM interface.
//
// Specification references are to the TCG TPM 2.0 Library, Part 2
// (Structures) and Part 3 (Commands).
package tpm

import (
	"crypto"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/kexec-measured/kexec-measured/pcr"
)

var (
	// ErrNoTPM reports that no TPM is in use: Open("auto") found no
	// device, or the spec was "none" (ErrDisabled).
	ErrNoTPM = errors.New("tpm: no TPM")
	// ErrDisabled is the error of Open("none"); errors.Is(ErrDisabled,
	// ErrNoTPM) is true.
	ErrDisabled = fmt.Errorf("%w: disabled (--tpm=none)", ErrNoTPM)
	// ErrUnsupportedBank reports an allocated PCR bank whose hash algorithm
	// we cannot compute (e.g. SM3_256 or SHA3): we refuse to extend any bank
	// rather than leave one unexplained.
	ErrUnsupportedBank = errors.New("tpm: allocated PCR bank with an unsupported hash algorithm")
	// ErrNotExtended wraps the error of an Extend that the TPM answered with
	// an error response code: the PCR is unchanged. Any other Extend error
	// (a transport failure) leaves the PCR state unknown.
	ErrNotExtended = errors.New("tpm: PCR not extended (the TPM refused the command)")
	// ErrBadSpec reports a TPM spec that Open does not understand.
	ErrBadSpec = errors.New("tpm: bad TPM spec")
)

// TPM is an open TPM with a known set of allocated PCR banks. Its methods
// are safe for concurrent use.
type TPM struct {
	mu    sync.Mutex
	rc    *rcTransport
	close io.Closer // nil if the caller owns the transport
	banks []crypto.Hash
	algs  map[crypto.Hash]tpm2.TPMAlgID
}

// New returns a TPM that talks through t, after finding the allocated PCR
// banks with one TPM2_GetCapability(TPM_CAP_PCRS) (Part 3 §30.2). A bank
// whose PCR selection is empty is not allocated. If the TPM answers
// TPM_RC_INITIALIZE, New sends TPM2_Startup(TPM_SU_CLEAR) once and asks
// again. An allocated bank with an algorithm other than SHA-1, SHA-256,
// SHA-384 and SHA-512 gives an error wrapping ErrUnsupportedBank that names
// the algorithm. Close does not close t.
func New(t transport.TPM) (*TPM, error) {
	return newTPM(t, nil)
}

func newTPM(t transport.TPM, closer io.Closer) (*TPM, error) {
	tp := &TPM{rc: &rcTransport{next: t}, close: closer}
	sels, err := tp.pcrSelections()
	if err != nil {
		return nil, err
	}
	tp.algs = make(map[crypto.Hash]tpm2.TPMAlgID)
	for _, sel := range sels {
		if !slices.ContainsFunc(sel.PCRSelect, func(b byte) bool { return b != 0 }) {
			continue // not allocated
		}
		h, err := sel.Hash.Hash()
		if err != nil || !pcr.Supported(h) {
			return nil, fmt.Errorf("%w: %s", ErrUnsupportedBank, algIDName(tpm2.TPMAlgID(sel.Hash)))
		}
		tp.algs[h] = tpm2.TPMAlgID(sel.Hash)
		tp.banks = append(tp.banks, h)
	}
	slices.Sort(tp.banks)
	if len(tp.banks) == 0 {
		return nil, errors.New("tpm: no PCR bank is allocated")
	}
	return tp, nil
}

// pcrSelections returns the TPM's PCR allocation.
func (t *TPM) pcrSelections() ([]tpm2.TPMSPCRSelection, error) {
	cmd := tpm2.GetCapability{Capability: tpm2.TPMCapPCRs, Property: 0, PropertyCount: 1}
	rsp, err := cmd.Execute(t.rc)
	if errors.Is(err, tpm2.TPMRCInitialize) {
		if _, err := (tpm2.Startup{StartupType: tpm2.TPMSUClear}).Execute(t.rc); err != nil {
			return nil, fmt.Errorf("tpm: TPM2_Startup(CLEAR): %w", err)
		}
		rsp, err = cmd.Execute(t.rc)
	}
	if err != nil {
		return nil, fmt.Errorf("tpm: TPM2_GetCapability(TPM_CAP_PCRS): %w", err)
	}
	pcrs, err := rsp.CapabilityData.Data.AssignedPCR()
	if err != nil {
		return nil, fmt.Errorf("tpm: TPM2_GetCapability(TPM_CAP_PCRS): %w", err)
	}
	return pcrs.PCRSelections, nil
}

// Banks returns the hash algorithms of the allocated PCR banks in
// crypto.Hash order (SHA-1, SHA-256, SHA-384, SHA-512).
func (t *TPM) Banks() []crypto.Hash { return slices.Clone(t.banks) }

// Extend extends PCR index with sums, one digest for each allocated bank, in
// ONE TPM2_PCR_Extend command (Part 3 §22.3) with an empty password
// authorization. sums must hold exactly the allocated banks, each digest of
// its hash's size; otherwise nothing is sent. If the TPM answers with an
// error response code the error wraps ErrNotExtended (the PCR is unchanged);
// a transport error leaves the PCR state unknown.
func (t *TPM) Extend(index int, sums map[crypto.Hash][]byte) error {
	if err := pcr.Check(index); err != nil {
		return fmt.Errorf("tpm: extend: %w", err)
	}
	if len(sums) != len(t.banks) {
		return fmt.Errorf("tpm: extend PCR %d: %d digests for %d allocated banks %v", index, len(sums), len(t.banks), t.banks)
	}
	digests := make([]tpm2.TPMTHA, 0, len(t.banks))
	for _, h := range t.banks {
		sum, ok := sums[h]
		if !ok {
			return fmt.Errorf("tpm: extend PCR %d: no digest for allocated bank %v", index, h)
		}
		if len(sum) != h.Size() {
			return fmt.Errorf("tpm: extend PCR %d: %v digest has %d bytes, want %d", index, h, len(sum), h.Size())
		}
		digests = append(digests, tpm2.TPMTHA{HashAlg: tpm2.TPMIAlgHash(t.algs[h]), Digest: sum})
	}
	cmd := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(index), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: digests},
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rc.reset()
	if _, err := cmd.Execute(t.rc); err != nil {
		if t.rc.answered && t.rc.code != 0 {
			return fmt.Errorf("%w: TPM2_PCR_Extend of PCR %d: %w", ErrNotExtended, index, err)
		}
		return fmt.Errorf("tpm: TPM2_PCR_Extend of PCR %d (outcome unknown): %w", index, err)
	}
	return nil
}

// ReadPCR returns the value of PCR index in bank h with TPM2_PCR_Read (Part 3
// §22.4). A bank that is not allocated, or a PCR the TPM does not return,
// is an error.
func (t *TPM) ReadPCR(index int, h crypto.Hash) ([]byte, error) {
	vals, err := t.ReadPCRs(index)
	if err != nil {
		return nil, err
	}
	v, ok := vals[h]
	if !ok {
		return nil, fmt.Errorf("tpm: read PCR %d: bank %v is not allocated", index, h)
	}
	return v, nil
}

// ReadPCRs returns the value of PCR index in every allocated bank, read with
// one TPM2_PCR_Read.
func (t *TPM) ReadPCRs(index int) (map[crypto.Hash][]byte, error) {
	if err := pcr.Check(index); err != nil {
		return nil, fmt.Errorf("tpm: read: %w", err)
	}
	sels := make([]tpm2.TPMSPCRSelection, 0, len(t.banks))
	for _, h := range t.banks {
		sel := make([]byte, pcr.Count/8) // one bit per PCR
		sel[index/8] = 1 << (index % 8)
		sels = append(sels, tpm2.TPMSPCRSelection{Hash: tpm2.TPMIAlgHash(t.algs[h]), PCRSelect: sel})
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	rsp, err := (tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: sels}}).Execute(t.rc)
	if err != nil {
		return nil, fmt.Errorf("tpm: TPM2_PCR_Read of PCR %d: %w", index, err)
	}
	// The TPM returns the digests in the order of the selections it
	// returns, skipping PCRs it does not have.
	out := make(map[crypto.Hash][]byte, len(t.banks))
	i := 0
	for _, sel := range rsp.PCRSelectionOut.PCRSelections {
		h, err := sel.Hash.Hash()
		selected := len(sel.PCRSelect) > index/8 && sel.PCRSelect[index/8]&(1<<(index%8)) != 0
		if !selected {
			continue
		}
		if i >= len(rsp.PCRValues.Digests) {
			return nil, fmt.Errorf("tpm: TPM2_PCR_Read of PCR %d: fewer digests than selections", index)
		}
		d := rsp.PCRValues.Digests[i].Buffer
		i++
		if err != nil || len(d) != h.Size() {
			return nil, fmt.Errorf("tpm: TPM2_PCR_Read of PCR %d: bad %s value (%d bytes)", index, algIDName(tpm2.TPMAlgID(sel.Hash)), len(d))
		}
		out[h] = d
	}
	for _, h := range t.banks {
		if _, ok := out[h]; !ok {
			return nil, fmt.Errorf("tpm: TPM2_PCR_Read of PCR %d: no value for bank %v", index, h)
		}
	}
	return out, nil
}

// Close closes the transport if Open opened it.
func (t *TPM) Close() error {
	if t.close == nil {
		return nil
	}
	if err := t.close.Close(); err != nil {
		return fmt.Errorf("tpm: close: %w", err)
	}
	return nil
}

// rcTransport remembers whether the last command got a response and its
// response code, so Extend can tell "the TPM refused" from "unknown".
type rcTransport struct {
	next     transport.TPM
	answered bool
	code     uint32
}

func (r *rcTransport) reset() { r.answered, r.code = false, 0 }

func (r *rcTransport) Send(cmd []byte) ([]byte, error) {
	r.reset()
	rsp, err := r.next.Send(cmd)
	if err != nil {
		return nil, err
	}
	if len(rsp) >= 10 {
		r.answered = true
		r.code = binary.BigEndian.Uint32(rsp[6:10])
	}
	return rsp, nil
}

// algIDName names a TPM_ALG_ID for error messages.
func algIDName(id tpm2.TPMAlgID) string {
	names := map[tpm2.TPMAlgID]string{
		tpm2.TPMAlgSHA1:    "SHA1",
		tpm2.TPMAlgSHA256:  "SHA256",
		tpm2.TPMAlgSHA384:  "SHA384",
		tpm2.TPMAlgSHA512:  "SHA512",
		tpm2.TPMAlgSM3256:  "SM3_256",
		tpm2.TPMAlgSHA3256: "SHA3_256",
		tpm2.TPMAlgSHA3384: "SHA3_384",
		tpm2.TPMAlgSHA3512: "SHA3_512",
	}
	if n, ok := names[id]; ok {
		return fmt.Sprintf("%s (TPM_ALG_ID 0x%04x)", n, uint16(id))
	}
	return fmt.Sprintf("TPM_ALG_ID 0x%04x", uint16(id))
}
