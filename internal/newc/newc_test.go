package newc

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestHeaderBytes pins one entry byte for byte, written out by hand from
// buffer-format.rst.
func TestHeaderBytes(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, Options{})
	if err := w.Write(Header{Name: "ab", Mode: TypeReg | 0o644, Ino: 7, Nlink: 1}, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	want := "070701" +
		"00000007" + // ino
		"000081a4" + // mode 0100644
		"00000000" + "00000000" + // uid gid
		"00000001" + // nlink
		"00000000" + // mtime
		"00000005" + // filesize
		"00000000" + "00000000" + "00000000" + "00000000" + // dev, rdev
		"00000003" + // namesize, NUL included
		"00000000" + // check
		"ab\x00" + "\x00\x00\x00" + // 110+3 = 113, padded to 116
		"hello" + "\x00\x00\x00" // 5, padded to 8
	if got := buf.String(); got != want {
		t.Fatalf("entry bytes\n got %q\nwant %q", got, want)
	}
	if w.Len() != int64(len(want)) {
		t.Fatalf("Len() = %d, want %d", w.Len(), len(want))
	}
}

func TestCRCAndUpper(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, Options{CRC: true, Upper: true})
	if err := w.File("x", 0o600, []byte{0xff, 0xff, 0x02}); err != nil {
		t.Fatal(err)
	}
	hdr := buf.String()[:110]
	if !strings.HasPrefix(hdr, MagicCRC) || !strings.HasSuffix(hdr, "00000200") || !strings.Contains(hdr, "00008180") {
		t.Fatalf("header %q: want 070702, mode 00008180 upper-case, check 0x200", hdr)
	}
	bad := uint32(1)
	buf.Reset()
	w = NewWriter(&buf, Options{CRC: true})
	w.Write(Header{Name: "y", Mode: TypeReg, Check: &bad}, []byte("zz"))
	if !strings.HasSuffix(buf.String()[:110], "00000001") {
		t.Fatalf("explicit Check not written: %q", buf.String()[:110])
	}
}

func TestBadNames(t *testing.T) {
	for _, name := range []string{"", "a\x00b", strings.Repeat("n", MaxName)} {
		w := NewWriter(&bytes.Buffer{}, Options{})
		if err := w.File(name, 0o644, nil); !errors.Is(err, ErrName) {
			t.Errorf("File(%.20q) = %v, want ErrName", name, err)
		}
		if err := w.Close(); !errors.Is(err, ErrName) {
			t.Errorf("Close after a failed write = %v, want the sticky ErrName", err)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorSticky(t *testing.T) {
	w := NewWriter(failWriter{}, Options{})
	if err := w.File("a", 0o644, []byte("x")); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("File = %v, want the write error", err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close after a failed write succeeded")
	}
}

// TestGNUCpioReadsArchive checks Archive against GNU cpio, a reader we did
// not write: it must list every entry and extract the data unchanged.
func TestGNUCpioReadsArchive(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("GNU cpio not installed (scripts/test installs it)")
	}
	files := []File{
		{Name: "a/b/c.txt", Data: []byte("hello\n")},
		{Name: "a/empty", Perm: 0o600},
		{Name: "d", Dir: true, Perm: 0o700},
		{Name: "odd", Data: []byte("123")},
	}
	arc, err := Archive(files)
	if err != nil {
		t.Fatal(err)
	}
	if len(arc)%4 != 0 {
		t.Fatalf("archive length %d is not a multiple of 4", len(arc))
	}
	list := exec.Command("cpio", "-it", "--quiet")
	list.Stdin = bytes.NewReader(arc)
	out, err := list.Output()
	if err != nil {
		t.Fatalf("cpio -it: %v", err)
	}
	if got, want := string(out), "a\na/b\na/b/c.txt\na/empty\nd\nodd\n"; got != want {
		t.Fatalf("cpio -it listed\n%s\nwant\n%s", got, want)
	}
	dir := t.TempDir()
	ext := exec.Command("cpio", "-id", "--quiet")
	ext.Dir = dir
	ext.Stdin = bytes.NewReader(arc)
	if out, err := ext.CombinedOutput(); err != nil {
		t.Fatalf("cpio -id: %v: %s", err, out)
	}
	for _, f := range []File{files[0], files[3]} {
		got, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil || !bytes.Equal(got, f.Data) {
			t.Errorf("%s: extracted %q, %v; want %q", f.Name, got, err, f.Data)
		}
	}
	st, err := os.Stat(filepath.Join(dir, "d"))
	if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Errorf("d: %v, %v; want a directory 0700", st, err)
	}
}
