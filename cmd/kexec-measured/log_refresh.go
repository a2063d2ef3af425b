package main

import (
	"fmt"
	"io"
)

// runLogRefresh runs `kexec-measured log refresh`.
func runLogRefresh(args []string, e env, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "kexec-measured log refresh: not built yet")
	return 2
}
