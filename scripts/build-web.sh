#!/bin/sh
# Builds the dashboard (services/catalog/web) into static files the catalog serves at `/`:
#   1. the catalog's OpenAPI document (what /openapi.json serves), written without NATS;
#   2. the client's types from it (openapi-typescript): never copied by hand;
#   3. a type check of the dashboard (tsc), then the bundle (Vite) into web/dist.
# `npm start`, `npm test` and the Dockerfile run it. Run it through scripts/env.sh (Node, node_modules).
set -eu
cd "$(dirname -- "$0")/.."
web=services/catalog/web
echo "volback: building the dashboard ($web/dist)" >&2
node services/catalog/src/bin/write-openapi.ts "$web/openapi.json"
npm exec --no -w @volback/catalog -- openapi-typescript web/openapi.json -o web/src/api-types.ts >/dev/null
npx --no -- tsc -p "$web/tsconfig.json"
npx --no -- vite build --config "$web/vite.config.ts" --logLevel warn
