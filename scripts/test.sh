#!/usr/bin/env bash
# `make test`: start what the tests need, run go vet and the whole suite with -race, stop what
# was started. Works on a fresh Debian machine as root (it installs ClickHouse from Debian's
# packages when missing). Set MCPWATCH_TEST_CLICKHOUSE_ADDR to use a server you already run.
set -euo pipefail
cd "$(dirname "$0")/.."
GO="${GO:-go}"

started_ch=""
started_rsyslog=""
cleanup() {
  if [ -n "$started_ch" ]; then
    CH_DIR="$CH_DIR" CH_TCP_PORT="$CH_TCP_PORT" bash scripts/clickhouse.sh stop || true
    rm -rf "$CH_DIR"
  fi
  if [ -n "$started_rsyslog" ]; then
    # Tests start receivers of their own under own/; stop any a crashed test left running.
    for d in "$MCPWATCH_TEST_RSYSLOG_DIR" "$MCPWATCH_TEST_RSYSLOG_DIR"/own/*/; do
      [ -f "$d/rsyslogd.pid" ] && RSYSLOG_DIR="$d" bash scripts/rsyslog.sh stop >/dev/null || true
    done
    rm -rf "$MCPWATCH_TEST_RSYSLOG_DIR"
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

# rsyslog (Debian's, installed when missing) on loopback for the syslog sink tests: UDP, TCP,
# TLS and mutual-TLS listeners on free ports, under its own temp dir. Set
# MCPWATCH_TEST_RSYSLOG_DIR to use one already started with scripts/rsyslog.sh.
if [ -z "${MCPWATCH_TEST_RSYSLOG_DIR:-}" ]; then
  export MCPWATCH_TEST_RSYSLOG_DIR; MCPWATCH_TEST_RSYSLOG_DIR="$(mktemp -d -t mcpwatch-rsyslog.XXXXXX)"
  echo "== starting rsyslog (dir $MCPWATCH_TEST_RSYSLOG_DIR)"
  started_rsyslog=1
  RSYSLOG_DIR="$MCPWATCH_TEST_RSYSLOG_DIR" bash scripts/rsyslog.sh start
fi
export MCPWATCH_REQUIRE_RSYSLOG=1

# Real npm MCP peers (exact versions) for the collector tests, installed once into .cache/npm;
# add a package here if your tests need one. The tests find them through MCPWATCH_NODE_MODULES.
NPM_PEERS="@modelcontextprotocol/server-everything@2026.8.31 @modelcontextprotocol/sdk@1.32.2 @modelcontextprotocol/inspector@2.12.0"
NPM_DIR=.cache/npm
if [ "$(cat "$NPM_DIR/.installed" 2>/dev/null)" != "$NPM_PEERS" ]; then
  echo "== installing npm MCP peers into $NPM_DIR"
  mkdir -p "$NPM_DIR"
  [ -f "$NPM_DIR/package.json" ] || echo '{"private": true}' > "$NPM_DIR/package.json"
  # shellcheck disable=SC2086 # one word per package
  npm install --prefix "$NPM_DIR" --no-audit --no-fund --save-exact $NPM_PEERS
  echo "$NPM_PEERS" > "$NPM_DIR/.installed"
fi
export MCPWATCH_NODE_MODULES="$PWD/$NPM_DIR/node_modules"
export MCPWATCH_REQUIRE_NODE=1

echo "== go vet"
"$GO" vet ./...
echo "== go test -race"
"$GO" test -race -count=1 -timeout 20m ./...

# The Grafana plugin is its own Go module. build.sh (make plugin) builds its frontend (npm ci on
# first use, webpack) and backend, tsc checks the frontend's types; the Go tests start a real API
# over a seeded store, launch the built backend over go-plugin, and check the dashboards and the
# provisioning files.
# Its go.mod replaces the root module with ../..; -mod=mod lets it follow the root's dependencies
# when they change before someone runs go mod tidy there.
echo "== Grafana plugin (dashboards/plugin)"
export GOFLAGS="$("$GO" env GOFLAGS) -mod=mod"
GO="$GO" bash dashboards/plugin/build.sh
(cd dashboards/plugin && npm run --silent typecheck)
(cd dashboards/plugin && "$GO" vet ./... && "$GO" test -race -count=1 -timeout 15m ./...)
