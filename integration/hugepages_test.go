//go:build integration

package integration

import (
	"strconv"
	"testing"
)

// thpFileAllocs prints the guest's count of huge pages allocated for files
// (shmem included) as "km thp TAG N".
const thpFileAllocs = `km thp "$1" "$(awk '$1 == "thp_file_alloc" { print $2 }' /proc/vmstat)"`

// TestHugePageMemfds loads TestMainScenario's components with the guest's
// shmem huge pages allowed (shmem_enabled "always"; with "always" or
// "within_size" on the host, bench/hash.sh meets issue 14's goals,
// docs/measurement.md): the load's memfds are then made of 2 MiB pages
// (the guest's thp_file_alloc count grows by the load), and all that
// TestMainScenario checks still holds with them: the seals,
// kexec_file_load, PCR 9 in every bank against the log and the host's
// files, what the second kernel sees.
func TestHugePageMemfds(t *testing.T) {
	e := getEnv(t, true)
	comps := mainComponents(t, e)
	r := kexecRun{
		Components: comps,
		Prepare:    "thp() { " + thpFileAllocs + "; }\necho always > /sys/kernel/mm/transparent_hugepage/shmem_enabled\nthp before",
		Load:       loadCmd("-l", comps, ""),
		Extra:      "thp after",
		Exec:       "kexec-measured -e",
		Items:      componentItems(t, e, comps, stage2Cmdline),
	}
	res := r.do(t, e)
	count := func(tag string) int {
		m := res.Console.find("thp", tag)
		if len(m) != 3 {
			t.Fatalf("no thp_file_alloc count %q from the guest", tag)
		}
		n, err := strconv.Atoi(m[2])
		if err != nil {
			t.Fatalf("thp_file_alloc %s: %q is not a number", tag, m[2])
		}
		return n
	}
	before, after := count("before"), count("after")
	t.Logf("huge pages allocated for files during the load: %d (the kernel alone is %d KiB)", after-before, len(readFile(t, e.Kernel))>>10)
	if after-before < 1 {
		t.Errorf("thp_file_alloc went from %d to %d: the load's memfds got no huge page", before, after)
	}
}
