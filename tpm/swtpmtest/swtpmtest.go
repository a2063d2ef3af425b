// Package swtpmtest starts swtpm, a software TPM 2.0 (Debian package
// swtpm), for tests: on loopback TCP ports, with its state in a temporary
// directory, killed when the test ends.
package swtpmtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options change how Start sets swtpm up.
type Options struct {
	// Banks, if not empty, are the PCR banks to allocate ("sha1",
	// "sha256", "sha384", "sha512"), set with swtpm_setup --pcr-banks
	// (Debian package swtpm-tools). Empty leaves swtpm's default, which
	// for swtpm 0.7 is all four banks.
	Banks []string
}

// Swtpm is a running swtpm.
type Swtpm struct {
	// Spec is the tpm.Open spec of the command channel: swtpm:HOST:PORT.
	Spec string
	// Host, Port and CtrlPort are the loopback address of the command
	// channel and the port of the control channel, which is Port+1 as
	// tpm2-tss's swtpm TCTI (and so tpm2-tools) expects.
	Host     string
	Port     int
	CtrlPort int
	// StateDir holds the TPM's state.
	StateDir string

	cmd     *exec.Cmd
	stderr  *syncBuffer
	done    chan struct{}
	waitErr error
}

// Start starts swtpm with its default PCR banks and returns the tpm.Open
// spec and the process. See StartWith.
func Start(t testing.TB) (string, *Swtpm) {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith starts `swtpm socket --tpm2 --server type=tcp,fd=3 --ctrl
// type=tcp,fd=4 --tpmstate dir=<t.TempDir()> --flags
// not-need-init,startup-clear` on two consecutive free loopback ports
// (listening sockets are bound here and handed over, so no other process
// can take the ports in between), waits until the TPM answers a command and
// kills it in t.Cleanup. If swtpm (or, with Banks, swtpm_setup) is not
// installed, the test is skipped with a message naming the Debian package.
func StartWith(t testing.TB, opts Options) (string, *Swtpm) {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		t.Skip("swtpm not found: install the Debian package swtpm")
	}
	state := t.TempDir()
	if len(opts.Banks) > 0 {
		setup, err := exec.LookPath("swtpm_setup")
		if err != nil {
			t.Skip("swtpm_setup not found: install the Debian package swtpm-tools")
		}
		out, err := exec.Command(setup, "--tpm2", "--tpmstate", state, "--overwrite",
			"--pcr-banks", strings.Join(opts.Banks, ",")).CombinedOutput()
		if err != nil {
			t.Fatalf("swtpmtest: swtpm_setup --pcr-banks %s: %v\n%s", strings.Join(opts.Banks, ","), err, out)
		}
	}
	var s *Swtpm
	for attempt := 1; ; attempt++ {
		s, err = launch(bin, state)
		if err == nil {
			break
		}
		if attempt == 5 {
			t.Fatalf("swtpmtest: %v", err)
		}
	}
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("swtpm output:\n%s", s.stderr.String())
		}
	})
	return s.Spec, s
}

// launch starts swtpm on a fresh pair of ports. The control channel's
// listening socket is bound here and handed over (fd 3); the command
// channel, which swtpm can only take as a port, is bound by swtpm itself
// right after we release it, so another process may take it in between:
// then swtpm exits and launch reports an error, and StartWith tries again.
func launch(bin, state string) (*Swtpm, error) {
	srv, ctrl, err := listenPair()
	if err != nil {
		return nil, err
	}
	ctrlFile, err := ctrl.File()
	ctrl.Close()
	if err != nil {
		srv.Close()
		return nil, err
	}
	defer ctrlFile.Close()
	port := srv.Addr().(*net.TCPAddr).Port
	srv.Close()
	s := &Swtpm{
		Host:     "127.0.0.1",
		Port:     port,
		CtrlPort: port + 1,
		StateDir: state,
		stderr:   &syncBuffer{},
		done:     make(chan struct{}),
	}
	s.Spec = "swtpm:" + net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	s.cmd = exec.Command(bin, "socket", "--tpm2",
		"--server", "type=tcp,bindaddr=127.0.0.1,port="+strconv.Itoa(port),
		"--ctrl", "type=tcp,fd=3",
		"--tpmstate", "dir="+state,
		"--flags", "not-need-init,startup-clear")
	s.cmd.ExtraFiles = []*os.File{ctrlFile}
	s.cmd.Stdout = s.stderr
	s.cmd.Stderr = s.stderr
	setSysProcAttr(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start swtpm: %w", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(10 * time.Second); err != nil {
		s.Kill()
		return nil, fmt.Errorf("swtpm on %s: %w\nswtpm output:\n%s", s.Spec, err, s.stderr.String())
	}
	return s, nil
}

