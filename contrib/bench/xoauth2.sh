#!/bin/bash
# contrib/bench/xoauth2.sh [SUBRELAYD] [run.py options]: passthrough with
# auth = plain next to auth = xoauth2, on the same sink, each with the
# direct baselines of its own repetition. Default: --reps 3 --workloads a.
#
# The rig's sink takes only PLAIN and LOGIN, so our oauth-sink.c (same ports,
# same stats file, also XOAUTH2) stands in for it under a private BENCH_RUN,
# for both runs and for the baselines; the rig's run.sh and run.py are used
# unchanged. The token endpoint is a small HTTPS server (python3, which the
# rig needs anyway) that counts its requests: the table ends with the token
# requests of each run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bench=${SUBRELAY_BENCH:-$top/../shared/bench}
subrelayd=$top/build/werror/subrelayd
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then subrelayd=$1; shift; fi
[ -x "$subrelayd" ] || { echo "xoauth2.sh: no subrelayd at $subrelayd (build first, or pass its path)" >&2; exit 2; }
[ -f "$bench/run.sh" ] || { echo "xoauth2.sh: benchmark rig not found at $bench (set SUBRELAY_BENCH)" >&2; exit 2; }
[ $# -gt 0 ] || set -- --reps 3 --workloads a

# A private run directory and ports of our own, so a rig sink left running
# elsewhere is neither used nor disturbed.
work=$(mktemp -d "${TMPDIR:-/tmp}/subrelay-xoauth2.XXXXXX")
export BENCH_RUN=$work/run SINK_STARTTLS_PORT=${SINK_STARTTLS_PORT:-31587} SINK_PLAIN_PORT=${SINK_PLAIN_PORT:-31525}
export SINK_TLS_PORT=${SINK_TLS_PORT:-31465}
# shellcheck source=/dev/null
. "$bench/env.sh"
# shellcheck source=contrib/bench/common.sh
. "$here/common.sh"
token=bench-access-token-$RANDOM$RANDOM
cleanup() {
	for pid in ${relay_pid:-} ${token_pid:-} "$(cat "$SINK_PID" 2>/dev/null)"; do
		[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
bench_build
cc -O2 -Wall -o "$BIN/oauth-sink" "$here/oauth-sink.c" -lssl -lcrypto
ulimit -n "$(ulimit -Hn)"
"$BIN/oauth-sink" -s "$SINK_STARTTLS_PORT" -p "$SINK_PLAIN_PORT" -c "$SINK_CERT" -k "$SINK_KEY" \
	-u "$SINK_USER" -P "$SINK_PASS" -B "$token" -S "$SINK_STATS" 2>"$RUN/sink.log" &
echo $! >"$SINK_PID"

# The token endpoint: every POST gets the token, valid for an hour.
python3 - "$SINK_CERT" "$SINK_KEY" "$token" "$work/token.port" "$work/token.requests" <<'EOF' 2>"$work/token.log" &
import http.server, json, ssl, sys
cert, key, token, port_file, count_file = sys.argv[1:]
requests = 0
class Token(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global requests
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"access_token": token, "token_type": "Bearer", "expires_in": 3600}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        requests += 1
        open(count_file, "w").write(f"{requests}\n")
server = http.server.HTTPServer(("127.0.0.1", 0), Token)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(cert, key)
server.socket = tls.wrap_socket(server.socket, server_side=True)
open(port_file, "w").write(f"{server.server_address[1]}\n")
server.serve_forever()
EOF
token_pid=$!
for _ in $(seq 100); do [ -s "$work/token.port" ] && [ -s "$SINK_STATS" ] && break; sleep 0.1; done
[ -s "$work/token.port" ] || { cat "$work/token.log" >&2; echo "xoauth2.sh: the token endpoint did not start" >&2; exit 1; }
[ -s "$SINK_STATS" ] || { cat "$RUN/sink.log" >&2; echo "xoauth2.sh: oauth-sink did not start" >&2; exit 1; }
token_url=https://127.0.0.1:$(cat "$work/token.port")/token

port=${PORT:-2601}
reps=3
args=()
while [ $# -gt 0 ]; do
	case $1 in
	--reps) reps=$2; shift 2 ;;
	*) args+=("$1"); shift ;;
	esac
done
[ ${#args[@]} -gt 0 ] || args=(--workloads a)
for auth in plain xoauth2; do
	config=$work/$auth.ini
	mkdir -p "$work/$auth"
	relay_config "$config" "$port" passthrough "$work/$auth" "$SINK_STARTTLS_PORT/starttls" \
		"max_clients = 20000" "workers = ${WORKERS:-1}"
	if [ "$auth" = xoauth2 ]; then
		# The token replaces the provider's password.
		sed -i '/^password = /d' "$config"
		printf 'auth = xoauth2\noauth2_grant = client_credentials\noauth2_token_url = %s\n' "$token_url" >>"$config"
		printf 'oauth2_client_id = bench\noauth2_client_secret = bench-secret\noauth2_ca_file = %s\n' "$SINK_CERT" >>"$config"
	else
		printf 'auth = plain\n' >>"$config"
	fi
done

# The two relays take turns within each repetition, so a machine that gets
# busier or quieter during the run weighs on both alike.
for rep in $(seq "$reps"); do
	for auth in plain xoauth2; do
		echo "== repetition $rep, auth = $auth"
		relay_start "$subrelayd" "$work/$auth.ini" "$work/$auth.log"
		"$bench/run.sh" "$port" "subrelay-$auth" --reps 1 "${args[@]}" --out "$work/$auth-$rep.json" | grep '^rep'
		kill "$relay_pid"
		wait "$relay_pid" 2>/dev/null || true
		relay_pid=
	done
done

echo
echo "== summary: medians of $reps; ratio to direct plain of the same repetition"
python3 - "$work" "$reps" "$(cat "$work/token.requests" 2>/dev/null || echo 0)" <<'EOF'
import json, statistics, sys
work, reps, token_requests = sys.argv[1], int(sys.argv[2]), sys.argv[3]
print("| auth | wl | msgs/s e2e | ratio to direct-plain | relay CPU ms/msg | upstream sessions | token requests, all runs |")
print("|---|---|---|---|---|---|---|")
for auth in ("plain", "xoauth2"):
    rows = {}
    for rep in range(1, reps + 1):
        runs = json.load(open(f"{work}/{auth}-{rep}.json"))["runs"]
        base = {r["workload"]: r["e2e_rate"] for r in runs if r["target"] == "direct-plain"}
        for r in runs:
            if not r["target"].startswith("subrelay-") or "e2e_rate" not in r:
                continue
            row = rows.setdefault(r["workload"], dict(rate=[], ratio=[], cpu=[], sessions=[]))
            row["rate"].append(r["e2e_rate"])
            row["cpu"].append(r["relay_cpu_ms_per_msg"])
            row["sessions"].append(r["upstream_sessions"])
            if base.get(r["workload"]):
                row["ratio"].append(r["e2e_rate"] / base[r["workload"]])
    tokens = f"{token_requests} for {reps} starts" if auth == "xoauth2" else "-"
    for wl, row in sorted(rows.items()):
        m = {k: statistics.median(v) if v else float("nan") for k, v in row.items()}
        print(f"| {auth} | {wl} | {m['rate']:.0f} | {m['ratio']:.3f} | {m['cpu']:.2f} | {m['sessions']:.0f} | {tokens} |")
EOF
