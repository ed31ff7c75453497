#!/usr/bin/env bash
# Install into a scratch DESTDIR and build examples/xor.c against the
# installed header, library and nabla.pc, as a user of the library would.
set -euo pipefail
build=$1 src=$2 sanitize=${3:-none}
if [ "$sanitize" != none ]; then
	echo "skipped: a sanitized library needs its runtime linked first; the plain pass checks installing"
	exit 77
fi
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --no-rebuild --destdir "$dest" >/dev/null
pc=$(dirname "$(find "$dest" -name nabla.pc | head -n 1)")
prefix=$(PKG_CONFIG_PATH=$pc pkg-config --variable=prefix nabla)
libdir=$dest$(PKG_CONFIG_PATH=$pc pkg-config --variable=libdir nabla)
# the .pc names the final prefix; point it at the scratch copy
cflags=$(PKG_CONFIG_PATH=$pc pkg-config --define-variable=prefix="$dest$prefix" --cflags nabla)
libs=$(PKG_CONFIG_PATH=$pc pkg-config --define-variable=prefix="$dest$prefix" --libs nabla)
# no other package's include directories in the flags (Graphviz's were),
# and no flag twice
case " $cflags " in *graphviz*) echo "nabla.pc leaks Graphviz's Cflags: $cflags"; exit 1 ;; esac
all=$(PKG_CONFIG_PATH=$pc pkg-config --static --libs nabla)
dups=$(printf '%s\n' $all | sort | uniq -d)
[ -z "$dups" ] || { echo "nabla.pc repeats $dups: $all"; exit 1; }
cc -std=c11 -Wall -Wextra -Werror "$src/examples/xor.c" $cflags $libs -o "$dest/xor"
out=$(cd "$dest" && LD_LIBRARY_PATH=$libdir ./xor)
echo "$out" | tail -n 4
# the four XOR outputs are on the right side of 0.5
echo "$out" | awk '/xor/ { v = $NF; want = ($1 != $3); if ((v > 0.5) != want) bad = 1 } END { exit bad }'
echo "install: 1 passed, 0 failed"
