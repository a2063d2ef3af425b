package main

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kexec-measured/kexec-measured/bootentry"
	"github.com/kexec-measured/kexec-measured/handoff"
	"github.com/kexec-measured/kexec-measured/loader"
	"github.com/kexec-measured/kexec-measured/pcr"
)

// Exit statuses of kexec mode, as kexec-tools uses them.
const (
	exitOK      = 0
	exitRefused = 1   // usage error or a refused request: nothing changed
	exitFailed  = 255 // a failed load or measurement
)

// env is what runKexec needs from the machine; tests replace it.
type env struct {
	sys     loader.Syscalls
	getenv  func(string) string
	efivars string // efivarfs, for the boot entry pointers ("" reads none)
	openTPM func(spec string) (tpmDevice, error)
	clock   func() (int64, error)
	// statePath is where a measured load keeps its state for `log
	// refresh` and `-e`; "" keeps none.
	statePath string
}

// runKexec runs kexec(8) syntax and returns the exit status.
func runKexec(name string, args []string, e env, stdout, stderr io.Writer) int {
	o, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\nTry '%s --help' for more information.\n", name, err, name)
		return exitRefused
	}
	if o.help {
		writeUsage(stdout, name)
		return exitOK
	}
	if o.version {
		fmt.Fprintln(stdout, buildVersion(buildInfo()))
		return exitOK
	}
	status, err := kexec(o, e, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
	}
	return status
}

// kexec carries out parsed options and returns the exit status and the
// error to print. An error closing the TPM or the log after the run fails
// the command too.
func kexec(o *options, e env, stdout, stderr io.Writer) (status int, err error) {
	banks, err := parseBanks(o.banks)
	if err != nil {
		return exitRefused, err
	}
	req := request(o)
	l := newLoader(o, e, banks, stderr)

	if o.doLoad {
		if err := resolveBoot(o, e, &req, stderr); err != nil {
			return exitRefused, err
		}
		// Refuse bad inputs before the TPM is opened: a bad file changes
		// nothing, not even a TPM session.
		if err := loader.CheckInputs(req.Kernel, req.Initrds); err != nil {
			return exitRefused, err
		}
		if req.InitrdOut != "" {
			if err := loader.CheckOutput(req.InitrdOut); err != nil {
				return exitRefused, err
			}
		}
		d, oerr := openDevices(o, e, stderr)
		if oerr != nil {
			return exitStatus(oerr), oerr
		}
		if d != nil {
			d.apply(l)
			defer func() {
				if cerr := d.close(); cerr != nil {
					if err == nil {
						status = exitFailed
					}
					err = errors.Join(err, cerr)
				}
			}()
		}
		if d == nil && !o.dryRun {
			l.Handoff = nil // an unmeasured load hands nothing over
		}
	}
	if o.doExec && !o.doLoad && !o.dryRun {
		// kexec -e, as systemd before March 2026 runs it: refresh the
		// handoff first, so that the records written since the load go
		// along. A failed refresh leaves the earlier load: exec it anyway.
		if _, err := refreshLoad(e, e.statePath); err != nil && !errors.Is(err, errNothingToRefresh) {
			fmt.Fprintf(stderr, "kexec-measured: warning: refreshing the handoff before the exec: %v; executing the earlier load, whose handoff lacks the records written since\n", err)
		}
	}

	res, err := l.Run(req)
	if res.Image != nil {
		defer res.Image.Close()
	}
	if err != nil {
		return exitStatus(err), err
	}
	if e.statePath != "" && !o.dryRun && !req.Panic && (req.Load || req.Unload) {
		// Only the last load of the kernel for kexec -e can be refreshed:
		// any other load or unload makes an earlier state stale.
		os.Remove(e.statePath)
		if res.State != nil {
			if err := saveState(e.statePath, res.State); err != nil {
				fmt.Fprintf(stderr, "kexec-measured: warning: keeping the load state for a refresh: %v\n", err)
			}
		}
	}
	if req.Status {
		if res.Loaded {
			return 1, nil
		}
		return exitOK, nil
	}
	if o.dryRun {
		if o.json {
			err = writePlanJSON(stdout, o, res)
		} else {
			err = writePlanText(stdout, o, res)
		}
		if err != nil {
			return exitFailed, err
		}
	}
	return exitOK, nil
}

// newLoader is the loader of parsed options, for a load and for predict
// alike (predict sets DryRun), so that both digest the same events.
// Whatever adds or changes a load's events (such as the handoff builder)
// belongs here, or predict will not see it; TestPredictEqualsLoad fails
// when a load extends what its prediction did not list.
func newLoader(o *options, e env, banks []crypto.Hash, stderr io.Writer) *loader.Loader {
	l := &loader.Loader{Sys: e.sys, PCR: o.pcr, Banks: banks, DryRun: o.dryRun, Clock: e.clock, Warn: stderr, MaxEvents: o.maxEvents, StrictLog: o.requireTPM}
	if !o.noHandoff {
		// A measured load and every dry run (predict's too) carry the
		// handoff and its kexec-handoff event; kexec drops it again for an
		// unmeasured load.
		l.Handoff = &handoff.Builder{LogPath: logPath(o, e), FirmwarePaths: handoff.DefaultFirmwarePaths()}
		l.LogPath = logPath(o, e)
	}
	return l
}

// request turns kexec-tools' variables into a loader request.
func request(o *options) loader.Request {
	return loader.Request{
		Kernel:       o.kernel,
		Initrds:      o.initrds,
		Append:       o.appendLine,
		ReuseCmdline: o.reuseCmdline,
		Panic:        o.panic || (o.doStatus && !o.sawLoad),
		Debug:        o.debug,
		SplitInitrd:  o.split,
		NoHandoff:    o.noHandoff,
		Status:       o.doStatus,
		Unload:       o.doUnload,
		Load:         o.doLoad,
		Shutdown:     o.doShutdown,
		Sync:         o.doSync,
		IfDown:       o.doIfdown,
		Exec:         o.doExec,
		InitrdOut:    o.initrdOut,
	}
}

// exitStatus maps an error to kexec-tools' exit status: 1 for a request
// refused before anything changed, 255 for a failed load or measurement.
func exitStatus(err error) int {
	var ue *usageError
	var ie *loader.InputError
	var re *refusedError
	switch {
	case errors.As(err, &ue), errors.As(err, &ie), errors.As(err, &re),
		errors.Is(err, loader.ErrNoKernel),
		errors.Is(err, loader.ErrCmdlineTooLong),
		errors.Is(err, loader.ErrCmdlineNUL),
		errors.Is(err, loader.ErrTooManyEvents),
		errors.Is(err, loader.ErrCrashNotReserved),
		errors.Is(err, loader.ErrNothingLoaded):
		return exitRefused
	}
	return exitFailed
}

// parseBanks parses --banks=sha1,sha256,... with pcr.ParseList.
func parseBanks(s string) ([]crypto.Hash, error) {
	banks, err := pcr.ParseList(s)
	if err != nil {
		return nil, usagef("--banks=%s: %v", s, err)
	}
	return banks, nil
}

// newEnv is the real machine.
func newEnv() env {
	return env{sys: loader.NewSyscalls(), getenv: os.Getenv, efivars: bootentry.DefaultEFIVars, openTPM: openTPM, clock: bootClock, statePath: loader.DefaultStatePath}
}
