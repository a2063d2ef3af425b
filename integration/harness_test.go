//go:build integration

package integration

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kexec-measured/kexec-measured/internal/newc"
)

// Timeouts. TCG on 2 cores boots the cloud kernel in about 5 s; a
// scenario with a kexec boots twice. The bounds are generous so a loaded CI
// machine does not flake, and small enough that a hang fails in minutes.
const (
	vmTimeout       = 4 * time.Minute
	kvmProbeTimeout = 25 * time.Second
	swtpmTimeout    = 10 * time.Second
)

// env is what every scenario shares: the cached kernel and busybox from
// integration/setup, the statically built kexec-measured, and the QEMU
// accelerator that works on this host.
type env struct {
	Kernel   string // path of the Debian cloud kernel (stage 1 and stage 2)
	Busybox  string // path of the static busybox
	Binary   string // path of the CGO_ENABLED=0 kexec-measured
	Accel    string // "tcg" or "kvm"
	BuildErr error  // why Binary could not be built, if it could not
}

// sharedEnv builds the environment once per test binary.
var sharedEnv = sync.OnceValues(newEnv)

// getEnv returns the shared environment or fails the test. Scenarios that
// run kexec-measured pass needBinary.
func getEnv(t *testing.T, needBinary bool) *env {
	t.Helper()
	e, err := sharedEnv()
	if err != nil {
		t.Fatalf("integration environment: %v", err)
	}
	if needBinary && e.BuildErr != nil {
		t.Fatalf("building kexec-measured: %v", e.BuildErr)
	}
	return e
}

func newEnv() (*env, error) {
	cache, err := filepath.Abs(".cache")
	if err != nil {
		return nil, err
	}
	e := &env{
		Kernel:  filepath.Join(cache, "vmlinuz"),
		Busybox: filepath.Join(cache, "busybox"),
	}
	for _, f := range []string{e.Kernel, e.Busybox} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("%w (run integration/setup first)", err)
		}
	}
	for _, bin := range []string{"qemu-system-x86_64", "swtpm", "swtpm_setup", "gzip", "zstd"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s: %w (run integration/setup first)", bin, err)
		}
	}
	// Built afresh on every run into the cache (gitignored), in a directory
	// of its own per checkout: worktrees that share the cache must not run
	// each other's binary.
	src, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	e.Binary = filepath.Join(cache, "build", fmt.Sprintf("%x", sha256.Sum256([]byte(src)))[:16], "kexec-measured")
	e.BuildErr = buildBinary(e.Binary)
	e.Accel = pickAccel(e)
	return e, nil
}

// buildBinary builds ./cmd/kexec-measured statically (CGO_ENABLED=0) into
// out.
func buildBinary(out string) error {
	// Stripped (-s -w): the chain scenario carries the binary into later
	// boots, and every byte is hashed in four banks under TCG.
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/kexec-measured")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/kexec-measured: %w\n%s", err, b)
	}
	return nil
}

// pickAccel returns "kvm" when $KEXEC_MEASURED_ACCEL says so or when a probe
// boot under KVM reaches its init within kvmProbeTimeout, and "tcg"
// otherwise: on some hosts /dev/kvm exists but guests hang.
func pickAccel(e *env) string {
	switch a := os.Getenv("KEXEC_MEASURED_ACCEL"); a {
	case "tcg", "kvm":
		return a
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "tcg"
	}
	f.Close()
	dir, err := os.MkdirTemp("", "kvm-probe-")
	if err != nil {
		return "tcg"
	}
	defer os.RemoveAll(dir)
	initrd := filepath.Join(dir, "initrd.cpio")
	bb, err := os.ReadFile(e.Busybox)
	if err != nil {
		return "tcg"
	}
	arch, err := newc.Archive([]newc.File{
		{Name: "bin/busybox", Perm: 0o755, Data: bb},
		{Name: "init", Perm: 0o755, Data: []byte("#!/bin/busybox sh\necho @@KM probe-ok\n/bin/busybox poweroff -f\n")},
	})
	if err != nil {
		return "tcg"
	}
	if err := os.WriteFile(initrd, arch, 0o644); err != nil {
		return "tcg"
	}
	ctx, cancel := context.WithTimeout(context.Background(), kvmProbeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", "-machine", "q35", "-accel", "kvm", "-cpu", "host",
		"-m", "256M", "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-kernel", e.Kernel, "-initrd", initrd, "-append", "console=ttyS0 panic=-1 quiet")
	out, _ := cmd.CombinedOutput()
	if strings.Contains(string(out), "@@KM probe-ok") {
		return "kvm"
	}
	return "tcg"
}

