#!/bin/sh
# Builds volback's native parts (libs/repository/native/*.c, N-API) with the machine's C
# compiler against the running Node's headers, into libs/repository/native/build/ (not in git):
# the chunker's hot loop (rabin.node), extended attributes (xattr.node), nanosecond file times
# (times.node), zstd with contexts kept between calls (zstd.node, against the zstd inside
# the node binary), a backup's directory reads on the thread pool (scan.node) and a restore's
# small files written there in batches (write.node), and blobs sealed and opened there
# (blobs.node, against the OpenSSL and zstd inside the node binary); native/napi-fs.h holds what
# they share.
# Rebuilt only when the sources or the Node version change. Without a compiler the build is
# skipped with a warning and the library uses its JavaScript chunker (same results, slower),
# neither records nor restores extended attributes, restores times to about 240 ns, compresses
# with node:zlib (slower for small blobs), walks directories with readdir and lstat on its own
# thread and writes restored small files there (slower for many small files).
set -eu
ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
SRC="$ROOT/libs/repository/native"
OUT="$SRC/build"
headers=$(node -p "require('node:path').resolve(process.execPath, '../../include/node')")
want=$( (node --version; cat "$SRC"/*.c "$SRC"/*.h) | cksum | cut -d' ' -f1)
stamp="$OUT/.stamp"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$OUT/rabin.node" ] && [ -f "$OUT/xattr.node" ] &&
  [ -f "$OUT/times.node" ] && [ -f "$OUT/zstd.node" ] && [ -f "$OUT/scan.node" ] &&
  [ -f "$OUT/write.node" ] && [ -f "$OUT/blobs.node" ]; then
  exit 0
fi
cc=${CC:-cc}
if ! command -v "$cc" >/dev/null 2>&1 || [ ! -f "$headers/node_api.h" ]; then
  echo "volback: no C compiler or Node headers ($headers): using the JavaScript chunker (slower);" \
    "extended attributes are neither backed up nor restored" >&2
  exit 0
fi
mkdir -p "$OUT"

# build <name> <what it is> <what happens without it>: native/<name>.c -> build/<name>.node
build() {
  tmp="$OUT/$1.node.tmp.$$"
  if "$cc" -O3 -std=c11 -Wall -Wextra -Werror -fPIC -shared -DNAPI_VERSION=8 -I"$headers" \
    -o "$tmp" "$SRC/$1.c"; then
    mv "$tmp" "$OUT/$1.node"
    echo "volback: built $2 ($OUT/$1.node)" >&2
  else
    rm -f "$tmp"
    echo "volback: building $2 failed: $3" >&2
    return 1
  fi
}
built=yes
build rabin 'the native chunker' 'using the JavaScript chunker (slower)' || built=no
build xattr 'the extended-attribute addon' 'extended attributes are neither backed up nor restored' || built=no
build times 'the file-times addon' 'restored times are exact to about 240 ns, not to the nanosecond' || built=no
build zstd 'the zstd addon' 'compressing with node:zlib (slower for small blobs)' || built=no
build scan 'the directory-scan addon' 'a backup reads directories on its own thread (slower)' || built=no
build write 'the file-write addon' 'a restore writes small files on its own thread (slower)' || built=no
build blobs 'the blob sealing and opening addon' 'blobs are sealed and opened in worker threads (slower)' || built=no
# A failed part is tried again by the next command.
if [ "$built" = yes ]; then echo "$want" > "$stamp"; fi
