package handoff

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/internal/newc"
	"github.com/kexec-measured/kexec-measured/segments"
)

// record returns the encoded record of a kexec-measured event on pcr for
// data, with bootID, in the SHA-256 bank.
func record(t testing.TB, pcr int, bootID, data string) []byte {
	t.Helper()
	rec, err := eventlog.NewKexecRecord(pcr, map[crypto.Hash][]byte{crypto.SHA256: hashtest.Sum(crypto.SHA256, []byte(data))},
		eventlog.KexecContent{Event: eventlog.EventInitrd, Path: "/" + data, Size: int64(len(data)), BootID: bootID})
	if err != nil {
		t.Fatal(err)
	}
	b, err := rec.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testLog(t testing.TB, n int) []byte {
	var log []byte
	for i := range n {
		log = append(log, record(t, 9+2*(i%2), "boot-0", fmt.Sprintf("item-%d", i))...)
	}
	return log
}

func TestBuildReadBackBySegments(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    Handoff
	}{
		{"log only", Handoff{Log: testLog(t, 3)}},
		{"empty log", Handoff{Log: []byte{}}},
		{"interrupted", Handoff{Log: testLog(t, 1), Interrupted: true}},
		{"with firmware", Handoff{Log: testLog(t, 2), Firmware: []byte("\x00\x00\x00\x00firmware log\x01")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := Build(&tc.h)
			if err != nil {
				t.Fatal(err)
			}
			if len(data)%4 != 0 {
				t.Errorf("archive of %d bytes is not 4-byte aligned", len(data))
			}
			// The segment walker sees one uncompressed cpio segment.
			r := segments.NewReader(bytes.NewReader(data), int64(len(data)), segments.Limits{})
			seg, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if seg.Kind != "cpio" || seg.Offset != 0 || seg.Size != int64(len(data)) || len(seg.Warnings) != 0 {
				t.Errorf("segment %+v, want one clean cpio segment of %d bytes", seg, len(data))
			}
			if _, err := r.Next(); err != io.EOF {
				t.Errorf("second segment: %v, want io.EOF", err)
			}
			cr := segments.NewCpioReader(bytes.NewReader(data), segments.Limits{})
			type entry struct {
				name string
				mode uint32
				data string
			}
			var got []entry
			for {
				h, err := cr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(cr)
				got = append(got, entry{h.Name, h.Mode, string(b)})
			}
			logMode := uint32(newc.TypeReg | 0o444)
			if tc.h.Interrupted {
				logMode |= 0o1000
			}
			want := []entry{
				{"kexec-measured", newc.TypeDir | 0o755, ""},
				{"kexec-measured/handoff", newc.TypeDir | 0o755, ""},
				{"kexec-measured/handoff/tpm2-measure.log", logMode, string(tc.h.Log)},
			}
			if tc.h.Firmware != nil {
				want = append(want, entry{"kexec-measured/handoff/binary_bios_measurements", newc.TypeReg | 0o444, string(tc.h.Firmware)})
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("entries\n got %v\nwant %v", got, want)
			}
			if !cr.Trailer() {
				t.Error("no trailer")
			}
			back, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !bytes.Equal(back.Log, tc.h.Log) || !bytes.Equal(back.Firmware, tc.h.Firmware) || back.Interrupted != tc.h.Interrupted {
				t.Errorf("Parse gives %+v, want %+v", back, tc.h)
			}
			again, _ := Build(&tc.h)
			if !bytes.Equal(again, data) {
				t.Error("Build is not deterministic")
			}
		})
	}
}

// TestBuildReadBackByGNUCpio unpacks the archive with GNU cpio, as a
// second, independent reader, and reads it back with ReadDir.
func TestBuildReadBackByGNUCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("GNU cpio not installed")
	}
	h := Handoff{Log: testLog(t, 5), Firmware: []byte("fw")}
	data, err := Build(&h)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	cmd := exec.Command("cpio", "-i", "--quiet", "--no-absolute-filenames", "--make-directories", "--preserve-modification-time")
	cmd.Dir, cmd.Stdin = root, bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}
	for name, want := range map[string]string{LogName: string(h.Log), FirmwareName: "fw"} {
		p := filepath.Join(root, Dir, name)
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != 0o444 {
			t.Errorf("%s: mode %v, want -r--r--r--", name, st.Mode())
		}
		if b, _ := os.ReadFile(p); string(b) != want {
			t.Errorf("%s: %q, want %q", name, b, want)
		}
	}
	back, err := ReadDir(filepath.Join(root, Dir))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Log, h.Log) || string(back.Firmware) != "fw" {
		t.Errorf("ReadDir gives %+v", back)
	}
}

