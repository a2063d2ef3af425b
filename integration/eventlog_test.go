//go:build integration

package integration

import (
	"bytes"
	"crypto"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/pcr"
)

// checkReplayWithEventlog reads the guest's log with the eventlog package
// and checks that its Replay, from the reset values, gives the PCR 9 values
// the guest read after the load, in every bank. The TPM is fresh, so the
// guest's PCR 9 before the load must hold the reset value.
func checkReplayWithEventlog(t *testing.T, logData []byte, before, after map[string][]byte) {
	t.Helper()
	recs, err := eventlog.ReadAll(bytes.NewReader(logData))
	if err != nil {
		t.Fatalf("eventlog.ReadAll of the guest's log: %v", err)
	}
	for _, bank := range sortedKeys(before) {
		if !bytes.Equal(before[bank], pcr.Initial(bankHash(t, bank), 9)) {
			t.Fatalf("PCR 9 %s before the load = %x, not the reset value", bank, before[bank])
		}
	}
	banks := make([]crypto.Hash, 0, len(after))
	for _, bank := range sortedKeys(after) {
		banks = append(banks, bankHash(t, bank))
	}
	values, err := eventlog.Replay(recs, banks)
	if err != nil {
		t.Fatalf("eventlog.Replay: %v", err)
	}
	for _, bank := range sortedKeys(after) {
		if err := values.Compare(9, bankHash(t, bank), after[bank]); err != nil {
			t.Errorf("eventlog replay: %v", err)
		}
	}
}
