#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Many-to-many: a conference of three participants, each sending its audio
# to the others and receiving theirs, all in one group under one SA; each
# participant is one gst-launch-1.0 line with one mcseckeysrc (role=sender,
# which also receives)
# feeding its mcsecenc and its mcsecdec, so every participant sends with a
# Sender-ID of its own under the shared key.  On one host, multiudpsink
# stands in for the multicast group.  Prints what the controller sees and
# how many datagrams each participant decrypted.
#
# usage: conference.sh BUILD_DIR [SECONDS]
set -euo pipefail
build=$(cd "$1" && pwd)
seconds=${2:-4}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
export GST_PLUGIN_PATH=$build/gst
. "$(dirname "$0")/controller-lib.sh"
cd "$tmp"
"$build/tools/mcsecctl" pki pki alice bob carol >/dev/null
ctl_port=$(free_port SOCK_STREAM)
{ controller_section "$ctl_port"; cat <<CONF

[group conference]
senders = alice;bob;carol
rekey-on-join = false
CONF
} > ctl.conf
start_controller "$build/tools" ctl.conf
pids+=("$controller_pid")
admin="$build/tools/mcsecctl --socket $tmp/state/admin.sock"

names=(alice bob carol)
declare -A port
for n in "${names[@]}"; do port[$n]=$(free_port SOCK_DGRAM); done
caps="application/x-rtp,media=audio,clock-rate=8000,encoding-name=L16,channels=1,payload=96"
for n in "${names[@]}"; do
  others=""
  for o in "${names[@]}"; do
    [ "$o" = "$n" ] || others="$others${others:+,}127.0.0.1:${port[$o]}"
  done
  # send: a tone ! L16 RTP ! mcsecenc ! the others;
  # receive: my port ! mcsecdec (checks each source) ! a counting fakesink,
  # async=false: it gets nothing until the others send, and must not hold
  # this pipeline (and so this participant's sending) in PAUSED meanwhile
  # GST_LAUNCH_PRELOAD: sanitizer runtimes (the ASan test run)
  timeout --foreground $((seconds + 20)) env \
    ${GST_LAUNCH_PRELOAD:+LD_PRELOAD="$GST_LAUNCH_PRELOAD"} \
    gst-launch-1.0 -e -v \
    mcseckeysrc controller="127.0.0.1:$ctl_port" group=conference role=sender \
      certificate="pki/$n.crt" private-key="pki/$n.key" ca=pki/ca.crt \
      signing-key-file="pki/$n-sign.key" \
    audiotestsrc is-live=true samplesperbuffer=160 \
    ! audio/x-raw,format=S16BE,rate=8000,channels=1 ! rtpL16pay \
    ! mcsecenc sam-block-size=16 ! multiudpsink clients="$others" \
    udpsrc port="${port[$n]}" ! mcsecdec caps="$caps" \
    ! fakesink name=heard silent=false async=false > "$n.log" 2>&1 &
  pids+=($!)
done
sleep "$seconds"
echo "== the controller: one SA, a Sender-ID per participant"
$admin list | sed 's/^/   /'
spis=$($admin --json list | /usr/bin/python3 -c 'import json,sys; g=json.load(sys.stdin)["groups"][0]; print(len(g["members"]), len({m["sender-id"] for m in g["members"]}))')
for p in "${pids[@]:1}"; do kill -INT "$p" 2>/dev/null || true; done
for p in "${pids[@]:1}"; do wait "$p" 2>/dev/null || true; done
echo "== datagrams each participant decrypted (from the two others)"
ok=1
for n in "${names[@]}"; do
  heard=$(grep -c 'heard.*chain' "$n.log" || true)
  echo "   $n: $heard"
  [ "$heard" -gt 0 ] || ok=0
done
[ "$spis" = "3 3" ] || { echo "expected 3 members with 3 Sender-IDs, got: $spis"; ok=0; }
[ "$ok" -eq 1 ] && echo "conference: OK"
