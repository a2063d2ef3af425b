package verify

import (
	"crypto"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/pcr"
)

// tcgAlgIDs are the TPM_ALG_IDs of the banks (TPM 2.0 Part 2 §6.3).
var tcgAlgIDs = map[crypto.Hash]uint16{crypto.SHA1: 0x0004, crypto.SHA256: 0x000b, crypto.SHA384: 0x000c, crypto.SHA512: 0x000d}

// bigFirmwareLog returns the captured SeaBIOS log followed by crypto-agile
// EV_ACTION events (TCG_PCR_EVENT2, PFP §10.2.2) in PCRs 0-7 until it has
// at least size bytes.
func bigFirmwareLog(tb testing.TB, size int) []byte {
	tb.Helper()
	raw, err := os.ReadFile(seabiosLog)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; len(raw) < size; i++ {
		data := []byte(fmt.Sprintf("benchmark event %6d", i))
		ev := binary.LittleEndian.AppendUint32(nil, uint32(i%8))
		ev = binary.LittleEndian.AppendUint32(ev, 0x05) // EV_ACTION
		ev = binary.LittleEndian.AppendUint32(ev, uint32(len(pcr.Banks())))
		for _, h := range pcr.Banks() {
			ev = binary.LittleEndian.AppendUint16(ev, tcgAlgIDs[h])
			ev = append(ev, hashtest.Sum(h, data)...)
		}
		ev = binary.LittleEndian.AppendUint32(ev, uint32(len(data)))
		raw = append(raw, append(ev, data...)...)
	}
	return raw
}

// BenchmarkVerify runs what `kexec-measured verify` does after reading
// the TPM: read and parse a 60 KB firmware log and a userspace log of 1000
// records, load a manifest of 1000 references, replay every PCR of the
// four banks and match every event. docs/verify.md has the numbers.
func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	fwRaw := bigFirmwareLog(b, 60<<10)
	fwPath := filepath.Join(dir, "binary_bios_measurements")
	if err := os.WriteFile(fwPath, fwRaw, 0o444); err != nil {
		b.Fatal(err)
	}
	fl, err := eventlog.ParseFirmwareLog(fwRaw)
	if err != nil {
		b.Fatal(err)
	}
	actual, err := fl.Replay(pcr.Banks())
	if err != nil {
		b.Fatal(err)
	}
	var logBytes []byte
	m := Manifest{Version: ManifestVersion}
	for i := 0; i < 1000; i++ {
		data := []byte(fmt.Sprintf("component %d", i))
		s := sums(data)
		rec, err := eventlog.NewKexecRecord(9, s, eventlog.KexecContent{Event: eventlog.EventInitrd, Path: fmt.Sprintf("/boot/c%d.cpio", i), Size: int64(len(data)), BootID: fmt.Sprintf("boot-%d", i/100)})
		if err != nil {
			b.Fatal(err)
		}
		enc, _ := rec.Encode()
		logBytes = append(logBytes, enc...)
		vals := actual[crypto.SHA1]
		for _, h := range pcr.Banks() {
			vals = actual[h]
			vals[9] = hashtest.Extend(h, vals[9], s[h])
			actual[h] = vals
		}
		m.Entries = append(m.Entries, Entry{Name: fmt.Sprintf("c%d.cpio", i), Kind: KindInitrd, Size: int64(len(data)), Digests: digestMap(s)})
	}
	logPath := filepath.Join(dir, "tpm2-measure.log")
	if err := os.WriteFile(logPath, logBytes, 0o600); err != nil {
		b.Fatal(err)
	}
	refPath := filepath.Join(dir, "refs.json")
	f, _ := os.Create(refPath)
	m.Encode(f)
	f.Close()
	b.Logf("firmware log %d bytes (%d events), userspace log %d bytes (1000 records), manifest of 1000 entries", len(fwRaw), len(fl.Events()), len(logBytes))

	b.ResetTimer()
	for b.Loop() {
		refs, err := LoadReferences([]string{refPath})
		if err != nil {
			b.Fatal(err)
		}
		log, err := ReadLog(logPath, nil)
		if err != nil {
			b.Fatal(err)
		}
		fw, err := ReadFirmware([]string{fwPath})
		if err != nil {
			b.Fatal(err)
		}
		v := Verify(NewInput(actual, log, fw, refs, []int{10}))
		if !v.OK {
			b.Fatalf("findings %q", findings(v))
		}
	}
}
