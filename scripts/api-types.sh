#!/bin/sh
# The catalog API's client types, generated from its OpenAPI document (never copied by hand, not
# in git): the catalog's /openapi.json written without NATS, then openapi-typescript into the
# dashboard (services/catalog/web/src/api-types.ts) and the CLI (tools/cli/src/api-types.ts).
# Both import them as types only, so nothing runs them. `npm run typecheck`, `npm test`,
# `npm start` (through build-web.sh) and the Dockerfile run it; run it through scripts/env.sh.
set -eu
cd "$(dirname -- "$0")/.."
spec=services/catalog/web/openapi.json
node services/catalog/src/bin/write-openapi.ts "$spec"
# openapi-typescript is the catalog's dev dependency; it runs in services/catalog.
npm exec --no -w @volback/catalog -- openapi-typescript web/openapi.json -o web/src/api-types.ts >/dev/null
npm exec --no -w @volback/catalog -- openapi-typescript web/openapi.json -o ../../tools/cli/src/api-types.ts >/dev/null
