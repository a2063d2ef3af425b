package main

import (
	"fmt"
	"runtime/debug"
)

// version is the release and commit the commit it was built from, set at
// build time with -ldflags "-X main.version=... -X main.commit=..."
// (scripts/package sets both from git). Without -X main.commit, the commit
// comes from the build information Go records (go build -buildvcs=true in
// a git clone).
var (
	version = "0.1.0-dev"
	commit  = ""
)

// buildVersion returns the line -v prints, in the form kexec-tools uses
// ("kexec-tools 2.0.26") followed by what it was built from:
//
//	kexec-measured 0.1.0 (commit 1a2b3c4d5e6f, 2026-12-01T22:31:00Z; go1.26.8)
//
// info is runtime/debug.ReadBuildInfo's answer (ok false: none). A tree
// with uncommitted changes adds "+dirty" to the commit; without VCS
// information the commit is ldCommit, or "unknown".
func buildVersion(info *debug.BuildInfo, ok bool, ldCommit string) string {
	commit, when, dirty, goVersion := "unknown", "", false, "unknown"
	if ldCommit != "" {
		commit = ldCommit
	}
	if ok && info != nil {
		goVersion = info.GoVersion
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
				if len(commit) > 12 {
					commit = commit[:12]
				}
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if dirty {
		commit += "+dirty"
	}
	built := "commit " + commit
	if when != "" {
		built += ", " + when
	}
	return fmt.Sprintf("kexec-measured %s (%s; %s)", version, built, goVersion)
}

// buildInfo returns what buildVersion needs of the running binary.
func buildInfo() (*debug.BuildInfo, bool, string) {
	info, ok := debug.ReadBuildInfo()
	return info, ok, commit
}
