package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kexec-measured/kexec-measured/pcr"
)

// options is the parsed command line in kexec(8) syntax. The do* fields
// mirror kexec-tools' main(): each mode option sets several of them, and
// the last mode option wins.
type options struct {
	doLoad, doExec, doShutdown, doSync, doIfdown, doUnload, doStatus bool
	skipSync, skipIfdown                                             bool
	sawLoad                                                          bool // -l was given: -S then asks about the normal kernel
	panic                                                            bool // -p: KEXEC_FILE_ON_CRASH
	syscall                                                          byte // 's' kexec_file_load (also -a), 'c' kexec_load
	debug, help, version                                             bool

	kernel       string
	initrds      []string
	appendLine   string
	appendSet    bool // --append was given (even empty): it replaces an entry's options
	reuseCmdline bool
	kernelType   string

	tpm        string
	tpmSet     bool // --tpm was given (predict reads the TPM only when asked or by default)
	requireTPM bool
	pcr        int
	logPath    string
	split      bool
	noHandoff  bool
	dryRun     bool
	json       bool
	initrdOut  string
	banks      string
	maxEvents  int

	entry      string // --entry=ID|default
	espPath    string // --esp-path
	bootPath   string // --boot-path
	ukiProfile int    // --uki-profile; -1 for the default
}

// usageError is a command line that cannot be carried out: exit status 1.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// optSpec is one option: its long name, its short letter (0 for none),
// whether it takes a value, and what it does.
type optSpec struct {
	long  string
	short byte
	arg   bool
	set   func(o *options, v string) error
}

// optSpecs returns the options of kexec(8) (kexec-tools semantics) and ours.
func optSpecs() []optSpec {
	return []optSpec{
		{"help", 'h', false, func(o *options, _ string) error { o.help = true; return nil }},
		{"version", 'v', false, func(o *options, _ string) error { o.version = true; return nil }},
		{"force", 'f', false, func(o *options, _ string) error {
			o.doLoad, o.doShutdown, o.doSync, o.doIfdown, o.doExec = true, false, true, true, true
			return nil
		}},
		{"load", 'l', false, func(o *options, _ string) error {
			o.doLoad, o.doExec, o.doShutdown, o.sawLoad = true, false, false, true
			return nil
		}},
		{"load-panic", 'p', false, func(o *options, _ string) error {
			o.doLoad, o.doExec, o.doShutdown, o.doSync, o.panic = true, false, false, false, true
			return nil
		}},
		{"unload", 'u', false, func(o *options, _ string) error {
			o.doLoad, o.doShutdown, o.doSync, o.doUnload = false, false, false, true
			return nil
		}},
		{"exec", 'e', false, func(o *options, _ string) error {
			o.doLoad, o.doShutdown, o.doSync, o.doIfdown, o.doExec = false, false, true, true, true
			return nil
		}},
		{"status", 'S', false, func(o *options, _ string) error { o.doStatus = true; return nil }},
		{"type", 't', true, func(o *options, v string) error { o.kernelType = v; return nil }},
		{"no-checks", 'i', false, func(o *options, _ string) error { return nil }},
		{"no-ifdown", 'x', false, func(o *options, _ string) error { o.skipIfdown = true; return nil }},
		{"no-sync", 'y', false, func(o *options, _ string) error { o.skipSync = true; return nil }},
		{"kexec-file-syscall", 's', false, func(o *options, _ string) error { o.syscall = 's'; return nil }},
		{"kexec-syscall-auto", 'a', false, func(o *options, _ string) error { o.syscall = 's'; return nil }},
		{"kexec-syscall", 'c', false, func(o *options, _ string) error { o.syscall = 'c'; return nil }},
		{"debug", 'd', false, func(o *options, _ string) error { o.debug = true; return nil }},
		{"initrd", 0, true, addInitrd},
		{"ramdisk", 0, true, addInitrd},
		{"append", 0, true, setAppend},
		{"command-line", 0, true, setAppend},
		{"reuse-cmdline", 0, false, func(o *options, _ string) error { o.reuseCmdline = true; return nil }},

		{"tpm", 0, true, func(o *options, v string) error { o.tpm, o.tpmSet = v, true; return nil }},
		{"require-tpm", 0, false, func(o *options, _ string) error { o.requireTPM = true; return nil }},
		{"pcr", 0, true, func(o *options, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || pcr.Check(n) != nil {
				return usagef("--pcr=%s: a PCR index is a number from 0 to %d", v, pcr.Max)
			}
			o.pcr = n
			return nil
		}},
		{"log", 0, true, func(o *options, v string) error { o.logPath = v; return nil }},
		{"split-initrd", 0, false, func(o *options, _ string) error { o.split = true; return nil }},
		{"no-handoff", 0, false, func(o *options, _ string) error { o.noHandoff = true; return nil }},
		{"dry-run", 0, false, func(o *options, _ string) error { o.dryRun = true; return nil }},
		{"json", 0, false, func(o *options, _ string) error { o.json = true; return nil }},
		{"initrd-out", 0, true, func(o *options, v string) error { o.initrdOut = v; return nil }},
		{"banks", 0, true, func(o *options, v string) error { o.banks = v; return nil }},
		{"max-events", 0, true, func(o *options, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return usagef("--max-events=%s: a number of events, at least 1", v)
			}
			o.maxEvents = n
			return nil
		}},

		{"entry", 0, true, func(o *options, v string) error {
			if v == "" {
				return usagef("--entry: empty entry ID (use --entry=default for the default entry)")
			}
			o.entry = v
			return nil
		}},
		{"esp-path", 0, true, func(o *options, v string) error { o.espPath = v; return nil }},
		{"boot-path", 0, true, func(o *options, v string) error { o.bootPath = v; return nil }},
		{"uki-profile", 0, true, func(o *options, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 255 {
				return usagef("--uki-profile=%s: a UKI profile is a number from 0 to 255", v)
			}
			o.ukiProfile = n
			return nil
		}},
	}
}

