#!/bin/sh
# Installs the real servers the tests and the local stack run, when they are missing:
#   nats-server and minio: `go install` of pinned versions into $VOLBACK_CACHE_DIR/bin
#   dockerd, containerd, busybox (static) and restic: Debian packages docker.io, containerd,
#   busybox-static, restic.
# A binary already on PATH, or named by NATS_SERVER_BIN / MINIO_BIN / DOCKERD_BIN / CONTAINERD_BIN /
# BUSYBOX_BIN / RESTIC_BIN, is used as it is. Usage: scripts/install-servers.sh [nats] [minio] [docker] [restic]
set -eu

NATS_SERVER_VERSION=v2.12.15
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c # github.com/minio/minio, the last published commit
CACHE=${VOLBACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/volback}
BIN="$CACHE/bin"
mkdir -p "$BIN"

want=${*:-nats minio docker restic}

have() { # have <env var> <binary name>
  eval "val=\${$1:-}"
  if [ -n "$val" ]; then [ -x "$val" ] && return 0; echo "volback: $1=$val is not executable" >&2; exit 1; fi
  PATH="$PATH:/usr/sbin:/sbin:$BIN" command -v "$2" >/dev/null 2>&1
}

timed() { # timed <what> <command...>
  what=$1; shift
  echo "volback: installing $what" >&2
  start=$(date +%s)
  "$@"
  echo "volback: installed $what in $(( $(date +%s) - start ))s" >&2
}

go_install() { # go_install <binary> <module@version>; builds into the cache, atomically
  tmp=$(mktemp -d)
  GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOBIN="$tmp" GOFLAGS=-mod=mod go install "$2"
  mv "$tmp/$1" "$BIN/$1"
  rmdir "$tmp"
}

apt_install() {
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 ||
    { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends "$@" >/dev/null; }
}

for item in $want; do
  case $item in
    nats)
      have NATS_SERVER_BIN nats-server ||
        timed "nats-server $NATS_SERVER_VERSION (go install)" go_install nats-server "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
      ;;
    minio)
      have MINIO_BIN minio ||
        timed "minio $MINIO_VERSION (go install)" go_install minio "github.com/minio/minio@$MINIO_VERSION"
      ;;
    docker)
      pkgs=
      have DOCKERD_BIN dockerd || pkgs="docker.io"
      # The harness runs a containerd of its own beside each dockerd (libs/testing/README.md).
      have CONTAINERD_BIN containerd || pkgs="$pkgs containerd"
      # The image we import needs a static busybox; Debian's dynamic one would not run in it.
      if ! have BUSYBOX_BIN busybox || ! LC_ALL=C ldd "${BUSYBOX_BIN:-$(command -v busybox)}" 2>&1 | grep -q 'not a dynamic'; then
        pkgs="$pkgs busybox-static"
      fi
      [ -z "$pkgs" ] || timed "Debian packages:$pkgs" apt_install $pkgs
      ;;
    restic)
      have RESTIC_BIN restic || timed "Debian package restic" apt_install restic
      ;;
    *) echo "volback: unknown server '$item' (nats, minio, docker, restic)" >&2; exit 2 ;;
  esac
done
