package main

import (
	"fmt"
	"io"

	"github.com/kexec-measured/kexec-measured/loader"
)

// writeUsage prints kexec(8)'s usage, then our options.
func writeUsage(w io.Writer, name string) {
	fmt.Fprintf(w, `kexec-measured %s: a kexec(8) that measures what it loads
Usage: %s [OPTION]... [kernel]
Options:
 -h, --help           Print this help.
 -v, --version        Print the version of kexec.
 -f, --force          Force an immediate kexec,
                      don't call shutdown.
 -i, --no-checks      Fast reboot, no memory integrity checks (ignored).
 -x, --no-ifdown      Don't bring down network interfaces.
 -y, --no-sync        Don't sync filesystems before kexec.
 -l, --load           Load the new kernel into the
                      current kernel.
 -p, --load-panic     Load the new kernel for use on panic.
 -u, --unload         Unload the current kexec target kernel.
                      If capture kernel is being unloaded
                      specify -p with -u.
 -e, --exec           Execute a currently loaded kernel.
 -t, --type=TYPE      Specify the new kernel is of this type (ignored:
                      kexec_file_load detects the type).
 -s, --kexec-file-syscall
                      Use file based syscall for kexec operation (default).
 -c, --kexec-syscall  Refused: measured loading needs kexec_file_load.
 -a, --kexec-syscall-auto  Same as -s.
 -d, --debug          Enable debugging to help spot a failure
                      (KEXEC_FILE_DEBUG).
 -S, --status         Return 1 if the type (by default crash) is loaded,
                      0 if not (-l -S asks about the normal kernel).
     --initrd=FILE, --ramdisk=FILE
                      Use FILE as an initrd component. May be repeated:
                      the components are concatenated in order, each at a
                      4-byte-aligned offset, and measured one by one.
     --append=STRING  Set the kernel command line to STRING.
     --command-line=STRING  Same as --append.
     --reuse-cmdline  Use the running kernel's command line (without
                      BOOT_IMAGE=, and without crashkernel= for -p),
                      followed by --append.

Measurement options:
     --tpm=auto|none|PATH|swtpm:HOST:PORT
                      The TPM to extend (default auto: /dev/tpmrm0, then
                      /dev/tpm0; without one, load unmeasured with a warning).
     --require-tpm    Refuse to load (exit 1) when there is no TPM.
     --pcr=N          PCR to extend (default 9).
     --log=PATH       Measurement log (default $SYSTEMD_MEASURE_LOG_USERSPACE
                      or /run/log/systemd/tpm2-measure.log).
     --split-initrd   Measure every segment of every initrd component.
     --no-handoff     Do not hand the measurement log over to the loaded
                      kernel (no handoff component, no kexec-handoff event).
     --dry-run        Do everything but the system calls, TPM extends and
                      log writes, and print the plan.
     --json           With --dry-run, print the plan as one JSON object.
     --banks=LIST     Banks to digest with in a dry run without a TPM
                      (default sha256; e.g. sha1,sha256).
     --initrd-out=FILE  Write the concatenated initrd that is loaded to FILE
                      (a regular file or a new one).
     --max-events=N   Refuse a load of more than N events (default %d).

Boot entries (docs/entries.md):
     --entry=ID|default  Load the boot loader entry ID, or the one systemd
                      would boot: its linux, every initrd line as a component,
                      its options as the command line (unless --append or
                      --reuse-cmdline). Instead of a kernel argument.
     --esp-path=DIR   The EFI System Partition (default: as bootctl finds it).
     --boot-path=DIR  The XBOOTLDR partition.
     --uki-profile=N  The profile of a unified kernel image (default 0).
A kernel that is a unified kernel image (a PE with .linux) loads its .linux,
.ucode and .initrd sections and its .cmdline, each measured as its own event.

Subcommands (only when not invoked as kexec):
  kexec-measured inspect [--json] [--list] [--digests=LIST] IMAGE...
  kexec-measured predict LOAD-OPTIONS [--from-zero|--log=PATH|--firmware-log=FILE]
                 [--json|--keylime] [--pcrlock=PATH [--variant=NAME]]

Exit status: 0 success; 1 usage error or refused request (nothing changed);
255 failed load or measurement. With -S: 1 if loaded, 0 if not.
`, version, name, loader.DefaultMaxEvents)
}
