#!/usr/bin/env bash
# Installs everything sidx needs on a Debian/Ubuntu machine with Node >= 20:
#   system packages (FAISS, OpenBLAS, a C++ toolchain, nats-server for cluster mode and its tests) when missing,
#   npm dependencies, the FAISS addon.
# Safe to run again; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1msidx setup:\033[0m %s\n' "$*"; }
die() { printf 'sidx setup: error: %s\n' "$*" >&2; exit 1; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$node_major" -ge 20 ] || die "Node.js >= 20 is required (found: $(node -v 2>/dev/null || echo none))"

system_packages=(libfaiss-dev libopenblas-dev g++ make python3 nats-server)
missing=()
for pkg in "${system_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 \
    || die "missing ${missing[*]} and this is not a Debian/Ubuntu system (no apt-get): install FAISS (libfaiss-dev) and OpenBLAS by hand"
  if [ "$(id -u)" -eq 0 ]; then sudo=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"
  else die "missing ${missing[*]}; run as root or with passwordless sudo, or: apt-get install -y ${missing[*]}"
  fi
  say "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "system packages present: ${system_packages[*]}"
fi

say "installing npm dependencies (npm ci)"
# onnxruntime-node ships its CPU binaries; without this its install downloads the CUDA provider (and fails offline).
ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund

say "building the FAISS addon (native/)"
npm run --silent build:native >/dev/null

say "bundling the CLI (dist/, run by bin/sidx.js while newer than src/)"
npm run --silent build -- --quiet

node -e "require('./native/build/Release/sidx_faiss.node')" \
  || die "the FAISS addon was built but does not load"
say "done"
