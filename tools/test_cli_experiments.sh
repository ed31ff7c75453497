#!/bin/sh
# Checks the notes' experiments on the command line: nabla train --model
# curve-fit, the perceptron plots, --compare-optim, and nabla ewma --plot/--demo.
# usage: test_cli_experiments.sh path/to/nabla
set -u
nabla=$(realpath "$1") || exit 1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1 # default outputs (nabla-out/) land here
fail() { echo "FAIL: $*" >&2; exit 1; }

# an SVG document with N series groups (parsed as XML at the end)
svg_ok() { # file n_series
	[ -s "$1" ] || fail "$1 missing or empty"
	head -c 200 "$1" | grep -q '<svg' || fail "$1: no <svg> element at the start"
	tail -c 20 "$1" | grep -q '</svg>' || fail "$1: does not end with </svg>"
	n=$(grep -c 'class="series"' "$1")
	[ "$n" -eq "$2" ] || fail "$1: $n series, expected $2"
	cp "$1" "$tmp/svg/$(ls "$tmp/svg" | wc -l).svg"
}
mkdir "$tmp/svg" || exit 1
# the value of a JSON member in a line of --json output
member() { # name line
	printf '%s\n' "$2" | sed -n "s/.*\"$1\": \([^,}]*\).*/\1/p"
}
# awk-evaluated condition, e.g. check "$a > $b" "message"
check() {
	awk "BEGIN { exit !($1) }" || fail "$2 ($1)"
}

# ---- curve-fit: the grid error after 500, 1000 and 15000 epochs ----------------
"$nabla" train --model curve-fit --json --out none --plot "$tmp/fit.svg" >"$tmp/fit.json" \
	2>"$tmp/err" || fail "curve-fit: exit $?: $(cat "$tmp/err")"
for e in 500 1000 15000; do
	line=$(grep "\"epoch\": $e," "$tmp/fit.json") || fail "curve-fit: no line for epoch $e"
	eval "mse$e=\$(member grid_mse \"\$line\")"
done
# measured (seed 1): 0.189, 0.0622, 6.2e-07; seeds 1-8: at most 0.19, 0.18, 1.6e-06
check "$mse500 > $mse1000 && $mse1000 > $mse15000" "curve-fit: the error does not decrease"
check "$mse500 > 0.05" "curve-fit: 500 epochs should not fit yet"
check "$mse15000 < 1e-4" "curve-fit: 15000 epochs should fit"
# target, the fits after 500, 1000 and 15000 epochs, the training points
svg_ok "$tmp/fit.svg" 5
grep -q 'after 15000 epochs' "$tmp/fit.svg" || fail "curve-fit: legend"
# the default plot goes under --out
"$nabla" train --model curve-fit --epochs 600 --out "$tmp/out" >/dev/null 2>&1 ||
	fail "curve-fit --out: exit $?"
svg_ok "$tmp/out/curve-fit.svg" 4

# ---- perceptron gates: decision boundary and error plots ----------------------
"$nabla" train --model perceptron-and --epochs 100 --lr 0.1 --plot "$tmp/and.svg" --json \
	--out none >"$tmp/and.json" 2>"$tmp/err" || fail "perceptron-and: exit $?: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/and.json")" -eq 100 ] || fail "perceptron-and: expected 100 epoch lines"
last=$(tail -n 1 "$tmp/and.json")
[ "$(member errors "$last")" = 0 ] || fail "perceptron-and: not converged: $last"
# initial and learned boundaries, the class-0 and class-1 inputs
svg_ok "$tmp/and.svg" 4
grep -q 'initial: 1 x1 + 2 x2 + 1 = 0' "$tmp/and.svg" || fail "perceptron-and: initial boundary"
grep -q 'learned: 0.5 x1 + 0.9 x2 - 1 = 0' "$tmp/and.svg" || fail "perceptron-and: learned boundary"
svg_ok "$tmp/and-errors.svg" 1
"$nabla" train --model perceptron-or --epochs 100 --lr 0.1 --plot "$tmp/or.svg" --out none \
	>/dev/null 2>&1 || fail "perceptron-or: exit $?"
