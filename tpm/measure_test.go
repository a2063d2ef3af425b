//go:build linux

package tpm_test

// Tests of the tpm package with the loader's measure protocol and the
// eventlog package against swtpm: the log that loader.Loader writes under
// the locking protocol, together with systemd's records, replays to the
// TPM's PCR values (read by us and by tpm2-tools), and a writer killed
// between its extend and its append leaves a log that says so. The
// concurrency of several processes is tested end to end in
// cmd/kexec-measured (TestConcurrentProcesses).

import (
	"bufio"
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kexec-measured/kexec-measured/internal/hashtest"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/loader"
	"github.com/kexec-measured/kexec-measured/loader/loadertest"
	"github.com/kexec-measured/kexec-measured/pcr"
	"github.com/kexec-measured/kexec-measured/tpm"
	"github.com/kexec-measured/kexec-measured/tpm/swtpmtest"
)

// Environment of the helper processes the tests re-execute.
const (
	envHelper = "KEXEC_MEASURED_TPM_TEST_HELPER" // "die-after-extend"
	envSpec   = "KEXEC_MEASURED_TPM_TEST_SPEC"
	envLog    = "KEXEC_MEASURED_TPM_TEST_LOG"
)

func TestMain(m *testing.M) {
	switch os.Getenv(envHelper) {
	case "":
		os.Exit(m.Run())
	case "die-after-extend":
		os.Exit(helperDieAfterExtend())
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", envHelper, os.Getenv(envHelper))
		os.Exit(2)
	}
}

// load measures a load of the kernel and initrd components with contents
// kernel and initrds and command line cmdline into PCR 9 of tp and the log
// w, with the loader's own protocol (loader.Loader.Run with the fake
// syscall seam), and returns the measured bytes in event order.
func load(t *testing.T, tp *tpm.TPM, w *eventlog.Writer, kernel string, initrds []string, cmdline string) [][]byte {
	t.Helper()
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	req := loader.Request{Kernel: write("vmlinuz", kernel), Append: cmdline, Load: true}
	measured := [][]byte{[]byte(kernel)}
	for i, data := range initrds {
		req.Initrds = append(req.Initrds, write(fmt.Sprintf("initrd%d", i), data))
		measured = append(measured, []byte(data))
	}
	measured = append(measured, []byte(cmdline))
	l := &loader.Loader{Sys: loadertest.NewSys(t), PCRs: tp, Log: w, PCR: 9, Clock: func() (int64, error) { return 1, nil }}
	res, err := l.Run(req)
	if res != nil && res.Image != nil {
		res.Image.Close()
	}
	if err != nil {
		t.Fatalf("loader.Run: %v", err)
	}
	return measured
}

