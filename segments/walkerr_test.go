package segments

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// failingReaderAt fails every read that reaches at or past off.
type failingReaderAt struct {
	data []byte
	off  int64
}

var errDisk = errors.New("disk on fire")

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.off {
		return 0, errDisk
	}
	return copy(p, f.data[off:]), nil
}

func walk(ra io.ReaderAt, size int64, lim Limits) ([]*Segment, error) {
	r := NewReader(ra, size, lim)
	var out []*Segment
	for {
		s, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if err := r.Scan(s); err != nil {
			return out, err
		}
		out = append(out, s)
	}
}

func TestWalkErrors(t *testing.T) {
	small := mkcpio(sampleFiles("x", 3), cpioOpts{})
	gz := compressKind(t, small, KindGzip)
	zs := compressKind(t, small, KindZstd)
	img := append(append(bytes.Clone(small), zs...), gz...)

	t.Run("read error", func(t *testing.T) {
		_, err := walk(failingReaderAt{img, int64(len(small)) + 10}, int64(len(img)), Limits{})
		var re *ReadError
		if !errors.As(err, &re) || !errors.Is(err, errDisk) {
			t.Fatalf("err = %v, want a *ReadError wrapping %v", err, errDisk)
		}
	})
	t.Run("decompressed limit", func(t *testing.T) {
		_, err := walk(bytes.NewReader(img), int64(len(img)), Limits{MaxDecompressed: int64(len(small)) + 100})
		if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "offset") {
			t.Fatalf("err = %v, want ErrLimit naming the offset", err)
		}
	})
	t.Run("entry limit", func(t *testing.T) {
		_, err := walk(bytes.NewReader(img), int64(len(img)), Limits{MaxEntries: 7})
		if !errors.Is(err, ErrLimit) {
			t.Fatalf("err = %v, want ErrLimit", err)
		}
	})
	// A member cut short becomes an unknown tail from its start.
	for _, tc := range []struct {
		kind string
		data []byte
	}{{KindZstd, zs}, {KindGzip, gz}} {
		t.Run("truncated "+tc.kind, func(t *testing.T) {
			cut := append(bytes.Clone(small), tc.data[:len(tc.data)-9]...)
			segs, err := walk(bytes.NewReader(cut), int64(len(cut)), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if len(segs) != 2 || segs[1].Kind != KindUnknown || segs[1].Offset != int64(len(small)) || segs[1].Size != int64(len(tc.data)-9) {
				t.Fatalf("segments = %+v", segs)
			}
			if w := segs[1].Warnings; len(w) != 1 || w[0].Code != WarnUnknownBytes || w[0].Offset != int64(len(small)) {
				t.Fatalf("warnings = %v", w)
			}
		})
	}
	t.Run("cpio with a broken entry", func(t *testing.T) {
		broken := append(bytes.Clone(small[:len(small)-124]), "070701zzzz"...) // replace the trailer with a bad header
		segs, err := walk(bytes.NewReader(broken), int64(len(broken)), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) != 2 || segs[0].Kind != KindCpio || segs[0].Size != int64(len(small)-124) || segs[0].Entries != 5 ||
			segs[1].Kind != KindUnknown || segs[1].Offset != segs[0].Size {
			t.Fatalf("segments = %+v %+v", segs[0], segs[len(segs)-1])
		}
	})
	t.Run("image shorter than its size", func(t *testing.T) {
		_, err := walk(bytes.NewReader(img), int64(len(img))+100, Limits{})
		var re *ReadError
		if !errors.As(err, &re) || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("err = %v, want a *ReadError wrapping io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("raw bytes", func(t *testing.T) {
		r := NewReader(bytes.NewReader(img), int64(len(img)), Limits{})
		var got []byte
		for {
			s, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(r.Raw(s))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, b...)
		}
		if !bytes.Equal(got, img) {
			t.Fatal("the raw bytes of the segments are not the image")
		}
	})
	t.Run("empty image", func(t *testing.T) {
		segs, err := walk(bytes.NewReader(nil), 0, Limits{})
		if err != nil || len(segs) != 0 {
			t.Fatalf("segments %v, err %v", segs, err)
		}
	})
	t.Run("only NULs", func(t *testing.T) {
		segs, err := walk(bytes.NewReader(make([]byte, 100)), 100, Limits{})
		if err != nil || len(segs) != 1 || segs[0].Kind != KindPadding || segs[0].Size != 100 || segs[0].Padding != 100 {
			t.Fatalf("segments %+v, err %v", segs, err)
		}
	})
}
