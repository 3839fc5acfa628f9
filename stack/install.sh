#!/usr/bin/env bash
# ccpulse: install what the local stack needs (starts nothing). Idempotent; seconds when done.
#   - Debian packages: redis-server, prometheus (+promtool), prometheus-alertmanager (amtool),
#     chromium, chromium-driver, docker-compose (its schema and `config` check the compose file;
#     no engine is needed) (and curl / openssl / Java 17 / Maven if this machine lacks them;
#     openssl makes the certificates of the Redis TLS test).
#   - Apache Kafka broker jars from Maven Central (stack/kafka/pom.xml) into
#     $CCPULSE_STACK_DIR/kafka/libs (default <repo>/.stack/kafka/libs).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${CCPULSE_STACK_DIR:-$REPO/.stack}"
POM="$REPO/stack/kafka/pom.xml"
LIBS="$STACK_DIR/kafka/libs"

say() { echo "ccpulse: $*"; }
die() { echo "ccpulse: error: $*" >&2; exit 1; }

# ---------------------------------------------------------------- Debian packages
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

missing=()
# package            command(s) it must provide
for spec in \
  "redis-server:redis-server" \
  "redis-tools:redis-cli" \
  "prometheus:prometheus promtool" \
  "prometheus-alertmanager:amtool" \
  "chromium:chromium" \
  "chromium-driver:chromedriver" \
  "docker-compose:docker-compose" \
  "curl:curl" \
  "openssl:openssl" \
  "openjdk-17-jre-headless:java" \
  "maven:mvn"; do
  pkg="${spec%%:*}"
  ok=1
  for cmd in ${spec#*:}; do command -v "$cmd" >/dev/null 2>&1 || ok=0; done
  # Java / Maven / curl may come from elsewhere than Debian: the command is enough for those.
  case "$pkg" in
    openjdk-*|maven|curl) ;;
    *) pkg_installed "$pkg" || ok=0 ;;
  esac
  [ "$ok" = 1 ] || missing+=("$pkg")
done

if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing Debian packages (${missing[*]}); run as root or: sudo apt-get install ${missing[*]}"
  say "installing Debian packages: ${missing[*]}"
  # Services the packages would start: remember what already runs, so we stop only new ones.
  svc_pids() {
    local n
    for n in redis-server prometheus prometheus-aler prometheus-node alertmanager; do
      pgrep -x "$n" 2>/dev/null || true
    done | sort -u
  }
  before="$(svc_pids)"
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# ccpulse install.sh: keep package installs from starting services\nexit 101\n' \
      > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  cleanup_policy() { if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
  trap cleanup_policy EXIT
  export DEBIAN_FRONTEND=noninteractive
  aptlog="$(mktemp /tmp/ccpulse-apt.XXXXXX.log)"
  if ! { apt-get update -q && apt-get install -y -q "${missing[@]}"; } >"$aptlog" 2>&1; then
    tail -n 30 "$aptlog" >&2
    die "apt-get install ${missing[*]} failed (full log: $aptlog)"
  fi
  rm -f "$aptlog"
  cleanup_policy
  trap - EXIT
  # Anything the install started anyway (no policy-rc.d honoured, systemd...): stop it by id.
  after="$(svc_pids)"
  new="$(comm -13 <(echo "$before") <(echo "$after") | grep -v '^$' || true)"
  if [ -n "$new" ]; then
    for svc in redis-server prometheus prometheus-alertmanager prometheus-node-exporter; do
      if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl stop "$svc" >/dev/null 2>&1 || true
        systemctl disable "$svc" >/dev/null 2>&1 || true
      fi
    done
    for pid in $new; do kill "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in $new; do kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true; done
    say "stopped services the package install had started (pids: $(echo $new))"
  fi
  say "Debian packages installed"
fi

# ---------------------------------------------------------------- Apache Kafka jars
[ -f "$POM" ] || die "$POM not found"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -1)"
[ -n "$KAFKA_VERSION" ] || die "no <kafka.version> in $POM"
stamp="$LIBS/.ccpulse-pom.sha256"
pom_sum="$(sha256sum "$POM" | cut -d' ' -f1)"

if [ -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pom_sum" ]; then
  : # already there
else
  command -v mvn >/dev/null 2>&1 || die "mvn (Maven) not found"
  say "installing Kafka $KAFKA_VERSION jars from Maven Central..."
  mkdir -p "$STACK_DIR/kafka"
  tmp="$(mktemp -d "$STACK_DIR/kafka/libs.tmp.XXXXXX")"
  if ! mvn -B -q -f "$POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >"$tmp.log" 2>&1; then
    tail -n 30 "$tmp.log" >&2
    rm -rf "$tmp" "$tmp.log"
    die "could not resolve Kafka $KAFKA_VERSION from Maven Central (see above)"
  fi
  rm -f "$tmp.log"
  [ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after resolve"; }
  echo "$pom_sum" > "$tmp/.ccpulse-pom.sha256"
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  say "Kafka $KAFKA_VERSION: $(ls "$LIBS"/*.jar | wc -l) jars in $LIBS"
fi

say "install done (Kafka $KAFKA_VERSION, redis $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p'), prometheus $(prometheus --version 2>&1 | awk 'NR==1{print $3}'))"
