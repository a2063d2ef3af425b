//go:build integration

package integration

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
)

// The guest talks to the test through marker lines on its serial console
// (see guestPrelude):
//
//	@@KM pcr TAG BANK PCR HEX         a PCR value read from sysfs at point TAG
//	@@KM rc NAME STATUS               the exit status of the command NAME
//	@@KM loaded TAG K C               /sys/kernel/kexec_loaded, kexec_crash_loaded
//	@@KM file NAME SHA256             a file follows as base64 lines
//	@@B64 NAME CHUNK                  one base64 line of file NAME
//	@@KM nofile NAME                  the file to dump did not exist
//	@@KM sum PATH SHA256              a file seen by stage 2 and its digest
//	@@KM stage2 / @@KM end            progress
//
// Kernel messages can land on the same console; a marker is recognised
// anywhere in a line, and a dumped file is checked against its digest.
const markerPrefix = "@@KM "

// console is the parsed marker output of one guest run.
type console struct {
	Lines   []string
	Markers [][]string // fields of each @@KM line, after the prefix
	b64     map[string][]string
}

func parseConsole(lines []string) *console {
	c := &console{Lines: append([]string(nil), lines...), b64: map[string][]string{}}
	for _, l := range lines {
		if i := strings.Index(l, "@@B64 "); i >= 0 {
			f := strings.Fields(l[i+len("@@B64 "):])
			if len(f) == 2 {
				c.b64[f[0]] = append(c.b64[f[0]], f[1])
			}
			continue
		}
		if i := strings.Index(l, markerPrefix); i >= 0 {
			c.Markers = append(c.Markers, strings.Fields(l[i+len(markerPrefix):]))
		}
	}
	return c
}

// Has reports whether a marker with exactly these leading fields was seen.
func (c *console) Has(fields ...string) bool {
	return c.find(fields...) != nil
}

// find returns the first marker whose leading fields are fields.
func (c *console) find(fields ...string) []string {
	for _, m := range c.Markers {
		if len(m) < len(fields) {
			continue
		}
		match := true
		for i, f := range fields {
			if m[i] != f {
				match = false
				break
			}
		}
		if match {
			return m
		}
	}
	return nil
}

// RC returns the exit status the guest reported for the command name.
func (c *console) RC(t *testing.T, name string) int {
	t.Helper()
	m := c.find("rc", name)
	if len(m) != 3 {
		t.Fatalf("guest reported no exit status for %q", name)
	}
	n, err := strconv.Atoi(m[2])
	if err != nil {
		t.Fatalf("exit status of %q: %v", name, err)
	}
	return n
}

// Loaded returns /sys/kernel/kexec_loaded and kexec_crash_loaded as the
// guest read them at point tag.
func (c *console) Loaded(t *testing.T, tag string) (kexec, crash string) {
	t.Helper()
	m := c.find("loaded", tag)
	if len(m) != 4 {
		t.Fatalf("guest reported no kexec_loaded at %q", tag)
	}
	return m[2], m[3]
}

// PCRs returns the values of PCR pcr per bank ("sha256" → value) that the
// guest read at point tag.
func (c *console) PCRs(t *testing.T, tag string, pcr int) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, m := range c.Markers {
		if len(m) != 5 || m[0] != "pcr" || m[1] != tag || m[3] != strconv.Itoa(pcr) {
			continue
		}
		v, err := hex.DecodeString(strings.ToLower(m[4]))
		if err != nil {
			t.Fatalf("PCR %d %s at %q: %v", pcr, m[2], tag, err)
		}
		out[m[2]] = v
	}
	if len(out) == 0 {
		t.Fatalf("guest reported no PCR %d values at %q", pcr, tag)
	}
	return out
}

// File returns the file the guest dumped as name, checked against the
// SHA-256 the guest printed with it. ok is false when the guest reported
// that the file did not exist.
func (c *console) File(t *testing.T, name string) (data []byte, ok bool) {
	t.Helper()
	if c.Has("nofile", name) {
		return nil, false
	}
	m := c.find("file", name)
	if len(m) != 3 {
		t.Fatalf("guest did not dump file %q", name)
	}
	data, err := base64.StdEncoding.DecodeString(strings.Join(c.b64[name], ""))
	if err != nil {
		t.Fatalf("file %q from the console: %v", name, err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != m[2] {
		t.Fatalf("file %q from the console: sha256 %s, guest said %s (console garbled?)", name, got, m[2])
	}
	return data, true
}

// Sums returns the stage-2 listing: path → sha256 hex.
func (c *console) Sums() map[string]string {
	out := map[string]string{}
	for _, m := range c.Markers {
		if len(m) == 3 && m[0] == "sum" {
			out[m[1]] = m[2]
		}
	}
	return out
}