// helperDieAfterExtend extends PCR 9 under the lock with the sticky bit set,
// says "extended" on stdout and waits to be killed before appending.
func helperDieAfterExtend() int {
	tp, err := tpm.Open(os.Getenv(envSpec))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	w, err := eventlog.OpenWriter(os.Getenv(envLog))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sums := map[crypto.Hash][]byte{}
	for _, h := range tp.Banks() {
		sums[h] = hashtest.Sum(h, []byte("never logged"))
	}
	if err := w.Lock(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := w.BeginWrite(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := tp.Extend(9, sums); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("extended")
	time.Sleep(time.Minute)
	return 3 // not killed: the parent reports it
}

func helper(t *testing.T, kind, spec, log string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envHelper+"="+kind, envSpec+"="+spec, envLog+"="+log)
	cmd.Stderr = os.Stderr
	return cmd
}

// checkReplay replays the log at path and checks PCRs against the TPM in
// every bank, and against chain, the independent computation.
func checkReplay(t *testing.T, tp *tpm.TPM, path string, chain map[int][][]byte) eventlog.PCRValues {
	t.Helper()
	log, err := eventlog.ReadFile(path)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	values, err := eventlog.Replay(log.Records, tp.Banks())
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	for pcr, events := range chain {
		actual, err := tp.ReadPCRs(pcr)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range tp.Banks() {
			if err := values.Compare(pcr, h, actual[h]); err != nil {
				t.Errorf("replay vs TPM: %v", err)
			}
			want := make([]byte, h.Size()) // fresh swtpm: PCRs 0-16 are zeros
			for _, data := range events {
				want = hashtest.Extend(h, want, hashtest.Sum(h, data))
			}
			if !bytes.Equal(actual[h], want) {
				t.Errorf("bank %v PCR %d: TPM %x, independent computation %x", h, pcr, actual[h], want)
			}
		}
	}
	return values
}

// TestLogReplaysToTPM measures a load into PCR 9 with the loader and
// systemd-style events into PCR 11 through the protocol; the log, systemd's
// records and ours together, replays to the TPM's values in every bank.
func TestLogReplaysToTPM(t *testing.T) {
	tp, sw := openSwtpm(t)
	if len(tp.Banks()) != 4 {
		t.Fatalf("banks %v: want all four to test every bank", tp.Banks())
	}
	path := filepath.Join(t.TempDir(), "run", "log", "systemd", "tpm2-measure.log")
	w, err := eventlog.OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	chain := map[int][][]byte{}
	chain[9] = load(t, tp, w, "kernel", []string{"microcode.cpio", "initrd.cpio.zst"}, "root=/dev/vda1 ro")
	// A systemd record, in systemd's exact format, for an extend of PCR 11.
	for _, word := range []string{"enter-initrd", "leave-initrd"} {
		sums := map[crypto.Hash][]byte{}
		for _, h := range tp.Banks() {
			sums[h] = hashtest.Sum(h, []byte(word))
		}
		text := fmt.Sprintf("\x1e"+`{"pcr":11,"digests":[{"hashAlg":"sha1","digest":"%x"},{"hashAlg":"sha256","digest":"%x"},{"hashAlg":"sha384","digest":"%x"},{"hashAlg":"sha512","digest":"%x"}],"content_type":"systemd","content":{"string":"%s","bootId":"8f2c7b1e0d9a4c6b9e3f5a7d1c2b4e6f","timestamp":1234,"eventType":"phase"}}`+"\n",
			sums[crypto.SHA1], sums[crypto.SHA256], sums[crypto.SHA384], sums[crypto.SHA512], word)
		recs, err := eventlog.ReadAll(strings.NewReader(text))
		if err != nil || len(recs) != 1 {
			t.Fatalf("systemd record: %v", err)
		}
		if err := w.Lock(); err != nil {
			t.Fatal(err)
		}
		if err := w.BeginWrite(); err != nil {
			t.Fatal(err)
		}
		if err := tp.Extend(11, sums); err != nil {
			t.Fatal(err)
		}
		if err := w.Append(recs[0]); err != nil {
			t.Fatal(err)
		}
		if err := w.Unlock(); err != nil {
			t.Fatal(err)
		}
		chain[11] = append(chain[11], []byte(word))
	}
	values := checkReplay(t, tp, path, chain)
	checkPcrread(t, sw, values, []int{9, 11})
}

// checkPcrread reads pcrs with tpm2-tools' tpm2_pcrread and compares them
// with the replayed values.
func checkPcrread(t *testing.T, sw *swtpmtest.Swtpm, values eventlog.PCRValues, pcrs []int) {
	t.Helper()
	bin, err := exec.LookPath("tpm2_pcrread")
	if err != nil {
		t.Skip("tpm2_pcrread not found: install the Debian package tpm2-tools")
	}
	var sel []string
	for h := range values {
		name, _ := pcr.Name(h)
		var idx []string
		for _, p := range pcrs {
			idx = append(idx, strconv.Itoa(p))
		}
		sel = append(sel, name+":"+strings.Join(idx, ","))
	}
	slices.Sort(sel)
	out, err := exec.Command(bin, "-T", sw.TCTI(), strings.Join(sel, "+")).CombinedOutput()
	if err != nil {
		t.Fatalf("tpm2_pcrread %s: %v\n%s", strings.Join(sel, "+"), err, out)
	}
	got := parsePcrread(t, out)
	n := 0
	for h := range values {
		name, _ := pcr.Name(h)
		for _, p := range pcrs {
			v, ok := got[name][p]
			if !ok {
				t.Errorf("tpm2_pcrread printed no %s:%d\n%s", name, p, out)
				continue
			}
			if err := values.Compare(p, h, v); err != nil {
				t.Errorf("tpm2_pcrread vs replay: %v", err)
			}
			n++
		}
	}
	t.Logf("tpm2_pcrread agrees with the replay on %d PCR values", n)
}

// parsePcrread parses tpm2_pcrread's output:
//
//	sha256:
//	  9 : 0x1234...
func parsePcrread(t *testing.T, out []byte) map[string]map[int][]byte {
	t.Helper()
	bank := regexp.MustCompile(`^\s*(sha\d+):\s*$`)
	value := regexp.MustCompile(`^\s*(\d+)\s*:\s*0x([0-9A-Fa-f]+)\s*$`)
	got := map[string]map[int][]byte{}
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := bank.FindStringSubmatch(sc.Text()); m != nil {
			cur = m[1]
			got[cur] = map[int][]byte{}
			continue
		}
		if m := value.FindStringSubmatch(sc.Text()); m != nil && cur != "" {
			pcr, _ := strconv.Atoi(m[1])
			v, err := hex.DecodeString(m[2])
			if err != nil {
				t.Fatalf("parse %q: %v", sc.Text(), err)
			}
			got[cur][pcr] = v
		}
	}
	return got
}

// TestKilledWriter kills a writer between its extend and its append: the
// next reader and the next writer report the log as interrupted, and the
// replay no longer matches the TPM.
func TestKilledWriter(t *testing.T) {
	tp, sw := openSwtpm(t)
	path := filepath.Join(t.TempDir(), "tpm2-measure.log")
	w, err := eventlog.OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	logged := load(t, tp, w, "logged", nil, "")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	cmd := helper(t, "die-after-extend", sw.Spec, path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "extended\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper said %q, %v; want \"extended\"", line, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("helper exited cleanly; want killed")
	}

	// The next reader.
	log, err := eventlog.ReadFile(path)
	if !errors.Is(err, eventlog.ErrInterrupted) || !strings.Contains(err.Error(), path) {
		t.Fatalf("ReadFile after the kill = %v, want ErrInterrupted naming %s", err, path)
	}
	if log == nil || !log.Interrupted || len(log.Records) != len(logged) {
		t.Fatalf("ReadFile after the kill = %+v, want the %d records of the load and Interrupted", log, len(logged))
	}
	values, err := eventlog.Replay(log.Records, tp.Banks())
	if err != nil {
		t.Fatal(err)
	}
	actual, err := tp.ReadPCRs(9)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range tp.Banks() {
		if err := values.Compare(9, h, actual[h]); !errors.Is(err, eventlog.ErrMismatch) {
			t.Errorf("bank %v: Compare = %v, want a mismatch (the extend has no record)", h, err)
		}
	}
	// The next writer.
	w2, err := eventlog.OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if err := w2.Lock(); !errors.Is(err, eventlog.ErrInterrupted) {
		t.Fatalf("Lock after the kill = %v, want ErrInterrupted", err)
	}
	if err := w2.Unlock(); err != nil {
		t.Fatal(err)
	}
}
