// Package dist holds no Go code: the directory holds what runs
// kexec-measured at the right moments on real systems (an initramfs-tools
// hook and init-bottom script, a dracut module, systemd units), described in
// docs/dist.md. Its tests check those files with the tools that read them
// (sh -n, systemd-analyze verify); integration/ boots them.
package dist
