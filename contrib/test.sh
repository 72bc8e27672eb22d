#!/bin/bash
# contrib/test.sh: the whole test suite on a fresh Debian 12 machine.
#
# Installs the build and test packages when missing, builds subrelay
# twice (warnings as errors; then AddressSanitizer + UBSan), runs the
# suite (C unit tests and Tcl/expect tests) against both builds, checks
# `make distcheck`, runs each fuzz target for 30 s (FUZZ_SECONDS), and
# ends with one line: "N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

bash contrib/packages.sh test

# Our builds are out of tree (build/werror, build/sanitize), which automake
# refuses while the source tree itself is configured. The README's build
# command builds in build/release; an in-tree `./configure` by hand is
# cleaned first, saying so, rather than failing.
if [ -f config.status ]; then
	echo "the source tree is configured in place; running 'make distclean' first"
	make -s distclean >/dev/null 2>&1 || rm -f config.status
fi

autoreconf -fi >/dev/null 2>&1 || autoreconf -fi

build() {
	local dir=$1; shift
	mkdir -p "$dir"
	(cd "$dir" && "$top/configure" -q "$@" && make -s -j2 && make -s -j2 check TESTS=) >"$dir.log" 2>&1 ||
		{ cat "$dir.log"; echo "build in $dir failed"; exit 1; }
}
build build/werror --enable-werror
build build/sanitize --enable-werror --enable-sanitizers

(cd build/werror && make -s distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror) >build/distcheck.log 2>&1 ||
	{ tail -50 build/distcheck.log; echo "make distcheck failed (full log: build/distcheck.log)"; distcheck_failed=1; }

# A small quarantine: the suite measures the daemon's memory, and ASan's
# default 256 MB of quarantined frees would read as growth.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
passed=0 failed=${distcheck_failed:-0} skipped=0
for b in werror sanitize; do
	echo "== suite on build/$b"
	# tests/install/package.test builds the .deb (minutes) and installs it
	# on this machine: once is enough, with the werror build's run.
	package_test=0
	[ "$b" = werror ] && package_test=1
	SUBRELAY_PACKAGE_TEST=$package_test tclsh tests/run.tcl --builddir "build/$b" "$@" | tee "build/suite-$b.log" || true
	summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "build/suite-$b.log" | tail -n 1 | tr -d ',')
	if [ -z "$summary" ]; then
		echo "FAIL the suite on build/$b ended without its summary line"
		failed=$((failed + 1))
		continue
	fi
	read -r p _ f _ s _ <<<"$summary"
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
done

# The fuzz targets, 30 s each (tests/fuzz/run.sh; README "Fuzzing"): one
# "ok/FAIL fuzz/NAME" line per target, counted like the suite's tests.
echo "== fuzz targets (build/fuzz)"
bash tests/fuzz/run.sh "${FUZZ_SECONDS:-30}" | tee build/fuzz.log || true
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' build/fuzz.log | tail -n 1 | tr -d ',')
if [ -z "$summary" ]; then
	echo "FAIL fuzz (tests/fuzz/run.sh ended without its summary line)"
	failed=$((failed + 1))
else
	read -r p _ f _ s _ <<<"$summary"
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