svg_ok "$tmp/or.svg" 4
svg_ok "$tmp/or-errors.svg" 1
# the notes' defaults are unchanged (3 epochs, lr 1: w = [1, 1], b = -2), and
# the plots go under --out
"$nabla" train --model perceptron-and --json --out "$tmp/out" >"$tmp/and3.json" 2>/dev/null ||
	fail "perceptron-and defaults: exit $?"
[ "$(wc -l <"$tmp/and3.json")" -eq 3 ] || fail "perceptron-and defaults: not 3 epochs"
grep -q '"errors": 0, "w": \[1, 1\], "b": -2}$' "$tmp/and3.json" ||
	fail "perceptron-and defaults: $(tail -n 1 "$tmp/and3.json")"
svg_ok "$tmp/out/perceptron-and.svg" 4
svg_ok "$tmp/out/perceptron-and-errors.svg" 2 # line and markers (few epochs)

# ---- compare-optim: three loss curves from the same initial weights -----------
"$nabla" train --compare-optim --json --plot "$tmp/cmp.svg" --out none >"$tmp/cmp.json" \
	2>"$tmp/err" || fail "compare-optim: exit $?: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/cmp.json")" -eq 90 ] || fail "compare-optim: expected 3 x 30 lines"
first=$(grep -o '"first_batch_loss": [^,}]*' "$tmp/cmp.json" | sort -u | wc -l)
[ "$first" -eq 1 ] || fail "compare-optim: the first batch losses differ (not the same start)"
for o in sgd momentum adam; do
	line=$(grep "\"optim\": \"$o\"" "$tmp/cmp.json" | tail -n 1)
	eval "loss_$o=\$(member loss \"\$line\")"
done
# measured: sgd 0.75, momentum 0.17, adam 0.09
check "$loss_sgd > 2 * $loss_momentum && $loss_sgd > 2 * $loss_adam" \
	"compare-optim: plain SGD should be clearly behind after 30 epochs"
svg_ok "$tmp/cmp.svg" 3
# a zoo model on its data, when the data are installed
if [ -d /usr/share/datasets/fashion-mnist ]; then
	"$nabla" train --compare-optim --model mlp --train-limit 256 --test-limit 64 --epochs 2 \
		--threads 1 --json --plot "$tmp/cmp-mlp.svg" >"$tmp/cmp.json" 2>"$tmp/err" ||
		fail "compare-optim mlp: exit $?: $(cat "$tmp/err")"
	[ "$(wc -l <"$tmp/cmp.json")" -eq 6 ] || fail "compare-optim mlp: expected 3 x 2 lines"
	first=$(grep -o '"first_batch_loss": [^,}]*' "$tmp/cmp.json" | sort -u | wc -l)
	[ "$first" -eq 1 ] || fail "compare-optim mlp: the first batch losses differ"
	svg_ok "$tmp/cmp-mlp.svg" 3
fi
"$nabla" train --compare-optim --optim adam 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q 'do not apply' "$tmp/err" || fail "compare-optim --optim: exit $rc"
"$nabla" train --compare-optim --model xor 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "not 'xor'" "$tmp/err" || fail "compare-optim --model xor: exit $rc"
[ ! -e nabla-out ] || fail "a rejected command created nabla-out/"
"$nabla" train --help | grep -q -- '--compare-optim' || fail "--help lacks --compare-optim"

# ---- ewma --plot and --demo --------------------------------------------------------
printf '30\n35\n40\n10\n' | "$nabla" ewma --beta 0.9 --plot "$tmp/ewma.svg" >"$tmp/out.csv" ||
	fail "ewma --plot: exit $?"
[ ! -s "$tmp/out.csv" ] || fail "ewma --plot without -o printed the CSV"
svg_ok "$tmp/ewma.svg" 2
printf '30\n35\n' | "$nabla" ewma --beta 0.9 --plot "$tmp/ewma2.svg" -o "$tmp/ewma2.csv" ||
	fail "ewma --plot -o: exit $?"
