package main

import (
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/loader"
	"github.com/kexec-measured/kexec-measured/pcr"
	"github.com/kexec-measured/kexec-measured/predict"
	"github.com/kexec-measured/kexec-measured/tpm"
	"github.com/kexec-measured/kexec-measured/verify"
)

const predictUsage = `usage: kexec-measured predict [LOAD OPTIONS] KERNEL [START] [OUTPUT]

Prints the value the PCR (--pcr, default 9) will hold right after the load
that the same arguments would make, in every bank. The load's arguments are
parsed exactly as a load parses them (-l, -p, -f or no mode, --initrd=FILE
repeated, --append, --reuse-cmdline, --split-initrd, --pcr, --banks), and
the events are the loader's own dry run. Nothing is loaded, no PCR is
extended and no log is written; only --pcrlock writes its file.

Start (one of them; default: --tpm=auto):
  --tpm=auto|PATH|swtpm:HOST:PORT  the TPM's current value (its banks)
  --firmware-log=FILE              replay the firmware TCG log (e.g.
                                   ` + eventlog.FirmwareLogPath + `)
  --log=PATH                       replay the userspace log (after the
                                   firmware log, if both are given)
  --from-zero                      the reset value
Output:
  --json                  one JSON object
  --pcrlock=PATH          write a systemd-pcrlock component: PATH ending in
                          .pcrlock is one file; PATH ending in .pcrlock.d is a
                          component directory of variants, e.g.
                          /var/lib/pcrlock.d/` + predict.ComponentName + `.pcrlock.d
  --variant=NAME          the variant's name (default: the kernel's file name,
                          links resolved)
  --keep-variants=N       variants kept in the directory (default %d)
  --keylime               print only the Keylime tpm_policy fragment (the
                          sha256 values of the planned load and of the kept
                          variants)

Exit status: 0 ok, 2 usage or I/O error. See docs/predict.md.
`

// predictOptions are predict's own options.
type predictOptions struct {
	fromZero    bool
	firmwareLog string
	pcrlock     string
	variant     string
	keep        int
	keepSet     bool
	keylime     bool
}

// predictSpecs are predict's options, parsed alongside kexec(8)'s.
func predictSpecs(p *predictOptions) []optSpec {
	return []optSpec{
		{"from-zero", 0, false, func(*options, string) error { p.fromZero = true; return nil }},
		{"firmware-log", 0, true, func(_ *options, v string) error { p.firmwareLog = v; return nil }},
		{"pcrlock", 0, true, func(_ *options, v string) error { p.pcrlock = v; return nil }},
		{"variant", 0, true, func(_ *options, v string) error { p.variant = v; return nil }},
		{"keep-variants", 0, true, func(_ *options, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return usagef("--keep-variants=%s: a number of at least 1", v)
			}
			p.keep, p.keepSet = n, true
			return nil
		}},
		{"keylime", 0, false, func(*options, string) error { p.keylime = true; return nil }},
	}
}

// runPredict runs `kexec-measured predict` and returns the exit status.
func runPredict(args []string, stdout, stderr io.Writer) int {
	return predictMain(args, newEnv(), stdout, stderr)
}

// predictMain is runPredict on the machine e.
func predictMain(args []string, e env, stdout, stderr io.Writer) int {
	po := &predictOptions{keep: predict.DefaultKeep}
	o, err := parseArgsWith(args, predictSpecs(po))
	if err == nil {
		err = checkPredict(o, po)
	}
	if err != nil {
		fmt.Fprintf(stderr, "kexec-measured predict: %v\nTry 'kexec-measured predict --help' for more information.\n", err)
		return 2
	}
	if o.help {
		fmt.Fprintf(stdout, predictUsage, predict.DefaultKeep)
		return 0
	}
	if err := runPrediction(o, po, e, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "kexec-measured predict: %v\n", err)
		return 2
	}
	return 0
}

// checkPredict refuses option combinations that predict cannot carry out.
func checkPredict(o *options, po *predictOptions) error {
	switch {
	case o.help:
		return nil
	case o.version:
		return usagef("--version: use kexec-measured --version")
	case !o.doLoad || o.doUnload || o.doStatus:
		return usagef("predict needs a load: -l, -p, -f or no mode, and a kernel")
	case o.initrdOut != "":
		return usagef("--initrd-out: predict writes nothing but --pcrlock")
	case po.fromZero && (o.tpmSet || o.logPath != "" || po.firmwareLog != ""):
		return usagef("--from-zero excludes --tpm, --log and --firmware-log")
	case o.tpmSet && (o.logPath != "" || po.firmwareLog != ""):
		return usagef("start from the TPM (--tpm) or from logs (--log, --firmware-log), not both")
	case o.tpmSet && o.tpm == "none":
		return usagef("--tpm=none: nothing to start from (use --from-zero for the reset value)")
	case po.variant != "" && !strings.HasSuffix(po.pcrlock, predict.DirSuffix):
		return usagef("--variant needs --pcrlock=DIR%s (a component directory)", predict.DirSuffix)
	case po.keepSet && !strings.HasSuffix(po.pcrlock, predict.DirSuffix):
		return usagef("--keep-variants needs --pcrlock=DIR%s (a component directory)", predict.DirSuffix)
	case po.keylime && o.json:
		return usagef("--keylime prints its own JSON; drop --json")
	}
	if po.variant != "" {
		if err := predict.CheckVariantName(po.variant); err != nil {
			return usagef("--variant: %v", err)
		}
	}
	return nil
}

