// Command kexec-measured is a drop-in replacement for kexec-tools' kexec(8)
// that measures the kernel, each initrd component and the command line
// into the TPM and the systemd userspace measurement log before loading
// them with kexec_file_load.
//
// Invoked under any name but "kexec", a first argument that names a
// subcommand (inspect, predict) runs that subcommand; otherwise, and always when
// invoked as "kexec", the arguments are kexec(8) syntax.
package main

import (
	"io"
	"os"
	"path/filepath"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run runs the program with args (args[0] is the name it was invoked
// under) and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	name := filepath.Base(args[0])
	if name != "kexec" && len(args) > 1 {
		if sub, ok := subcommands()[args[1]]; ok {
			return sub(args[2:], stdout, stderr)
		}
	}
	return runKexec(name, args[1:], newEnv(), stdout, stderr)
}

// subcommands maps the subcommand words to their entry points.
func subcommands() map[string]func(args []string, stdout, stderr io.Writer) int {
	return map[string]func([]string, io.Writer, io.Writer) int{
		"inspect": runInspect,
		"log":     runLog,
		"predict": runPredict,
	}
}
