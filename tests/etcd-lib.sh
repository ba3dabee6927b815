# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Shell helpers of the tests that need an etcd cluster (sourced): a
# cluster of N members on loopback, each with its own data directory under
# one temporary directory, client and peer ports from a free block above
# 20000 (never etcd's 2379/2380, where Debian's etcd-server may already
# run, and below the kernel's ephemeral ports), short raft timers so that
# leases of 1-2 s work; killing, stopping, continuing and restarting a
# member; everything killed and removed at exit.
#
# The cluster's state is kept in files under $ETCD_DIR (exported), so a
# test program can act on members through a child shell:
#   bash -c '. tests/etcd-lib.sh && etcd_kill 2'
#
#   etcd_cluster_start N   start members 1..N, wait until all are healthy;
#                          installs `trap etcd_cleanup EXIT` unless the
#                          script has an EXIT trap (which then calls
#                          etcd_cleanup); the data directories go to
#                          /dev/shm when it has room (fsyncs that a busy
#                          disk cannot hold up), else $TMPDIR
#   etcd_endpoints [I...]  "http://127.0.0.1:PORT,..." of members I (all)
#   etcd_kill I            SIGKILL member I and wait until it is gone
#   etcd_stop I / etcd_cont I   SIGSTOP / SIGCONT member I
#   etcd_restart I         kill member I if it runs, start it again on its
#                          data directory and ports, wait until it listens
#   etcd_wait_healthy [I...]  wait (30 s at most) until members I (all)
#                          answer a linearizable read (quorum)
#   etcd_logs              the tail of every member's log (on failure)
#   etcd_cleanup           kill every member, remove $ETCD_DIR
#
# With ETCD_TLS_DIR set (before etcd_cluster_start) the members serve
# their clients over TLS only, with client certificates required
# (--client-cert-auth): the folder holds ca.crt (the CA of every
# certificate below), server.crt/server.key (for 127.0.0.1) and
# client.crt/client.key (what etcdctl uses here); etcd_endpoints then
# gives https:// URLs.  The peers speak plain HTTP on loopback.

ETCD_BIN=${ETCD_BIN:-etcd}
ETCDCTL_BIN=${ETCDCTL_BIN:-etcdctl}

# _etcd_ports_free BASE COUNT: ports BASE..BASE+COUNT-1 all bind now
_etcd_ports_free() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import socket, sys
base, count = int(sys.argv[1]), int(sys.argv[2])
held = []
try:
    for p in range(base, base + count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        held.append(s)
        s.bind(("127.0.0.1", p))
except OSError:
    sys.exit(1)
PY
}

