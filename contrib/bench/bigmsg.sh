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
# shellcheck source=contrib/bench/common.sh
. "$here/common.sh"
bench_build
"$bench/sink.sh" start >/dev/null
port=${PORT:-2601}
work=$(mktemp -d "${TMPDIR:-/tmp}/subrelay-big.XXXXXX")
trap 'kill "${relay_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
relay_config "$work/relay.ini" "$port" passthrough "$work" "$SINK_STARTTLS_PORT/starttls" \
	"max_message_size = 4G"
relay_start "$subrelayd" "$work/relay.ini" "$work/relay.log"
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
