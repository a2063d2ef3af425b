package main

import (
	"fmt"
	"strings"
	"testing"
)

// steps summarises what options ask for, in kexec-tools' terms.
type steps struct {
	load, exec, shutdown, sync, ifdown, unload, status, panic bool
}

func stepsOf(o *options) steps {
	return steps{o.doLoad, o.doExec, o.doShutdown, o.doSync, o.doIfdown, o.doUnload, o.doStatus, o.panic}
}

func TestParseArgs(t *testing.T) {
	loadOnly := steps{load: true, sync: true}
	tests := []struct {
		name    string
		args    []string
		steps   steps
		kernel  string
		initrds []string
		append  string
		check   func(*options) string // extra checks; returns a complaint
		wantErr string
	}{
		// systemd's forms (systemctl kexec, systemd-kexec).
		{name: "systemd --load", args: []string{"--load", "/boot/vmlinuz", "--append", "root=/dev/sda1 ro", "--initrd", "/boot/initrd.img"},
			steps: loadOnly, kernel: "/boot/vmlinuz", initrds: []string{"/boot/initrd.img"}, append: "root=/dev/sda1 ro"},
		{name: "systemd --load with = forms", args: []string{"--load", "/boot/vmlinuz", "--append=root=/dev/sda1 ro", "--initrd=/boot/initrd.img"},
			steps: loadOnly, kernel: "/boot/vmlinuz", initrds: []string{"/boot/initrd.img"}, append: "root=/dev/sda1 ro"},
		{name: "systemd --load without initrd", args: []string{"--load", "/boot/vmlinuz", "--append", ""},
			steps: loadOnly, kernel: "/boot/vmlinuz"},
		{name: "systemd -e", args: []string{"-e"}, steps: steps{exec: true, sync: true, ifdown: true}},
		// Every mode.
		{name: "-l", args: []string{"-l", "vmlinuz"}, steps: loadOnly, kernel: "vmlinuz"},
		{name: "-p", args: []string{"-p", "vmlinuz"}, steps: steps{load: true, panic: true}, kernel: "vmlinuz"},
		{name: "-u", args: []string{"-u"}, steps: steps{unload: true}},
		{name: "-p -u unloads the panic kernel", args: []string{"-p", "-u"}, steps: steps{unload: true, panic: true}},
		{name: "-e", args: []string{"--exec"}, steps: steps{exec: true, sync: true, ifdown: true}},
		{name: "-f", args: []string{"-f", "vmlinuz"}, steps: steps{load: true, exec: true, sync: true, ifdown: true}, kernel: "vmlinuz"},
		{name: "no mode loads then shuts down", args: []string{"vmlinuz"}, steps: steps{load: true, shutdown: true, sync: true}, kernel: "vmlinuz"},
		{name: "-S alone asks about the panic kernel", args: []string{"-S"}, steps: steps{status: true},
			check: func(o *options) string {
				if !request(o).Panic {
					return "not asking about the panic kernel"
				}
				return ""
			}},
		{name: "-l -S asks about the normal kernel", args: []string{"-l", "-S"}, steps: steps{status: true},
			check: func(o *options) string {
				if request(o).Panic {
					return "asking about the panic kernel"
				}
				return ""
			}},
		{name: "-p -S asks about the panic kernel", args: []string{"-p", "-S"}, steps: steps{status: true, panic: true}},
		// The last mode option wins.
		{name: "-l K -e only executes", args: []string{"-l", "vmlinuz", "-e"}, steps: steps{exec: true, sync: true, ifdown: true}, kernel: "vmlinuz"},
		{name: "-e -l only loads", args: []string{"-e", "-l", "vmlinuz"}, steps: steps{load: true, sync: true, ifdown: true}, kernel: "vmlinuz"},
		{name: "-u -l unloads then loads", args: []string{"-u", "-l", "vmlinuz"}, steps: steps{load: true, unload: true}, kernel: "vmlinuz"},
		{name: "-f -x -y", args: []string{"-f", "-x", "-y", "vmlinuz"}, steps: steps{load: true, exec: true}, kernel: "vmlinuz"},
		{name: "-e -x keeps interfaces up", args: []string{"-e", "-x"}, steps: steps{exec: true, sync: true}},
		{name: "grouped short options", args: []string{"-lsd", "vmlinuz"}, steps: loadOnly, kernel: "vmlinuz",
			check: func(o *options) string {
				if !o.debug {
					return "no debug"
				}
				return ""
			}},
		// Option forms.
		{name: "repeated --initrd and --ramdisk add components in order", args: []string{"-l", "K", "--initrd", "a", "--ramdisk=b", "--initrd=c"},
			steps: loadOnly, kernel: "K", initrds: []string{"a", "b", "c"}},
		{name: "kernel after options and between them", args: []string{"--initrd", "a", "K", "--initrd", "b", "-l"},
			steps: loadOnly, kernel: "K", initrds: []string{"a", "b"}},
		{name: "--command-line", args: []string{"-l", "K", "--command-line=quiet splash"}, steps: loadOnly, kernel: "K", append: "quiet splash"},
		{name: "last --append wins", args: []string{"-l", "K", "--append", "one", "--append", "two"}, steps: loadOnly, kernel: "K", append: "two"},
		{name: "unique prefix of a long option", args: []string{"--load-p", "K", "--app=x", "--ramd", "a"}, steps: steps{load: true, panic: true}, kernel: "K", append: "x", initrds: []string{"a"}},
		{name: "-- ends options", args: []string{"-l", "--", "-weird-name"}, steps: loadOnly, kernel: "-weird-name"},
		{name: "-t with attached value", args: []string{"-l", "-tbzImage", "K"}, steps: loadOnly, kernel: "K",
			check: func(o *options) string {
				if o.kernelType != "bzImage" {
					return "type " + o.kernelType
				}
				return ""
			}},
		{name: "-t with separate value", args: []string{"-t", "bzImage", "-l", "K"}, steps: loadOnly, kernel: "K"},
		{name: "-s and -a are accepted", args: []string{"-s", "-a", "-l", "K"}, steps: loadOnly, kernel: "K"},
		{name: "--reuse-cmdline", args: []string{"-l", "K", "--reuse-cmdline", "--append", "x"}, steps: loadOnly, kernel: "K", append: "x",
			check: func(o *options) string {
				if !o.reuseCmdline {
					return "reuse-cmdline not set"
				}
				return ""
			}},
		// Our options.
		{name: "measurement options", args: []string{"-l", "K", "--tpm=swtpm:127.0.0.1:2321", "--require-tpm", "--pcr", "12", "--log=/tmp/x.log", "--split-initrd", "--dry-run", "--json", "--initrd-out", "out", "--banks=sha1,sha256"},
			steps: loadOnly, kernel: "K",
			check: func(o *options) string {
				if o.tpm != "swtpm:127.0.0.1:2321" || !o.requireTPM || o.pcr != 12 || o.logPath != "/tmp/x.log" || !o.split || !o.dryRun || !o.json || o.initrdOut != "out" || o.banks != "sha1,sha256" {
					return "an option was lost"
				}
				return ""
			}},
		{name: "--max-events", args: []string{"-l", "K", "--max-events=5000"}, steps: loadOnly, kernel: "K",
			check: func(o *options) string {
				if o.maxEvents != 5000 {
					return fmt.Sprintf("maxEvents %d", o.maxEvents)
				}
				return ""
			}},
		{name: "--max-events 0", args: []string{"-l", "K", "--max-events", "0"}, wantErr: "at least 1"},
		{name: "--max-events not a number", args: []string{"-l", "K", "--max-events=many"}, wantErr: "--max-events=many"},
		{name: "defaults", args: []string{"-l", "K"}, steps: loadOnly, kernel: "K",
			check: func(o *options) string {
				if o.tpm != "auto" || o.pcr != 9 || o.banks != "sha256" || o.requireTPM {
					return "wrong defaults"
				}
				return ""
			}},
		{name: "-h", args: []string{"-h"}, steps: steps{load: true, shutdown: true, sync: true}, check: func(o *options) string {
			if !o.help {
				return "no help"
			}
			return ""
		}},
		{name: "--version with a mode", args: []string{"-e", "--version"}, steps: steps{exec: true, sync: true, ifdown: true}},
		// Errors.
		{name: "-c is refused", args: []string{"-c", "-l", "K"}, wantErr: "needs kexec_file_load"},
		{name: "--kexec-syscall is refused", args: []string{"--kexec-syscall", "K"}, wantErr: "needs kexec_file_load"},
		{name: "-c then -s is fine", args: []string{"-c", "-s", "-l", "K"}, steps: loadOnly, kernel: "K"},
		{name: "unknown long option", args: []string{"--frobnicate", "-l", "K"}, wantErr: "unrecognized option '--frobnicate'"},
		{name: "unknown short option", args: []string{"-Z"}, wantErr: "invalid option -- 'Z'"},
		{name: "ambiguous prefix", args: []string{"--lo", "K"}, wantErr: "is ambiguous"},
		{name: "missing value", args: []string{"-l", "K", "--initrd"}, wantErr: "requires an argument"},
		{name: "value to a flag", args: []string{"--load=K"}, wantErr: "doesn't allow an argument"},
		{name: "load without kernel", args: []string{"-l"}, wantErr: "no kernel specified"},
		{name: "no arguments at all", args: nil, wantErr: "no kernel specified"},
		{name: "two kernels", args: []string{"-l", "K1", "K2"}, wantErr: `unexpected argument "K2"`},
		{name: "bad pcr", args: []string{"-l", "K", "--pcr=24"}, wantErr: "0 to 23"},
		{name: "initrd-out without load", args: []string{"-e", "--initrd-out=x"}, wantErr: "needs a load"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseArgs(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseArgs(%q) error %v, want %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseArgs(%q): %v", tt.args, err)
			}
			if got := stepsOf(o); got != tt.steps {
				t.Errorf("steps %+v, want %+v", got, tt.steps)
			}
			if o.kernel != tt.kernel || o.appendLine != tt.append || strings.Join(o.initrds, ",") != strings.Join(tt.initrds, ",") {
				t.Errorf("kernel %q initrds %q append %q; want %q %q %q", o.kernel, o.initrds, o.appendLine, tt.kernel, tt.initrds, tt.append)
			}
			if tt.check != nil {
				if msg := tt.check(o); msg != "" {
					t.Error(msg)
				}
			}
		})
	}
}
