package loader

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// copyChunk bounds one sendfile(2) call and the fallback copy buffer.
const copyChunk = 1 << 20

// openInput opens path for reading and checks that it is a regular file
// whose size fstat tells: a file of /proc or /sys that says 0 bytes but
// has content is refused here (ErrNoFixedSize), before anything is read
// into memory. It stats before opening so that a FIFO or a device is
// refused without being opened, and checks again on the open descriptor.
func openInput(path string) (*os.File, int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, &InputError{Path: path, Err: err}
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, &InputError{Path: path, Err: fmt.Errorf("%w (it is %s)", ErrNotRegular, describeMode(fi.Mode()))}
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, 0, &InputError{Path: path, Err: err}
	}
	fi, err = f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, &InputError{Path: path, Err: err}
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, &InputError{Path: path, Err: fmt.Errorf("%w (it is %s)", ErrNotRegular, describeMode(fi.Mode()))}
	}
	if err := checkEnd(f, fi.Size()); err != nil {
		f.Close()
		return nil, 0, &InputError{Path: path, Err: err}
	}
	return f, fi.Size(), nil
}

// checkEnd checks that nothing can be read at offset size of f: that the
// size fstat gave is where the file ends.
func checkEnd(f *os.File, size int64) error {
	// 512 bytes: files like /proc/self/pagemap refuse reads of fewer than
	// 8 bytes (EINVAL), which would hide their content.
	var probe [512]byte
	for {
		n, err := unix.Pread(int(f.Fd()), probe[:], size)
		switch {
		case err == unix.EINTR || err == unix.EAGAIN:
			continue
		case n > 0 && size == 0:
			return fmt.Errorf("%w: fstat says 0 bytes, but reading it gives data (like the files of /proc and /sys, its content is made when read)", ErrNoFixedSize)
		case n > 0:
			return fmt.Errorf("%w: there is data after the %d bytes fstat gave", ErrSizeChanged, size)
		case err != nil:
			return fmt.Errorf("reading at its end (offset %d): %w", size, err)
		}
		return nil
	}
}

// newMemfd creates an empty memfd that allows sealing, sealed against
// shrinking from the start: nothing can take back bytes once written.
func newMemfd(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate("kexec-measured:"+name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, &SyscallError{Call: "memfd_create", Err: err}
	}
	f := os.NewFile(uintptr(fd), "memfd:kexec-measured:"+name)
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK); err != nil {
		f.Close()
		return nil, &SyscallError{Call: "fcntl(F_ADD_SEALS, F_SEAL_SHRINK) on " + f.Name(), Err: err}
	}
	return f, nil
}

// copyRange appends exactly n bytes of src, from offset off, to dst at
// dst's file offset: kernel to kernel with sendfile(2) where it can, else
// through buf (allocated on first use, copyChunk bytes), so that the bytes
// never sit whole on the Go heap. It returns how many bytes it copied; a
// source that ends before off+n gives io.ErrUnexpectedEOF.
func copyRange(dst, src *os.File, off, n int64, buf *[]byte) (int64, error) {
	start, end := off, off+n
	for off < end {
		w, err := unix.Sendfile(int(dst.Fd()), int(src.Fd()), &off, int(min(end-off, copyChunk)))
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err == unix.EINVAL || err == unix.ENOSYS {
			m, err := copyBuffered(dst, src, off, end, buf)
			return off - start + m, err
		}
		if err != nil {
			return off - start, &SyscallError{Call: "sendfile from " + src.Name(), Err: err}
		}
		if w == 0 {
			return off - start, io.ErrUnexpectedEOF
		}
	}
	return n, nil
}

// copyBuffered is copyRange's fallback for files that sendfile refuses.
func copyBuffered(dst, src *os.File, off, end int64, buf *[]byte) (int64, error) {
	if *buf == nil {
		*buf = make([]byte, copyChunk)
	}
	start := off
	for off < end {
		r, err := src.ReadAt((*buf)[:min(end-off, copyChunk)], off)
		if r > 0 {
			if _, werr := dst.Write((*buf)[:r]); werr != nil {
				return off - start, fmt.Errorf("writing %s: %w", dst.Name(), werr)
			}
			off += int64(r)
		}
		if r == 0 {
			if err != nil && !errors.Is(err, io.EOF) {
				return off - start, fmt.Errorf("reading: %w", err)
			}
			return off - start, io.ErrUnexpectedEOF
		}
	}
	return off - start, nil
}

// writeZeros appends n (< 4) zero bytes to f.
func writeZeros(f *os.File, n int64) error {
	var zeros [4]byte
	if _, err := f.Write(zeros[:n]); err != nil {
		return fmt.Errorf("padding %s: %w", f.Name(), err)
	}
	return nil
}

// seal forbids every further change to the memfd's contents and seals.
func seal(f *os.File) error {
	const seals = unix.F_SEAL_WRITE | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		return &SyscallError{Call: "fcntl(F_ADD_SEALS) on " + f.Name(), Err: err}
	}
	return nil
}

// mapReadOnly maps the first size bytes of f read-only through a new
// read-only descriptor of it (/proc/self/fd): a mapping of a descriptor
// opened for reading can never be made writable (mprotect), and it does
// not count as a writable shared mapping, so F_SEAL_WRITE can be added
// while it exists (Linux before 6.7 refuses the seal with EBUSY
// otherwise). Without /proc this fails, before anything is measured. The
// mapping may be longer than f is yet: only the bytes
// already written may be read. A zero size gives an empty slice and no
// mapping.
func mapReadOnly(f *os.File, size int64) ([]byte, error) {
	if size == 0 {
		return nil, nil
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("mapping %s: %d bytes do not fit the address space", f.Name(), size)
	}
	ro, err := os.Open(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("opening %s read-only through /proc (is /proc mounted?): %w", f.Name(), err)
	}
	defer ro.Close()
	b, err := unix.Mmap(int(ro.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, &SyscallError{Call: "mmap of " + f.Name(), Err: err}
	}
	return b, nil
}

func unmap(b []byte) error {
	if b == nil {
		return nil
	}
	return unix.Munmap(b)
}

// copyOut writes the first size bytes of src to path, a new or regular
// file (mode 0644, truncated), kernel to kernel where it can. A path that
// exists and is not a regular file (a FIFO, a device, a directory) is
// refused without being opened for writing; opening does not block.
func copyOut(path string, src *os.File, size int64) error {
	if err := CheckOutput(path); err != nil {
		return err
	}
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NONBLOCK|unix.O_NOCTTY, 0o644)
	if err != nil {
		return err
	}
	if fi, err := dst.Stat(); err != nil || !fi.Mode().IsRegular() {
		dst.Close()
		if err == nil {
			err = fmt.Errorf("%w (it is %s)", ErrNotRegular, describeMode(fi.Mode()))
		}
		return err
	}
	var buf []byte
	_, err = copyRange(dst, src, 0, size, &buf)
	return errors.Join(err, dst.Close())
}
