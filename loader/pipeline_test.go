//go:build linux

package loader

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/loader/loadertest"
	"github.com/kexec-measured/kexec-measured/pcr"
)

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// recordDigest returns the hex digest of bank in r.
func recordDigest(t *testing.T, r eventlog.Record, bank crypto.Hash) string {
	t.Helper()
	name, err := pcr.Name(bank)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range r.Digests {
		if d.HashAlg == name {
			return d.Digest
		}
	}
	t.Fatalf("record %s has no %s digest", r.Content, name)
	return ""
}

// TestRewrittenDuringLoad rewrites a component on disk while it is being
// copied into the memfd (after its first chunk): what is loaded is then a
// mix of the old and the new file, and the logged digests must be those of
// exactly what was loaded, whatever the file holds.
func TestRewrittenDuringLoad(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "kernel")
	const size = 3*pipeChunk + 12345
	old, fresh := randomBytes(t, size), randomBytes(t, size)
	comp := dir + "/initrd.img"
	if err := os.WriteFile(comp, old, 0o644); err != nil {
		t.Fatal(err)
	}
	sys := loadertest.NewSys(t)
	banks := []crypto.Hash{crypto.SHA1, crypto.SHA256}
	log := &fakeLog{sys: sys}
	l := &Loader{Sys: sys, PCRs: &fakeTPM{sys: sys, banks: banks}, Log: log, PCR: 9}
	chunks := 0
	l.afterChunk = func() {
		chunks++
		if chunks != 2 { // 1: the kernel; 2: the component's first chunk
			return
		}
		if err := os.WriteFile(comp, fresh, 0o644); err != nil {
			t.Error(err)
		}
	}
	res, err := l.Run(Request{Load: true, Kernel: kernel, Initrds: []string{comp}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Image.Close()
	loaded := sys.Loads[0].Initrd
	want := append(append([]byte{}, old[:pipeChunk]...), fresh[pipeChunk:]...)
	if !bytes.Equal(loaded, want) {
		t.Fatalf("loaded %d bytes, not the first chunk of the old file and the rest of the new one: the rewrite did not happen during the copy", len(loaded))
	}
	if len(log.records) != 3 {
		t.Fatalf("%d records, want 3", len(log.records))
	}
	for _, bank := range banks {
		got := recordDigest(t, log.records[1], bank)
		if want := hex.EncodeToString(hashtest.Sum(bank, loaded)); got != want {
			t.Errorf("%v: logged digest %s is not the digest of the loaded bytes %s", bank, got, want)
		}
	}
}

// TestPipelineDigests copies inputs of sizes around the chunk size into
// memfds, with a small chunk, and checks the digests in every bank against
// the bytes the memfds hold, and the seals: the kernel sealed, the initrd
// only against shrinking until Seal.
func TestPipelineDigests(t *testing.T) {
	const chunk = 4096
	sizes := []int{1, 0, chunk - 1, chunk, chunk + 1, 3*chunk + 5, 0, 7}
	dir := t.TempDir()
	kernel := dir + "/vmlinuz"
	kernelBytes := randomBytes(t, 2*chunk+3)
	os.WriteFile(kernel, kernelBytes, 0o644)
	var paths []string
	var contents [][]byte
	for i, n := range sizes {
		b := randomBytes(t, n)
		p := dir + "/c" + string(rune('a'+i))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths, contents = append(paths, p), append(contents, b)
	}
	banks := pcr.Banks()
	im, err := readInputs(kernel, paths, nil, nil, banks, pipeline{chunk: chunk})
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	for _, h := range banks {
		if got, want := im.Kernel.sums[h], hashtest.Sum(h, kernelBytes); !bytes.Equal(got, want) {
			t.Errorf("kernel %v: %x, want %x", h, got, want)
		}
		for i, c := range im.Initrd {
			if got, want := c.sums[h], hashtest.Sum(h, contents[i]); !bytes.Equal(got, want) {
				t.Errorf("component %d (%d bytes) %v: %x, want %x", i, sizes[i], h, got, want)
			}
		}
	}
	want, _ := expectedInitrd(func() []string {
		var s []string
		for _, c := range contents {
			s = append(s, string(c))
		}
		return s
	}())
	got, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", im.initrd.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the initrd memfd holds %d bytes, not the %d of the concatenation", len(got), len(want))
	}

	all := unix.F_SEAL_WRITE | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
	if s := seals(t, im.kernel); s&all != all {
		t.Errorf("kernel memfd seals %#x, want %#x", s, all)
	}
	if s := seals(t, im.initrd); s&all != unix.F_SEAL_SHRINK {
		t.Errorf("initrd memfd seals before Seal %#x, want F_SEAL_SHRINK alone (%#x)", s, unix.F_SEAL_SHRINK)
	}
	if err := im.initrd.Truncate(int64(len(want)) - 1); !errors.Is(err, unix.EPERM) {
		t.Errorf("shrinking the initrd memfd: %v, want EPERM", err)
	}
	if err := im.Seal(); err != nil {
		t.Fatalf("Seal with the read-only mappings in place: %v", err)
	}
	if s := seals(t, im.initrd); s&all != all {
		t.Errorf("initrd memfd seals after Seal %#x, want %#x", s, all)
	}
}

func seals(t *testing.T, f *os.File) int {
	t.Helper()
	s, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
