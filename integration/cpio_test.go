//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
)

// cpioEntry is one file or directory of a newc cpio archive.
type cpioEntry struct {
	Name string      // without a leading slash, e.g. "bin/busybox"
	Mode fs.FileMode // fs.ModeDir for a directory; permission bits
	Data []byte
}

// newcArchive returns the newc ("070701") cpio archive of entries, in the
// given order, with every parent directory added before its children and a
// TRAILER!!! entry at the end. Its length is a multiple of 4. The layout
// follows the kernel's Documentation/driver-api/early-userspace/buffer-format.rst.
func newcArchive(entries []cpioEntry) []byte {
	var buf bytes.Buffer
	seen := map[string]bool{}
	ino := 1
	write := func(name string, mode uint32, data []byte, nlink int) {
		nameLen := len(name) + 1
		fmt.Fprintf(&buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
			ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, nameLen, 0)
		ino++
		buf.WriteString(name)
		buf.WriteByte(0)
		pad4(&buf)
		buf.Write(data)
		pad4(&buf)
	}
	var addDirs func(dir string)
	addDirs = func(dir string) {
		if dir == "." || dir == "" || seen[dir] {
			return
		}
		addDirs(path.Dir(dir))
		seen[dir] = true
		write(dir, 0o040755, nil, 2)
	}
	for _, e := range entries {
		addDirs(path.Dir(e.Name))
		if e.Mode.IsDir() {
			addDirs(e.Name)
			continue
		}
		write(e.Name, 0o100000|uint32(e.Mode.Perm()), e.Data, 1)
	}
	write("TRAILER!!!", 0, nil, 1)
	return buf.Bytes()
}

func pad4(buf *bytes.Buffer) {
	for buf.Len()%4 != 0 {
		buf.WriteByte(0)
	}
}
