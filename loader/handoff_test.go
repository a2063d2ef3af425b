//go:build linux

package loader

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/handoff"
	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/loader/loadertest"
)

// fakeHandoff is a HandoffBuilder that notes its call among the seam's
// calls and returns fixed bytes.
type fakeHandoff struct {
	sys  *loadertest.Sys
	data []byte
	err  error
}

func (f *fakeHandoff) Build() ([]byte, error) {
	f.sys.Calls = append(f.sys.Calls, "handoff")
	return f.data, f.err
}

func handoffLoader(t *testing.T, data []byte) (*Loader, *loadertest.Sys, *fakeLog) {
	sys := loadertest.NewSys(t)
	log := &fakeLog{sys: sys}
	l := &Loader{Sys: sys, PCR: 9, PCRs: &fakeTPM{sys: sys, banks: []crypto.Hash{crypto.SHA1, crypto.SHA256}}, Log: log,
		Handoff: &fakeHandoff{sys: sys, data: data}}
	return l, sys, log
}

func TestHandoffComponent(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "MZ kernel bytes")
	a := writeFile(t, dir, "a.cpio", "07070100000000")
	b := writeFile(t, dir, "b.cpio", "xyz") // ends unaligned: padding before the handoff
	ho := []byte("handoff bytes!!!")
	for _, tc := range []struct {
		name      string
		initrds   []string
		parts     []string
		noHandoff bool
	}{
		{"two components", []string{a, b}, []string{"07070100000000", "xyz"}, false},
		{"no user initrd", nil, nil, false},
		{"no handoff", []string{a, b}, []string{"07070100000000", "xyz"}, true},
		{"no handoff, no initrd", nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, sys, log := handoffLoader(t, ho)
			res, err := l.Run(Request{Load: true, Kernel: kernel, Initrds: tc.initrds, Append: "x", NoHandoff: tc.noHandoff})
			if res.Image != nil {
				defer res.Image.Close()
			}
			if err != nil {
				t.Fatal(err)
			}
			user, _ := expectedInitrd(tc.parts)
			wantOff := int64(len(user)+3) &^ 3
			want := user
			var events []string
			events = append(events, eventlog.EventKernel)
			for range tc.parts {
				events = append(events, eventlog.EventInitrd)
			}
			wantCalls := "lock" + strings.Repeat(" begin extend append", len(events)+1)
			if !tc.noHandoff {
				want = append(append(bytes.Clone(user), make([]byte, wantOff-int64(len(user)))...), ho...)
				events = append(events, eventlog.EventHandoff)
				wantCalls += " begin extend append handoff"
			}
			events = append(events, eventlog.EventCmdline)
			wantCalls += " unlock kexec_file_load"
			if got := sys.CallString(); got != wantCalls {
				t.Errorf("calls\n got %s\nwant %s", got, wantCalls)
			}
			c := sys.Loads[0]
			if !bytes.Equal(c.Initrd, want) {
				t.Errorf("loaded initrd %q, want %q", c.Initrd, want)
			}
			if !c.SealsOK || c.WriteErr == nil {
				t.Errorf("initrd memfd not fully sealed (seals ok %v, write error %v)", c.SealsOK, c.WriteErr)
			}
			if wantNo := len(want) == 0; (c.Flags&FlagNoInitramfs != 0) != wantNo || (c.InitrdFD == -1) != wantNo {
				t.Errorf("flags %s, initrd fd %d; want NO_INITRAMFS only without any initrd", flagNames(c.Flags), c.InitrdFD)
			}
			var got []string
			for i, r := range log.records {
				var content eventlog.KexecContent
				if err := jsonUnmarshal(r.Content, &content); err != nil {
					t.Fatal(err)
				}
				got = append(got, content.Event)
				if content.Event != eventlog.EventHandoff {
					continue
				}
				if content.Offset != wantOff || content.Size != 0 || content.Path != "" {
					t.Errorf("handoff record %d: %+v, want offset %d size 0", i, content, wantOff)
				}
				for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
					sum, _ := r.Sum(h)
					if w := hashtest.Sum(h, []byte("kexec-measured handoff v1")); !bytes.Equal(sum, w) {
						t.Errorf("%v: handoff digest %x, want %x", h, sum, w)
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(events) {
				t.Errorf("events %v, want %v", got, events)
			}
			if im := res.Image; !tc.noHandoff && (im.Handoff == nil || im.Handoff.Offset != wantOff || im.Handoff.Size != int64(len(ho))) {
				t.Errorf("Image.Handoff %+v", im.Handoff)
			}
		})
	}
}

