# volback: one image for the four services and the `volback` CLI; the command names the part
# (agent, storage-gateway, scheduler, catalog, volback). One image because the services share
# nearly every byte (Node, the libraries, most dependencies): four images would be four copies
# to build, ship and keep in step (README, "Running it (Docker Compose)").
# Stages: node:24-bookworm (its toolchain) installs the production dependencies and compiles the
# native addons; the runtime is debian:bookworm-slim with the node binary of node:24-bookworm-slim.
#
# Tested with the legacy builder (DOCKER_BUILDKIT=0); nothing in it needs BuildKit. Without a
# network (air-gapped hosts, the deployment tests) put an npm cache in `.npm-cache/` of the build
# context first (scripts/npm-offline-cache.sh).

FROM node:24-bookworm AS build
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
# Manifests first: the dependency layer is rebuilt only when they change. npm ci wants every
# workspace's manifest to match the lock file, also of those left out of the image.
COPY package.json package-lock.json .npmrc ./
COPY libs/contracts/package.json libs/contracts/
COPY libs/data-path/package.json libs/data-path/
COPY libs/messaging/package.json libs/messaging/
COPY libs/observability/package.json libs/observability/
COPY libs/repository/package.json libs/repository/
COPY libs/runtime/package.json libs/runtime/
COPY libs/process/package.json libs/process/
COPY libs/testing/package.json libs/testing/
COPY services/agent/package.json services/agent/
COPY services/catalog/package.json services/catalog/
COPY services/scheduler/package.json services/scheduler/
COPY services/storage-gateway/package.json services/storage-gateway/
COPY tools/cli/package.json tools/cli/
COPY infra/deploy/package.json infra/deploy/
COPY infra/e2e/package.json infra/e2e/
COPY infra/local-stack/package.json infra/local-stack/
# The optional offline cache (the pattern matches nothing when it is absent; package.json keeps
# the instruction valid then).
COPY package.json .npm-cach[e] /tmp/npm-cache/
# Production dependencies of the deployed workspaces only. Install scripts are skipped: the only
# ones (ssh2, cpu-features, via dockerode) build optional SSH helpers volback does not use.
RUN set -eu; \
    if [ -d /tmp/npm-cache/_cacache ]; then offline=--offline; else offline=; fi; \
    npm ci --omit=dev --ignore-scripts --cache /tmp/npm-cache $offline \
      -w @volback/agent -w @volback/catalog -w @volback/scheduler -w @volback/storage-gateway -w @volback/cli; \
    rm -rf /tmp/npm-cache node_modules/@volback/testing node_modules/.package-lock.json; \
    # Prebuilt binaries of other platforms, type declarations, source maps and docs are dead weight.
    arch=$(node -p 'process.platform + "-" + process.arch'); \
    find node_modules -type d -name prebuilds -prune -exec sh -c \
      'for d in "$1"/*; do [ "$(basename "$d")" = "$0" ] || rm -rf "$d"; done' "$arch" {} \; ; \
    find node_modules \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \
      -o -name '*.md' -o -name '*.markdown' \) -type f -delete; \
    rm -rf node_modules/@types
# Native addons (the chunker's hot loop, extended attributes, file times, zstd contexts), compiled
# against this Node.
COPY scripts/build-native.sh scripts/
COPY libs/repository/native libs/repository/native
RUN sh scripts/build-native.sh && test -f libs/repository/native/build/rabin.node && \
    test -f libs/repository/native/build/xattr.node && test -f libs/repository/native/build/zstd.node && \
    test -f libs/repository/native/build/scan.node && test -f libs/repository/native/build/write.node && \
    rm -f libs/repository/native/*.c
COPY libs libs
COPY services services
COPY tools tools
COPY deploy/image deploy/image

# The dashboard (services/catalog/web): built here with the catalog's dev dependencies (Vite,
# Preact, openapi-typescript), of which only the static files in web/dist go into the image.
FROM node:24-bookworm AS web
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY --from=build /app/package.json /app/package-lock.json /app/.npmrc ./
COPY infra/deploy/package.json infra/deploy/
COPY infra/e2e/package.json infra/e2e/
COPY infra/local-stack/package.json infra/local-stack/
COPY libs libs
COPY services services
COPY tools tools
COPY scripts/api-types.sh scripts/build-web.sh scripts/
COPY package.json .npm-cach[e] /tmp/npm-cache/
RUN set -eu; \
    if [ -d /tmp/npm-cache/_cacache ]; then offline=--offline; else offline=; fi; \
    npm ci --ignore-scripts --cache /tmp/npm-cache $offline -w @volback/catalog --include-workspace-root; \
    sh scripts/build-web.sh && test -f services/catalog/web/dist/index.html

# Node itself from the official slim image; the runtime stage is Debian slim with only that
# binary: npm, corepack and the C headers (about 80 MB) are for building, not for running.
FROM node:24-bookworm-slim AS node

FROM debian:bookworm-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE_URL=
LABEL org.opencontainers.image.title="volback" \
      org.opencontainers.image.description="Automated backup and recovery of Docker volumes into a restic repository: agent, storage-gateway, scheduler, catalog and the volback CLI" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production \
    VOLBACK_OPS_HOST=0.0.0.0 \
    VOLBACK_OPS_PORT=9400 \
    VOLBACK_LOG_PRETTY=0 \
    VOLBACK_DATA_DIR=/data \
    VOLBACK_AGENT_STATE_DIR=/var/lib/volback-agent
COPY --from=node /usr/local/bin/node /usr/local/bin/node
# The user node (1000) as in the official image; state directories owned by whoever writes them
# (a fresh named volume takes this owner).
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node && \
    mkdir -p /data /var/lib/volback-agent && chown node:node /data && chmod 700 /var/lib/volback-agent
COPY --from=build /app /app
COPY --from=web /app/services/catalog/web/dist /app/services/catalog/web/dist
WORKDIR /app
# Every service but the agent runs as node; the agent runs as root (compose `user: root`): it
# reads the Docker socket and volumes whose files belong to any user.
USER node
EXPOSE 8080 9400
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "/app/deploy/image/healthcheck.ts"]
ENTRYPOINT ["/app/deploy/image/entrypoint.sh"]
CMD ["help"]
