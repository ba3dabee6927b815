#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# End to end with two real gst-launch-1.0 processes over UDP on 127.0.0.1:
# a sender (audiotestsrc ! rtpL16pay ! mcsecenc ! udpsink) and a receiver
# (udpsrc ! mcsecdec ! rtpL16depay ! filesink).  The receiver must get
# every datagram, byte for byte what an unencrypted run gives.  Bounded:
# every process runs under `timeout`.  Then signed sources, then an
# IPTV transport stream (H.264 in MPEG-TS).
#
# usage: e2e-gst-launch.sh PLUGIN_DIR MCSEC_KEYGEN [asan]
set -euo pipefail
plugin_dir=$1
keygen=$2
tmp=$(mktemp -d)
rx_pid=
cleanup() { [ -n "$rx_pid" ] && kill "$rx_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

export GST_PLUGIN_PATH_1_0=$plugin_dir
export GST_REGISTRY_1_0=$tmp/registry.bin
export GST_REGISTRY_FORK=no
export XDG_STATE_HOME=$tmp/state
if [ "${3:-}" = asan ]; then
  # gst-launch-1.0 is not instrumented: preload the runtimes for the plugin;
  # GStreamer's own allocations at exit are not ours to judge
  export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
  export ASAN_OPTIONS=detect_leaks=0
fi

"$keygen" --output "$tmp/key"
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
n=100
rtp_caps="application/x-rtp,media=audio,clock-rate=8000,encoding-name=L16,channels=1,payload=96"

timeout --foreground 30 gst-launch-1.0 -q udpsrc address=127.0.0.1 port="$port" \
    caps=application/x-mcsec num-buffers=$n \
  ! mcsecdec key-file="$tmp/key" caps="$rtp_caps" \
  ! rtpL16depay ! filesink location="$tmp/received.raw" &
rx_pid=$!

# wait (at most 10 s) until the receiver's socket is bound
hexport=$(printf '%04X' "$port")
for _ in $(seq 100); do
  grep -q ":$hexport " /proc/net/udp && break
  sleep 0.1
done
grep -q ":$hexport " /proc/net/udp || { echo "receiver never bound port $port"; exit 1; }

timeout --foreground 30 gst-launch-1.0 -q audiotestsrc num-buffers=$n samplesperbuffer=80 \
    wave=sine ! audio/x-raw,format=S16BE,rate=8000,channels=1 \
  ! rtpL16pay ! mcsecenc key-file="$tmp/key" sender-id=5 \
  ! udpsink host=127.0.0.1 port="$port"

wait "$rx_pid"
rx_pid=
# the reference: the same audio, never encrypted
timeout --foreground 30 gst-launch-1.0 -q audiotestsrc num-buffers=$n samplesperbuffer=80 \
    wave=sine ! audio/x-raw,format=S16BE,rate=8000,channels=1 \
  ! filesink location="$tmp/reference.raw"
if cmp -s "$tmp/received.raw" "$tmp/reference.raw"; then
  echo "e2e: $n datagrams from one gst-launch-1.0 to another over 127.0.0.1, intact"
else
  echo "e2e: received $(stat -c %s "$tmp/received.raw") bytes, expected $(stat -c %s "$tmp/reference.raw")"
  exit 1
fi

# Again with signed sources: an Ed25519 key made with the openssl command,
# the receiver requiring every datagram's source to verify.
openssl genpkey -algorithm ed25519 -out "$tmp/sender.key"
openssl pkey -in "$tmp/sender.key" -pubout -out "$tmp/sender.pub"
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
hexport=$(printf '%04X' "$port")
# n data packets plus the carriers of the last block's authenticator
timeout --foreground 30 gst-launch-1.0 -q -e udpsrc address=127.0.0.1 port="$port" \
    caps=application/x-mcsec \
  ! mcsecdec key-file="$tmp/key" caps="$rtp_caps" sam-policy=required \
      sender-keys="5=$tmp/sender.pub" \
  ! rtpL16depay ! filesink location="$tmp/signed.raw" > "$tmp/rx.log" 2>&1 &
rx_pid=$!
for _ in $(seq 100); do
  grep -q ":$hexport " /proc/net/udp && break
  sleep 0.1
done
timeout --foreground 30 gst-launch-1.0 -q audiotestsrc num-buffers=$n samplesperbuffer=80 \
    wave=sine ! audio/x-raw,format=S16BE,rate=8000,channels=1 \
  ! rtpL16pay ! mcsecenc key-file="$tmp/key" sender-id=5 \
      signing-key-file="$tmp/sender.key" sam-block-size=16 \
  ! udpsink host=127.0.0.1 port="$port"
# a live receiver has no end: once the packets are in, interrupt it; -e
# turns that into an end of stream, which flushes what is held.  Like
# every `timeout` here, the receivers' has --foreground (tests/e2e-lib.sh):
# without it `timeout` passes SIGINT on to gst-launch-1.0 and then to its
# whole process group, so gst-launch-1.0 gets a second SIGINT that kills it
# (status 130) when it lands after the first one's handler is gone
sleep 2
kill -INT "$rx_pid"
if ! wait "$rx_pid"; then
  # say why instead of leaving only an exit status
  echo "e2e: the signed-source receiver failed:"
  cat "$tmp/rx.log"
  exit 1
fi
rx_pid=
if cmp -s "$tmp/signed.raw" "$tmp/reference.raw"; then
  echo "e2e: $n datagrams with signed sources, every source verified"
else
  echo "e2e: signed run received $(stat -c %s "$tmp/signed.raw" 2>/dev/null || echo 0) bytes, expected $(stat -c %s "$tmp/reference.raw")"
  exit 1
fi

# IPTV: H.264 in MPEG-TS over UDP (seven 188-byte packets per datagram),
# the recipe of docs/elements.md ("MPEG-TS over UDP"); the transport
# stream arrives byte for byte as muxed
ts_caps="video/mpegts,systemstream=true,packetsize=188"
ts_src="videotestsrc num-buffers=50 ! video/x-raw,width=320,height=240,framerate=25/1 ! openh264enc ! h264parse ! mpegtsmux alignment=7"
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
hexport=$(printf '%04X' "$port")
timeout --foreground 30 gst-launch-1.0 -q -e udpsrc address=127.0.0.1 port="$port" \
    caps=application/x-mcsec \
  ! mcsecdec key-file="$tmp/key" spi=0x2000 caps="$ts_caps" \
  ! filesink location="$tmp/received.ts" > "$tmp/rx-ts.log" 2>&1 &
rx_pid=$!
for _ in $(seq 100); do
  grep -q ":$hexport " /proc/net/udp && break
  sleep 0.1
done
timeout --foreground 30 gst-launch-1.0 -q $ts_src \
  ! mcsecenc key-file="$tmp/key" spi=0x2000 sender-id=7 \
  ! udpsink host=127.0.0.1 port="$port" > "$tmp/tx-ts.log" 2>&1
sleep 2
kill -INT "$rx_pid"
wait "$rx_pid" || { echo "e2e: the MPEG-TS receiver failed:"; cat "$tmp/rx-ts.log"; exit 1; }
rx_pid=
timeout --foreground 30 gst-launch-1.0 -q $ts_src ! filesink location="$tmp/reference.ts" \
  > /dev/null 2>&1
if [ -s "$tmp/reference.ts" ] && cmp -s "$tmp/received.ts" "$tmp/reference.ts"; then
  echo "e2e: MPEG-TS over UDP, $(($(stat -c %s "$tmp/reference.ts") / 1316)) datagrams, the transport stream intact"
else
  echo "e2e: MPEG-TS received $(stat -c %s "$tmp/received.ts" 2>/dev/null || echo 0) bytes, expected $(stat -c %s "$tmp/reference.ts")"
  exit 1
fi
