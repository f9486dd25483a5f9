#!/bin/sh
# Builds the dashboard (services/catalog/web) into static files the catalog serves at `/`:
#   1. the client's types from the catalog's OpenAPI document (scripts/api-types.sh);
#   2. a type check of the dashboard (tsc), then the bundle (Vite) into web/dist.
# `npm start`, `npm test` and the Dockerfile run it. Run it through scripts/env.sh (Node, node_modules).
set -eu
cd "$(dirname -- "$0")/.."
web=services/catalog/web
echo "volback: building the dashboard ($web/dist)" >&2
sh scripts/api-types.sh
npx --no -- tsc -p "$web/tsconfig.json"
npx --no -- vite build --config "$web/vite.config.ts" --logLevel warn
