#!/usr/bin/env bash
# The real load path in the QEMU guest of the integration tests, before and
# after a change: the demo's kernel and three initrd components (those of
# TestMainScenario) loaded by this tree's kexec-measured and by the one
# built from BEFORE (a commit; default 5770cbe, the last one before the
# pipelined copy and digests of issue 14), in turns in the same boot, each
# as a dry run (up to where kexec_file_load would be called) and as a real
# measured load (TPM extends, log, kexec_file_load), timed by the guest's
# clock (/proc/uptime, 10 ms), ROUNDS times (default 3), the order
# alternating. This tree's binary runs with and without --no-handoff
# (BEFORE has no handoff). Prints the median and every time per variant
# (TestGuestLoadTiming).
#
# Usage: bench/guest.sh [BEFORE]   (runs integration/setup first; needs
# what the integration tests need). Environment: ROUNDS (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
before=${1:-5770cbe}
work=$(mktemp -d "${TMPDIR:-/tmp}/kexec-measured-guest.XXXXXX")
trap 'rm -rf "$work"' EXIT

integration/setup >/dev/null
echo "building kexec-measured at $before (CGO_ENABLED=0)"
mkdir "$work/src"
git archive "$before" | tar -x -C "$work/src"
(cd "$work/src" && CGO_ENABLED=0 go build -o "$work/kexec-measured-before" ./cmd/kexec-measured)

echo "$(nproc) host cores, load average $(cut -d' ' -f1-3 /proc/loadavg); guest: TCG or KVM as the tests pick, 1 vCPU"
KEXEC_MEASURED_GUEST_TIMING=${ROUNDS:-3} KEXEC_MEASURED_BEFORE="$work/kexec-measured-before" \
	go test -tags integration -count=1 -timeout 60m -run '^TestGuestLoadTiming$' -v ./integration |
	grep -E 'timing |accelerator|^(---|ok|FAIL|PASS)'
