#!/bin/sh
# Checks nabla export and nabla train --export on the command line: the
# files for trained zoo models and the notes' models (validated by the ONNX
# checker with the checkpoint's weights when python3-onnx is installed), the
# f64 cases, and bad input: an unknown model, a missing checkpoint, a
# checkpoint of another model, an unwritable -o (the old file intact),
# missing and bad options, each reported once with a non-zero exit.
# usage: test_cli_export.sh path/to/nabla path/to/source
set -u
nabla=$(realpath "$1") || exit 1
src=$(realpath "$2") || exit 1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail() { echo "FAIL: $*" >&2; exit 1; }

check=""
if /usr/bin/python3 -c 'import onnx, numpy' 2>/dev/null; then
	check="/usr/bin/python3 $src/tests/onnx/check_onnx.py"
else
	echo "note: python3-onnx missing, the files are not validated here" >&2
fi
validate() { # file [check_onnx.py options]
	[ -s "$1" ] || fail "$1 missing or empty"
	[ -z "$check" ] || $check "$@" || fail "$1: the ONNX checker refused it"
}
# expect STATUS "message part" command...: the exit status, one line on
# stderr containing the message, nothing on stdout
expect() {
	want=$1 text=$2
	shift 2
	"$@" >"$tmp/out" 2>"$tmp/err"
	st=$?
	[ "$st" -eq "$want" ] || fail "$*: exit $st, expected $want: $(cat "$tmp/err")"
	grep -qF -- "$text" "$tmp/err" || fail "$*: message lacks '$text': $(cat "$tmp/err")"
	[ "$(grep -c 'nabla export' "$tmp/err")" -eq 1 ] || fail "$*: reported more than once: $(cat "$tmp/err")"
	[ ! -s "$tmp/out" ] || fail "$*: printed on stdout: $(cat "$tmp/out")"
}

# ---- help --------------------------------------------------------------------
"$nabla" help | grep -q '^  export ' || fail "nabla help does not list export"
"$nabla" export --help | grep -q -- '--checkpoint FILE' || fail "export --help"
"$nabla" help export | grep -q -- '--static-batch' || fail "nabla help export"
"$nabla" train --help | grep -q -- '--export FILE' || fail "train --help lacks --export"

# ---- trained zoo models ------------------------------------------------------
train() { # model dtype checkpoint [more flags]
	m=$1 dt=$2 ck=$3
	shift 3
	"$nabla" train --model "$m" --dtype "$dt" --epochs 1 --max-batches 2 --batch 16 \
		--train-limit 64 --test-limit 32 --out none --save "$ck" "$@" >/dev/null 2>"$tmp/err" ||
		fail "train $m: $(cat "$tmp/err")"
}
train lenet f32 lenet.st
"$nabla" export --model lenet --checkpoint lenet.st -o lenet.onnx >"$tmp/out" 2>"$tmp/err" ||
	fail "export lenet: $(cat "$tmp/err")"
grep -q 'wrote lenet.onnx: ONNX opset 13, float32' "$tmp/out" || fail "export lenet: $(cat "$tmp/out")"
grep -q 'input  x \[N,1,28,28\]' "$tmp/out" || fail "export lenet: input line"
grep -q 'output probs \[N,10\]' "$tmp/out" || fail "export lenet: output line"
validate lenet.onnx --dynamic --inputs x --outputs fc3,probs --weights lenet.st

# f64 training: f32 by default, with the difference reported; f64 on request
train mlp f64 mlp64.st
"$nabla" export --model mlp --checkpoint mlp64.st -o mlp.onnx >"$tmp/out" 2>"$tmp/err" ||
	fail "export f64 mlp: $(cat "$tmp/err")"
grep -q 'float64 weights rounded to float32: largest change' "$tmp/out" || fail "no weight rounding"
diff=$(sed -n 's/.*differ from the float64 ones by at most \([^ ]*\)$/\1/p' "$tmp/out")
[ -n "$diff" ] || fail "export f64 mlp: no output difference: $(cat "$tmp/out")"
awk "BEGIN { exit !($diff > 0 && $diff < 1e-5) }" || fail "f64 -> f32 difference $diff"
validate mlp.onnx --dynamic --weights mlp64.st
"$nabla" export --model mlp --checkpoint mlp64.st -o mlp64.onnx --dtype f64 >"$tmp/out" 2>&1 ||
	fail "export --dtype f64: $(cat "$tmp/out")"
grep -q 'float64' "$tmp/out" || fail "export --dtype f64: $(cat "$tmp/out")"
validate mlp64.onnx --dynamic --elem double --weights mlp64.st
# a finite float64 weight beyond float32's range: no float32 export (it
# would hold inf), the old file kept; float64 still exports
python3 - "$tmp/mlp64.st" "$tmp/big64.st" <<'PY' || fail "cannot write big64.st"
import json, struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", b[:8])[0]
at = 8 + n + json.loads(b[8:8 + n])["fc3.b"]["data_offsets"][0]
b[at:at + 8] = struct.pack("<d", 1e300)
open(sys.argv[2], "wb").write(b)
PY
cp mlp.onnx "$tmp/mlp.keep"
expect 1 "fc3.b: element 0 is 1e+300, beyond float32's range" \
	"$nabla" export --model mlp --checkpoint big64.st -o mlp.onnx
