#!/bin/bash
# contrib/bench/burst.sh [SUBRELAYD]: a burst of CLIENTS (default 6,000)
# local clients that each say EHLO and MAIL FROM and then wait, in
# passthrough (DELIVERY=... for another mode), against the rig's sink.
# Prints the daemon's RSS before, at the peak and after the clients
# left, the most sessions the sink saw at once (max_connections caps
# them), and how long a normal client took to get one message relayed
# during the burst. Uses ../shared/bench (or $SUBRELAY_BENCH) and
# python3; writes under a temp dir.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bench=${SUBRELAY_BENCH:-$top/../shared/bench}
subrelayd=${1:-$top/build/werror/subrelayd}
clients=${CLIENTS:-6000}
delivery=${DELIVERY:-passthrough}
[ -x "$subrelayd" ] || { echo "burst.sh: no subrelayd at $subrelayd (build first, or pass its path)" >&2; exit 2; }
[ -f "$bench/env.sh" ] || { echo "burst.sh: benchmark rig not found at $bench (set SUBRELAY_BENCH)" >&2; exit 2; }

export BENCH_RUN
BENCH_RUN=$(mktemp -d "${TMPDIR:-/tmp}/subrelay-burst.XXXXXX")
# shellcheck source=/dev/null
. "$bench/env.sh"
# shellcheck source=contrib/bench/common.sh
. "$here/common.sh"
start_sink burst.sh
port=${PORT:-2901}
relay_config "$RUN/relay.ini" "$port" "$delivery" "$RUN" "$SINK_STARTTLS_PORT/starttls" \
	"max_clients = $((clients + 100))"
relay_start "$subrelayd" "$RUN/relay.ini" "$RUN/relay.log"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$relay_pid/status"; }
sink_conns() { ss -Htn state established "( sport = :$SINK_STARTTLS_PORT )" | wc -l; }

before=$(rss_kb)
python3 - "$port" "$clients" "$relay_pid" "$SINK_STARTTLS_PORT" <<'EOF' >"$RUN/burst.txt"
import asyncio, subprocess, sys, time
port, n, pid, sink_port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]

def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def sink_sessions():
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{sink_port} )"],
                         capture_output=True, text=True).stdout
    return len(out.splitlines())

async def reply(r):
    while True:
        line = await r.readline()
        if not line or line[3:4] != b"-":
            return line

async def held(i, release):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    await reply(r)
    w.write(b"EHLO burst\r\n"); await reply(r)
    w.write(f"MAIL FROM:<burst{i}@example.com>\r\n".encode())
    await release.wait()
    w.close()

async def normal():
    t = time.monotonic()
    r, w = await asyncio.open_connection("127.0.0.1", port)
    await reply(r)
    for cmd in ("EHLO normal", "MAIL FROM:<normal@example.com>", "RCPT TO:<to@example.net>", "DATA",
                "Subject: during the burst\r\n\r\nhello\r\n."):
        w.write(cmd.encode() + b"\r\n")
        line = await reply(r)
        if line[:1] not in (b"2", b"3"):
            break
    w.close()
    return time.monotonic() - t, line.decode().strip()

async def main():
    release = asyncio.Event()
    tasks = [asyncio.create_task(held(i, release)) for i in range(n)]
    await asyncio.sleep(3)
    peak, sessions = rss(), sink_sessions()
    took, verdict = await normal()
    peak, sessions = max(peak, rss()), max(sessions, sink_sessions())
    release.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(f"peak_rss_kb={peak} sink_sessions={sessions} normal_client_s={took:.3f} normal_reply={verdict!r}")

asyncio.run(main())
EOF
sleep "${SETTLE:-5}"
after=$(rss_kb)
echo "delivery=$delivery clients=$clients rss_before_kb=$before $(cat "$RUN/burst.txt") rss_after_kb=$after"
