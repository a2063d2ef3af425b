//go:build linux

package eventlog

import (
	"bytes"
	"crypto"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kexec-measured/kexec-measured/internal/hashtest"
	"github.com/kexec-measured/kexec-measured/internal/tmpfstest"

	"golang.org/x/sys/unix"
)

// The interfaces the loader consumes (loader/seams.go), copied so this
// package's tests do not depend on the loader building.
var _ interface {
	Lock() error
	BeginWrite() error
	Append(Record) error
	Unlock() error
} = (*Writer)(nil)

func testRecord(t *testing.T, data string) Record {
	t.Helper()
	rec, err := NewKexecRecord(9, map[crypto.Hash][]byte{
		crypto.SHA256: hashtest.Sum(crypto.SHA256, []byte(data)),
	}, KexecContent{Event: EventCmdline, Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode()
}

// appendOne runs the whole protocol for one record.
func appendOne(t *testing.T, w *Writer, rec Record) {
	t.Helper()
	if err := w.Lock(); err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if err := w.BeginWrite(); err != nil {
		t.Fatalf("BeginWrite: %v", err)
	}
	if err := w.Append(rec); err != nil {
		t.Fatalf("Append: %v", err)
	}
	if err := w.Unlock(); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}

func TestWriterProtocol(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "log", "systemd", "tpm2-measure.log")
	w := openWriter(t, path)
	for _, dir := range []string{filepath.Dir(path), filepath.Dir(filepath.Dir(path))} {
		if m := mode(t, dir); m.Perm() != 0o755 || !m.IsDir() {
			t.Errorf("created parent %s has mode %v, want drwxr-xr-x", dir, m)
		}
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("new log has mode %v, want -rw-------", m)
	}
	recs := []Record{testRecord(t, "a"), testRecord(t, "b")}
	lockAndBegin(t, w)
	if m := mode(t, path); m != 0o600|fs.ModeSticky {
		t.Errorf("after BeginWrite mode %v, want sticky", m)
	}
	if err := w.Append(recs[0]); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("after Append mode %v, want -rw-------", m)
	}
	if err := w.Unlock(); err != nil {
		t.Fatal(err)
	}
	appendOne(t, w, recs[1])

	log, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Encode(recs)
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, want) || len(log.Records) != 2 || log.Interrupted {
		t.Fatalf("log = %q (%d records, interrupted %v), want %q", got, len(log.Records), log.Interrupted, want)
	}
}

func TestWriterOutOfOrder(t *testing.T) {
	w, err := OpenWriter(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rec := testRecord(t, "a")
	steps := []struct {
		name string
		call func() error
	}{
		{"BeginWrite before Lock", w.BeginWrite},
		{"Append before Lock", func() error { return w.Append(rec) }},
		{"AbortWrite before Lock", w.AbortWrite},
		{"Unlock before Lock", w.Unlock},
	}
	for _, s := range steps {
		if err := s.call(); !errors.Is(err, ErrWriterState) {
			t.Errorf("%s = %v, want ErrWriterState", s.name, err)
		}
	}
	if err := w.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := w.Lock(); !errors.Is(err, ErrWriterState) {
		t.Errorf("second Lock = %v, want ErrWriterState", err)
	}
	if err := w.Append(rec); !errors.Is(err, ErrWriterState) {
		t.Errorf("Append without BeginWrite = %v, want ErrWriterState", err)
	}
}

// TestAbortWrite: the loader's path when the TPM refused the extend.
func TestAbortWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w := openWriter(t, path)
	lockAndBegin(t, w)
	if err := w.AbortWrite(); err != nil {
		t.Fatal(err)
	}
	if err := w.Unlock(); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("after AbortWrite mode %v, want -rw-------", m)
	}
	if _, err := ReadFile(path); err != nil {
		t.Errorf("ReadFile after AbortWrite: %v", err)
	}
}

