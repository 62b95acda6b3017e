# syntax=docker/dockerfile:1
# sidx on CPU (Debian bookworm: FAISS and OpenBLAS from Debian). Build: docker build -t sidx .
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libfaiss-dev libopenblas-dev g++ make python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY native ./native
RUN npm ci --omit=dev --no-audit --no-fund && npm run build:native
COPY . .

FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends libfaiss-dev libopenblas0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /app sidx \
 && mkdir -p /data && chown sidx /data
WORKDIR /app
COPY --from=build --chown=sidx /app /app
USER sidx
ENV SIDX__SERVER__HOST=0.0.0.0 \
    SIDX__SERVER__PORT=8080 \
    SIDX__STORAGE__DATA_DIR=/data \
    SIDX__MODEL__DIR=/app/models/default
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/readyz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "bin/sidx.js", "serve"]
