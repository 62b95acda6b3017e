#!/usr/bin/env bash
# Runs every test file under test/ (node --test on Node 20 needs the files listed explicitly).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find test -name '*.test.ts' | sort)
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found under test/" >&2; exit 1; fi
exec node --import tsx --test --test-concurrency=1 "$@" "${files[@]}"
