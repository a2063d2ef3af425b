package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kexec-measured/kexec-measured/bootentry"
	"github.com/kexec-measured/kexec-measured/loader"
)

// resolveBoot turns --entry=ID (a boot loader entry) or a kernel that is
// a unified kernel image into the loader request's inputs: the kernel and
// initrd components, as files or PE section ranges, then the --initrd
// files; the entry's command line unless --append or --reuse-cmdline say
// otherwise. A plain kernel leaves req as it is. The loads, dry runs, and
// later predict and reference, all call it, so they see the same parts.
func resolveBoot(o *options, e env, req *loader.Request, stderr io.Writer) error {
	var l *bootentry.Load
	switch {
	case o.entry != "":
		c, err := bootentry.Find(o.espPath, o.bootPath, e.getenv)
		if err != nil {
			return &refusedError{fmt.Errorf("--entry=%s: %w", o.entry, err)}
		}
		c.EFIVars = e.efivars
		set, err := c.Load()
		if err != nil {
			return &refusedError{fmt.Errorf("--entry=%s: %w", o.entry, err)}
		}
		for _, sk := range set.Skipped {
			fmt.Fprintf(stderr, "kexec-measured: warning: boot entry skipped as systemd skips it: %v\n", sk)
		}
		ent, err := set.Lookup(o.entry)
		if err != nil {
			return &refusedError{fmt.Errorf("--entry=%s: %w", o.entry, err)}
		}
		for _, w := range ent.Warnings {
			fmt.Fprintf(stderr, "kexec-measured: warning: %s: %s\n", ent.Path, w)
		}
		if l, err = ent.Load(); err != nil {
			return &refusedError{fmt.Errorf("--entry=%s: %w", o.entry, err)}
		}
	case o.kernel != "":
		isUKI, err := kernelIsUKI(o.kernel)
		if err != nil {
			return &refusedError{err}
		}
		if !isUKI {
			if o.ukiProfile >= 0 {
				return usagef("--uki-profile=%d: %s is not a unified kernel image", o.ukiProfile, o.kernel)
			}
			return nil
		}
		if l, err = bootentry.LoadUKI(o.kernel, o.ukiProfile, o.espPath); err != nil {
			return &refusedError{err}
		}
	default:
		return nil
	}
	applyLoad(o, l, req)
	return nil
}

// kernelIsUKI reports whether path is a PE image with a .linux section. A
// file that cannot be opened is left to the loader's checks.
func kernelIsUKI(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || !bootentry.IsPE(f) {
		return false, nil
	}
	_, err = bootentry.ParseUKI(f, fi.Size())
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bootentry.ErrNotUKI):
		return false, nil // a plain EFI-stub kernel
	}
	return false, fmt.Errorf("%s: %w", path, err)
}

// applyLoad puts l into req: its parts first, then the --initrd files.
func applyLoad(o *options, l *bootentry.Load, req *loader.Request) {
	req.Kernel, req.KernelRange = l.Kernel.Path, rangeOf(l.Kernel)
	req.Initrds, req.InitrdRanges = nil, nil
	for _, p := range l.Initrds {
		req.Initrds = append(req.Initrds, p.Path)
		req.InitrdRanges = append(req.InitrdRanges, rangeOf(p))
	}
	for _, p := range o.initrds {
		req.Initrds = append(req.Initrds, p)
		req.InitrdRanges = append(req.InitrdRanges, nil)
	}
	if !o.appendSet && !o.reuseCmdline && l.HasCmdline {
		req.Append, req.CmdlineSection = l.Cmdline, l.CmdlineSection
	}
}

func rangeOf(p bootentry.Part) *loader.Range {
	if p.Size < 0 {
		return nil
	}
	return &loader.Range{Offset: p.Offset, Size: p.Size, Section: p.Section}
}