func TestHandoffDryRun(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "MZ kernel bytes")
	sys := loadertest.NewSys(t)
	fh := &fakeHandoff{sys: sys, data: []byte("x")}
	l := &Loader{Sys: sys, PCR: 9, DryRun: true, Banks: []crypto.Hash{crypto.SHA256}, Handoff: fh}
	res, err := l.Run(Request{Load: true, Kernel: kernel})
	if res.Image != nil {
		defer res.Image.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	ms := res.Image.Measurements
	if len(ms) != 3 || ms[1].Event != eventlog.EventHandoff || !bytes.Equal(ms[1].Sums[crypto.SHA256], hashtest.Sum(crypto.SHA256, []byte(handoff.EventText))) {
		t.Errorf("dry-run measurements %+v, want kernel, handoff (digest of %q), cmdline", ms, handoff.EventText)
	}
	if len(sys.Calls) != 0 {
		t.Errorf("a dry run called %v", sys.Calls)
	}
	if !strings.Contains(strings.Join(res.Steps, "\n"), "append the handoff component to the initrd at offset 0") {
		t.Errorf("steps %q do not say that the handoff is appended", res.Steps)
	}
}

func TestHandoffTooLarge(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "MZ kernel bytes")
	initrd := writeFile(t, dir, "a.cpio", "0707")
	l, sys, _ := handoffLoader(t, make([]byte, 8192))
	sys.Files["/proc/meminfo"] = "MemTotal:  4 kB\nMemAvailable:       4 kB\n"
	res, err := l.Run(Request{Load: true, Kernel: kernel, Initrds: []string{initrd}})
	if res.Image != nil {
		defer res.Image.Close()
	}
	if !errors.Is(err, ErrHandoffTooLarge) || !strings.Contains(err.Error(), "8192 bytes") {
		t.Fatalf("Run: %v, want ErrHandoffTooLarge naming the size", err)
	}
	if len(sys.Loads) != 0 {
		t.Error("something was loaded")
	}
	// With memory enough, the same load goes through.
	l, sys, _ = handoffLoader(t, make([]byte, 8192))
	sys.Files["/proc/meminfo"] = "MemAvailable:       1024 kB\n"
	res, err = l.Run(Request{Load: true, Kernel: kernel, Initrds: []string{initrd}})
	if res.Image != nil {
		defer res.Image.Close()
	}
	if err != nil || len(sys.Loads) != 1 {
		t.Fatalf("Run with memory enough: %v, %d loads", err, len(sys.Loads))
	}
}

func TestHandoffBuildFails(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "MZ kernel bytes")
	l, sys, _ := handoffLoader(t, nil)
	l.Handoff.(*fakeHandoff).err = errors.New("log too large (fake)")
	res, err := l.Run(Request{Load: true, Kernel: kernel})
	if res.Image != nil {
		defer res.Image.Close()
	}
	var me *MeasureError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "building the handoff") {
		t.Fatalf("Run: %v, want a *MeasureError about the handoff", err)
	}
	if len(sys.Loads) != 0 || !strings.HasSuffix(sys.CallString(), "handoff unlock") {
		t.Errorf("calls %s: want the lock released and nothing loaded", sys.CallString())
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// BenchmarkHandoffLoad is a measured load (fake seam, TPM and log) of a
// small kernel and component with and without a handoff of the size a
// 1000-record log gives (698 476 bytes, handoff.BenchmarkBuild1000): the
// difference is the loader's part of the added time per load (one more
// extend and record, the append, the seals), without building the archive.
func BenchmarkHandoffLoad(b *testing.B) {
	dir := b.TempDir()
	kernel := dir + "/vmlinuz"
	os.WriteFile(kernel, []byte("MZ kernel"), 0o644)
	initrd := dir + "/a.cpio"
	os.WriteFile(initrd, make([]byte, 1<<20), 0o644)
	for _, noHandoff := range []bool{true, false} {
		b.Run(fmt.Sprintf("handoff=%v", !noHandoff), func(b *testing.B) {
			sys := loadertest.NewSys(b)
			for b.Loop() {
				sys.Calls, sys.Loads = nil, nil
				l := &Loader{Sys: sys, PCR: 9, PCRs: &fakeTPM{sys: sys, banks: []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}},
					Log: &fakeLog{sys: sys}, Handoff: &fakeHandoff{sys: sys, data: make([]byte, 698476)}}
				res, err := l.Run(Request{Load: true, Kernel: kernel, Initrds: []string{initrd}, NoHandoff: noHandoff})
				if err != nil {
					b.Fatal(err)
				}
				res.Image.Close()
			}
		})
	}
}
