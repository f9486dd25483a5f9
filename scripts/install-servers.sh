#!/bin/sh
# Installs the real servers the tests and the local stack run, when they are missing:
#   nats-server and minio: `go install` of pinned versions into $VOLBACK_CACHE_DIR/bin
#   dockerd, containerd, busybox (static) and restic: Debian packages docker.io, containerd,
#   busybox-static, restic.
#   chromium: Debian package chromium, the browser of the dashboard's tests (CHROMIUM_BIN)
#   For the deployment tests (the images and compose files, infra/deploy):
#   restic-latest: restic $RESTIC_LATEST_VERSION, `go install` into $VOLBACK_CACHE_DIR/bin/restic-<version>
#     (named by its version so that Debian's restic stays the one on PATH); the bench compares both
#   rustic: rustic $RUSTIC_VERSION (the fastest implementation of restic's format, Rust), `cargo
#     install --locked` into $VOLBACK_CACHE_DIR/rustic, linked as bin/rustic-<version>; bench only
#   compose: Docker Compose v5 built from the Go module proxy into $VOLBACK_CACHE_DIR/bin/docker-compose
#   mc: the MinIO client (the health check of the minio image), `go install` of a pinned version
#   images: stand-ins of the upstream base images, built without a registry by
#     scripts/build-stand-in-images.sh into $VOLBACK_CACHE_DIR/images
# A binary already on PATH, or named by NATS_SERVER_BIN / MINIO_BIN / DOCKERD_BIN / CONTAINERD_BIN /
# BUSYBOX_BIN / RESTIC_BIN / CHROMIUM_BIN / COMPOSE_BIN / MC_BIN, is used as it is.
# Usage: scripts/install-servers.sh [nats] [minio] [docker] [restic] [chromium] [compose] [mc] [images]
set -eu

NATS_SERVER_VERSION=v2.12.15
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c # github.com/minio/minio, the last published commit
COMPOSE_VERSION=v5.6.0
RESTIC_LATEST_VERSION=v0.19.1 # the newest restic, for the bench only (never the tests' restic)
RUSTIC_VERSION=0.11.4 # rustic-rs on crates.io, for the bench only (about 9 minutes to build on 2 cores)
MC_VERSION=v0.0.0-20250313080218-cf909e1063a9 # github.com/minio/mc, the one the pinned MinIO requires
CACHE=${VOLBACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/volback}
BIN="$CACHE/bin"
mkdir -p "$BIN"

want=${*:-nats minio docker restic chromium compose mc images}

# Go's official tarball installs into /usr/local/go/bin, which a bare PATH (cron, CI) lacks.
command -v go >/dev/null 2>&1 || PATH="$PATH:/usr/local/go/bin"

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
  go_install_as "$1" "$1" "$2"
}

go_install_as() { # go_install_as <binary> <name in the cache> <module@version>
  tmp=$(mktemp -d)
  GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOBIN="$tmp" GOFLAGS=-mod=mod go install "$3"
  mv "$tmp/$1" "$BIN/$2"
  rmdir "$tmp"
}

apt_install() {
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 ||
    { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q --no-install-recommends "$@" >/dev/null; }
}

# rustic with cargo (rustup's or Debian's), kept in its own root; the link names its version.
install_rustic() {
  command -v cargo >/dev/null 2>&1 || PATH="$HOME/.cargo/bin:$PATH"
  command -v cargo >/dev/null 2>&1 || timed "Debian package cargo" apt_install cargo
  cargo install --locked --quiet rustic-rs --version "$RUSTIC_VERSION" --root "$CACHE/rustic"
  ln -sf "$CACHE/rustic/bin/rustic" "$BIN/rustic-$RUSTIC_VERSION"
}

# `go install` refuses Compose (its go.mod has exclude directives): build it inside its module.
build_compose() {
  dir=$(GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=-mod=mod go mod download -json "github.com/docker/compose/v5@$COMPOSE_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "volback: go mod download of compose $COMPOSE_VERSION named no directory" >&2; exit 1; }
  tmp=$(mktemp -d)
  cp -R "$dir/." "$tmp/src" 2>/dev/null || { mkdir -p "$tmp/src" && cp -R "$dir/." "$tmp/src"; }
  chmod -R u+w "$tmp/src"
  (cd "$tmp/src" && CGO_ENABLED=0 GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=-mod=mod go build -trimpath \
    -ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$COMPOSE_VERSION" -o "$tmp/docker-compose" ./cmd)
  mv "$tmp/docker-compose" "$BIN/docker-compose"
  rm -rf "$tmp"
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
    chromium)
      have CHROMIUM_BIN chromium || timed "Debian package chromium" apt_install chromium
      ;;
    restic-latest)
      [ -x "$BIN/restic-${RESTIC_LATEST_VERSION#v}" ] || timed "restic $RESTIC_LATEST_VERSION (go install)" \
        go_install_as restic "restic-${RESTIC_LATEST_VERSION#v}" "github.com/restic/restic/cmd/restic@$RESTIC_LATEST_VERSION"
      ;;
    rustic)
      [ -x "$BIN/rustic-$RUSTIC_VERSION" ] || timed "rustic $RUSTIC_VERSION (cargo install)" install_rustic
      ;;
    compose)
      have COMPOSE_BIN docker-compose || timed "docker compose $COMPOSE_VERSION (go build)" build_compose
      ;;
    mc)
      have MC_BIN mc || timed "mc $MC_VERSION (go install)" go_install mc "github.com/minio/mc@$MC_VERSION"
      ;;
    images)
      PATH="$PATH:/usr/sbin:/sbin" command -v debootstrap >/dev/null 2>&1 ||
        timed "Debian package debootstrap" apt_install debootstrap
      sh "$(dirname -- "$0")/build-stand-in-images.sh"
      ;;
    *) echo "volback: unknown server '$item' (nats, minio, docker, restic, restic-latest, rustic, chromium, compose, mc, images)" >&2; exit 2 ;;
  esac
done
