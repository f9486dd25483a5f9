#!/bin/sh
# Bundles the `volback` command (tools/cli/rolldown.config.ts) into tools/cli/dist (not in git),
# which tools/cli/bin/volback runs. Rebuilt only when a source of the workspace's libraries or of
# the CLI, or the lock file, is newer than the last bundle. Run it through scripts/env.sh (Node,
# node_modules); every project command does.
set -eu
ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
OUT="$ROOT/tools/cli/dist"
stamp="$OUT/.stamp"
if [ -f "$stamp" ] && [ -f "$OUT/cli.js" ] && [ -z "$(find "$ROOT"/libs/*/src "$ROOT/tools/cli/src" \
  "$ROOT/tools/cli/rolldown.config.ts" "$ROOT/libs/repository/package.json" "$ROOT/package-lock.json" \
  -newer "$stamp" -print 2>/dev/null | head -n 1)" ]; then
  exit 0
fi
# A fresh directory, then swapped in whole: a command already running keeps the files it loaded.
tmp="$ROOT/tools/cli/dist.tmp.$$"
old="$ROOT/tools/cli/dist.old.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp" "$old"' EXIT
if ! log=$(cd "$ROOT/tools/cli" && VOLBACK_BUNDLE_DIR="$tmp" npx --no -- rolldown -c rolldown.config.ts 2>&1); then
  printf '%s\n' "$log" >&2
  echo "volback: bundling the command line failed (tools/cli/rolldown.config.ts)" >&2
  exit 1
fi
touch "$tmp/.stamp"
if [ -d "$OUT" ]; then mv "$OUT" "$old"; fi
mv "$tmp" "$OUT"
echo "volback: bundled the command line ($OUT)" >&2
