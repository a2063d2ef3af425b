// Package dist holds the files that distributions install with
// kexec-measured (systemd units under systemd/); its tests check them with
// systemd's own tools in a scratch root, never on the host.
package dist
