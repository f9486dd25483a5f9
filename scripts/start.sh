#!/bin/sh
# `npm start`: the local stack with embedded defaults (see README, "Configuration").
set -eu
cd "$(dirname -- "$0")/.."
sh scripts/install-servers.sh nats
sh scripts/build-web.sh
exec node infra/local-stack/src/main.ts
