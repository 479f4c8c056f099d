#!/usr/bin/env bash
# Start or stop a throwaway ClickHouse server for mcpwatch's integration tests and local use.
# It installs Debian's clickhouse-server/clickhouse-client when missing (18.16.1 on Debian 12),
# keeps every file under $CH_DIR and listens on 127.0.0.1 only. No systemd needed.
#
#   CH_DIR=/tmp/ch bash scripts/clickhouse.sh start   # install if needed, start, wait until ready
#   CH_DIR=/tmp/ch bash scripts/clickhouse.sh stop
#
# Environment: CH_DIR (default: a new temp dir, printed), CH_TCP_PORT (9000), CH_HTTP_PORT (8123).
# Then run the ClickHouse store tests with MCPWATCH_TEST_CLICKHOUSE_ADDR=127.0.0.1:$CH_TCP_PORT.
set -euo pipefail
CH_TCP_PORT="${CH_TCP_PORT:-9000}"
CH_HTTP_PORT="${CH_HTTP_PORT:-8123}"
SERVER=/usr/sbin/clickhouse-server
CLIENT=/usr/bin/clickhouse-client

client() { "$CLIENT" --host 127.0.0.1 --port "$CH_TCP_PORT" "$@"; }

install() {
  if [ -x "$SERVER" ] && [ -x "$CLIENT" ]; then return 0; fi
  if [ "$(id -u)" != 0 ]; then echo "clickhouse is not installed; run as root to install it" >&2; return 1; fi
  apt-get update -qq
  # The package's postinst tries invoke-rc.d and is refused without systemd: harmless.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    clickhouse-server clickhouse-client >/dev/null
}

write_config() {
  mkdir -p "$CH_DIR"/{data,tmp,user_files,format_schemas,log}
  cat >"$CH_DIR/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>$CH_DIR/log/server.log</log>
    <errorlog>$CH_DIR/log/server.err.log</errorlog>
    <size>100M</size><count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$CH_TCP_PORT</tcp_port>
  <http_port>$CH_HTTP_PORT</http_port>
  <path>$CH_DIR/data/</path>
  <tmp_path>$CH_DIR/tmp/</tmp_path>
  <user_files_path>$CH_DIR/user_files/</user_files_path>
  <format_schema_path>$CH_DIR/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
XML
  # Passwordless default user, reachable from loopback only.
  cat >"$CH_DIR/users.xml" <<'XML'
<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default><interval><duration>3600</duration>
    <queries>0</queries><errors>0</errors><result_rows>0</result_rows>
    <read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
XML
}

running() { [ -f "$CH_DIR/server.pid" ] && kill -0 "$(cat "$CH_DIR/server.pid")" 2>/dev/null; }

start() {
  install
  if running; then
    echo "clickhouse already running under $CH_DIR (pid $(cat "$CH_DIR/server.pid"))"
    return 0
  fi
  write_config
  nohup "$SERVER" --config-file="$CH_DIR/config.xml" >"$CH_DIR/log/stdout.log" 2>&1 &
  echo $! >"$CH_DIR/server.pid"
  for _ in $(seq 1 300); do # up to 30 s
    if client -q 'SELECT 1' >/dev/null 2>&1; then
      echo "clickhouse $(client -q 'SELECT version()') ready on 127.0.0.1:$CH_TCP_PORT (http $CH_HTTP_PORT, dir $CH_DIR, pid $(cat "$CH_DIR/server.pid"))"
      return 0
    fi
    if ! running; then
      echo "clickhouse-server exited:" >&2
      tail -20 "$CH_DIR/log/stdout.log" "$CH_DIR/log/server.err.log" >&2 2>/dev/null || true
      rm -f "$CH_DIR/server.pid"
      return 1
    fi
    sleep 0.1
  done
  echo "clickhouse not ready after 30s" >&2
  tail -20 "$CH_DIR/log/server.err.log" >&2 2>/dev/null || true
  return 1
}

stop() {
  [ -f "$CH_DIR/server.pid" ] || { echo "no clickhouse running under $CH_DIR"; return 0; }
  pid=$(cat "$CH_DIR/server.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$CH_DIR/server.pid"
  echo "clickhouse under $CH_DIR stopped"
}

cmd="${1:-}"
case "$cmd" in
start)
  if [ -z "${CH_DIR:-}" ]; then CH_DIR="$(mktemp -d -t mcpwatch-ch.XXXXXX)"; fi
  start
  ;;
stop)
  if [ -z "${CH_DIR:-}" ]; then echo "stop needs CH_DIR (the directory passed to start)" >&2; exit 2; fi
  stop
  ;;
*)
  echo "usage: CH_DIR=DIR $0 start|stop" >&2
  exit 2
  ;;
esac
