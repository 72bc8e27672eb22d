#!/bin/bash
# contrib/bench/modes.sh [SUBRELAYD] [run.sh options]: passthrough, hybrid
# and queue delivery side by side on the shared rig (relay.sh once per
# mode), each with the direct baselines of its own repetitions. Prints
# each mode's table of medians and then one summary: rate and ratio to
# direct plain per workload. Default: --reps 3 --workloads abc.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] && [ "${1#-}" = "$1" ] && { subrelayd=$1; shift; } || subrelayd=
[ $# -gt 0 ] || set -- --reps 3 --workloads abc
out=$(mktemp -d "${TMPDIR:-/tmp}/subrelay-modes.XXXXXX")
trap 'rm -rf "$out"' EXIT
for mode in passthrough hybrid queue; do
	echo "== delivery = $mode"
	# shellcheck disable=SC2086
	DELIVERY=$mode bash "$here/relay.sh" $subrelayd "$@" | tee "$out/$mode.txt"
done
echo
echo "== summary (medians; ratio to direct plain of the same repetitions)"
echo "| delivery | wl | msgs/s e2e | ratio to direct-plain | relay CPU ms/msg | peak RSS MB |"
echo "|---|---|---|---|---|---|"
for mode in passthrough hybrid queue; do
	# The rig's rows: | subrelay | WL | rate | ratio | accept | p50 | p99 | cpu | rss | ...
	awk -F'|' -v mode="$mode" '$2 ~ /^ *subrelay *$/ {
		gsub(/ /, "", $3); printf "| %s | %s | %s | %s | %s | %s |\n", mode, $3, $4, $5, $9, $10 }' "$out/$mode.txt"
done
