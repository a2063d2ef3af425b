//go:build integration

package integration

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestGuestLoadTiming times loads in the guest: the demo's components
// (TestMainScenario's kernel and three initrd components) loaded by
// kexec-measured, and, when $KEXEC_MEASURED_BEFORE names an older binary,
// by that one too, in turns in the same boot (the order alternating from
// round to round), each load as a dry run (reading, copying and digesting:
// up to where kexec_file_load would be called) and as a real measured load
// (the TPM extends, the log, kexec_file_load), timed by the guest's clock
// around the command. It is a benchmark: bench/guest.sh runs it with
// $KEXEC_MEASURED_GUEST_TIMING set to the number of rounds; without it,
// it is skipped. It fails if any load fails.
func TestGuestLoadTiming(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("KEXEC_MEASURED_GUEST_TIMING"))
	if rounds <= 0 {
		t.Skip("a benchmark, not a check: bench/guest.sh runs it (set KEXEC_MEASURED_GUEST_TIMING to a number of rounds)")
	}
	e := getEnv(t, true)
	comps := mainComponents(t, e)
	files := map[string][]byte{}
	type variant struct{ name, cmd, flags string }
	variants := []variant{
		{"after", "kexec-measured", ""},
		{"after-no-handoff", "kexec-measured", "--no-handoff"},
	}
	if before := os.Getenv("KEXEC_MEASURED_BEFORE"); before != "" {
		files["bin/kexec-measured-before"] = readFile(t, before)
		variants = append([]variant{{"before", "kexec-measured-before", ""}}, variants...)
	}
	load := "-l /stage2/vmlinuz " + initrdArgs(comps) + ` --append "` + stage2Cmdline + `"`
	var s strings.Builder
	s.WriteString("chmod 755 /bin/kexec-measured-before 2>/dev/null\n")
	s.WriteString("now() { cut -d' ' -f1 /proc/uptime; }\n")
	s.WriteString(`timed() { v=$1; kind=$2; i=$3; shift 3; t0=$(now); "$@" >/dev/null 2>/tmp/err; rc=$?; t1=$(now); km timing "$v" "$kind" "$i" "$t0" "$t1" "$rc"; [ $rc = 0 ] || cat /tmp/err; }` + "\n")
	for i := range rounds {
		order := variants
		if i%2 == 1 {
			order = make([]variant, len(variants))
			for j, v := range variants {
				order[len(variants)-1-j] = v
			}
		}
		for _, v := range order {
			fmt.Fprintf(&s, "timed %s dry-run %d %s --dry-run %s %s\n", v.name, i, v.cmd, v.flags, load)
			fmt.Fprintf(&s, "timed %s load %d %s %s %s\n", v.name, i, v.cmd, v.flags, load)
		}
	}
	tpm := startSwtpm(t)
	initrd := stage1{Components: comps, Script: s.String(), Files: files}.build(t, e, t.TempDir())
	c := run(t, e, vmConfig{Initrd: initrd, Cmdline: stage1Cmdline, TPM: tpm, Timeout: time.Duration(rounds*len(variants)) * 3 * time.Minute})
	t.Logf("accelerator: %s", e.Accel)

	took := map[string][]float64{} // "variant kind" → seconds
	for _, m := range c.Markers {
		if len(m) != 7 || m[0] != "timing" {
			continue
		}
		if m[6] != "0" {
			t.Errorf("%s %s, round %s: exit status %s", m[1], m[2], m[3], m[6])
		}
		t0, err0 := strconv.ParseFloat(m[4], 64)
		t1, err1 := strconv.ParseFloat(m[5], 64)
		if err0 != nil || err1 != nil {
			t.Fatalf("timing marker %q: bad times", m)
		}
		took[m[1]+" "+m[2]] = append(took[m[1]+" "+m[2]], t1-t0)
	}
	for _, v := range variants {
		for _, kind := range []string{"dry-run", "load"} {
			d := took[v.name+" "+kind]
			if len(d) != rounds {
				t.Fatalf("%s %s: %d timings, want %d", v.name, kind, len(d), rounds)
			}
			sort.Float64s(d)
			all := make([]string, len(d))
			for i, x := range d {
				all[i] = fmt.Sprintf("%.2f", x)
			}
			t.Logf("timing %-16s %-7s median %6.2f s  (all, sorted: %s)", v.name, kind, d[len(d)/2], strings.Join(all, " "))
		}
	}
}
