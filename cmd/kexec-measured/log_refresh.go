package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kexec-measured/kexec-measured/eventlog"
	"github.com/kexec-measured/kexec-measured/handoff"
	"github.com/kexec-measured/kexec-measured/loader"
)

const logRefreshUsage = `usage: kexec-measured log refresh [--state FILE]

Re-loads the kernel that the last measured load of this boot loaded, with a
fresh handoff built from the log as it stands now, so that the records
appended since the load (systemd's shutdown phases) reach the next boot. It
re-reads the inputs, checks them against the digests the load logged, and
extends nothing. Run it as late in the shutdown as the inputs are readable;
` + "`kexec -e`" + ` does the same before it executes.

Exit status: 0 refreshed, or nothing to refresh (no measured load in this
boot, or nothing loaded); 1 refused (an input changed since it was measured,
or the load's records are not in the log: the earlier load stays); 2 usage
or I/O error.

`

// runLogRefresh runs `kexec-measured log refresh`.
func runLogRefresh(args []string, e env, stdout, stderr io.Writer) int {
	flags := subcommandFlags("log refresh", logRefreshUsage, stderr)
	state := flags.String("state", e.statePath, "the load state `FILE` a measured load wrote")
	if code, ok := parseNoOperands(flags, args, stderr); !ok {
		return code
	}
	res, err := refreshLoad(e, *state)
	switch {
	case errors.Is(err, errNothingToRefresh):
		fmt.Fprintf(stdout, "kexec-measured: nothing to refresh: %v\n", err)
		return 0
	case errors.Is(err, loader.ErrRefreshChanged), errors.Is(err, loader.ErrRefreshNotLogged), errors.Is(err, loader.ErrHandoffTooLarge):
		fmt.Fprintf(stderr, "kexec-measured log refresh: refused, the earlier load stays: %v\n", err)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "kexec-measured log refresh: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "kexec-measured: refreshed the handoff of %s (%d bytes, the log as it stands now)\n", res.Image.Kernel.Path, res.Image.Handoff.Size)
	return 0
}

var errNothingToRefresh = errors.New("no measured load")

// refreshLoad re-loads the load the state file describes (loader.Refresh).
func refreshLoad(e env, statePath string) (*loader.Result, error) {
	if statePath == "" {
		return nil, fmt.Errorf("%w: no state file", errNothingToRefresh)
	}
	b, err := os.ReadFile(statePath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in this boot (%s does not exist)", errNothingToRefresh, statePath)
	}
	if err != nil {
		return nil, err
	}
	var st loader.LoadState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", statePath, err)
	}
	if loaded, err := e.sys.ReadFile("/sys/kernel/kexec_loaded"); err == nil && strings.TrimSpace(string(loaded)) != "1" {
		return nil, fmt.Errorf("%w: no kernel is loaded", errNothingToRefresh)
	}
	w, err := eventlog.OpenWriter(st.Log)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	l := &loader.Loader{Sys: e.sys, PCR: st.PCR, Handoff: &handoff.Builder{LogPath: st.Log, FirmwarePaths: handoff.DefaultFirmwarePaths()}}
	res, err := l.Refresh(&st, w, func() ([]byte, error) { return os.ReadFile(st.Log) })
	if res != nil && res.Image != nil {
		res.Image.Close()
	}
	return res, err
}

// saveState keeps the state of a measured load for a later refresh
// (written to a temporary file and renamed, mode 0600).
func saveState(path string, st *loader.LoadState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
