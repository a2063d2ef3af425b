package main

import (
	"fmt"
	"io"
)

// runLog runs `kexec-measured log` and its subcommands (`log import`).
func runLog(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "import":
			return runLogImport(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintln(stderr, "kexec-measured log: showing the history is not built yet; `log import` is")
	return 2
}
