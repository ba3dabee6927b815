#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench-tree-failover: the failover of a simulated 1,048,576-member key
# tree group, measured end to end (issue 15, docs/performance.md "A
# 1,048,576-member key tree group's failover, measured").
#
# On loopback: a 3-member etcd (tests/etcd-lib.sh), two mcsec-controller
# processes (c1, c2) and the group's leader, build/bench/bench-tree-seed:
# a controller of the same cluster without sockets (the daemon's
# configuration, cluster and core), whose N members join through the
# core's connection interface instead of TLS (bench-tree-seed.c says why).
# It commits them in one key tree commit and writes the tree to etcd
# sealed under the cluster key, as mcsec-controller does.  Then:
#
#  1. the state in etcd: the group's keys and bytes (etcdctl);
#  2. the leader SIGKILLed: the time until etcd ends its lease, until c1
#     or c2 wins the campaign, until it leads the group having adopted
#     the tree (read, opened, imported and checked: its log), its memory;
#  3. a real member (mcsec-join, TLS, one of the N identities) rejoins
#     the new leader: it is given its leaf's path and the adopted SA
#     (no commit), and the time that took;
#  4. the rejoin window ends with the other N-1 members missing: the
#     commit that takes them out of the tree, and its time.
#
# Before 1., the simulated leader's own figures: the time and CPU to build
# the group, its longest loop turn, its memory and what a PING costs it.
# With the default N, about 3 minutes and 2 GB of memory.
#
#   bench-tree-failover.sh BUILD_DIR [N]    (default 1048576; BENCH_KEEP=1
#                                            keeps the logs)
set -euo pipefail
build=$(cd "$1" && pwd)
n=${2:-1048576}
src_dir=$(cd "$(dirname "$0")/.." && pwd)
tools=$build/tools
seed=$build/bench/bench-tree-seed
LEASE=3
WINDOW=30000 # ms: the adopter's rejoin window (part 4 waits for its end)

echo
echo "bench-tree-failover: a simulated $n-member key tree group's failover (issue 15)"
. "$src_dir/bench/bench-lib.sh"
bench_start "$seed" 2097152
. "$src_dir/examples/controller-lib.sh"
. "$src_dir/tests/etcd-lib.sh"

