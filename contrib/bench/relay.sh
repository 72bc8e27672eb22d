#!/bin/bash
# contrib/bench/relay.sh [SUBRELAYD] [run.py options]: the shared rig's table
# (../shared/bench, or $SUBRELAY_BENCH) for subrelay next to the direct
# baselines of the same repetitions: (a) 2,000 x 4 KiB, one message per
# session, 32 parallel; (b) the same, 10 per session; (c) 200 x 1 MiB, 8
# parallel; (d) idle sessions held; relay CPU per message. Plain SMTP in,
# STARTTLS + AUTH out, delivery = passthrough (DELIVERY=queue for queue
# mode). WORKERS=N sets relay.workers; RELAY_EXTRA="key = value" adds one
# [relay] line (e.g. "add_missing_headers = no"). Default: --reps 3
# --workloads abcd.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bench=${SUBRELAY_BENCH:-$top/../shared/bench}
subrelayd=$top/build/werror/subrelayd
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then subrelayd=$1; shift; fi
[ -x "$subrelayd" ] || { echo "relay.sh: no subrelayd at $subrelayd (build first, or pass its path)" >&2; exit 2; }
[ -f "$bench/run.sh" ] || { echo "relay.sh: benchmark rig not found at $bench (set SUBRELAY_BENCH)" >&2; exit 2; }
[ $# -gt 0 ] || set -- --reps 3 --workloads abcd

# shellcheck source=/dev/null
. "$bench/env.sh"
# shellcheck source=contrib/bench/common.sh
. "$here/common.sh"
bench_build
ulimit -n "$(ulimit -Hn)"
port=${PORT:-2600}
work=$(mktemp -d "${TMPDIR:-/tmp}/subrelay-relay.XXXXXX")
trap 'kill "${relay_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
relay_config "$work/relay.ini" "$port" "${DELIVERY:-passthrough}" "$work" "$SINK_STARTTLS_PORT/starttls" \
	"max_clients = 20000" "workers = ${WORKERS:-1}" ${RELAY_EXTRA:+"$RELAY_EXTRA"}
relay_start "$subrelayd" "$work/relay.ini" "$work/relay.log"
"$bench/run.sh" "$port" subrelay --pid "$relay_pid" "$@"
