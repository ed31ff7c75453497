#!/usr/bin/env bash
# nabla quick start.  On a fresh Debian machine (as root, or with sudo):
#   ./run.sh demo   install what is missing, build, train a model, write its graph
#   ./run.sh test   install what is missing, build, run every test suite
#                   (plain, then under AddressSanitizer + UndefinedBehaviorSanitizer)
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(build-essential pkg-config meson ninja-build libblis-dev check
          libgraphviz-dev graphviz zlib1g-dev dataset-fashion-mnist python3-numpy)

install_deps() {
	local missing=()
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "run.sh: installing ${missing[*]}" >&2
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -q
	$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build() { # build DIR [meson options...]
	local dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@"
	fi
	meson compile -C "$dir" -j "$(nproc)"
}

case "${1:-}" in
demo)
	install_deps
	build build
	./build/tools/nabla train "${@:2}"
	;;
test)
	install_deps
	build build
	meson test -C build --print-errorlogs
	build build-san -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
	# CK_FORK=no: each suite runs in one process, so LeakSanitizer sees
	# every test's allocations when it exits
	CK_FORK=no ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C build-san --print-errorlogs
	;;
*)
	echo "usage: ./run.sh demo|test" >&2
	exit 2
	;;
esac
