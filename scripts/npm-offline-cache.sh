#!/bin/sh
# Fills an npm cache with exactly what the image's `npm ci` needs (the production dependencies of
# the deployed workspaces, and the catalog's dev dependencies that build the dashboard, from package-lock.json), so `docker build` runs without a network:
# the Dockerfile installs from `.npm-cache/` of the build context when it is there.
# The cache is kept per lock file in $VOLBACK_CACHE_DIR/npm-offline/<checksum>.
# Usage: scripts/npm-offline-cache.sh [DIR]   copies it to DIR (e.g. .npm-cache); prints the cache
set -eu

ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
CACHE=${VOLBACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/volback}
sum=$(cat "$ROOT/package-lock.json" "$ROOT/package.json" | cksum | cut -d' ' -f1)
out="$CACHE/npm-offline/$sum"
if [ ! -d "$out/_cacache" ]; then
  echo "volback: filling the npm cache for offline image builds ($out)" >&2
  start=$(date +%s)
  tmp=$(mktemp -d)
  # The manifests alone: npm ci checks every workspace's against the lock file.
  (cd "$ROOT" && for f in package.json package-lock.json .npmrc */*/package.json; do
    case $f in node_modules/* | bench/*) continue ;; esac
    mkdir -p "$tmp/app/$(dirname "$f")" && cp "$f" "$tmp/app/$f"
  done)
  (cd "$tmp/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error \
    --cache "$tmp/cache" -w @volback/agent -w @volback/catalog -w @volback/scheduler \
    -w @volback/storage-gateway -w @volback/cli >&2)
  # The image's web stage: the catalog's dev dependencies too (Vite, Preact, openapi-typescript).
  (cd "$tmp/app" && rm -rf node_modules && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
    --cache "$tmp/cache" -w @volback/catalog --include-workspace-root >&2)
  rm -rf "$tmp/cache/_logs" "$tmp/cache/_update-notifier-last-checked"
  mkdir -p "$CACHE/npm-offline"
  rm -rf "$out" && mv "$tmp/cache" "$out"
  rm -rf "$tmp"
  echo "volback: npm cache filled in $(( $(date +%s) - start ))s" >&2
fi
if [ $# -gt 0 ]; then
  rm -rf "$1" && mkdir -p "$1" && cp -R "$out/." "$1/"
fi
echo "$out"
