#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Smoke run of the application examples against a real controller on
# loopback: mcsec-broadcaster (C: video and audio, two encoders under one
# membership) to mcsec-receiver.py (Python, PyGObject).  Bounded; every
# process started is stopped.
#
# usage: examples-smoke.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
export GST_PLUGIN_PATH=$build/gst
. "$src/controller-lib.sh"
cd "$tmp"
"$build/tools/mcsecctl" pki pki cam1 rx1 >/dev/null
ctl_port=$(free_port SOCK_STREAM)
{ controller_section "$ctl_port"; cat <<CONF

[group av]
senders = cam1
receivers = rx1
activation-delay = 200
CONF
} > ctl.conf
start_controller "$build/tools" ctl.conf
pids+=("$controller_pid")
member() {
  echo --controller "127.0.0.1:$ctl_port" --group av --ca pki/ca.crt \
    --certificate "pki/$1.crt" --private-key "pki/$1.key"
}
port=$(free_port SOCK_DGRAM)
# GST_LAUNCH_PRELOAD: the sanitizer runtimes, when the plugin has them, for
# the uninstrumented python3
timeout --foreground 60 env ${GST_LAUNCH_PRELOAD:+LD_PRELOAD="$GST_LAUNCH_PRELOAD"} \
  /usr/bin/python3 "$src/mcsec-receiver.py" $(member rx1) \
  --port "$port" --duration 5 > rx1.out 2>&1 &
rx=$!
pids+=($rx)
sleep 1
timeout --foreground 60 "$build/examples/mcsec-broadcaster" $(member cam1) \
  --signing-key-file pki/cam1-sign.key --to "127.0.0.1:$port" \
  --audio-to "127.0.0.1:$port" --duration 3 > cam1.out 2>&1
wait "$rx" || true
cat cam1.out rx1.out
ok=1
video=$(grep '^final video' cam1.out | grep -o 'sender-id=[0-9]*')
audio=$(grep '^final audio' cam1.out | grep -o 'sender-id=[0-9]*')
[ -n "$video" ] && [ -n "$audio" ] && [ "$video" != "$audio" ] \
  || { echo "FAIL: the two encoders should have two Sender-IDs"; ok=0; }
grep -q '^final video.* packets=[1-9]' cam1.out \
  || { echo "FAIL: the broadcaster sent no video"; ok=0; }
grep -q 'decrypted=[1-9].* senders=2' rx1.out \
  || { echo "FAIL: the Python receiver should decrypt from two senders"; ok=0; }
[ "$ok" -eq 1 ] && echo "examples: OK"