cmp -s mlp.onnx "$tmp/mlp.keep" || fail "a refused export changed mlp.onnx"
"$nabla" export --model mlp --checkpoint big64.st -o big64.onnx --dtype f64 >/dev/null 2>&1 ||
	fail "export of big64.st as f64"
# an f32 checkpoint widened to f64
"$nabla" export --model lenet --checkpoint lenet.st -o lenet64.onnx --dtype f64 >/dev/null 2>&1 ||
	fail "export f32 checkpoint as f64"
validate lenet64.onnx --dynamic --elem double --weights lenet.st

# nabla train --export writes the trained model
"$nabla" train --model mlp-binary-sigmoid --epochs 1 --max-batches 2 --batch 16 --train-limit 64 \
	--test-limit 32 --out none --save bin.st --export bin.onnx >/dev/null 2>"$tmp/err" ||
	fail "train --export: $(cat "$tmp/err")"
grep -q 'nabla train: wrote bin.onnx' "$tmp/err" || fail "train --export: $(cat "$tmp/err")"
validate bin.onnx --dynamic --inputs x --outputs head,probs --weights bin.st

# ---- the notes' models: their own weights, no checkpoint ---------------------
for m in perceptron-and perceptron-or xor backprop-example; do
	"$nabla" export --model "$m" -o "$m.onnx" >"$tmp/out" 2>"$tmp/err" || fail "export $m: $(cat "$tmp/err")"
	grep -q "no --checkpoint: writing $m's initial weights" "$tmp/err" || fail "export $m: no note"
	validate "$m.onnx" --inputs x
done
# trained: nabla train --save/--export, and nabla export of that checkpoint,
# both with the trained weights
for m in perceptron-and xor backprop-example; do
	"$nabla" train --model "$m" --epochs 20 --out none --save "$m.st" --export "$m-t.onnx" \
		>/dev/null 2>"$tmp/err" || fail "train $m --export: $(cat "$tmp/err")"
	grep -q "nabla train: wrote $m-t.onnx" "$tmp/err" || fail "train $m --export: $(cat "$tmp/err")"
	validate "$m-t.onnx" --inputs x --weights "$m.st"
	"$nabla" export --model "$m" --checkpoint "$m.st" -o "$m-e.onnx" >/dev/null 2>"$tmp/err" ||
		fail "export $m --checkpoint: $(cat "$tmp/err")"
	cmp -s "$m-t.onnx" "$m-e.onnx" || fail "$m: train --export and export --checkpoint differ"
done
"$nabla" train --model curve-fit --epochs 20 --out none --save fit.st --export fit.onnx \
	>/dev/null 2>"$tmp/err" || fail "train curve-fit --export: $(cat "$tmp/err")"
validate fit.onnx --inputs x --weights fit.st

# ---- bad input -----------------------------------------------------------------
printf 'old contents\n' >old.onnx
expect 2 "unknown model 'nope'" "$nabla" export --model nope -o old.onnx
expect 1 "missing.st: cannot open" "$nabla" export --model mlp --checkpoint missing.st -o old.onnx
expect 1 "holds model 'lenet', not 'mlp'" "$nabla" export --model mlp --checkpoint lenet.st -o old.onnx
printf 'not a checkpoint' >junk.st
expect 1 "junk.st" "$nabla" export --model mlp --checkpoint junk.st -o old.onnx
expect 1 "$tmp/nodir/x.onnx" "$nabla" export --model lenet --checkpoint lenet.st -o "$tmp/nodir/x.onnx"
expect 1 "not a regular file" "$nabla" export --model lenet --checkpoint lenet.st -o "$tmp"
mkfifo fifo || fail "mkfifo"
expect 1 "not a regular file" "$nabla" export --model lenet --checkpoint lenet.st -o fifo
[ -p fifo ] || fail "the export replaced a FIFO"
expect 2 "-o FILE is required" "$nabla" export --model lenet
expect 2 "--model NAME is required" "$nabla" export -o old.onnx
expect 2 "--dtype must be f32 or f64, not 'f16'" "$nabla" export --model mlp -o old.onnx --dtype f16
expect 2 "unknown option '--frobnicate'" "$nabla" export --model mlp -o old.onnx --frobnicate
expect 2 "xor has a fixed batch of 4" "$nabla" export --model xor --batch 3 -o old.onnx
[ "$(cat old.onnx)" = "old contents" ] || fail "a failed export changed old.onnx"
ls | grep -q '\.tmp\.' && fail "temporary files left: $(ls)"
exit 0
