//go:build linux

package main

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/internal/tmpfstest"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/handoff"
	"github.com/kexec-measured/kexec-measured/tpm"
	"github.com/kexec-measured/kexec-measured/tpm/swtpmtest"
)

var allBanks = []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}

// inputs writes a kernel and initrd components into dir and returns their
// paths and contents.
func inputs(t *testing.T, dir string, n int) (kernel string, initrds []string, contents [][]byte) {
	t.Helper()
	kernel = filepath.Join(dir, "vmlinuz")
	k := []byte("MZ\x00pretend kernel for " + t.Name())
	os.WriteFile(kernel, k, 0o644)
	contents = append(contents, k)
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("part%d.cpio", i))
		c := bytes.Repeat([]byte{byte('a' + i)}, 1000*i+3)
		os.WriteFile(p, c, 0o644)
		initrds = append(initrds, p)
		contents = append(contents, c)
	}
	return kernel, initrds, contents
}

func readPCRs(t *testing.T, spec string) map[crypto.Hash][]byte {
	t.Helper()
	dev, err := tpm.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	vals, err := dev.ReadPCRs(9)
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

// TestMeasuredLoadSwtpm loads through the fake seam with swtpm as the TPM
// and checks, for every bank, that the TPM's PCR 9 equals the replay of the
// written log and an independent computation from the input files.
func TestMeasuredLoadSwtpm(t *testing.T) {
	spec, _ := swtpmtest.Start(t)
	dir := t.TempDir()
	kernel, initrds, contents := inputs(t, dir, 3)
	logPath := filepath.Join(dir, "run/log/systemd/tpm2-measure.log")
	e, sys := testEnv(t)
	args := []string{"-l", kernel, "--append", "console=ttyS0 stage=2", "--tpm", spec, "--log", logPath}
	for _, p := range initrds {
		args = append(args, "--initrd", p)
	}
	code, _, stderr := runTest(e, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if len(sys.Loads) != 1 {
		t.Fatalf("%d loads", len(sys.Loads))
	}
	log, err := eventlog.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(log.Records) != 6 {
		t.Fatalf("%d records, want 6 (kernel, 3 initrds, handoff, cmdline)", len(log.Records))
	}
	replayed, err := eventlog.Replay(log.Records, allBanks)
	if err != nil {
		t.Fatal(err)
	}
	tpmVals := readPCRs(t, spec)
	items := append(contents, []byte(handoff.EventText), []byte("console=ttyS0 stage=2"))
	for _, h := range allBanks {
		want := hashtest.PCR(h, nil, items...)
		if !bytes.Equal(tpmVals[h], want) {
			t.Errorf("%v: TPM PCR 9 %x, independent %x", h, tpmVals[h], want)
		}
		if !bytes.Equal(replayed[h][9], want) {
			t.Errorf("%v: replay %x, independent %x", h, replayed[h][9], want)
		}
	}
	// The loaded initrd ends with the handoff, which holds the whole log.
	raw, _ := os.ReadFile(logPath)
	initrd := sys.Loads[0].Initrd
	var off int64
	for _, c := range contents[1:] { // contents[0] is the kernel
		off = (off+3)&^3 + int64(len(c))
	}
	h, err := handoff.Parse(initrd[(off+3)&^3:])
	if err != nil {
		t.Fatalf("the handoff component: %v", err)
	}
	if !bytes.Equal(h.Log, raw) {
		t.Errorf("the handed-over log (%d bytes) is not the log (%d bytes)", len(h.Log), len(raw))
	}
	fi, err := os.Stat(logPath)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSticky != 0 {
		t.Errorf("log mode %v, %v; want 0600 without the sticky bit", fi.Mode(), err)
	}
}

// countingTPM counts the commands sent to a TPM by command code
// (TPM 2.0 Part 1, §18: tag, size, then the 4-byte command code) and can
// fail the n-th TPM2_PCR_Extend.
type countingTPM struct {
	transport.TPMCloser
	mu         sync.Mutex
	extends    int
	others     int
	failExtend int  // the n-th PCR_Extend fails (1-based; 0 never)
	refuse     bool // it fails with a TPM error code rather than a lost connection
}

const ccPCRExtend = 0x182

func (c *countingTPM) Send(cmd []byte) ([]byte, error) {
	c.mu.Lock()
	if len(cmd) >= 10 && binary.BigEndian.Uint32(cmd[6:10]) == ccPCRExtend {
		c.extends++
		if c.extends == c.failExtend {
			c.mu.Unlock()
			if c.refuse {
				// A response header with TPM_RC_FAILURE (0x101): the TPM
				// refused the command, the PCR is unchanged.
				return []byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x01}, nil
			}
			return nil, errors.New("injected connection failure")
		}
	} else {
		c.others++
	}
	c.mu.Unlock()
	return c.TPMCloser.Send(cmd)
}

func countingEnv(t *testing.T, ct *countingTPM) env {
	e, _ := testEnv(t)
	e.openTPM = func(spec string) (tpmDevice, error) {
		tr, err := tpm.DialSwtpm(strings.TrimPrefix(spec, "swtpm:"))
		if err != nil {
			return nil, err
		}
		ct.TPMCloser = tr
		return tpm.New(ct)
	}
	return e
}

// TestOneExtendPerEvent checks that every event is exactly one
// TPM2_PCR_Extend, and that the other commands of a run do not grow with
// the number of events.
func TestOneExtendPerEvent(t *testing.T) {
	spec, _ := swtpmtest.Start(t)
	others := map[int]int{}
	for _, n := range []int{1, 6} {
		dir := t.TempDir()
		kernel, initrds, _ := inputs(t, dir, n)
		ct := &countingTPM{}
		e := countingEnv(t, ct)
		args := []string{"-l", kernel, "--tpm", spec, "--log", filepath.Join(dir, "log")}
		for _, p := range initrds {
			args = append(args, "--initrd", p)
		}
		if code, _, stderr := runTest(e, args...); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if want := n + 3; ct.extends != want { // kernel, n initrds, handoff, cmdline
			t.Errorf("%d components: %d PCR_Extend commands, want %d", n, ct.extends, want)
		}
		others[n] = ct.others
	}
	if others[1] != others[6] {
		t.Errorf("other TPM commands: %d with 1 component, %d with 6; want the same", others[1], others[6])
	}
	t.Logf("other TPM commands per run: %d", others[1])
}

// TestTPMFailures: the TPM failing at the first, a middle and the last
// extend, and swtpm gone before the load: nothing loaded, exit 255, and the
// message says what was extended.
func TestTPMFailures(t *testing.T) {
	tests := []struct {
		name         string
		fail         int
		refuse, kill bool
		wantText     string
		wantRecs     int
		wantMarked   bool
	}{
		{"first extend refused", 1, true, false, "PCR 9 was not extended", 0, false},
		{"middle extend refused", 3, true, false, "was extended with 2 event(s): kexec-kernel", 2, false},
		{"last extend refused", 5, true, false, "was extended with 4 event(s)", 4, false},
		{"middle extend lost", 3, false, false, "whether PCR 9 was extended with kexec-initrd", 2, true},
		{"swtpm gone", 0, false, true, "opening the TPM", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, sw := swtpmtest.Start(t)
			dir := t.TempDir()
			kernel, initrds, _ := inputs(t, dir, 3)
			ct := &countingTPM{failExtend: tt.fail, refuse: tt.refuse}
			e := countingEnv(t, ct)
			sys := e.sys.(interface{ CallString() string })
			if tt.kill {
				sw.Kill()
			}
			logPath := filepath.Join(dir, "log")
			code, _, stderr := runTest(e, "-l", kernel, "--initrd", initrds[0], "--initrd", initrds[1], "--initrd", initrds[2], "--tpm", spec, "--log", logPath)
			t.Logf("stderr: %s", stderr)
			if code != 255 {
				t.Errorf("exit %d, want 255", code)
			}
			if !strings.Contains(stderr, tt.wantText) {
				t.Errorf("stderr %q lacks %q", stderr, tt.wantText)
			}
			if strings.Contains(sys.CallString(), "kexec_file_load") {
				t.Error("loaded despite the failure")
			}
			log, err := eventlog.ReadFile(logPath)
			n := 0
			switch {
			case err == nil || errors.Is(err, eventlog.ErrInterrupted):
				n = len(log.Records)
				if log.Interrupted != tt.wantMarked {
					t.Errorf("log marked interrupted: %v, want %v", log.Interrupted, tt.wantMarked)
				}
			case !errors.Is(err, os.ErrNotExist):
				t.Fatal(err)
			}
			if n != tt.wantRecs {
				t.Errorf("%d records in the log, want %d", n, tt.wantRecs)
			}
			if !tt.wantMarked && !tt.kill && n > 0 {
				// The log must still explain the PCR exactly.
				replayed, err := eventlog.Replay(log.Records, allBanks)
				if err != nil {
					t.Fatal(err)
				}
				for h, v := range readPCRs(t, spec) {
					if !bytes.Equal(replayed[h][9], v) {
						t.Errorf("%v: replay %x, TPM %x", h, replayed[h][9], v)
					}
				}
			}
		})
	}
}

