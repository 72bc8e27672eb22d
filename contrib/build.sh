#!/bin/bash
# contrib/build.sh [CONFIGURE-ARGS...]: installs the build packages when
# missing and builds subrelay in build/release (out of the source tree,
# so that contrib/test.sh's own builds can share the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
bash contrib/packages.sh build
autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
mkdir -p build/release
cd build/release
../../configure -q "$@"
make -s -j2
echo "built build/release/subrelayd and build/release/subrelayctl"
