#!/bin/sh
# nabla train --grad-norms, --grad-norm-interval and --compare-depth as a user
# types them: the per-layer gradient norms in the epoch lines and windows, their
# plot, the vanishing gradients of deep-sigmoid, and every bad value refused
# before training.
# usage: test_cli_gradnorms.sh path/to/nabla
set -u
nabla=$(realpath "$1") || exit 1
tmp=$(mktemp -d) || exit 1
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1 # default outputs (nabla-out/) land here
fail() { echo "FAIL: $*" >&2; exit 1; }
mkdir "$tmp/svg" || exit 1

# expect STATUS 'MESSAGE' ARGS...: exit STATUS, MESSAGE alone on stderr (once),
# nothing on stdout, no file written under nabla-out/
expect() {
	want_rc=$1 want=$2
	shift 2
	"$nabla" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ $rc -eq "$want_rc" ] || fail "nabla $*: exit $rc, expected $want_rc: $(cat "$tmp/err")"
	[ "$(cat "$tmp/err")" = "$want" ] || fail "nabla $*: stderr
$(cat "$tmp/err")
expected
$want"
	[ ! -s "$tmp/out" ] || fail "nabla $*: stdout: $(cat "$tmp/out")"
	[ -z "$(ls -A nabla-out 2>/dev/null)" ] || fail "nabla $*: wrote $(ls nabla-out)"
}
# an SVG document with N series groups (parsed as XML at the end)
svg_ok() { # file n_series
	[ -s "$1" ] || fail "$1 missing or empty"
	head -c 200 "$1" | grep -q '<svg' || fail "$1: no <svg> element at the start"
	tail -c 20 "$1" | grep -q '</svg>' || fail "$1: does not end with </svg>"
	n=$(grep -c 'class="series"' "$1")
	[ "$n" -eq "$2" ] || fail "$1: $n series, expected $2"
	cp "$1" "$tmp/svg/$(ls "$tmp/svg" | wc -l).svg"
}
# the number after "NAME": in a line (the first occurrence)
num() { # name line
	printf '%s\n' "$2" | sed -n "s/.*\"$1\": \([^,}]*\).*/\1/p" | head -n 1
}
check() {
	awk "BEGIN { exit !($1) }" || fail "$2 ($1)"
}

# ---- bad values: refused before anything is trained or written ----------------
range="must be an integer from 1 to 9223372036854775807"
expect 2 "nabla train: --grad-norm-interval $range, got '0'" \
	train --model deep-sigmoid --grad-norms --grad-norm-interval 0
expect 2 "nabla train: --grad-norm-interval $range, got '-5'" \
	train --model deep-sigmoid --grad-norms --grad-norm-interval -5
expect 2 "nabla train: --grad-norm-interval $range, got '-5'" \
	train --model deep-sigmoid --grad-norms --grad-norm-interval=-5
expect 2 "nabla train: --grad-norm-interval $range, got '2.5'" \
	train --model deep-sigmoid --grad-norms --grad-norm-interval 2.5
expect 2 "nabla train: --grad-norm-interval $range, got 'ten'" \
	train --model deep-sigmoid --grad-norms --grad-norm-interval ten
expect 2 "nabla train: --grad-norm-interval applies with --grad-norms only" \
	train --model deep-sigmoid --grad-norm-interval 10
expect 2 "nabla train: --grad-norms: 'norms.png' is not an .svg file name (the plot is SVG)" \
	train --model deep-sigmoid --grad-norms norms.png
expect 2 "nabla train: --grad-norms: '' is not an .svg file name (the plot is SVG)" \
	train --model deep-sigmoid --grad-norms=
expect 1 "nabla train: --grad-norms: $tmp/no/such/dir/n.svg: the directory $tmp/no/such/dir does not exist" \
	train --model deep-sigmoid --grad-norms "$tmp/no/such/dir/n.svg"
mkdir "$tmp/dir.svg" "$tmp/ro" && chmod a-w "$tmp/ro" || exit 1
"$nabla" train --model deep-sigmoid --grad-norms "$tmp/dir.svg" >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] && [ "$(grep -c -- '--grad-norms' "$tmp/err")" -eq 1 ] && [ ! -s "$tmp/out" ] ||
	fail "--grad-norms DIRECTORY: $(cat "$tmp/err")"
if [ "$(id -u)" -ne 0 ]; then # root writes anywhere
	"$nabla" train --model deep-sigmoid --grad-norms "$tmp/ro/n.svg" >"$tmp/out" 2>"$tmp/err"
	[ $? -eq 1 ] && grep -q -- "--grad-norms: $tmp/ro/n.svg" "$tmp/err" && [ ! -s "$tmp/out" ] ||
		fail "--grad-norms in a read-only directory: $(cat "$tmp/err")"
fi
expect 2 "nabla train: --grad-norms applies to the zoo models, not xor" \
	train --model xor --grad-norms
expect 2 "nabla train: --grad-norm-interval applies to the zoo models, not curve-fit" \
	train --model curve-fit --grad-norm-interval=3 --grad-norms
expect 2 "nabla train: --grad-norms applies to one model's training, not --compare-optim" \
	train --compare-optim --grad-norms
