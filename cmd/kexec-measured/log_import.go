package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/handoff"
)

const logImportUsage = `usage: kexec-measured log import [--handoff DIR] [--log PATH] [--firmware-copy FILE]

Puts the records an earlier boot handed over (DIR/tpm2-measure.log, where
the kernel unpacked the handoff component of the kexec that started this
boot) ahead of this boot's records in the userspace measurement log, under
the log's lock, and keeps the handed-over firmware log copy at FILE.
Running it again changes nothing. No DIR (a cold boot): exit 0, no output.

Exit status: 0 imported, already imported or nothing to import; 1 the
handoff was refused (not a kexec-measured handoff); 2 usage or I/O error.

`

// runLogImport runs `kexec-measured log import`.
func runLogImport(args []string, stdout, stderr io.Writer) int {
	flags := subcommandFlags("log import", logImportUsage, stderr)
	dir := flags.String("handoff", handoff.DefaultDir, "the unpacked handoff `DIR`ectory")
	logPath := flags.String("log", eventlog.DefaultPath(os.Getenv), "the userspace measurement log (default $"+eventlog.PathEnv+" or "+eventlog.DefaultLogPath+")")
	fwCopy := flags.String("firmware-copy", handoff.FirmwareCopyPath, "where to keep the handed-over firmware log copy (\"\": nowhere)")
	if code, ok := parseNoOperands(flags, args, stderr); !ok {
		return code
	}
	h, err := handoff.ReadDir(*dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return 0
	case errors.Is(err, handoff.ErrFormat), errors.Is(err, handoff.ErrTooLarge):
		fmt.Fprintf(stderr, "kexec-measured log import: refusing %s: %v\n", *dir, err)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "kexec-measured log import: %v\n", err)
		return 2
	}
	res, err := handoff.Import(h, *logPath, *fwCopy)
	if errors.Is(err, eventlog.ErrMalformed) || errors.Is(err, eventlog.ErrTruncated) {
		fmt.Fprintf(stderr, "kexec-measured log import: refusing %s: %v\n", *dir, err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "kexec-measured log import: %v\n", err)
		return 2
	}
	if res.Already {
		fmt.Fprintf(stdout, "kexec-measured: %s already holds the %d handed-over record(s) of %s\n", *logPath, res.Records, *dir)
	} else {
		fmt.Fprintf(stdout, "kexec-measured: imported %d record(s) (%d bytes) of earlier boots from %s into %s\n", res.Records, res.Bytes, *dir, *logPath)
	}
	if h.Interrupted {
		fmt.Fprintf(stderr, "kexec-measured log import: warning: the handed-over log was left by an interrupted write; %s is marked so (sticky bit)\n", *logPath)
	}
	if res.Firmware != "" {
		fmt.Fprintf(stdout, "kexec-measured: kept the firmware log copy at %s\n", res.Firmware)
	}
	return 0
}