// TestUnlockMidWrite: a write neither appended nor aborted (extend outcome
// unknown) leaves the log marked interrupted; the next reader and writer
// report it, and the bit stays set after later appends.
func TestUnlockMidWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	appendOne(t, w, testRecord(t, "before"))
	lockAndBegin(t, w)
	if err := w.Unlock(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	checkInterrupted(t, path, 1)

	w2, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	err = w2.Lock()
	var ie *InterruptedError
	if !errors.Is(err, ErrInterrupted) || !errors.As(err, &ie) || ie.Path != path || !strings.Contains(err.Error(), path) {
		t.Fatalf("Lock of an interrupted log = %v, want *InterruptedError naming %s", err, path)
	}
	// The lock is held: go on appending; the sticky bit stays.
	if err := w2.BeginWrite(); err != nil {
		t.Fatal(err)
	}
	if err := w2.Append(testRecord(t, "after")); err != nil {
		t.Fatal(err)
	}
	if err := w2.Unlock(); err != nil {
		t.Fatal(err)
	}
	checkInterrupted(t, path, 2)
}

// checkInterrupted checks that ReadFile reports the log at path as
// interrupted and still returns its n records.
func checkInterrupted(t *testing.T, path string, n int) {
	t.Helper()
	if m := mode(t, path); m&fs.ModeSticky == 0 {
		t.Errorf("mode %v: sticky bit not set", m)
	}
	log, err := ReadFile(path)
	if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), path) {
		t.Errorf("ReadFile = %v, want ErrInterrupted naming the path", err)
	}
	if log == nil || !log.Interrupted || len(log.Records) != n {
		t.Errorf("ReadFile = %+v, want %d records and Interrupted", log, n)
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := ReadFile(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("ReadFile(directory) = %v, want an error naming it", err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte(systemdRecord(11, "a", "phase", 1)+"\x1e{"), 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := ReadFile(bad)
	if !errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), bad) || log == nil || len(log.Records) != 1 {
		t.Errorf("ReadFile(truncated) = %+v, %v; want 1 record and ErrTruncated naming the path", log, err)
	}
}

// TestWriterUnwritable: each way the log cannot be written gives an error
// naming the path.
func TestWriterUnwritable(t *testing.T) {
	t.Run("symlink at the log path", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "target")
		if err := os.WriteFile(target, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "log")
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		_, err := OpenWriter(path)
		if !errors.Is(err, syscall.ELOOP) || !strings.Contains(err.Error(), path) {
			t.Fatalf("OpenWriter(symlink) = %v, want ELOOP naming %s", err, path)
		}
	})
	t.Run("directory at the log path", func(t *testing.T) {
		path := t.TempDir()
		if _, err := OpenWriter(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("OpenWriter(directory) = %v, want an error naming %s", err, path)
		}
	})
	t.Run("FIFO at the log path", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "log")
		if err := unix.Mkfifo(path, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenWriter(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("OpenWriter(FIFO) = %v, want an error naming %s (and no hang)", err, path)
		}
	})
	t.Run("read-only directory", func(t *testing.T) {
		dir := readOnlyDir(t)
		path := filepath.Join(dir, "log")
		_, err := OpenWriter(path)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("OpenWriter in a read-only directory = %v, want an error naming %s", err, path)
		}
		if !errors.Is(err, syscall.EROFS) && !errors.Is(err, syscall.EACCES) {
			t.Errorf("error %v is neither EROFS nor EACCES", err)
		}
		_, err = OpenWriter(filepath.Join(dir, "sub", "log"))
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "sub", "log")) {
			t.Errorf("OpenWriter needing a parent in a read-only directory = %v", err)
		}
	})
	t.Run("full file system", func(t *testing.T) {
		dir := tmpfstest.Mount(t, "size=256k")
		path := filepath.Join(dir, "log")
		w, err := OpenWriter(path)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		appendOne(t, w, testRecord(t, "fits"))
		before, _ := os.ReadFile(path)
		tmpfstest.Fill(t, dir)
		lockAndBegin(t, w)
		big := testRecord(t, "big")
		big.Content = []byte(`{"pad":"` + strings.Repeat("p", 64<<10) + `"}`)
		err = w.Append(big)
		if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), path) {
			t.Fatalf("Append on a full file system = %v, want ENOSPC naming %s", err, path)
		}
		if err := w.Unlock(); err != nil {
			t.Fatal(err)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(after, before) {
			t.Errorf("a partial record stayed in the log: %d bytes before, %d after", len(before), len(after))
		}
		// The PCR was extended without a record: the log says so.
		checkInterrupted(t, path, 1)
	})
}

