#!/bin/bash
# contrib/bench/egress.sh [SUBRELAYD]: what a blocked port costs.
#
# Runs in a private network namespace (needs root: `unshare --net`), so
# the nftables rule that DROPs the provider's preferred port never
# touches the host. Uses the shared rig's fake provider and load
# generator (../shared/bench, or $SUBRELAY_BENCH). Two scenarios, same
# relay configuration (ports = 587-like/starttls, 2525-like/starttls):
#   open     nothing blocked
#   dropped  the 587-like port DROPped
# For each, the latency a legacy app sees (connect to the 250 after its
# final dot, as smtpload measures it) for the first message, and the
# median and p99 of the next 100 messages (new session each). Prints a
# Markdown table. Writes only under a temporary directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bench=${SUBRELAY_BENCH:-$top/../shared/bench}
subrelayd=${1:-${SUBRELAYD:-$top/build/werror/subrelayd}}
[ -x "$subrelayd" ] || { echo "egress.sh: no subrelayd at $subrelayd (build first, or pass its path)" >&2; exit 2; }
[ -f "$bench/env.sh" ] || { echo "egress.sh: benchmark rig not found at $bench (set SUBRELAY_BENCH)" >&2; exit 2; }

if [ -z "${SUBRELAY_IN_NETNS:-}" ]; then
	exec env SUBRELAY_IN_NETNS=1 unshare --net "$0" "$subrelayd"
fi
ip link set lo up

export BENCH_RUN
BENCH_RUN=$(mktemp -d "${TMPDIR:-/tmp}/subrelay-egress.XXXXXX")
# shellcheck source=/dev/null
. "$bench/env.sh"
# shellcheck source=contrib/bench/common.sh
. "$here/common.sh"
start_sink egress.sh

port=2600
# The defaults matter here: connect_timeout = 5s, attempt_delay = 300ms.
relay_config "$RUN/relay.ini" "$port" passthrough "$RUN" "$SINK_STARTTLS_PORT/starttls, $SINK_PLAIN_PORT/starttls"

field() { sed -n "s/.*\"$1\":\\([0-9.]*\\).*/\\1/p"; }

run_scenario() {
	local name=$1
	nft delete table inet egress 2>/dev/null || true
	if [ "$name" = dropped ]; then
		nft add table inet egress
		nft add chain inet egress out '{ type filter hook output priority 0 ; }'
		nft add rule inet egress out tcp dport "$SINK_STARTTLS_PORT" drop
	fi
	relay_start "$subrelayd" "$RUN/relay.ini" "$RUN/relay-$name.log"
	local first next
	first=$("$BIN/smtpload" -p $port -s 1 -m 1 -r 1 -l 4096)
	next=$("$BIN/smtpload" -p $port -s 1 -m 100 -r 1 -l 4096)
	kill "$relay_pid"; wait "$relay_pid" 2>/dev/null || true
	printf '| %s | %s | %s | %s |\n' "$name" "$(echo "$first" | field p50_ms)" \
		"$(echo "$next" | field p50_ms)" "$(echo "$next" | field p99_ms)"
}

echo "| scenario | first message (ms) | next 100: p50 (ms) | next 100: p99 (ms) |"
echo "|---|---|---|---|"
run_scenario open
run_scenario dropped
