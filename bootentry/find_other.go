//go:build !linux

package bootentry

// Outside Linux no partition is recognised: name them explicitly.
func isPartition(string, string, bool) bool { return false }
func sameDevice(string, string) bool        { return false }
