package bootentry

import "os"

// Partition type GUIDs of the Discoverable Partitions Specification.
const (
	espTypeGUID      = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	xbootldrTypeGUID = "bc13c2ff-59e6-4262-a352-b275fd6f7172"
)

// runEntriesDir is where another boot loader may pass its entries to
// systemd's tools (bootspec.c boot_config_load_auto()).
const runEntriesDir = "/run/boot-loader-entries"

// Find returns the Config bootctl would use, with EFIVars set to
// DefaultEFIVars. espPath and bootPath (--esp-path, --boot-path; else
// $SYSTEMD_ESP_PATH, $SYSTEMD_XBOOTLDR_PATH) are taken as given, without
// bootctl's checks of the file system. Without both, and when
// /run/boot-loader-entries/ exists, that directory is the ESP and there is
// no XBOOTLDR. Otherwise the ESP is the first of /efi, /boot and /boot/efi
// that is the root of a vfat file system whose partition type (as udev
// recorded it) is the ESP's, and XBOOTLDR is /boot when it is the root of
// a file system on another device with the XBOOTLDR partition type
// (find-esp.c). Errors: ErrNoESP when neither is found.
func Find(espPath, bootPath string, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if espPath == "" {
		espPath = getenv("SYSTEMD_ESP_PATH")
	}
	if bootPath == "" {
		bootPath = getenv("SYSTEMD_XBOOTLDR_PATH")
	}
	c := Config{ESP: espPath, XBOOTLDR: bootPath, EFIVars: DefaultEFIVars}
	if espPath == "" && bootPath == "" {
		if fi, err := os.Stat(runEntriesDir); err == nil && fi.IsDir() {
			c.ESP = runEntriesDir
			return c, nil
		}
	}
	if c.ESP == "" {
		for _, p := range []string{"/efi", "/boot", "/boot/efi"} {
			if isPartition(p, espTypeGUID, true) {
				c.ESP = p
				break
			}
		}
	}
	if c.XBOOTLDR == "" && isPartition("/boot", xbootldrTypeGUID, false) && !sameDevice("/boot", c.ESP) {
		c.XBOOTLDR = "/boot"
	}
	if c.ESP == "" && c.XBOOTLDR == "" {
		return c, ErrNoESP
	}
	return c, nil
}

// ErrNoESP means neither an ESP nor an XBOOTLDR partition was found.
var ErrNoESP = errNoESP{}

type errNoESP struct{}

func (errNoESP) Error() string {
	return "bootentry: no EFI System Partition (/efi, /boot, /boot/efi) or XBOOTLDR partition (/boot) found; name one with --esp-path or --boot-path"
}
