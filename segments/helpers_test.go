package segments

import (
	"bytes"
	"fmt"
	"os/exec"
	"testing"
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

// newc writes a newc cpio archive independently of the package's reader:
// a 110-byte header, the name with its NUL, padding to 4, the data, padding
// to 4, then TRAILER!!! (buffer-format.rst).
func newc(entries []entry, o cpioOpts) []byte {
	var b bytes.Buffer
	format := "%08x"
	if o.upper {
		format = "%08X"
	}
	magic := "070701"
	if o.crc {
		magic = "070702"
	}
	bad := o.badSum
	write := func(e entry, ino uint32) {
		mode := e.mode
		if mode == 0 {
			mode = 0o100644
		}
		nlink := e.nlink
		if nlink == 0 {
			nlink = 1
		}
		var sum uint32
		if o.crc {
			for _, c := range e.data {
				sum += uint32(c)
			}
			if bad && len(e.data) > 0 {
				sum++
				bad = false
			}
		}
		b.WriteString(magic)
		for _, v := range []uint32{ino, mode, 0, 0, nlink, 1700000000, uint32(len(e.data)), 8, 1, 0, 0, uint32(len(e.name) + 1), sum} {
			fmt.Fprintf(&b, format, v)
		}
		b.WriteString(e.name)
		b.WriteByte(0)
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
		b.Write(e.data)
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	for i, e := range entries {
		ino := e.ino
		if ino == 0 {
			ino = uint32(1000 + i)
		}
		write(e, ino)
	}
	if !o.noTrailer {
		write(entry{name: "TRAILER!!!", nlink: 1}, 0)
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