// readOnlyDir returns a directory in which even root cannot create a file:
// a read-only tmpfs if we may mount, else (unprivileged) a mode 0555
// directory.
func readOnlyDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		return dir
	}
	return tmpfstest.Mount(t, "ro,size=64k")
}

// TestLockExcludesReaders: ReadFile waits while a writer holds the lock.
func TestLockExcludesReaders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w := openWriter(t, path)
	lockAndBegin(t, w)
	done := make(chan *Log)
	go func() {
		log, err := ReadFile(path)
		if err != nil {
			t.Errorf("ReadFile: %v", err)
		}
		done <- log
	}()
	select {
	case <-done:
		t.Fatal("ReadFile returned while the writer held the lock")
	case <-time.After(200 * time.Millisecond):
	}
	if err := w.Append(testRecord(t, "a")); err != nil {
		t.Fatal(err)
	}
	if err := w.Unlock(); err != nil {
		t.Fatal(err)
	}
	select {
	case log := <-done:
		if log == nil || len(log.Records) != 1 || log.Interrupted {
			t.Errorf("ReadFile after Unlock = %+v, want 1 record, not interrupted", log)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadFile still blocked after Unlock")
	}
}

// openWriter opens the log at path for writing and closes it when the test
// ends.
func openWriter(t *testing.T, path string) *Writer {
	t.Helper()
	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// lockAndBegin takes the log's lock and marks it as being written, as a
// writer does before its PCR extend.
func lockAndBegin(t *testing.T, w *Writer) {
	t.Helper()
	if err := w.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := w.BeginWrite(); err != nil {
		t.Fatal(err)
	}
}

// TestLockReportsDamage: Lock checks the log under the lock and names each
// range that is not a record; the records appended after it can be read.
func TestLockReportsDamage(t *testing.T) {
	good := systemdRecord(11, "systemd", "phase", 1)
	tests := []struct {
		name    string
		content string
		skipped int
	}{
		{"clean", good, 0},
		{"garbage", "garbage", 1},
		{"truncated last record", good + good[:50], 1},
		{"invalid JSON", good + "\x1e{\"pcr\":]\n", 1},
		{"2 MiB record", "\x1e{\"x\":\"" + strings.Repeat("a", 2<<20) + "\"}\n" + good, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			w, err := OpenWriter(path)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			err = w.Lock()
			var de *DamagedError
			switch {
			case tc.skipped == 0 && err != nil:
				t.Fatalf("Lock of a clean log = %v", err)
			case tc.skipped > 0 && (!errors.Is(err, ErrDamaged) || !errors.As(err, &de) || len(de.Skipped) != tc.skipped || !strings.Contains(err.Error(), path)):
				t.Fatalf("Lock = %v, want ErrDamaged naming %s and %d ranges", err, path, tc.skipped)
			}
			var recs []Record
			for i := range 5 {
				rec := testRecord(t, string(rune('a'+i)))
				if err := w.BeginWrite(); err != nil {
					t.Fatalf("BeginWrite after Lock: %v", err)
				}
				if err := w.Append(rec); err != nil {
					t.Fatal(err)
				}
				recs = append(recs, rec)
			}
			w.Unlock()
			log, err := ReadFile(path)
			if (err != nil) != (tc.skipped > 0) || len(log.Skipped) != tc.skipped {
				t.Fatalf("ReadFile = %v, %d skipped; want %d", err, len(log.Skipped), tc.skipped)
			}
			n := len(log.Records)
			if n < 5 {
				t.Fatalf("%d records, want the 5 appended", n)
			}
			got, _ := Encode(log.Records[n-5:])
			want, _ := Encode(recs)
			if !bytes.Equal(got, want) {
				t.Error("the appended records do not read back")
			}
		})
	}
}

// TestWriterClose: Close of a locked writer releases the lock and closes
// the file, and an error of the close comes back naming the log.
func TestWriterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	w2 := openWriter(t, path)
	locked := make(chan error, 1)
	go func() { locked <- w2.Lock() }()
	select {
	case err := <-locked:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close left the log locked: a second writer waits for the lock")
	}
	if err := w2.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, os.ErrClosed) || !strings.Contains(err.Error(), path) {
		t.Errorf("second Close = %v, want os.ErrClosed naming %s", err, path)
	}
}
