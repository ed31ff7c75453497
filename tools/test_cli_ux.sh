#!/bin/sh
# The command line's messages as a user meets them: a mistyped command or
# option names the nearest one, once.
# usage: test_cli_ux.sh path/to/nabla
set -u
nabla=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") # the tests run elsewhere
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect STATUS 'MESSAGE' ARGS...: exit STATUS, MESSAGE once on stderr, and
# nothing else on stderr or stdout
expect() {
	want_rc=$1 want=$2
	shift 2
	(cd "$tmp" && "$nabla" "$@") >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ $rc -eq "$want_rc" ] || fail "nabla $*: exit $rc, expected $want_rc: $(cat "$tmp/err")"
	[ "$(cat "$tmp/err")" = "$want" ] || fail "nabla $*: stderr
$(cat "$tmp/err")
expected
$want"
	[ ! -s "$tmp/out" ] || fail "nabla $*: stdout: $(cat "$tmp/out")"
}

expect 2 "nabla: no command 'trian'; did you mean 'train'? (see 'nabla help')" trian
expect 2 "nabla: no command 'trian'; did you mean 'train'? (see 'nabla help')" help trian
expect 2 "nabla: no command 'sumary'; did you mean 'summary'? (see 'nabla help')" sumary --model mlp
expect 2 "nabla: no command 'hlep'; did you mean 'help'? (see 'nabla help')" hlep
expect 2 "nabla: no command 'xyzzy' (see 'nabla help')" xyzzy
expect 2 "nabla train: unknown option '--epoch'; did you mean --epochs? (see nabla train --help)" \
	train --epoch 3
expect 2 "nabla train: unknown option '--epoch=3'; did you mean --epochs? (see nabla train --help)" \
	train --epoch=3
expect 2 "nabla train: unknown option '--zzz' (see nabla train --help)" train --zzz
expect 2 "nabla dot: unknown option '--fromat'; did you mean --format? (see nabla dot --help)" \
	dot --fromat svg
expect 2 "nabla export: unknown option '--chekpoint'; did you mean --checkpoint? (see nabla export --help)" \
	export --chekpoint x.st
expect 2 "nabla gradcheck: unknown option '--seed'; did you mean --seeds? (see nabla gradcheck --help)" \
	gradcheck --seed 3
expect 2 "nabla ewma: unknown option '--bta'; did you mean --beta? (see nabla ewma --help)" ewma --bta 0.5
expect 2 "nabla bench: unknown option '--stesp'; did you mean --steps? (see nabla bench --help)" \
	bench --stesp 3
expect 2 "nabla summary: unknown option '--jsno'; did you mean --json? (see nabla summary --help)" \
	summary --jsno
# control bytes of the argument do not reach the terminal
expect 2 "nabla: no command '?[2J' (see 'nabla help')" "$(printf '\033[2J')"

