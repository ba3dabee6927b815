#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Real multicast between hosts: network namespaces made by this test, a
# bridge with IGMP snooping and a querier, a controller host, a sender and
# three receivers, each on its own veth.  The video goes to 239.255.60.1,
# the key tree group's rekeys to the rekey channel 239.255.60.2; receivers
# join both with IGMP (the bridge's multicast database must show it).
# Under traffic: a rekey, then an eviction rekeyed over the channel.  One
# receiver loses 20% of everything it receives and is delayed 20 ms: with
# `tc netem` on its link where the kernel has it, otherwise with the
# socket-layer loss shim (tests/loss-shim.c) preloaded into it.
# Needs root (it makes namespaces); skipped (exit 77) otherwise.
#
# usage: netns-multicast.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src_dir=$(cd "$(dirname "$0")/.." && pwd)
tools=$build/tools
peer=$build/tests/mike-peer
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root to make network namespaces"
command -v ip >/dev/null || skip "no ip(8) (iproute2)"
tag=mc$$
if ! ip netns add "$tag-sw" 2>/dev/null; then
  skip "this kernel or container does not allow network namespaces"
fi
tmp=$(mktemp -d)
pids=()
hosts=(ctl snd r1 r2 r3)
. "$src_dir/tests/e2e-lib.sh"
cleanup() {
  # `ip netns exec` forks: what runs in a namespace is found by namespace
  for h in "${hosts[@]}" sw; do
    ip netns pids "$tag-$h" 2>/dev/null | xargs -r kill 2>/dev/null || true
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for h in "${hosts[@]}" sw; do ip netns del "$tag-$h" 2>/dev/null || true; done
  [ -n "${NETNS_KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "error at line $LINENO (status $?)" >&2' ERR
in_ns() { local h=$1; shift; ip netns exec "$tag-$h" "$@"; }

# ---- the network: a switch (bridge, IGMP snooping and querier), five hosts
# queries every 2 s (centiseconds): a host whose unsolicited IGMP reports
# the bridge missed is learnt at the next query (a CI run once streamed to
# r1 with r1 absent from the multicast database: it lost the stream when
# the bridge stopped flooding)
in_ns sw ip link add br0 type bridge mcast_snooping 1 mcast_querier 1 \
  mcast_query_interval 200 mcast_query_response_interval 100 \
  mcast_startup_query_interval 100
in_ns sw ip link set br0 up
i=1
for h in "${hosts[@]}"; do
  ip netns add "$tag-$h"
  ip link add "v-$h" type veth peer name "p-$h"
  ip link set "v-$h" netns "$tag-$h"
  ip link set "p-$h" netns "$tag-sw"
  in_ns sw ip link set "p-$h" master br0
  in_ns sw ip link set "p-$h" up
  in_ns "$h" ip link set lo up
  in_ns "$h" ip addr add "10.77.0.$i/24" dev "v-$h"
  in_ns "$h" ip link set "v-$h" up
  in_ns "$h" ip route add 224.0.0.0/4 dev "v-$h"
  i=$((i + 1))
done
# loss and delay for r3: netem if the kernel has it, else the shim
lossy=()
if in_ns r3 tc qdisc add dev v-r3 root netem loss 20% delay 20ms 2>/dev/null; then
  loss_how="tc netem on r3's link (20% loss, 20 ms delay)"
else
  loss_how="the socket-layer loss shim in r3 (20% loss; this kernel has no netem)"
  lossy=(env LD_PRELOAD="$build/tests/libloss-shim.so" MCSEC_TEST_LOSS=0.2
         ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0")
fi
echo "network: 5 namespaces on a bridge with IGMP snooping; $loss_how"

cd "$tmp"
export GST_PLUGIN_PATH_1_0=$build/gst GST_REGISTRY_1_0=$tmp/registry.bin
# scan in process: a forked scanner (not instrumented) cannot load a
# sanitized plugin
export GST_REGISTRY_FORK=no
gst_registry_ready "$peer"
"$tools/mcsecctl" pki pki --controller-name 10.77.0.1 cam1 r1 r2 r3 >/dev/null
cat > ctl.conf <<EOF
[controller]
listen = 10.77.0.1:7700
certificate = pki/controller.crt
private-key = pki/controller.key
ca = pki/ca.crt
update-signing-key = pki/controller-sign.key
state-dir = state

[group tv]
address = 239.255.60.1
port = 5004
senders = cam1
receivers = r1;r2;r3
rekey-channel = 239.255.60.2:5100
rekey-interface = v-ctl
batch-interval = 100
activation-delay = 400
deactivation-delay = 2000
EOF
in_ns ctl "$tools/mcsec-controller" ctl.conf 2> controller.log &
pids+=($!)
admin() { in_ns ctl "$tools/mcsecctl" --socket "$tmp/state/admin.sock" "$@"; }
for _ in $(seq 100); do admin stats >/dev/null 2>&1 && break; sleep 0.05; done
member() {
  echo --controller 10.77.0.1:7700 --group tv --ca pki/ca.crt \
    --certificate "pki/$1.crt" --private-key "pki/$1.key" --rekey-interface "v-$1"
}
for r in r1 r2 r3; do
  extra=()
  [ "$r" = r3 ] && extra=("${lossy[@]}")
  in_ns "$r" timeout --foreground 40 ${extra[@]+"${extra[@]}"} "$peer" receive $(member "$r") \
    --group-address 239.255.60.1 --port 5004 --duration 22 > "$r.out" 2> "$r.err" &
  pids+=($!)
done
# the stream starts once the bridge knows every receiver's port in both
# groups (10 s at most; the checks below say if it never did): the
# receivers listen 22 s, the longest wait and the 9 s stream
for _ in $(seq 100); do
  mdb=$(in_ns sw bridge mdb show 2>/dev/null || true)
  learnt=0
  for r in r1 r2 r3; do
    for g in 239.255.60.1 239.255.60.2; do
      grep -q "port p-$r grp $g " <<<"$mdb" && learnt=$((learnt + 1))
    done
  done
  [ "$learnt" -eq 6 ] && break
  sleep 0.1
done
sleep 0.5
in_ns snd timeout --foreground 40 "$peer" send $(member cam1 | sed 's/v-cam1/v-snd/') \
  --signing-key pki/cam1-sign.key --duration 9 --rate 300 \
  --to 239.255.60.1:5004 > cam1.out 2> cam1.err &
pids+=($!)
sleep 2
mdb=$(in_ns sw bridge mdb show 2>/dev/null || true)
admin rekey tv >/dev/null
sleep 3
evict_spi=$(admin --json evict tv r2 | /usr/bin/python3 -c 'import json,sys; print("%08x" % json.load(sys.stdin)["spi"])')
for p in "${pids[@]:1}"; do wait "$p" 2>/dev/null || true; done
json=$(admin --json list)
chan() { /usr/bin/python3 -c 'import json,sys; g=json.load(sys.stdin)["groups"][0]["channel"]; print(eval(sys.argv[1]))' "$1" <<<"$json"; }

sent=$(val cam1.out sent)
echo "sent $sent; r1: $(val r1.out received) received, $(val r1.out missing) missing, $(spis_used r1.out) SPIs; r3 (lossy): $(val r3.out received) received, $(spis_used r3.out) SPIs; channel: $(chan 'g')"
for r in r1 r2 r3; do
  check "IGMP: the bridge learnt $r in the video group" \
    grep -q "port p-$r grp 239.255.60.1 " <<<"$mdb"
  check "IGMP: ... and in the rekey channel's" \
    grep -q "port p-$r grp 239.255.60.2 " <<<"$mdb"
done
check "r1 received the stream over multicast" \
  [ "$(val r1.out received)" -gt $((sent / 2)) ]
check "r1 missed nothing" [ "$(val r1.out missing)" -eq 0 ]
check "r1 decrypted under the eviction's SPI (rekey over the channel)" \
  [ "$(val r1.out "spi-$evict_spi")" -gt 0 ]
check "r2 (evicted) decrypted nothing under the eviction's SPI" \
  [ "$(val r2.out "spi-$evict_spi")" -eq 0 ]
check "r3 (lossy) followed both rekeys and decrypts under the eviction's SPI" \
  [ "$(val r3.out "spi-$evict_spi")" -gt 0 ]
check "the rekeys went out on the channel" [ "$(chan 'g["rekeys"]')" -ge 3 ]
echo "r3's losses: $(chan 'g["repairs"]') repairs and $(chan 'g["polls"]') polls served, $(chan 'g["direct"]') rekeys sent to it directly"
if [ "$failures" -gt 0 ]; then
  echo "bridge mdb: $mdb"
  tail -30 controller.log
  for f in *.out *.err; do echo "--- $f"; cat "$f"; done
  exit 1
fi
echo "all checks passed"
