package tpm

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
)

const (
	// headerSize is the size of a TPM response header: tag (2), size (4),
	// response code (4) (Part 1 §18).
	headerSize = 10
	// maxResponseSize bounds a response; TPMs answer at most a few KiB
	// (TPM_PT_MAX_RESPONSE_SIZE is 4096 on swtpm and common chips).
	maxResponseSize = 64 << 10
	// dialTimeout and commandTimeout bound one command over TCP.
	dialTimeout    = 10 * time.Second
	commandTimeout = 2 * time.Minute
)

// swtpmTransport sends each command over its own TCP connection to swtpm's
// raw command channel (`swtpm socket --tpm2 --server type=tcp,...`). That
// channel carries plain TPM command and response bytes, unlike the Microsoft
// simulator protocol that go-tpm's transport/tcp speaks. swtpm serves one
// connection at a time, so a connection per command lets several processes
// share one swtpm, as /dev/tpmrm0 lets them share a chip.
type swtpmTransport struct {
	addr string
	mu   sync.Mutex
}

// DialSwtpm returns a transport to swtpm's raw TCP command channel at addr
// (HOST:PORT). It checks that addr parses; the first command connects.
func DialSwtpm(addr string) (transport.TPMCloser, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("%w: swtpm address %q: %w", ErrBadSpec, addr, err)
	}
	return &swtpmTransport{addr: addr}, nil
}

// Send writes cmd and reads one complete response: the 10-byte header,
// then as many bytes as the header's size field says.
func (s *swtpmTransport) Send(cmd []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	conn, err := net.DialTimeout("tcp", s.addr, dialTimeout)
	if err != nil {
		return nil, fmt.Errorf("tpm: swtpm %s: %w", s.addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(commandTimeout)); err != nil {
		return nil, fmt.Errorf("tpm: swtpm %s: %w", s.addr, err)
	}
	if _, err := conn.Write(cmd); err != nil {
		return nil, fmt.Errorf("tpm: swtpm %s: send command: %w", s.addr, err)
	}
	return readResponse(conn, s.addr)
}

// readResponse reads one TPM response from r.
func readResponse(r io.Reader, addr string) ([]byte, error) {
	hdr := make([]byte, headerSize)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("tpm: swtpm %s: read response header: %w", addr, err)
	}
	size := binary.BigEndian.Uint32(hdr[2:6])
	if size < headerSize || size > maxResponseSize {
		return nil, fmt.Errorf("tpm: swtpm %s: response size %d out of range %d-%d", addr, size, headerSize, maxResponseSize)
	}
	rsp := make([]byte, size)
	copy(rsp, hdr)
	if _, err := io.ReadFull(r, rsp[headerSize:]); err != nil {
		return nil, fmt.Errorf("tpm: swtpm %s: read %d-byte response: %w", addr, size, err)
	}
	return rsp, nil
}

// Close has nothing to release: connections last one command.
func (s *swtpmTransport) Close() error { return nil }