func TestBuildTooLarge(t *testing.T) {
	if _, err := Build(&Handoff{Log: make([]byte, MaxLogSize+1)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("log over MaxLogSize: %v, want ErrTooLarge", err)
	}
	if _, err := Build(&Handoff{Log: nil, Firmware: make([]byte, MaxFirmwareSize+1)}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("firmware over MaxFirmwareSize: %v, want ErrTooLarge", err)
	}
}

// archive writes entries with the package's own cpio writer, for the
// refusal cases.
func archive(t testing.TB, trailer bool, entries ...newc.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := newc.NewWriter(&buf, newc.Options{})
	for i, h := range entries {
		h.Ino = uint32(i + 1)
		var data []byte
		if h.Mode&0o170000 != newc.TypeDir {
			data = []byte("data")
		}
		if h.Mode&0o170000 == newc.TypeSymlink {
			data = []byte("/etc/passwd")
		}
		if err := w.Write(h, data); err != nil {
			t.Fatal(err)
		}
	}
	if trailer {
		w.Close()
	}
	return buf.Bytes()
}

var (
	top   = newc.Header{Name: "kexec-measured", Mode: newc.TypeDir | 0o755}
	sub   = newc.Header{Name: "kexec-measured/handoff", Mode: newc.TypeDir | 0o755}
	logH  = newc.Header{Name: "kexec-measured/handoff/tpm2-measure.log", Mode: newc.TypeReg | 0o444}
	fwH   = newc.Header{Name: "kexec-measured/handoff/binary_bios_measurements", Mode: newc.TypeReg | 0o444}
	setMo = func(h newc.Header, mode uint32) newc.Header { h.Mode = mode; return h }
	named = func(h newc.Header, name string) newc.Header { h.Name = name; return h }
)

func TestParseRefuses(t *testing.T) {
	good := archive(t, true, top, sub, logH)
	if _, err := Parse(good); err != nil {
		t.Fatalf("the good archive: %v", err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrFormat},
		{"no log", archive(t, true, top, sub), ErrFormat},
		{"no trailer", archive(t, false, top, sub, logH), ErrFormat},
		{"executable log", archive(t, true, top, sub, setMo(logH, newc.TypeReg|0o555)), ErrFormat},
		{"writable log", archive(t, true, top, sub, setMo(logH, newc.TypeReg|0o644)), ErrFormat},
		{"setuid log", archive(t, true, top, sub, setMo(logH, newc.TypeReg|0o4444)), ErrFormat},
		{"sticky firmware", archive(t, true, top, sub, logH, setMo(fwH, newc.TypeReg|0o1444)), ErrFormat},
		{"symlink log", archive(t, true, top, sub, setMo(logH, newc.TypeSymlink|0o777)), ErrFormat},
		{"device", archive(t, true, top, sub, logH, setMo(fwH, 0o020000|0o444)), ErrFormat},
		{"file outside", archive(t, true, top, sub, logH, named(logH, "init")), ErrFormat},
		{"dot-dot", archive(t, true, top, sub, logH, named(logH, "kexec-measured/handoff/../../init")), ErrFormat},
		{"absolute", archive(t, true, top, sub, named(logH, "/kexec-measured/handoff/tpm2-measure.log")), ErrFormat},
		{"other file in dir", archive(t, true, top, sub, logH, named(logH, "kexec-measured/handoff/x")), ErrFormat},
		{"log twice", archive(t, true, top, sub, logH, logH), ErrFormat},
		{"file before dirs", archive(t, true, logH, top, sub), ErrFormat},
		{"dirs swapped", archive(t, true, sub, top, logH), ErrFormat},
		{"dir twice", archive(t, true, top, sub, sub, logH), ErrFormat},
		{"writable dir", archive(t, true, top, setMo(sub, newc.TypeDir|0o777), logH), ErrFormat},
		{"dir replaced by file", archive(t, true, top, setMo(sub, newc.TypeReg|0o444), logH), ErrFormat},
		{"second archive", append(archive(t, true, top, sub, logH), archive(t, true, fwH)...), ErrFormat},
		{"cut", good[:len(good)-200], ErrFormat},
		{"crc magic", func() []byte {
			var buf bytes.Buffer
			w := newc.NewWriter(&buf, newc.Options{CRC: true})
			w.Dir(top.Name, 0o755)
			w.Dir(sub.Name, 0o755)
			w.File(logH.Name, 0o444, nil)
			w.Close()
			return buf.Bytes()
		}(), ErrFormat},
		{"too large", make([]byte, MaxSize+1), ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := Parse(tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse = %+v, %v; want %v", h, err, tc.want)
			}
		})
	}
}