// TestLogFailures: the log cannot be written. Nothing is loaded, exit 255,
// and the message names the log.
func TestLogFailures(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(t *testing.T, dir string) string // returns the log path
		wantText string
	}{
		{"symlink at the log path", func(t *testing.T, dir string) string {
			os.WriteFile(filepath.Join(dir, "target"), nil, 0o600)
			os.Symlink(filepath.Join(dir, "target"), filepath.Join(dir, "log"))
			return filepath.Join(dir, "log")
		}, "log"},
		{"parent is a file", func(t *testing.T, dir string) string {
			os.WriteFile(filepath.Join(dir, "file"), nil, 0o600)
			return filepath.Join(dir, "file", "log")
		}, "not a directory"},
		{"read-only directory", func(t *testing.T, dir string) string {
			return tmpfstest.Mount(t, "ro,size=64k") + "/log"
		}, "read-only file system"},
		{"full filesystem", func(t *testing.T, dir string) string {
			mnt := tmpfstest.Mount(t, "size=16k")
			log := mnt + "/log"
			if err := os.WriteFile(log, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			// Fill the filesystem so that the first append fails.
			tmpfstest.Fill(t, mnt)
			return log
		}, "no space left on device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, _ := swtpmtest.Start(t)
			dir := t.TempDir()
			kernel, initrds, _ := inputs(t, dir, 1)
			logPath := tt.setup(t, dir)
			e, sys := testEnv(t)
			code, _, stderr := runTest(e, "-l", kernel, "--initrd", initrds[0], "--tpm", spec, "--log", logPath)
			t.Logf("stderr: %s", stderr)
			if code != 255 {
				t.Errorf("exit %d, want 255", code)
			}
			if !strings.Contains(stderr, tt.wantText) || !strings.Contains(stderr, logPath) && !strings.Contains(stderr, filepath.Dir(logPath)) {
				t.Errorf("stderr %q lacks %q or the log's path", stderr, tt.wantText)
			}
			if len(sys.Loads) != 0 {
				t.Error("loaded despite the failure")
			}
		})
	}
}