declare -a pid=()
watch_pid=
cleanup() {
  local p
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null || true
  for p in "${pid[@]}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  etcd_cleanup
  [ -n "${BENCH_KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "bench-tree-failover.sh: error at line $LINENO (status $?)" >&2' ERR

t_start=$SECONDS
load0=$(cut -d' ' -f1-3 /proc/loadavg)
etcd_cluster_start 3 >/dev/null
eps=$(etcd_endpoints)
cd "$tmp"
"$tools/mcsecctl" pki pki m7 >/dev/null
(umask 077 && openssl rand -hex 32 >"$tmp/cluster.key")
chan_port=$(free_port SOCK_DGRAM)
prefix=/mcsec-tree-$$/
echo "  $(nproc) cores, shared by etcd (3 members, data on ${TMPDIR:-/tmp}), the controllers and the simulated leader; etcd $(etcd --version | awk '/etcd Version/ {print $3}'), lease ${LEASE} s"

# write_conf NAME PORT: one controller's configuration (the group's
# receivers m0 .. m(N-1), one line)
write_conf() {
  mkdir -p "$tmp/$1"
  {
    cat <<EOF
[controller]
listen = 127.0.0.1:$2
certificate = $tmp/pki/controller.crt
private-key = $tmp/pki/controller.key
ca = $tmp/pki/ca.crt
update-signing-key = $tmp/pki/controller-sign.key
state-dir = state
rejoin-window = $WINDOW

[cluster]
etcd = $eps
name = $1
lease = $LEASE
prefix = $prefix
cluster-key = $tmp/cluster.key

EOF
    printf '[group big]\nrekey-channel = 239.255.91.2:%s\nrekey-interface = lo\nreceivers = ' "$chan_port"
    seq 0 $((n - 1)) | sed 's/^/m/' | paste -sd';'
  } >"$tmp/$1/ctl.conf"
}
SEED_BATCH_NOTE="8,192 per commit (bench-tree-seed.c)"
declare -A port
for c in c0 c1 c2; do
  port[$c]=$(free_port SOCK_STREAM)
  write_conf "$c" "${port[$c]}"
done
echo "  configuration: $(stat -c %s "$tmp/c1/ctl.conf") bytes (the receivers list)"

# ---- the simulated leader ----------------------------------------------------
(cd "$tmp/c0" && exec "$seed" ctl.conf big "$n" m >seed.out 2>seed.log) &
pid[0]=$!
disown "${pid[0]}"
for _ in $(seq 3000); do
  grep -q '^seeded' "$tmp/c0/seed.out" 2>/dev/null && break
  _etcd_pid_alive "${pid[0]}" || break
  sleep 0.2
done
if ! grep -q '^seeded' "$tmp/c0/seed.out"; then
  echo "  the simulated leader failed: $(tail -3 "$tmp/c0/seed.log")" >&2
  exit 1
fi
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$tmp/c0/seed.out"; }
echo "  the simulated leader (bench-tree-seed): $(kv members) members joined through its core, $SEED_BATCH_NOTE"
echo "    in $(kv ms) ms ($(kv cpu-ms) ms of CPU), $(kv commits) key tree commits, $(kv etcd-writes) etcd transactions;"
echo "    its longest loop turn $(kv longest-turn-ms) ms; its memory $(kv rss-mb) MB resident (the members' connections in the core)"
echo "    a member's PING (read, answered, the PONG written) costs the core $(kv ping-us) us: $n members pinging every 2 s take $(calc %.0f "$(kv ping-us) * $n / 2 / 1e4")% of a core"

# the adopters, after the leader has the group (no 'controllers' order:
# nothing is handed back)
for c in c1 c2; do
  (cd "$tmp/$c" && exec "$tools/mcsec-controller" ctl.conf 2>>controller.log) &
  pid[${c#c}]=$!
  disown "$!"
done
for c in c1 c2; do
  for _ in $(seq 600); do
    "$tools/mcsecctl" --socket "$tmp/$c/state/admin.sock" stats >/dev/null 2>&1 && break
    sleep 0.1
  done
done

# ---- 1. the state in etcd ----------------------------------------------------
etcd_dump_group() {
  ETCDCTL_API=3 etcdctl --endpoints "$eps" get "$prefix" --prefix -w json |
    /usr/bin/python3 -c '
import base64, json, sys
d = json.load(sys.stdin)
n = b = tree = treeb = 0
for kv in d.get("kvs", []):
    k = base64.b64decode(kv["key"]).decode()
    v = len(base64.b64decode(kv.get("value", "")))
    n += 1; b += v
    if "/sealed/tree/" in k:
        tree += 1; treeb += v
print(n, b, tree, treeb)'
}
read -r keys bytes tkeys tbytes < <(etcd_dump_group)
echo "1. the state in etcd with $n members: $keys keys, $(calc %.1f "$bytes / 1e6") MB of values; the key tree $tkeys keys, $(calc %.1f "$tbytes / 1e6") MB (sealed)"
t0=$(date +%s.%N)
ETCDCTL_API=3 etcdctl --endpoints "$eps" get "${prefix}sealed/tree/big/" --prefix >/dev/null
t1=$(date +%s.%N)
echo "   read by etcd's own client (etcdctl, gRPC, no JSON): the tree in $(calc %.0f "($t1 - $t0) * 1000") ms"

# ---- 2. the failover -----------------------------------------------------------
key="${prefix}leader/big"
watch_key "$eps" "$key" "$tmp/watch.out"
sleep 0.5
kill_real=$(date +%s.%N)
kill -KILL "${pid[0]}"
pid[0]=
new=
for _ in $(seq 600); do
  for c in c1 c2; do
    grep -q 'event=lead group=big' "$tmp/$c/controller.log" 2>/dev/null && new=$c
  done
  [ -n "$new" ] && break
  sleep 0.1
done
[ -n "$new" ] || { echo "  no controller took the group in 60 s" >&2; exit 1; }
sleep 0.3
kill "$watch_pid" 2>/dev/null || true
watch_pid=
gone=$(awk -v k="$kill_real" '$2 == "DELETE" {printf "%.0f", ($1 - k) * 1000; exit}' "$tmp/watch.out")
won=$(awk -v k="$kill_real" '$2 == "PUT" {printf "%.0f", ($1 - k) * 1000; exit}' "$tmp/watch.out")
log_ms() { # log_ms FILE PATTERN: ms after the kill of the first line matching
  /usr/bin/python3 - "$1" "$kill_real" "$2" <<'PY'
import datetime, re, sys
log, kill, pat = sys.argv[1], float(sys.argv[2]), sys.argv[3]
for line in open(log):
    if re.search(pat, line):
        t = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
        print("%.0f" % ((t.replace(tzinfo=datetime.timezone.utc).timestamp() - kill) * 1000))
        break
else:
    print("-")
PY
}
nlog=$tmp/$new/controller.log
t_led=$(log_ms "$nlog" 'event=lead group=big')
adopt=$(grep -m1 'event=adopt group=big' "$nlog" || grep -m1 'event=adopt-skipped group=big' "$nlog" || echo none)
hwm=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/${pid[${new#c}]}/status")
echo "2. the leader SIGKILLed; after the kill:"
echo "   ${gone:-?} ms  its leader key gone (etcd ended the lease, TTL ${LEASE} s)"
echo "   ${won:-?} ms  $new won the campaign (times from etcdctl watch)"
echo "   $t_led ms  $new leads big: ${adopt#*event=}"
echo "   (from the campaign won to leading: the tree read from etcd, opened, imported and checked: $(calc %.0f "$t_led - ${won:-0}") ms)"
echo "   $new's memory after adopting: peak $hwm MB"

# ---- 3. a real member rejoins its leaf ---------------------------------------------
# it stays: the commit at the window's end (4.) reaches it on the channel
adopted_spi=$(sed -n 's/.*event=adopt group=big spi=\(0x[0-9a-f]*\).*/\1/p' "$nlog" | head -1)
t0=$(date +%s.%N)
timeout --foreground $((WINDOW / 1000 + 90)) "$tools/mcsec-join" --controller "127.0.0.1:${port[$new]}" \
  --ca "$tmp/pki/ca.crt" --certificate "$tmp/pki/m7.crt" --private-key "$tmp/pki/m7.key" \
  --group big --rekey-interface lo >"$tmp/join.out" 2>"$tmp/join.err" &
pid[3]=$!
for _ in $(seq 600); do
  grep -q '^joined' "$tmp/join.out" && break
  sleep 0.05
done
t1=$(date +%s.%N)
joined=$(grep -m1 '^joined' "$tmp/join.out" || echo 'not joined')
echo "3. m7 (mcsec-join, TLS) rejoined $new in $(calc %.0f "($t1 - $t0) * 1000") ms (its start to its keys): $joined"
echo "   the SA it holds is the adopted one ($adopted_spi): $(case "$joined" in *"newest-spi=$adopted_spi"*) echo yes ;; *) echo NO ;; esac)"
echo "   key tree commits by $new so far: $(grep -c 'event=rekey-sent group=big' "$nlog" || true) (m7 was given its leaf's path)"

# ---- 4. the rejoin window ends ---------------------------------------------------
end=$((SECONDS + WINDOW / 1000 + 60))
while ! grep -q 'event=rekey-sent group=big' "$nlog" && [ $SECONDS -lt $end ]; do sleep 0.5; done
sleep 1
echo "4. the rejoin window (${WINDOW} ms) ended: $(grep -m1 'event=holders-missing group=big' "$nlog" | cut -d' ' -f2- || echo '?')"
echo "   $(calc %.0f "$(log_ms "$nlog" 'event=rekey-sent group=big') - $(log_ms "$nlog" 'event=holders-missing group=big')") ms to the commit: $(grep -m1 'event=rekey-sent group=big' "$nlog" | cut -d' ' -f2- || echo none)"
echo "   m7 followed it on the channel: $(grep -m1 '^updated' "$tmp/join.out" || echo 'NO update')"
kill -INT "${pid[3]}" 2>/dev/null || true
wait "${pid[3]}" 2>/dev/null || true
pid[3]=
echo "  run time $((SECONDS - t_start)) s; load average before $load0, after $(cut -d' ' -f1-3 /proc/loadavg)"
