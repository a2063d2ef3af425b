// Package dist holds what a distribution installs besides the binary
// (Debian packaging, man page, bash completion, systemd units); its tests
// check those files with the distribution's own tools in scratch roots,
// never on the host. The package comment in dist_test.go lists the checks.
package dist
