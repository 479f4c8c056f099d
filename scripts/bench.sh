#!/usr/bin/env bash
# `make bench`: the project's benchmarks in one run, so comparisons are side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
GO="${GO:-go}"
echo "== pipeline: events/s from the tap's emission point to the embedded store"
"$GO" test -run '^$' -bench 'BenchmarkPipelineEmbedded' -benchtime 100000x -count 3 ./internal/app/
echo "== HTTP tap: direct vs through the tap"
"$GO" test -run '^$' -bench 'BenchmarkTap' -benchtime 2s ./collector/httptap/
echo "== store: SQLite batch inserts"
"$GO" test -run '^$' -bench 'BenchmarkSQLite' -benchtime 2s ./internal/store/