// TestInterruptedLogWarns: a log whose sticky bit an earlier, killed writer
// left set is reported, and the load goes on (the new records are right).
func TestInterruptedLogWarns(t *testing.T) {
	spec, _ := swtpmtest.Start(t)
	dir := t.TempDir()
	kernel, _, _ := inputs(t, dir, 0)
	logPath := filepath.Join(dir, "log")
	os.WriteFile(logPath, nil, 0o600)
	os.Chmod(logPath, 0o600|os.ModeSticky)
	e, sys := testEnv(t)
	code, _, stderr := runTest(e, "-l", kernel, "--tpm", spec, "--log", logPath)
	if code != 0 || !strings.Contains(stderr, "interrupted") || len(sys.Loads) != 1 {
		t.Errorf("exit %d, loads %d, stderr %q", code, len(sys.Loads), stderr)
	}
}

// TestDamagedLog: a log holding bytes that are not records (issue 13) is
// reported before anything is extended; the load goes on and the new
// records read back after the damage, or, with --require-tpm, nothing is
// extended, logged or loaded.
func TestDamagedLog(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprintf("require-tpm=%v", strict), func(t *testing.T) {
			spec, _ := swtpmtest.Start(t)
			dir := t.TempDir()
			kernel, _, _ := inputs(t, dir, 0)
			logPath := filepath.Join(dir, "log")
			os.WriteFile(logPath, []byte("garbage\x1e{\"pcr\":9,]\n"), 0o600)
			ct := &countingTPM{}
			e := countingEnv(t, ct)
			sys := e.sys.(interface{ CallString() string })
			args := []string{"-l", kernel, "--tpm", spec, "--log", logPath}
			if strict {
				args = append(args, "--require-tpm")
			}
			code, _, stderr := runTest(e, args...)
			if !strings.Contains(stderr, "not well-formed records") || !strings.Contains(stderr, "bytes 0-7, 7-") {
				t.Errorf("stderr %q does not name the damaged ranges", stderr)
			}
			log, _ := eventlog.ReadFile(logPath)
			loaded := strings.Contains(sys.CallString(), "kexec_file_load")
			if strict {
				if code == 0 || ct.extends != 0 || len(log.Records) != 0 || loaded {
					t.Errorf("--require-tpm: exit %d, %d extends, %d records, loaded %v; want a refusal before anything", code, ct.extends, len(log.Records), loaded)
				}
				return
			}
			// kernel, kexec-handoff, command line
			if code != 0 || ct.extends != 3 || len(log.Records) != 3 || len(log.Skipped) != 2 || !loaded {
				t.Errorf("exit %d, %d extends, %d records, %d skipped ranges, loaded %v; want the load with its 3 records after the 2 ranges", code, ct.extends, len(log.Records), len(log.Skipped), loaded)
			}
		})
	}
}