# _etcd_pid_alive PID: the process exists and is not a zombie
_etcd_pid_alive() {
  local state
  [ -r "/proc/$1/stat" ] || return 1
  state=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

_etcd_member_pid() { cat "$ETCD_DIR/m$1/pid" 2>/dev/null || true; }

# _etcd_member_run I: start member I in the background (its log appended
# to m$I/log, its pid in m$I/pid)
_etcd_member_run() {
  local m=$ETCD_DIR/m$1
  local -a args
  mapfile -t args <"$m/args"
  "$ETCD_BIN" "${args[@]}" </dev/null >>"$m/log" 2>&1 &
  echo $! >"$m/pid"
  # no "Killed" job reports; the pid files are what counts
  disown $!
}

# _etcd_listening I: member I accepts connections on its client port
_etcd_listening() {
  local port
  port=$(cat "$ETCD_DIR/m$1/client_port")
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

_etcd_scheme() { if [ -n "${ETCD_TLS_DIR:-}" ]; then echo https; else echo http; fi; }
# etcdctl's TLS options (none without ETCD_TLS_DIR)
_etcdctl_tls() {
  [ -n "${ETCD_TLS_DIR:-}" ] || return 0
  printf '%s\n' --cacert "$ETCD_TLS_DIR/ca.crt" --cert "$ETCD_TLS_DIR/client.crt" \
    --key "$ETCD_TLS_DIR/client.key"
}

etcd_endpoints() {
  local -a ids=("$@") urls=()
  local i
  [ ${#ids[@]} -gt 0 ] || mapfile -t ids < <(seq "$(cat "$ETCD_DIR/members")")
  for i in "${ids[@]}"; do
    urls+=("$(_etcd_scheme)://127.0.0.1:$(cat "$ETCD_DIR/m$i/client_port")")
  done
  (IFS=,; echo "${urls[*]}")
}

etcd_wait_healthy() {
  local -a ids=("$@")
  local i deadline=$((SECONDS + 30))
  [ ${#ids[@]} -gt 0 ] || mapfile -t ids < <(seq "$(cat "$ETCD_DIR/members")")
  for i in "${ids[@]}"; do
    until ETCDCTL_API=3 "$ETCDCTL_BIN" --endpoints "$(etcd_endpoints "$i")" \
      $(_etcdctl_tls) --dial-timeout 1s --command-timeout 2s endpoint health \
      >/dev/null 2>&1; do
      if [ $SECONDS -ge $deadline ] || ! _etcd_pid_alive "$(_etcd_member_pid "$i")"; then
        echo "etcd member $i is not healthy" >&2
        return 1
      fi
      sleep 0.1
    done
  done
}

# _etcd_cluster_try N: one attempt on a fresh block of ports
_etcd_cluster_try() {
  local n=$1 base i tries=0 cluster=""
  while :; do
    base=$((20000 + RANDOM % 12000))
    _etcd_ports_free "$base" $((2 * n)) && break
    tries=$((tries + 1))
    [ $tries -lt 50 ] || { echo "no free block of ports" >&2; return 1; }
  done
  echo "$n" >"$ETCD_DIR/members"
  for i in $(seq "$n"); do
    mkdir -p "$ETCD_DIR/m$i"
    echo $((base + 2 * (i - 1))) >"$ETCD_DIR/m$i/client_port"
    echo $((base + 2 * (i - 1) + 1)) >"$ETCD_DIR/m$i/peer_port"
    cluster+="${cluster:+,}m$i=http://127.0.0.1:$((base + 2 * (i - 1) + 1))"
  done
  for i in $(seq "$n"); do
    local c p
    c=$(cat "$ETCD_DIR/m$i/client_port")
    p=$(cat "$ETCD_DIR/m$i/peer_port")
    printf '%s\n' --name "m$i" --data-dir "$ETCD_DIR/m$i/data" \
      --listen-client-urls "$(_etcd_scheme)://127.0.0.1:$c" \
      --advertise-client-urls "$(_etcd_scheme)://127.0.0.1:$c" \
      --listen-peer-urls "http://127.0.0.1:$p" \
      --initial-advertise-peer-urls "http://127.0.0.1:$p" \
      --initial-cluster "$cluster" --initial-cluster-state new \
      --initial-cluster-token "mcsec-test-$$-$base" \
      --heartbeat-interval 100 --election-timeout 500 \
      --logger zap --log-outputs stderr \
      >"$ETCD_DIR/m$i/args"
    [ -z "${ETCD_TLS_DIR:-}" ] ||
      printf '%s\n' --cert-file "$ETCD_TLS_DIR/server.crt" \
        --key-file "$ETCD_TLS_DIR/server.key" --client-cert-auth \
        --trusted-ca-file "$ETCD_TLS_DIR/ca.crt" >>"$ETCD_DIR/m$i/args"
    _etcd_member_run "$i"
  done
  etcd_wait_healthy
}

# _etcd_tmpdir: /dev/shm with 1 GB free (each member preallocates a 64 MB
# log), else $TMPDIR
_etcd_tmpdir() {
  local free
  free=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 {print $4}')
  if [ -w /dev/shm ] && [ "${free:-0}" -gt 1048576 ]; then
    echo /dev/shm
  else
    echo "${TMPDIR:-/tmp}"
  fi
}

etcd_cluster_start() {
  local n=${1:-3} attempt
  command -v "$ETCD_BIN" >/dev/null || { echo "etcd is not installed" >&2; return 1; }
  command -v "$ETCDCTL_BIN" >/dev/null || { echo "etcdctl is not installed" >&2; return 1; }
  ETCD_DIR=$(mktemp -d "$(_etcd_tmpdir)/mcsec-etcd.XXXXXX")
  export ETCD_DIR
  [ -n "$(trap -p EXIT)" ] || trap etcd_cleanup EXIT
  for attempt in 1 2 3; do
    _etcd_cluster_try "$n" && return 0
    # a port taken between the probe and etcd's bind: another block
    echo "etcd cluster attempt $attempt failed" >&2
    etcd_logs >&2
    _etcd_kill_all
    rm -rf "${ETCD_DIR:?}"/m*
  done
  return 1
}

etcd_pid() { _etcd_member_pid "$1"; }

etcd_kill() {
  local pid deadline=$((SECONDS + 10))
  pid=$(_etcd_member_pid "$1")
  [ -n "$pid" ] || return 0
  kill -KILL "$pid" 2>/dev/null || true
  while _etcd_pid_alive "$pid"; do
    [ $SECONDS -lt $deadline ] || { echo "etcd member $1 survives SIGKILL" >&2; return 1; }
    sleep 0.02
  done
}

# _etcd_running_pid I: member I's pid, or a message and failure
_etcd_running_pid() {
  local pid
  pid=$(_etcd_member_pid "$1")
  if [ -z "$pid" ]; then
    echo "etcd member $1: no pid in ${ETCD_DIR:-(ETCD_DIR unset)}/m$1" >&2
    return 1
  fi
  echo "$pid"
}

etcd_stop() {
  local pid
  pid=$(_etcd_running_pid "$1") && kill -STOP "$pid"
}

etcd_cont() {
  local pid
  pid=$(_etcd_running_pid "$1") && kill -CONT "$pid"
}

etcd_restart() {
  local deadline=$((SECONDS + 30))
  etcd_kill "$1"
  _etcd_member_run "$1"
  until _etcd_listening "$1"; do
    if [ $SECONDS -ge $deadline ] || ! _etcd_pid_alive "$(_etcd_member_pid "$1")"; then
      echo "etcd member $1 did not restart" >&2
      tail -n 20 "$ETCD_DIR/m$1/log" >&2
      return 1
    fi
    sleep 0.05
  done
}

etcd_logs() {
  local m
  for m in "$ETCD_DIR"/m*/; do
    [ -f "$m/log" ] || continue
    echo "---- ${m%/}/log (last 30 lines)"
    tail -n 30 "$m/log"
  done
}

# _etcd_all_pids: every member's pid, from the pid files and from the
# processes whose data directory is under $ETCD_DIR (even if the files are
# gone)
_etcd_all_pids() {
  local m p
  for m in "$ETCD_DIR"/m*/; do
    cat "$m/pid" 2>/dev/null || true
  done
  for p in /proc/[0-9]*; do
    [ "$(cat "$p/comm" 2>/dev/null)" = etcd ] &&
      tr '\0' ' ' <"$p/cmdline" 2>/dev/null |
      grep -qF -- "--data-dir $ETCD_DIR/m" && echo "${p#/proc/}"
  done
  return 0
}

_etcd_kill_all() {
  local pid
  local -a pids
  mapfile -t pids < <(_etcd_all_pids | sort -u)
  for pid in "${pids[@]}"; do
    kill -CONT "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    while _etcd_pid_alive "$pid"; do sleep 0.02; done
  done
}

etcd_cleanup() {
  [ -n "${ETCD_DIR:-}" ] || return 0
  _etcd_kill_all
  if [ -n "${ETCD_KEEP:-}" ]; then
    echo "kept $ETCD_DIR" >&2
  else
    rm -rf "$ETCD_DIR"
  fi
}