func addInitrd(o *options, v string) error {
	if v == "" {
		return usagef("--initrd: empty file name")
	}
	o.initrds = append(o.initrds, v)
	return nil
}

// setAppend: as in kexec-tools, a later --append replaces an earlier one.
func setAppend(o *options, v string) error { o.appendLine, o.appendSet = v, true; return nil }

// parseArgs parses args (without the program name) in kexec(8) syntax; see
// parseArgsWith.
func parseArgs(args []string) (*options, error) { return parseArgsWith(args, nil) }

// parseArgsWith parses args (without the program name) the way kexec-tools'
// getopt_long does: options and operands may be mixed, "--" ends the
// options, long options take "=value" or the next argument and may be
// abbreviated to a unique prefix, short options may be grouped ("-lx") and
// take their value attached or as the next argument. The kernel is the
// first operand. Then, as kexec-tools' main does after getopt, it settles
// the modes and refuses what cannot work (finishArgs). extra are more
// options (a subcommand's own, such as predict's) that parse alongside
// kexec(8)'s, so that a subcommand that takes a load's arguments parses them
// exactly as the load does.
func parseArgsWith(args []string, extra []optSpec) (*options, error) {
	specs := append(optSpecs(), extra...)
	o := &options{doLoad: true, doShutdown: true, doSync: true, syscall: 's', tpm: "auto", pcr: 9, banks: "sha256", ukiProfile: -1}
	var operands []string
	cur := &argCursor{args: args}
	for cur.i = 0; cur.i < len(args); cur.i++ {
		a := args[cur.i]
		var err error
		switch {
		case a == "--":
			operands = append(operands, args[cur.i+1:]...)
			cur.i = len(args)
		case strings.HasPrefix(a, "--"):
			err = parseLong(o, specs, a[2:], cur)
		case len(a) > 1 && a[0] == '-':
			err = parseShorts(o, specs, a[1:], cur)
		default:
			operands = append(operands, a)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := finishArgs(o, operands); err != nil {
		return nil, err
	}
	return o, nil
}

// argCursor is getopt's position in the argument list: an option whose
// value is the next argument moves it on.
type argCursor struct {
	args []string
	i    int
}

// value returns the argument after the current one, the value of option
// name.
func (c *argCursor) value(name string) (string, error) {
	if c.i+1 >= len(c.args) {
		return "", usagef("option %s requires an argument", name)
	}
	c.i++
	return c.args[c.i], nil
}

// parseLong parses one long option, "name" or "name=value" (after "--").
func parseLong(o *options, specs []optSpec, a string, cur *argCursor) error {
	name, val, hasVal := strings.Cut(a, "=")
	spec, err := lookupLong(specs, name)
	if err != nil {
		return err
	}
	switch {
	case spec.arg && !hasVal:
		if val, err = cur.value("--" + spec.long); err != nil {
			return err
		}
	case !spec.arg && hasVal:
		return usagef("option '--%s' doesn't allow an argument", spec.long)
	}
	return spec.set(o, val)
}

// parseShorts parses a group of short options (after "-"); one that takes
// a value takes the rest of the group, or the next argument.
func parseShorts(o *options, specs []optSpec, group string, cur *argCursor) error {
	for j := 0; j < len(group); j++ {
		spec := lookupShort(specs, group[j])
		if spec == nil {
			return usagef("invalid option -- '%c'", group[j])
		}
		val := ""
		if spec.arg {
			if j+1 < len(group) {
				val = group[j+1:]
			} else {
				var err error
				if val, err = cur.value("-" + string(group[j])); err != nil {
					return err
				}
			}
			j = len(group)
		}
		if err := spec.set(o, val); err != nil {
			return err
		}
	}
	return nil
}

// finishArgs does what kexec-tools' main does after getopt: -x and -y
// clear ifdown and sync, -S does nothing else, the first operand is the
// kernel; and it refuses a second kernel, -c for a load, a load without a
// kernel and --initrd-out without a load.
func finishArgs(o *options, operands []string) error {
	if o.skipIfdown {
		o.doIfdown = false
	}
	if o.skipSync {
		o.doSync = false
	}
	if o.doStatus {
		o.doLoad, o.doUnload, o.doShutdown, o.doSync, o.doIfdown, o.doExec = false, false, false, false, false, false
	}
	if len(operands) > 0 {
		o.kernel = operands[0]
	}
	if len(operands) > 1 {
		return usagef("unexpected argument %q: only one kernel image may be given", operands[1])
	}
	if o.help || o.version {
		return nil
	}
	if o.syscall == 'c' && (o.doLoad || o.doUnload) {
		return usagef("-c/--kexec-syscall is not supported: measured loading needs kexec_file_load, " +
			"where the kernel reads the very bytes that were measured (use -s, the default)")
	}
	if o.doLoad && o.kernel == "" && o.entry == "" {
		return usagef("no kernel specified")
	}
	if o.entry != "" && o.kernel != "" {
		return usagef("--entry=%s and the kernel %s: give one of them", o.entry, o.kernel)
	}
	if o.entry != "" && o.ukiProfile >= 0 {
		return usagef("--uki-profile applies to a UKI named on the command line; with --entry, name the profile's entry (--entry=NAME.efi@PROFILE)")
	}
	if o.initrdOut != "" && !o.doLoad {
		return usagef("--initrd-out needs a load (-l, -p, -f or no mode)")
	}
	return nil
}

// lookupLong finds a long option of specs by its name or a unique prefix
// of it.
func lookupLong(specs []optSpec, name string) (*optSpec, error) {
	var found []*optSpec
	for i := range specs {
		s := &specs[i]
		if s.long == name {
			return s, nil
		}
		if strings.HasPrefix(s.long, name) && name != "" {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return nil, usagef("unrecognized option '--%s'", name)
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, s := range found {
		names[i] = "--" + s.long
	}
	return nil, usagef("option '--%s' is ambiguous; possibilities: %s", name, strings.Join(names, " "))
}

func lookupShort(specs []optSpec, c byte) *optSpec {
	for i := range specs {
		if specs[i].short == c {
			return &specs[i]
		}
	}
	return nil
}
