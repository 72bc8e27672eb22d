#!/bin/sh
# suite.sh: the automake TESTS entry point; runs the whole Tcl suite
# (tests/run.tcl) with one tclsh. Extra arguments go to run.tcl.
if [ -z "${srcdir:-}" ]; then
	srcdir=$(cd "$(dirname "$0")/.." && pwd)
fi
exec "${TCLSH:-tclsh}" "$srcdir/tests/run.tcl" --builddir "${top_builddir:-.}" "$@"
