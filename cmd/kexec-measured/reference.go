package main

import (
	"flag"
	"fmt"
	"io"
	"slices"

	"github.com/kexec-measured/kexec-measured/loader"

	"github.com/kexec-measured/kexec-measured/verify"
)

const referenceUsage = `usage: kexec-measured reference [--split-initrd] [--name NAME]... [--cmdline STRING]... FILE...
       kexec-measured reference [--split-initrd] --entry=ID|default [--esp-path=DIR] [--boot-path=DIR]

Prints a reference manifest (JSON): one entry per FILE (a kernel, detected by
its bzImage or PE header, or an initrd component), with --split-initrd one
more per segment of each initrd (the ranges a --split-initrd load measures),
and one per --cmdline, each with its size and its digest in every bank.
The i-th --name names the i-th FILE (default: its base name). With --entry,
the files and the command line are those of a boot loader entry, chosen as
a load with --entry chooses it (docs/entries.md): its linux, each initrd,
its options. Manifests are merged by kexec-measured verify --reference.
Format: docs/verify.md.

Exit status: 0 success, 2 usage or I/O error.

`

// runReference runs `kexec-measured reference` and returns the exit status.
func runReference(args []string, stdout, stderr io.Writer) int {
	return referenceCmd(args, newEnv(), stdout, stderr)
}

// referenceCmd is runReference on the machine e.
func referenceCmd(args []string, e env, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reference", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var names, cmdlines listFlag
	split := fs.Bool("split-initrd", false, "add one entry per segment of each initrd")
	fs.Var(&names, "name", "name of the next FILE (repeatable, in FILE order)")
	fs.Var(&cmdlines, "cmdline", "a kernel command line to add (repeatable)")
	var o options
	fs.StringVar(&o.entry, "entry", "", "the boot loader entry ID, or default, whose parts to list")
	fs.StringVar(&o.espPath, "esp-path", "", "the ESP to read boot entries from (as bootctl)")
	fs.StringVar(&o.bootPath, "boot-path", "", "the XBOOTLDR partition to read boot entries from (as bootctl)")
	fs.Usage = func() {
		fmt.Fprint(stderr, referenceUsage)
		fs.PrintDefaults()
	}
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return usageStatus(err)
	}
	if o.entry != "" {
		if len(files) > 0 || len(names) > 0 {
			fmt.Fprintln(stderr, "kexec-measured reference: --entry names the files itself: no FILE or --name with it")
			return 2
		}
		if files, cmdlines, err = entryFiles(&o, e, cmdlines, stderr); err != nil {
			fmt.Fprintf(stderr, "kexec-measured reference: %v\n", err)
			return 2
		}
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

// entryFiles resolves --entry the way a load does (resolveBoot) and returns
// the entry's kernel and initrd files, and cmdlines with the entry's
// command line added. The parts of a unified kernel image are PE section
// ranges, which manifests do not describe yet: such an entry is refused.
func entryFiles(o *options, e env, cmdlines []string, stderr io.Writer) ([]string, []string, error) {
	o.ukiProfile = -1
	var req loader.Request
	if err := resolveBoot(o, e, &req, stderr); err != nil {
		return nil, nil, err
	}
	if req.KernelRange != nil || slices.ContainsFunc(req.InitrdRanges, func(r *loader.Range) bool { return r != nil }) {
		return nil, nil, fmt.Errorf("--entry=%s is a unified kernel image: reference lists whole files; build the references of its parts before they are joined into the UKI", o.entry)
	}
	return append([]string{req.Kernel}, req.Initrds...), append(cmdlines, req.Append), nil
}
