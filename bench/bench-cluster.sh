#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench-cluster: the controller cluster under load (issue 15,
# docs/cluster.md), with real processes on loopback: a 3-member etcd
# (tests/etcd-lib.sh, data directories on /dev/shm), up to 3 mcsec-controller
# processes sharing it, and members simulated by build/bench/bench-cluster
# (bench/bench-cluster.c: bench-mike's simulated members, given the list of
# controllers and moving between them as mcsec_client does).  One run
# prints, with every ratio taken within the run:
#
#  1. registrations/s (TLS 1.3, JOIN, WELCOME, first update; each member
#     closes once joined) over 6 groups, with 1, 2 and 3 controllers in a
#     cluster, against one controller without a cluster (state in files)
#     under the same load; members start at their group's leader, and (2
#     and 3 controllers) at the first controller of the list, which relays
#     them to the leader (docs/cluster.md "Relaying"), and (3 controllers
#     with relay = false) sends them there (`not-leader`); the CPU of the controllers, of
#     etcd and of the simulated members per registration;
#  2. rekey time: `rekey GROUP` at the leader of a unicast group of N
#     members until every member holds the new update, clusters of 1, 2
#     and 3 (2 and 3 also with every member at a follower, relayed to the
#     leader) against the single controller;
#  3. etcd writes per join and per leave (the controllers' `etcd-writes`
#     counters, and which keys moved), a unicast group (rekey on join and
#     leave) and a key tree group (rekeys batched), members coming at once
#     and one at a time;
#  4. the state in etcd (bytes of keys and values under the prefix) with
#     the key tree group empty and with K members; the failover: the leader
#     of the key tree group SIGKILLed, the time until the leader key is gone
#     (etcd ended the lease), until another controller won it, until the K
#     members have joined again; then what a 1,000,000-member key tree
#     group would take, extrapolated (marked so) from the rates measured;
#     and a unicast group's failover with its SA adopted from etcd (sealed
#     under the cluster key): the members rejoin under the same SA.
#
# Everything shares the machine's cores: the simulated members, etcd and
# the controllers.  Nothing is pinned.  The registrations run in two rounds,
# the second in the reverse order, and the figures of both are summed.
# Members of the key tree group past its first 32 do not process the rekey
# channel (bench/bench-cluster.c says why and how they are simulated).
# The run takes about 2 minutes (--quick: under 1).
#
#   bench-cluster.sh BUILD_DIR [--quick]      (BENCH_KEEP=1 keeps the logs)
set -euo pipefail
build=$(cd "$1" && pwd)
shift
quick=
[ "${1:-}" = --quick ] && quick=1
src_dir=$(cd "$(dirname "$0")/.." && pwd)
tools=$build/tools
helper=$build/bench/bench-cluster

if [ -n "$quick" ]; then
  REG_TOTAL=400 REKEY_NS="100" REKEYS=3 U_N=50 TREE_N=100 FAIL_K=300 SPACED=2
else
  REG_TOTAL=1500 REKEY_NS="100 1000" REKEYS=5 U_N=100 TREE_N=500 FAIL_K=1000 SPACED=5
fi
CONC=32
REG_PER_RUN=6
# candidates for the registrations' groups: after the election, the 6 used
# are chosen so that each controller leads as many.  The leaders' ranks
# come from g_str_hash of "CONTROLLER/GROUP" (cluster.c), which orders
# c1, c2, c3 the same way for every group name of one length with a common
# prefix (all 24 "registrations-NN" went to c1): names that differ from
# their first characters, of 13 characters, spread
REG_CANDIDATES=$(for i in $(seq 24); do echo "reg-$(echo "$i" | md5sum | cut -c1-9)"; done | paste -sd' ')
HELD_IDS=4000 # h0..: the held members' identities in every group's list
LEASE=3       # s: docs/cluster.md's default

echo
echo "bench-cluster: the controller cluster (issue 15)${quick:+, --quick}"
. "$src_dir/bench/bench-lib.sh"
# the single controller's files on tmpfs too, when it has room
bench_start "$helper" 1048576
. "$src_dir/examples/controller-lib.sh"
. "$src_dir/tests/etcd-lib.sh"

