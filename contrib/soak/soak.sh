#!/bin/bash
# contrib/soak/soak.sh [BUILDDIR]: the 1,000-kill soak. Clients submit to
# the daemon in queue and then hybrid delivery while it is SIGKILLed at
# random moments and restarted on the same spool; then the queue drains to
# a recording provider and soak.tcl counts what matters: acknowledged but
# missing (must be 0), duplicates, files left in tmp/. One summary line per
# mode ("soak: mode=... acknowledged_but_missing=0 duplicates=...").
#
# Settings (environment): SOAK_KILLS (1000), SOAK_CLIENTS (16, from 8 to 32
# makes sense), SOAK_MODES ("queue hybrid"), SOAK_SEED (20261205),
# SOAK_MAX_LINES (120: messages up to about 8 KB). Needs the test packages
# (contrib/packages.sh test) and a build (default build/werror).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
builddir=${1:-$top/build/werror}
[ -x "$builddir/subrelayd" ] || { echo "soak.sh: no subrelayd in $builddir (build first, or pass the build directory)" >&2; exit 2; }
export SOAK_KILLS=${SOAK_KILLS:-1000} SOAK_CLIENTS=${SOAK_CLIENTS:-16} SOAK_MODES=${SOAK_MODES:-queue hybrid}
export SOAK_SEED=${SOAK_SEED:-20261205} SOAK_MAX_LINES=${SOAK_MAX_LINES:-120}
echo "soak: $SOAK_KILLS kills per mode ($SOAK_MODES), $SOAK_CLIENTS clients, seed $SOAK_SEED"
# The runner's deadline is per test; soak.test sets its own from the kills.
exec tclsh "$top/tests/run.tcl" --builddir "$builddir" "$top/contrib/soak/soak.test"
