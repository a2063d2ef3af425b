package loadertest

import "golang.org/x/sys/unix"

// sealed reports whether fd carries all four seals the loader sets.
func sealed(fd int) bool {
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	want := unix.F_SEAL_WRITE | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_SEAL
	return err == nil && seals&want == want
}
