#!/bin/bash
# contrib/bench/queue.sh [SUBRELAYD]: queue mode throughput with the fsync
# discipline on (every 250 is after file + directory fsync).
#
# 2,000 messages of 4 KiB from 32 concurrent clients (the shared rig's
# smtpload) into subrelayd with delivery = queue, relayed to the rig's
# fake provider over STARTTLS + AUTH. Prints the acceptance rate (what the
# clients saw), the end-to-end rate (first connect to the provider's
# receipt of the last message), and the daemon's peak memory (VmHWM).
# Uses ../shared/bench (or $SUBRELAY_BENCH); writes under a temp dir.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bench=${SUBRELAY_BENCH:-$top/../shared/bench}
subrelayd=${1:-${SUBRELAYD:-$top/build/werror/subrelayd}}
msgs=${MSGS:-2000}
[ -x "$subrelayd" ] || { echo "queue.sh: no subrelayd at $subrelayd (build first, or pass its path)" >&2; exit 2; }
[ -f "$bench/env.sh" ] || { echo "queue.sh: benchmark rig not found at $bench (set SUBRELAY_BENCH)" >&2; exit 2; }

export BENCH_RUN
BENCH_RUN=$(mktemp -d "${TMPDIR:-/tmp}/subrelay-queue.XXXXXX")
# shellcheck source=/dev/null
. "$bench/env.sh"
# shellcheck source=contrib/bench/common.sh
. "$here/common.sh"
start_sink queue.sh

port=${PORT:-2700}
relay_config "$RUN/relay.ini" "$port" queue "$RUN" "$SINK_STARTTLS_PORT/starttls"

sink_msgs() { sed -n 's/.*msgs=\([0-9]*\).*/\1/p' "$SINK_STATS" 2>/dev/null || echo 0; }

relay_start "$subrelayd" "$RUN/relay.ini" "$RUN/relay.log"
before=$(sink_msgs)
start=$(date +%s.%N)
load=$("$BIN/smtpload" -p "$port" -s 32 -m "$msgs" -r 1 -l 4096)
while [ "$(( $(sink_msgs) - before ))" -lt "$msgs" ]; do
	sleep 0.02
	kill -0 "$relay_pid" 2>/dev/null || { echo "queue.sh: subrelayd died; log:"; cat "$RUN/relay.log"; exit 1; }
done
end=$(date +%s.%N)
hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$relay_pid/status")
accept=$(echo "$load" | sed -n 's/.*"rate":\([0-9.]*\).*/\1/p')
ok=$(echo "$load" | sed -n 's/.*"msgs_ok":\([0-9]*\).*/\1/p')
e2e=$(echo "$start $end $msgs" | awk '{ printf "%.0f", $3 / ($2 - $1) }')
echo "| queue mode, $msgs x 4 KiB, 32 clients | accepted msg/s | delivered end to end msg/s | acknowledged | peak RSS |"
echo "|---|---|---|---|---|"
echo "| subrelay | $accept | $e2e | $ok | $((hwm / 1024)) MiB |"
