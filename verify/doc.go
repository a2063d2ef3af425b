// Package verify is the analysis half of kexec-measured: reference
// manifests (one known digest per building block: kernel, initrd
// component or segment, command line) and the verdict on a running
// state — every PCR of every bank replayed from the firmware's TCG log and
// the userspace log (which holds the records of earlier boots after a
// handoff) and compared with the TPM's values, and every kexec event
// matched by digest against the references.
//
// The manifest format, the verdict and the exit statuses of the
// `reference` and `verify` subcommands are described in docs/verify.md.
package verify
