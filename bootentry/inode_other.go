//go:build !linux

package bootentry

type fileID struct{ dev, ino uint64 }

// statID has no inode numbers to offer outside Linux: every file counts.
func statID(string) (fileID, bool) { return fileID{}, false }