// runPrediction reads the start value, runs the loader's dry run, and
// prints (and writes) the prediction.
func runPrediction(o *options, po *predictOptions, e env, stdout, stderr io.Writer) error {
	req := request(o)
	// --entry and UKIs resolve to the same parts as for a load.
	if err := resolveBoot(o, e, &req, stderr); err != nil {
		return err
	}
	if err := loader.CheckInputs(req.Kernel, req.Initrds); err != nil {
		return err
	}
	start, err := predictStart(o, po, e)
	if err != nil {
		return err
	}
	banks := make([]crypto.Hash, 0, len(start.Values))
	for _, h := range pcr.Banks() {
		if _, ok := start.Values[h]; ok {
			banks = append(banks, h)
		}
	}
	l := newLoader(o, e, banks, stderr)
	l.DryRun = true
	req.Load, req.Unload, req.Status = true, false, false
	req.Shutdown, req.Sync, req.IfDown, req.Exec = false, false, false, false
	res, err := l.Run(req)
	if res != nil && res.Image != nil {
		defer res.Image.Close()
	}
	if err != nil {
		return err
	}
	if res.Image == nil {
		return errors.New("the loader's dry run prepared no image")
	}
	events := make([]predict.Event, 0, len(res.Image.Measurements))
	for _, m := range res.Image.Measurements {
		events = append(events, predict.Event{KexecContent: m.KexecContent, Sums: m.Sums})
	}
	p, err := predict.New(start, o.pcr, events)
	if err != nil {
		return err
	}

	var variants []predict.Variant
	if po.pcrlock != "" {
		name := po.variant
		if name == "" && strings.HasSuffix(po.pcrlock, predict.DirSuffix) {
			// /boot/vmlinuz is usually a link to the versioned file:
			// name the variant after the kernel it is now.
			kernel := req.Kernel
			if r, err := filepath.EvalSymlinks(kernel); err == nil {
				kernel = r
			}
			name = predict.VariantName(kernel)
		}
		if variants, err = predict.Write(po.pcrlock, name, po.keep, p); err != nil {
			return err
		}
	}
	switch {
	case po.keylime:
		// The planned load first, then the other kept variants.
		others := []predict.Variant{}
		if len(variants) > 1 {
			others = variants[1:]
		}
		vals, err := predict.KeylimeValues(p, predict.KeylimeBank, others)
		if err != nil {
			return err
		}
		b, err := predict.Keylime(p.PCR, vals)
		if err != nil {
			return err
		}
		_, err = stdout.Write(b)
		return err
	case o.json:
		return writePredictionJSON(stdout, p, po.pcrlock, variants)
	}
	return writePredictionText(stdout, p, po.pcrlock, variants)
}

// predictStart reads the start value that the options ask for.
func predictStart(o *options, po *predictOptions, e env) (predict.Start, error) {
	if po.fromZero {
		banks, err := parseBanks(o.banks)
		if err != nil {
			return predict.Start{}, err
		}
		return predict.Zero(o.pcr, banks)
	}
	if o.logPath != "" || po.firmwareLog != "" {
		banks, err := parseBanks(o.banks)
		if err != nil {
			return predict.Start{}, err
		}
		return logStart(o, po, banks)
	}
	dev, err := e.openTPM(o.tpm)
	if errors.Is(err, tpm.ErrNoTPM) {
		return predict.Start{}, fmt.Errorf("%w; start from a log (--log, --firmware-log) or from the reset value (--from-zero)", err)
	}
	if errors.Is(err, tpm.ErrBadSpec) {
		return predict.Start{}, usagef("--tpm=%s: %v", o.tpm, err)
	}
	if err != nil {
		return predict.Start{}, fmt.Errorf("opening the TPM (--tpm=%s): %w", o.tpm, err)
	}
	defer dev.Close()
	vals, err := dev.ReadPCRs(o.pcr)
	if err != nil {
		return predict.Start{}, fmt.Errorf("reading PCR %d (--tpm=%s): %w", o.pcr, o.tpm, err)
	}
	return predict.FromValues(predict.SourceTPM, "the TPM (--tpm="+o.tpm+")", vals, dev.Banks())
}

// logStart replays the firmware log and/or the userspace log.
func logStart(o *options, po *predictOptions, banks []crypto.Hash) (predict.Start, error) {
	var what []string
	var firmware map[crypto.Hash][pcr.Count][]byte
	if po.firmwareLog != "" {
		var err error
		if firmware, err = replayFirmwareLog(po.firmwareLog, banks); err != nil {
			return predict.Start{}, err
		}
		what = append(what, "the firmware log "+po.firmwareLog)
	}
	var records []eventlog.Record
	if o.logPath != "" {
		log, err := eventlog.ReadFile(o.logPath)
		if err != nil {
			return predict.Start{}, fmt.Errorf("--log=%s: %w", o.logPath, err)
		}
		records = log.Records
		what = append(what, "the log "+o.logPath)
	}
	return predict.FromLogs(strings.Join(what, " and "), firmware, records, o.pcr, banks)
}

