# common.sh: what the benchmark scripts share (sourced after the rig's env.sh,
# which defines the sink's ports, credentials and certificate).

# relay_config FILE PORT DELIVERY DIR PORTS [RELAY_LINE ...]: a configuration
# relaying to the sink on PORTS (e.g. "30587/starttls"), spool and control
# socket under DIR, extra [relay] lines after that.
relay_config() {
	local file=$1 port=$2 delivery=$3 dir=$4 ports=$5
	shift 5
	{
		printf '[relay]\nlisten = 127.0.0.1:%s\ndelivery = %s\nspool = %s/spool\ncontrol = %s/control.sock\n' \
			"$port" "$delivery" "$dir" "$dir"
		printf 'providers = sink\nlog_level = warn\n'
		for line in "$@"; do printf '%s\n' "$line"; done
		printf '[provider sink]\nhost = 127.0.0.1\nports = %s\nusername = %s\npassword = %s\ntls_ca_file = %s\n' \
			"$ports" "$SINK_USER" "$SINK_PASS" "$SINK_CERT"
	} >"$file"
}

# relay_start SUBRELAYD CONFIG LOG: starts the daemon, sets relay_pid, waits
# until it listens.
relay_start() {
	"$1" -c "$2" 2>"$3" &
	relay_pid=$!
	# The listening line is at level info, which a bench config may silence:
	# a connection to the configured port tells as well.
	local port
	port=$(sed -n 's/^listen = .*:\([0-9]*\)$/\1/p' "$2" | head -n 1)
	for _ in $(seq 50); do
		grep -q 'listening address' "$3" && return
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
		sleep 0.1
	done
	cat "$3" >&2
	echo "the relay did not start listening (its log is above)" >&2
	exit 1
}

# start_sink SCRIPT: builds the rig's programs, starts its sink (saying why
# not if it cannot) and arranges for the sink, the relay (relay_pid) and
# $BENCH_RUN to go when the script exits. Needs $bench, the rig's folder.
start_sink() {
	trap '"$bench/sink.sh" stop >/dev/null 2>&1 || true; kill "${relay_pid:-0}" 2>/dev/null || true; rm -rf "$BENCH_RUN"' EXIT
	bench_build
	"$bench/sink.sh" start >/dev/null 2>&1 || {
		echo "$1: the rig's sink did not start: are its ports ($SINK_STARTTLS_PORT...) held by a sink left running?" \
			"(stop it: BENCH_RUN=DIR $bench/sink.sh stop)" >&2
		exit 1
	}
	ulimit -n "$(ulimit -Hn)"
}
