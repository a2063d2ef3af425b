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

// openInput opens path for reading and checks that it is a regular file.
// It stats before opening so that a FIFO or a device is refused without
// being opened, and checks again on the open descriptor.
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
	return f, fi.Size(), nil
}

// newMemfd creates an empty memfd that allows sealing.
func newMemfd(name string) (*os.File, error) {
	fd, err := unix.MemfdCreate("kexec-measured:"+name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, &SyscallError{Call: "memfd_create", Err: err}
	}
	return os.NewFile(uintptr(fd), "memfd:kexec-measured:"+name), nil
}

// appendFile copies src from its start to its end into dst at dst's file
// offset, in the kernel with sendfile(2) where it can and through a bounded
// buffer otherwise: the bytes never sit whole on the Go heap. It returns the
// number of bytes copied.
func appendFile(dst, src *os.File) (int64, error) {
	var total int64
	for {
		n, err := unix.Sendfile(int(dst.Fd()), int(src.Fd()), nil, copyChunk)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			if total == 0 && (err == unix.EINVAL || err == unix.ENOSYS) {
				return copyBuffered(dst, src)
			}
			return total, &SyscallError{Call: "sendfile from " + src.Name(), Err: err}
		}
		if n == 0 {
			return total, nil
		}
		total += int64(n)
	}
}

// copyBuffered is appendFile's fallback for files that sendfile refuses.
func copyBuffered(dst, src *os.File) (int64, error) {
	buf := make([]byte, copyChunk)
	n, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
	if err != nil {
		return n, fmt.Errorf("copying %s: %w", src.Name(), err)
	}
	return n, nil
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

// sealShrink forbids shrinking the memfd: its measured bytes stay, and
// more may be appended after them (the handoff).
func sealShrink(f *os.File) error {
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK); err != nil {
		return &SyscallError{Call: "fcntl(F_ADD_SEALS, F_SEAL_SHRINK) on " + f.Name(), Err: err}
	}
	return nil
}

// mapReadOnly maps the first size bytes of f read-only. The mapping is
// private (MAP_PRIVATE, never written, so it shares the memfd's pages): a
// shared mapping of the initrd, even read-only, would make the later
// F_SEAL_WRITE fail with EBUSY on kernels before 6.7, which count every
// shared mapping of a writable file as writable. A zero size gives
// an empty slice and no mapping.
func mapReadOnly(f *os.File, size int64) ([]byte, error) {
	if size == 0 {
		return nil, nil
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("mapping %s: %d bytes do not fit the address space", f.Name(), size)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_PRIVATE)
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

// copyOut writes the whole of src to a new file at path (mode 0644,
// truncating an existing file), kernel to kernel where it can.
func copyOut(path string, src *os.File) error {
	dst, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		dst.Close()
		return err
	}
	_, err = appendFile(dst, src)
	return errors.Join(err, dst.Close())
}