// TestDryRunJSONIsTheLog: the events of a dry run's --json output are,
// byte for byte, the records a measured load of the same request appends
// to the log (the fake seam gives both the same boot ID, the clock the
// same timestamp); a kernel path with '&', '<' and '>' stays as it is.
func TestDryRunJSONIsTheLog(t *testing.T) {
	spec, _ := swtpmtest.Start(t)
	dir := t.TempDir()
	_, initrds, _ := inputs(t, dir, 2)
	kernel := filepath.Join(dir, "a&b<c>")
	if err := os.WriteFile(kernel, []byte("MZ kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "log")
	args := []string{"-l", kernel, "--initrd", initrds[0], "--initrd", initrds[1], "--append", "x<y>&z", "--tpm", spec}
	e, _ := testEnv(t)
	code, stdout, stderr := runTest(e, append(args, "--dry-run", "--json")...)
	if code != 0 {
		t.Fatalf("dry run: exit %d, stderr %q", code, stderr)
	}
	var plan struct{ Events []json.RawMessage }
	if err := json.Unmarshal([]byte(stdout), &plan); err != nil {
		t.Fatalf("dry run output: %v\n%s", err, stdout)
	}
	e, _ = testEnv(t)
	if code, _, stderr := runTest(e, append(args, "--log", logPath)...); code != 0 {
		t.Fatalf("load: exit %d, stderr %q", code, stderr)
	}
	logData, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for _, ev := range plan.Events {
		want.WriteByte(0x1e)
		want.Write(ev)
		want.WriteByte('\n')
	}
	if !bytes.Equal(logData, want.Bytes()) {
		t.Errorf("the log holds\n%q\nthe dry run's events give\n%q", logData, want.Bytes())
	}
	if !bytes.Contains(logData, []byte(`"path":"`+kernel+`"`)) {
		t.Errorf("the log does not name %s as it is:\n%s", kernel, logData)
	}
}

// closeFails is a TPM whose Close fails after closing the real one.
type closeFails struct{ tpmDevice }

func (d closeFails) Close() error {
	return errors.Join(d.tpmDevice.Close(), errors.New("TPM close failed (fake)"))
}

// TestCloseErrorFails: an error closing the TPM after a measured load is
// reported and fails the command.
func TestCloseErrorFails(t *testing.T) {
	spec, _ := swtpmtest.Start(t)
	dir := t.TempDir()
	kernel, _, _ := inputs(t, dir, 0)
	e, sys := testEnv(t)
	e.openTPM = func(spec string) (tpmDevice, error) {
		d, err := openTPM(spec)
		if err != nil {
			return nil, err
		}
		return closeFails{d}, nil
	}
	code, _, stderr := runTest(e, "-l", kernel, "--tpm", spec, "--log", filepath.Join(dir, "log"))
	if code != exitFailed || !strings.Contains(stderr, "closing the TPM: TPM close failed (fake)") || len(sys.Loads) != 1 {
		t.Errorf("exit %d, %d loads, stderr %q; want %d and the close error", code, len(sys.Loads), stderr, exitFailed)
	}
}
