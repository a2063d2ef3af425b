// Package loader is the pipeline of kexec-measured: it reads the kernel and
// the initrd components once into sealed memfds, concatenates the components
// at 4-byte-aligned offsets, digests every measured range from the sealed
// bytes, hands the measurements to a Measurer and finally calls
// kexec_file_load through the Syscalls seam.
//
// The package knows nothing about go-tpm or JSON: the TPM and the event log
// come in through the PCRExtender and EventLog interfaces, and the kernel
// through Syscalls, so its tests run unprivileged with fakes.
package loader
