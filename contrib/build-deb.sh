#!/bin/bash
# contrib/build-deb.sh [OUTDIR]: builds the Debian package of the committed
# sources (HEAD) with dpkg-buildpackage, then runs lintian on it.
#
# The top level has no debian/ directory (the source tree stays the same
# for every platform), so the script assembles one: a copy of HEAD from
# `git archive` in a temporary directory, contrib/debian as its debian/.
# Needs the packages of `contrib/packages.sh test` (dpkg-dev, debhelper,
# fakeroot, lintian and the build dependencies). Prints the .deb's path
# as its last line; OUTDIR (default build/deb) receives the .deb and the
# lintian report (lintian.txt). Exit 1 when the build fails or lintian
# reports an error.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
out=$(realpath -m "${1:-build/deb}")
mkdir -p "$out"
rm -f "$out"/subrelay*_*.deb "$out"/subrelay_*.changes "$out"/subrelay_*.buildinfo

work=$(mktemp -d "${TMPDIR:-/tmp}/subrelay-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
version=$(sed -n '1s/^subrelay (\([^)]*\)).*/\1/p' contrib/debian/changelog)
src=$work/subrelay-$version
mkdir "$src"
git -C "$top" archive HEAD | tar -x -C "$src"
cp -r "$src/contrib/debian" "$src/debian"

# dpkg-buildpackage puts the .deb beside the source directory.
(cd "$src" && dpkg-buildpackage -us -uc -b -j2) >"$out/build.log" 2>&1 ||
	{ tail -40 "$out/build.log"; echo "$0: dpkg-buildpackage failed (log: $out/build.log)" >&2; exit 1; }
cp "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$out/"
deb=$(ls "$out"/subrelay_"$version"_*.deb)

# Every tag, down to pedantic and informational ones, in the report; only
# errors fail the build. (As root lintian says it would rather not be:
# that line is no finding.)
lintian --fail-on error --info --display-info --pedantic "$out"/*.changes >"$work/lintian.txt" 2>&1 && ok=1 || ok=0
grep -v '^running with root privileges is not recommended!$' "$work/lintian.txt" >"$out/lintian.txt" || true
cat "$out/lintian.txt"
[ $ok = 1 ] || { echo "$0: lintian reports errors" >&2; exit 1; }
echo "$deb"
