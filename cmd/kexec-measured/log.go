package main

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/handoff"
	"github.com/kexec-measured/kexec-measured/history"
	"github.com/kexec-measured/kexec-measured/pcr"
	"github.com/kexec-measured/kexec-measured/tpm"
	"github.com/kexec-measured/kexec-measured/verify"
)

const logUsage = `usage: kexec-measured log [--json] [--pcr N] [--firmware] [--tpm SPEC] [--log PATH] [--firmware-log FILE] [--handoff DIR]
       kexec-measured log import [--handoff DIR] [--log PATH]
       kexec-measured log refresh [--state FILE]

Shows the whole measured history of this machine since its TPM was reset:
the firmware log's events per PCR (every event with --firmware), each boot's
userspace records (earlier boots first, as kexec handed them over), and per
PCR and bank the replayed value (firmware log, then the userspace log)
against the TPM's: MATCH, MISMATCH (with the likely reason), or not checked
(--tpm=none). A handoff that was not imported yet (DIR exists and the log
does not start with it) is shown as if imported.

Exit status: 0 every checked PCR matches; 1 a mismatch, or a write to the
log was interrupted (sticky bit); 2 usage or I/O error.

`

// runLog runs `kexec-measured log` and its subcommands.
func runLog(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "import":
			return runLogImport(args[1:], stdout, stderr)
		case "refresh":
			return runLogRefresh(args[1:], newEnv(), stdout, stderr)
		}
	}
	flags := subcommandFlags("log", logUsage, stderr)
	jsonOut := flags.Bool("json", false, "print one JSON object")
	onlyPCR := flags.Int("pcr", -1, "show and check only PCR `N`")
	allFirmware := flags.Bool("firmware", false, "list every firmware log event")
	tpmSpec := flags.String("tpm", "auto", "the TPM to compare with: auto, none, a device PATH or swtpm:HOST:PORT")
	logPath := flags.String("log", eventlog.DefaultPath(os.Getenv), "the userspace measurement log")
	fwPath := flags.String("firmware-log", "", "the firmware TCG log (default "+eventlog.FirmwareLogPath+", then "+handoff.FirmwareCopyPath+")")
	dir := flags.String("handoff", handoff.DefaultDir, "a handoff `DIR` that may not be imported yet")
	if code, ok := parseNoOperands(flags, args, stderr); !ok {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "kexec-measured log: "+format+"\n", a...)
		return 2
	}
	in := history.Input{}
	if *onlyPCR >= 0 {
		if err := pcr.Check(*onlyPCR); err != nil {
			return fail("--pcr: %v", err)
		}
		in.PCRs = []int{*onlyPCR}
	} else if *onlyPCR != -1 {
		return fail("--pcr: %v", pcr.Check(*onlyPCR))
	}

	log, err := readHistoryLog(*logPath, *dir)
	if err != nil {
		return fail("%v", err)
	}
	in.Log = log
	in.Firmware, in.FirmwareNote = readFirmwareLog(*fwPath)
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		in.CurrentBootID = strings.TrimSpace(string(b))
	}
	switch dev, err := tpm.Open(*tpmSpec); {
	case *tpmSpec == "none":
		in.NoTPMNote = "--tpm=none"
	case errors.Is(err, tpm.ErrNoTPM):
		in.NoTPMNote = err.Error()
	case errors.Is(err, tpm.ErrBadSpec):
		return fail("--tpm=%s: %v", *tpmSpec, err)
	case err != nil:
		return fail("opening the TPM (--tpm=%s): %v", *tpmSpec, err)
	default:
		defer dev.Close()
		in.TPM, in.Banks = dev, dev.Banks()
	}
	rep, err := history.NewReport(in)
	if err != nil {
		return fail("%v", err)
	}
	if *jsonOut {
		err = writeLogJSON(stdout, rep, *onlyPCR, *logPath)
	} else {
		err = writeLogText(stdout, rep, *onlyPCR, *allFirmware, *logPath)
	}
	if err != nil {
		return fail("%v", err)
	}
	if !rep.OK() {
		return 1
	}
	return 0
}