declare -a ctl_pid=()
helper_pid=
watch_pid=
cleanup() {
  local p
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null || true
  [ -n "$helper_pid" ] && kill "$helper_pid" 2>/dev/null || true
  for p in "${ctl_pid[@]}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  etcd_cleanup
  [ -n "${BENCH_KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "bench-cluster.sh: error at line $LINENO (status $?)" >&2' ERR

t_start=$SECONDS
load0=$(cut -d' ' -f1-3 /proc/loadavg)
tick=$(getconf CLK_TCK)
ncpu=$(nproc)
etcd_cluster_start 3 >/dev/null
eps=$(etcd_endpoints)
etcd_pids=$(for i in 1 2 3; do etcd_pid "$i"; done | tr '\n' ' ')
cd "$tmp"
"$tools/mcsecctl" pki pki >/dev/null
# the cluster key: the SAs of unicast groups sealed in etcd (adopted on a
# failover, docs/cluster.md), as a cluster is meant to run
(umask 077 && openssl rand -hex 32 >"$tmp/cluster.key")
reg_ids=$(seq 0 999 | sed 's/^/r/' | paste -sd';')
ids=$(seq 0 $((HELD_IDS - 1)) | sed 's/^/h/' | paste -sd';')
chan_port=$(free_port SOCK_DGRAM)
chan_addr=239.255.91.1
echo "  $ncpu cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), shared by the simulated members, etcd (3 members, data on $TMPDIR) and the controllers: nothing pinned; etcd $(etcd --version | awk '/etcd Version/ {print $3}'), lease ${LEASE} s"
if [ "$ncpu" -le 2 ]; then
  echo "  NOTE: on $ncpu cores every process competes for the same CPU: more"
  echo "  controllers cannot raise the rate here; read the CPU per"
  echo "  registration, not the wall rate, for what more machines would give"
fi

# ---- controllers ----------------------------------------------------------

# write_conf I N PREFIX: controller I's configuration; N = 0: one controller
# without a cluster (state in files), else one of N in a cluster
write_conf() {
  local i=$1 n=$2 prefix=$3 names
  mkdir -p "$rd/c$i"
  {
    cat <<EOF
[controller]
listen = 127.0.0.1:${port[$i]}
certificate = $tmp/pki/controller.crt
private-key = $tmp/pki/controller.key
ca = $tmp/pki/ca.crt
signing-key = $tmp/pki/controller-sign.key
state-dir = state

EOF
    if [ "$n" -gt 0 ]; then
      names=$(seq 1 "$n" | sed 's/^/c/' | paste -sd,)
      cat <<EOF
[cluster]
etcd = $eps
name = c$i
controllers = $names
lease = $LEASE
prefix = $prefix
cluster-key = $tmp/cluster.key
relay = ${RELAY:-true}

EOF
    fi
    # registrations: receivers' groups without rekeys on join and leave
    for g in $REG_CANDIDATES; do
      printf '[group %s]\nrekey-on-join = false\nrekey-on-leave = false\nreceivers = %s\n\n' "$g" "$reg_ids"
    done
    # rekey timing (no rekey while N members join)
    printf '[group rk]\nrekey-on-join = false\nrekey-on-leave = false\nreceivers = %s\n\n' "$ids"
    # etcd writes: the defaults (a rekey on every join and leave)
    printf '[group u]\nreceivers = %s\n\n' "$ids"
    # a unicast group's failover (the defaults): its SA adopted
    printf '[group uf]\nreceivers = %s\n\n' "$ids"
    # a key tree group on loopback (tests/mike-e2e.sh's tv)
    printf '[group tv]\nreceivers = %s\nrekey-channel = %s:%s\nrekey-interface = lo\n' \
      "$ids" "$chan_addr" "$chan_port"
  } >"$rd/c$i/ctl.conf"
}

# start_ctls N: N = 0 one controller without a cluster; else N in a
# cluster on a fresh prefix.  Sets list, admins, pids, prefix.
declare -A port
run_no=0
start_ctls() {
  local n=$1 count i
  count=$((n == 0 ? 1 : n))
  run_no=$((run_no + 1))
  prefix=/mcsec-bench-$$-$run_no/
  rd=$tmp/run$run_no # each run its own directories (kept with BENCH_KEEP=1)
  admins=
  for i in $(seq "$count"); do
    port[$i]=$(free_port SOCK_STREAM)
    write_conf "$i" "$n" "$prefix"
    admins+="${admins:+,}$rd/c$i/state/admin.sock"
  done
  ctl_pid=()
  for i in $(seq "$count"); do start_ctl "$i" "$n"; done
  list='' pids=''
  for i in $(seq "$count"); do
    list+="${list:+,}127.0.0.1:${port[$i]}"
    pids+="${pids:+,}${ctl_pid[$i]}"
  done
}
# start_ctl I N: controller I, up when its admin socket answers; a port
# taken meanwhile (the members' connections use ephemeral ports of
# 127.0.0.1 too): another one, 3 tries
start_ctl() {
  local i=$1 n=$2 try
  for try in 1 2 3; do
    (cd "$rd/c$i" && exec "$tools/mcsec-controller" ctl.conf 2>>controller.log) &
    ctl_pid[$i]=$!
    disown $! # no "Killed" report for the failover's SIGKILL
    for _ in $(seq 200); do
      "$tools/mcsecctl" --socket "$rd/c$i/state/admin.sock" stats >/dev/null 2>&1 && return 0
      _etcd_pid_alive "${ctl_pid[$i]}" || break
      sleep 0.05
    done
    echo "  (controller c$i did not start, try $try: $(tail -1 "$rd/c$i/controller.log"))" >&2
    kill "${ctl_pid[$i]}" 2>/dev/null || true
    port[$i]=$(free_port SOCK_STREAM)
    write_conf "$i" "$n" "$prefix"
  done
  return 1
}

stop_ctls() {
  local p
  for p in "${ctl_pid[@]}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for p in "${ctl_pid[@]}"; do
    while [ -n "$p" ] && _etcd_pid_alive "$p"; do sleep 0.02; done
  done
  ctl_pid=()
}

# ---- the simulated members (bench-cluster, a coprocess) ----------------------

answer=
start_helper() { # start_helper [--channel ...]
  coproc HELPER { exec "$helper" --pki "$tmp/pki" --controllers "$list" \
    --admins "$admins" "$@" 2>>"$tmp/helper.err"; }
  helper_pid=$HELPER_PID
  read -r -t 60 answer <&"${HELPER[0]}"
}
ask() { # ask COMMAND...: its answer in $answer; fails on an error
  echo "$*" >&"${HELPER[1]}"
  if ! read -r -t 600 answer <&"${HELPER[0]}" || [[ $answer != ok* ]]; then
    echo "bench-cluster: '$*' answered '${answer:-nothing}'" >&2
    tail -5 "$tmp/helper.err" >&2 || true
    return 1
  fi
}
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $answer"; }
stop_helper() {
  echo quit >&"${HELPER[1]}" || true
  wait "$helper_pid" 2>/dev/null || true
  helper_pid=
}
# every group led by someone (10 s at most)
wait_leaders() {
  local g deadline=$((SECONDS + 10))
  for g in $REG_CANDIDATES rk u uf tv; do
    until ask leader "$g" && [ "${answer#ok }" -ge 0 ]; do
      if [ $SECONDS -ge $deadline ]; then
        echo "no leader for $g" >&2
        tail -n 5 "$rd"/c*/controller.log >&2
        return 1
      fi
      sleep 0.1
    done
  done
}
# leader_of GROUP: its leader's number (1..) in $L
leader_of() { ask leader "$1" && L=$((${answer#ok } + 1)); }

# pick_groups: REG_GROUPS, REG_PER_RUN of the candidates, as many led by
# each controller as the election allows; SPREAD says how all groups went
pick_groups() {
  local g i k
  local -A by=()
  SPREAD=
  for g in $REG_CANDIDATES rk u tv; do
    ask leader "$g"
    i=$((${answer#ok } + 1))
    by[$i]+="$g "
  done
  for i in $(seq "${#ctl_pid[@]}"); do
    SPREAD+="${SPREAD:+, }c$i $(wc -w <<<"${by[$i]:-}")"
  done
  REG_GROUPS=
  for k in $(seq 1 $REG_PER_RUN); do
    for i in $(seq "${#ctl_pid[@]}"); do
      g=$(cut -d' ' -f"$k" <<<"${by[$i]:-}")
      if [[ $g == reg-* ]] &&
        [ "$(tr ',' '\n' <<<"$REG_GROUPS" | grep -c .)" -lt $REG_PER_RUN ]; then
        REG_GROUPS+="${REG_GROUPS:+,}$g"
      fi
    done
  done
}

# ---- measuring ------------------------------------------------------------------

cpu_s() { # cpu_s PID...: their utime + stime, seconds
  local p sum=0 t
  for p in "$@"; do
    t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
    sum=$((sum + t))
  done
  awk -v t="$sum" -v hz="$tick" 'BEGIN {printf "%.3f", t / hz}'
}
stat_num() { # stat_num I KEY: a number from controller I's `stats`
  "$tools/mcsecctl" --socket "$rd/c$1/state/admin.sock" --json stats |
    sed -n "s/^{\"ok\":true,.*\"$2\":\([0-9]*\).*/\1/p"
}
group_num() { # group_num I GROUP KEY: a group's number in controller I's `stats`
  "$tools/mcsecctl" --socket "$rd/c$1/state/admin.sock" --json stats |
    /usr/bin/python3 -c '
import json, sys
g = [g for g in json.load(sys.stdin)["groups"] if g["name"] == sys.argv[1]][0]
print(g["channel"][sys.argv[2][8:]] if sys.argv[2].startswith("channel.") else g[sys.argv[2]])' "$2" "$3"
}
# etcd's keys under the prefix: KEY VERSION VALUE-BYTES per line
etcd_dump() {
  ETCDCTL_API=3 etcdctl --endpoints "$eps" get --prefix "$prefix" -w json |
    /usr/bin/python3 -c '
import base64, json, sys
for kv in json.load(sys.stdin).get("kvs", []):
    k = base64.b64decode(kv["key"]).decode()
    v = base64.b64decode(kv.get("value", ""))
    t = v[:40].decode("utf-8", "replace")
    # sealed values are binary: one line, one field each
    t = "".join("_" if c == " " else c if c.isprintable() and not c.isspace() else "." for c in t)
    print(k, kv.get("version", 0), len(v), (t or "-") if "/sealed/" not in k else "(sealed)")'
}
# what moved between two dumps: "KEY +VERSIONS" for each key written
dump_diff() {
  /usr/bin/python3 - "$1" "$2" "$prefix" <<'PY'
import sys
def load(p):
    d = {}
    for line in open(p):
        k, ver, n, v = line.split(" ", 3)
        d[k] = int(ver)
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
out = []
for k in sorted(set(a) | set(b)):
    d = b.get(k, 0) - a.get(k, 0)
    if k not in b:
        out.append("%s deleted" % k[len(sys.argv[3]):])
    elif d:
        out.append("%s +%d" % (k[len(sys.argv[3]):], d))
print(", ".join(out) or "none")
PY
}

# ---- 1. registrations -------------------------------------------------------------
echo
echo "1. registrations: $REG_TOTAL full TLS 1.3 joins per run ($CONC at a time; P-256 client certificates, JOIN, WELCOME, first update; each member closes once joined) over $REG_PER_RUN groups in turn (receivers' groups, no rekey on join or leave); in a cluster, the $REG_PER_RUN of 24 candidates chosen after the election so that the controllers lead as many each as they can; two rounds, the second in the reverse order (a slow phase of the machine hits all alike)"
declare -A sum_done sum_wall sum_ctl sum_etcd sum_mem
# reg_run LABEL START TAG: one measured run on the controllers running
reg_run() {
  local label=$1 start=$2 tag=$3 c0 c1 e0 e1 i per
  local -a r0=()
  c0=$(cpu_s "${ctl_pid[@]}")
  e0=$(cpu_s $etcd_pids)
  for i in "${!ctl_pid[@]}"; do r0[$i]=$(stat_num "$i" registrations); done
  ask register "$REG_GROUPS" "$REG_TOTAL" "$CONC" "$start"
  c1=$(cpu_s "${ctl_pid[@]}")
  e1=$(cpu_s $etcd_pids)
  per=
  for i in "${!ctl_pid[@]}"; do
    per+="${per:+ / }$(($(stat_num "$i" registrations) - r0[$i]))"
  done
  sum_done[$tag]=$(calc %d "${sum_done[$tag]:-0} + $(kv "done")")
  sum_wall[$tag]=$(calc %.4f "${sum_wall[$tag]:-0} + $(kv wall)")
  sum_ctl[$tag]=$(calc %.4f "${sum_ctl[$tag]:-0} + $c1 - $c0")
  sum_etcd[$tag]=$(calc %.4f "${sum_etcd[$tag]:-0} + $e1 - $e0")
  sum_mem[$tag]=$(calc %.4f "${sum_mem[$tag]:-0} + $(kv self_cpu)")
  printf '  round %s, %-42s %4.0f/s; %s done, %s failed; CPU per registration: controllers %4.0f us, etcd %3.0f us, members %4.0f us; %s TLS handshakes, %s redirected; per controller %s\n' \
    "$round" "$label" "$(kv rate)" "$(kv "done")" "$(kv failed)" \
    "$(calc %.1f "($c1 - $c0) / $(kv "done") * 1e6")" "$(calc %.1f "($e1 - $e0) / $(kv "done") * 1e6")" \
    "$(calc %.1f "$(kv self_cpu) / $(kv "done") * 1e6")" "$(kv handshakes)" "$(kv redirects)" "$per"
}
for round in 1 2; do
  # 3x: 3 controllers with relay = false (members from the list's first
  # are sent to the leader with not-leader)
  order="0 1 2 3 3x"
  [ $round -eq 2 ] && order="3x 3 2 1 0"
  for spec in $order; do
    n=${spec%x}
    relay=true
    [ "$spec" != "$n" ] && relay=false
    RELAY=$relay start_ctls "$n"
    start_helper
    wait_leaders
    pick_groups
    if [ "$n" -gt 1 ] && [ $round -eq 1 ] && [ "$relay" = true ]; then
      echo "  cluster of $n: of the 27 groups (24 candidates, rk, u, tv) the election gave $SPREAD"
    fi
    if [ "$n" -eq 3 ] && [ $round -eq 1 ] && [ "$relay" = true ]; then
      c0=$(cpu_s "${ctl_pid[@]}")
      e0=$(cpu_s $etcd_pids)
      sleep 2
      echo "  idle, for reference: the 3 controllers $(calc %.0f "($(cpu_s "${ctl_pid[@]}") - $c0) * 500") CPU ms/s (lease keepalives, timers), etcd $(calc %.0f "($(cpu_s $etcd_pids) - $e0) * 500") CPU ms/s (raft heartbeats every 100 ms)"
    fi
    ask register "$REG_GROUPS" 64 "$CONC" leader # warm-up
    if [ "$n" -eq 0 ]; then
      reg_run "one controller, no cluster (state in files)" leader single
    elif [ "$relay" = false ]; then
      reg_run "cluster of $n, list's first, not relayed" first "c${n}redirect"
    else
      reg_run "cluster of $n, members at their leader" leader "c$n"
      if [ "$n" -gt 1 ]; then
        reg_run "cluster of $n, list's first, relayed" first "c${n}first"
      fi
    fi
    stop_helper
    stop_ctls
  done
done
rate_of() { calc %.1f "${sum_done[$1]} / ${sum_wall[$1]}"; }
cpu_of() { calc %.0f "${sum_ctl[$1]} / ${sum_done[$1]} * 1e6"; }
echo "  both rounds:"
for tag in single c1 c2 c2first c3 c3first c3redirect; do
  printf '    %-8s %4.0f/s = %.2fx the single controller; CPU per registration: controllers %4.0f us, etcd %3.0f us, members %4.0f us\n' \
    "$tag" "$(rate_of $tag)" "$(calc %.4f "$(rate_of $tag) / $(rate_of single)")" "$(cpu_of $tag)" \
    "$(calc %.1f "${sum_etcd[$tag]} / ${sum_done[$tag]} * 1e6")" "$(calc %.1f "${sum_mem[$tag]} / ${sum_done[$tag]} * 1e6")"
done

# ---- 2. rekey time, cluster then single -----------------------------------------------
echo
echo "2. rekey time: \`rekey rk\` at the leader of a unicast group of N members, until every member holds the new update (median of $REKEYS; the first member verifies it, the other copies are compared byte for byte; then +500 ms activation delay, not counted)"
declare -A rk_ms
rekey_part() { # rekey_part LABEL TAG [START]: START leader (default) or
  # follower (each member at a controller that relays it to the leader)
  local have=0 n
  for n in $REKEY_NS; do
    ask hold rk $((n - have)) "${3:-leader}"
    have=$n
    ask rekey rk "$REKEYS"
    printf '  %-22s N=%-5s last member %7.1f ms after the request (each: %s ms; all held it: %s), first %.1f ms, the controller answered after %.1f ms\n' \
      "$1" "$n" "$(kv median_last_ms)" "$(kv each_last_ms)" "$(kv all)" "$(kv mean_first_ms)" "$(kv mean_answer_ms)"
    rk_ms[$2_$n]=$(kv median_last_ms)
  done
  ask leave rk "$have"
}
start_ctls 3
start_helper --channel "tv=$chan_addr:$chan_port"
wait_leaders
rekey_part "cluster of 3" cluster
rekey_part "cluster of 3, relayed" c3relayed follower

# ---- 3. etcd writes per join and leave --------------------------------------------------
echo
echo "3. etcd writes: the controllers' etcd-writes counters (transactions sent, all 3 summed), and the keys whose version moved; cluster of 3, members straight to the leader"
writes() { # the etcd-writes of every controller running, summed
  local i sum=0 w
  for i in "${!ctl_pid[@]}"; do
    [ -n "${ctl_pid[$i]}" ] || continue
    w=$("$tools/mcsecctl" --socket "$rd/c$i/state/admin.sock" --json cluster |
      sed -n 's/.*"etcd-writes":\([0-9]*\).*/\1/p')
    sum=$((sum + w))
  done
  echo "$sum"
}
# writes_part GROUP N WHAT SPACED SETTLE: N joins at once (48 handshakes at a
# time), then N leaves at once; then SPACED joins one at a time, SETTLE s
# apart, and as many leaves
writes_part() {
  local g=$1 n=$2 spaced=$4 settle=$5 w0 w1 w2 w3 w4 d0=$tmp/d0 d1=$tmp/d1 d2=$tmp/d2 r0 r1 r2 r3 r4 secs k
  leader_of "$g"
  etcd_dump >"$d0"
  w0=$(writes)
  r0=$(group_num "$L" "$g" rekeys)
  ask hold "$g" "$n" leader
  secs=$(kv secs)
  sleep "$settle" # the last batch (key tree)
  w1=$(writes)
  r1=$(group_num "$L" "$g" rekeys)
  etcd_dump >"$d1"
  ask leave "$g" "$n"
  sleep "$settle"
  w2=$(writes)
  r2=$(group_num "$L" "$g" rekeys)
  etcd_dump >"$d2"
  printf '  %-36s %4s joins at once (%.1f s): %4s writes = %.3f per join (%s rekeys); %4s leaves at once: %4s writes = %.3f per leave (%s rekeys)\n' \
    "$3" "$n" "$secs" "$((w1 - w0))" "$(calc %.4f "($w1 - $w0) / $n")" "$((r1 - r0))" \
    "$n" "$((w2 - w1))" "$(calc %.4f "($w2 - $w1) / $n")" "$((r2 - r1))"
  echo "    keys written by the joins: $(dump_diff "$d0" "$d1")"
  echo "    keys written by the leaves: $(dump_diff "$d1" "$d2")"
  ask hold "$g" 1 leader # stays: no leave below empties the group
  sleep "$settle"
  w2=$(writes)
  r2=$(group_num "$L" "$g" rekeys)
  for k in $(seq "$spaced"); do
    ask hold "$g" 1 leader
    sleep "$settle"
  done
  w3=$(writes)
  r3=$(group_num "$L" "$g" rekeys)
  for k in $(seq "$spaced"); do
    ask leave "$g" 1
    sleep "$settle"
  done
  w4=$(writes)
  r4=$(group_num "$L" "$g" rekeys)
  ask leave "$g" 1
  printf '  %-36s %4s joins %s s apart: %s writes (%s rekeys); as many leaves: %s writes (%s rekeys)\n' \
    "" "$spaced" "$settle" "$((w3 - w2))" "$((r3 - r2))" "$((w4 - w3))" "$((r4 - r3))"
  echo "    (one member stays in the group meanwhile: the last leave does not empty it)"
}
writes_part u "$U_N" "unicast group u (rekey on join, leave)" "$SPACED" 0.7
writes_part tv "$TREE_N" "key tree group tv (batch 200 ms)" "$SPACED" 0.5

# ---- 4. state size, failover ------------------------------------------------------------
echo
echo "4. the state in etcd and a failover of the key tree group tv (lease ${LEASE} s)"
state_line() { # state_line [GROUP]: keys under the prefix (GROUP's own)
  etcd_dump | awk -v p="$prefix" -v g="${1:-}" '
    g == "" || $1 ~ ("/" g "$") || $1 ~ ("/" g "/") {n++; b += length($1) - length(p) + $3}
    END {printf "%d keys, %d bytes of keys and values (%d more with the prefix)", n, b, n * length(p)}'
}
echo "  tv empty:    tv's own keys: $(state_line tv); all $(state_line)"
ask hold tv "$FAIL_K" leader
echo "  tv with $(kv joined) members (joined in $(kv secs) s): tv's own: $(state_line tv); all $(state_line)"
echo "  the keys (KEY VERSION VALUE-BYTES VALUE..., spaces as _), but the registrations' groups' leader/ and spis/:"
etcd_dump | sed "s#^$prefix#    #" | grep -v '/reg-'
dbsize=$(ETCDCTL_API=3 etcdctl --endpoints "$(etcd_endpoints 1)" endpoint status -w json |
  sed -n 's/.*"dbSize":\([0-9]*\).*/\1/p')
rev=$(ETCDCTL_API=3 etcdctl --endpoints "$eps" get / --prefix --keys-only -w json --limit 1 |
  sed -n 's/.*"revision":\([0-9]*\).*/\1/p')
echo "  etcd's database file: $dbsize bytes at revision $rev (every revision of the whole run, 4 clusters: MVCC history, not compacted here)"

leader_of tv
key="${prefix}leader/tv"
# etcd's events on the leader key, each with the time it was read
watch_key "$eps" "$key" "$tmp/watch.out"
sleep 0.5
ask failover tv "$pids"
kill_real=$(kv kill_real)
fo=$answer
sleep 0.2
kill "$watch_pid" 2>/dev/null || true
watch_pid=
while _etcd_pid_alive "${ctl_pid[$L]}"; do sleep 0.02; done
ctl_pid[$L]=
gone=$(awk -v k="$kill_real" '$2 == "DELETE" {printf "%.0f", ($1 - k) * 1000; exit}' "$tmp/watch.out")
won=$(awk -v k="$kill_real" '$2 == "PUT" {printf "%.0f", ($1 - k) * 1000; exit}' "$tmp/watch.out")
answer=$fo
new=$(($(kv new) + 1))
echo "  c$L, the leader of tv, SIGKILLed with $(kv members) members of tv connected to it; after the kill:"
echo "    (a) ${gone:-?} ms  the leader key gone (etcd ended c$L's lease, TTL ${LEASE} s)"
echo "        ${won:-?} ms  c$new won the campaign (its leader key put; times from etcdctl watch)"
# the new leader's log: when it took the group, each JOIN it accepted, and
# the first key tree commit that carried all K members' paths
read -r t_led j_first j_half j_90 j_all t_commit tv_adopt tv_leaves < <(/usr/bin/python3 - "$rd/c$new/controller.log" "$kill_real" "$(kv members)" <<'PY'
import datetime, re, sys
log, kill, k = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
def ms(line):
    t = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    return (t.replace(tzinfo=datetime.timezone.utc).timestamp() - kill) * 1000
led, joins, commit, adopt, leaves = None, [], None, "no", "-"
for line in open(log):
    if " group=tv " not in line + " ":
        continue
    if "event=adopt " in line and ms(line) > 0:
        adopt = "yes"
        m = re.search(r" leaves=(\d+)", line)
        leaves = m.group(1) if m else "?"
    if "event=lead " in line and ms(line) > 0:
        led = ms(line)
    elif "event=joined " in line and led is not None:
        joins.append(ms(line))
    elif "event=rekey-sent " in line and led is not None and commit is None:
        m = re.search(r" members=(\d+)", line)
        if m and int(m.group(1)) >= k:
            commit = ms(line)
def at(p):
    return "%.0f" % joins[min(len(joins) - 1, int(p * (k - 1)))] if len(joins) >= k else "-1"
print("%.0f" % (led if led is not None else -1), "%.0f" % joins[0] if joins else "-1",
      at(0.5), at(0.9), at(1.0), "%.0f" % (commit if commit is not None else -1),
      adopt, leaves)
PY
)
echo "        ${t_led} ms  c$new's log: it leads tv (its state read from etcd)"
echo "    (b) the members' JOINs at c$new (its log): the first ${j_first} ms, half ${j_half} ms, 90% ${j_90} ms, all $(kv members) ${j_all} ms;"
if [ "$tv_adopt" = yes ] && [ "$t_commit" = -1 ]; then
  echo "        no key tree commit: c$new adopted the tree from etcd (sealed; $tv_leaves leaves), each member rejoined onto its leaf and kept its keys"
else
  echo "        the key tree commit that carried the last one's keys ${t_commit} ms (tree adopted: $tv_adopt)"
fi
echo "        (as the simulated members saw their first update, one process driving them all, late by up to a second under this load:"
echo "        the first $(kv first_ms) ms, half $(kv half_ms) ms, 90% $(kv p90_ms) ms, all $(kv rejoined)/$(kv members) $(kv all_ms) ms)"
echo "        meanwhile the members made $(kv handshakes) TLS handshakes ($(calc %.1f "$(kv handshakes) / $(kv members)") per member), were refused with not-leader $(kv redirects) times, failed to connect $(kv conn_failures) times (the dead c$L) and backed off $(kv backoffs) times; their CPU $(kv self_cpu) s"
fo_won=${won:-$(kv lead_ms)}
fo_first=$j_first
fo_all=$t_commit
# an adopted tree: no commit; the members' keys are those they held, sent
# back with their rejoins (their first update, as they saw it)
[ "$t_commit" = -1 ] && fo_all=$(kv all_ms)
fo_half=$j_half
fo_hs=$(calc %.1f "$(kv handshakes) / $(kv members)")

# ---- 4b. a unicast group's failover: its SA adopted from etcd ---------------------------
echo
echo "4b. a failover of the unicast group uf (rekey on join and on leave): the new leader adopts its SA, sealed in etcd"
ask hold uf "$FAIL_K" leader
uf_joined=$(kv joined)
# at rest: the record of the SA's holders is written at most 200 ms after
# the joins (a member that joined in those 200 ms rekeys the group when it
# rejoins after a failover)
sleep 0.5
echo "  uf with $uf_joined members (joined in $(kv secs) s): uf's own keys: $(state_line uf); its sealed SA $(etcd_dump | awk -v k="${prefix}sealed/sa/uf" '$1 == k {print $3}') bytes"
ask failover uf "$pids"
kill_real=$(kv kill_real)
L=$(($(kv old) + 1))
new=$(($(kv new) + 1))
ctl_pid[$L]=
uf_log=$(/usr/bin/python3 - "$rd/c$new/controller.log" "$kill_real" <<'PY'
import datetime, sys
log, kill = sys.argv[1], float(sys.argv[2])
def ms(line):
    t = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
    return (t.replace(tzinfo=datetime.timezone.utc).timestamp() - kill) * 1000
led, adopt, rekeys, joins = None, "no", 0, 0
for line in open(log):
    if " group=uf " not in line + " " or ms(line) < 0:
        continue
    if "event=adopt " in line:
        adopt = "yes"
    elif "event=lead " in line:
        led = ms(line)
    elif "event=rekey " in line and led is not None and "reason=leave " not in line:
        rekeys += 1  # the members leave at the end: not the failover's
    elif "event=joined " in line and led is not None:
        joins += 1
print("%.0f" % (led if led is not None else -1), adopt, rekeys, joins)
PY
)
read -r uf_led uf_adopt uf_rekeys uf_joins <<<"$uf_log"
echo "  c$L, the leader of uf, SIGKILLed with $(kv members) members connected; c$new leads uf $uf_led ms after the kill (its log), adopted the SA: $uf_adopt"
echo "    the members rejoined (their first update, as the simulated members saw it): the first $(kv first_ms) ms, half $(kv half_ms) ms, 90% $(kv p90_ms) ms, all $(kv rejoined)/$(kv members) $(kv all_ms) ms"
echo "    JOINs accepted by c$new: $uf_joins; new SAs it made meanwhile: $uf_rekeys (each rejoin of a member that held the SA keeps it); $(kv handshakes) TLS handshakes"
uf_all=$(kv all_ms)
stop_helper
stop_ctls

# ---- 2 (continued). clusters of 1 and 2, and the single controller -----------------------
start_ctls 1
start_helper
wait_leaders
rekey_part "cluster of 1" c1
stop_helper
stop_ctls
start_ctls 2
start_helper
wait_leaders
rekey_part "cluster of 2" c2
rekey_part "cluster of 2, relayed" c2relayed follower
stop_helper
stop_ctls
start_ctls 0
start_helper
rekey_part "single controller" single
stop_helper
stop_ctls

# ---- summary ----------------------------------------------------------------------------
echo
echo "summary (this run; $ncpu cores shared by everything: ratios of one run, not capacities)"
printf '  registrations/s: single controller %.0f; cluster of 1: %.2fx, of 2: %.2fx (%.2fx from the list'"'"'s first), of 3: %.2fx (%.2fx from the first)\n' \
  "$(rate_of single)" "$(calc %.4f "$(rate_of c1) / $(rate_of single)")" "$(calc %.4f "$(rate_of c2) / $(rate_of single)")" \
  "$(calc %.4f "$(rate_of c2first) / $(rate_of single)")" "$(calc %.4f "$(rate_of c3) / $(rate_of single)")" \
  "$(calc %.4f "$(rate_of c3first) / $(rate_of single)")"
printf '  controller CPU per registration (us): single %s; cluster of 1: %s, of 2: %s (%s), of 3: %s (%s)\n' \
  "$(cpu_of single)" "$(cpu_of c1)" "$(cpu_of c2)" "$(cpu_of c2first)" "$(cpu_of c3)" "$(cpu_of c3first)"
for n in $REKEY_NS; do
  b=${rk_ms[single_$n]}
  printf '  rekey of a unicast group, N=%s: single %s ms; cluster of 1 %s ms (%.2fx), of 2 %s ms (%.2fx; relayed %s ms, %.2fx), of 3 %s ms (%.2fx; relayed %s ms, %.2fx)\n' \
    "$n" "$b" "${rk_ms[c1_$n]}" "$(calc %.4f "${rk_ms[c1_$n]} / $b")" \
    "${rk_ms[c2_$n]}" "$(calc %.4f "${rk_ms[c2_$n]} / $b")" \
    "${rk_ms[c2relayed_$n]}" "$(calc %.4f "${rk_ms[c2relayed_$n]} / $b")" \
    "${rk_ms[cluster_$n]}" "$(calc %.4f "${rk_ms[cluster_$n]} / $b")" \
    "${rk_ms[c3relayed_$n]}" "$(calc %.4f "${rk_ms[c3relayed_$n]} / $b")"
done
echo "  failover of the unicast group uf with $FAIL_K members: SA adopted: $uf_adopt, new SAs: $uf_rekeys, every member back under it after $uf_all ms"
echo "  failover of tv with $FAIL_K members: a new leader after $fo_won ms, tree adopted: $tv_adopt, the first member's JOIN accepted after $fo_first ms, half after $fo_half ms, every member's keys sent after $fo_all ms ($fo_hs TLS handshakes per member)"
rate1=$(rate_of c1)
echo "  EXTRAPOLATED, not measured -- a 1,000,000-member key tree group's failover without a cluster key (with one, bench-tree-failover.sh measures it):"
echo "    the controller part, measured: $fo_won ms (the lease, ${LEASE} s, then a campaign), whatever the size;"
echo "    then every member registers again, at the one new leader: at least"
echo "    1,000,000 / $(calc %.0f "$rate1")/s (one leader's rate in 1.) = $(calc %.0f "1e6 / $rate1") s = $(calc %.1f "1e6 / $rate1 / 60") min here,"
echo "    the members' back-offs (at most 5 s) and the refusals' handshakes at the"
echo "    other controllers ($fo_hs per member here) on top.  (Here the $FAIL_K members had"
echo "    their keys $(calc %.0f "$fo_all - $fo_won") ms after the campaign: a burst, many of their handshakes"
echo "    already under way when the new leader took over, not a rate to extrapolate.)"
echo "  run time $((SECONDS - t_start)) s; load average before $load0, after $(cut -d' ' -f1-3 /proc/loadavg) (anything above ~2 means other work shared the cores)"
