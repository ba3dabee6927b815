#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Both ends of a relay link under back-pressure (docs/cluster.md,
# "Relaying"), each facing an end that stops reading for a while
# (tests/relay-stub.c), in a network namespace of its own whose TCP
# buffers are 64 KB at most (on loopback the kernel would otherwise take
# megabytes before a link's queue grows), with one etcd member and
# relay-queue = 65536.
#
# The leader's end: a controller that leads the group wide; the stand-in
# follower opens 2,000 streams of listed receivers and 200 of identities
# nobody lists, writes their JOINs, reads nothing for 3 s, then reads.
# Checked:
# - the link filled up at the leader (relay.link-waits), so the members'
#   WELCOMEs waited in the core;
# - once the follower reads, every listed member gets its WELCOME (the
#   leader flushes the members that waited: link_unblock), and every
#   unlisted one its CLOSE: refused, its goodbye could not go out in 2 s
#   (the members whose goodbye ran out of time are finished while the link
#   is full: the use-after-free the third review found lived there);
# - the link stays up, the leader serves 2,000 relayed members, and it
#   stops cleanly (under the sanitizers: no report).
#
# The follower's end: a controller (c2) that does not lead far, whose
# leader key names the stand-in leader, which reads nothing for 2 s once
# the first member's bytes came. rx1 joins far at c2 and sends 8 MB, then
# closes. Checked: c2 stops reading rx1 while the link is full
# (relay.link-waits) and reads it again as it drains (link_unblock): all
# 8 MB and the JOIN reach the leader, then the stream's CLOSE.
#
# usage: relay-backpressure.sh BUILD_DIR (root, for the namespace; skipped
# otherwise)
set -euo pipefail
build=$(cd "$1" && pwd)
src_dir=$(cd "$(dirname "$0")/.." && pwd)
skip() {
  echo "SKIP: $*"
  exit 77
}
if [ -z "${MCSEC_IN_NETNS:-}" ]; then
  [ "$(id -u)" -eq 0 ] || skip "needs root to make a network namespace"
  command -v unshare >/dev/null || skip "no unshare(1)"
  unshare -n true 2>/dev/null ||
    skip "this kernel or container does not allow network namespaces"
  exec unshare -n env MCSEC_IN_NETNS=1 "$0" "$@"
fi
ip link set lo up
# the namespace's own TCP buffers: small, so that the leader's queue to
# the link grows after a few hundred kilobytes, not tens of megabytes
sysctl -qw net.ipv4.tcp_rmem="4096 16384 65536" \
  net.ipv4.tcp_wmem="4096 16384 65536"

tools=$build/tools
tmp=$(mktemp -d)
pids=()
listed=2000
unlisted=200

