package main

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"
)

func TestBuildVersion(t *testing.T) {
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		ld   string
		want string
	}{
		{"commit and time", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d"},
			{Key: "vcs.time", Value: "2026-12-01T22:31:00Z"},
			{Key: "vcs.modified", Value: "false"},
		}}, true, "", "kexec-measured " + version + " (commit 1a2b3c4d5e6f, 2026-12-01T22:31:00Z; go1.26.8)"},
		{"dirty tree", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"},
		}}, true, "", "kexec-measured " + version + " (commit abc+dirty; go1.26.8)"},
		{"no VCS information", &debug.BuildInfo{GoVersion: "go1.26.8"}, true, "", "kexec-measured " + version + " (commit unknown; go1.26.8)"},
		{"commit from -ldflags", &debug.BuildInfo{GoVersion: "go1.26.8"}, true, "fedcba987654", "kexec-measured " + version + " (commit fedcba987654; go1.26.8)"},
		{"VCS information wins over -ldflags", &debug.BuildInfo{GoVersion: "go1.26.8", Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}}}, true, "fedcba987654", "kexec-measured " + version + " (commit abc; go1.26.8)"},
		{"no build information", nil, false, "", "kexec-measured " + version + " (commit unknown; unknown)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := buildVersion(tc.info, tc.ok, tc.ld); got != tc.want {
				t.Fatalf("buildVersion = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestVersionFlag checks that -v and --version print the version line and
// exit 0, under both names, like kexec-tools' kexec -v.
func TestVersionFlag(t *testing.T) {
	for _, argv := range [][]string{{"kexec", "-v"}, {"kexec-measured", "--version"}, {"kexec", "-l", "K", "-v"}} {
		var out, errb bytes.Buffer
		if code := run(argv, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d, stderr %q", argv, code, errb.String())
		}
		if !strings.HasPrefix(out.String(), "kexec-measured "+version+" (commit ") || strings.Count(out.String(), "\n") != 1 {
			t.Fatalf("%v printed %q", argv, out.String())
		}
	}
}