# Every option a command's --help lists is suggested for a slip of it (its last
# letter doubled): the suggestion lists and the parsers agree.
for cmd in train dot export summary bench ewma gradcheck eval predict; do
	# the first column of the option table: "  --name ARG", "  -o, --output F"
	opts=$("$nabla" $cmd --help | grep -E '^  ?-' | sed -E 's/^ +//; s/  .*//' |
		grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
	[ -n "$opts" ] || fail "$cmd --help lists no options"
	for o in $opts; do
		slip="$o$(printf '%s' "$o" | tail -c 1)"
		"$nabla" $cmd "$slip" >/dev/null 2>"$tmp/err"
		grep -qF "did you mean $o?" "$tmp/err" || fail "$cmd $slip: $(cat "$tmp/err")"
	done
done
# --json: one object per epoch for every model, whatever the lines for
# people show (xor and curve-fit print a few of them)
byte() { printf "\\$(printf %03o "$1")"; } # one byte of value $1 (0 to 255)
idx() { # idx PREFIX N: a Fashion-MNIST-shaped IDX pair of N (< 256) zero images
	{ printf '\000\000\010\003\000\000\000'; byte "$2"
	  printf '\000\000\000\034\000\000\000\034'; head -c $(($2 * 784)) /dev/zero
	} >"$tmp/$1-images-idx3-ubyte"
	{ printf '\000\000\010\001\000\000\000'; byte "$2"
	  i=0
	  while [ $i -lt "$2" ]; do
		byte $((i % 10))
		i=$((i + 1))
	  done
	} >"$tmp/$1-labels-idx1-ubyte"
}
idx train 8
idx t10k 4
json_epochs() { # json_epochs N ARGS...: N objects, epochs 1..N in order
	n=$1
	shift
	(cd "$tmp" && "$nabla" train --json --out none --epochs "$n" "$@") >"$tmp/out" 2>"$tmp/err" ||
		fail "train $*: $(cat "$tmp/err")"
	[ "$(wc -l <"$tmp/out")" -eq "$n" ] || fail "train --json $*: $(wc -l <"$tmp/out") lines for $n epochs"
	[ "$(grep -c '^{.*}$' "$tmp/out")" -eq "$n" ] || fail "train --json $*: not one object a line"
	grep -o '"epoch": [0-9]*' "$tmp/out" | sed 's/.* //' >"$tmp/got"
	seq 1 "$n" | cmp -s - "$tmp/got" || fail "train --json $*: epochs $(tr '\n' ' ' <"$tmp/got")"
}
json_epochs 60 --model xor
json_epochs 40 --model curve-fit
grep -q '"grid_mse": null' "$tmp/out" && grep -q '"grid_mse": [0-9]' "$tmp/out" ||
	fail "curve-fit --json: grid_mse"
json_epochs 3 --model perceptron-and
json_epochs 3 --model backprop-example
json_epochs 12 --model mlp --data . --batch 4
(cd "$tmp" && "$nabla" train --compare-optim --json --out none --epochs 12) >"$tmp/out" 2>"$tmp/err" ||
	fail "--compare-optim: $(cat "$tmp/err")"
for o in sgd momentum adam; do
	[ "$(grep -c "\"optim\": \"$o\"" "$tmp/out")" -eq 12 ] || fail "--compare-optim --json: $o"
done
# the lines for people stay few
(cd "$tmp" && "$nabla" train --model xor --out none --epochs 400) >"$tmp/out" 2>/dev/null
[ "$(wc -l <"$tmp/out")" -eq 20 ] || fail "xor: $(wc -l <"$tmp/out") lines for people"
# A missing data set says where it comes from, once, before training
fm="nabla train: mlp trains on Fashion-MNIST: apt install dataset-fashion-mnist (into /usr/share/datasets/fashion-mnist/), or --data DIR holding train-images-idx3-ubyte, train-labels-idx1-ubyte and the t10k- pair (each may end in .gz)"
mkdir "$tmp/empty"
(cd "$tmp" && "$nabla" train --model mlp --data empty --out none) >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] || fail "mlp without data: exit status"
[ "$(grep -cF "$fm" "$tmp/err")" -eq 1 ] || fail "mlp without data: $(cat "$tmp/err")"
grep -q "empty/train-images-idx3-ubyte.gz: cannot open" "$tmp/err" || fail "mlp: $(cat "$tmp/err")"
! grep -q '^epoch' "$tmp/out" || fail "mlp without data trained"
cf="nabla train: resnet20 needs the CIFAR-10 binaries in the --data directory: data_batch_1.bin to data_batch_5.bin and test_batch.bin (the cifar-10-batches-bin directory of https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz), or --data synthetic for CIFAR-shaped synthetic images"
(cd "$tmp" && "$nabla" train --model resnet20 --data empty --out none) >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] || fail "resnet20 without data: exit status"
[ "$(grep -cF "$cf" "$tmp/err")" -eq 1 ] || fail "resnet20 without data: $(cat "$tmp/err")"
grep -q "empty/data_batch_1.bin: cannot open" "$tmp/err" || fail "resnet20: $(cat "$tmp/err")"
"$nabla" bench --model lenet --data "$tmp/empty" --steps 1 >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "nabla bench: lenet trains on Fashion-MNIST: apt install dataset-fashion-mnist" \
	"$tmp/err" || fail "bench without data: $(cat "$tmp/err")"
# a file that is there but broken is not "install the package"
: >"$tmp/empty/train-images-idx3-ubyte"
(cd "$tmp" && "$nabla" train --model mlp --data empty --out none) >/dev/null 2>"$tmp/err"
! grep -q "apt install" "$tmp/err" || fail "a broken file: $(cat "$tmp/err")"

# Outputs that cannot be written fail before training, exit 1, one message,
# nothing written (the checks run on every output flag and on --out's files)
ro=/sys # not writable, even by root
out_fails() { # out_fails 'MESSAGE' ARGS...
	want=$1
	shift
	(cd "$tmp" && "$nabla" train "$@") >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ $rc -eq 1 ] || fail "train $*: exit $rc: $(cat "$tmp/err")"
	[ "$(cat "$tmp/err")" = "$want" ] || fail "train $*: stderr
