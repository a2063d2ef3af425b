#!/bin/bash
# bench/segments.sh: time `kexec-measured inspect` against lsinitramfs
# (initramfs-tools) and lsinitrd (dracut) on a distro-like initramfs.
#
# Builds, in one run under a temporary directory, an image shaped like a
# Debian/Fedora initrd: an uncompressed early cpio (CPU microcode, dracut's
# early_cpio marker) followed by a compressed main cpio of ~130 MB (many
# small files, some large incompressible ones), in a zstd and a gzip
# variant. Then times, best of $RUNS, side by side:
#   kexec-measured inspect IMAGE
#   kexec-measured inspect --list IMAGE
#   lsinitramfs IMAGE       (from PATH, else unpacked from initramfs-tools-core)
#   lsinitrd IMAGE          (from PATH, else unpacked from dracut-core)
# and the segment map alone (segments.Reader.Next, no decompression) with
# the Go benchmark BenchmarkMapImage on the zstd image.
#
# Targets (issue 4): segment map of the zstd image >= 1 GB/s;
# `inspect --list` >= 10x faster than lsinitramfs.
#
# Environment: MB (compressed main size, default 130), RUNS (default 3),
# KEXEC_MEASURED (use this binary instead of building ./cmd/kexec-measured),
# KEEP=1 keeps the temporary directory.
# Needs: go, cpio, zstd, gzip, dpkg-deb and apt-get download (for the
# unpacked tools), bash, awk.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
MB=${MB:-130}
RUNS=${RUNS:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/segments-bench.XXXXXX")
if [[ ${KEEP:-} != 1 ]]; then
	trap 'rm -rf "$work"' EXIT
else
	echo "keeping $work"
fi

for t in go cpio zstd gzip awk; do
	command -v "$t" >/dev/null || { echo "segments.sh: $t not found" >&2; exit 2; }
done

bin=${KEXEC_MEASURED:-}
if [[ -z $bin ]]; then
	bin=$work/kexec-measured
	(cd "$repo" && go build -o "$bin" ./cmd/kexec-measured)
fi
if ! "$bin" inspect --help >/dev/null 2>&1; then
	echo "segments.sh: $bin has no inspect subcommand" >&2
	exit 2
fi

# unpack_deb PACKAGE: unpack a Debian package (without installing it) and
# print the directory.
unpack_deb() {
	local dir=$work/deb-$1
	mkdir -p "$dir"
	(cd "$dir" && apt-get download "$1" >/dev/null 2>&1) || { echo "segments.sh: apt-get download $1 failed" >&2; return 1; }
	dpkg-deb -x "$dir"/"$1"_*.deb "$dir/root"
	echo "$dir/root"
}

if command -v lsinitramfs >/dev/null; then
	lsinitramfs=(lsinitramfs)
else
	itc=$(unpack_deb initramfs-tools-core)
	# lsinitramfs runs unmkinitramfs from PATH.
	lsinitramfs=(env PATH="$itc/usr/bin:$PATH" "$itc/usr/bin/lsinitramfs")
fi
if command -v lsinitrd >/dev/null; then
	lsinitrd=(lsinitrd)
else
	dc=$(unpack_deb dracut-core)
	lsinitrd=(env dracutbasedir="$dc/usr/lib/dracut" "$dc/usr/bin/lsinitrd")
fi

echo "== building the image trees (main archive ~${MB} MiB compressed)"
(cd "$repo" && go run ./bench/segments/mktree -out "$work/tree" -mb "$MB")
mkcpio() { (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 --reproducible); }
mkcpio "$work/tree/early" >"$work/early.cpio"
mkcpio "$work/tree/main" >"$work/main.cpio"
rm -rf "$work/tree"
# As mkinitramfs does: the early cpio, then the compressed main archive.
zstd -q -T0 -9 -c "$work/main.cpio" >"$work/main.zst"
gzip -n -6 -c "$work/main.cpio" >"$work/main.gz"
cat "$work/early.cpio" "$work/main.zst" >"$work/initrd-zstd.img"
cat "$work/early.cpio" "$work/main.gz" >"$work/initrd-gzip.img"
rm -f "$work/main.zst" "$work/main.gz"
printf '   early cpio %d bytes, main cpio %d bytes\n' "$(stat -c %s "$work/early.cpio")" "$(stat -c %s "$work/main.cpio")"

# best CMD...: run CMD $RUNS times (output discarded) and print the best
# wall-clock time in seconds.
best() {
	local b="" s e t
	for ((i = 0; i < RUNS; i++)); do
		s=$(date +%s.%N)
		"$@" >/dev/null 2>&1 || { echo "segments.sh: failed: $*" >&2; exit 1; }
		e=$(date +%s.%N)
		t=$(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f", e - s }')
		if [[ -z $b ]] || awk -v t="$t" -v b="$b" 'BEGIN { exit !(t < b) }'; then b=$t; fi
	done
	echo "$b"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

for kind in zstd gzip; do
	img=$work/initrd-$kind.img
	size=$(stat -c %s "$img")
	echo
	echo "== $kind image: $size bytes"
	# Sanity: every tool sees the same number of entries.
	n_ours=$("$bin" inspect --json "$img" | awk -F'"entries":' '{ for (i = 2; i <= NF; i++) { split($i, a, ","); n += a[1] } } END { print n }')
	n_lsi=$("${lsinitramfs[@]}" "$img" | grep -vc '^\.$' || true)
	n_lsd=$("${lsinitrd[@]}" "$img" 2>/dev/null | grep -cE '^[-dlcbps][rwx-]{9}' || true)
	echo "   entries: inspect $n_ours, lsinitramfs $n_lsi lines, lsinitrd $n_lsd lines"
	"$bin" inspect "$img" | sed 's/^/   /'
	t_ins=$(best "$bin" inspect "$img")
	t_list=$(best "$bin" inspect --list "$img")
	t_lsi=$(best "${lsinitramfs[@]}" "$img")
	t_lsd=$(best "${lsinitrd[@]}" "$img")
	printf '   %-32s %8s s\n' "kexec-measured inspect" "$t_ins" "kexec-measured inspect --list" "$t_list" \
		"lsinitramfs" "$t_lsi" "lsinitrd" "$t_lsd"
	echo "   ratios: lsinitramfs / inspect --list = $(ratio "$t_lsi" "$t_list")x," \
		"lsinitrd / inspect --list = $(ratio "$t_lsd" "$t_list")x," \
		"lsinitramfs / inspect = $(ratio "$t_lsi" "$t_ins")x"
done

echo
echo "== segment map without decompressing (zstd image, BenchmarkMapImage)"
(cd "$repo" && SEGMENTS_BENCH_IMAGE=$work/initrd-zstd.img go test -run '^$' -bench '^BenchmarkMapImage$' -benchtime 20x ./segments) |
	awk '/^BenchmarkMapImage/ { printf "   %s: %s MB/s (%s ns/op)\n", $1, $(NF-1), $3 }'