// subcommandFlags returns the flag set of a subcommand that takes no
// operands: -h prints usage and then the flags.
func subcommandFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	flags := flag.NewFlagSet(name, flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprint(stderr, usage)
		flags.PrintDefaults()
	}
	return flags
}

// parseNoOperands parses args with flags. When the command is to stop it
// returns false and the exit status: 0 after -h, 2 for a bad flag or an
// operand (with a message naming it).
func parseNoOperands(flags *flag.FlagSet, args []string, stderr io.Writer) (int, bool) {
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "kexec-measured %s: unexpected argument %q\n", flags.Name(), flags.Arg(0))
		return 2, false
	}
	return 0, true
}

// readHistoryLog reads the log under LOCK_SH (a missing log is empty) and,
// when dir holds a handoff the log does not start with yet, puts the
// handed-over records ahead in memory, as `log import` would.
func readHistoryLog(path, dir string) (*eventlog.Log, error) {
	log, err := eventlog.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		log, err = &eventlog.Log{Path: path}, nil
	case err != nil && log != nil && (errors.Is(err, eventlog.ErrInterrupted) || errors.As(err, new(*eventlog.SkipError))):
		err = nil // log.Interrupted and log.Skipped say it
	case err != nil:
		return nil, err
	}
	h, herr := handoff.ReadDir(dir)
	if herr != nil {
		if errors.Is(herr, fs.ErrNotExist) {
			return log, nil
		}
		return nil, fmt.Errorf("the handoff in %s: %w", dir, herr)
	}
	current, err := eventlog.Encode(log.Records)
	if err != nil {
		return nil, err
	}
	merged, already := handoff.Merge(h.Log, current)
	if already {
		return log, nil
	}
	lr := eventlog.NewReader(bytes.NewReader(merged))
	var recs []eventlog.Record
	for {
		rec, err := lr.Next()
		var se *eventlog.SkipError
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.As(err, &se) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("the handoff in %s: %w", dir, err)
		}
		recs = append(recs, rec)
	}
	return &eventlog.Log{Path: path, Records: recs, Skipped: lr.Skipped(), Interrupted: log.Interrupted || h.Interrupted}, nil
}

// readFirmwareLog reads (bounded, verify.ReadFirmware) and parses the
// firmware log of --firmware-log, or the first of sysfs and the kept copy
// that exists. Without one, it says why.
func readFirmwareLog(path string) (*eventlog.FirmwareLog, string) {
	paths := []string{path}
	if path == "" {
		paths = []string{eventlog.FirmwareLogPath, handoff.FirmwareCopyPath}
	}
	fw, err := verify.ReadFirmware(paths)
	switch {
	case err != nil:
		return nil, err.Error()
	case fw.Path == "":
		return nil, "no firmware log at " + strings.Join(paths, " or ")
	case fw.Err != nil:
		return nil, fmt.Sprintf("%s not parsed: %v", fw.Path, fw.Err)
	}
	return fw.Log, ""
}

func hexStr(b []byte) string {
	if b == nil {
		return "-"
	}
	return hex.EncodeToString(b)
}

func bankStr(h crypto.Hash) string {
	if n, err := pcr.Name(h); err == nil {
		return n
	}
	return "-"
}

