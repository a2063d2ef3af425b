#!/usr/bin/env bash
# Hashing speed of a measured load, side by side with the usual tools, on the
# same three components (512 MiB in all, in page cache):
#
#   kexec-measured --dry-run --banks=sha1,sha256  (read into sealed memfds,
#                                                  both banks in parallel)
#   kexec-measured --dry-run --banks=sha256       (one bank: the like-for-like
#                                                  comparison with openssl)
#   openssl dgst -sha256 a b c
#   sha256sum a b c
#   the shell way: cat a b c > blob; sha1sum a b c; sha256sum a b c
#
# Each command runs RUNS times (default 5); the median wall time is shown,
# with MB/s and the ratio to openssl. Then a Go benchmark shows whether two
# hashes run in parallel on this machine's cores (on a VM whose vCPUs share
# a core's SHA unit they do not, and two banks cost twice one), and another
# reports the heap allocated while loading and digesting the same files.
#
# Usage: bench/hash.sh            (from the repository root; needs go, openssl)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
work=$(mktemp -d /tmp/kexec-measured-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "building kexec-measured (CGO_ENABLED=0)"
CGO_ENABLED=0 go build -o "$work/kexec-measured" ./cmd/kexec-measured

echo "writing components: 16 MiB, 112 MiB, 384 MiB of random bytes"
head -c $((16 << 20)) /dev/urandom >"$work/a"
head -c $((112 << 20)) /dev/urandom >"$work/b"
head -c $((384 << 20)) /dev/urandom >"$work/c"
printf 'MZ-pretend-kernel' >"$work/vmlinuz"
cat "$work/a" "$work/b" "$work/c" >/dev/null # into page cache
total=$((512 << 20))

# median_seconds CMD...: runs CMD $RUNS times, prints the median seconds.
median_seconds() {
	local times=()
	for _ in $(seq "$RUNS"); do
		local s e
		s=$(date +%s.%N)
		"$@" >/dev/null
		e=$(date +%s.%N)
		times+=("$(echo "$e - $s" | bc -l)")
	done
	printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

shell_way() {
	cat "$work/a" "$work/b" "$work/c" >"$work/blob"
	sha1sum "$work/a" "$work/b" "$work/c"
	sha256sum "$work/a" "$work/b" "$work/c"
}

km() {
	"$work/kexec-measured" --dry-run --banks="$1" -l "$work/vmlinuz" \
		--initrd "$work/a" --initrd "$work/b" --initrd "$work/c"
}

declare -A secs
names=(kexec-measured km-sha256 openssl sha256sum shell-way)
secs[kexec-measured]=$(median_seconds km sha1,sha256)
secs[km-sha256]=$(median_seconds km sha256)
secs[openssl]=$(median_seconds openssl dgst -sha256 "$work/a" "$work/b" "$work/c")
secs[sha256sum]=$(median_seconds sha256sum "$work/a" "$work/b" "$work/c")
secs[shell-way]=$(median_seconds shell_way)

echo
echo "512 MiB in 3 components, median of $RUNS runs, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
printf '%-40s %8s %9s %12s\n' command seconds MB/s "vs openssl"
for n in "${names[@]}"; do
	label=$n
	case $n in
	kexec-measured) label="kexec-measured --banks=sha1,sha256" ;;
	km-sha256) label="kexec-measured --banks=sha256" ;;
	openssl) label="openssl dgst -sha256" ;;
	shell-way) label="cat > blob; sha1sum; sha256sum" ;;
	esac
	printf '%-40s %8.3f %9.0f %11.2fx\n' "$label" "${secs[$n]}" \
		"$(echo "$total / ${secs[$n]} / 1000000" | bc -l)" \
		"$(echo "${secs[$n]} / ${secs[openssl]}" | bc -l)"
done
printf 'shell way / kexec-measured: %.2fx\n' "$(echo "${secs[shell-way]} / ${secs[kexec-measured]}" | bc -l)"

echo
echo "Do two hashes run in parallel on this machine? Go's sha1 and sha256 over"
echo "64 MiB in memory, one at a time and both at once on two goroutines:"
go test -run '^$' -bench 'BenchmarkBankParallelism' -benchtime 10x ./loader | grep -E '^Benchmark'

echo
echo "Go heap while loading and digesting the same files (go test -bench):"
KEXEC_MEASURED_BENCH_FILES="$work/a:$work/b:$work/c" \
	go test -run '^$' -bench 'BenchmarkLoadFiles' -benchtime 3x ./loader | grep -E 'Benchmark|heap'
