#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Soak (`make soak`, not part of `make check`): a bounded run of a key tree
# group under load.  A signed sender streams numbered datagrams at RATE per
# second (default 5000) to two receivers for SECONDS (default 600), while
# the administrator rekeys every 4 s and eight more members churn (one
# joins and leaves every second).  Every 10 s the controller's, the
# sender's and the receivers' memory (RSS) and open file descriptors are
# sampled.  Asserted at the end: the receivers missed no datagram and
# dropped none, and memory and descriptors stayed flat (after a minute of
# warm-up: descriptors equal, RSS within 10% + 4 MB).
#
# usage: soak.sh BUILD_DIR [SECONDS]     (SOAK_RATE=PPS)
set -euo pipefail
build=$(cd "$1" && pwd)
seconds=${2:-600}
rate=${SOAK_RATE:-5000}
src_dir=$(cd "$(dirname "$0")/.." && pwd)
tools=$build/tools
peer=$build/tests/mike-peer
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${SOAK_KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
export GST_PLUGIN_PATH_1_0=$build/gst
export GST_REGISTRY_1_0=$tmp/registry.bin GST_REGISTRY_FORK=no
. "$src_dir/examples/controller-lib.sh"
. "$src_dir/tests/e2e-lib.sh"
gst_registry_ready "$peer"
cd "$tmp"

churners=(c1 c2 c3 c4 c5 c6 c7 c8)
"$tools/mcsecctl" pki pki cam1 rx1 rx2 "${churners[@]}" >/dev/null
ctl_port=$(free_port SOCK_STREAM)
chan_port=$(free_port SOCK_DGRAM)
{ controller_section "$ctl_port"; cat <<EOF

[group soak]
senders = cam1
receivers = rx1;rx2;$(IFS=';'; echo "${churners[*]}")
rekey-channel = 239.255.99.1:$chan_port
rekey-interface = lo
batch-interval = 200
activation-delay = 300
deactivation-delay = 2000
EOF
} > ctl.conf
start_controller "$tools" ctl.conf
pids+=("$controller_pid")
admin="$tools/mcsecctl --socket $tmp/state/admin.sock"
member() {
  echo --controller "127.0.0.1:$ctl_port" --group soak --ca pki/ca.crt \
    --certificate "pki/$1.crt" --private-key "pki/$1.key" --rekey-interface lo
}

p1=$(free_port SOCK_DGRAM)
p2=$(free_port SOCK_DGRAM)
# --rate: the receivers size their record of what arrived by it
"$peer" receive $(member rx1) --port "$p1" --duration $((seconds + 8)) \
  --rate "$rate" > rx1.out 2> rx1.err &
rx1=$!
"$peer" receive $(member rx2) --port "$p2" --duration $((seconds + 8)) \
  --rate "$rate" > rx2.out 2> rx2.err &
rx2=$!
pids+=("$rx1" "$rx2")
sleep 1.5
"$peer" send $(member cam1) --signing-key pki/cam1-sign.key \
  --duration "$seconds" --rate "$rate" --size 200 \
  --to "127.0.0.1:$p1,127.0.0.1:$p2" > cam1.out 2> cam1.err &
cam=$!
pids+=("$cam")

# rekeys every 4 s; a member joining and leaving every second
( while sleep 4; do $admin rekey soak >/dev/null 2>&1 || true; done ) &
pids+=($!)
( i=0
  while sleep 1; do
    c=${churners[$((i % ${#churners[@]}))]}
    timeout --foreground 2.5 "$tools/mcsec-join" $(member "$c") >/dev/null 2>&1 &
    i=$((i + 1))
  done ) &
pids+=($!)

sample() { # sample NAME PID: "NAME RSS_KB FDS"
  local rss fds
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$2/status" 2>/dev/null || echo 0)
  fds=$(ls "/proc/$2/fd" 2>/dev/null | wc -l)
  echo "$1 ${rss:-0} $fds"
}
t=0
while kill -0 "$cam" 2>/dev/null; do
  sleep 10
  t=$((t + 10))
  for x in "controller $controller_pid" "sender $cam" "rx1 $rx1" "rx2 $rx2"; do
    echo "$t $(sample $x)"
  done >> samples.txt
  [ $((t % 60)) -eq 0 ] && echo "  ${t} s: $(grep "^$t " samples.txt | cut -d' ' -f2- | paste -sd';')"
done
wait "$cam" || true
wait "$rx1" "$rx2" || true
json=$($admin --json list)

sent=$(val cam1.out sent)
rekeys=$(/usr/bin/python3 -c 'import json,sys; g=json.load(sys.stdin)["groups"][0]; print(g["rekeys"], g["channel"]["repairs"], g["channel"]["resyncs"])' <<<"$json")
echo "== soak: ${seconds} s at ${rate}/s: sent $sent; rekeys, repairs, resyncs: $rekeys"
ok=1
for r in rx1 rx2; do
  drops=$({ grep -E '^dropped-[a-z-]+=' "$r.out" || true; } |
    awk -F= '{s += $2} END {print s + 0}')
  why=$({ grep -E '^dropped-[a-z-]+=[1-9]' "$r.out" || true; } | paste -sd' ')
  echo "   $r: received $(val "$r.out" received), missing $(val "$r.out" missing), dropped $drops ${why:+($why) }decrypted under $(spis_used "$r.out") SPIs"
  [ "$(val "$r.out" missing)" -eq 0 ] || ok=0
  [ "$drops" -eq 0 ] || ok=0
  [ "$(val "$r.out" received)" -ge $((sent - 64)) ] || ok=0
done
# flat: the sample after a minute against each process's last one (the
# sender ends before the last sample)
first=$(awk '$1 == 60' samples.txt)
echo "   RSS kB and descriptors at 60 s and at the end:"
while read -r _ name rss fds; do
  read -r _ _ rss2 fds2 < <(awk -v n="$name" '$2 == n && $3 > 0' samples.txt | tail -1)
  echo "   $name: $rss kB -> $rss2 kB, $fds -> $fds2 fds"
  [ "$fds2" -le "$fds" ] || ok=0
  [ "$rss2" -le $((rss + rss / 10 + 4096)) ] || ok=0
done <<<"$first"
[ "$ok" -eq 1 ] && echo "soak: OK" || { echo "soak: FAILED"; exit 1; }
