//go:build linux

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/handoff"
	"github.com/kexec-measured/kexec-measured/tpm/swtpmtest"
)

// lastHandoff returns the handoff at the end of the last loaded initrd.
func lastHandoff(t *testing.T, initrd []byte, userEnd int64) *handoff.Handoff {
	t.Helper()
	h, err := handoff.Parse(initrd[(userEnd+3)&^3:])
	if err != nil {
		t.Fatalf("the handoff component: %v", err)
	}
	return h
}

// TestRefreshCarriesLaterRecords: records appended after the load reach
// the handoff of `log refresh` and of `-e`, without a second extend.
func TestRefreshCarriesLaterRecords(t *testing.T) {
	spec, _ := swtpmtest.Start(t)
	dir := t.TempDir()
	kernel, initrds, contents := inputs(t, dir, 1)
	logPath := filepath.Join(dir, "tpm2-measure.log")
	e, sys := testEnv(t)
	e.statePath = filepath.Join(dir, "state", "load.json")
	if code, _, stderr := runTest(e, "-l", kernel, "--initrd", initrds[0], "--append", "x", "--tpm", spec, "--log", logPath); code != 0 {
		t.Fatalf("load: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(e.statePath); err != nil {
		t.Fatalf("no load state: %v", err)
	}
	userEnd := int64(len(contents[1]))
	before := readPCRs(t, spec)

	appendLater := func(s string) {
		w, err := eventlog.OpenWriter(logPath)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		rec := systemdRecordT(t, s)
		w.Lock()
		w.BeginWrite()
		if err := w.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	appendLater("shutdown")
	var stdout, stderr bytes.Buffer
	if code := runLogRefresh([]string{"--state", e.statePath}, e, &stdout, &stderr); code != 0 {
		t.Fatalf("log refresh: exit %d: %s%s", code, stdout.String(), stderr.String())
	}
	raw, _ := os.ReadFile(logPath)
	if len(sys.Loads) != 2 {
		t.Fatalf("%d loads, want 2", len(sys.Loads))
	}
	later := encodedRecord(t, 11, "shutdown")
	if h := lastHandoff(t, sys.Loads[1].Initrd, userEnd); !bytes.Equal(h.Log, raw) || !bytes.HasSuffix(h.Log, later) {
		t.Errorf("the refreshed handoff does not hold the log with the later record")
	}
	if h := lastHandoff(t, sys.Loads[0].Initrd, userEnd); !bytes.Equal(h.Log, raw[:len(raw)-len(later)]) {
		t.Error("the first handoff is not the log as it stood at the load")
	}

	// kexec -e refreshes once more, then executes.
	appendLater("final")
	if code, _, stderr := runTest(e, "-e"); code != 0 {
		t.Fatalf("-e: exit %d: %s", code, stderr)
	}
	raw, _ = os.ReadFile(logPath)
	if len(sys.Loads) != 3 || !strings.HasSuffix(sys.CallString(), "reboot") {
		t.Fatalf("calls %s: want a refresh load, then the reboot", sys.CallString())
	}
	if h := lastHandoff(t, sys.Loads[2].Initrd, userEnd); !bytes.Equal(h.Log, raw) {
		t.Error("the handoff of -e is not the log as it stood")
	}
	after := readPCRs(t, spec)
	for h, v := range before {
		if !bytes.Equal(after[h], v) {
			t.Errorf("%v: PCR 9 changed by a refresh", h)
		}
	}

	// An input changed: refused, exit 1, and -e still executes the earlier load.
	os.WriteFile(initrds[0], []byte("changed"), 0o644)
	stdout.Reset()
	stderr.Reset()
	if code := runLogRefresh([]string{"--state", e.statePath}, e, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "changed") {
		t.Errorf("refresh of a changed input: exit %d: %s", code, stderr.String())
	}
	if code, _, stderr := runTest(e, "-e"); code != 0 || !strings.Contains(stderr, "warning: refreshing the handoff") {
		t.Errorf("-e after a failed refresh: exit %d: %s", code, stderr)
	}
	if len(sys.Loads) != 3 {
		t.Errorf("%d loads, want no more", len(sys.Loads))
	}

	// An unload forgets the state: nothing to refresh.
	if code, _, stderr := runTest(e, "-u"); code != 0 {
		t.Fatalf("-u: exit %d: %s", code, stderr)
	}
	stdout.Reset()
	if code := runLogRefresh([]string{"--state", e.statePath}, e, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "nothing to refresh") {
		t.Errorf("refresh after -u: exit %d: %s", code, stdout.String())
	}
}

func systemdRecordT(t *testing.T, s string) eventlog.Record {
	t.Helper()
	b := encodedRecord(t, 11, s)
	recs, err := eventlog.ReadAll(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return recs[0]
}
