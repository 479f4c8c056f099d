#!/usr/bin/env bash
# `make bench`: the project's benchmarks in one run, so comparisons are side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
GO="${GO:-go}"
echo "== pipeline: events/s from the tap's emission point to the embedded store"
"$GO" test -run '^$' -bench 'BenchmarkPipelineEmbedded' -benchtime 100000x -count 3 ./internal/app/
echo "== HTTP tap: tools/call direct vs through the tap vs a plain ReverseProxy vs a TCP relay (latency added at p50/p99, calls/s at concurrency 32)"
"$GO" test -run '^$' -bench 'BenchmarkTapLatency' -benchtime 20000x ./collector/httptap/ # each part in its own process, and all in one (InProcess)
"$GO" test -run '^$' -bench 'BenchmarkTap(Throughput|Overhead)' -benchtime 5000x ./collector/httptap/
echo "== capture: a tools/call's arguments found in its params, by scanning (member) beside encoding/json"
"$GO" test -run '^$' -bench 'BenchmarkArgumentsMember' ./collector/capture/
echo "== JSON-RPC: parse and describe a tools/call"
"$GO" test -run '^$' -bench 'BenchmarkParseAndDescribe' ./collector/jsonrpc/
echo "== enricher/drift: a tools/call, an unchanged tools/list of 50 tools, parsing a new one"
"$GO" test -run '^$' -bench 'BenchmarkObserve' -benchtime 2000x ./enricher/drift/
echo "== store: SQLite batch inserts"
"$GO" test -run '^$' -bench 'BenchmarkSQLiteInsert' -benchtime 2s ./internal/store/
echo "== store: SQLite API queries on 100,000 events (agents, time series, session filters, values)"
"$GO" test -run '^$' -bench 'BenchmarkSQLiteQueries' -benchtime 20x ./internal/store/
echo "== alerting: render an anomaly as a syslog message (JSON, CEF, LEEF); one syslog send over TCP"
"$GO" test -run '^$' -bench 'BenchmarkFormats' -benchtime 1s ./alerting/format/
"$GO" test -run '^$' -bench 'BenchmarkSyslogSend' -benchtime 2000x ./alerting/
echo "== alerting: latency from an anomaly produced to mcp.anomalies to a webhook receiving it (p50/p99 ms)"
"$GO" test -run '^$' -bench 'BenchmarkAlertLatency' -benchtime 1000x ./alerting/
echo "== schemas: decode and encode an event with 1 KiB of content, encoding/json vs the event codec"
"$GO" test -run '^$' -bench 'BenchmarkEventCodec' -benchtime 20000x -count 3 ./schemas/
echo "== enricher: all checks per event (inspection, deploy/ inventory and policy, drift), 1 KiB of content; and with the stage's decode/encode (event codec; encoding/json beside it)"
"$GO" test -run '^$' -bench 'BenchmarkEnrich$' -benchtime 20000x -count 3 ./enricher/
echo "== enricher: inventory join and policy per event (deploy/ examples): allowed, violation, 1 KiB of constrained arguments"
"$GO" test -run '^$' -bench 'BenchmarkEngineApply' -benchtime 1s ./enricher/policy/
echo "== enricher: content inspection per event, 1 KiB of content (all events; clean ones only): events/s and events per CPU-second"
"$GO" test -run '^$' -bench 'BenchmarkInspect' -benchtime 20000x -count 3 ./enricher/inspect/
echo "== api: agent profile (decode snapshots, 168-hour rate band) with 1 and 1,000 agents stored; a dense 1,440-bucket series"
"$GO" test -run '^$' -bench 'BenchmarkAgentProfile|BenchmarkTimeSeriesDense' -benchtime 50x ./internal/api/
"$GO" test -run '^$' -bench 'BenchmarkWeekBands' -benchtime 200x ./detector/rate/
echo "== detector: Observe per event with 100,000 agents tracked (event path and minute sweep apart, heap per agent); one rate model per bucket; fastmath vs math"
"$GO" test -run '^$' -bench 'BenchmarkObserve$' -benchtime 3000000x ./detector/
"$GO" test -run '^$' -bench 'BenchmarkRate(Observe|ObserveOne|Memory)' ./detector/rate/
"$GO" test -run '^$' -bench . ./detector/internal/fastmath/
echo "== Grafana plugin: a query from the plugin's entry point to frames (timeseries 3×1,440 points, agent_rate, a 44-event timeline), the API call on loopback included"
(cd dashboards/plugin && "$GO" test -run '^$' -bench 'BenchmarkQueryData' -benchtime 200x ./pkg/plugin/)
