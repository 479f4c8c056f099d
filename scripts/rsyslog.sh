#!/usr/bin/env bash
# Start or stop a throwaway rsyslog receiver for mcpwatch's syslog sink tests. It installs
# Debian's rsyslog and rsyslog-openssl when missing, keeps every file under $RSYSLOG_DIR (config,
# pid file, work dir, a throwaway CA and certificates made with openssl) and listens on
# 127.0.0.1 only, on free ports. The system's rsyslog (if any) is not touched.
#
#   RSYSLOG_DIR=/tmp/rs bash scripts/rsyslog.sh start   # install if needed, start, wait until ready
#   RSYSLOG_DIR=/tmp/rs bash scripts/rsyslog.sh stop
#
# Listeners (free ports picked by the kernel unless these variables are set; the ports in use are
# written to $RSYSLOG_DIR/ports.env after start, so a restart can ask for the same ones):
#   RSYSLOG_UDP_PORT   RFC 5426 syslog over UDP
#   RSYSLOG_TCP_PORT   RFC 6587 syslog over TCP (octet counting or LF framing)
#   RSYSLOG_TLS_PORT   RFC 5425 syslog over TLS; the server's certificate is signed by
#                      $RSYSLOG_DIR/tls/ca.pem (SAN localhost, 127.0.0.1); no client certificate
#   RSYSLOG_MTLS_PORT  the same, but a client certificate signed by that CA is required
#                      ($RSYSLOG_DIR/tls/client.pem, client-key.pem)
# Every message received is written to $RSYSLOG_DIR/messages.jsonl as one JSON object per line:
# input (udp, tcp, tls, mtls), pri, hostname, app_name, procid, msgid, timestamp,
# structured_data (raw), sd (mmpstrucdata's parse of it, as a JSON string) and msg.
# Control characters are not escaped on receive (rsyslog's default turns a newline into #012),
# so msg is exactly what was sent.
set -euo pipefail

install() {
  if [ -x /usr/sbin/rsyslogd ] && compgen -G '/usr/lib/*/rsyslog/lmnsd_ossl.so' >/dev/null &&
    command -v openssl >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then echo "rsyslog is not installed; run as root to install it" >&2; return 1; fi
  apt-get update -qq
  # The package's postinst tries to start the system service and is refused without systemd:
  # harmless, and nothing here uses that service.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    rsyslog rsyslog-openssl openssl >/dev/null
}

# A throwaway CA, a server certificate for localhost/127.0.0.1 and a client certificate.
make_certs() {
  local d="$RSYSLOG_DIR/tls"
  mkdir -p "$d"
  [ -f "$d/client.pem" ] && return 0
  local key=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
  openssl req -x509 "${key[@]}" -keyout "$d/ca-key.pem" -out "$d/ca.pem" -days 30 \
    -subj /CN=mcpwatch-test-ca 2>/dev/null
  openssl req "${key[@]}" -keyout "$d/server-key.pem" -out "$d/server.csr" -subj /CN=localhost 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -CAcreateserial \
    -out "$d/server.pem" -days 30 -extfile "$d/server.ext" 2>/dev/null
  openssl req "${key[@]}" -keyout "$d/client-key.pem" -out "$d/client.csr" -subj /CN=mcpwatch-test-client 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$d/client.ext"
  openssl x509 -req -in "$d/client.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -CAcreateserial \
    -out "$d/client.pem" -days 30 -extfile "$d/client.ext" 2>/dev/null
  chmod 600 "$d"/*-key.pem
}

write_config() {
  local d="$RSYSLOG_DIR"
  mkdir -p "$d/work"
  rm -f "$d"/*.port
  cat >"$d/rsyslog.conf" <<CONF
global(workDirectory="$d/work" maxMessageSize="64k"
  parser.escapeControlCharactersOnReceive="off"
  defaultNetstreamDriverCAFile="$d/tls/ca.pem"
  defaultNetstreamDriverCertFile="$d/tls/server.pem"
  defaultNetstreamDriverKeyFile="$d/tls/server-key.pem")
module(load="imudp")
module(load="imtcp" maxSessions="200")
module(load="mmpstrucdata")
template(name="fields" type="list" option.jsonf="on") {
  property(outname="input" name="inputname" format="jsonf")
  property(outname="pri" name="pri" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app_name" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="structured_data" name="structured-data" format="jsonf")
  property(outname="sd" name="\$!rfc5424-sd" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}
ruleset(name="received") {
  action(type="mmpstrucdata")
  action(type="omfile" file="$d/messages.jsonl" template="fields")
}
# Port 0: the kernel picks a free port. imtcp writes the port to a file; imudp cannot in
# this version, so its port is read from /proc after start.
input(type="imudp" address="127.0.0.1" port="${RSYSLOG_UDP_PORT:-0}" name="udp" ruleset="received")
input(type="imtcp" address="127.0.0.1" port="${RSYSLOG_TCP_PORT:-0}" listenPortFileName="$d/tcp.port" name="tcp" ruleset="received")
input(type="imtcp" address="127.0.0.1" port="${RSYSLOG_TLS_PORT:-0}" listenPortFileName="$d/tls.port" name="tls" ruleset="received"
  streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port="${RSYSLOG_MTLS_PORT:-0}" listenPortFileName="$d/mtls.port" name="mtls" ruleset="received"
  streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
CONF
}

# alive PID: the process exists and is not a zombie (an exited rsyslogd whose parent, this
# script's, is gone stays one until init reaps it).
alive() { [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

running() { [ -f "$RSYSLOG_DIR/rsyslogd.pid" ] && alive "$(cat "$RSYSLOG_DIR/rsyslogd.pid")"; }

# owned_ports PID FILE prints the local ports of PID's sockets listed in FILE (/proc/PID/net/udp
# or tcp; for tcp only listening ones): its socket inodes from /proc/PID/fd, matched against
# the table, whose local address is hex ip:port.
owned_ports() {
  local pid="$1" table="$2" fd link inodes=" "
  for fd in /proc/"$pid"/fd/*; do
    link=$(readlink "$fd" 2>/dev/null) || continue
    case "$link" in socket:*) inodes+="${link//[^0-9]/} " ;; esac
  done
  local _sl laddr _rem st _q _tr _rt _uid _to inode _rest
  while read -r _sl laddr _rem st _q _tr _rt _uid _to inode _rest; do
    if [[ "$inodes" == *" $inode "* ]] && { [[ "$table" == */udp ]] || [ "$st" = 0A ]; }; then
      printf '%d\n' "0x${laddr#*:}"
    fi
  done < <(tail -n +2 "$table")
}

