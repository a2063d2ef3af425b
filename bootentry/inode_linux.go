package bootentry

import "syscall"

// fileID identifies an inode.
type fileID struct{ dev, ino uint64 }

// statID returns p's inode, following no final symlink.
func statID(p string) (fileID, bool) {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), st.Ino}, true
}
