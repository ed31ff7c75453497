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
echo "cli ux: ok"
