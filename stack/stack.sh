#!/usr/bin/env bash
# ccpulse local service stack: Apache Kafka (KRaft, single node), Redis and Prometheus, on loopback.
#
#   stack.sh up                  start whatever is not running, wait until all three are healthy
#   stack.sh down                stop all three (SIGTERM, SIGKILL after 20 s); Kafka data is kept
#   stack.sh status              one line per service; exit 0 only if all three are healthy
#   stack.sh logs [SERVICE]      last lines of the logs (LINES=N, default 40)
#   stack.sh stop-service  kafka|redis|prometheus
#   stack.sh start-service kafka|redis|prometheus
#
# Environment (defaults): CCPULSE_STACK_DIR (<repo>/.stack), CCPULSE_KAFKA_PORT (9092),
# CCPULSE_KAFKA_CONTROLLER_PORT (9093), CCPULSE_REDIS_PORT (6379), CCPULSE_PROMETHEUS_PORT (9090),
# CCPULSE_KAFKA_HEAP (-Xmx768m), CCPULSE_KAFKA_START_TIMEOUT (60 s).
# Install first with stack/install.sh (make install). Everything lives under $CCPULSE_STACK_DIR:
# run/ (PID files), logs/, kafka/ (libs, config, data), redis/, prometheus/ (config, targets, data).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${CCPULSE_STACK_DIR:-$REPO/.stack}"
case "$STACK_DIR" in /*) ;; *) STACK_DIR="$PWD/$STACK_DIR" ;; esac
HOST=127.0.0.1
KAFKA_PORT="${CCPULSE_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${CCPULSE_KAFKA_CONTROLLER_PORT:-9093}"
REDIS_PORT="${CCPULSE_REDIS_PORT:-6379}"
PROMETHEUS_PORT="${CCPULSE_PROMETHEUS_PORT:-9090}"
KAFKA_HEAP="${CCPULSE_KAFKA_HEAP:--Xmx768m}"
KAFKA_START_TIMEOUT="${CCPULSE_KAFKA_START_TIMEOUT:-60}"
REDIS_START_TIMEOUT=20
PROMETHEUS_START_TIMEOUT=30
STOP_TIMEOUT=20

RUN="$STACK_DIR/run"
LOGS="$STACK_DIR/logs"
KAFKA_DIR="$STACK_DIR/kafka"
LIBS="$KAFKA_DIR/libs"
RULES_DIR="$REPO/ops/prometheus/rules"
SERVICES=(kafka redis prometheus)

if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY="$(command -v python3 || true)"; fi
if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then JAVA="$JAVA_HOME/bin/java"; else JAVA=java; fi

say() { echo "ccpulse: $*"; }
die() { echo "ccpulse: error: $*" >&2; exit 1; }

for v in CCPULSE_KAFKA_PORT:$KAFKA_PORT CCPULSE_KAFKA_CONTROLLER_PORT:$KAFKA_CONTROLLER_PORT \
         CCPULSE_REDIS_PORT:$REDIS_PORT CCPULSE_PROMETHEUS_PORT:$PROMETHEUS_PORT; do
  val="${v#*:}"
  [[ "$val" =~ ^[0-9]+$ ]] && [ "$val" -ge 1 ] && [ "$val" -le 65535 ] || die "${v%%:*}=$val is not a TCP port"
done
[ "$KAFKA_PORT" != "$KAFKA_CONTROLLER_PORT" ] || die "CCPULSE_KAFKA_PORT and CCPULSE_KAFKA_CONTROLLER_PORT are both $KAFKA_PORT"

# ------------------------------------------------------------------ helpers
port_of() {
  case "$1" in kafka) echo "$KAFKA_PORT" ;; redis) echo "$REDIS_PORT" ;; prometheus) echo "$PROMETHEUS_PORT" ;; esac
}
# "PORT:ENVVAR" for every port the service listens on
ports_of() {
  case "$1" in
    kafka) echo "$KAFKA_PORT:CCPULSE_KAFKA_PORT $KAFKA_CONTROLLER_PORT:CCPULSE_KAFKA_CONTROLLER_PORT" ;;
    redis) echo "$REDIS_PORT:CCPULSE_REDIS_PORT" ;;
    prometheus) echo "$PROMETHEUS_PORT:CCPULSE_PROMETHEUS_PORT" ;;
  esac
}
timeout_of() {
  case "$1" in kafka) echo "$KAFKA_START_TIMEOUT" ;; redis) echo "$REDIS_START_TIMEOUT" ;; prometheus) echo "$PROMETHEUS_START_TIMEOUT" ;; esac
}
log_of() { echo "$LOGS/$1.log"; }

alive() { # pid is a live (non-zombie) process
  local pid="$1" state
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  state="$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# pid is that service's process and belongs to this stack folder (guards against PID reuse)
is_ours() {
  local svc="$1" pid="$2" comm cmd cwd
  alive "$pid" || return 1
  comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
  cmd="$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)" || return 1
  cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null || true)"
  case "$svc" in
    kafka) [ "$comm" = java ] && [[ "$cmd" == *kafka.Kafka* ]] || return 1 ;;
    redis) [ "$comm" = redis-server ] || return 1 ;;
    prometheus) [ "$comm" = prometheus ] || return 1 ;;
  esac
  [[ "$cmd" == *"$STACK_DIR/"* ]] || [[ "$cwd" == "$STACK_DIR"* ]]
}

# pids listening on a TCP port (any address), via ss when it can tell
port_pids() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u || true
}
port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ] && return 0
  fi
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# pid of our running service, or nothing (return 1). Adopts our own process if its PID file is lost.
our_pid() {
  local svc="$1" pid p
  pid="$(cat "$RUN/$svc.pid" 2>/dev/null || true)"
  if is_ours "$svc" "$pid"; then echo "$pid"; return 0; fi
  for p in $(port_pids "$(port_of "$svc")"); do
    if is_ours "$svc" "$p"; then
      mkdir -p "$RUN" && echo "$p" > "$RUN/$svc.pid"
      echo "$p"; return 0
    fi
  done
  return 1
}

describe_pids() {
  local p out=""
  for p in "$@"; do out+=" pid $p ($(cat "/proc/$p/comm" 2>/dev/null || echo '?'))"; done
  echo "${out# }"
}

# ------------------------------------------------------------------ health checks
kafka_healthy() {
  # ApiVersions, then a Metadata request (v4..v8) that must list at least one broker:
  # the broker is registered, unfenced and serving requests. Python stdlib only.
  [ -n "$PY" ] || { port_in_use "$KAFKA_PORT" && grep -q "Kafka Server started" "$(log_of kafka)" 2>/dev/null; return; }
  timeout 10 "$PY" - "$HOST" "$KAFKA_PORT" <<'PY' 2>/dev/null
import socket, struct, sys

host, port = sys.argv[1], int(sys.argv[2])

def recvn(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf

def call(s, key, ver, body, corr):
    cid = b"ccpulse-health"
    msg = struct.pack(">hhih", key, ver, corr, len(cid)) + cid + body
    s.sendall(struct.pack(">i", len(msg)) + msg)
    size = struct.unpack(">i", recvn(s, 4))[0]
    data = recvn(s, size)
    if struct.unpack(">i", data[:4])[0] != corr:
        raise ValueError("correlation id")
    return data[4:]

try:
    s = socket.create_connection((host, port), timeout=4)
    r = call(s, 18, 0, b"", 1)  # ApiVersions v0
    err, n = struct.unpack(">hi", r[:6])
    if err:
        sys.exit(2)
    ranges = {}
    for i in range(n):
        k, lo, hi = struct.unpack(">hhh", r[6 + 6 * i: 12 + 6 * i])
        ranges[k] = (lo, hi)
    lo, hi = ranges.get(3, (0, -1))
    v = min(hi, 8)
    if v < max(lo, 4):
        sys.exit(0)  # a broker too new for this check, but it answers requests
    body = struct.pack(">ib", 0, 0) + (b"\x00\x00" if v >= 8 else b"")
    r = call(s, 3, v, body, 2)  # Metadata, no topics: just the brokers
    _throttle, brokers = struct.unpack(">ii", r[:8])
    sys.exit(0 if brokers >= 1 else 3)
except Exception:
    sys.exit(1)
PY
}
redis_healthy() {
  [ "$(timeout 5 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}
prometheus_healthy() {
  curl -fsS --max-time 4 "http://$HOST:$PROMETHEUS_PORT/-/ready" >/dev/null 2>&1
}
healthy() { "$1_healthy"; }

# ------------------------------------------------------------------ configuration
check_java() {
  command -v "$JAVA" >/dev/null 2>&1 \
    || die "java not found: Kafka 4.x needs Java 17 or newer (apt-get install openjdk-17-jre-headless)"
  local v major
  v="$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -1)"
  major="${v%%.*}"
  [ "$major" = 1 ] && major="$(echo "$v" | cut -d. -f2)"
  [[ "$major" =~ ^[0-9]+$ ]] && [ "$major" -ge 17 ] \
    || die "java ${v:-of unknown version} found ($(command -v "$JAVA")): Kafka 4.x needs Java 17 or newer"
}

kafka_jar() { ls "$LIBS"/kafka_2.13-*.jar 2>/dev/null | head -1; }

write_kafka_config() {
  mkdir -p "$KAFKA_DIR/config" "$KAFKA_DIR/data" "$LOGS"
  cat > "$KAFKA_DIR/config/server.properties" <<EOF
# Generated by stack/stack.sh: do not edit (rewritten at every start).
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DIR/data

# small machine
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4

# topics
num.partitions=4
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0

# retention: a local test stack
log.retention.hours=24
log.segment.bytes=67108864
log.retention.check.interval.ms=60000
EOF
  cat > "$KAFKA_DIR/config/log4j2.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by stack/stack.sh: broker logs to $LOGS/kafka.log, nothing to the terminal. -->
<Configuration status="WARN">
  <Appenders>
    <RollingFile name="file" fileName="$LOGS/kafka.log" filePattern="$LOGS/kafka.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="50 MB"/></Policies>
      <DefaultRolloverStrategy max="2"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="file"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="kafka.log.LogCleaner" level="WARN"/>
    <Logger name="org.apache.kafka.storage.internals.log" level="WARN"/>
    <Logger name="org.apache.kafka.clients" level="WARN"/>
    <!-- the full config dump of every internal client: the values are in server.properties -->
    <Logger name="org.apache.kafka.common.config.AbstractConfig" level="WARN"/>
  </Loggers>
</Configuration>
EOF
}

format_kafka_if_needed() {
  local data="$KAFKA_DIR/data" stamp="$KAFKA_DIR/formatted-controller-port" id
  if [ -f "$data/meta.properties" ]; then
    if [ "$(cat "$stamp" 2>/dev/null)" = "$KAFKA_CONTROLLER_PORT" ]; then return 0; fi
    say "Kafka controller port changed to $KAFKA_CONTROLLER_PORT since the storage was formatted: reformatting (topics are lost)"
    rm -rf "$data"
    mkdir -p "$data"
  fi
  say "formatting Kafka storage (KRaft, standalone controller)..."
  id="$("$JAVA" -cp "$LIBS/*" -Dlog4j2.configurationFile="$KAFKA_DIR/config/log4j2.xml" \
        kafka.tools.StorageTool random-uuid 2>>"$LOGS/kafka-format.log" | tail -1)"
  [ -n "$id" ] || die "kafka.tools.StorageTool random-uuid failed (see $LOGS/kafka-format.log)"
  "$JAVA" -cp "$LIBS/*" -Dlog4j2.configurationFile="$KAFKA_DIR/config/log4j2.xml" \
    kafka.tools.StorageTool format --standalone -t "$id" -c "$KAFKA_DIR/config/server.properties" \
    >>"$LOGS/kafka-format.log" 2>&1 || { tail -n 20 "$LOGS/kafka-format.log" >&2; die "Kafka storage format failed"; }
  echo "$id" > "$KAFKA_DIR/cluster.id"
  echo "$KAFKA_CONTROLLER_PORT" > "$stamp"
}

write_redis_config() {
  mkdir -p "$STACK_DIR/redis" "$LOGS"
  cat > "$STACK_DIR/redis/redis.conf" <<EOF
# Generated by stack/stack.sh: do not edit (rewritten at every start).
bind $HOST
port $REDIS_PORT
protected-mode yes
daemonize no
dir $STACK_DIR/redis
save ""
appendonly no
logfile ""
loglevel notice
EOF
}

write_prometheus_config() {
  local p="$STACK_DIR/prometheus"
  mkdir -p "$p/targets" "$p/data" "$LOGS"
  {
    cat <<EOF
# Generated by stack/stack.sh: do not edit (rewritten at every start).
# Worker targets: drop a file_sd JSON file into $p/targets/
#   [{"targets": ["127.0.0.1:6067"], "labels": {"worker": "w2"}}]
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
EOF
    # A glob that matches nothing loads no rules, so rules added later load on /-/reload too.
    cat <<EOF
rule_files:
  - "$RULES_DIR/*.yml"
scrape_configs:
  - job_name: ccpulse
    static_configs:
      - targets: ["127.0.0.1:6066"]
    file_sd_configs:
      - files: ["$p/targets/*.json"]
        refresh_interval: 1s
  - job_name: prometheus
    static_configs:
      - targets: ["$HOST:$PROMETHEUS_PORT"]
EOF
  } > "$p/prometheus.yml"
  if command -v promtool >/dev/null 2>&1; then
    promtool check config "$p/prometheus.yml" > "$LOGS/promtool.log" 2>&1 \
      || { cat "$LOGS/promtool.log" >&2; die "Prometheus configuration (or a rule file in $RULES_DIR) is invalid"; }
  fi
}

# ------------------------------------------------------------------ start / stop
spawn() { # svc logfile cmd...: run detached (own session, no terminal), record its PID
  local svc="$1" log="$2"; shift 2
  mkdir -p "$RUN" "$LOGS"
  nohup setsid "$@" >>"$log" 2>&1 </dev/null 9>&- &
  echo $! > "$RUN/$svc.pid"
}

launch() {
  local svc="$1"
  case "$svc" in
    kafka)
      check_java
      [ -n "$(kafka_jar)" ] || die "Kafka jars missing in $LIBS: run 'bash stack/install.sh' (or 'make install') first"
      write_kafka_config
      format_kafka_if_needed
      : > "$LOGS/kafka.out"
      # shellcheck disable=SC2086
      spawn kafka "$LOGS/kafka.out" "$JAVA" $KAFKA_HEAP -Xms256m -server \
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
        -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_DIR/config/log4j2.xml" -Dkafka.logs.dir="$LOGS" \
        -cp "$LIBS/*" kafka.Kafka "$KAFKA_DIR/config/server.properties"
      ;;
    redis)
      command -v redis-server >/dev/null 2>&1 || die "redis-server not found: run 'bash stack/install.sh'"
      write_redis_config
      spawn redis "$(log_of redis)" redis-server "$STACK_DIR/redis/redis.conf"
      ;;
    prometheus)
      command -v prometheus >/dev/null 2>&1 || die "prometheus not found: run 'bash stack/install.sh'"
      write_prometheus_config
      spawn prometheus "$(log_of prometheus)" prometheus \
        --config.file="$STACK_DIR/prometheus/prometheus.yml" \
        --storage.tsdb.path="$STACK_DIR/prometheus/data" \
        --storage.tsdb.retention.time=1d \
        --web.listen-address="$HOST:$PROMETHEUS_PORT" \
        --web.enable-lifecycle
      ;;
  esac
}

# refuse to start over a port someone else holds
check_ports_free() {
  local svc="$1" pp port var pids
  for pp in $(ports_of "$svc"); do
    port="${pp%%:*}"; var="${pp#*:}"
    if port_in_use "$port"; then
      pids="$(port_pids "$port")"
      echo "ccpulse: error: cannot start $svc: port $port is already in use by another process${pids:+ ($(describe_pids $pids))}." >&2
      echo "ccpulse:        stop that process, or set $var to a free port." >&2
      return 1
    fi
  done
}

status_line() { printf '%-11s%-9s%s\n' "$1" "$2" "$HOST:$(port_of "$1")${3:+  $3}"; }

show_failure() {
  local svc="$1" log
  log="$(log_of "$svc")"
  if [ "$svc" = kafka ]; then
    tail -n 10 "$LOGS/kafka.out" >&2 2>/dev/null || true
    if grep -qE '^\[[^]]*\] (ERROR|FATAL) ' "$log" 2>/dev/null; then
      grep -E -A3 '^\[[^]]*\] (ERROR|FATAL) ' "$log" | tail -n 20 >&2
      echo "(full log: $log)" >&2
      return 0
    fi
  fi
  tail -n 25 "$log" >&2 2>/dev/null || true
  echo "(full log: $log)" >&2
}

wait_healthy() {
  local svc="$1" pid deadline
  pid="$(cat "$RUN/$svc.pid" 2>/dev/null || true)"
  deadline=$(( $(date +%s) + $(timeout_of "$svc") ))
  while :; do
    if healthy "$svc"; then status_line "$svc" up; return 0; fi
    if ! alive "$pid"; then
      echo "ccpulse: error: $svc exited during start-up; last lines of its log:" >&2
      show_failure "$svc"
      rm -f "$RUN/$svc.pid"
      return 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "ccpulse: error: $svc not healthy after $(timeout_of "$svc") s; stopping it. Last lines of its log:" >&2
      show_failure "$svc"
      stop_services "$svc" >/dev/null
      return 1
    fi
    sleep 0.3
  done
}

start_services() {
  local svc failed=0 to_wait=()
  # preflight first, so nothing starts if a port is taken
  for svc in "$@"; do
    our_pid "$svc" >/dev/null || check_ports_free "$svc" || failed=1
  done
  [ "$failed" = 0 ] || exit 1
  for svc in "$@"; do
    our_pid "$svc" >/dev/null || launch "$svc"
    to_wait+=("$svc")
  done
  for svc in "${to_wait[@]}"; do
    wait_healthy "$svc" || failed=1
  done
  return "$failed"
}

stop_services() {
  local svc pid pids=() names=() deadline i
  for svc in "$@"; do
    if pid="$(our_pid "$svc")"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid"); names+=("$svc")
    fi
  done
  deadline=$(( $(date +%s) + STOP_TIMEOUT ))
  for i in "${!pids[@]}"; do
    while alive "${pids[$i]}" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
    if alive "${pids[$i]}"; then
      echo "ccpulse: ${names[$i]} (pid ${pids[$i]}) still running after ${STOP_TIMEOUT} s: SIGKILL" >&2
      kill -KILL "${pids[$i]}" 2>/dev/null || true
      sleep 0.2
    fi
  done
  for svc in "$@"; do
    rm -f "$RUN/$svc.pid"
    status_line "$svc" down
  done
}

lock() {
  mkdir -p "$RUN"
  exec 9>"$RUN/stack.lock"
  flock -w 300 9 || die "another stack.sh is still running (lock $RUN/stack.lock)"
}

show_status() {
  local svc pid pids rc=0
  for svc in "${SERVICES[@]}"; do
    if pid="$(our_pid "$svc")"; then
      if healthy "$svc"; then status_line "$svc" up
      else status_line "$svc" unhealthy "(pid $pid, see $(log_of "$svc"))"; rc=1; fi
    else
      rc=1
      pids="$(port_pids "$(port_of "$svc")")"
      if port_in_use "$(port_of "$svc")"; then
        status_line "$svc" down "(port taken by another process${pids:+: $(describe_pids $pids)})"
      else
        status_line "$svc" down
      fi
    fi
  done
  return "$rc"
}

valid_service() {
  case "${1:-}" in kafka|redis|prometheus) ;; *) die "unknown service '${1:-}': use kafka, redis or prometheus" ;; esac
}

usage() {
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# ------------------------------------------------------------------ main
cmd="${1:-}"
case "$cmd" in
  up)
    lock
    t0=$(date +%s)
    start_services "${SERVICES[@]}" || { echo "ccpulse: stack is NOT up (see above; logs in $LOGS)" >&2; exit 1; }
    say "stack up in $(( $(date +%s) - t0 )) s (logs in $LOGS)"
    ;;
  down)
    lock
    stop_services kafka prometheus redis
    ;;
  status)
    show_status
    ;;
  start-service)
    valid_service "${2:-}"; lock
    start_services "$2"
    ;;
  stop-service)
    valid_service "${2:-}"; lock
    stop_services "$2"
    ;;
  logs)
    if [ -n "${2:-}" ]; then valid_service "$2"; set -- "$2"; else set -- "${SERVICES[@]}"; fi
    for svc in "$@"; do
      echo "==> $(log_of "$svc") <=="
      tail -n "${LINES:-40}" "$(log_of "$svc")" 2>/dev/null || echo "(no log yet)"
    done
    ;;
  -h|--help|help)
    usage
    ;;
  *)
    usage >&2
    exit 2
    ;;
esac