$(cat "$tmp/err")
expected
$want"
	[ ! -s "$tmp/out" ] || fail "train $*: trained: $(cat "$tmp/out")"
}
MLP="--model mlp --data . --batch 4 --epochs 1 --out none"
out_fails "nabla train: --save: nodir/m.st: the directory nodir does not exist" $MLP --save nodir/m.st
out_fails "nabla train: --plot: nodir/p.svg: the directory nodir does not exist" $MLP --plot nodir/p.svg
out_fails "nabla train: --dot: $ro/d.dot: cannot write in $ro: Permission denied" $MLP --dot $ro/d.dot
out_fails "nabla train: --export: $ro/m.onnx: cannot write in $ro: Permission denied" $MLP \
	--export $ro/m.onnx
out_fails "nabla train: --save: empty: is a directory, not a file" $MLP --save empty
out_fails "nabla train: --save: empty/: is a directory, not a file" $MLP --save empty/
out_fails "nabla train: --export: /dev/null: is not a regular file" $MLP --export /dev/null
out_fails "nabla train: --save: the file name is empty" $MLP --save ''
out_fails "nabla train: --plot: t10k-images-idx3-ubyte/p.svg: the directory t10k-images-idx3-ubyte is not a directory" \
	$MLP --plot t10k-images-idx3-ubyte/p.svg
out_fails "nabla train: --save: nodir/x.st: the directory nodir does not exist" --model xor --epochs 3 \
	--out none --save nodir/x.st
out_fails "nabla train: --plot: nodir/c.svg: the directory nodir does not exist" --compare-optim \
	--out none --plot nodir/c.svg