# port NAME PID prints the port of listener NAME (tcp, tls, mtls) once it listens: the one
# asked for in RSYSLOG_<NAME>_PORT, or the one imtcp wrote to NAME.port.
port() {
  local name="$1" pid="$2" var="RSYSLOG_${1^^}_PORT"
  local want="${!var:-0}"
  if [ "$want" = 0 ]; then
    [ -s "$RSYSLOG_DIR/$name.port" ] && cat "$RSYSLOG_DIR/$name.port"
    return
  fi
  owned_ports "$pid" /proc/"$pid"/net/tcp | grep -qx "$want" && echo "$want"
}

start() {
  install
  if running; then
    echo "rsyslog already running under $RSYSLOG_DIR (pid $(cat "$RSYSLOG_DIR/rsyslogd.pid"))"
    return 0
  fi
  mkdir -p "$RSYSLOG_DIR"
  make_certs
  write_config
  touch "$RSYSLOG_DIR/messages.jsonl" # kept across a restart
  # -n: stay in the foreground of this background job, so $! is rsyslogd's own pid.
  nohup /usr/sbin/rsyslogd -n -f "$RSYSLOG_DIR/rsyslog.conf" -i "$RSYSLOG_DIR/rsyslogd.internal.pid" \
    >"$RSYSLOG_DIR/rsyslogd.log" 2>&1 &
  echo $! >"$RSYSLOG_DIR/rsyslogd.pid"
  local pid udp tcp tls mtls
  pid=$(cat "$RSYSLOG_DIR/rsyslogd.pid")
  for _ in $(seq 1 100); do # up to 10 s
    udp=$(owned_ports "$pid" /proc/"$pid"/net/udp | head -1 || true)
    tcp=$(port tcp "$pid" || true) tls=$(port tls "$pid" || true) mtls=$(port mtls "$pid" || true)
    if [ -n "$udp" ] && [ -n "$tcp" ] && [ -n "$tls" ] && [ -n "$mtls" ]; then
      printf 'RSYSLOG_UDP_PORT=%s\nRSYSLOG_TCP_PORT=%s\nRSYSLOG_TLS_PORT=%s\nRSYSLOG_MTLS_PORT=%s\n' \
        "$udp" "$tcp" "$tls" "$mtls" >"$RSYSLOG_DIR/ports.env"
      echo "rsyslog $(/usr/sbin/rsyslogd -v | head -1 | awk '{print $2}') ready on 127.0.0.1 ($(tr '\n' ' ' <"$RSYSLOG_DIR/ports.env")dir $RSYSLOG_DIR, pid $pid)"
      return 0
    fi
    if ! running; then
      echo "rsyslogd exited:" >&2
      tail -20 "$RSYSLOG_DIR/rsyslogd.log" >&2 || true
      rm -f "$RSYSLOG_DIR/rsyslogd.pid"
      return 1
    fi
    sleep 0.1
  done
  echo "rsyslog not ready after 10s" >&2
  tail -20 "$RSYSLOG_DIR/rsyslogd.log" >&2 || true
  return 1
}

stop() {
  [ -f "$RSYSLOG_DIR/rsyslogd.pid" ] || { echo "no rsyslog running under $RSYSLOG_DIR"; return 0; }
  local pid
  pid=$(cat "$RSYSLOG_DIR/rsyslogd.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.05; done
  alive "$pid" && kill -9 "$pid" 2>/dev/null || true
  rm -f "$RSYSLOG_DIR/rsyslogd.pid"
  echo "rsyslog under $RSYSLOG_DIR stopped"
}

cmd="${1:-}"
case "$cmd" in
start)
  if [ -z "${RSYSLOG_DIR:-}" ]; then RSYSLOG_DIR="$(mktemp -d -t mcpwatch-rsyslog.XXXXXX)"; fi
  start
  ;;
stop)
  if [ -z "${RSYSLOG_DIR:-}" ]; then echo "stop needs RSYSLOG_DIR (the directory passed to start)" >&2; exit 2; fi
  stop
  ;;
*)
  echo "usage: RSYSLOG_DIR=DIR $0 start|stop" >&2
  exit 2
  ;;
esac
