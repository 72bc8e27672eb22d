#!/bin/bash
# contrib/build.sh [CONFIGURE-ARGS...]: installs the build packages when
# missing and builds subrelay in build/release (out of the source tree,
# so that contrib/test.sh's own builds can share the checkout). The
# system's directories are the defaults (configuration in /etc/subrelay,
# spool in /var/spool/subrelay, control socket in /run/subrelay); later
# arguments override them, e.g. --prefix=/usr or --localstatedir=/srv.
set -euo pipefail
cd "$(dirname "$0")/.."
bash contrib/packages.sh build
autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
mkdir -p build/release
cd build/release
../../configure -q --sysconfdir=/etc --localstatedir=/var --runstatedir=/run "$@"
make -s -j2
echo "built build/release/subrelayd and build/release/subrelayctl"
