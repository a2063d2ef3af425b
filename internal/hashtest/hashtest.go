// Package hashtest computes expected digests and PCR values for tests,
// with the hash packages' own functions (sha1.Sum, sha256.Sum256, ...)
// rather than crypto.Hash.New, so that an expectation shares no code with
// what it checks.
package hashtest

import (
	"crypto"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
)

// Sum returns the digest of data with h (SHA-1, SHA-256, SHA-384 or
// SHA-512); any other h panics.
func Sum(h crypto.Hash, data []byte) []byte {
	switch h {
	case crypto.SHA1:
		s := sha1.Sum(data)
		return s[:]
	case crypto.SHA256:
		s := sha256.Sum256(data)
		return s[:]
	case crypto.SHA384:
		s := sha512.Sum384(data)
		return s[:]
	case crypto.SHA512:
		s := sha512.Sum512(data)
		return s[:]
	}
	panic(fmt.Sprintf("hashtest: unexpected hash %v", h))
}

// PCR returns the value of a PCR of bank h that held start (nil: all
// zeros) after extending the digest of each item in order:
// PCR = H(PCR || H(item)), TPM 2.0 Part 1 §17.
func PCR(h crypto.Hash, start []byte, items ...[]byte) []byte {
	v := start
	if v == nil {
		v = make([]byte, h.Size())
	}
	for _, it := range items {
		v = Extend(h, v, Sum(h, it))
	}
	return v
}

// Extend returns H(old || digest), the value a TPM2_PCR_Extend of digest
// gives a PCR of bank h holding old (TPM 2.0 Part 1 §17.2), computed with
// Sum.
func Extend(h crypto.Hash, old, digest []byte) []byte {
	return Sum(h, append(append([]byte{}, old...), digest...))
}

// ExtendDigests returns the value of a PCR of bank h that held start (nil:
// the reset value, all zeros) after extending each digest in order.
func ExtendDigests(h crypto.Hash, start []byte, digests ...[]byte) []byte {
	v := start
	if v == nil {
		v = make([]byte, h.Size())
	}
	for _, d := range digests {
		v = Extend(h, v, d)
	}
	return v
}
