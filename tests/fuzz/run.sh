#!/bin/bash
# tests/fuzz/run.sh [SECONDS] [TARGET...]: builds the libFuzzer targets
# (build/fuzz, configured --enable-fuzzing CC=clang; FUZZ_BUILDDIR to
# change it) and runs each for SECONDS (default 30) on a copy of its seed
# corpus, tests/fuzz/corpus/TARGET (the repository's corpus is never
# written). TARGET is a name such as smtp_data; default: all of them.
#
# Prints one line per target, "ok fuzz/NAME ..." or "FAIL fuzz/NAME ..."
# with its executions and coverage (libFuzzer's cov: figure) and, for a
# failure, the input that broke it (kept in BUILDDIR/crashes/) and the
# end of libFuzzer's log; then "N passed, N failed, 0 skipped". Exits
# non-zero when any target failed. FUZZ_FLAGS adds libFuzzer flags
# (e.g. FUZZ_FLAGS="-jobs=2 -workers=2" for a long run on two cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
seconds=${1:-30}
[ $# -gt 0 ] && shift
case $seconds in ''|*[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;; esac
all="smtp_parse smtp_data smtp_reply config control metrics spool headers oauth2"
targets=${*:-$all}
for t in $targets; do
	case " $all " in *" $t "*) ;; *) echo "$0: no fuzz target $t (targets: $all)" >&2; exit 2 ;; esac
done

builddir=${FUZZ_BUILDDIR:-build/fuzz}
mkdir -p "$builddir"
builddir=$(cd "$builddir" && pwd)
[ -x configure ] || autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
if [ ! -f "$builddir/Makefile" ]; then
	(cd "$builddir" && "$top/configure" -q --enable-werror --enable-fuzzing CC=clang) >"$builddir/configure.out" 2>&1 ||
		{ cat "$builddir/configure.out"; echo "$0: configure --enable-fuzzing failed"; exit 1; }
fi
(cd "$builddir" && make -s -j2 fuzz) >"$builddir/make.out" 2>&1 ||
	{ tail -40 "$builddir/make.out"; echo "$0: make fuzz failed"; exit 1; }

# Scratch space for the corpus copies and the targets' own files (the
# spool target fsyncs: tmpfs keeps that cheap).
shm=/dev/shm
[ -d $shm ] && [ -w $shm ] || shm=${TMPDIR:-/tmp}
work=$(mktemp -d "$shm/subrelay-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$builddir/crashes"

passed=0 failed=0
for t in $targets; do
	corpus=$work/corpus-$t
	mkdir -p "$corpus" "$work/tmp-$t"
	cp tests/fuzz/corpus/$t/* "$corpus/"
	dict=()
	[ -f tests/fuzz/dict/$t.dict ] && dict=(-dict="tests/fuzz/dict/$t.dict")
	log=$builddir/fuzz-$t.log
	rc=0
	# shellcheck disable=SC2086 # FUZZ_FLAGS is a list of flags
	TMPDIR=$work/tmp-$t "$builddir/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$builddir/crashes/$t-" "${dict[@]}" ${FUZZ_FLAGS:-} \
		"$corpus" </dev/null >"$log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -oE ' cov: [0-9]+' "$log" | tail -1 | tr -dc 0-9)
	stats="execs=${execs:-?} cov=${cov:-?} seconds=$seconds"
	if [ "$rc" = 0 ]; then
		echo "ok fuzz/$t $stats"
		passed=$((passed + 1))
	else
		crash=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
		echo "FAIL fuzz/$t $stats exit=$rc input=${crash:-none} log=$log"
		grep -E 'invariant broken|ERROR: |SUMMARY: |runtime error' "$log" | head -5 | sed 's/^/    /'
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed, 0 skipped"
[ "$failed" = 0 ]
