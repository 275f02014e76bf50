#!/usr/bin/env bash
# Real Slurm on one machine for perfarena's tests: munged + slurmctld + slurmd for one node
# ("localhost", the machine's CPUs, cons_tres, two fake GPUs as GRES), all on 127.0.0.1.
#   eval "$(bash scripts/slurm-env.sh up)"   # idempotent; prints "export SLURM_CONF=..." on stdout
#   bash scripts/slurm-env.sh down           # cancels jobs, stops only what "up" started (by PID)
#   bash scripts/slurm-env.sh env            # prints "export SLURM_CONF=..."
# `up` installs Debian's slurm packages and munge when missing (root), writes a minimal
# slurm.conf, and starts each daemon only when it is not already running/answering.
# Knobs: SLURM_CI_DIR (/tmp/slurm-ci), SLURM_CI_GPUS (fake GPUs, 2; 0 = no GRES),
#        SLURM_CI_FRESH=1 (forget old jobs on up), SLURM_CI_CTLD_PORT (6817), SLURM_CI_SLURMD_PORT (6818).
# From the verified recipe for Slurm on one machine; the tests in crates/perfarena/tests/slurm_*.rs
# need SLURM_CONF exported (or the default /tmp/slurm-ci/etc/slurm.conf present).
set -euo pipefail

DIR=${SLURM_CI_DIR:-/tmp/slurm-ci}
GPUS=${SLURM_CI_GPUS:-2}
CTLD_PORT=${SLURM_CI_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_CI_SLURMD_PORT:-6818}
NODE=localhost   # slurmctld accepts "localhost" as its host; slurmd runs with -N localhost
PKGS=(slurmctld slurmd slurm-client munge)
# Always set: with no config file a Slurm client asks DNS for _slurmctld._tcp SRV records.
export SLURM_CONF=$DIR/etc/slurm.conf
T0=$(date +%s.%N)

log() { printf '[slurm-env +%ss] %s\n' "$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN{printf "%.1f", a-b}')" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# true if PID $1 is alive (not a zombie) and its command name is $2
pid_is() {
  [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] &&
    [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]
}
# true if the daemon $1 (munged|slurmctld|slurmd) that "up" started is alive
ours() { local f=$DIR/run/$1.pid; [ -s "$f" ] && pid_is "$(cat "$f")" "$1"; }
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

install_packages() {
  local need=() p added_policy=0 rc=0
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
  done
  [ ${#need[@]} -eq 0 ] && { log "packages present"; return; }
  [ "$(id -u)" = 0 ] || die "need root to install ${need[*]}"
  if [ ! -e /usr/sbin/policy-rc.d ]; then   # keep maintainer scripts from starting services
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  log "installing ${need[*]}"
  { apt-get update -qq >&2 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; } || rc=$?
  [ $added_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ $rc = 0 ] || die "apt-get failed ($rc)"
  log "installed"
}

start_munge() {
  if ours munged; then log "munged running (pid $(cat "$DIR/run/munged.pid"))"; return; fi
  if munge_ok; then log "munged already answering; not ours, left alone"; return; fi
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
  fi
  install -d -o munge -g munge -m 0755 /run/munge
  # forks and writes /run/munge/munged.pid; keep its fds off our stdout ($(...) would wait)
  runuser -u munge -- /usr/sbin/munged </dev/null >/dev/null 2>"$DIR/log/munged.start" ||
    die "munged: $(cat "$DIR/log/munged.start")"
  local i
  for i in $(seq 50); do munge_ok && break; sleep 0.1; done
  munge_ok || die "munged does not answer; see /var/log/munge/munged.log"
  cp /run/munge/munged.pid "$DIR/run/munged.pid"
  log "munged started (pid $(cat "$DIR/run/munged.pid"))"
}

# NoInAddrAny binds to what the hostname resolves to: use it only when the first IPv4 line
# of /etc/hosts naming this host says 127.0.0.1 (127.0.1.1 would break NodeAddr=127.0.0.1)
hostname_is_loopback() {
  awk -v h="$(uname -n)" '$1 ~ /^[0-9.]+$/ && !a { for (i = 2; i <= NF; i++) if ($i == h) a = $1 }
    END { exit a != "127.0.0.1" }' /etc/hosts
}

write_config() {
  local hw topo mem gres_node="" comm=""
  mkdir -p "$DIR"/{etc,log,state,spool,dev}
  hw=$(slurmd -C 2>/dev/null | head -1)     # NodeName=.. CPUs=.. Boards=.. ... RealMemory=..
  topo=$(grep -oE 'CPUs=[0-9]+ Boards=[0-9]+ SocketsPerBoard=[0-9]+ CoresPerSocket=[0-9]+ ThreadsPerCore=[0-9]+' <<<"$hw") ||
    die "slurmd -C gave: $hw"
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  mem=$(( mem * 9 / 10 ))                   # above the real size the node would be drained
  : > "$DIR/etc/gres.conf.new"
  if [ "$GPUS" -gt 0 ]; then
    local i files
    for ((i = 0; i < GPUS; i++)); do       # char devices equal to /dev/null: Slurm only stats them
      [ -c "$DIR/dev/gpu$i" ] || mknod "$DIR/dev/gpu$i" c 1 3 || die "mknod failed; try SLURM_CI_GPUS=0"
    done
    files=$DIR/dev/gpu0; [ "$GPUS" -gt 1 ] && files="$DIR/dev/gpu[0-$((GPUS - 1))]"
    printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s\n' "$NODE" "$files" > "$DIR/etc/gres.conf.new"
    gres_node=" Gres=gpu:$GPUS"
  fi
  hostname_is_loopback && comm="CommunicationParameters=NoCtldInAddrAny,NoInAddrAny"
  cat > "$SLURM_CONF.new" <<EOF
ClusterName=ci
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
$comm
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
MinJobAge=300
KillWait=5
MailProg=/bin/true
MpiDefault=none
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 $topo RealMemory=$mem$gres_node State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  printf 'CgroupPlugin=autodetect\nIgnoreSystemdOnFailure=yes\n' > "$DIR/etc/cgroup.conf.new"
  local f changed=0
  for f in slurm.conf gres.conf cgroup.conf; do
    cmp -s "$DIR/etc/$f.new" "$DIR/etc/$f" 2>/dev/null && { rm -f "$DIR/etc/$f.new"; continue; }
    mv "$DIR/etc/$f.new" "$DIR/etc/$f"; changed=1
  done
  if [ $changed = 1 ] && { ours slurmctld || ours slurmd; }; then
    log "config changed while daemons run; restarting them"
    stop_daemons
  fi
}

start_daemons() {
  local name i
  if [ "${SLURM_CI_FRESH:-0}" = 1 ] && ! ours slurmctld; then
    rm -rf "$DIR/state" "$DIR/spool" "$DIR/log/jobcomp.txt" && mkdir -p "$DIR/state" "$DIR/spool"
  fi
  if ! ours slurmctld && ! ours slurmd && scontrol ping 2>/dev/null | grep -q 'is UP' &&
    sinfo -h -N -n "$NODE" -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated|completing)'; then
    log "slurm already answering on $SLURM_CONF; not ours, left alone"
    return
  fi
  for name in slurmctld slurmd; do
    if ours "$name"; then log "$name running (pid $(cat "$DIR/run/$name.pid"))"; continue; fi
    rm -f "$DIR/run/$name.pid"
    if [ "$name" = slurmctld ]; then
      setsid slurmctld -D -f "$SLURM_CONF" >>"$DIR/log/slurmctld.out" 2>&1 </dev/null &
    else
      setsid slurmd -D -N "$NODE" -f "$SLURM_CONF" >>"$DIR/log/slurmd.out" 2>&1 </dev/null &
    fi
    for i in $(seq 100); do ours "$name" && break; sleep 0.1; done   # the daemon writes its pid file
    ours "$name" || die "$name did not start: $(tail -5 "$DIR/log/$name.out")"
    log "$name started (pid $(cat "$DIR/run/$name.pid"))"
  done
}

wait_ready() {
  local i st resumed=0
  for i in $(seq 300); do                   # 60 s
    st=$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null || true)
    case $st in
      idle|mixed|allocated|completing) log "node $NODE $st"; return ;;
      *drain*|*inval*)
        if [ $resumed = 0 ] && [ "$i" -gt 10 ]; then   # DRAIN kept from an older state dir
          log "node $st: $(scontrol show node "$NODE" | grep -o 'Reason=.*'); resuming once"
          scontrol update nodename="$NODE" state=resume || true; resumed=1
        fi ;;
    esac
    ours slurmctld || die "slurmctld died: $(tail -5 "$DIR/log/slurmctld.log")"
    ours slurmd || die "slurmd died: $(tail -5 "$DIR/log/slurmd.log")"
    sleep 0.2
  done
  die "node not ready ($st): $(scontrol show node "$NODE" 2>&1 | grep -o 'Reason=.*')"
}

