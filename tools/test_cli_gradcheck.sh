#!/bin/sh
# Checks `nabla gradcheck`: table and summary, JSON lines, exit statuses.
# usage: test_cli_gradcheck.sh path/to/nabla
set -u
nabla=$1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$nabla" gradcheck --seeds 1 >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 0 ] || fail "all ops: exit $rc: $(cat "$tmp/err")"
head -n 1 "$tmp/out" | grep -q '^op  *max abs err  *max rel err  *checked  *kinks  *result$' ||
	fail "header: $(head -n 1 "$tmp/out")"
grep -Eq '^matmul +[0-9.e+-]+ +[0-9.e+-]+ +[1-9][0-9]* +[0-9]+  PASS$' "$tmp/out" ||
	fail "no PASS row for matmul"
n_ops=$("$nabla" gradcheck --list | wc -l)
n_rows=$(grep -c '  PASS$' "$tmp/out")
[ "$n_rows" -eq "$n_ops" ] || fail "$n_rows PASS rows for $n_ops ops"
tail -n 1 "$tmp/out" | grep -q "^$n_ops passed, 0 failed\$" || fail "summary: $(tail -n 1 "$tmp/out")"

"$nabla" gradcheck --json --op add --op=matmul --seeds=2 >"$tmp/out" 2>"$tmp/err" ||
	fail "json: exit $?"
[ "$(wc -l <"$tmp/out")" -eq 2 ] || fail "json: expected 2 lines"
head -n 1 "$tmp/out" | grep -Eq '^\{"op":"add","seeds":2,"max_abs_err":[0-9.e+-]+,"max_rel_err":[0-9.e+-]+,"checked":[1-9][0-9]*,"skipped_kinks":[0-9]+,"failed":0,"passed":true\}$' ||
	fail "json line: $(head -n 1 "$tmp/out")"
tail -n 1 "$tmp/out" | grep -q '^{"op":"matmul",' || fail "json: second op"
grep -q '^2 passed, 0 failed$' "$tmp/err" || fail "json: summary belongs on stderr"

"$nabla" gradcheck --op no_such_op >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] || fail "unknown op: exit $rc"
grep -q "no op named 'no_such_op'" "$tmp/err" && grep -q 'Valid names' "$tmp/err" &&
	grep -q ' matmul ' "$tmp/err" || fail "unknown op message: $(cat "$tmp/err")"

"$nabla" gradcheck --op max_backward 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q 'cannot be checked on its own' "$tmp/err" || fail "internal op: exit $rc"
"$nabla" gradcheck --seeds 0 2>/dev/null; [ $? -eq 2 ] || fail "--seeds 0 accepted"
"$nabla" gradcheck --seeds x 2>/dev/null; [ $? -eq 2 ] || fail "--seeds x accepted"
"$nabla" gradcheck --frobnicate 2>/dev/null; [ $? -eq 2 ] || fail "unknown option accepted"
"$nabla" gradcheck --help | grep -q '^usage: nabla gradcheck' || fail "--help"
echo "cli gradcheck: ok"
