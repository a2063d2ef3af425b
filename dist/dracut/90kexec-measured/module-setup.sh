# dracut module (sourced by dracut, which runs bash): put kexec-measured
# into the initramfs and import the measurement log that a measured kexec
# handed over (docs/dist.md).
# Installed as /usr/lib/dracut/modules.d/90kexec-measured/.
#
# With systemd in the initramfs, the unit kexec-measured-import.service runs
# the import before systemd-pcrphase-initrd.service measures "enter-initrd";
# without systemd, the pre-pivot hook runs it before switch_root, which moves
# /run into the new root.

# called by dracut: include the module whenever the binary is installed.
check() {
	require_binaries /usr/sbin/kexec-measured || return 1
	return 0
}

# called by dracut
depends() {
	return 0
}

# called by dracut
install() {
	inst_binary /usr/sbin/kexec-measured
	if dracut_module_included "systemd"; then
		# The unit comes from the system (dist/systemd/ in the source tree).
		inst_simple "$systemdsystemunitdir/kexec-measured-import.service"
		$SYSTEMCTL -q --root "$initdir" enable kexec-measured-import.service
	else
		inst_hook pre-pivot 90 "$moddir/kexec-measured-import.sh"
	fi
}
