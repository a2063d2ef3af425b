//go:build linux

package loader

import (
	"crypto"
	"fmt"
	"os"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/loader/loadertest"
)

// fakeTPM is a PCRExtender that computes PCR values in memory (pcrs, by
// PCR index and bank, from all zeros) and can be made to fail at its n-th
// extend.
type fakeTPM struct {
	sys     *loadertest.Sys
	banks   []crypto.Hash
	failAt  int  // 1-based; 0 never
	unknown bool // the failure leaves the outcome unknown (else: refused, PCR unchanged)
	extends int
	pcrs    map[int]map[crypto.Hash][]byte
}

func (p *fakeTPM) Banks() []crypto.Hash { return p.banks }
func (p *fakeTPM) Extend(pcr int, sums map[crypto.Hash][]byte) error {
	p.extends++
	p.sys.Calls = append(p.sys.Calls, "extend")
	if p.extends == p.failAt {
		if p.unknown {
			return fmt.Errorf("connection reset (fake, extend %d)", p.extends)
		}
		return fmt.Errorf("%w: TPM_RC_FAILURE (fake, extend %d)", ErrPCRUnchanged, p.extends)
	}
	if p.pcrs == nil {
		p.pcrs = map[int]map[crypto.Hash][]byte{}
	}
	if p.pcrs[pcr] == nil {
		p.pcrs[pcr] = map[crypto.Hash][]byte{}
	}
	for _, h := range p.banks {
		old := p.pcrs[pcr][h]
		if old == nil {
			old = make([]byte, h.Size())
		}
		p.pcrs[pcr][h] = hashtest.Extend(h, old, sums[h])
	}
	return nil
}

// fakeLog is an EventLog that keeps records in memory and can be made to
// fail its n-th append.
type fakeLog struct {
	sys     *loadertest.Sys
	failAt  int
	appends int
	records []eventlog.Record
	marked  bool
}

func (l *fakeLog) Lock() error { l.sys.Calls = append(l.sys.Calls, "lock"); return nil }
func (l *fakeLog) BeginWrite() error {
	l.sys.Calls = append(l.sys.Calls, "begin")
	l.marked = true
	return nil
}
func (l *fakeLog) AbortWrite() error {
	l.sys.Calls = append(l.sys.Calls, "abort")
	l.marked = false
	return nil
}
func (l *fakeLog) Append(r eventlog.Record) error {
	l.appends++
	l.sys.Calls = append(l.sys.Calls, "append")
	if l.appends == l.failAt {
		return fmt.Errorf("write: no space left on device (fake)")
	}
	l.records = append(l.records, r)
	l.marked = false
	return nil
}
func (l *fakeLog) Unlock() error { l.sys.Calls = append(l.sys.Calls, "unlock"); return nil }

// writeFile writes content to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := dir + "/" + name
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
