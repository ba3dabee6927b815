#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A cluster of controllers (docs/cluster.md) on this host: three etcd
# members and three mcsec-controllers sharing them, on loopback ports.  A
# member (mcsec-join) is given the list of the three controllers and joins;
# the controller that leads its group is killed (SIGKILL); another takes the
# group once the dead one's lease (2 s) ends, and the member moves to it.
# With a cluster key the controllers keep the group's SA sealed in etcd, so
# the new leader adopts it: the member keeps its key (no rekey).  Prints
# what each controller says of itself (`mcsecctl cluster`) and the member's
# events; ends with OK, the failover time and the SA before and after.
#
# usage: cluster.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pids=()
declare -A ctl_pid port
cleanup() {
  for p in "${pids[@]}" "${ctl_pid[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  etcd_cleanup
  [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
. "$src/examples/controller-lib.sh"
. "$src/tests/etcd-lib.sh"
etcd_cluster_start 3 # three etcd members on loopback
trap cleanup EXIT
cd "$tmp"
"$build/tools/mcsecctl" pki pki cam1 rx1 >/dev/null
# the cluster key: only controllers hold it; etcd sees sealed values only
openssl rand -hex 32 >cluster.key
chmod 600 cluster.key
list=
for i in 1 2 3; do
  port[$i]=$(free_port SOCK_STREAM)
  list+="${list:+,}127.0.0.1:${port[$i]}"
done
for i in 1 2 3; do
  mkdir "c$i"
  # the same file for all three but for the name and the address
  cat >"c$i/controller.conf" <<CONF
[controller]
listen = 127.0.0.1:${port[$i]}
certificate = ../pki/controller.crt
private-key = ../pki/controller.key
ca = ../pki/ca.crt
update-signing-key = ../pki/controller-sign.key
state-dir = state
rejoin-window = 3000

[cluster]
etcd = $(etcd_endpoints)
name = c$i
controllers = c1,c2,c3
lease = 2
cluster-key = ../cluster.key

[group video]
address = 239.255.0.1
port = 5004
senders = cam1
receivers = rx1
CONF
  (cd "c$i" && exec "$build/tools/mcsec-controller" controller.conf \
    2>controller.log) &
  ctl_pid[$i]=$!
done
ctl() { "$build/tools/mcsecctl" --socket "$tmp/c$1/state/admin.sock" "${@:2}"; }
wait_for() { # wait_for COMMAND...: until it succeeds (20 s at most)
  local deadline=$((SECONDS + 20))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || { echo "FAILED waiting for: $*"; tail -n 20 c*/controller.log member.out; exit 1; }
    sleep 0.05
  done
}
joined() { [ "$(grep -c '^joined' member.out)" -ge "$1" ]; }
for i in 1 2 3; do
  wait_for ctl "$i" stats >/dev/null 2>&1
done

echo "== the member joins with the list $list"
"$build/tools/mcsec-join" --controller "$list" --group video \
  --certificate pki/rx1.crt --private-key pki/rx1.key --ca pki/ca.crt \
  >member.out 2>&1 &
pids+=($!)
wait_for joined 1
leader=
for i in 1 2 3; do
  ctl "$i" cluster
  ctl "$i" --json list | grep -q '"leading":true' && leader=$i
done
echo "== c$leader leads video: killing it (SIGKILL)"
t0=$(date +%s%N)
kill -KILL "${ctl_pid[$leader]}"
wait "${ctl_pid[$leader]}" 2>/dev/null || true
unset "ctl_pid[$leader]"
wait_for joined 2
t1=$(date +%s%N)
for i in "${!ctl_pid[@]}"; do ctl "$i" cluster; done
echo "== the member's events"
sed 's/^/  /' member.out
spis=($(sed -n 's/^joined .*newest-spi=\(0x[0-9a-f]*\).*/\1/p' member.out))
if [ "${#spis[@]}" -lt 2 ] || [ "${spis[0]}" != "${spis[1]}" ]; then
  echo "FAILED: the new leader did not adopt the member's SA (${spis[*]})"
  exit 1
fi
echo "OK: the member joined the new leader $(((t1 - t0) / 1000000)) ms after the kill, under the SA it had (${spis[0]}, adopted: no new key)"
