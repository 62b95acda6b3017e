#!/usr/bin/env bash
# Generative retrieval on ../shared/data/scientific, end to end: a fresh `sidx serve` on a temporary data
# directory, run.py (upsert, n-gram next-SID model, beams with and without the trie constraint, /v1/retrieve),
# then `sidx eval-beams` (FORGE HR@K) on both beam files. Usage: examples/generative-retrieval/run.sh [OUT_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$here/out}
data=${SIDX_SHARED_DATA:-$root/../shared/data}/scientific
model=${MODEL:-models/default}
port=${PORT:-8093}
mkdir -p "$out"
dir=$(mktemp -d)
cd "$root"
SIDX__SERVER__LOG_LEVEL=warn node bin/sidx.js serve --port "$port" --data-dir "$dir" --model "$model" >"$out/serve.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
python3 "$here/run.py" --url "http://127.0.0.1:$port" --dataset "$data" --out "$out" --beams "${BEAMS:-20}"
for mode in unconstrained constrained; do
  echo "sidx eval-beams, $mode:"
  node bin/sidx.js eval-beams --beams "$out/beams-$mode.jsonl" --truth "$out/truth.jsonl" --items "$out/items.jsonl" \
    --model "$model" --k 1,5,10,20 --out "$out/eval-$mode.json"
done
