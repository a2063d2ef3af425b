package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/kexec-measured/kexec-measured/verify"
)

const referenceUsage = `usage: kexec-measured reference [--split-initrd] [--name NAME]... [--cmdline STRING]... FILE...

Prints a reference manifest (JSON): one entry per FILE (a kernel, detected by
its bzImage or PE header, or an initrd component), with --split-initrd one
more per segment of each initrd (the ranges a --split-initrd load measures),
and one per --cmdline, each with its size and its digest in every bank.
The i-th --name names the i-th FILE (default: its base name). Manifests are
merged by kexec-measured verify --reference. Format: docs/verify.md.

Exit status: 0 success, 2 usage or I/O error.

`

// runReference runs `kexec-measured reference` and returns the exit status.
func runReference(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reference", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var names, cmdlines listFlag
	split := fs.Bool("split-initrd", false, "add one entry per segment of each initrd")
	fs.Var(&names, "name", "name of the next FILE (repeatable, in FILE order)")
	fs.Var(&cmdlines, "cmdline", "a kernel command line to add (repeatable)")
	fs.Usage = func() {
		fmt.Fprint(stderr, referenceUsage)
		fs.PrintDefaults()
	}
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return usageStatus(err)
	}
	if len(files) == 0 && len(cmdlines) == 0 {
		fmt.Fprintln(stderr, "kexec-measured reference: no FILE and no --cmdline given")
		fs.Usage()
		return 2
	}
	if len(names) > len(files) {
		fmt.Fprintf(stderr, "kexec-measured reference: %d --name for %d FILE(s)\n", len(names), len(files))
		return 2
	}
	m, warnings, err := verify.Reference(files, verify.ReferenceOptions{Names: names, Cmdlines: cmdlines, Split: *split})
	for _, w := range warnings {
		fmt.Fprintf(stderr, "kexec-measured reference: warning: %s\n", w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "kexec-measured reference: %v\n", err)
		return 2
	}
	if err := m.Encode(stdout); err != nil {
		fmt.Fprintf(stderr, "kexec-measured reference: %v\n", err)
		return 2
	}
	return 0
}
