package main

import (
	"crypto"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/kexec-measured/kexec-measured/bootentry"
	"github.com/kexec-measured/kexec-measured/loader"
	"github.com/kexec-measured/kexec-measured/pcr"
	"github.com/kexec-measured/kexec-measured/segments"
)

const inspectUsage = `usage: kexec-measured inspect [--json] [--list] [--digests=sha256,...] [--time-limit=8s] IMAGE...

Walks each initramfs image the way the kernel unpacks it and prints its
segments: uncompressed cpio archives and compressed members, with the NUL
padding after each, their digests, and what the kernel would reject. A
unified kernel image (a PE with a .linux section) is shown as its sections
with their digests, then the segments of its .ucode and .initrd sections.

Exit status: 0 every image parses cleanly, 1 warnings or unparsed bytes,
2 usage or I/O error.

`

// runInspect runs `kexec-measured inspect` with the arguments after the
// subcommand word and returns the exit status.
func runInspect(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonOut := fs.Bool("json", false, "print one JSON object per image")
	list := fs.Bool("list", false, "list the cpio entries of every segment")
	digests := fs.String("digests", "sha256", "comma-separated digests of each segment: sha1, sha256, sha384, sha512")
	timeLimit := fs.Duration("time-limit", inspectTimeLimit, "stop walking an image after this long, with a warning (0: no limit)")
	fs.Usage = func() {
		fmt.Fprint(stderr, inspectUsage)
		fs.PrintDefaults()
	}
	// Options may follow images: parse, take one image, parse the rest.
	var images []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		consumed := len(rest) - fs.NArg()
		if consumed > 0 && rest[consumed-1] == "--" {
			images = append(images, fs.Args()...)
			break
		}
		if fs.NArg() == 0 {
			break
		}
		images = append(images, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(images) == 0 {
		fmt.Fprintln(stderr, "kexec-measured inspect: no IMAGE given")
		fs.Usage()
		return 2
	}
	algs, err := pcr.ParseList(*digests)
	if err != nil {
		fmt.Fprintf(stderr, "kexec-measured inspect: --digests: %v\n", err)
		return 2
	}
	status := 0
	for i, path := range images {
		if i > 0 && !*jsonOut {
			fmt.Fprintln(stdout)
		}
		status = max(status, inspectImage(path, algs, *list, *jsonOut, *timeLimit, stdout, stderr))
	}
	return status
}

// inspectTimeLimit bounds the walk of one image (segments.Limits
// MaxDuration): with the decompression limits it keeps inspect of any image
// up to 64 MiB within 10 s (docs/segments.md).
const inspectTimeLimit = 8 * time.Second

// inspectImage reports on one image and returns its exit status. The report
// is written while the image is walked, so that memory does not grow with
// its entries.
func inspectImage(path string, algs []crypto.Hash, list, jsonOut bool, timeLimit time.Duration, stdout, stderr io.Writer) int {
	f, size, err := loader.OpenInput(path)
	if err != nil {
		fmt.Fprintf(stderr, "kexec-measured inspect: %v\n", err)
		return 2
	}
	defer f.Close()
	if bootentry.IsPE(f) {
		opt := segments.InspectOptions{List: list, Digests: algs, Limits: segments.Limits{MaxDuration: timeLimit}}
		if u, err := bootentry.InspectUKI(f, size, opt); err == nil {
			u.Image = path
			return writeReport(u, u.Clean(), path, algs, list, jsonOut, stdout, stderr)
		}
	}
	var out segments.ReportWriter
	if jsonOut {
		out = segments.NewJSONWriter(stdout)
	} else {
		out = segments.NewTextWriter(stdout, algs, list)
	}
	opt := segments.InspectOptions{Image: path, List: list, Digests: algs, Out: out, Limits: segments.Limits{MaxDuration: timeLimit}}
	rep, ierr := segments.Inspect(f, size, opt)
	var re *segments.ReadError
	switch {
	case errors.As(ierr, &re):
		fmt.Fprintf(stderr, "kexec-measured inspect: %s: %v\n", path, ierr)
		return 2
	case errors.Is(ierr, segments.ErrLimit):
		fmt.Fprintf(stderr, "kexec-measured inspect: %s: %v\n", path, ierr)
		return 1
	case ierr != nil:
		fmt.Fprintf(stderr, "kexec-measured inspect: writing the report: %v\n", ierr)
		return 2
	case !rep.Clean():
		return 1
	}
	return 0
}

// report is an inspect report of a UKI (bootentry.UKIReport).
type report interface {
	WriteText(w io.Writer, algs []crypto.Hash, list bool) error
}

// writeReport prints rep, a report built whole, and returns the exit status.
func writeReport(rep report, clean bool, path string, algs []crypto.Hash, list, jsonOut bool, stdout, stderr io.Writer) int {
	var err error
	if jsonOut {
		err = json.NewEncoder(stdout).Encode(rep)
	} else {
		err = rep.WriteText(stdout, algs, list)
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "kexec-measured inspect: %s: writing the report: %v\n", path, err)
		return 2
	case !clean:
		return 1
	}
	return 0
}
