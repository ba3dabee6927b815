#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Faults, with real processes on loopback (a key tree group, its rekey
# channel on lo, mike-peer members streaming numbered datagrams), each
# scenario stating what must hold:
#  rekey_kill  the controller killed (SIGKILL) 2 ms after a rekey request
#              (whether the rekey got out is a race) and restarted: no
#              datagram lost, keys changed, nothing accepted twice;
#  receiver    a receiver killed (SIGKILL) and started again with the same
#              identity: it rejoins and decrypts; the others lose nothing;
#  sender      the sender killed (SIGKILL) and restarted with the same
#              identity under the same key (a unicast group that does not
#              rekey on joins): every packet on the wire (captured) has an
#              (SPI, IV) of its own: no nonce repeated;
#  burst       20 members join at once and leave at once: the receiver
#              that stays loses nothing and follows the batched rekeys;
#  clock       (with libfaketime) a receiver whose wall clock jumps a day
#              ahead and back loses nothing; a member (mcsec-join: no
#              timers of its own) whose monotonic clock jumps 30 s ahead
#              (its timers all fire, it thinks the controller went silent)
#              rejoins and follows the next rekey.
#
# usage: faults.sh BUILD_DIR [SCENARIO...]
set -euo pipefail
build=$(cd "$1" && pwd)
shift
scenarios=${*:-rekey_kill receiver sender burst clock}
src_dir=$(cd "$(dirname "$0")/.." && pwd)
tools=$build/tools
peer=$build/tests/mike-peer
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${FAULTS_KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "error at line $LINENO (status $?)" >&2' ERR
export GST_PLUGIN_PATH_1_0=$build/gst GST_REGISTRY_1_0=$tmp/registry.bin
# scan in process: a forked scanner (not instrumented) cannot load a
# sanitized plugin
export GST_REGISTRY_FORK=no
. "$src_dir/examples/controller-lib.sh"
. "$src_dir/tests/e2e-lib.sh"
gst_registry_ready "$peer"
cd "$tmp"

extra=$(printf 'm%d ' $(seq 20))
"$tools/mcsecctl" pki pki cam1 rx1 rx2 $extra >/dev/null
ctl_port=$(free_port SOCK_STREAM)
chan_port=$(free_port SOCK_DGRAM)
{ controller_section "$ctl_port"; cat <<EOF
rejoin-window = 3000

[group tv]
senders = cam1
receivers = rx1;rx2;$(echo $extra | tr ' ' ';')
rekey-channel = 239.255.61.1:$chan_port
rekey-interface = lo
batch-interval = 100
activation-delay = 300
deactivation-delay = 1500

[group flat]
senders = cam1
receivers = rx1
rekey-on-join = false
rekey-on-leave = false
EOF
} > ctl.conf
admin="$tools/mcsecctl --socket $tmp/state/admin.sock"
ctl_pid=
run_controller() {
  start_controller "$tools" ctl.conf || exit 1
  ctl_pid=$controller_pid
  pids+=("$ctl_pid")
}
member() { # member NAME: its credentials, in group $grp (or tv)
  echo --controller "127.0.0.1:$ctl_port" --group "${grp:-tv}" --ca pki/ca.crt \
    --certificate "pki/$1.crt" --private-key "pki/$1.key" --rekey-interface lo
}
receiver() { # receiver NAME PORT DURATION [OUT]
  timeout --foreground 60 "$peer" receive $(member "$1") --port "$2" --duration "$3" \
    > "${4:-$1}.out" 2> "${4:-$1}.err" &
  pids+=($!)
}
sender() { # sender DURATION RATE TO [OUT]: the pid of mike-peer in $sender_pid
  "$peer" send $(member cam1) --signing-key pki/cam1-sign.key \
    --duration "$1" --rate "$2" --to "$3" > "${4:-cam1}.out" 2> "${4:-cam1}.err" &
  sender_pid=$!
  pids+=("$sender_pid")
}
# every member process of the scenario ends by itself (their durations
# are at most 12 s): one that hangs is shown (stacks) and fails the test
wait_members() {
  local p members=()
  for p in "${pids[@]}"; do
    [ "$p" = "$ctl_pid" ] || members+=("$p")
  done
  check "the scenario's members all ended by themselves" \
    wait_bounded 90 "${members[@]}"
  pids=("$ctl_pid")
}
report() { # report NAME: one line
  echo "  $1: $(val "$1.out" received) received, $(val "$1.out" missing) missing, $(val "$1.out" duplicates) twice, $(spis_used "$1.out") SPIs"
}

run_controller

# ---- the controller dies right after a rekey request ------------------------
scenario_rekey_kill() {
  local p1 p2
  p1=$(free_port SOCK_DGRAM)
  p2=$(free_port SOCK_DGRAM)
  receiver rx1 "$p1" 12
  receiver rx2 "$p2" 12
  sleep 0.7
  sender 10 400 "127.0.0.1:$p1,127.0.0.1:$p2"
  sleep 2
  # the rekey goes out (or half of it does) and the controller dies
  $admin rekey tv >/dev/null &
  sleep 0.002
  kill -9 "$ctl_pid"
  wait "$ctl_pid" 2>/dev/null || true
  sleep 1
  run_controller
  # a newcomer inside the rejoin window: its join is a commit (a new SA),
  # which must not be used before the window ends either
  sleep 1.5
  receiver m1 "$(free_port SOCK_DGRAM)" 2
  wait_members
  local sent
  sent=$(val cam1.out sent)
  echo "  sent $sent"
  report rx1
  report rx2
  for r in rx1 rx2; do
    check "rekey_kill: $r lost nothing" [ "$(val $r.out missing)" -eq 0 ]
    check "rekey_kill: $r accepted nothing twice" [ "$(val $r.out duplicates)" -eq 0 ]
    check "rekey_kill: $r went on under the restarted controller's keys" \
      [ "$(spis_used $r.out)" -ge 2 ]
  done
  check "rekey_kill: no SA made in the rejoin window is used before it ends" \
    /usr/bin/python3 - controller.log <<'PY'
import datetime, re, sys
def at(line):
    return datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f")
lines = open(sys.argv[1]).read().splitlines()
start = max(i for i, l in enumerate(lines) if " event=started " in l)
window = int(re.search(r"rejoin-window-ms=(\d+)", lines[start]).group(1))
end = at(lines[start]) + datetime.timedelta(milliseconds=window)
early = made = 0
for l in lines[start + 1:]:
    m = re.search(r" event=rekey .*activate-in-ms=(\d+)", l)
    if m and at(l) < end:
        made += 1
        use = at(l) + datetime.timedelta(milliseconds=int(m.group(1)))
        # the log's wall clock and the controller's monotonic one: 50 ms
        early += use < end - datetime.timedelta(milliseconds=50)
print("  rekeys in the rejoin window: %d, used before its end: %d" % (made, early))
sys.exit(0 if window > 0 and made >= 2 and early == 0 else 1)
PY
  check "rekey_kill: rx1 got all but the last unsigned block" \
    [ "$(val rx1.out received)" -ge $((sent - 32)) ]
}

# ---- a receiver dies and comes back -----------------------------------------
scenario_receiver() {
  local p1 p2 victim
  p1=$(free_port SOCK_DGRAM)
  p2=$(free_port SOCK_DGRAM)
  receiver rx1 "$p1" 10
  receiver rx2 "$p2" 10 rx2-first
  victim=$!
  sleep 0.7
  sender 8 300 "127.0.0.1:$p1,127.0.0.1:$p2"
  sleep 2.5
  pkill -9 -P "$victim" mike-peer 2>/dev/null || kill -9 "$victim"
  sleep 0.3
  receiver rx2 "$p2" 6 rx2-again
  wait_members
  report rx1
  echo "  rx2 again: $(val rx2-again.out received) received, $(val rx2-again.out missing) missing"
  check "receiver: rx1 lost nothing while rx2 died and came back" \
    [ "$(val rx1.out missing)" -eq 0 ]
  check "receiver: rx2 rejoined and decrypts again" \
    [ "$(val rx2-again.out received)" -gt 300 ]
  check "receiver: rx2 lost nothing once back" \
    [ "$(val rx2-again.out missing)" -eq 0 ]
}

# ---- the sender dies and restarts: no nonce twice on the wire ---------------
scenario_sender() {
  local p1 pc grp=flat
  p1=$(free_port SOCK_DGRAM)
  pc=$(free_port SOCK_DGRAM)
  # every packet on the wire: SPI, sequence number and IV (Sender-ID ||
  # counter), one line each
  capture "$pc" wire.txt
  receiver rx1 "$p1" 11
  sleep 0.7
  sender 3 300 "127.0.0.1:$p1,127.0.0.1:$pc" cam1-first
  sleep 2
  kill -9 "$sender_pid"
  # the same identity at once, still under the same key
  sender 4 300 "127.0.0.1:$p1,127.0.0.1:$pc" cam1-again
  wait_members
  local n unique senders spis
  n=$(grep -c . wire.txt || true)
  unique=$(sort -u wire.txt | grep -c . || true)
  senders=$(awk '{print $1, substr($2, 1, 4)}' wire.txt | sort -u | grep -c . || true)
  spis=$(cut -d' ' -f1 wire.txt | sort -u | grep -c . || true)
  echo "  $n packets captured under $spis SPI(s), $unique distinct (SPI, IV); (SPI, Sender-ID) pairs: $senders"
  report rx1 # ("twice": the restarted sender numbers its datagrams anew)
  check "sender: the capture holds both runs" [ "$n" -gt 700 ]
  check "sender: both runs under the same key" [ "$spis" -eq 1 ]
  check "sender: no (SPI, IV) twice: no nonce repeated" [ "$unique" -eq "$n" ]
  check "sender: the restarted sender used another Sender-ID" [ "$senders" -ge 2 ]
  check "sender: rx1 decrypted the restarted sender" \
    [ "$(val rx1.out received)" -gt 900 ]
}

# ---- 20 members join at once and leave at once -------------------------------
scenario_burst() {
  local p1 joins=()
  p1=$(free_port SOCK_DGRAM)
  receiver rx1 "$p1" 10
  sleep 0.7
  sender 8 300 "127.0.0.1:$p1"
  sleep 1.5
  for m in $extra; do
    timeout --foreground 20 "$tools/mcsec-join" $(member "$m") > "$m.out" 2>&1 &
    joins+=($!)
  done
  sleep 2.5
  kill "${joins[@]}" 2>/dev/null || true
  check "burst: every mcsec-join stopped on SIGTERM" \
    wait_bounded 30 "${joins[@]}"
  wait_members
  local joined rekeys
  joined=$(grep -l "^joined" m*.out | wc -l)
  rekeys=$($admin --json list | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["groups"][0]["channel"]["rekeys"])')
  echo "  $joined of 20 joined; the controller sent $rekeys rekeys in all"
  report rx1
  check "burst: all 20 joined" [ "$joined" -eq 20 ]
  check "burst: rx1 lost nothing through the joins and leaves" \
    [ "$(val rx1.out missing)" -eq 0 ]
  check "burst: rx1 followed the batched rekeys (>= 3 SPIs)" \
    [ "$(spis_used rx1.out)" -ge 3 ]
}

# ---- clocks that jump ---------------------------------------------------------
scenario_clock() {
  local lib p1 p2 spi
  lib=$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null | head -1 || true)
  if [ -z "$lib" ]; then
    echo "  SKIP: libfaketime is not installed (make deps installs it)"
    return
  fi
  p1=$(free_port SOCK_DGRAM)
  p2=$(free_port SOCK_DGRAM)
  echo "+0" > wall.txt
  echo "+0" > mono.txt
  receiver rx1 "$p1" 11
  # rx2: only its wall clock is faked; rx3: its monotonic clock too
  LD_PRELOAD="$lib" FAKETIME_TIMESTAMP_FILE="$PWD/wall.txt" FAKETIME_NO_CACHE=1 \
    FAKETIME_DONT_FAKE_MONOTONIC=1 \
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
    receiver rx2 "$p2" 11
  # (mike-peer would end early: its own duration runs on the faked clock)
  LD_PRELOAD="$lib" FAKETIME_TIMESTAMP_FILE="$PWD/mono.txt" FAKETIME_NO_CACHE=1 \
    FAKETIME_DONT_FAKE_MONOTONIC=0 \
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
    timeout --foreground 20 "$tools/mcsec-join" $(member m1) > rx3.out 2>&1 &
  local jumper=$!
  pids+=("$jumper") # (bounded by wait_members, killed at exit)
  sleep 0.7
  sender 9 300 "127.0.0.1:$p1,127.0.0.1:$p2"
  sleep 2
  echo "+1d" > wall.txt
  echo "+30s" > mono.txt
  sleep 1
  $admin rekey tv >/dev/null
  sleep 1.5
  echo "-1d" > wall.txt
  sleep 1
  spi=$($admin --json rekey tv | /usr/bin/python3 -c 'import json,sys; print("%08x" % json.load(sys.stdin)["spi"])')
  sleep 1
  kill -INT "$jumper" 2>/dev/null || true
  wait_members
  report rx1
  report rx2
  echo "  rx3 (monotonic jump): $(grep -c '^updated' rx3.out || true) updates, $(grep -c '^rejected' rx3.out || true) rejected, $(grep -c 'controller-lost\|connection-lost' rx3.out || true) connection losses"
  check "clock: rx1 (no fake clock) lost nothing" [ "$(val rx1.out missing)" -eq 0 ]
  check "clock: rx2 lost nothing through wall-clock jumps of a day" \
    [ "$(val rx2.out missing)" -eq 0 ]
  check "clock: rx2 followed the rekeys" [ "$(val rx2.out "spi-$spi")" -gt 0 ]
  check "clock: rx3 (monotonic jump) follows the rekey after it" \
    grep -q "newest-spi=0x$spi" rx3.out
  # (while it was away, the rekey that removed it could not open for it:
  # that rejection is right; after it is back, none)
  check "clock: rx3 rejected nothing once back" \
    awk '/^joined/ {r = 0} /^rejected/ {r = 1} END {exit r}' rx3.out
}

for s in $scenarios; do
  echo "== $s"
  "scenario_$s"
done
# (the members' own output: the controller's is checked at its stop)
check "no member process reported a sanitizer error or a leak" \
  no_sanitizer_report ./*.err ./*.out
if [ "$failures" -gt 0 ]; then
  echo "$failures checks failed; controller log:"
  tail -40 controller.log
  exit 1
fi
echo "all checks passed"
