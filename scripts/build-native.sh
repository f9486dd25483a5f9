#!/bin/sh
# Builds volback's native hot loops (libs/repository/native/*.c, N-API) with the machine's C
# compiler against the running Node's headers, into libs/repository/native/build/ (not in git).
# Rebuilt only when the sources or the Node version change. Without a compiler the build is
# skipped with a warning and the library uses its JavaScript implementations (same results, slower).
set -eu
ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
SRC="$ROOT/libs/repository/native"
OUT="$SRC/build"
headers=$(node -p "require('node:path').resolve(process.execPath, '../../include/node')")
want=$( (node --version; cat "$SRC"/*.c) | cksum | cut -d' ' -f1)
stamp="$OUT/.stamp"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$OUT/rabin.node" ]; then exit 0; fi
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1 || [ ! -f "$headers/node_api.h" ]; then
  echo "volback: no C compiler or Node headers ($headers): using the JavaScript chunker (slower)" >&2
  exit 0
fi
mkdir -p "$OUT"
tmp="$OUT/rabin.node.tmp.$$"
if "$cc" -O3 -std=c11 -Wall -Wextra -Werror -fPIC -shared -DNAPI_VERSION=8 -I"$headers" \
  -o "$tmp" "$SRC/rabin.c"; then
  mv "$tmp" "$OUT/rabin.node"
  echo "$want" > "$stamp"
  echo "volback: built the native chunker ($OUT/rabin.node)" >&2
else
  rm -f "$tmp"
  echo "volback: building the native chunker failed: using the JavaScript chunker (slower)" >&2
fi