[ "$(cat "$tmp/ewma2.csv")" = "$(printf 'x,ewma\n30,3\n35,6.2')" ] || fail "ewma -o with --plot"
"$nabla" ewma --demo --plot "$tmp/demo.svg" || fail "ewma --demo: exit $?"
svg_ok "$tmp/demo.svg" 4
grep -q 'EWMA beta 0.98' "$tmp/demo.svg" || fail "ewma --demo: legend"
"$nabla" ewma --demo --n 10 | head -n 1 | grep -qx 't,x,ewma_0.5,ewma_0.9,ewma_0.98' ||
	fail "ewma --demo CSV header"
[ "$("$nabla" ewma --demo --n 10 | wc -l)" -eq 11 ] || fail "ewma --demo --n 10: rows"
"$nabla" ewma --demo "$tmp/ewma2.csv" 2>/dev/null; [ $? -eq 2 ] || fail "ewma --demo FILE accepted"
# -o is replaced atomically: a write that fails (a file-size limit standing
# in for a full disk) keeps the old file whole and leaves no partial one
echo keep >"$tmp/ewma3.csv"
( trap '' XFSZ; ulimit -f 8; "$nabla" ewma --demo --n 5000 -o "$tmp/ewma3.csv" ) 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q 'ewma3.csv' "$tmp/err" || fail "ewma -o past the size limit: exit $rc"
[ "$(cat "$tmp/ewma3.csv")" = keep ] || fail "a failed ewma -o damaged the old file"
[ -z "$(ls "$tmp" | grep 'ewma3.csv.tmp')" ] || fail "a failed ewma -o left its temporary file"
"$nabla" ewma --demo --n 3 -o "$tmp/ewma3.csv" && [ "$(wc -l <"$tmp/ewma3.csv")" -eq 4 ] ||
	fail "ewma -o over an existing file"
"$nabla" ewma --demo --n 3 -o "$tmp" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q 'not a regular file' "$tmp/err" || fail "ewma -o DIR: exit $rc"
# input the reader refuses, with a message safe for a terminal and exit 1:
# a lone C1 byte (0x9b, the 8-bit CSI), a NUL, a line over 1 MiB (never
# read whole), a directory, an escape sequence in the path
printf 'hdr\n\23331mRED\n' >"$tmp/c1.txt"
"$nabla" ewma --beta .5 "$tmp/c1.txt" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "line 2: '?31mRED' is not a number" "$tmp/err" &&
	! LC_ALL=C grep -q "$(printf '\233')" "$tmp/err" || fail "ewma: a C1 byte reached the terminal"
printf '1\n2\0003\n' >"$tmp/nul.txt"
"$nabla" ewma --beta .5 "$tmp/nul.txt" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q 'line 2: a NUL byte' "$tmp/err" || fail "ewma: a NUL byte: exit $rc"
head -c 1100000 /dev/zero | tr '\0' ' ' | { printf '1\n'; cat; printf '\n3\n'; } >"$tmp/long.txt"
"$nabla" ewma --beta .5 "$tmp/long.txt" >"$tmp/out.csv" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q 'line 2: longer than 1048576 bytes' "$tmp/err" ||
	fail "ewma: a line over 1 MiB: exit $rc"
"$nabla" ewma --beta .5 "$tmp" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q 'Is a directory' "$tmp/err" || fail "ewma DIR: exit $rc"
"$nabla" ewma --beta .5 "$tmp/no$(printf '\033')[31m" 2>"$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q 'no?\[31m' "$tmp/err" || fail "ewma: an escape in the path: exit $rc"
# every plot is well-formed XML (one interpreter for all, when there is one)
if command -v python3 >/dev/null 2>&1; then
	python3 -c 'import sys, xml.etree.ElementTree as E
for f in sys.argv[1:]: E.parse(f)' "$tmp"/svg/*.svg || fail "a plot is not well-formed XML"
fi
echo "cli experiments: ok"