# SIGTERM, wait up to 10 s, then SIGKILL; $1 = name, $2 = pid
stop_pid() {
  local i
  pid_is "$2" "$1" || return 0
  kill -TERM "$2" 2>/dev/null || true
  for i in $(seq 100); do pid_is "$2" "$1" || { log "stopped $1 (pid $2)"; return 0; }; sleep 0.1; done
  kill -KILL "$2" 2>/dev/null || true; log "killed $1 (pid $2)"
}

stop_daemons() {
  local name
  for name in slurmd slurmctld; do
    ours "$name" && stop_pid "$name" "$(cat "$DIR/run/$name.pid")"
    rm -f "$DIR/run/$name.pid"
  done
}

# job steps and job processes outlive slurmd; they carry our SLURM_CONF in their environment
envof() { tr '\0' '\n' 2>/dev/null <"/proc/$1/environ"; }
stop_leftovers() {
  local e p
  for e in /proc/[0-9]*/environ; do
    p=${e#/proc/}; p=${p%/environ}
    [ "$p" = $$ ] && continue
    envof "$p" | grep -qxF "SLURM_CONF=$SLURM_CONF" || continue
    if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = slurmstepd ] || envof "$p" | grep -q '^SLURM_JOB_ID='; then
      log "killing leftover job process $p ($(cat "/proc/$p/comm" 2>/dev/null))"
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
}

down() {
  local i ids
  if ours slurmctld; then
    ids=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')
    if [ -n "${ids// /}" ]; then
      log "cancelling jobs $ids"
      # shellcheck disable=SC2086
      scancel $ids 2>/dev/null || true
      for i in $(seq 150); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.1; done
    fi
  fi
  stop_daemons
  stop_leftovers
  if ours munged; then stop_pid munged "$(cat "$DIR/run/munged.pid")"; fi
  rm -f "$DIR/run/munged.pid"
  log "down (logs and job state kept in $DIR)"
}

case ${1:-} in
  up)
    install_packages
    mkdir -p "$DIR/run" "$DIR/log"
    write_config
    start_munge
    start_daemons
    wait_ready
    echo "export SLURM_CONF=$SLURM_CONF" ;;
  down) down ;;
  env) echo "export SLURM_CONF=$SLURM_CONF" ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
