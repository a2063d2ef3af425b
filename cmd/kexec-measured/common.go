package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/handoff"
	"github.com/kexec-measured/kexec-measured/tpm"
	"github.com/kexec-measured/kexec-measured/verify"
)

// logFlags are the flags the subcommands that read the logs share: --tpm,
// --log, --firmware-log and --json, parsed the same way in each.
type logFlags struct {
	tpm         string
	log         string
	firmwareLog string
	json        bool
}

// register adds the shared flags to fs.
func (f *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.tpm, "tpm", "auto", "TPM: auto, a device path or swtpm:HOST:PORT")
	fs.StringVar(&f.log, "log", "", "userspace measurement log (default $SYSTEMD_MEASURE_LOG_USERSPACE or "+eventlog.DefaultPath(func(string) string { return "" })+")")
	fs.StringVar(&f.firmwareLog, "firmware-log", "", "firmware TCG event log (default "+eventlog.FirmwareLogPath+", then the handoff's copy)")
	fs.BoolVar(&f.json, "json", false, "print one JSON object")
}

// logPath returns --log, or the default path.
func (f *logFlags) logPath() string {
	if f.log != "" {
		return f.log
	}
	return eventlog.DefaultPath(os.Getenv)
}

// firmwareLogPaths returns the firmware logs to try, in order: --firmware-log
// alone when it is given, else sysfs and then the handoff's copy.
func (f *logFlags) firmwareLogPaths() []string {
	if f.firmwareLog != "" {
		return []string{f.firmwareLog}
	}
	return []string{eventlog.FirmwareLogPath, handoff.FirmwareCopyPath}
}

// readState reads what verify and export judge: the userspace log and,
// under its lock, the PCR values (of pcrFile when given, else of the
// TPM), then the firmware log.
func (f *logFlags) readState(pcrFile string) (verify.PCRValues, *verify.Log, *verify.Firmware, error) {
	var actual verify.PCRValues
	log, err := verify.ReadLog(f.logPath(), func() (err error) {
		actual, err = pcrValues(pcrFile, f.tpm)
		return err
	})
	if err != nil {
		return nil, nil, nil, err
	}
	fw, err := verify.ReadFirmware(f.firmwareLogPaths())
	if err != nil {
		return nil, nil, nil, err
	}
	return actual, log, fw, nil
}

// pcrValues reads the PCR values to compare with: from file when one is
// given, else every PCR of every bank of the TPM spec names.
func pcrValues(file, spec string) (verify.PCRValues, error) {
	if file != "" {
		return verify.ReadPCRFile(file)
	}
	t, err := tpm.Open(spec)
	if err != nil {
		return nil, fmt.Errorf("%w (use --pcrs FILE to verify without a TPM)", err)
	}
	defer t.Close()
	return t.ReadAll()
}

// parseInterspersed parses args with fs, allowing options after operands
// (as GNU tools do) until "--", and returns the operands. The error is
// flag.ErrHelp or a usage error fs has already reported.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		consumed := len(rest) - fs.NArg()
		if consumed > 0 && rest[consumed-1] == "--" {
			return append(operands, fs.Args()...), nil
		}
		if fs.NArg() == 0 {
			return operands, nil
		}
		operands = append(operands, fs.Arg(0))
		rest = fs.Args()[1:]
	}
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// usageStatus maps a parse error to an exit status: 0 for --help, else 2.
func usageStatus(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
