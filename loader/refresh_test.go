//go:build linux

package loader

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
)

func TestRefresh(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "MZ kernel bytes")
	a := writeFile(t, dir, "a.cpio", "07070100000000")
	l, sys, log := handoffLoader(t, []byte("first handoff"))
	req := Request{Load: true, Kernel: kernel, Initrds: []string{a}, Append: "root=x", Debug: true}
	res, err := l.Run(req)
	if res.Image != nil {
		res.Image.Close()
	}
	if err != nil || res.State == nil {
		t.Fatalf("Run: %v, state %v", err, res.State)
	}
	st := res.State
	if len(st.Records) != 4 || st.Cmdline != "root=x" || !st.Debug {
		t.Fatalf("state %+v", st)
	}
	extends := l.PCRs.(*fakeTPM).extends
	logBytes := func() ([]byte, error) {
		b, err := eventlog.Encode(log.records)
		return append(b, []byte("\x1e{\"pcr\":11,\"later\":1}\n")...), err
	}
	refresh := func() (*Result, error) {
		sys.Calls = nil
		l.Handoff.(*fakeHandoff).data = []byte("second handoff")
		res, err := l.Refresh(st, log, logBytes)
		if res.Image != nil {
			res.Image.Close()
		}
		return res, err
	}

	res, err = refresh()
	if err != nil {
		t.Fatal(err)
	}
	if got := sys.CallString(); got != "lock handoff unlock kexec_file_load" {
		t.Errorf("calls %s: want no extend, the handoff built under the lock, one load", got)
	}
	if l.PCRs.(*fakeTPM).extends != extends || len(log.records) != 4 {
		t.Error("the refresh extended or logged")
	}
	first, second := sys.Loads[0], sys.Loads[1]
	wantInitrd := append(bytes.Clone(first.Initrd[:len(first.Initrd)-len("first handoff")]), "second handoff"...)
	if !bytes.Equal(second.Kernel, first.Kernel) || !bytes.Equal(second.Initrd, wantInitrd) || second.Cmdline != first.Cmdline || second.Flags != first.Flags {
		t.Errorf("refreshed load %q %q %q %s; want the same load with the new handoff %q", second.Kernel, second.Initrd, second.Cmdline, flagNames(second.Flags), wantInitrd)
	}
	if !second.SealsOK {
		t.Error("the refreshed initrd is not sealed")
	}

	// An input changed since it was measured: refused, nothing loaded.
	os.WriteFile(a, []byte("07070100000001"), 0o644)
	if _, err := refresh(); !errors.Is(err, ErrRefreshChanged) || len(sys.Loads) != 2 {
		t.Errorf("changed input: %v, %d loads; want ErrRefreshChanged and no load", err, len(sys.Loads))
	}
	os.WriteFile(a, []byte("07070100000000"), 0o644)

	// The records are not in the log.
	logBytes = func() ([]byte, error) { return nil, nil }
	if _, err := refresh(); !errors.Is(err, ErrRefreshNotLogged) || len(sys.Loads) != 2 {
		t.Errorf("records not logged: %v, %d loads; want ErrRefreshNotLogged and no load", err, len(sys.Loads))
	}
	if got := sys.CallString(); got != "lock unlock" {
		t.Errorf("calls %s", got)
	}
}

func TestNoStateForPanicOrNoHandoff(t *testing.T) {
	dir := t.TempDir()
	kernel := writeFile(t, dir, "vmlinuz", "MZ kernel bytes")
	for _, req := range []Request{
		{Load: true, Kernel: kernel, Panic: true},
		{Load: true, Kernel: kernel, NoHandoff: true},
	} {
		l, _, _ := handoffLoader(t, []byte("h"))
		res, err := l.Run(req)
		if res.Image != nil {
			res.Image.Close()
		}
		if err != nil || res.State != nil {
			t.Errorf("%+v: %v, state %+v; want no state", req, err, res.State)
		}
	}
}