// replayFirmwareLog reads (bounded, verify.ReadFirmware) and replays a
// firmware TCG log.
func replayFirmwareLog(path string, banks []crypto.Hash) (map[crypto.Hash][pcr.Count][]byte, error) {
	fw, err := verify.ReadFirmware([]string{path})
	switch {
	case err != nil:
		return nil, fmt.Errorf("--firmware-log: %w", err)
	case fw.Path == "":
		return nil, fmt.Errorf("--firmware-log: %s: %w", path, fs.ErrNotExist)
	case fw.Err != nil:
		return nil, fmt.Errorf("--firmware-log=%w", fw.Err)
	}
	vals, err := fw.Log.Replay(banks)
	if err != nil {
		return nil, fmt.Errorf("--firmware-log=%s: %w", path, err)
	}
	return vals, nil
}

// predictionJSON is the --json output.
type predictionJSON struct {
	PCR     int               `json:"pcr"`
	Banks   []string          `json:"banks"`
	Start   startJSON         `json:"start"`
	Events  []eventJSON       `json:"events"`
	Values  map[string]string `json:"values"`
	Pcrlock *pcrlockJSON      `json:"pcrlock,omitempty"`
}

type startJSON struct {
	Source predict.Source    `json:"source"`
	From   string            `json:"from"`
	Values map[string]string `json:"values"`
}

// eventJSON is a planned event: the record's content without what only
// the load itself knows (boot ID, timestamp), and its digests.
type eventJSON struct {
	eventlog.KexecContent
	Digests map[string]string `json:"digests"`
}

type pcrlockJSON struct {
	Path     string        `json:"path"`
	Variants []variantJSON `json:"variants"`
}

type variantJSON struct {
	Name   string            `json:"name"`
	Path   string            `json:"path"`
	Values map[string]string `json:"values"`
}

// hexValues spells a value per bank as {"sha256": "<hex>"}.
func hexValues(vals map[crypto.Hash][]byte) map[string]string {
	out := map[string]string{}
	for h, v := range vals {
		if name, err := pcr.Name(h); err == nil {
			out[name] = hex.EncodeToString(v)
		}
	}
	return out
}

func writePredictionJSON(w io.Writer, p *predict.Prediction, pcrlockPath string, variants []predict.Variant) error {
	out := predictionJSON{
		PCR:    p.PCR,
		Banks:  []string{},
		Start:  startJSON{Source: p.Start.Source, From: p.Start.What, Values: hexValues(p.Start.Values)},
		Events: []eventJSON{},
		Values: hexValues(p.Values),
	}
	for _, h := range p.Banks {
		name, _ := pcr.Name(h)
		out.Banks = append(out.Banks, name)
	}
	for _, ev := range p.Events {
		c := ev.KexecContent
		c.BootID, c.Timestamp = "", 0
		out.Events = append(out.Events, eventJSON{KexecContent: c, Digests: hexValues(ev.Sums)})
	}
	if pcrlockPath != "" {
		out.Pcrlock = &pcrlockJSON{Path: pcrlockPath, Variants: []variantJSON{}}
		for _, v := range variants {
			out.Pcrlock.Variants = append(out.Pcrlock.Variants, variantJSON{Name: v.Name, Path: v.Path, Values: hexValues(v.Values)})
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func writePredictionText(w io.Writer, p *predict.Prediction, pcrlockPath string, variants []predict.Variant) error {
	bankLines := func(indent string, vals map[crypto.Hash][]byte) {
		for _, h := range p.Banks {
			name, _ := pcr.Name(h)
			fmt.Fprintf(w, "%s%-7s %s\n", indent, name, hex.EncodeToString(vals[h]))
		}
	}
	fmt.Fprintf(w, "prediction for PCR %d: nothing loaded, no TPM extend, no log write\n", p.PCR)
	fmt.Fprintf(w, "start    %s\n", p.Start.What)
	bankLines("  ", p.Start.Values)
	fmt.Fprintf(w, "events   %d\n", len(p.Events))
	for _, ev := range p.Events {
		fmt.Fprintf(w, "  %s  offset %d size %d\n", describeEvent(ev.KexecContent), ev.Offset, ev.Size)
		bankLines("    ", ev.Sums)
	}
	fmt.Fprintf(w, "after the load, PCR %d\n", p.PCR)
	bankLines("  ", p.Values)
	if pcrlockPath != "" {
		names := make([]string, len(variants))
		for i, v := range variants {
			names[i] = v.Name
		}
		fmt.Fprintf(w, "pcrlock  %s (variants: %s)\n", pcrlockPath, strings.Join(names, ", "))
	}
	return nil
}
