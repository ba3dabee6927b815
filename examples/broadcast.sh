#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Few-to-many with nothing but gst-launch-1.0 lines: one camera multicasts
# VP8 video to a group, three viewers join it and write the frames they
# decode as JPEG files.  The group is a key tree group: its rekeys travel
# once, on a multicast rekey channel.  Everything runs on this host over the
# loopback interface's multicast (239.255.42.1 for the video, 239.255.42.2
# for the rekey channel).  Half way the controller evicts viewer3: it stops
# decoding, the others lose nothing.  Prints the group as the controller
# sees it and the frames each viewer wrote.
#
# usage: broadcast.sh BUILD_DIR [SECONDS]
set -euo pipefail
build=$(cd "$1" && pwd)
seconds=${2:-6}
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
"$build/tools/mcsecctl" pki pki camera viewer1 viewer2 viewer3 >/dev/null
ctl_port=$(free_port SOCK_STREAM)
video_port=$(free_port SOCK_DGRAM)
channel_port=$(free_port SOCK_DGRAM)
{ controller_section "$ctl_port"; cat <<CONF

[group tv]
address = 239.255.42.1
port = $video_port
senders = camera
receivers = viewer1;viewer2;viewer3
rekey-channel = 239.255.42.2:$channel_port
rekey-interface = lo
activation-delay = 300
CONF
} > ctl.conf
start_controller "$build/tools" ctl.conf
pids+=("$controller_pid")
admin="$build/tools/mcsecctl --socket $tmp/state/admin.sock"

# GST_LAUNCH_PRELOAD: sanitizer runtimes (the ASan test run).  Always run
# in the background: exec makes $! the pid of `timeout` itself (not of a
# subshell, whose death would leave gst-launch-1.0 running)
launch() {
  exec timeout --foreground $((seconds + 20)) env \
    ${GST_LAUNCH_PRELOAD:+LD_PRELOAD="$GST_LAUNCH_PRELOAD"} \
    gst-launch-1.0 -e "$@"
}
caps="application/x-rtp,media=video,clock-rate=90000,encoding-name=VP8,payload=96"
for v in viewer1 viewer2 viewer3; do
  mkdir -p "$v"
  # join the group (and its rekey channel on lo); the video from the
  # group's multicast address, decrypted, decoded, one JPEG per frame
  launch mcseckeysrc controller="127.0.0.1:$ctl_port" group=tv \
      certificate="pki/$v.crt" private-key="pki/$v.key" ca=pki/ca.crt \
      rekey-interface=lo \
    udpsrc address=239.255.42.1 port="$video_port" multicast-iface=lo \
    ! mcsecdec caps="$caps" ! rtpjitterbuffer latency=100 ! rtpvp8depay \
    ! vp8dec ! videoconvert ! jpegenc \
    ! multifilesink location="$v/frame-%05d.jpg" > "$v.log" 2>&1 &
  pids+=($!)
done
sleep 1
# the camera: signed (source authentication) and encrypted, to the group
launch mcseckeysrc controller="127.0.0.1:$ctl_port" group=tv role=sender \
    certificate=pki/camera.crt private-key=pki/camera.key ca=pki/ca.crt \
    signing-key-file=pki/camera-sign.key \
  videotestsrc is-live=true pattern=ball \
  ! video/x-raw,width=320,height=240,framerate=15/1 \
  ! vp8enc deadline=1 ! rtpvp8pay ! mcsecenc sam-block-size=16 \
  ! udpsink host=239.255.42.1 port="$video_port" multicast-iface=lo \
    auto-multicast=true ttl-mc=0 > camera.log 2>&1 &
pids+=($!)
sleep 0.5
# what runs under each launch (gst-launch-1.0): none may outlive the script
children=$(for p in "${pids[@]:1}"; do pgrep -P "$p" || true; done)
sleep $((seconds / 2))
echo "== the controller evicts viewer3"
$admin evict tv viewer3 | sed 's/^/   /'
sleep $((seconds - seconds / 2))
echo "== the group as the controller sees it"
$admin list | sed 's/^/   /'
frames3_at_end=$(ls viewer3 | wc -l)
# the frames are on disk as they come: stop everyone (TERM: through
# `timeout`, whatever the pipelines are doing)
for p in "${pids[@]:1}"; do kill "$p" 2>/dev/null || true; done
for p in "${pids[@]:1}"; do wait "$p" 2>/dev/null || true; done
for c in $children; do
  if kill -0 "$c" 2>/dev/null; then
    echo "still running after the stop: $(ps -o args= -p "$c" | cut -c1-60)"
    ok_stop=0
  fi
done
echo "== frames each viewer decoded"
ok=${ok_stop:-1}
for v in viewer1 viewer2 viewer3; do
  n=$(ls "$v" | wc -l)
  echo "   $v: $n"
  [ "$n" -gt 0 ] || ok=0
done
v1=$(ls viewer1 | wc -l)
# viewer3 stopped at its eviction (the new key never reached it)
[ "$frames3_at_end" -lt "$v1" ] || { echo "viewer3 went on decoding"; ok=0; }
[ "$ok" -eq 1 ] && echo "broadcast: OK"
