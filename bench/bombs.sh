#!/bin/bash
# bench/bombs.sh: wall time, CPU time and peak RSS of `kexec-measured
# inspect` on the hostile images of issue 13, built here with the real
# compressors: 10 GiB of zeros in gzip, zstd, lz4 and lzop (1 GiB for
# bzip2, lzma and xz, which compress it to under 200 KB: the walk stops at
# the same budget), 10,000 concatenated zstd frames, 10,000 xz streams,
# 100,000 gzip members, 1,000,000 cpio entries (--list and --list --json),
# a zstd frame asking for a 256 MiB window. Each line: case, wall seconds,
# user+sys CPU seconds, peak RSS (KiB), exit status, and the limit that cut
# the walk short, if one did.
#
# Goal (issue 13): every case in at most 10 s and 256 MiB RSS.
#
# Environment: KEXEC_MEASURED (use this binary instead of building
# ./cmd/kexec-measured), WORK (keep the images in this directory and reuse
# them on the next run), ARGS (extra inspect options, e.g. --time-limit=0 to
# see the full cost of each budget).
# Needs: go, gzip, zstd, lz4, lzop, bzip2, xz, lzma, awk,
# /usr/bin/time (Debian package time).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-}
if [[ -z $work ]]; then
	work=$(mktemp -d "${TMPDIR:-/tmp}/bombs.XXXXXX")
	trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
for t in go gzip zstd lz4 lzop bzip2 xz lzma awk /usr/bin/time; do
	command -v "$t" >/dev/null || { echo "bombs.sh: $t not found" >&2; exit 2; }
done
bin=${KEXEC_MEASURED:-}
if [[ -z $bin ]]; then
	bin=$work/kexec-measured
	(cd "$repo" && go build -o "$bin" ./cmd/kexec-measured)
fi

# build NAME COMMAND...: write $work/NAME with COMMAND's output, once.
build() {
	local name=$1
	shift
	[[ -s $work/$name ]] && return
	"$@" >"$work/$name.tmp"
	mv "$work/$name.tmp" "$work/$name"
}
# repeat FILE N: FILE's bytes N times.
repeat() {
	local f=$1 n=$2 size
	size=$(stat -c %s "$f")
	cp "$f" "$work/rep.tmp"
	while (($(stat -c %s "$work/rep.tmp") < n * size)); do
		cat "$work/rep.tmp" "$work/rep.tmp" >"$work/rep2.tmp"
		mv "$work/rep2.tmp" "$work/rep.tmp"
	done
	head -c $((n * size)) "$work/rep.tmp"
	rm -f "$work/rep.tmp"
}
# newc N: a newc cpio of N empty regular files and a trailer.
newc() {
	awk -v n="$1" 'function hdr(ino, mode, name) {
		printf "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s%c", ino, mode, 0, 0, 1, 0, 0, 0, 0, 0, 0, length(name) + 1, 0, name, 0
		for (p = (110 + length(name) + 1) % 4; p % 4; p++) printf "%c", 0
	}
	BEGIN { for (i = 1; i <= n; i++) hdr(i, 33188, sprintf("f/%07d", i)); hdr(0, 0, "TRAILER!!!") }'
}

build zeros.gz sh -c 'head -c 10G /dev/zero | gzip -1'
build zeros.zst sh -c 'head -c 10G /dev/zero | zstd -q -1'
build zeros.lz4 sh -c 'head -c 10G /dev/zero | lz4 -l -q'
build zeros.lzo sh -c 'head -c 10G /dev/zero | lzop -1'
build zeros1g.bz2 sh -c 'head -c 1G /dev/zero | bzip2 -1'
build zeros1g.lzma sh -c 'head -c 1G /dev/zero | lzma -0'
build zeros1g.xz sh -c 'head -c 1G /dev/zero | xz -0 -T1 --check=crc32'
build member.cpio newc 1
build member.zst zstd -q -c "$work/member.cpio"
build member.xz xz -c --check=crc32 "$work/member.cpio"
build member.gz gzip -n -c "$work/member.cpio"
build frames.zst repeat "$work/member.zst" 10000
build streams.xz repeat "$work/member.xz" 10000
build members.gz repeat "$work/member.gz" 100000
build entries.cpio newc 1000000
build window.zst sh -c 'printf "070701" | zstd -q --long=28 -c'

run() {
	local name=$1
	shift
	/usr/bin/time -o "$work/time" -f '%e %U %S %M %x' "$bin" inspect ${ARGS:-} "$@" >/dev/null 2>"$work/stderr" || true
	read -r wall user sys rss rc < <(tail -1 "$work/time")
	limit=$(grep -o 'limit [A-Z][A-Za-z]*\|MaxDuration\|MaxSegments\|MaxEntries' "$work/stderr" | head -1 || true)
	printf '%-28s %6.2f s %6.2f s cpu %7d KiB exit %s %s\n' "$name" "$wall" "$(awk "BEGIN { print $user + $sys }")" "$rss" "$rc" "$limit"
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for f in zeros.gz zeros.zst zeros.lz4 zeros.lzo zeros1g.bz2 zeros1g.lzma zeros1g.xz frames.zst streams.xz members.gz window.zst; do
	run "$f" "$work/$f"
done
run "entries.cpio --list" --list "$work/entries.cpio"
run "entries.cpio --list --json" --list --json "$work/entries.cpio"
