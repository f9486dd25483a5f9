#!/bin/sh
# The whole test command (`npm test`): servers, format, lint (module boundaries), types,
# contract files in step with the schemas, then every test against real servers.
set -eu
cd "$(dirname -- "$0")/.."
export NX_DAEMON=false NX_NO_CLOUD=true NX_TUI=false

start=$(date +%s)
sh scripts/install-servers.sh
echo "== format (prettier --check)"
prettier --check --log-level warn .
echo "== lint (eslint, nx module boundaries)"
nx show projects >/dev/null # computes the project graph the boundaries rule reads
eslint --max-warnings 0 .
echo "== types (API client types from OpenAPI, tsc)"
sh scripts/api-types.sh
tsc -p tsconfig.json
echo "== contracts: committed JSON Schemas are current"
node libs/contracts/src/bin/write-json-schemas.ts --check
echo "== dashboard (OpenAPI types, tsc, vite build)"
sh scripts/build-web.sh
echo "== tests (vitest, real NATS / MinIO / Docker)"
vitest run "$@"
echo "== npm test passed in $(( $(date +%s) - start ))s"
