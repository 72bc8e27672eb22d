#!/bin/bash
# contrib/bench/profile.sh [SUBRELAYD]: where the relay's CPU goes in the
# rig's workload (a) -- 2,000 x 4 KiB, one message per client session, 32
# parallel, passthrough to the sink's STARTTLS + AUTH port.
#
# Three runs against a fresh relay each: one under `perf stat` (task-clock,
# context switches, page faults of the relay; this VM has no hardware
# counters), one under `strace -c -f` (system calls by type), one counting
# the upstream sessions the sink saw. Prints figures per message. strace
# slows the relay a lot: its run counts calls, it does not time them.
# Needs perf and strace; uses ../shared/bench (or $SUBRELAY_BENCH) and
# writes under a temp dir. MSGS=N changes the message count.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bench=${SUBRELAY_BENCH:-$top/../shared/bench}
subrelayd=${1:-$top/build/werror/subrelayd}
msgs=${MSGS:-2000}
[ -x "$subrelayd" ] || { echo "profile.sh: no subrelayd at $subrelayd (build first, or pass its path)" >&2; exit 2; }
[ -f "$bench/env.sh" ] || { echo "profile.sh: benchmark rig not found at $bench (set SUBRELAY_BENCH)" >&2; exit 2; }
for tool in perf strace; do
	command -v "$tool" >/dev/null || { echo "profile.sh: $tool is not installed" >&2; exit 2; }
done

export BENCH_RUN
BENCH_RUN=$(mktemp -d "${TMPDIR:-/tmp}/subrelay-profile.XXXXXX")
# shellcheck source=/dev/null
. "$bench/env.sh"
# shellcheck source=contrib/bench/common.sh
. "$here/common.sh"
start_sink profile.sh
port=${PORT:-2800}
relay_config "$RUN/relay.ini" "$port" passthrough "$RUN" "$SINK_STARTTLS_PORT/starttls" "max_clients = 20000" \
	${RELAY_EXTRA:+"$RELAY_EXTRA"}

sink_field() { sed -n "s/.*$1=\([0-9]*\).*/\1/p" "$SINK_STATS" 2>/dev/null | tail -1; }
load() { "$BIN/smtpload" -p "$port" -s 32 -m "$msgs" -r 1 -l 4096 >/dev/null; }
per_msg() { awk -v n="$1" -v m="$msgs" 'BEGIN { printf "%.3f", n / m }'; }
stop_relay() { kill "$relay_pid"; wait "$relay_pid" 2>/dev/null || true; }

# perf stat: CPU of the relay (all threads) while the load runs.
relay_start "$subrelayd" "$RUN/relay.ini" "$RUN/relay.log"
perf stat -x, -e task-clock,context-switches,page-faults -p "$relay_pid" -o "$RUN/perf.csv" &
perf_pid=$!
sleep 0.3
handshakes_before=$(sink_field tls_handshakes)
load
sleep 0.5 # the sink writes its counters now and then
handshakes_after=$(sink_field tls_handshakes)
kill -INT "$perf_pid"
wait "$perf_pid" 2>/dev/null || true
stop_relay
field() { awk -F, -v e="$1" '$3 == e { print $1 }' "$RUN/perf.csv"; }
echo "| workload (a), $msgs messages | per message |"
echo "|---|---|"
echo "| relay CPU (task-clock) | $(per_msg "$(field task-clock)") ms |"
echo "| context switches | $(per_msg "$(field context-switches)") |"
echo "| page faults | $(per_msg "$(field page-faults)") |"
echo "| upstream TLS handshakes (the sink's count) | $(per_msg $((${handshakes_after:-0} - ${handshakes_before:-0}))) |"

# strace -c: system calls by type.
relay_start "$subrelayd" "$RUN/relay.ini" "$RUN/relay.log"
strace -qq -c -f -o "$RUN/strace.txt" -p "$relay_pid" &
strace_pid=$!
sleep 0.5
load
kill -INT "$strace_pid"
wait "$strace_pid" 2>/dev/null || true
stop_relay
# Columns: % time, seconds, usecs/call, calls, [errors], syscall.
awk -v m="$msgs" '
	$1 ~ /^[0-9.]+$/ && $NF ~ /^[a-z_0-9]+$/ && $NF != "total" {
		errs = (NF == 6) ? $5 : 0
		printf "| %s | %.2f%s |\n", $NF, $4 / m, (errs > 0 ? sprintf(" (%.2f failed)", errs / m) : "")
		total += $4
	}
	END { printf "| all system calls | %.1f |\n", total / m }' "$RUN/strace.txt" |
	{ echo "| system call | per message |"; echo "|---|---|"; cat; }