// TCTI returns the tpm2-tools -T option value for this swtpm.
func (s *Swtpm) TCTI() string {
	return fmt.Sprintf("swtpm:host=%s,port=%d", s.Host, s.Port)
}

// Kill kills swtpm with SIGKILL and waits for it to exit; later commands to
// it fail with a connection error. Calling Kill again does nothing.
func (s *Swtpm) Kill() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Kill() //nolint:errcheck // it may have exited already
	<-s.done
}

// Exited reports whether swtpm has exited.
func (s *Swtpm) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// waitReady waits until swtpm answers on its control channel, whose socket
// only our swtpm holds (so an answer on the command port cannot come from
// another process that took the port), and then TPM2_GetRandom succeeds.
func (s *Swtpm) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if s.Exited() {
			return fmt.Errorf("swtpm exited: %v", s.waitErr)
		}
		last = probeCtrl(net.JoinHostPort(s.Host, strconv.Itoa(s.CtrlPort)))
		if last == nil {
			last = probe(net.JoinHostPort(s.Host, strconv.Itoa(s.Port)))
		}
		if last == nil && !s.Exited() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %v: %w", limit, last)
}

// probeCtrl sends CMD_GET_CAPABILITY on swtpm's control channel and reads
// the 4-byte answer.
func probeCtrl(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))         //nolint:errcheck // a failed read reports it
	if _, err := conn.Write([]byte{0, 0, 0, 1}); err != nil { // CMD_GET_CAPABILITY
		return err
	}
	_, err = io.ReadFull(conn, make([]byte, 4))
	return err
}

// probe sends TPM2_GetRandom(8) and checks for a success response.
func probe(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second)) //nolint:errcheck // a failed read reports it
	cmd := []byte{
		0x80, 0x01, // TPM_ST_NO_SESSIONS
		0x00, 0x00, 0x00, 0x0c, // size 12
		0x00, 0x00, 0x01, 0x7b, // TPM_CC_GetRandom
		0x00, 0x08, // bytesRequested
	}
	if _, err := conn.Write(cmd); err != nil {
		return err
	}
	hdr := make([]byte, 10)
	if _, err := io.ReadFull(conn, hdr); err != nil {
		return err
	}
	if rc := binary.BigEndian.Uint32(hdr[6:10]); rc != 0 {
		return fmt.Errorf("TPM2_GetRandom: response code 0x%x", rc)
	}
	return nil
}

// listenPair listens on two consecutive free loopback ports.
func listenPair() (*net.TCPListener, *net.TCPListener, error) {
	var last error
	for range 50 {
		l1, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, nil, fmt.Errorf("listen on loopback: %w", err)
		}
		port := l1.Addr().(*net.TCPAddr).Port
		l2, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1})
		if err == nil {
			return l1, l2, nil
		}
		l1.Close()
		last = err
	}
	return nil, nil, errors.Join(errors.New("no two consecutive free loopback ports"), last)
}

// syncBuffer is a bytes.Buffer safe for the writes of exec's copying
// goroutines and our reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
