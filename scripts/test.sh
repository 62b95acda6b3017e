#!/usr/bin/env bash
# Runs every test file under test/ (node --test on Node 20 needs the files listed explicitly), then the Python
# client's tests (clients/python/tests, unittest; they start their own `sidx serve`). Arguments go to node --test.
# Exits non-zero when either runner fails; the last line sums both up.
set -uo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find test -name '*.test.ts' | sort)
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found under test/" >&2; exit 1; fi
node --import tsx --test --test-concurrency=1 "$@" "${files[@]}"
node_rc=$?

py_log=$(mktemp)
trap 'rm -f "$py_log"' EXIT
if command -v python3 >/dev/null; then
  python3 -m unittest discover -s clients/python/tests -t clients/python -v 2>&1 | tee "$py_log"
  py_rc=${PIPESTATUS[0]}
  py_summary="$(grep -E '^Ran [0-9]+ tests?' "$py_log" | tail -1), $(tail -1 "$py_log")"
else
  py_rc=1
  py_summary="python3 not found (scripts/setup.sh installs it)"
fi

node_summary=$([ "$node_rc" -eq 0 ] && echo "passed" || echo "FAILED (exit $node_rc)")
echo "scripts/test.sh: node tests ${node_summary} (summary above the Python tests); Python client tests: ${py_summary}"
[ "$node_rc" -eq 0 ] && [ "$py_rc" -eq 0 ]
