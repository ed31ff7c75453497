#!/usr/bin/env bash
# nabla quick start.  On a fresh Debian machine (as root, or with sudo):
#   ./run.sh demo   install what is missing, build, train a model, write its graph
#   ./run.sh test   install what is missing, build, run every test suite
#                   (plain, then under AddressSanitizer + UndefinedBehaviorSanitizer),
#                   then build the fuzz targets with clang (ASan + UBSan) and run
#                   each for FUZZ_SECONDS (default 10) on its shipped corpus
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(build-essential pkg-config meson ninja-build libblis-dev check
          libgraphviz-dev graphviz zlib1g-dev dataset-fashion-mnist python3-numpy
          python3-onnx nodejs
          clang libclang-rt-dev libomp-dev  # clang: the fuzz targets (libFuzzer, OpenMP)
          clang-format
          openmpi-bin libopenmpi-dev)  # data-parallel training and its tests (mpirun)
# ONNX Runtime for the ONNX export tests: the onnxruntime-node version
# tests/onnx/package.json pins (its CPU binaries ship inside the package)
ORT_VERSION=$(sed -n 's/.*"onnxruntime-node": "\(.*\)".*/\1/p' tests/onnx/package.json)

install_deps() {
	local missing=()
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	# npm: Debian's package, unless a nodejs that bundles it is installed
	command -v npm >/dev/null || missing+=(npm)
	if [ ${#missing[@]} -gt 0 ]; then
		echo "run.sh: installing ${missing[*]}" >&2
		local sudo=""
		[ "$(id -u)" -eq 0 ] || sudo=sudo
		export DEBIAN_FRONTEND=noninteractive
		$sudo apt-get update -q
		$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
	fi
	install_onnxruntime
}

# npm install into tests/onnx/node_modules (ignored by git), once: nothing
# runs at install time (--ignore-scripts) and the tests need no network.
# Without it the ONNX Runtime test reports skipped.
install_onnxruntime() {
	local have
	have=$(node -p "require('./tests/onnx/node_modules/onnxruntime-node/package.json').version" \
		2>/dev/null) || have=""
	[ "$have" = "$ORT_VERSION" ] && return 0
	echo "run.sh: installing onnxruntime-node $ORT_VERSION into tests/onnx" >&2
	(cd tests/onnx && npm install --ignore-scripts --no-audit --no-fund --no-save) ||
		echo "run.sh: npm install failed; the ONNX Runtime test will be skipped" >&2
}

build() { # build DIR [meson options...]
	local dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@"
	fi
	meson compile -C "$dir" -j "$(nproc)"
}

# meson test, then the plain closing line "N passed, M failed"
run_tests() { # DIR [env...]
	local dir=$1 log rc=0
	shift
	log=$(mktemp)
	env "$@" meson test -C "$dir" --print-errorlogs 2>&1 | tee "$log" || rc=$?
	local ok fail
	ok=$(awk '/^Ok:/ {print $2}' "$log")
	fail=$(awk '/^Fail:/ {f += $2} /^Timeout:/ {f += $2} /^Unexpected Pass:/ {f += $3} END {print f + 0}' "$log")
	rm -f "$log"
	echo "$dir: ${ok:-0} passed, ${fail:-0} failed"
	return $rc
}

# The libFuzzer targets of fuzz/ (clang, ASan + UBSan), each run for a few
# seconds from its shipped corpus (new inputs go to a scratch directory, not
# the repository); a crash, leak, sanitizer report or timeout fails the run,
# and the input that did it is kept in DIR/fuzz-artifacts/.
# Every C file git tracks matches .clang-format (clang-format --dry-run
# -Werror); the lines that differ are printed.
check_format() {
	local files
	if ! git rev-parse --git-dir >/dev/null 2>&1; then
		echo "run.sh: not a git checkout; the format check needs git ls-files" >&2
		return 0
	fi
	mapfile -t files < <(git ls-files '*.c' '*.h')
	if clang-format --dry-run -Werror "${files[@]}"; then
		echo "format: 1 passed, 0 failed"
	else
		echo "format: 0 passed, 1 failed (clang-format -i the files above)"
		return 1
	fi
}

fuzz_smoke() { # DIR
	local dir=$1 secs=${FUZZ_SECONDS:-10} failed=0 ran=0
	if [ ! -f "$dir/build.ninja" ]; then
		CC=clang meson setup "$dir" -Dfuzz=true -Db_sanitize=address,undefined \
			-Db_lundef=false -Dbuildtype=debugoptimized -Dtests=disabled
	fi
	local targets=(idx:idx cifar:cifar idx_file:idx_file cifar_file:cifar_file
	               safetensors:safetensors checkpoint_file:safetensors series:series)
	local exes=()
	for t in "${targets[@]}"; do exes+=("fuzz_${t%%:*}"); done
	meson compile -C "$dir" -j "$(nproc)" "${exes[@]}" 2>&1 | tail -n 3 ||
		{ echo "$dir: building the fuzz targets failed" >&2; return 1; }
	mkdir -p "$dir/fuzz-artifacts"
	for t in "${targets[@]}"; do
		local name=${t%%:*} corpus=tests/data/corpus/${t#*:} exe="$dir/fuzz/fuzz_${t%%:*}"
		local scratch dict=()
		[ -x "$exe" ] || { echo "$dir: $exe was not built (libFuzzer missing?)" >&2; return 1; }
		[ "${t#*:}" = safetensors ] && dict=(-dict=fuzz/safetensors.dict)
		scratch=$(mktemp -d)
		if UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$exe" -max_total_time="$secs" \
			-timeout=20 -rss_limit_mb=4096 -print_final_stats=1 "${dict[@]}" \
			-artifact_prefix="$dir/fuzz-artifacts/$name-" "$scratch" "$corpus" \
			>"$dir/fuzz-artifacts/$name.log" 2>&1; then
			echo "fuzz_$name: ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' \
				"$dir/fuzz-artifacts/$name.log" | grep -o '[0-9]*$') runs in ${secs}s)"
		else
			echo "fuzz_$name: FAILED (log: $dir/fuzz-artifacts/$name.log)" >&2
			grep -m 5 -E 'ERROR|SUMMARY|runtime error' "$dir/fuzz-artifacts/$name.log" >&2 || true
			failed=$((failed + 1))
		fi
		ran=$((ran + 1))
		rm -rf "$scratch"
	done
	echo "$dir: $((ran - failed)) passed, $failed failed"
	[ "$failed" -eq 0 ]
}

# `nabla` on the PATH: a link in /usr/local/bin to this build's program
# (the README's commands are typed that way).  A /usr/local/bin/nabla that
# is not such a link (an installed nabla) is left alone.
link_nabla() {
	local dest=/usr/local/bin/nabla target
	target="$(pwd)/build/tools/nabla"
	if [ -e "$dest" ] && [ ! -L "$dest" ]; then
		echo "run.sh: $dest exists and is not a link; leaving it ($target is this build's)" >&2
		return 0
	fi
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo ln -sfn "$target" "$dest" ||
		echo "run.sh: could not link $dest; the program is $target" >&2
}

case "${1:-}" in
demo)
	install_deps
	build build
	link_nabla
	./build/tools/nabla train "${@:2}"
	;;
test)
	install_deps
	build build
	link_nabla
	run_tests build
	build build-san -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
	# CK_FORK=no: each suite runs in one process, so LeakSanitizer sees
	# every test's allocations when it exits
	run_tests build-san CK_FORK=no ASAN_OPTIONS=detect_leaks=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
	fuzz_smoke build-fuzz
	check_format
	;;
*)
	echo "usage: ./run.sh demo|test" >&2
	exit 2
	;;
esac
