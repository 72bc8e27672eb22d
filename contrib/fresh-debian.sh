#!/bin/bash
# contrib/fresh-debian.sh [build-test|test-build|both] [WORKDIR]
#
# Checks the README's promise on the machine it names: makes a minimal
# Debian 12 root (debootstrap --variant=minbase bookworm), empties its
# package lists as in a new container where `apt-get update` never ran,
# clones this checkout (its committed HEAD) into it, and runs the two
# commands of the README's "Set up on a fresh Debian 12 machine" section,
# copied from the README itself, in a chroot with /proc, /sys and /dev
# mounted: the build-and-run command (its daemon must greet on
# 127.0.0.1:2525, then it is stopped) and the test command (must end
# with "N passed, 0 failed"). "both" (the default) does it in each order,
# each on a root of its own. Needs root, debootstrap and the Debian
# archive; takes 30-60 minutes. Exit 0 when every run passed.
#
# MIRROR=http://deb.debian.org/debian by default. WORKDIR (default
# /var/tmp/subrelay-fresh) keeps a pristine root between runs
# (bookworm.tar); delete it to start from a new debootstrap.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
order=${1:-both}
work=${2:-/var/tmp/subrelay-fresh}
mirror=${MIRROR:-http://deb.debian.org/debian}

case $order in build-test | test-build | both) ;; *)
	echo "usage: $0 [build-test|test-build|both] [WORKDIR]" >&2
	exit 2
	;;
esac
[ "$(id -u)" = 0 ] || { echo "$0: needs root (debootstrap, chroot, mounts)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "$0: needs debootstrap (apt-get install debootstrap)" >&2; exit 2; }

# The README's commands: the fenced sh blocks of its set-up section,
# the first builds and runs, the second tests.
readme_block() {
	awk -v want="$1" '
		/^## / { in_section = ($0 ~ /^## Set up on a fresh Debian 12 machine/) }
		in_section && /^```sh/ { n++; inside = 1; next }
		inside && /^```/ { inside = 0; next }
		inside && n == want { print }
	' README.md
}
build_cmd=$(readme_block 1)
test_cmd=$(readme_block 2)
[ -n "$build_cmd" ] && [ -n "$test_cmd" ] || { echo "$0: README set-up commands not found" >&2; exit 2; }
echo "build-and-run command: $build_cmd"
echo "test command:          $test_cmd"

mkdir -p "$work"
pristine=$work/bookworm.tar
if [ ! -f "$pristine" ]; then
	echo "== debootstrap --variant=minbase bookworm (once; kept in $pristine)"
	rm -rf "$work/base"
	debootstrap --variant=minbase bookworm "$work/base" "$mirror" >"$work/debootstrap.log" 2>&1 ||
		{ tail -20 "$work/debootstrap.log"; exit 1; }
	tar -C "$work/base" -cf "$pristine.new" . && mv "$pristine.new" "$pristine"
	rm -rf "$work/base"
fi

mounted=()
cleanup() {
	local i
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
	mounted=()
}
trap cleanup EXIT

new_root() {
	local root=$1
	rm -rf "$root"
	mkdir -p "$root"
	tar -C "$root" -xf "$pristine"
	# A new container: no package lists at all.
	rm -rf "$root"/var/lib/apt/lists/*
	mkdir -p "$root/var/lib/apt/lists/partial"
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	git clone -q "$top" "$root/root/subrelay"
	# The root a mount point of its own, as in a container: tests that
	# make a private mount namespace need one.
	mount --bind "$root" "$root"
	mounted+=("$root")
	for m in proc sys dev dev/pts; do
		case $m in
		proc) mount -t proc proc "$root/proc" ;;
		sys) mount -t sysfs sys "$root/sys" ;;
		*) mount --bind "/$m" "$root/$m" ;;
		esac
		mounted+=("$root/$m")
	done
}

in_root() { chroot "$1" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb bash -c "cd /root/subrelay && $2"; }

# The build-and-run command ends by running the daemon in the foreground:
# it passes when the daemon greets on 127.0.0.1:2525 (the chroot shares
# our network), then it is stopped.
run_build() {
	local root=$1 log=$2 pid i
	in_root "$root" "$build_cmd" >"$log" 2>&1 &
	pid=$!
	for ((i = 0; i < 1800; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "build-and-run command ended before the daemon greeted:"
			tail -20 "$log"
			return 1
		fi
		if { exec 3<>/dev/tcp/127.0.0.1/2525; } 2>/dev/null; then
			local greeting=
			read -r -t 5 greeting <&3 || true
			exec 3>&-
			if [[ $greeting == 220* ]]; then
				tail -5 "$log"
				echo "daemon greeted: $greeting"
				pkill -TERM -f 'subrelayd -c conf/subrelay.ini' || true
				wait "$pid" || true
				return 0
			fi
		fi
		sleep 1
	done
	echo "no greeting on 127.0.0.1:2525 within 30 minutes"
	kill "$pid" 2>/dev/null || true
	return 1
}

run_test() {
	local root=$1 log=$2
	in_root "$root" "$test_cmd" >"$log" 2>&1 && rc=0 || rc=$?
	tail -5 "$log"
	[ "$rc" = 0 ] && grep -Eq '^[0-9]+ passed, 0 failed' "$log"
}

status=0
run_order() {
	local o=$1 root=$work/root-$1 ok=1
	echo "== $o: fresh root $root"
	new_root "$root"
	for step in ${o//-/ }; do
		echo "-- $step"
		"run_$step" "$root" "$work/$o-$step.log" || { ok=0; break; }
	done
	cleanup
	if [ $ok = 1 ]; then echo "== $o: passed"; else echo "== $o: FAILED (logs in $work)"; status=1; fi
}

if [ "$order" = both ]; then
	run_order build-test
	run_order test-build
else
	run_order "$order"
fi
exit $status
