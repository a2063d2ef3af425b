# dracut pre-pivot hook (sourced by dracut's init, so it must not exit):
# import the measurement log that a measured kexec handed over into
# /run/log/systemd/tpm2-measure.log before switch_root moves /run into the
# new root. A cold boot has no handoff: the import prints nothing. A failed
# import must not stop the boot.
if [ -x /usr/sbin/kexec-measured ]; then
	/usr/sbin/kexec-measured log import ||
		warn "kexec-measured: log import failed; earlier boots' records are missing from /run/log/systemd/tpm2-measure.log"
fi
