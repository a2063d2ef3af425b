package segments

import (
	"bytes"
	"fmt"
	"os/exec"
	"testing"

	"github.com/kexec-measured/kexec-measured/internal/newc"
)

// entry is one file of a test cpio archive.
type entry struct {
	name  string
	mode  uint32 // with type bits; 0 means a regular file 0644
	data  []byte
	ino   uint32 // 0 means a fresh inode number
	nlink uint32 // 0 means 1 (2 for directories)
}

// cpioOpts choose the variant a test archive is written in.
type cpioOpts struct {
	crc       bool // 070702 with data checksums
	badSum    bool // write a wrong checksum for the first file with data
	upper     bool // upper-case hex digits
	noTrailer bool // omit TRAILER!!!
}

// mkcpio writes a newc cpio archive of entries with internal/newc, the
// writer that is independent of the package's reader and checked against
// GNU cpio. Every header has mtime 1700000000 and device 8:1.
func mkcpio(entries []entry, o cpioOpts) []byte {
	var b bytes.Buffer
	w := newc.NewWriter(&b, newc.Options{CRC: o.crc, Upper: o.upper})
	bad := o.badSum
	for i, e := range entries {
		h := newc.Header{Name: e.name, Mode: e.mode, Ino: e.ino, Nlink: e.nlink, Mtime: 1700000000, DevMajor: 8, DevMinor: 1}
		if h.Mode == 0 {
			h.Mode = newc.TypeReg | 0o644
		}
		if h.Ino == 0 {
			h.Ino = uint32(1000 + i)
		}
		if h.Nlink == 0 {
			h.Nlink = 1
		}
		if bad && o.crc && len(e.data) > 0 {
			sum := newc.Checksum(e.data) + 1
			h.Check = &sum
			bad = false
		}
		if err := w.Write(h, e.data); err != nil {
			panic(err) // a test asked for an entry newc does not write
		}
	}
	if !o.noTrailer {
		if err := w.Close(); err != nil {
			panic(err)
		}
	}
	return b.Bytes()
}

// sampleFiles returns a small tree with a directory, files, a symlink and
// file contents of odd lengths, named with prefix.
func sampleFiles(prefix string, n int) []entry {
	es := []entry{
		{name: prefix, mode: 0o40755, nlink: 2},
		{name: prefix + "/link", mode: 0o120777, data: []byte("target")},
	}
	for i := 0; i < n; i++ {
		data := bytes.Repeat([]byte(fmt.Sprintf("%s file %d\n", prefix, i)), i*7+1)
		es = append(es, entry{name: fmt.Sprintf("%s/f%03d", prefix, i), data: data})
	}
	return es
}

func names(es []entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.name)
	}
	return out
}

// tools maps each compressor to the Debian package that ships it.
var tools = map[string]string{
	"gzip": "gzip", "zstd": "zstd", "xz": "xz-utils", "lzma": "xz-utils",
	"bzip2": "bzip2", "lzop": "lzop", "lz4": "lz4",
}

// compress runs a real compressor over data and returns its output. It
// skips the test, naming the Debian package, when the tool is missing.
func compress(t testing.TB, data []byte, tool string, args ...string) []byte {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s not installed (Debian package %s)", tool, tools[tool])
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin = bytes.NewReader(data)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v: %s", tool, args, err, stderr.String())
	}
	return out.Bytes()
}

// compressors are the command lines that produce each kind as an
// initramfs builder would.
var compressors = map[string][]string{
	KindGzip:  {"gzip", "-c", "-n", "-9"},
	KindZstd:  {"zstd", "-q", "-c", "-19"},
	KindXZ:    {"xz", "-c", "--check=crc32"},
	KindLZMA:  {"lzma", "-c"},
	KindBzip2: {"bzip2", "-c"},
	KindLZO:   {"lzop", "-c"},
	KindLZ4:   {"lz4", "-q", "-c", "-l"},
}

func compressKind(t testing.TB, data []byte, kind string) []byte {
	t.Helper()
	c := compressors[kind]
	return compress(t, data, c[0], c[1:]...)
}