. "$src_dir/tests/e2e-lib.sh"
. "$src_dir/tests/etcd-lib.sh"
. "$src_dir/examples/controller-lib.sh"
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "$failures" -eq 0 ] || etcd_logs || true
  etcd_cleanup
  [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "error at line $LINENO (status $?)" >&2' ERR

cd "$tmp"
"$tools/mcsecctl" pki pki rx1 >/dev/null
openssl rand -hex 32 >cluster.key
chmod 600 cluster.key
etcd_cluster_start 1
eps=$(etcd_endpoints)
# conf NAME PORT STATE-DIR: a controller of the cluster, relay-queue 64 KB
# (its groups follow on stdin), in NAME.conf
conf() {
  {
    controller_section "$2" | sed "s|^state-dir = state|state-dir = $3|"
    cat <<EOF

[cluster]
etcd = $eps
name = $1
lease = 3
prefix = /mcsec-relay-bp/
cluster-key = cluster.key
relay-queue = 65536

EOF
    cat
  } >"$1.conf"
}
port=$(free_port SOCK_STREAM)
conf c1 "$port" state <<EOF
[group wide]
receivers = $(seq -f 'w%g' -s ';' 0 $((listed - 1)))
rekey-on-join = false
rekey-on-leave = false
EOF
"$tools/mcsec-controller" c1.conf 2>>controller.log &
ctl=$!
pids+=("$ctl")
stat_of() { # stat_of EXPR: from `mcsecctl stats` (o: its JSON, g: wide's)
  "$tools/mcsecctl" --socket "$tmp/state/admin.sock" --json stats |
    /usr/bin/python3 -c '
import json, sys
o = json.load(sys.stdin)
g = [g for g in o["groups"] if g["name"] == "wide"][0]
print(eval(sys.argv[1]))' "$1"
}
leads=
for _ in $(seq 200); do
  if [ "$(stat_of 'g.get("leading")' 2>/dev/null)" = True ]; then
    leads=1
    break
  fi
  sleep 0.05
done
check "the controller leads wide" test -n "$leads"

rc=0
timeout --foreground 60 "$build/tests/relay-stub" follower "127.0.0.1:$port" \
  pki/ca.crt cluster.key wide "$listed" "$unlisted" 3000 >follower.out 2>&1 || rc=$?
echo "  follower: $(cat follower.out)"
check "the link filled up at the leader: its members waited (relay.link-waits $(stat_of 'o["relay"]["link-waits"]'))" \
  [ "$(stat_of 'o["relay"]["link-waits"]')" -ge 1 ]
check "every listed member got its WELCOME once the follower read, every unlisted one its CLOSE, the link stayed up (status $rc)" \
  [ "$rc" -eq 0 ]
check "... the leader took every stream ($(stat_of 'o["relay"]["accepted"]') accepted)" \
  [ "$(stat_of 'o["relay"]["accepted"]')" -eq $((listed + unlisted)) ]
kill -TERM "$ctl"
wait_bounded 20 "$ctl" || check "the controller stopped (HANG above)" false
check "the controller stopped cleanly, no sanitizer report" \
  stopped_cleanly controller.log

# ---- the follower's end: a leader that stops reading ----------------------
# far's leader key (this script's etcd lease) names the stand-in leader;
# c2 relays rx1 to it
echo "== a follower whose leader stops reading"
stub_port=$(free_port SOCK_STREAM)
"$build/tests/relay-stub" leader "127.0.0.1:$stub_port" pki/controller.crt \
  pki/controller.key cluster.key 2000 >stub.out 2>&1 &
stub=$!
pids+=("$stub")
for _ in $(seq 100); do
  grep -q '^listening' stub.out && break
  sleep 0.05
done
lease=$(ETCDCTL_API=3 etcdctl --endpoints "$eps" lease grant 600 | awk '{print $2}')
ETCDCTL_API=3 etcdctl --endpoints "$eps" put --lease="$lease" \
  /mcsec-relay-bp/leader/far "stub 127.0.0.1:$stub_port" >/dev/null
port2=$(free_port SOCK_STREAM)
conf c2 "$port2" state2 <<EOF
[group far]
receivers = rx1
EOF
"$tools/mcsec-controller" c2.conf 2>>controller2.log &
ctl2=$!
pids+=("$ctl2")
for _ in $(seq 200); do
  "$tools/mcsecctl" --socket "$tmp/state2/admin.sock" stats >/dev/null 2>&1 && break
  sleep 0.05
done
# rx1 joins far at c2 and sends 8 MB after its JOIN, then closes: all of it
# must reach the leader, though c2 stops reading rx1 while the link is full
rc=0
timeout --foreground 60 /usr/bin/python3 "$src_dir/tests/member-tls.py" rx1 "$port2" \
  >flood.out 2>&1 <<'PY' || rc=$?
s.settimeout(40)
flood = os.urandom(8 << 20)
s.sendall(join("far"))
s.sendall(flood)
s.close()
print("sent=%d" % (len(join("far")) + len(flood)))
PY
wait_bounded 40 "$stub" || check "the stand-in leader ended (HANG above)" false
stub_rc=0
wait "$stub" 2>/dev/null || stub_rc=$?
echo "  rx1: $(cat flood.out) (status $rc); leader: $(cat stub.out | tr '\n' ' ')"
link_waits=$("$tools/mcsecctl" --socket "$tmp/state2/admin.sock" --json stats |
  /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["relay"]["link-waits"])')
check "c2 found its link to the leader full and stopped reading rx1 (relay.link-waits $link_waits)" \
  [ "$link_waits" -ge 1 ]
check "... read it again once the leader read: every byte rx1 sent reached the leader, then its CLOSE" \
  bash -c "[ $rc -eq 0 ] && [ $stub_rc -eq 0 ] &&
           grep -q \"^bytes=$(sed -n 's/^sent=//p' flood.out) closed=yes\" stub.out"
kill -TERM "$ctl2"
wait_bounded 20 "$ctl2" || check "c2 stopped (HANG above)" false
check "c2 stopped cleanly, no sanitizer report" stopped_cleanly controller2.log
[ "$failures" -eq 0 ] || { echo "--- controller.log"; tail -30 controller.log; }
[ "$failures" -eq 0 ] && echo "all checks passed"
exit "$failures"
