#!/usr/bin/env bash
# `make test`: start what the tests need, run go vet and the whole suite with -race, stop what
# was started. Works on a fresh Debian machine as root (it installs ClickHouse from Debian's
# packages when missing). Set MCPWATCH_TEST_CLICKHOUSE_ADDR to use a server you already run.
set -euo pipefail
cd "$(dirname "$0")/.."
GO="${GO:-go}"

started_ch=""
cleanup() {
  if [ -n "$started_ch" ]; then
    CH_DIR="$CH_DIR" CH_TCP_PORT="$CH_TCP_PORT" bash scripts/clickhouse.sh stop || true
    rm -rf "$CH_DIR"
  fi
}
trap cleanup EXIT

if [ -z "${MCPWATCH_TEST_CLICKHOUSE_ADDR:-}" ]; then
  # Ports away from the defaults, so a developer's own server on 9000 is left alone.
  export CH_TCP_PORT="${CH_TCP_PORT:-19000}" CH_HTTP_PORT="${CH_HTTP_PORT:-18123}"
  export CH_DIR; CH_DIR="$(mktemp -d -t mcpwatch-ch.XXXXXX)"
  echo "== starting ClickHouse on 127.0.0.1:$CH_TCP_PORT (data in $CH_DIR)"
  started_ch=1
  bash scripts/clickhouse.sh start
  export MCPWATCH_TEST_CLICKHOUSE_ADDR="127.0.0.1:$CH_TCP_PORT"
fi
# Integration tests must run here, not skip.
export MCPWATCH_REQUIRE_CLICKHOUSE=1

echo "== go vet"
"$GO" vet ./...
echo "== go test -race"
"$GO" test -race -count=1 -timeout 20m ./...
