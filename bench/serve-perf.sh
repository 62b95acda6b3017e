#!/usr/bin/env bash
# Where a loaded `sidx serve` spends the CPU of its event loop, by phase, from `perf record` (on-CPU samples; the
# --cpu-prof profiles of serve-profile.bench.ts sample wall time, so a call that wakes another thread and is
# preempted looks expensive there). bench/serve-profile.bench.ts loads a served catalog (the arguments after OUT go
# to it), perf samples the server for 6 s mid-load, and bench/perf_fold.py sorts the event loop's stacks into phases,
# in ms per request from the server's own per-thread CPU figure.
#
#   SIDX_SHARED_DATA=../shared/data bench/serve-perf.sh /tmp/beam --data-dir /tmp/sp-rqk --model models/rqkmeans-3x256 [--sids 32]
#
# With --peer bare it profiles `sidx bench`'s bare route under the same bodies instead (serve-profile.bench.ts).
#
# Needs Linux perf with permission to sample the process (perf_event_paranoid <= 1, or root). Writes OUT.log (the
# load's figures), OUT.data (perf) and OUT.stacks (the event loop's samples).
set -euo pipefail
out=$1
shift
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "serve-perf.sh: perf not found" >&2; exit 1; }
node --import tsx bench/serve-profile.bench.ts --no-profile --duration 14 --node-args='--perf-basic-prof' "$@" >"$out.log" 2>&1 &
load=$!
target='sidx.js serve'
case " $* " in *" --peer bare "*|*" --peer=bare "*) target='peer-server' ;; esac
pid=''
for _ in $(seq 1 600); do
  pid=$(pgrep -f -- "--perf-basic-prof.*$target" | head -1 || true)
  [ -n "$pid" ] && break
  sleep 0.5
done
[ -n "$pid" ] || { echo "serve-perf.sh: no server started (see $out.log)" >&2; wait "$load"; exit 1; }
sleep 6 # the 2 s warm-up, then into the measured load
perf record -F 1999 -g -p "$pid" -o "$out.data" -- sleep 6 >/dev/null 2>&1
wait "$load"
grep -E 'QPS|by thread' "$out.log"
main_ms=$(grep -o 'main [0-9.]*' "$out.log" | head -1 | cut -d' ' -f2)
perf script -i "$out.data" --tid "$pid" -F tid,ip,sym,dso 2>/dev/null >"$out.stacks"
python3 bench/perf_fold.py "$out.stacks" "$main_ms"
