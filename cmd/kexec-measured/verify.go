package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/kexec-measured/kexec-measured/pcr"
	"github.com/kexec-measured/kexec-measured/verify"
)

const verifyUsage = `usage: kexec-measured verify [--reference FILE|DIR]... [--tpm SPEC | --pcrs FILE]
           [--log PATH] [--firmware-log FILE] [--ignore-pcrs LIST] [--json]

Replays every PCR of every bank from the firmware's TCG log and the userspace
log (earlier boots' records included), compares them with the TPM's values
(or those of --pcrs FILE: tpm2_pcrread or tpm2_checkquote YAML, or the JSON
of kexec-measured export), and matches every kexec event against the
reference manifests. Prints each boot's kexec events with the reference
that matches (or UNKNOWN), the PCR table and the findings. docs/verify.md.

Exit status: 0 every PCR with events matches and every kexec event is known,
1 a finding, 2 usage or I/O error.

`

// runVerify runs `kexec-measured verify` and returns the exit status.
func runVerify(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf logFlags
	lf.register(fs)
	var refs listFlag
	fs.Var(&refs, "reference", "reference manifest, or a directory of *.json manifests (repeatable)")
	pcrFile := fs.String("pcrs", "", "PCR values to compare with instead of the TPM's")
	ignore := fs.String("ignore-pcrs", "10", "PCRs not to compare (comma-separated; default 10, IMA's, whose log verify does not read)")
	fs.Usage = func() {
		fmt.Fprint(stderr, verifyUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageStatus(err)
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "kexec-measured verify: %v\n", err)
		return 2
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	ignored, err := parsePCRList(*ignore)
	if err != nil {
		return fail(fmt.Errorf("--ignore-pcrs: %w", err))
	}
	references, err := verify.LoadReferences(refs)
	if err != nil {
		return fail(err)
	}
	actual, log, fw, err := lf.readState(*pcrFile)
	if err != nil {
		return fail(err)
	}
	in := verify.NewInput(actual, log, fw, references, ignored)
	if *pcrFile == "" {
		// The live TPM: this machine's boot is the current one.
		if b, err := os.ReadFile(bootIDPath); err == nil {
			in.CurrentBootID = strings.TrimSpace(string(b))
		}
	}
	v := verify.Verify(in)
	if lf.json {
		err = v.WriteJSON(stdout)
	} else {
		err = v.WriteText(stdout)
	}
	if err != nil {
		return fail(err)
	}
	if !v.OK {
		return 1
	}
	return 0
}

// bootIDPath holds the running boot's ID.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// parsePCRList parses "10,11" (white space around a number is ignored; an
// empty list is none).
func parsePCRList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a PCR index", f)
		}
		if err := pcr.Check(n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}
