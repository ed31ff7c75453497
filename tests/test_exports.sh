#!/usr/bin/env bash
# The shared library's interface: it exports exactly the functions the
# public headers declare with NB_API (no nb__ internal), every function
# declaration in the headers carries NB_API, its SONAME is versioned, and
# the headers compile as C99 with -pedantic-errors (and as C11).
set -euo pipefail
so=$1 src=$2
fail=0
# function declarations at the start of a line, as the headers write them
decls=$(grep -hE '^(NB_API )?[a-z][^(]*\bnb_[a-z0-9_]+ *\(' "$src"/include/nabla.h "$src"/include/nabla/*.h |
	grep -vE '^(typedef|static|extern|struct|enum|union)\b' || true)
missing_api=$(printf '%s\n' "$decls" | grep -v '^NB_API ' || true)
if [ -n "$missing_api" ]; then
	echo "declared without NB_API (not exported):"
	printf '  %s\n' "$missing_api"
	fail=1
fi
declared=$(printf '%s\n' "$decls" | sed -E 's/^.*\b(nb_[a-z0-9_]+) *\(.*$/\1/' | sort -u)
exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TtWiV]$/ { print $3 }' | sort -u)
internal=$(printf '%s\n' "$exported" | grep '^nb__' || true)
if [ -n "$internal" ]; then
	echo "internal symbols exported: $(printf '%s\n' "$internal" | wc -l)"
	printf '  %s\n' $internal | head -n 5
	fail=1
fi
extra=$(comm -13 <(printf '%s\n' "$declared") <(printf '%s\n' "$exported") | grep -v '^_' || true)
if [ -n "$extra" ]; then
	echo "exported but not declared in a public header:"
	printf '  %s\n' $extra
	fail=1
fi
absent=$(comm -23 <(printf '%s\n' "$declared") <(printf '%s\n' "$exported") || true)
if [ -n "$absent" ]; then
	echo "declared in a public header but not in the library:"
	printf '  %s\n' $absent
	fail=1
fi
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
case "$soname" in
libnabla.so.[0-9]*) ;;
*) echo "SONAME is '$soname', not libnabla.so.N"; fail=1 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include <nabla.h>\nint main(void) { return nb_version() == NULL; }\n' >"$tmp/h.c"
for std in c99 c11; do
	if ! cc -std=$std -pedantic-errors -Wall -Wextra -Werror -I"$src/include" -c "$tmp/h.c" -o "$tmp/h.o" 2>"$tmp/err"; then
		echo "#include <nabla.h> does not compile with -std=$std -pedantic-errors:"
		head -n 20 "$tmp/err"
		fail=1
	fi
done
# each part of the API included first, alone
for h in "$src"/include/nabla/*.h; do
	printf '#include "nabla/%s"\nint main(void) { return 0; }\n' "$(basename "$h")" >"$tmp/p.c"
	if ! cc -std=c99 -pedantic-errors -Wall -Wextra -Werror -I"$src/include" -c "$tmp/p.c" -o "$tmp/p.o" 2>"$tmp/err"; then
		echo "#include <nabla/$(basename "$h")> alone does not compile:"
		head -n 10 "$tmp/err"
		fail=1
	fi
done
n=$(printf '%s\n' "$exported" | wc -l)
[ $fail = 0 ] && echo "exports: $n functions, SONAME $soname, headers C99-clean"
exit $fail
