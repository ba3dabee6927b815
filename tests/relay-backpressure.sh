#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A leader's end of a relay link under back-pressure (docs/cluster.md,
# "Relaying"): a follower that stops reading its link while the leader
# answers its members. In a network namespace of its own whose TCP buffers
# are 64 KB at most (on loopback the kernel would otherwise take megabytes
# before the link's queue grows), one etcd member and one controller that
# leads the group wide, with relay-queue = 65536; tests/relay-follower.c is
# the follower: it opens 2,000 streams of listed receivers and 200 of
# identities nobody lists, writes their JOINs, reads nothing for 3 s, then
# reads. Checked:
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
port=$(free_port SOCK_STREAM)
{
  controller_section "$port"
  cat <<EOF

[cluster]
etcd = $(etcd_endpoints)
name = c1
lease = 3
prefix = /mcsec-relay-bp/
cluster-key = cluster.key
relay-queue = 65536

[group wide]
receivers = $(seq -f 'w%g' -s ';' 0 $((listed - 1)))
rekey-on-join = false
rekey-on-leave = false
EOF
} >ctl.conf
"$tools/mcsec-controller" ctl.conf 2>>controller.log &
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
timeout --foreground 60 "$build/tests/relay-follower" "127.0.0.1:$port" \
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
[ "$failures" -eq 0 ] || { echo "--- controller.log"; tail -30 controller.log; }
[ "$failures" -eq 0 ] && echo "all checks passed"
exit "$failures"
