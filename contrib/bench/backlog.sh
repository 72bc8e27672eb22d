#!/bin/bash
# contrib/bench/backlog.sh [SUBRELAYD]: draining a large queue. MSGS
# (default 20,000) messages of 1 KiB are accepted while no provider is
# configured (delivery held), then a reload adds the rig's sink and the
# whole backlog is due at once, max_connections (8) at a time: this is
# where a scheduler that rescans the queue for each start shows.
# Prints the time to drain and the rate, and the daemon's CPU while
# draining. Uses ../shared/bench (or $SUBRELAY_BENCH); writes under a
# temp dir.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bench=${SUBRELAY_BENCH:-$top/../shared/bench}
subrelayd=${1:-$top/build/werror/subrelayd}
msgs=${MSGS:-20000}
[ -x "$subrelayd" ] || { echo "backlog.sh: no subrelayd at $subrelayd (build first, or pass its path)" >&2; exit 2; }
[ -f "$bench/env.sh" ] || { echo "backlog.sh: benchmark rig not found at $bench (set SUBRELAY_BENCH)" >&2; exit 2; }

export BENCH_RUN
BENCH_RUN=$(mktemp -d "${TMPDIR:-/tmp}/subrelay-backlog.XXXXXX")
# shellcheck source=/dev/null
. "$bench/env.sh"
# shellcheck source=contrib/bench/common.sh
. "$here/common.sh"
start_sink backlog.sh
port=${PORT:-2900}

# Held first: the same file without the providers line.
relay_config "$RUN/relay.ini" "$port" queue "$RUN" "$SINK_STARTTLS_PORT/starttls"
sed '/^providers = /d' "$RUN/relay.ini" >"$RUN/held.ini"
cp "$RUN/relay.ini" "$RUN/deliver.ini"
cp "$RUN/held.ini" "$RUN/relay.ini"
relay_start "$subrelayd" "$RUN/relay.ini" "$RUN/relay.log"
"$BIN/smtpload" -p "$port" -s 32 -m "$msgs" -r 10 -l 1024 >/dev/null

sink_msgs() { sed -n 's/.*msgs=\([0-9]*\).*/\1/p' "$SINK_STATS" 2>/dev/null | tail -1; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$relay_pid/stat"; }
before=$(sink_msgs)
before=${before:-0}
ticks=$(cpu_ticks)
cp "$RUN/deliver.ini" "$RUN/relay.ini"
start=$(date +%s.%N)
kill -HUP "$relay_pid"
while [ "$(( $(sink_msgs) - before ))" -lt "$msgs" ]; do
	sleep 0.05
	kill -0 "$relay_pid" 2>/dev/null || { echo "backlog.sh: subrelayd died; log:"; cat "$RUN/relay.log"; exit 1; }
done
end=$(date +%s.%N)
cpu=$(( $(cpu_ticks) - ticks ))
hz=$(getconf CLK_TCK)
echo "| backlog of $msgs x 1 KiB, then a provider | drain time | delivered msg/s | relay CPU while draining |"
echo "|---|---|---|---|"
echo "$start $end $msgs $cpu $hz" | awk '{ d = $2 - $1; printf "| subrelay | %.1f s | %.0f | %.1f s |\n", d, $3 / d, $4 / $5 }'
