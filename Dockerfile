# syntax=docker/dockerfile:1
# esm2-serve for CPU hosts.
#   docker build -t esm2-serve:cpu .
#   docker run -p 8000:8000 -v esm2-data:/data esm2-serve:cpu
# The CUDA image is Dockerfile.cuda. docs/deployment.md has the details.

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: all dependencies, TypeScript compiled, then dev dependencies pruned ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# onnxruntime-node's CPU binaries ship inside the npm package; nothing to download. Its install
# script (which fetches the CUDA provider from NuGet) is denied in package.json "allowScripts";
# the variable keeps it a no-op even for an npm that does not read that field.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json ./
# No install scripts at all here: the dependencies' are not needed on CPU, and the project's own
# "prepare" (the build) needs the sources, copied next.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

# ---- runtime: production dependencies and compiled JavaScript, run as a non-root user ----
FROM ${NODE_IMAGE} AS runtime
# ALLOW_DEMO_MODEL=false: a container that cannot get its model fails to start rather than serving the
# random-weight demo checkpoint (docker run -e ALLOW_DEMO_MODEL=true … to try the image offline).
ENV NODE_ENV=production \
    ALLOW_DEMO_MODEL=false \
    HF_HOME=/data/hf \
    ESM2_COMPILE_CACHE=/data/esm2/compiled \
    ESM2_DEMO_CACHE=/data/esm2/demo
WORKDIR /app
# Application files stay owned by root (read-only to the server); only /data is writable.
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist/src ./dist/src
# The gRPC API's .proto files, loaded at run time (GRPC_PORT; src/server/grpc/server.ts).
COPY proto ./proto
RUN mkdir -p /data/hf /data/esm2 && chown -R 1000:1000 /data
# uid 1000 is the image's "node" user.
USER 1000:1000
# Model files (HuggingFace cache layout) and compiled graphs.
VOLUME ["/data"]
EXPOSE 8000
# Liveness without curl (not in slim images): Node's fetch against the server's liveness route, 503
# (unhealthy) only once every replica has failed for good; 200 while the model loads.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5m --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/v1/health/live', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# `npm start` is `node bin/esm2.js serve`; run without npm so SIGTERM reaches the server, which drains.
# Other commands: docker run esm2-serve:cpu embed --model ... (the arguments replace "serve").
ENTRYPOINT ["node", "bin/esm2.js"]
CMD ["serve"]
