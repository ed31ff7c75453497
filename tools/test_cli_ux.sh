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
for cmd in train dot export summary bench ewma gradcheck; do
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
echo "cli ux: ok"
