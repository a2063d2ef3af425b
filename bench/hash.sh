#!/usr/bin/env bash
# Hashing speed of a measured load against the machine's floor: openssl
# hashing the same files, one process per bank, all banks in parallel.
#
# On the same three components (16, 112 and 384 MiB of random bytes, 512
# MiB in all, in page cache), in one run, PAIRS times (default 7), each
# pair run back to back (the order alternating from pair to pair):
#
#   two banks:  kexec-measured --dry-run --banks=sha1,sha256 -l K --initrd a --initrd b --initrd c
#          vs   openssl dgst -sha1 a b c & openssl dgst -sha256 a b c & wait
#   four banks: kexec-measured --dry-run --banks=sha1,sha256,sha384,sha512 ...
#          vs   the four openssl processes in parallel
#
# and prints each pair's wall and CPU times (user + system) and their
# ratios, then the medians of the per-pair ratios (the goal, issue 14: wall
# at most 1.10 for both). Pairing cancels some of the noise of a shared
# machine: both commands of a pair see about the same load. On a machine
# whose cores are oversubscribed by other work the wall ratio says little
# (the scheduler shares the cores by threads, and ours has one more than
# openssl's processes): the CPU ratio then tells what the load costs. Then one run of each under /usr/bin/time (user,
# system, peak RSS: the memfd's pages are the only copy of the input, so
# the peak RSS stays under input + 32 MiB), and the Go benchmarks of the
# copy-and-digest pipeline (BenchmarkPipeline: also the copy alone,
# banks=0, which is what a load must do that openssl does not, and
# close-ms/op, the freeing at the end of a load that runs after the
# hashing), and of the load (BenchmarkLoadFiles, with the Go heap
# allocated per load).
#
# Usage: bench/hash.sh   (from anywhere; needs go, openssl, GNU time, bc)
# Environment: PAIRS (default 7), KEEP=1 keeps the temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
PAIRS=${PAIRS:-7}
work=$(mktemp -d "${TMPDIR:-/tmp}/kexec-measured-bench.XXXXXX")
if [ "${KEEP:-}" = 1 ]; then
	echo "keeping $work"
else
	trap 'rm -rf "$work"' EXIT
fi

echo "building kexec-measured (CGO_ENABLED=0)"
CGO_ENABLED=0 go build -o "$work/kexec-measured" ./cmd/kexec-measured

echo "writing components: 16 MiB, 112 MiB, 384 MiB of random bytes"
head -c $((16 << 20)) /dev/urandom >"$work/a"
head -c $((112 << 20)) /dev/urandom >"$work/b"
head -c $((384 << 20)) /dev/urandom >"$work/c"
printf 'MZ-pretend-kernel' >"$work/vmlinuz"
cat "$work/a" "$work/b" "$work/c" >/dev/null # into page cache
files=("$work/a" "$work/b" "$work/c")
total_mib=512

km() { # km BANKS
	"$work/kexec-measured" --dry-run --banks="$1" -l "$work/vmlinuz" \
		--initrd "$work/a" --initrd "$work/b" --initrd "$work/c" >/dev/null
}

ossl() { # ossl BANK...: one openssl process per bank, in parallel
	local pids=() b
	for b in "$@"; do
		openssl dgst "-$b" "${files[@]}" >/dev/null &
		pids+=($!)
	done
	wait "${pids[@]}"
}

# measure CMD...: runs CMD once under GNU time, prints "wall cpu" in
# seconds (wall from date, nanoseconds; cpu: user + system of CMD and its
# children).
measure() {
	local s e u y
	s=$(date +%s.%N)
	/usr/bin/time -f "%U %S" -o "$work/cpu" bash -c "$(declare -f km ossl); work=$work; files=(${files[*]}); $*"
	e=$(date +%s.%N)
	read -r u y <"$work/cpu"
	echo "$(echo "$e - $s" | bc -l) $(echo "$u + $y" | bc -l)"
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# pairs LABEL BANKS: PAIRS pairs of (kexec-measured, openssl) on BANKS.
pairs() {
	local label=$1 banks=$2 i k o walls=() cpus=()
	echo
	echo "$label: kexec-measured --dry-run --banks=$banks  vs  openssl dgst, one process per bank, in parallel"
	printf '%5s %22s %22s %14s\n' pair "kexec-measured wall/cpu" "openssl wall/cpu" "ratio wall/cpu"
	km "$banks" # warm-up
	for i in $(seq "$PAIRS"); do
		if ((i % 2)); then
			k=$(measure km "$banks")
			o=$(measure ossl "${banks//,/ }")
		else
			o=$(measure ossl "${banks//,/ }")
			k=$(measure km "$banks")
		fi
		read -r kw kc <<<"$k"
		read -r ow oc <<<"$o"
		walls+=("$(echo "$kw / $ow" | bc -l)")
		cpus+=("$(echo "$kc / $oc" | bc -l)")
		printf '%5d %12.3f s %6.2f s %12.3f s %6.2f s %6.3fx %6.3fx\n' "$i" "$kw" "$kc" "$ow" "$oc" "${walls[-1]}" "${cpus[-1]}"
	done
	printf '%s: median ratio, wall %.3fx, cpu %.3fx, over %d pairs (goal: wall at most 1.10x)\n' "$label" \
		"$(printf '%s\n' "${walls[@]}" | median)" "$(printf '%s\n' "${cpus[@]}" | median)" "$PAIRS"
}

echo
echo "$total_mib MiB in 3 components, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load average $(cut -d' ' -f1-3 /proc/loadavg)"
# The memfds' page size follows the host's policy for shmem (4 KiB pages
# with "never", the default; larger folios with "within_size" or "always"):
# it decides most of what the copy costs (docs/measurement.md).
echo "shmem huge pages (/sys/kernel/mm/transparent_hugepage/shmem_enabled): $(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null || echo unknown)"
pairs "two banks" sha1,sha256
pairs "four banks" sha1,sha256,sha384,sha512

echo
echo "one run each under /usr/bin/time (wall s, user s, system s, peak RSS MiB):"
for banks in sha1,sha256 sha1,sha256,sha384,sha512; do
	/usr/bin/time -f "%e %U %S %M" -o "$work/time" "$work/kexec-measured" --dry-run --banks="$banks" \
		-l "$work/vmlinuz" --initrd "$work/a" --initrd "$work/b" --initrd "$work/c" >/dev/null
	read -r e u s m <"$work/time"
	printf '  kexec-measured --banks=%-28s %6.2f %6.2f %6.2f %6d (input %d MiB + %d MiB)\n' \
		"$banks" "$e" "$u" "$s" $((m >> 10)) "$total_mib" $(((m >> 10) - total_mib))
	# shellcheck disable=SC2086
	/usr/bin/time -f "%e %U %S %M" -o "$work/time" bash -c "$(declare -f ossl); files=(${files[*]}); ossl ${banks//,/ }"
	read -r e u s m <"$work/time"
	printf '  openssl, one per bank: %-33s %6.2f %6.2f %6.2f %6d\n' "$banks" "$e" "$u" "$s" $((m >> 10))
done

echo
echo "Go benchmarks: the copy-and-digest pipeline over the same files, and a"
echo "whole dry-run load with the Go heap it allocates (go test -bench):"
KEXEC_MEASURED_BENCH_FILES="$work/a:$work/b:$work/c" \
	go test -run '^$' -bench 'BenchmarkPipeline|BenchmarkLoadFiles|BenchmarkBankParallelism' -benchtime 3x ./loader |
	grep -E '^Benchmark'