(cd "$tmp" && "$nabla" train --model xor --out $ro/out) >"$tmp/out" 2>"$tmp/err"
[ $? -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "^nabla train: cannot create $ro/out: " \
	"$tmp/err" && [ ! -s "$tmp/out" ] || fail "--out $ro/out: $(cat "$tmp/err")"
if [ "$(id -u)" -ne 0 ]; then # root writes anywhere it has no permission to
	mkdir "$tmp/locked" && chmod 555 "$tmp/locked"
	out_fails "nabla train: --save: locked/m.st: cannot write in locked: Permission denied" $MLP \
		--save locked/m.st
fi
ls -A "$tmp" | grep -q '^\.nabla-probe' && fail "a probe file was left behind"
[ ! -e "$tmp/nodir" ] || fail "nodir was created"
# dot --forward is the default: the model as built, no gradient nodes;
# --backward adds them
(cd "$tmp" && "$nabla" dot --model lenet --forward -o fwd.dot && "$nabla" dot --model lenet \
	-o dflt.dot && "$nabla" dot --model lenet --backward -o bwd.dot) >/dev/null 2>&1 ||
	fail "dot --forward / --backward"
cmp -s "$tmp/fwd.dot" "$tmp/dflt.dot" || fail "dot --forward differs from the default"
grep -q conv2d_backward "$tmp/fwd.dot" && fail "dot --forward has gradient nodes"
grep -q conv2d_backward "$tmp/bwd.dot" || fail "dot --backward has no gradient nodes"

# bench --profile: the step's ops, slowest first, and the slowest nodes, on
# stderr; the usual line on stdout
(cd "$tmp" && "$nabla" bench --model mlp --steps 3 --warmup 1 --threads 1 --profile) \
	>"$tmp/out" 2>"$tmp/err" || fail "bench --profile: $(cat "$tmp/err")"
grep -q "^op  *nodes  *ms per run  *share" "$tmp/err" && grep -q "^matmul " "$tmp/err" &&
	grep -q "^slowest nodes:" "$tmp/err" || fail "bench --profile: $(cat "$tmp/err")"
grep -q "^mlp: batch 64, 1 threads" "$tmp/out" || fail "bench --profile stdout: $(cat "$tmp/out")"

# the listed values typed as such: --dist auto (one process without a
# launcher), --dtype f32 (the default, given)
(cd "$tmp" && "$nabla" train --model xor --dist auto --dtype f32 --epochs 100 --json --out none) \
	>"$tmp/out" 2>"$tmp/err" || fail "--dist auto --dtype f32: $(cat "$tmp/err")"
grep -q '"epoch": 100' "$tmp/out" || fail "--dist auto --dtype f32: $(cat "$tmp/out")"

# an argument's control bytes do not reach the terminal in any message that
# quotes it (numbers, dtypes, names of models, optimizers, schedules, formats,
# ops)
E=$(printf '\033')
for args in "train --epochs x${E}[2J" "train --lr x${E}[2J" "summary --model xor --dtype x${E}[2J" \
	"summary --model x${E}[2J" "train --model x${E}[2J" "train --optim x${E}[2J" \
	"train --schedule x${E}[2J" "bench --model x${E}[2J" "dot --format x${E}[2J" \
	"dot --optim x${E}[2J" "gradcheck --op x${E}[2J"; do
	(cd "$tmp" && "$nabla" $args) >/dev/null 2>"$tmp/err"
	rc=$?
	[ $rc -eq 2 ] && grep -q 'x?\[2J' "$tmp/err" && ! grep -q "$E" "$tmp/err" ||
		fail "nabla $args: exit $rc, an escape reached stderr: $(cat "$tmp/err")"
done
# ... nor do the paths in the library's messages and in "wrote" lines
for args in "train --model mlp --data d${E}[2J --epochs 1" "eval --model mlp --checkpoint m${E}[2J.st" \
	"export --model mlp --checkpoint m${E}[2J.st -o o.onnx" "export --model mlp -o no${E}[2J/o.onnx" \
	"train --model xor --epochs 2 --out none --save s${E}[2J.st" \
	"train --model curve-fit --epochs 2 --out none --plot p${E}[2J.svg"; do
	(cd "$tmp" && "$nabla" $args) >/dev/null 2>"$tmp/err"
	grep -q '?\[2J' "$tmp/err" && ! grep -q "$E" "$tmp/err" ||
		fail "nabla $args: an escape reached stderr: $(cat "$tmp/err")"
done
# help about help; --list after every option is read; an empty --data
"$nabla" help help | grep -q '^usage: nabla <command>' || fail "nabla help help"
expect 2 "nabla gradcheck: unknown option '--bogus' (see nabla gradcheck --help)" \
	gradcheck --list --bogus
expect 2 "nabla train: --data is empty" train --model mlp --data ""
expect 2 "nabla bench: --data is empty" bench --model mlp --data ""
# two outputs naming one file are refused before anything runs
expect 2 "nabla train: --plot and --dot name the same file, ./same.svg" \
	train --model curve-fit --epochs 2 --out none --plot same.svg --dot ./same.svg
expect 2 "nabla train: --save and --export name the same file, ./s.bin" \
	train --model mlp --data . --batch 4 --epochs 1 --out none --save s.bin --export ./s.bin
expect 2 "nabla ewma: -o and --plot name the same file, x.svg" ewma --demo --plot x.svg -o x.svg
[ ! -e "$tmp/same.svg" ] && [ ! -e "$tmp/s.bin" ] && [ ! -e "$tmp/x.svg" ] ||
	fail "a refused command wrote a file"
# a --out directory whose file names would not fit is refused, not cut short
long=$tmp
while [ ${#long} -lt 4200 ]; do long=$long/dddddddddddddddddddddddddddddddddddddddddddddddddd; done
"$nabla" train --model curve-fit --epochs 2 --out "$long" >/dev/null 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q "the directory's name is too long" "$tmp/err" ||
	fail "a --out too long: exit $rc: $(cat "$tmp/err")"
# options a bench model or ewma's mode does not read are refused, not ignored
expect 2 "nabla bench: --batch does not apply to --model xor (see nabla bench --help)" \
	bench --model xor --epochs 1 --batch 5
expect 2 "nabla bench: --data does not apply to --model resnet20 (see nabla bench --help)" \
	bench --model resnet20 --data . --steps 1
expect 2 "nabla bench: --repeat does not apply to --model peak (see nabla bench --help)" \
	bench --model peak --repeat 2
expect 2 "nabla bench: --steps does not apply to --model conv (see nabla bench --help)" \
	bench --model conv --steps 2
printf '1\n2\n' >"$tmp/s.txt"
expect 2 "nabla ewma: --n goes with --demo (it sizes or seeds the made-up series)" \
	ewma --beta 0.5 --n 2 s.txt
# --beta lists: no empty item, no more than 8, an over-long item refused
expect 2 "nabla ewma: --beta: an empty item in the list" ewma --demo --beta 0.5,,0.9
expect 2 "nabla ewma: at most 8 betas" ewma --demo --beta 0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9
expect 2 "nabla ewma: --beta: an item of 70 characters is no beta" \
	ewma --demo --beta "0.9$(printf '0%.0s' $(seq 66))x"

echo "cli ux: ok"
