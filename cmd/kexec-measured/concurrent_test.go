//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/loader/loadertest"
	"github.com/kexec-measured/kexec-measured/tpm/swtpmtest"
)

// childEnv names the variable that makes the test binary act as one
// kexec-measured process with the fake syscall seam (see TestMain).
const childEnv = "KEXEC_MEASURED_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		// A child process: a real TPM (swtpm) and a real log, the fake
		// seam for the syscalls.
		e := env{sys: loadertest.NewSys(nil), getenv: os.Getenv, openTPM: openTPM, clock: bootClock}
		os.Exit(runKexec("kexec-measured", os.Args[1:], e, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestConcurrentProcesses runs 8 processes that measure different inputs
// into the same swtpm and log at once; the final log must replay exactly to
// the TPM's values in every bank.
func TestConcurrentProcesses(t *testing.T) {
	spec, _ := swtpmtest.Start(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "tpm2-measure.log")
	const procs = 8
	var wg sync.WaitGroup
	errs := make([]string, procs)
	for i := range procs {
		kernel := filepath.Join(dir, fmt.Sprintf("vmlinuz%d", i))
		os.WriteFile(kernel, []byte(fmt.Sprintf("kernel %d", i)), 0o644)
		initrd := filepath.Join(dir, fmt.Sprintf("initrd%d", i))
		os.WriteFile(initrd, bytes.Repeat([]byte{byte(i)}, 4096*(i+1)), 0o644)
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-l", kernel, "--initrd", initrd, "--initrd", initrd,
				"--append", fmt.Sprintf("proc=%d", i), "--tpm", spec, "--log", logPath)
			cmd.Env = append(os.Environ(), childEnv+"=1")
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Sprintf("process %d: %v: %s", i, err, out)
			}
		}()
	}
	wg.Wait()
	if msg := strings.Join(errs, ""); msg != "" {
		t.Fatal(msg)
	}
	log, err := eventlog.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(log.Records) != procs*5 {
		t.Fatalf("%d records, want %d", len(log.Records), procs*5)
	}
	replayed, err := eventlog.Replay(log.Records, allBanks)
	if err != nil {
		t.Fatal(err)
	}
	tpmVals := readPCRs(t, spec)
	for _, h := range allBanks {
		if !bytes.Equal(replayed[h][9], tpmVals[h]) {
			t.Errorf("%v: replay %x, TPM %x", h, replayed[h][9], tpmVals[h])
		}
	}
}
