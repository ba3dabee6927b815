#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The main demo (`make demo`): a group controller, a camera sending signed
# VP8 video through mcsecenc, two authorised receivers writing frames as
# PNG, and an outsider whose certificate the controller does not admit.
# Half way, rx2 is evicted with mcsecctl: the group rekeys, rx2 stops
# decoding, rx1 goes on without losing a packet.  Everything runs on
# 127.0.0.1 (multiudpsink fans the stream out to the receivers' ports, as
# a multicast group would); every process started is stopped at the end.
#
# usage: demo.sh BUILD_DIR OUTPUT_DIR [SECONDS_BEFORE_EVICTION]
# exit status 0 when the demo showed what it should
set -euo pipefail
build=$(cd "$1" && pwd)
out=$2
phase=${3:-4}
tools=$build/tools
receiver=$build/examples/mcsec-receiver
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT
export GST_PLUGIN_PATH=$build/gst
. "$(dirname "$0")/controller-lib.sh"

rm -rf "$out"
mkdir -p "$out"
cd "$out"
echo "== 1. Throwaway credentials: mcsecctl pki (a CA, the controller, cam1, rx1, rx2, eve)"
"$tools/mcsecctl" pki pki cam1 rx1 rx2 eve | sed 's/^/   /'

ctl_port=$(free_port SOCK_STREAM)
# the demo's controller: one group, cam1 may send, rx1 and rx2 may receive
{ controller_section "$ctl_port"; cat <<CONF

[group video]
address = 239.255.12.1
port = 5004
cipher = aes-128-gcm
sam = block
senders = cam1
receivers = rx1;rx2
activation-delay = 500
deactivation-delay = 2000
CONF
} > controller.conf
echo "== 2. The controller on 127.0.0.1:$ctl_port (log: $out/controller.log)"
start_controller "$tools" controller.conf
pids+=("$controller_pid")
admin="$tools/mcsecctl --socket $PWD/state/admin.sock"

member() {
  echo --controller "127.0.0.1:$ctl_port" --group video --ca pki/ca.crt \
    --certificate "pki/$1.crt" --private-key "pki/$1.key"
}
echo "== 3. Receivers rx1 and rx2 (authorised) and eve (not in the access list)"
ports=()
for who in rx1 rx2 eve; do
  port=$(free_port SOCK_DGRAM)
  ports+=("127.0.0.1:$port")
  "$receiver" $(member "$who") --port "$port" --name "$who" \
    --output-dir "frames-$who" --frames 5 > "$who.log" 2>&1 &
  pids+=($!)
  rx_pids+=($!)
done
sleep 1

echo "== 4. cam1 sends VP8 video through mcsecenc (keys from mcseckeysrc)"
clients=$(IFS=,; echo "${ports[*]}")
# GST_LAUNCH_PRELOAD: sanitizer runtimes for the uninstrumented gst-launch
# when the plugin is built with them (the ASan test run)
env ${GST_LAUNCH_PRELOAD:+LD_PRELOAD="$GST_LAUNCH_PRELOAD"} gst-launch-1.0 -q -e \
  mcseckeysrc controller="127.0.0.1:$ctl_port" group=video role=sender \
    certificate=pki/cam1.crt private-key=pki/cam1.key ca=pki/ca.crt \
    signing-key-file=pki/cam1-sign.key \
  videotestsrc is-live=true pattern=ball \
  ! video/x-raw,width=320,height=240,framerate=30/1 \
  ! vp8enc deadline=1 ! rtpvp8pay ! mcsecenc sam-block-size=16 \
  ! multiudpsink clients="$clients" > cam1.log 2>&1 &
sender=$!
pids+=($sender)
sleep "$phase"
echo
$admin list | sed 's/^/   /'
echo
echo "== 5. Evict rx2: mcsecctl evict video rx2"
$admin evict video rx2 | sed 's/^/   /'
sleep "$phase"

echo "== 6. Stop: the camera (end of stream), then the receivers"
kill -INT "$sender"
wait "$sender" || true
sleep 0.5
for p in "${rx_pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
for p in "${rx_pids[@]}"; do wait "$p" || true; done
stats=$($admin --json stats)
kill "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
pids=()

echo
echo "== Summary"
python3 - "$stats" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
g = s["groups"][0]
print(f"   controller: {s['registrations']} registrations, {s['refusals']} refused "
      f"({', '.join(k for k, v in s['refused-by'].items() if v)}), "
      f"{s['evictions']} evicted, {s['handshake-failures']} failed handshakes")
print(f"   group {g['name']}: {g['rekeys']} keys made (join, eviction, leaves), "
      f"{g['updates-sent']} updates sent, last: {g['last-rekey-reason']}")
PY
ok=1
for who in rx1 rx2 eve; do
  line=$(grep '^stats' "$who.log" || echo "stats $who decrypted=0")
  pngs=$(ls "frames-$who" 2>/dev/null | wc -l)
  events=$(grep -o '^\[[a-z0-9]*\] [a-z-]*' "$who.log" | cut -d' ' -f2 | sort | uniq -c | awk '{printf "%s%s x%d", sep, $2, $1; sep=", "}')
  printf '   %-4s %s, PNG frames kept: %s\n        membership: %s\n' \
    "$who" "${line#stats $who }" "$pngs" "$events"
done
get() { grep '^stats' "$1.log" | grep -o " $2=[0-9]*" | cut -d= -f2 | head -1; }
rx1_dec=$(get rx1 decrypted); rx1_lost=$(get rx1 rtp-lost)
rx2_dec=$(get rx2 decrypted); rx2_unknown=$(get rx2 dropped-unknown-spi)
eve_dec=$(get eve decrypted)
echo
[ "${rx1_dec:-0}" -gt 100 ] && [ "${rx1_lost:-1}" -eq 0 ] \
  && [ "$(ls frames-rx1 | wc -l)" -gt 0 ] \
  && echo "   OK  rx1 decoded the whole stream, no packet lost, frames in $out/frames-rx1" \
  || { echo "   !!  rx1 should have decoded everything"; ok=0; }
[ "${rx2_dec:-0}" -gt 0 ] && [ "${rx2_dec:-0}" -lt "${rx1_dec:-0}" ] \
  && [ "${rx2_unknown:-0}" -gt 0 ] && grep -q "evicted" rx2.log \
  && echo "   OK  rx2 decoded until its eviction, then nothing (new key unknown to it)" \
  || { echo "   !!  rx2 should have stopped at its eviction"; ok=0; }
[ "${eve_dec:-0}" -eq 0 ] && grep -q "refused" eve.log \
  && echo "   OK  eve was refused by the controller and decrypted nothing" \
  || { echo "   !!  eve should have been refused"; ok=0; }
[ "$ok" -eq 1 ]
