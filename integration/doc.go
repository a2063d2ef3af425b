// Package integration holds the end-to-end tests of kexec-measured: a real
// Debian kernel booted under QEMU with swtpm as its TPM runs the statically
// built kexec-measured, which measures and loads a second kernel with several
// initrd components through a real kexec_file_load; the second kernel reports
// its PCR values and initramfs contents on the serial console, and the tests
// check them against the log and against an independent computation from the
// host's copies of the files.
//
// The tests are behind the integration build tag. Prepare the machine with
// integration/setup, then run
//
//	go test -tags integration -v -timeout 25m ./integration/
//
// See docs/integration.md.
package integration
