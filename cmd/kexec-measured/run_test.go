//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kexec-measured/kexec-measured/loader"
	"github.com/kexec-measured/kexec-measured/loader/loadertest"
	"github.com/kexec-measured/kexec-measured/tpm"
)

// testEnv is the machine of a test: the fake syscall seam, an environment
// without variables, and a TPM opener that fails unless the test sets one.
func testEnv(t *testing.T) (env, *loadertest.Sys) {
	sys := loadertest.NewSys(t)
	return env{
		sys:    sys,
		getenv: func(string) string { return "" },
		openTPM: func(spec string) (tpmDevice, error) {
			if spec == "auto" {
				return nil, fmt.Errorf("%w: none of /dev/tpmrm0, /dev/tpm0 exists (test)", tpm.ErrNoTPM)
			}
			return openTPM(spec)
		},
		clock: func() (int64, error) { return 1234, nil },
	}, sys
}

// runTest runs kexec-measured with args in e and returns the exit status,
// stdout and stderr.
func runTest(e env, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := runKexec("kexec-measured", args, e, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	kernel := filepath.Join(dir, "vmlinuz")
	os.WriteFile(kernel, []byte("kernel"), 0o644)
	initrd := filepath.Join(dir, "a.cpio")
	os.WriteFile(initrd, []byte("070701"), 0o644)
	tests := []struct {
		name      string
		args      []string
		setup     func(*loadertest.Sys)
		want      int
		wantErr   string // in stderr; "" means stderr must be empty
		wantOut   string // in stdout
		wantLoads int
		wantCalls string
	}{
		{name: "load", args: []string{"-l", kernel, "--initrd", initrd, "--tpm=none"}, want: 0, wantLoads: 1, wantCalls: "kexec_file_load sync"},
		{name: "auto without a TPM loads unmeasured with a warning", args: []string{"-l", kernel}, want: 0, wantErr: "loading WITHOUT measuring", wantLoads: 1},
		{name: "require-tpm without a TPM", args: []string{"-l", kernel, "--require-tpm"}, want: 1, wantErr: "--require-tpm"},
		{name: "require-tpm with --tpm=none", args: []string{"-l", kernel, "--require-tpm", "--tpm=none"}, want: 1, wantErr: "contradicts"},
		{name: "bad --tpm", args: []string{"-l", kernel, "--tpm=tcp:1.2.3.4"}, want: 1, wantErr: "--tpm=tcp:1.2.3.4"},
		{name: "missing component", args: []string{"-l", kernel, "--initrd", dir + "/missing.cpio"}, want: 1, wantErr: dir + "/missing.cpio"},
		{name: "component is a directory", args: []string{"-l", kernel, "--initrd", dir}, want: 1, wantErr: dir + ": loader: not a regular file (it is a directory)"},
		{name: "unknown option", args: []string{"--bogus"}, want: 1, wantErr: "unrecognized option"},
		{name: "-c", args: []string{"-c", "-l", kernel}, want: 1, wantErr: "needs kexec_file_load"},
		{name: "command line too long", args: []string{"-l", kernel, "--append", strings.Repeat("a", 2048)}, want: 1, wantErr: "command line too long"},
		{name: "-e with nothing loaded", args: []string{"-e"}, want: 1, wantErr: "kexec-measured: loader: Nothing has been loaded!"},
		{name: "-e", args: []string{"-e"}, setup: func(s *loadertest.Sys) { s.Files[loadertest.KexecLoaded] = "1\n" }, want: 0, wantCalls: "sync ifdown reboot"},
		{name: "-S with a panic kernel loaded", args: []string{"-S"}, setup: func(s *loadertest.Sys) { s.Files[loadertest.CrashLoaded] = "1\n" }, want: 1},
		{name: "-S with no panic kernel", args: []string{"-S"}, setup: func(s *loadertest.Sys) { s.Files[loadertest.KexecLoaded] = "1\n" }, want: 0},
		{name: "-l -S with a kernel loaded", args: []string{"-l", "-S"}, setup: func(s *loadertest.Sys) { s.Files[loadertest.KexecLoaded] = "1\n" }, want: 1},
		{name: "-p without reserved memory", args: []string{"-p", kernel, "--tpm=none"}, setup: func(s *loadertest.Sys) { s.Files[loadertest.CrashSize] = "0\n" }, want: 1, wantErr: "crashkernel="},
		{name: "failed load", args: []string{"-l", kernel, "--tpm=none"}, setup: func(s *loadertest.Sys) {
			s.LoadErr = &loader.SyscallError{Call: "kexec_file_load", Err: syscall.EKEYREJECTED}
		}, want: 255, wantErr: "kexec_file_load: key was rejected by service (the kernel rejected the image's signature", wantLoads: 1},
		{name: "-u", args: []string{"-u"}, want: 0, wantLoads: 1, wantCalls: "kexec_file_load"},
		{name: "help", args: []string{"--help"}, want: 0},
		{name: "dry run -f changes nothing", args: []string{"-f", kernel, "--dry-run"}, want: 0, wantCalls: ""},
		{name: "bank names in any case", args: []string{"-l", kernel, "--dry-run", "--banks=SHA256, Sha1"}, want: 0, wantOut: "\n    sha1    "},
		{name: "unknown bank", args: []string{"-l", kernel, "--dry-run", "--banks=sha256,md5"}, want: 1, wantErr: `--banks=sha256,md5: pcr: unknown hash bank: "md5"`},
		{name: "bank named twice", args: []string{"-l", kernel, "--dry-run", "--banks=sha256,SHA256"}, want: 1, wantErr: "--banks=sha256,SHA256: pcr: bank"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, sys := testEnv(t)
			if tt.setup != nil {
				tt.setup(sys)
			}
			code, stdout, stderr := runTest(e, tt.args...)
			if code != tt.want {
				t.Errorf("exit status %d, want %d (stderr %q)", code, tt.want, stderr)
			}
			if tt.wantErr == "" && stderr != "" {
				t.Errorf("stderr %q, want none", stderr)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.wantErr)
			}
			if !strings.Contains(stdout, tt.wantOut) {
				t.Errorf("stdout %q lacks %q", stdout, tt.wantOut)
			}
			if len(sys.Loads) != tt.wantLoads {
				t.Errorf("%d kexec_file_load calls, want %d", len(sys.Loads), tt.wantLoads)
			}
			if tt.wantCalls != "" || tt.name == "dry run -f changes nothing" {
				if got := sys.CallString(); got != tt.wantCalls {
					t.Errorf("calls %q, want %q", got, tt.wantCalls)
				}
			}
		})
	}
}

func TestRunAsKexecHasNoSubcommands(t *testing.T) {
	var stdout, stderr bytes.Buffer
	// Under the name kexec, "inspect" is a kernel file name, and a dry run
	// of a load of a missing kernel fails naming it.
	code := run([]string{"/usr/sbin/kexec", "inspect", "--dry-run", "--tpm=none"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "inspect: ") {
		t.Errorf("kexec inspect: exit %d, stderr %q", code, stderr.String())
	}
}