expect 2 "nabla train: unknown option '--grad-norm'; did you mean --grad-norms? (see nabla train --help)" \
	train --grad-norm
dnot="nabla train: --compare-depth records the gradient norms itself and trains four models at a constant rate; --grad-norms, --save, --resume, --dot, --export, --schedule, --warmup and --standardize do not apply"
expect 2 "$dnot" train --compare-depth --grad-norms
expect 2 "$dnot" train --compare-depth --save x.safetensors
expect 2 "nabla train: --compare-depth trains its four models (deep-sigmoid, deep-relu-he, deep-relu-bn, deep-residual); --model does not apply" \
	train --compare-depth --model mlp
expect 2 "nabla train: --compare-optim and --compare-depth are two separate experiments: give one" \
	train --compare-depth --compare-optim
expect 1 "nabla train: --plot: $tmp/no/d.svg: the directory $tmp/no does not exist" \
	train --compare-depth --plot "$tmp/no/d.svg"
expect 2 "nabla train: --lr must be a finite number >= 0, got '-1'" train --compare-depth --lr -1
"$nabla" train --help | grep -q -- '--grad-norms \[FILE.svg\]' || fail "--help lacks --grad-norms"
"$nabla" help train | grep -q -- '--grad-norm-interval N' || fail "help lacks --grad-norm-interval"
"$nabla" help train | grep -q -- '--compare-depth' || fail "help lacks --compare-depth"

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
	echo "cli gradnorms: Fashion-MNIST is not installed (apt install dataset-fashion-mnist): the training runs are skipped"
	exit 77
fi
small="--train-limit 640 --test-limit 200 --threads 1"

# ---- --grad-norms FILE.svg with --json ------------------------------------------
"$nabla" train --model deep-sigmoid --epochs 3 $small --json --out none \
	--grad-norms "$tmp/sig.svg" >"$tmp/sig.json" 2>"$tmp/err" ||
	fail "--grad-norms: exit $?: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/sig.json")" -eq 3 ] || fail "--grad-norms: expected 3 epoch lines"
for e in 1 2 3; do
	line=$(grep "\"epoch\": $e," "$tmp/sig.json") || fail "no line for epoch $e"
	# every layer, in order, in both maps
	gn=$(printf '%s' "$line" | sed 's/.*"grad_norms": {\([^}]*\)}.*/\1/')
	keys=$(printf '%s' "$gn" | grep -o '"[a-z0-9]*":' | tr -d '":' | tr '\n' ' ')
	[ "$keys" = "fc1 fc2 fc3 fc4 fc5 fc6 fc7 fc8 fc9 fc10 out " ] ||
		fail "epoch $e: grad_norms layers: $keys"
	ur=$(printf '%s' "$line" | sed 's/.*"update_ratios": {\([^}]*\)}.*/\1/')
	[ "$(printf '%s' "$ur" | grep -o '"[a-z0-9]*":' | wc -l)" -eq 11 ] ||
		fail "epoch $e: update_ratios: $ur"
	fc1=$(num fc1 "$gn") out=$(num out "$gn") rfc1=$(num fc1 "$ur") rout=$(num out "$ur")
	# ten sigmoid layers: the first layer's gradient vanishes (measured 1.5e-08 of the last)
	check "$fc1 > 0 && $out > 0 && $fc1 < 1e-4 * $out" "deep-sigmoid epoch $e: fc1 $fc1, out $out"
	check "$rfc1 > 0 && $rout > 0 && $rfc1 < 1e-4 * $rout" \
		"deep-sigmoid epoch $e: update ratios fc1 $rfc1, out $rout"
done
grep -q 'wrote the gradient norms to' "$tmp/err" || fail "--grad-norms: no notice on stderr"
# by depth: a line per epoch (3); by epoch: ten of the eleven layers; ratios: 3
svg_ok "$tmp/sig.svg" 16
grep -q '>fc1<' "$tmp/sig.svg" && grep -q '>out<' "$tmp/sig.svg" && grep -q '>epoch 3<' "$tmp/sig.svg" ||
	fail "--grad-norms plot: legend"

# ---- the default file under --out, the lines for people, --grad-norms=FILE ---------
"$nabla" train --model deep-residual --epochs 2 $small --grad-norms --out "$tmp/o" \
	>"$tmp/res.txt" 2>"$tmp/err" || fail "--grad-norms --out: exit $?: $(cat "$tmp/err")"
svg_ok "$tmp/o/deep-residual-grad-norms.svg" 14
[ "$(grep -c '^  grad norm fc1 .* -> out .* (first/last .*, 11 layers); update/weight fc1 ' \
	"$tmp/res.txt")" -eq 2 ] || fail "--grad-norms: the text lines: $(cat "$tmp/res.txt")"
"$nabla" train --model deep-relu-bn --epochs 1 $small --json --out none \
	--grad-norms="$tmp/bn.svg" >"$tmp/bn.json" 2>/dev/null || fail "--grad-norms=FILE: exit $?"
