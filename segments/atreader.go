package segments

import (
	"fmt"
	"io"
)

const atBufSize = 64 << 10

// atReader is a buffered, position-counting reader over [base, end) of an
// io.ReaderAt. It reads ahead into its buffer but counts only what it hands
// out, so pos is exactly the number of bytes consumed: decoders that take an
// io.ByteReader stop it where their stream ends. Discard of large counts
// costs no reads.
type atReader struct {
	ra   io.ReaderAt
	pos  int64 // absolute offset of the next byte handed out
	end  int64 // absolute end of the readable range
	buf  []byte
	boff int64 // absolute offset of buf[0]
	r, w int   // buf[r:w] is buffered and not yet handed out
	err  error // sticky *ReadError; the end of the range is not an error
	// small makes the next fill read little: set after a Discard past the
	// buffer, when the caller is hopping from header to header.
	small bool
}

func newAtReader(ra io.ReaderAt, off, end int64) *atReader {
	return &atReader{ra: ra, pos: off, end: end, boff: off}
}

// fill makes at least n bytes (or all that remain) available in buf[r:w].
func (a *atReader) fill(n int) {
	if a.w-a.r >= n || a.err != nil {
		return
	}
	size := max(atBufSize, n)
	if a.small {
		size = max(4096, n)
		a.small = false
	}
	if cap(a.buf) < size || a.w-a.r > size {
		nb := make([]byte, size)
		copy(nb, a.buf[a.r:a.w])
		a.buf = nb
	} else {
		a.buf = a.buf[:size]
		copy(a.buf, a.buf[a.r:a.w])
	}
	a.w -= a.r
	a.r = 0
	a.boff = a.pos
	want := int64(len(a.buf) - a.w)
	if left := a.end - (a.pos + int64(a.w)); left < want {
		want = left
	}
	if want <= 0 {
		return
	}
	m, err := a.ra.ReadAt(a.buf[a.w:a.w+int(want)], a.pos+int64(a.w))
	a.w += m
	if err != nil && err != io.EOF {
		a.err = &ReadError{Offset: a.pos + int64(a.w), Err: err}
	}
	if err == io.EOF && int64(m) < want {
		// The ReaderAt is shorter than the size we were given.
		a.err = &ReadError{Offset: a.pos + int64(a.w), Err: io.ErrUnexpectedEOF}
	}
}

// Peek returns the next n bytes without consuming them. It returns fewer
// bytes and io.EOF (or the read error) when fewer remain.
func (a *atReader) Peek(n int) ([]byte, error) {
	a.fill(n)
	if a.w-a.r < n {
		if a.err != nil {
			return a.buf[a.r:a.w], a.err
		}
		return a.buf[a.r:a.w], io.EOF
	}
	return a.buf[a.r : a.r+n], nil
}

func (a *atReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if a.r == a.w {
		if len(p) >= atBufSize {
			// Large read: bypass the buffer.
			want := int64(len(p))
			if left := a.end - a.pos; left < want {
				want = left
			}
			if want <= 0 {
				return 0, a.errOrEOF()
			}
			m, err := a.ra.ReadAt(p[:want], a.pos)
			a.pos += int64(m)
			a.boff = a.pos
			if m > 0 {
				return m, nil
			}
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF // shorter than the size we were given
			}
			a.err = &ReadError{Offset: a.pos, Err: err}
			return 0, a.err
		}
		a.fill(1)
		if a.r == a.w {
			return 0, a.errOrEOF()
		}
	}
	m := copy(p, a.buf[a.r:a.w])
	a.r += m
	a.pos += int64(m)
	return m, nil
}

func (a *atReader) ReadByte() (byte, error) {
	if a.r == a.w {
		a.fill(1)
		if a.r == a.w {
			return 0, a.errOrEOF()
		}
	}
	c := a.buf[a.r]
	a.r++
	a.pos++
	return c, nil
}

// Discard skips n bytes. It returns the number skipped and io.EOF if fewer
// than n remain.
func (a *atReader) Discard(n int64) (int64, error) {
	if n <= 0 {
		return 0, nil
	}
	if b := int64(a.w - a.r); n <= b {
		a.r += int(n)
		a.pos += n
		return n, nil
	}
	left := a.end - a.pos
	skip := min(n, left)
	a.pos += skip
	a.small = true
	a.r, a.w = 0, 0
	a.boff = a.pos
	if skip < n {
		return skip, a.errOrEOF()
	}
	return skip, nil
}

// Remaining returns the number of bytes between pos and the end.
func (a *atReader) Remaining() int64 { return a.end - a.pos }

func (a *atReader) errOrEOF() error {
	if a.err != nil {
		return a.err
	}
	return io.EOF
}

// skipNULs consumes NUL bytes and returns how many it consumed.
func (a *atReader) skipNULs() (int64, error) {
	var n int64
	for {
		if a.r == a.w {
			a.fill(1)
			if a.r == a.w {
				if a.err != nil {
					return n, a.err
				}
				return n, nil
			}
		}
		b := a.buf[a.r:a.w]
		i := 0
		for i < len(b) && b[i] == 0 {
			i++
		}
		a.r += i
		a.pos += int64(i)
		n += int64(i)
		if i < len(b) {
			return n, nil
		}
	}
}

// ReadError is a failure of the underlying io.ReaderAt, as opposed to a
// problem with the image's bytes.
type ReadError struct {
	Offset int64
	Err    error
}

// Error names the offset and the underlying error.
func (e *ReadError) Error() string {
	return fmt.Sprintf("segments: read at offset %d: %v", e.Offset, e.Err)
}

// Unwrap returns the underlying error.
func (e *ReadError) Unwrap() error { return e.Err }
