#!/usr/bin/env bash
# Docker for perfarena's tests, offline: a Docker daemon, the toy example's base image built from
# Debian packages (no image is pulled) and a registry (Debian's docker-registry) on 127.0.0.1:5000.
#
#   bash scripts/docker-env.sh up     # idempotent: reuses what already answers
#   bash scripts/docker-env.sh down   # stops only what "up" started (by pid file)
#
# Knobs (environment): PA_STATE_DIR (default /tmp/perfarena-docker), PA_BASE_IMAGE (default
# perfarena/toy-base:bookworm), PA_REGISTRY (default 127.0.0.1:5000), DOCKER (client binary).
# From the recipe in docs/images.md ("test environment"); see there for the pitfalls it avoids.
set -euo pipefail

STATE_DIR=${PA_STATE_DIR:-/tmp/perfarena-docker}
BASE_IMAGE=${PA_BASE_IMAGE:-perfarena/toy-base:bookworm}
REG=${PA_REGISTRY:-127.0.0.1:5000}
SUITE=bookworm
DOCKER=${DOCKER:-docker}
PKGS=(docker.io docker-registry mmdebstrap busybox-static curl)
T0=$(date +%s.%N)

log() { printf '[docker-env +%ss] %s\n' "$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN{printf "%.1f", a-b}')" "$*" >&2; }
die() { log "error: $*"; exit 1; }
# true if pid $1 is alive (not a zombie) and its command name is $2
pid_is() {
  [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] &&
    [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}
alive_named() { local p; for p in $(pgrep -x "$1" || true); do pid_is "$p" "$1" && return 0; done; return 1; }

install_packages() {
  local need=() p added_policy=0
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
  done
  [ ${#need[@]} -eq 0 ] && { log "packages present"; return; }
  [ "$(id -u)" = 0 ] || die "missing packages (${need[*]}) and not root: install them with apt-get"
  log "installing: ${need[*]}"
  # keep maintainer scripts from starting a default dockerd (docker0 bridge + iptables)
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; added_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ $added_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  log "packages installed"
}

start_dockerd() {
  if "$DOCKER" info >/dev/null 2>&1; then log "using the running docker daemon"; return; fi
  alive_named dockerd && die "a dockerd is running but not answering; not starting a second one"
  # a dockerd/containerd killed earlier can linger as a zombie: drop pid files naming no live daemon
  local f p
  for f in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
    p=$(cat "$f" 2>/dev/null || true)
    if [ -n "$p" ] && ! pid_is "$p" dockerd && ! pid_is "$p" containerd; then rm -f "$f"; fi
  done
  local dockerd; dockerd=$(command -v dockerd || echo /usr/sbin/dockerd)
  log "starting dockerd (no bridge, no iptables, pulls go to a dead loopback proxy)"
  # HTTP(S)_PROXY -> 127.0.0.1:9: an accidental pull fails at once instead of reaching out;
  # registries on loopback bypass the proxy.
  HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost,::1 \
    setsid "$dockerd" --bridge=none --iptables=false --ip-forward=false --ip-masq=false \
      --data-root /var/lib/docker --host unix:///var/run/docker.sock \
      >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/dockerd.pid"
  local i
  for i in $(seq 1 300); do
    if "$DOCKER" info >/dev/null 2>&1; then
      cp /var/run/docker.pid "$STATE_DIR/dockerd.pid"
      log "dockerd ready (pid $(cat "$STATE_DIR/dockerd.pid"))"; return
    fi
    pid_is "$(cat "$STATE_DIR/dockerd.pid")" dockerd || { tail -20 "$STATE_DIR/dockerd.log" >&2; die "dockerd exited"; }
    sleep 0.2
  done
  die "dockerd not ready after 60 s (see $STATE_DIR/dockerd.log)"
}

host_sources() {  # the host's own apt sources for $SUITE; no mirror is hard-coded
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && grep -v '^[[:space:]]*#' "$f" | grep -qw "$SUITE" && echo "$f"
  done
  return 0
}

build_base_image() {
  if "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then log "base image $BASE_IMAGE present"; return; fi
  local srcs; mapfile -t srcs < <(host_sources)
  [ ${#srcs[@]} -gt 0 ] || die "no apt sources for $SUITE found under /etc/apt"
  log "building $BASE_IMAGE from Debian packages (${srcs[*]})"
  local tar="$STATE_DIR/base-rootfs.tar"; rm -f "$tar"
  # unpack python3 + deps only (no dpkg configure), busybox as /bin/sh, precompiled .pyc
  mmdebstrap --quiet --variant=extract --include=python3,busybox-static \
    --extract-hook='ln -sf busybox "$1/bin/sh"; mkdir -p "$1/tmp"; chmod 1777 "$1/tmp";
      printf "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n" >"$1/etc/passwd";
      printf "root:x:0:\nnogroup:x:65534:\n" >"$1/etc/group";
      for t in cat cp ls mkdir rm sed sleep touch; do [ -e "$1/bin/$t" ] || ln -s busybox "$1/bin/$t"; done;
      chroot "$1" /usr/bin/python3 -m compileall -q -j0 /usr/lib >/dev/null 2>&1 || true' \
    "$SUITE" "$tar" "${srcs[@]}"
  "$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' --change 'LABEL perfarena.base=toy' \
    "$tar" "$BASE_IMAGE" >/dev/null
  rm -f "$tar"
  "$DOCKER" run --rm --pull never --network none "$BASE_IMAGE" \
    python3 -c 'import json, http.server, asyncio' || die "base image smoke test failed"
  log "base image $BASE_IMAGE built ($("$DOCKER" image inspect -f '{{.Size}}' "$BASE_IMAGE") bytes)"
}

start_registry() {
  if curl -fsS -m 2 -o /dev/null "http://$REG/v2/" 2>/dev/null; then log "registry already answering on $REG"; return; fi
  local port=${REG##*:}
  ss -ltn "sport = :$port" | grep -q LISTEN && die "port $port is taken by something that is not a registry"
  mkdir -p "$STATE_DIR/registry/data"
  cat >"$STATE_DIR/registry/config.yml" <<CFG
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $STATE_DIR/registry/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $REG
  secret: perfarena-local-only
  headers:
    X-Content-Type-Options: [nosniff]
CFG
  setsid docker-registry serve "$STATE_DIR/registry/config.yml" >"$STATE_DIR/registry.log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/registry.pid"
  local i
  for i in $(seq 1 100); do
    curl -fsS -m 1 -o /dev/null "http://$REG/v2/" 2>/dev/null && { log "registry ready on $REG (pid $(cat "$STATE_DIR/registry.pid"))"; return; }
    sleep 0.1
  done
  cat "$STATE_DIR/registry.log" >&2; die "registry did not come up"
}

stop_pidfile() {  # $1 pid file, $2 expected command name
  local pid; pid=$(cat "$1" 2>/dev/null || true)
  if pid_is "$pid" "$2"; then
    kill -TERM "$pid"
    local i; for i in $(seq 1 150); do pid_is "$pid" "$2" || break; sleep 0.2; done
    pid_is "$pid" "$2" && { log "$2 (pid $pid) ignored SIGTERM; sending SIGKILL"; kill -KILL "$pid"; }
    log "stopped $2 (pid $pid)"
  fi
  rm -f "$1"
}

case "${1:-up}" in
  up)
    mkdir -p "$STATE_DIR"
    install_packages
    start_dockerd
    build_base_image
    start_registry
    log "ready: daemon $("$DOCKER" version -f '{{.Server.Version}}'), base $BASE_IMAGE, registry $REG"
    ;;
  down)
    if "$DOCKER" info >/dev/null 2>&1; then
      ids=$("$DOCKER" ps -aq --filter label=perfarena.run)
      [ -z "$ids" ] || "$DOCKER" rm -f $ids >/dev/null
    fi
    stop_pidfile "$STATE_DIR/registry.pid" docker-registry
    stop_pidfile "$STATE_DIR/dockerd.pid" dockerd   # only a dockerd that "up" started
    ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