grep -q '"grad_norms": {"fc1": [0-9.e+-]*, "bn1": ' "$tmp/bn.json" || fail "deep-relu-bn layers"
svg_ok "$tmp/bn.svg" 12
# --grad-norms followed by another option takes no file; --out none: no plot
"$nabla" train --model mlp --epochs 1 $small --max-batches 3 --grad-norms --json --out none \
	>"$tmp/mlp.json" 2>"$tmp/err" || fail "--grad-norms --json: exit $?"
grep -q '"grad_norms": {"fc1": [0-9.e+-]*, "fc2": [0-9.e+-]*, "fc3": [0-9.e+-]*}' "$tmp/mlp.json" ||
	fail "mlp grad_norms: $(cat "$tmp/mlp.json")"
! grep -q 'wrote the gradient norms' "$tmp/err" || fail "--out none wrote a plot"
# without the flag: no statistics
"$nabla" train --model mlp --epochs 1 $small --max-batches 3 --json --out none >"$tmp/plain.json" \
	2>/dev/null || fail "plain run: exit $?"
! grep -q 'grad_norms' "$tmp/plain.json" || fail "grad_norms without --grad-norms"

# ---- --grad-norm-interval: windows at the multiples of N steps, across epochs ----
"$nabla" train --model deep-sigmoid --epochs 2 $small --max-batches 5 --json --out none \
	--grad-norms --grad-norm-interval 4 >"$tmp/win.json" 2>"$tmp/err" ||
	fail "--grad-norm-interval: exit $?: $(cat "$tmp/err")"
[ "$(grep -c '"first_step"' "$tmp/win.json")" -eq 2 ] || fail "expected windows at steps 4 and 8"
grep -q '^{"model": "deep-sigmoid", "epoch": 1, "first_step": 1, "last_step": 4, "grad_norms": {"fc1": ' \
	"$tmp/win.json" || fail "the first window: $(head -n 1 "$tmp/win.json")"
grep -q '"epoch": 2, "first_step": 5, "last_step": 8, "grad_norms": ' "$tmp/win.json" ||
	fail "the second window spans the epochs"
[ "$(grep -c '"loss"' "$tmp/win.json")" -eq 2 ] || fail "--grad-norm-interval: epoch lines"
"$nabla" train --model deep-sigmoid --epochs 1 $small --max-batches 4 --out none \
	--grad-norms --grad-norm-interval 2 >"$tmp/win.txt" 2>/dev/null || fail "interval text: exit $?"
[ "$(grep -c '^  steps [0-9]*-[0-9]*  grad norm fc1 ' "$tmp/win.txt")" -eq 2 ] ||
	fail "interval text lines: $(cat "$tmp/win.txt")"

# ---- --compare-depth ------------------------------------------------------------
"$nabla" train --compare-depth --epochs 2 --train-limit 1280 --test-limit 500 --json \
	--plot "$tmp/depth.svg" >"$tmp/depth.json" 2>"$tmp/err" ||
	fail "--compare-depth: exit $?: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/depth.json")" -eq 8 ] || fail "--compare-depth: expected 4 x 2 lines"
ratio() { # model: fc1 / out in its last epoch
	line=$(grep "\"model\": \"$1\", \"epoch\": 2," "$tmp/depth.json") || fail "no line of $1"
	gn=$(printf '%s' "$line" | sed 's/.*"grad_norms": {\([^}]*\)}.*/\1/')
	awk "BEGIN { print $(num fc1 "$gn") / $(num out "$gn") }"
}
sig=$(ratio deep-sigmoid) res=$(ratio deep-residual) he=$(ratio deep-relu-he) bn=$(ratio deep-relu-bn)
# measured: 1.5e-08, 0.061, 1.2, 1.6
check "$sig < 1e-4 * $res && $sig < 1e-4 * $he && $sig < 1e-4 * $bn" \
	"--compare-depth: sigmoid $sig, residual $res, he $he, bn $bn"
grep -q '^deep-sigmoid ' "$tmp/err" && grep -q '^deep-residual ' "$tmp/err" ||
	fail "--compare-depth: no summary table"
svg_ok "$tmp/depth.svg" 8
svg_ok "$tmp/depth-accuracy.svg" 4

# ---- nabla bench --grad-norms: the step with them, zoo models only --------------
"$nabla" bench --model mlp --steps 3 --warmup 0 --threads 1 --grad-norms --json >"$tmp/b.json" \
	2>"$tmp/err" || fail "bench --grad-norms: exit $?: $(cat "$tmp/err")"
grep -q '"bench": "nabla_mlp"' "$tmp/b.json" || fail "bench --grad-norms: $(cat "$tmp/b.json")"
expect 2 "nabla bench: --grad-norms applies to the training steps of the zoo models (mlp, lenet, resnet20, resnet50), not xor" \
	bench --model xor --grad-norms

# every plot is well-formed XML (one interpreter for all, when there is one)
if command -v python3 >/dev/null 2>&1; then
	python3 -c 'import sys, xml.etree.ElementTree as E
for f in sys.argv[1:]: E.parse(f)' "$tmp"/svg/*.svg || fail "a plot is not well-formed XML"
fi
echo "cli gradnorms: ok"
