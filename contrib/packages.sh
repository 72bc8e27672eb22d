#!/bin/bash
# contrib/packages.sh build|test: installs the Debian 12 packages that
# building (build) or building and testing (test) subrelay needs, when
# any is missing. The one list of them; the README quotes it.
#
# On a new container the package lists are empty, so a missing package
# always runs `apt-get update` first. Needs root (or sudo).
set -euo pipefail

build_packages="gcc make autoconf automake libtool pkg-config
                libev-dev libssl-dev libinih-dev libc-ares-dev libsystemd-dev
                libcurl4-openssl-dev libjansson-dev libcrypt-dev"
# strace delays a worker's fsyncs in one test; systemd gives systemd-notify
# to the readiness test; iproute2 and nftables build the firewalled
# network namespaces of tests/netns; php-cli's mail() drives
# subrelay-sendmail in tests/sendmail; haproxy runs contrib/haproxy's
# example in tests/contrib. tests/install lints the man pages (mandoc,
# man-db) and builds, lints and installs the Debian package (dpkg-dev
# debhelper fakeroot lintian, and git for contrib/build-deb.sh); clang and
# libclang-rt-14-dev (its libFuzzer) build the fuzz targets of tests/fuzz.
test_packages="openssl tcl expect tcl-tls swaks iproute2 nftables systemd strace php-cli haproxy
               mandoc man-db dpkg-dev debhelper fakeroot lintian git clang libclang-rt-14-dev"

case "${1:-}" in
build) packages=$build_packages ;;
test) packages="$build_packages $test_packages" ;;
*) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

missing=$(for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"
done)
[ -n "$missing" ] || exit 0

sudo=
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null || { echo "$0: not root and no sudo; install as root: $missing" | tr '\n' ' ' >&2; echo >&2; exit 1; }
	sudo=sudo
fi
echo "installing:" $missing
$sudo apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