// writeLogText prints the report for people.
func writeLogText(w io.Writer, rep *history.Report, only int, allFirmware bool, logPath string) error {
	var b strings.Builder
	if rep.Firmware == nil {
		fmt.Fprintf(&b, "Firmware log: %s\n", rep.FirmwareNote)
	} else {
		evs := rep.Firmware.Events()
		fmt.Fprintf(&b, "Firmware log: %d events\n", len(evs))
		perPCR := map[int][]eventlog.FirmwareEvent{}
		for _, ev := range evs {
			perPCR[ev.PCR] = append(perPCR[ev.PCR], ev)
		}
		for p := range pcr.Count {
			if len(perPCR[p]) == 0 || (only >= 0 && p != only) {
				continue
			}
			if allFirmware {
				for _, ev := range perPCR[p] {
					h, d := strongest(ev.Digests)
					fmt.Fprintf(&b, "  #%-4d PCR %-2d %s  %s:%s\n", ev.Seq, ev.PCR, ev.Summary(), bankStr(h), hexStr(d))
				}
				continue
			}
			var names []string
			for _, ev := range perPCR[p] {
				if len(names) < 3 {
					names = append(names, ev.Summary())
				}
			}
			more := ""
			if len(perPCR[p]) > 3 {
				more = ", ..."
			}
			fmt.Fprintf(&b, "  PCR %-2d %3d events: %s%s\n", p, len(perPCR[p]), strings.Join(names, ", "), more)
		}
	}
	fmt.Fprintf(&b, "Userspace log: %s\n", logPath)
	for i, boot := range rep.Boots {
		id, tag := boot.ID, ""
		if id == "" {
			id = "(no boot ID)"
		}
		if boot.Current {
			tag = " (this boot)"
		}
		fmt.Fprintf(&b, "Boot %d of %d: %s%s\n", i+1, len(rep.Boots), id, tag)
		for _, e := range boot.Entries {
			if only >= 0 && e.PCR != only {
				continue
			}
			size := "-"
			if e.Size >= 0 {
				size = fmt.Sprint(e.Size)
			}
			what := e.What
			if what == "" {
				what = "-"
			}
			fmt.Fprintf(&b, "  #%-4d PCR %-2d %-14s %-40s size %-10s %s:%s\n", e.Index, e.PCR, e.Event, what, size, bankStr(e.Bank), hexStr(e.Digest))
		}
	}
	fmt.Fprintf(&b, "PCRs (replayed: the firmware log, then the userspace log; against the TPM):\n")
	for _, c := range rep.Checks {
		fmt.Fprintf(&b, "  PCR %-2d %-6s %-11s replayed %s", c.PCR, bankStr(c.Bank), c.State, hexStr(c.Replayed))
		if c.State == history.Mismatch {
			fmt.Fprintf(&b, " TPM %s", hexStr(c.Actual))
		}
		b.WriteString("\n")
		if c.Reason != "" {
			fmt.Fprintf(&b, "           %s\n", c.Reason)
		}
	}
	if len(rep.Checks) == 0 {
		b.WriteString("  none: nothing to replay\n")
	}
	if n := len(rep.Skipped); n > 0 {
		fmt.Fprintf(&b, "DAMAGED: %d range(s) of the log are not records and were skipped:", n)
		for _, sk := range rep.Skipped {
			fmt.Fprintf(&b, " bytes %d-%d", sk.Offset, sk.Offset+sk.Size)
		}
		if hide := rep.MayHide(); len(hide) > 0 {
			fmt.Fprintf(&b, "; they may hide records of PCR %s\n", joinInts(hide))
		} else {
			b.WriteString("; every checked PCR matches without them\n")
		}
	}
	if rep.Interrupted {
		b.WriteString("INTERRUPTED: a write to the log was interrupted (sticky bit set): the log may lack a record for an extend\n")
	}
	if n := len(rep.Mismatches()); n > 0 {
		fmt.Fprintf(&b, "VERDICT: %d PCR value(s) not explained by the log\n", n)
	} else if !rep.Interrupted {
		b.WriteString("VERDICT: every checked PCR matches the log\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func strongest(ds map[crypto.Hash][]byte) (crypto.Hash, []byte) {
	banks := pcr.Banks()
	for i := len(banks) - 1; i >= 0; i-- {
		if d, ok := ds[banks[i]]; ok {
			return banks[i], d
		}
	}
	return 0, nil
}

// The JSON form of the report.
type (
	logJSON struct {
		Log         string         `json:"log"`
		Firmware    *firmwareJSON  `json:"firmware"`
		Boots       []bootJSON     `json:"boots"`
		PCRs        []pcrCheckJSON `json:"pcrs"`
		Interrupted bool           `json:"interrupted"`
		Skipped     []skippedJSON  `json:"skipped,omitempty"`
		MayHide     []int          `json:"skippedMayHide,omitempty"` // PCRs the skipped ranges may hide records of
		OK          bool           `json:"ok"`
	}
	skippedJSON struct {
		Offset int64  `json:"offset"`
		Size   int64  `json:"size"`
		Reason string `json:"reason"`
	}
	firmwareJSON struct {
		Parsed bool                `json:"parsed"`
		Note   string              `json:"note,omitempty"`
		Events []firmwareEventJSON `json:"events,omitempty"`
	}
	firmwareEventJSON struct {
		Seq     int    `json:"seq"`
		PCR     int    `json:"pcr"`
		Type    string `json:"type"`
		Summary string `json:"summary"`
		HashAlg string `json:"hashAlg,omitempty"`
		Digest  string `json:"digest,omitempty"`
	}
	bootJSON struct {
		BootID  string      `json:"bootId"`
		Current bool        `json:"current"`
		Records []entryJSON `json:"records"`
	}
	entryJSON struct {
		Index       int    `json:"index"`
		PCR         int    `json:"pcr"`
		ContentType string `json:"contentType"`
		Event       string `json:"event"`
		What        string `json:"what,omitempty"`
		Size        *int64 `json:"size,omitempty"`
		HashAlg     string `json:"hashAlg,omitempty"`
		Digest      string `json:"digest,omitempty"`
	}
	pcrCheckJSON struct {
		PCR      int           `json:"pcr"`
		Bank     string        `json:"bank"`
		State    history.State `json:"state"`
		Replayed string        `json:"replayed,omitempty"`
		TPM      string        `json:"tpm,omitempty"`
		Reason   string        `json:"reason,omitempty"`
	}
)

func writeLogJSON(w io.Writer, rep *history.Report, only int, logPath string) error {
	out := logJSON{Log: logPath, Firmware: &firmwareJSON{Note: rep.FirmwareNote}, Interrupted: rep.Interrupted, OK: rep.OK(),
		Boots: []bootJSON{}, PCRs: []pcrCheckJSON{}, MayHide: rep.MayHide()}
	for _, sk := range rep.Skipped {
		out.Skipped = append(out.Skipped, skippedJSON{Offset: sk.Offset, Size: sk.Size, Reason: sk.Err.Error()})
	}
	if rep.Firmware != nil {
		out.Firmware.Parsed = true
		for _, ev := range rep.Firmware.Events() {
			if only >= 0 && ev.PCR != only {
				continue
			}
			h, d := strongest(ev.Digests)
			out.Firmware.Events = append(out.Firmware.Events, firmwareEventJSON{Seq: ev.Seq, PCR: ev.PCR, Type: ev.TypeName(), Summary: ev.Summary(), HashAlg: bankStr(h), Digest: hex.EncodeToString(d)})
		}
	}
	for _, boot := range rep.Boots {
		bj := bootJSON{BootID: boot.ID, Current: boot.Current, Records: []entryJSON{}}
		for _, e := range boot.Entries {
			if only >= 0 && e.PCR != only {
				continue
			}
			ej := entryJSON{Index: e.Index, PCR: e.PCR, ContentType: e.ContentType, Event: e.Event, What: e.What}
			if e.Size >= 0 {
				ej.Size = &e.Size
			}
			if e.Digest != nil {
				ej.HashAlg, ej.Digest = bankStr(e.Bank), hex.EncodeToString(e.Digest)
			}
			bj.Records = append(bj.Records, ej)
		}
		out.Boots = append(out.Boots, bj)
	}
	for _, c := range rep.Checks {
		out.PCRs = append(out.PCRs, pcrCheckJSON{PCR: c.PCR, Bank: bankStr(c.Bank), State: c.State,
			Replayed: hex.EncodeToString(c.Replayed), TPM: hex.EncodeToString(c.Actual), Reason: c.Reason})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// joinInts prints PCR indices as "9, 11".
func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