// TestParsePadded accepts what the kernel would see when the handoff is
// followed by NUL padding.
func TestParsePadded(t *testing.T) {
	data, _ := Build(&Handoff{Log: testLog(t, 1)})
	if _, err := Parse(append(data, make([]byte, 512)...)); err != nil {
		t.Error(err)
	}
}

func TestReadDirRefuses(t *testing.T) {
	log := testLog(t, 2)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  error
	}{
		{"good", func(t *testing.T, dir string) {}, nil},
		{"no log", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, LogName)) }, ErrFormat},
		{"other file", func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, "init"), nil, 0o444) }, ErrFormat},
		{"subdirectory", func(t *testing.T, dir string) { os.Mkdir(filepath.Join(dir, FirmwareName), 0o755) }, ErrFormat},
		{"executable", func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, LogName), 0o555) }, ErrFormat},
		{"group writable", func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, LogName), 0o464) }, ErrFormat},
		{"symlink log", func(t *testing.T, dir string) {
			p := filepath.Join(dir, LogName)
			os.Rename(p, p+".real")
			os.Symlink(p+".real", p)
			os.Remove(p + ".real")
			os.WriteFile(filepath.Join(t.TempDir(), "x"), nil, 0o444)
		}, ErrFormat},
		{"fifo", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, FirmwareName), 0o444); err != nil {
				t.Fatal(err)
			}
		}, ErrFormat},
		{"too large", func(t *testing.T, dir string) {
			os.Truncate(filepath.Join(dir, LogName), MaxLogSize+1)
		}, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "handoff")
			os.Mkdir(dir, 0o755)
			if err := os.WriteFile(filepath.Join(dir, LogName), log, 0o444); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, dir)
			h, err := ReadDir(dir)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadDir: %v, want %v", err, tc.want)
			}
			if err == nil && !bytes.Equal(h.Log, log) {
				t.Error("log differs")
			}
		})
	}
	t.Run("dir is a symlink", func(t *testing.T) {
		root := t.TempDir()
		os.Mkdir(filepath.Join(root, "real"), 0o755)
		os.WriteFile(filepath.Join(root, "real", LogName), log, 0o444)
		os.Symlink("real", filepath.Join(root, "handoff"))
		if _, err := ReadDir(filepath.Join(root, "handoff")); !errors.Is(err, ErrFormat) {
			t.Errorf("ReadDir through a symlink: %v, want ErrFormat", err)
		}
	})
	t.Run("missing dir", func(t *testing.T) {
		if _, err := ReadDir(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("ReadDir of a missing dir: %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("sticky log", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, LogName)
		os.WriteFile(p, log, 0o444)
		os.Chmod(p, 0o444|os.ModeSticky)
		h, err := ReadDir(dir)
		if err != nil || !h.Interrupted {
			t.Errorf("ReadDir of a sticky log: %+v, %v; want Interrupted", h, err)
		}
	})
}

func TestCollect(t *testing.T) {
	dir := t.TempDir()
	logPath, fwPath := filepath.Join(dir, "log"), filepath.Join(dir, "fw")
	h, err := Collect(logPath, fwPath)
	if err != nil || len(h.Log) != 0 || h.Log == nil || h.Firmware != nil {
		t.Fatalf("Collect of nothing: %+v, %v; want an empty log, no firmware", h, err)
	}
	log := testLog(t, 3)
	os.WriteFile(logPath, log, 0o600)
	os.WriteFile(fwPath, []byte("fw"), 0o400)
	os.Chmod(logPath, 0o600|os.ModeSticky)
	h, err = Collect(logPath, fwPath)
	if err != nil || !bytes.Equal(h.Log, log) || string(h.Firmware) != "fw" || !h.Interrupted {
		t.Fatalf("Collect: %+v, %v", h, err)
	}
	os.Symlink(logPath, filepath.Join(dir, "link"))
	if _, err := Collect(filepath.Join(dir, "link"), ""); err == nil {
		t.Error("Collect followed a symlink at the log path")
	}
}

func TestBuilder(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "log")
	log := testLog(t, 4)
	os.WriteFile(logPath, log, 0o600)
	copyPath := filepath.Join(dir, "copy")
	os.WriteFile(copyPath, []byte("kept copy"), 0o444)
	b := &Builder{LogPath: logPath, FirmwarePaths: []string{filepath.Join(dir, "no-sysfs"), copyPath}}
	data, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	h, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.Log, log) || string(h.Firmware) != "kept copy" {
		t.Errorf("Builder: %+v; want the log and the kept firmware copy (sysfs has none)", h)
	}
}
