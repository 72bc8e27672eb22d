#!/bin/bash
# contrib/bench/bigmsg.sh [SUBRELAYD] [SIZE]: one very large message (default
# 1 GiB) through passthrough to the shared rig's fake provider (STARTTLS +
# AUTH); prints the time and the daemon's peak resident memory before and
# after, which must stay flat whatever the message size.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bench=${SUBRELAY_BENCH:-$top/../shared/bench}
subrelayd=${1:-$top/build/werror/subrelayd}
size=${2:-1073741824}
[ -x "$subrelayd" ] || { echo "bigmsg.sh: no subrelayd at $subrelayd (build first, or pass its path)" >&2; exit 2; }
[ -f "$bench/env.sh" ] || { echo "bigmsg.sh: benchmark rig not found at $bench (set SUBRELAY_BENCH)" >&2; exit 2; }

# shellcheck source=/dev/null
. "$bench/env.sh"
bench_build
"$bench/sink.sh" start >/dev/null
port=${PORT:-2601}
work=$(mktemp -d "${TMPDIR:-/tmp}/subrelay-big.XXXXXX")
trap 'kill "${relay_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
cat >"$work/relay.ini" <<INI
[relay]
listen = 127.0.0.1:$port
delivery = passthrough
control =
max_message_size = 4G
providers = sink
log_level = warn
[provider sink]
host = 127.0.0.1
ports = $SINK_STARTTLS_PORT/starttls
username = $SINK_USER
password = $SINK_PASS
tls_ca_file = $SINK_CERT
INI
"$subrelayd" -c "$work/relay.ini" 2>"$work/relay.log" &
relay_pid=$!
for _ in $(seq 50); do grep -q 'listening address' "$work/relay.log" && break; sleep 0.1; done
hwm() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$relay_pid/status"; }
"$BIN/smtpload" -p "$port" -s 1 -m 1 -r 1 -l 1048576 >/dev/null   # warm up: buffers and TLS exist
before=$(hwm)
start=$(date +%s.%N)
out=$("$BIN/smtpload" -p "$port" -s 1 -m 1 -r 1 -l "$size")
end=$(date +%s.%N)
after=$(hwm)
ok=$(echo "$out" | sed -n 's/.*"msgs_ok":\([0-9]*\).*/\1/p')
echo "| message | delivered | seconds | peak RSS before | peak RSS after | growth |"
echo "|---|---|---|---|---|---|"
echo "$start $end" | awk -v s="$size" -v ok="$ok" -v b="$before" -v a="$after" \
	'{ printf "| %d MiB | %s | %.1f | %d kB | %d kB | %d kB |\n", s / 1048576, ok == 1 ? "yes" : "NO", $2 - $1, b, a, a - b }'