// swtpm is one software TPM listening on a unix control socket.
type swtpm struct {
	Dir  string
	Sock string
	cmd  *exec.Cmd
	done chan struct{}
}

// startSwtpm manufactures a TPM 2.0 with the sha1, sha256, sha384 and sha512
// PCR banks in a temporary directory and starts swtpm on it. It is killed in
// t.Cleanup.
func startSwtpm(t *testing.T) *swtpm {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	setup := exec.Command("swtpm_setup", "--tpm2", "--tpmstate", state,
		"--pcr-banks", "sha1,sha256,sha384,sha512", "--config", "/dev/null")
	if b, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("swtpm_setup: %v\n%s", err, b)
	}
	s := &swtpm{Dir: dir, Sock: filepath.Join(dir, "sock"), done: make(chan struct{})}
	s.cmd = exec.Command("swtpm", "socket", "--tpm2", "--tpmstate", "dir="+state,
		"--ctrl", "type=unixio,path="+s.Sock, "--flags", "startup-clear",
		"--log", "file="+filepath.Join(dir, "swtpm.log"))
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("swtpm: %v", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
	deadline := time.Now().Add(swtpmTimeout)
	for {
		if _, err := os.Stat(s.Sock); err == nil {
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("swtpm exited early: %v", s.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("swtpm: no control socket %s after %v", s.Sock, swtpmTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop takes the TPM away from a running guest: it kills swtpm and waits
// for it to exit. QEMU then answers every TPM command with a failure. The
// control channel (swtpm_ioctl -s, CMD_SHUTDOWN) cannot be used: swtpm serves
// one control connection at a time and QEMU holds it while it runs. SIGKILL
// rather than SIGTERM: after a SIGTERM'd swtpm, the guest's next TPM
// command stalls for about half a minute before it fails.
func (s *swtpm) Stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		t.Logf("swtpm: kill: %v", err)
	}
	<-s.done
}

// vm is one QEMU guest whose serial console the test reads line by line.
type vm struct {
	cmd     *exec.Cmd
	timeout time.Duration
	cancel  context.CancelFunc
	mu      sync.Mutex
	lines   []string
	notify  chan struct{} // closed and replaced whenever a line arrives
	exited  chan struct{} // closed when QEMU has exited and output is drained
	waitErr error
}

// vmConfig is what a scenario boots.
type vmConfig struct {
	Initrd  string // stage-1 initramfs
	Cmdline string
	TPM     *swtpm
	Memory  string   // e.g. "1G"; default 1G
	Extra   []string // more QEMU arguments (e.g. a disk)
	Disk    string   // a raw disk image the guest sees as /dev/vda (virtio: needs modules), if set
	NVMe    string   // a raw disk image the guest sees as /dev/nvme0n1 (NVMe: built into the kernel), if set
	// Timeout bounds the guest's run (every kexec'd boot included); default
	// vmTimeout. A scenario that does much more than boot twice sets a
	// longer one.
	Timeout time.Duration
}

// startVM boots e.Kernel with cfg under QEMU. QEMU is killed in t.Cleanup, and
// on failure (or with $KEXEC_MEASURED_CONSOLE set) the console is written to
// the test log.
func startVM(t *testing.T, e *env, cfg vmConfig) *vm {
	t.Helper()
	mem := cfg.Memory
	if mem == "" {
		mem = "1G"
	}
	args := []string{"-machine", "q35", "-accel", e.Accel, "-m", mem, "-smp", "1",
		"-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio",
		"-kernel", e.Kernel, "-initrd", cfg.Initrd, "-append", cfg.Cmdline}
	if e.Accel == "kvm" {
		args = append(args, "-cpu", "host")
	} else {
		args = append(args, "-cpu", "max")
	}
	if cfg.Disk != "" {
		args = append(args, "-drive", "file="+cfg.Disk+",format=raw,if=virtio")
	}
	if cfg.NVMe != "" {
		args = append(args, "-drive", "file="+cfg.NVMe+",format=raw,if=none,id=nvme0,readonly=on",
			"-device", "nvme,drive=nvme0,serial=kexec-measured")
	}
	if cfg.TPM != nil {
		args = append(args,
			"-chardev", "socket,id=chrtpm,path="+cfg.TPM.Sock,
			"-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
			"-device", "tpm-tis,tpmdev=tpm0")
	}
	args = append(args, cfg.Extra...)
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = vmTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	v := &vm{cancel: cancel, timeout: timeout, notify: make(chan struct{}), exited: make(chan struct{})}
	v.cmd = exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	stdout, err := v.cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	// QEMU's own messages go to a separate file so they cannot split a
	// console line (swtpm going away makes QEMU print one per TPM command).
	stderr, err := os.Create(filepath.Join(t.TempDir(), "qemu.stderr"))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	v.cmd.Stderr = stderr
	if err := v.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("qemu-system-x86_64: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			v.add(strings.TrimRight(sc.Text(), "\r"))
		}
		v.waitErr = v.cmd.Wait()
		close(v.exited)
	}()
	t.Cleanup(func() {
		cancel()
		<-v.exited
		stderr.Close()
		if t.Failed() || os.Getenv("KEXEC_MEASURED_CONSOLE") != "" {
			if b, err := os.ReadFile(stderr.Name()); err == nil && len(b) > 0 {
				all := strings.Split(strings.TrimSpace(string(b)), "\n")
				lines := all
				if len(all) > 20 {
					lines = append(append(all[:10:10], fmt.Sprintf("... %d more lines ...", len(all)-20)), all[len(all)-10:]...)
				}
				t.Logf("QEMU stderr:\n  %s", strings.Join(lines, "\n  "))
			}
			v.mu.Lock()
			lines := v.lines
			v.mu.Unlock()
			if len(lines) > 400 {
				lines = lines[len(lines)-400:]
			}
			t.Logf("guest console (last %d lines, base64 dumps elided):", len(lines))
			for _, l := range lines {
				if !strings.HasPrefix(l, "@@B64 ") {
					t.Log("  | " + l)
				}
			}
		}
	})
	return v
}

func (v *vm) add(line string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lines = append(v.lines, line)
	close(v.notify)
	v.notify = make(chan struct{})
}

// Expect waits until a console line contains marker and returns that line.
// It fails the test if QEMU exits first or timeout passes.
func (v *vm) Expect(t *testing.T, marker string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		v.mu.Lock()
		lines, notify := v.lines, v.notify
		v.mu.Unlock()
		for ; seen < len(lines); seen++ {
			if strings.Contains(lines[seen], marker) {
				return lines[seen]
			}
		}
		select {
		case <-notify:
		case <-v.exited:
			v.mu.Lock()
			n := len(v.lines)
			v.mu.Unlock()
			if n > seen {
				continue
			}
			t.Fatalf("QEMU exited (%v) before the console showed %q", v.waitErr, marker)
		case <-deadline:
			t.Fatalf("no %q on the console after %v", marker, timeout)
		}
	}
}

// Wait waits for QEMU to exit (the guest powers off; with -no-reboot a
// reboot or panic also ends QEMU) and returns the parsed console.
func (v *vm) Wait(t *testing.T) *console {
	t.Helper()
	select {
	case <-v.exited:
	case <-time.After(v.timeout):
		t.Fatalf("QEMU still running after %v", v.timeout)
	}
	var ee *exec.ExitError
	if v.waitErr != nil && !errors.As(v.waitErr, &ee) {
		t.Fatalf("qemu-system-x86_64: %v", v.waitErr)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return parseConsole(v.lines)
}

// run boots cfg and waits for the guest to power off.
func run(t *testing.T, e *env, cfg vmConfig) *console {
	t.Helper()
	return startVM(t, e, cfg).Wait(t)
}
