package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/kexec-measured/kexec-measured/verify"
)

const exportUsage = `usage: kexec-measured export [--tpm SPEC] [--log PATH] [--firmware-log FILE] DIR

Writes into DIR what a verifier on another machine needs: the userspace log
(tpm2-measure.log, byte for byte), the firmware TCG log
(binary_bios_measurements, when there is one) and every PCR of every bank
(pcrs.json, read under the log's lock). There:

  kexec-measured verify --reference REFS --pcrs DIR/pcrs.json \
      --log DIR/tpm2-measure.log --firmware-log DIR/binary_bios_measurements

For attestation, pass the PCR values of your own quote (tpm2_checkquote's
output) as --pcrs instead of pcrs.json. docs/verify.md.

Exit status: 0 success, 2 usage or I/O error.

`

// runExport runs `kexec-measured export` and returns the exit status.
func runExport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf logFlags
	lf.register(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, exportUsage)
		fs.PrintDefaults()
	}
	operands, err := parseInterspersed(fs, args)
	if err != nil {
		return usageStatus(err)
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "kexec-measured export: %v\n", err)
		return 2
	}
	if len(operands) != 1 {
		fmt.Fprintln(stderr, "kexec-measured export: want exactly one DIR")
		fs.Usage()
		return 2
	}
	actual, log, fw, err := lf.readState("")
	if err != nil {
		return fail(err)
	}
	if err := verify.Export(operands[0], log, fw, actual); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "exported %s (%d records), %s, %s to %s\n", verify.ExportLog, len(log.Records),
		orNone(fw.Path, verify.ExportFirmware), verify.ExportPCRs, operands[0])
	return 0
}

func orNone(path, name string) string {
	if path == "" {
		return "no " + name
	}
	return name
}
