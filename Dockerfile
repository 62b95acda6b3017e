# syntax=docker/dockerfile:1
# sidx images, two targets from one file (README: "Docker"):
#   docker build -t sidx:gpu .               default: CUDA 12 + cuDNN 9 runtime (Ubuntu 24.04), Node.js 22 LTS,
#                                            onnxruntime-node with its CUDA 12 execution provider, libfaiss
#   docker build --target cpu -t sidx:cpu .  CPU only: Debian bookworm, Node.js 22 LTS, libfaiss
# Both run as a non-root user, keep their data in the /data volume and report health from /readyz.
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
ARG UBUNTU_IMAGE=ubuntu:24.04
ARG NODE_IMAGE=node:22-bookworm-slim
ARG NODE_MAJOR=22
# NodeSource's repository signing key; the build stops when the downloaded key has another fingerprint.
ARG NODESOURCE_KEY_FPR=6F71F525282841EEDAF851B42F59B5F99B1BE0B4

# --- CPU base: Node.js (the official image) and libfaiss; the CPU build and the CPU runtime both start here ---
FROM ${NODE_IMAGE} AS cpu-base
RUN apt-get update \
 && apt-get install -y --no-install-recommends libfaiss-dev libopenblas0 \
 && rm -rf /var/lib/apt/lists/*

# --- CPU build --------------------------------------------------------------------------------------------
FROM cpu-base AS build-cpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenblas-dev g++ make python3 \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local
WORKDIR /app
COPY package.json package-lock.json ./
COPY native ./native
# onnxruntime-node ships its CPU binaries: its CUDA provider download is skipped.
RUN ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev --no-audit --no-fund && npm run build:native
COPY . .
# The CLI as one bundle (bin/sidx.js runs it: a faster start than transpiling src/ at each start).
RUN npm run build

# --- CPU runtime ------------------------------------------------------------------------------------------
FROM cpu-base AS cpu
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin sidx \
 && mkdir -p /data /models && chown sidx /data
WORKDIR /app
COPY --from=build-cpu --chown=sidx /app /app
USER sidx
ENV SIDX__SERVER__HOST=0.0.0.0 \
    SIDX__SERVER__PORT=8080 \
    SIDX__STORAGE__DATA_DIR=/data \
    SIDX__MODEL__DIR=/app/models/default \
    SIDX__MODEL__REGISTRY_DIR=/models \
    SIDX__ENCODER__PROVIDER=cpu
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.SIDX__SERVER__PORT}/readyz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "--max-semi-space-size=32", "--initial-old-space-size=128", "bin/sidx.js", "serve"]

# --- NodeSource apt source for Node.js 22 on Ubuntu (apt verifies every package against the pinned key) ----
FROM ${UBUNTU_IMAGE} AS nodesource
ARG NODE_MAJOR
ARG NODESOURCE_KEY_FPR
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -m 0755 /etc/apt/keyrings \
 && curl -fsSL https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key | gpg --dearmor -o /etc/apt/keyrings/nodesource.gpg \
 && gpg --no-default-keyring --keyring /etc/apt/keyrings/nodesource.gpg --with-colons --fingerprint \
    | grep -q "^fpr:::::::::${NODESOURCE_KEY_FPR}:" \
 && echo "deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_${NODE_MAJOR}.x nodistro main" \
    > /etc/apt/sources.list.d/nodesource.list

# --- GPU base: the CUDA runtime with Node.js and libfaiss; the GPU build and the GPU runtime both start here, so
#     the FAISS addon is built against the very Node.js and libfaiss it runs with ------------------------------
FROM ${CUDA_IMAGE} AS gpu-base
COPY --from=nodesource /etc/apt/keyrings/nodesource.gpg /etc/apt/keyrings/nodesource.gpg
COPY --from=nodesource /etc/apt/sources.list.d/nodesource.list /tmp/nodesource.list
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && mv /tmp/nodesource.list /etc/apt/sources.list.d/nodesource.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends nodejs libfaiss-dev libopenblas0 \
 && rm -rf /var/lib/apt/lists/*

# --- GPU build --------------------------------------------------------------------------------------------
FROM gpu-base AS build-gpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends libopenblas-dev g++ make python3 \
 && rm -rf /var/lib/apt/lists/*
# node-gyp builds against the installed Node's headers instead of downloading them.
ENV npm_config_nodedir=/usr
WORKDIR /app
COPY package.json package-lock.json ./
COPY native ./native
# onnxruntime-node fetches its CUDA 12 provider libraries (libonnxruntime_providers_cuda.so) at install time.
RUN ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci --omit=dev --no-audit --no-fund \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so \
 && npm run build:native
COPY . .
RUN npm run build

# --- GPU runtime (default target) -------------------------------------------------------------------------
FROM gpu-base AS gpu
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin sidx \
 && mkdir -p /data /models && chown sidx /data
WORKDIR /app
COPY --from=build-gpu --chown=sidx /app /app
USER sidx
# provider cuda: the encoder runs on ONNX Runtime's CUDA execution provider; when it cannot start (no GPU
# visible, driver too old) the service logs why and falls back to CPU (/readyz reports the provider in use).
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    SIDX__SERVER__HOST=0.0.0.0 \
    SIDX__SERVER__PORT=8080 \
    SIDX__STORAGE__DATA_DIR=/data \
    SIDX__MODEL__DIR=/app/models/default \
    SIDX__MODEL__REGISTRY_DIR=/models \
    SIDX__ENCODER__PROVIDER=cuda
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.SIDX__SERVER__PORT}/readyz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
CMD ["node", "--max-semi-space-size=32", "--initial-old-space-size=128", "bin/sidx.js", "serve"]
