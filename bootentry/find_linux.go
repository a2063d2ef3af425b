package bootentry

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// isPartition reports whether dir is the root of a file system on a
// partition of type guid, as udev recorded it in /run/udev/data. For the
// ESP (vfat true) the file system must be vfat, and a partition udev knows
// nothing about is accepted.
func isPartition(dir, guid string, vfat bool) bool {
	var st, parent unix.Stat_t
	if unix.Stat(dir, &st) != nil || unix.Stat(filepath.Join(dir, ".."), &parent) != nil {
		return false
	}
	if st.Dev == parent.Dev && st.Ino != parent.Ino {
		return false // not a mount point
	}
	if vfat {
		var fs unix.Statfs_t
		if unix.Statfs(dir, &fs) != nil || fs.Type != unix.MSDOS_SUPER_MAGIC {
			return false
		}
	}
	data, err := os.ReadFile(fmt.Sprintf("/run/udev/data/b%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil {
		return vfat
	}
	return strings.Contains("\n"+string(data), "\nE:ID_PART_ENTRY_TYPE="+guid+"\n")
}

// sameDevice reports whether a and b are on the same file system.
func sameDevice(a, b string) bool {
	var sa, sb unix.Stat_t
	if b == "" || unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev
}
