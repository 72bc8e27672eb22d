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
for mode in passthrough hybrid queue; do
	# The rig's Markdown table: "| workload | direct plain | direct tls | subrelay | ... |"
	grep -E '^\| *\(?[abcd]' "$out/$mode.txt" | sed "s/^/$mode /" || echo "$mode: no table (see above)"
done
