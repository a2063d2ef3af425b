//go:build linux

package handoff

import (
	"bytes"
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/internal/hashtest"
)

// appendRecord appends one encoded record with the writer protocol, as
// systemd would.
func appendRecord(t testing.TB, path string, rec []byte) {
	t.Helper()
	recs, err := eventlog.ReadAll(bytes.NewReader(rec))
	if err != nil || len(recs) != 1 {
		t.Fatalf("test record: %v", err)
	}
	w, err := eventlog.OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := w.BeginWrite(); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(recs[0]); err != nil {
		t.Fatal(err)
	}
}

// TestImportEveryInterleaving runs the import at every point of this
// boot's appends (and a second import at every later point), for every
// assignment of PCRs 9 and 11 to the earlier and the current records: the
// result is always the handed-over records, then this boot's, byte for
// byte, and replays per PCR to the values an independent computation of the
// extends in their real order gives.
func TestImportEveryInterleaving(t *testing.T) {
	const nEarlier, nCurrent = 2, 3
	dir := t.TempDir()
	runs := 0
	for pcrs := range 1 << (nEarlier + nCurrent) {
		pcrOf := func(i int) int { return 9 + 2*(pcrs>>i&1) }
		var earlier, current [][]byte
		for i := range nEarlier {
			earlier = append(earlier, record(t, pcrOf(i), "boot-0", fmt.Sprintf("earlier-%d", i)))
		}
		for i := range nCurrent {
			current = append(current, record(t, pcrOf(nEarlier+i), "", fmt.Sprintf("current-%d", i)))
		}
		handed := bytes.Join(earlier, nil)
		want := append(bytes.Clone(handed), bytes.Join(current, nil)...)
		// The PCR values, extending every record's digest in real order.
		wantPCR := map[int][]byte{9: make([]byte, 32), 11: make([]byte, 32)}
		for i := range nEarlier + nCurrent {
			name := fmt.Sprintf("earlier-%d", i)
			if i >= nEarlier {
				name = fmt.Sprintf("current-%d", i-nEarlier)
			}
			p := pcrOf(i)
			wantPCR[p] = hashtest.Extend(crypto.SHA256, wantPCR[p], hashtest.Sum(crypto.SHA256, []byte(name)))
		}
		for first := 0; first <= nCurrent; first++ {
			for second := first; second <= nCurrent+1; second++ { // nCurrent+1: no second import
				runs++
				path := filepath.Join(dir, fmt.Sprintf("log-%d", runs))
				h := &Handoff{Log: handed}
				for i := 0; i <= nCurrent; i++ {
					if i == first {
						if _, err := Import(h, path, ""); err != nil {
							t.Fatal(err)
						}
					}
					if i == second && second != first {
						res, err := Import(h, path, "")
						if err != nil || !res.Already {
							t.Fatalf("second import: %+v, %v; want Already", res, err)
						}
					}
					if i < nCurrent {
						appendRecord(t, path, current[i])
					}
				}
				got, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("PCRs %05b, import before current record %d, again before %d:\n got %q\nwant %q", pcrs, first, second, got, want)
				}
				log, err := eventlog.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				values, err := eventlog.Replay(log.Records, []crypto.Hash{crypto.SHA256})
				if err != nil {
					t.Fatal(err)
				}
				for p, v := range wantPCR {
					if err := values.Compare(p, crypto.SHA256, v); err != nil {
						t.Fatalf("PCRs %05b, import at %d: %v", pcrs, first, err)
					}
				}
				os.Remove(path)
			}
		}
	}
	t.Logf("%d interleavings", runs)
}

// TestImportWaitsForTheLock holds the log's lock as a writer does between
// its extend and its append: Import waits, and the record the writer
// appends after it lands after the handed-over records.
func TestImportWaitsForTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	handed := testLog(t, 2)
	systemd := record(t, 11, "", "enter-initrd")
	recs, err := eventlog.ReadAll(bytes.NewReader(systemd))
	if err != nil || len(recs) != 1 {
		t.Fatalf("test record: %v", err)
	}
	w, err := eventlog.OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := w.BeginWrite(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := Import(&Handoff{Log: handed}, path, "")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Import did not wait for the lock (err %v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := w.Append(recs[0]); err != nil {
		t.Fatal(err)
	}
	if err := w.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := append(bytes.Clone(handed), systemd...); !bytes.Equal(got, want) {
		t.Errorf("log\n got %q\nwant %q", got, want)
	}
}

// TestImportConcurrentWriters imports while writers append: nothing is lost.
func TestImportConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	handed := testLog(t, 10)
	var wg sync.WaitGroup
	var recs [][]byte
	for i := range 20 {
		recs = append(recs, record(t, 11, "", fmt.Sprintf("c%d", i)))
	}
	for _, r := range recs {
		wg.Add(1)
		go func() { defer wg.Done(); appendRecord(t, path, r) }()
	}
	if _, err := Import(&Handoff{Log: handed}, path, ""); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	got, _ := os.ReadFile(path)
	if !bytes.HasPrefix(got, handed) {
		t.Fatal("the handed-over records are not first")
	}
	for _, r := range recs {
		if bytes.Count(got, r) != 1 {
			t.Errorf("record %q is there %d times", r, bytes.Count(got, r))
		}
	}
	if len(got) != len(handed)+len(bytes.Join(recs, nil)) {
		t.Errorf("log has %d bytes, want %d", len(got), len(handed)+len(bytes.Join(recs, nil)))
	}
}

func TestImportStickyAndFirmware(t *testing.T) {
	dir := t.TempDir()
	path, fw := filepath.Join(dir, "log"), filepath.Join(dir, "kexec-measured", "fw")
	res, err := Import(&Handoff{Log: testLog(t, 1), Firmware: []byte("fw"), Interrupted: true}, path, fw)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 1 || res.Already || res.Firmware != fw {
		t.Errorf("result %+v", res)
	}
	st, _ := os.Stat(path)
	if st.Mode() != 0o600|os.ModeSticky {
		t.Errorf("log mode %v, want the sticky bit kept for an interrupted handed-over log", st.Mode())
	}
	if b, _ := os.ReadFile(fw); string(b) != "fw" {
		t.Errorf("firmware copy %q", b)
	}
	// A clean import clears the mark.
	path2 := filepath.Join(dir, "log2")
	if _, err := Import(&Handoff{Log: testLog(t, 1)}, path2, ""); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path2); st.Mode() != 0o600 {
		t.Errorf("log mode %v, want 0600", st.Mode())
	}
}

// TestImportDamagedLog: a handed-over log cut inside its last record is
// imported as it is, and this boot's records after it still read.
func TestImportDamagedLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	cut := testLog(t, 2)
	cut = cut[:len(cut)-5]
	current := record(t, 11, "", "enter-initrd")
	os.WriteFile(path, current, 0o600)
	res, err := Import(&Handoff{Log: cut}, path, "")
	if err != nil || res.Records != 1 || res.Damaged != 1 {
		t.Fatalf("Import: %+v, %v; want 1 record and 1 damaged range", res, err)
	}
	log, _ := eventlog.ReadFile(path)
	if len(log.Records) != 2 || !bytes.Equal(append(log.Records[1].Raw, '\n'), current[1:]) {
		t.Errorf("after the import: %d records; want the handed-over one and this boot's, intact", len(log.Records))
	}
}
