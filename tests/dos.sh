#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Attacks on the controller (issue 14), with real processes on loopback:
# the attacker is tests/dos-client (dos-client.c), members are mcsec-join.
# Each case starts a controller of its own (its own port, state and log),
# as a service would be started: soft RLIMIT_NOFILE 1,024 (systemd's
# default), so the controller has to raise it itself.  Each case states
# what must hold and prints its figures:
#  idle-flood     10,000 idle TCP connections from 127.0.0.2 (never a byte):
#                 a member joins within 5 s, another 10 s later too, and the
#                 controller uses < 50% of one core (3 s) while they are held;
#  repair-flood   a joined member of a key tree group with 16 rekeys so far
#                 stops reading and writes 1 MB of REPAIR frames (SEQ 1: each
#                 asks for all 16 again), pinging on: the
#                 controller grows < 16 MB (VmRSS before, peak after), another
#                 member joins within 5 s, the flooder is disconnected within
#                 30 s;
#  evict-restart  an evicted identity stays refused across a restart after
#                 SIGKILL (right after the eviction) and one after SIGTERM;
#                 `mcsecctl unevict` (JSON {"ok":true}) lets it back in;
#  admin-stall    three admin clients that stall (silent, a line without
#                 its newline, silent): a member joins within 1 s and
#                 `mcsecctl stats` answers within 1 s meanwhile;
#  limits         the running controller: soft "Max open files" = hard, soft
#                 "Max core file size" 0 (started with core dumps allowed);
#                 the shipped unit sets LimitNOFILE= and LimitCORE=0;
#  handshake-cap  300 connections from 127.0.0.3 that send a ClientHello
#                 and stop: a member joins within 5 s, and the controller
#                 has closed all 300 15 s after they were opened.
#
# usage: dos.sh BUILD_DIR [CASE...]   (DOS_KEEP=1 keeps the temporary folder)
set -euo pipefail
build=$(cd "$1" && pwd)
shift
cases=${*:-idle-flood repair-flood evict-restart admin-stall limits handshake-cap pong-flood fd-exhaustion}
src_dir=$(cd "$(dirname "$0")/.." && pwd)
tools=$build/tools
client=$build/tests/dos-client
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${DOS_KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "error at line $LINENO (status $?)" >&2' ERR
# under AddressSanitizer: freed memory is not held back in quarantine (it
# would count as growth in repair-flood)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1"
. "$src_dir/examples/controller-lib.sh"
. "$src_dir/tests/e2e-lib.sh"
cd "$tmp"

"$tools/mcsecctl" pki pki rx1 rx2 rx3 rx4 rf eve >/dev/null
hz=$(getconf CLK_TCK)

# ---- helpers ------------------------------------------------------------------
now_ms() { # wall clock, ms (no fork)
  local t=${EPOCHREALTIME/[.,]/}
  echo $((t / 1000))
}
# wait_until SECONDS COMMAND...: poll COMMAND every 50 ms; 1 at the deadline
wait_until() {
  local end=$(($(now_ms) + $1 * 1000))
  shift
  until "$@"; do
    [ "$(now_ms)" -lt "$end" ] || return 1
    sleep 0.05
  done
}
gone() { # gone PID: exited (or a zombie not reaped yet)
  [ ! -e "/proc/$1" ] || [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ]
}
# fld PREFIX KEY FILE: KEY=value on the last line of FILE that starts with
# PREFIX (dos-client's reports), or 0
fld() {
  local v
  v=$(grep "^$1 " "$3" 2>/dev/null | tail -1 | tr ' ' '\n' | sed -n "s/^$2=//p")
  echo "${v:-0}"
}
cpu_ticks() { # utime + stime of PID
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  s=${s##*) }
  set -- $s
  echo $((${12} + ${13}))
}
vm() { # vm PID VmRSS|VmHWM: kB
  awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

# the case's controller: NAME.conf, NAME-state/, NAME.log
ctl_pid=
ctl_port=
case_name=
write_conf() {
  case_name=$1
  ctl_port=$(free_port SOCK_STREAM)
  local chan_port
  chan_port=$(free_port SOCK_DGRAM)
  { controller_section "$ctl_port" | sed "s#^state-dir = state\$#state-dir = $1-state#"
    cat <<EOF

[group video]
receivers = rx1;rx2;rx3;rx4

[group tv]
receivers = rx1;rx2;rf
rekey-channel = 239.255.62.1:$chan_port
rekey-interface = lo
batch-interval = 100
EOF
  } > "$1.conf"
}
admin() { timeout --foreground 10 "$tools/mcsecctl" --socket "$tmp/$case_name-state/admin.sock" "$@"; }
admin_ok() { admin stats >/dev/null 2>&1; }
# start_ctl [core]: the case's controller in the background, its pid in
# $ctl_pid; soft RLIMIT_NOFILE 1,024 (when the hard limit is higher), and
# with "core" the soft core size limit raised to the hard one
start_nofile=$(ulimit -H -n)
if [ "$start_nofile" = unlimited ] || [ "$start_nofile" -gt 1024 ]; then
  start_nofile=1024
fi
start_ctl() {
  (
    ulimit -S -n "$start_nofile"
    if [ -n "${hard_nofile:-}" ]; then ulimit -H -n "$hard_nofile"; fi
    [ "${1:-}" = core ] && ulimit -S -c "$(ulimit -H -c)"
    exec "$tools/mcsec-controller" "$case_name.conf"
  ) 2>>"$case_name.log" &
  ctl_pid=$!
  pids+=("$ctl_pid")
  if ! wait_until 10 admin_ok; then
    check "$case_name: the controller starts ($(tail -1 "$case_name.log"))" false
    return 1
  fi
}
# stop_ctl [SIGNAL]: stop it (TERM by default) and reap it
stop_ctl() {
  { # (quiet: no "Killed" from the shell)
    kill -"${1:-TERM}" "$ctl_pid" || true
    wait_until 10 gone "$ctl_pid" || kill -KILL "$ctl_pid" || true
    wait "$ctl_pid" || true
  } 2>/dev/null
}
member() { # member NAME GROUP
  echo --controller "127.0.0.1:$ctl_port" --group "$2" --ca pki/ca.crt \
    --certificate "pki/$1.crt" --private-key "pki/$1.key"
  [ "$2" = tv ] && echo --rekey-interface lo
  true
}
# timed_join NAME GROUP TIMEOUT OUT: mcsec-join --once; exit status in
# $join_rc, time from its start to its end (joined, refused or timed out)
# in $join_ms
timed_join() {
  local t0
  t0=$(now_ms)
  join_rc=0
  timeout --foreground $(($3 + 10)) "$tools/mcsec-join" --once --timeout "$3" \
    $(member "$1" "$2") > "$4" 2>&1 || join_rc=$?
  join_ms=$(($(now_ms) - t0))
}
joined_within() { [ "$join_rc" -eq 0 ] && [ "$join_ms" -le "$1" ]; }
stop_helper() { # stop_helper PID: SIGTERM (it prints its summary), reaped
  kill -TERM "$1" 2>/dev/null || true
  wait_until 10 gone "$1" || kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# ---- 10,000 idle connections --------------------------------------------------
case_idle_flood() {
  local fp t_first c0 c1 m0 m1 pct fds
  write_conf idle-flood
  start_ctl || return 0
  "$client" flood --connect "127.0.0.1:$ctl_port" --source 127.0.0.2 \
    --count 10000 --hold 60 > flood.out 2>&1 &
  fp=$!
  pids+=("$fp")
  if ! wait_until 30 grep -qs '^ready\|^FAIL' flood.out ||
    grep -q '^FAIL' flood.out; then
    check "idle-flood: the attacker holds 10,000 connections: $(grep -m1 '^FAIL' flood.out || echo 'not ready in 30 s')" false
    stop_helper "$fp"
    stop_ctl
    return
  fi
  echo "  attacker (127.0.0.2): $(grep '^ready' flood.out | cut -d' ' -f2-)"
  # (made, pending or closed by the controller: all count; a connection
  # that fails otherwise, no local port for instance, makes it no test)
  check "idle-flood: none of the attacker's 10,000 connections failed to start (failed: $(fld ready failed flood.out))" \
    [ "$(fld ready failed flood.out)" -eq 0 ]
  t_first=$(now_ms)
  timed_join rx1 video 8 idle-join1.out
  check "idle-flood: a member joins within 5 s while the flood is held (rc $join_rc, $join_ms ms)" \
    joined_within 5000
  fds=$(ls "/proc/$ctl_pid/fd" 2>/dev/null | wc -l || true)
  # CPU over 3 s (a measurement window)
  c0=$(cpu_ticks "$ctl_pid")
  m0=$(now_ms)
  sleep 3
  c1=$(cpu_ticks "$ctl_pid")
  m1=$(now_ms)
  pct=$(((c1 - c0) * 100000 / (hz * (m1 - m0))))
  echo "  controller: $fds open descriptors; attacker: $(grep '^status' flood.out | tail -1 | cut -d' ' -f2-)"
  check "idle-flood: controller CPU while the flood is held: $pct% of one core over $((m1 - m0)) ms (< 50%)" \
    [ "$pct" -lt 50 ]
  # the second member 10 s after the first one started (a schedule)
  while [ "$(now_ms)" -lt $((t_first + 10000)) ]; do sleep 0.1; done
  timed_join rx2 video 8 idle-join2.out
  check "idle-flood: a second member joins 10 s later, within 5 s (rc $join_rc, $join_ms ms)" \
    joined_within 5000
  stop_helper "$fp"
  echo "  attacker at the end: $(grep '^summary' flood.out | cut -d' ' -f2-)"
  stop_ctl
}

# ---- a member floods REPAIRs and stops reading --------------------------------
case_repair_flood() {
  local rp rss0 hwm rss growth left_ms how hwm_reset=yes
  write_conf repair-flood
  start_ctl || return 0
  # 15 rekeys before the flooder joins (its join is the 16th): a REPAIR
  # from SEQ 1 asks for all 16 (the controller keeps the last 64)
  for _ in $(seq 15); do admin rekey tv >/dev/null; done
  rss0=$(vm "$ctl_pid" VmRSS)
  # the peak from here on (VmHWM reset); without it, VmHWM counts the
  # start too (an overestimate of the growth)
  echo 5 2>/dev/null > "/proc/$ctl_pid/clear_refs" || hwm_reset=no
  "$client" repair --connect "127.0.0.1:$ctl_port" --group tv --ca pki/ca.crt \
    --certificate pki/rf.crt --private-key pki/rf.key --rcvbuf 4096 \
    --bytes 1048576 --seq 1 --flood-timeout 10 --hold 30 > repair.out 2>&1 &
  rp=$!
  pids+=("$rp")
  if ! wait_until 30 grep -qs '^flooded\|^summary' repair.out ||
    ! grep -q '^flooded' repair.out; then
    check "repair-flood: the flooder joined and flooded ($(tail -1 repair.out))" false
    stop_helper "$rp"
    stop_ctl
    return
  fi
  echo "  flooder: $(grep '^joined' repair.out); $(grep '^flooded' repair.out)"
  timed_join rx1 tv 8 repair-join.out
  check "repair-flood: another member joins within 5 s during the flood (rc $join_rc, $join_ms ms)" \
    joined_within 5000
  # until the controller drops the flooder, or 30 s of holding
  wait_until 40 grep -qs '^summary' repair.out || true
  stop_helper "$rp"
  hwm=$(vm "$ctl_pid" VmHWM)
  rss=$(vm "$ctl_pid" VmRSS)
  growth=$((hwm - rss0))
  echo "  controller VmRSS: $rss0 kB before, peak $hwm kB (VmHWM reset: $hwm_reset), $rss kB at the end; rekeys: $(grep -c 'event=rekey-sent' repair-flood.log || true)"
  check "repair-flood: the controller grew by $((growth / 1024)) MB ($growth kB; < 16 MB)" \
    [ "$growth" -lt 16384 ]
  how=$(fld summary how repair.out)
  left_ms=$(fld summary after-flood-ms repair.out)
  echo "  flooder: $(grep '^summary' repair.out | cut -d' ' -f2-)"
  if [ "$(fld summary disconnected repair.out)" = 1 ]; then
    # the controller's word on it
    echo "  controller: $(grep 'identity=rf' repair-flood.log | grep -v 'event=joined' |
      head -1 | sed 's/.*mcsec-controller //')"
  fi
  check "repair-flood: the flooder is disconnected within 30 s ($(
    [ "$(fld summary disconnected repair.out)" = 1 ] &&
      echo "$how after $left_ms ms" || echo "still connected after $(fld summary held-ms repair.out) ms"))" \
    [ "$(fld summary disconnected repair.out)" = 1 ]
  stop_ctl
}

# ---- a stream of tiny frames after the handshake -----------------------------
# Three flooders write 8-byte PONG frames as fast as TLS takes them, never
# reading: eve (a certificate of the CA, in no access list) and rf (listed)
# without a JOIN, and rf again after its JOIN.  Each used to hold the
# controller's loop for as long as it kept writing (no join served, no
# timer run).  Each must be cut off at once, and members join meanwhile.
case_pong_flood() {
  local who nojoin out p
  write_conf pong-flood
  start_ctl || return 0
  for who in eve:1 rf:1 rf:0; do
    nojoin=${who#*:}
    who=${who%:*}
    out=pong-$who-$nojoin.out
    "$client" repair --pong 1 --no-join "$nojoin" --connect "127.0.0.1:$ctl_port" \
      --group tv --ca pki/ca.crt --certificate "pki/$who.crt" \
      --private-key "pki/$who.key" --rcvbuf 4096 --bytes 67108864 \
      --flood-timeout 10 --hold 10 > "$out" 2>&1 &
    p=$!
    pids+=("$p")
    sleep 0.3
    timed_join rx1 video 8 pong-join.out
    check "pong-flood: a member joins within 2 s while $who floods PONG ($([ "$nojoin" = 1 ] && echo before || echo after) a JOIN; rc $join_rc, $join_ms ms)" \
      joined_within 2000
    wait_until 15 grep -qs '^summary' "$out" || true
    stop_helper "$p"
    echo "  flooder: $(grep '^flooded' "$out" | cut -d' ' -f2-); $(grep '^summary' "$out" | cut -d' ' -f2-)"
    check "pong-flood: $who was cut off before it could write its 64 MB ($(fld summary how "$out") after $(fld flooded bytes "$out") bytes)" \
      [ "$(fld flooded complete "$out")" = 0 ] && [ "$(fld summary disconnected "$out")" = 1 ]
  done
  echo "  controller: $(grep -c 'event=flooding' pong-flood.log || true) cut off as flooding, $(admin --json stats | grep -o '"unlisted-identities":[0-9]*')"
  stop_ctl
}

# ---- out of descriptors ---------------------------------------------------------
# The controller runs with a hard open-file limit of 128 (it cannot raise
# it); 8 addresses hold 40 idle connections each, under the per-source cap
# but over the descriptors: accept fails with EMFILE.  The old controller
# spun on the readable listening socket; this one backs off.  Once the
# stalled handshakes time out, a member joins.
case_fd_exhaustion() {
  local a fps=() c0 c1 m0 m1 pct
  write_conf fd-exhaustion
  hard_nofile=128 start_nofile=128 start_ctl || { hard_nofile=; start_nofile=1024; return 0; }
  hard_nofile=
  start_nofile=1024
  for a in 2 3 4 5 6 7 8 9; do
    "$client" flood --connect "127.0.0.1:$ctl_port" --source "127.0.1.$a" \
      --count 40 --hold 30 > "fd-flood-$a.out" 2>&1 &
    fps+=($!)
    pids+=($!)
  done
  wait_until 20 grep -qs '^ready' fd-flood-9.out || true
  sleep 1
  c0=$(cpu_ticks "$ctl_pid")
  m0=$(now_ms)
  sleep 3
  c1=$(cpu_ticks "$ctl_pid")
  m1=$(now_ms)
  pct=$(((c1 - c0) * 100000 / (hz * (m1 - m0))))
  echo "  controller: $(ls "/proc/$ctl_pid/fd" 2>/dev/null | wc -l) descriptors of 128; $(admin --json stats | grep -o '"accept-errors":[0-9]*,"accept-backoffs":[0-9]*' || echo 'stats: no answer')"
  check "fd-exhaustion: controller CPU while accept fails: $pct% of one core over $((m1 - m0)) ms (< 50%)" \
    [ "$pct" -lt 50 ]
  # the stalled handshakes end after handshake-timeout (5 s), then a
  # member gets a descriptor (the attackers hold the rest in the backlog)
  timed_join rx1 video 20 fd-join.out
  check "fd-exhaustion: a member joins within 15 s (rc $join_rc, $join_ms ms)" \
    joined_within 15000
  for a in "${fps[@]}"; do stop_helper "$a"; done
  stop_ctl
}

# ---- an eviction survives restarts --------------------------------------------
case_evict_restart() {
  local xp out rc lines
  write_conf evict-restart
  start_ctl || return 0
  timeout --foreground 30 "$tools/mcsec-join" $(member rx3 video) > evict-x.out 2>&1 &
  xp=$!
  pids+=("$xp")
  if ! wait_until 10 grep -qs '^joined' evict-x.out; then
    check "evict-restart: X (rx3) joined: $(tail -1 evict-x.out)" false
    stop_ctl
    return
  fi
  out=$(admin --json evict video rx3 2>&1) || true
  check "evict-restart: evict answers ok ($out)" grep -q '"ok":true' <<<"$out"
  wait_until 10 gone "$xp" || true
  rc=0
  wait "$xp" 2>/dev/null || rc=$?
  check "evict-restart: X was told it is evicted (mcsec-join rc $rc)" \
    grep -q '^evicted' evict-x.out
  # refused_evicted OUT: the last join failed, and it or the controller's
  # log since the restart (line $lines on) says evicted
  refused_evicted() {
    [ "$join_rc" -ne 0 ] &&
      { grep -qi evict "$1" ||
        tail -n +$((lines + 1)) evict-restart.log | grep 'identity=rx3' | grep -qi evict; }
  }
  for sig in KILL TERM; do
    # (KILL: right after the eviction's answer)
    stop_ctl "$sig"
    lines=$(wc -l < evict-restart.log)
    start_ctl || return 0
    timed_join rx3 video 5 "evict-x-$sig.out"
    check "evict-restart: after a restart (SIG$sig) X is still refused (rc $join_rc: $(grep -m1 '^joined\|^refused' "evict-x-$sig.out" || echo 'no answer'))" \
      refused_evicted "evict-x-$sig.out"
  done
  out=$(admin --json unevict video rx3 2>&1) && rc=0 || rc=$?
  check "evict-restart: mcsecctl unevict answers {\"ok\":true} (rc $rc: $(head -c 200 <<<"$out" | head -1))" \
    grep -q '"ok":true' <<<"$out"
  timed_join rx3 video 5 evict-x-back.out
  check "evict-restart: X joins again after unevict (rc $join_rc: $(grep -m1 '^joined\|^refused' evict-x-back.out || echo 'no answer'))" \
    [ "$join_rc" -eq 0 ]
  stop_ctl
}

# ---- admin clients that stall -------------------------------------------------
case_admin_stall() {
  local sp stats_rc stats_ms
  write_conf admin-stall
  start_ctl || return 0
  "$client" admin --socket "$tmp/admin-stall-state/admin.sock" \
    --clients silent,partial,silent --hold 15 > stall.out 2>&1 &
  sp=$!
  pids+=("$sp")
  if ! wait_until 10 grep -qs '^ready' stall.out; then
    check "admin-stall: the stalled admin clients are connected ($(tail -1 stall.out))" false
    stop_helper "$sp"
    stop_ctl
    return
  fi
  # a member and mcsecctl stats, both at once, while the three are held
  (
    t0=$(now_ms)
    rc=0
    admin stats > stall-stats.out 2>&1 || rc=$?
    echo "$rc $(($(now_ms) - t0))" > stall-stats.res
  ) &
  pids+=($!)
  timed_join rx1 video 8 stall-join.out
  wait_until 15 test -s stall-stats.res || echo "124 15000" > stall-stats.res
  read -r stats_rc stats_ms < stall-stats.res
  check "admin-stall: a member joins within 1 s while 3 admin clients stall (rc $join_rc, $join_ms ms)" \
    joined_within 1000
  check "admin-stall: mcsecctl stats answers within 1 s meanwhile (rc $stats_rc, $stats_ms ms)" \
    [ "$stats_rc" -eq 0 -a "$stats_ms" -le 1000 ]
  stop_helper "$sp"
  echo "  stalled clients: $(grep '^summary' stall.out | cut -d' ' -f2-)"
  stop_ctl
}

# ---- resource limits ----------------------------------------------------------
case_limits() {
  local nofile core unit=$src_dir/tools/mcsec-controller.service
  write_conf limits
  start_ctl core || return 0
  nofile=$(awk '/^Max open files/ {print $4, $5}' "/proc/$ctl_pid/limits")
  core=$(awk '/^Max core file size/ {print $5, $6}' "/proc/$ctl_pid/limits")
  echo "  started with soft nofile $start_nofile (hard $(ulimit -H -n)), soft core size $(ulimit -H -c) (= hard)"
  check "limits: Max open files soft = hard (soft hard: $nofile)" \
    [ "${nofile% *}" = "${nofile#* }" ]
  check "limits: Max core file size soft 0 (soft hard: $core)" [ "${core% *}" = 0 ]
  check "limits: $unit sets LimitNOFILE= ($(grep -m1 '^LimitNOFILE=' "$unit" || echo none))" \
    grep -qE '^LimitNOFILE=.+' "$unit"
  check "limits: $unit sets LimitCORE=0 ($(grep -m1 '^LimitCORE=' "$unit" || echo none))" \
    grep -qE '^LimitCORE=0[[:space:]]*$' "$unit"
  stop_ctl
}

# ---- handshakes that never finish ---------------------------------------------
case_handshake_cap() {
  local hp
  write_conf handshake-cap
  start_ctl || return 0
  "$client" handshake --connect "127.0.0.1:$ctl_port" --source 127.0.0.3 \
    --count 300 --hold 15 > hs.out 2>&1 &
  hp=$!
  pids+=("$hp")
  if ! wait_until 20 grep -qs '^ready\|^FAIL' hs.out || grep -q '^FAIL' hs.out; then
    check "handshake-cap: 300 handshakes started ($(tail -1 hs.out))" false
    stop_helper "$hp"
    stop_ctl
    return
  fi
  # (hello-sent: connections the controller had not closed by the time the
  # attacker sent its ClientHello on them)
  echo "  attacker (127.0.0.3): $(grep '^ready' hs.out | cut -d' ' -f2-)"
  timed_join rx1 video 8 hs-join.out
  check "handshake-cap: a member joins within 5 s meanwhile (rc $join_rc, $join_ms ms)" \
    joined_within 5000
  # the helper ends once all are closed, or 15 s after they were opened
  wait_until 25 grep -qs '^summary' hs.out || true
  stop_helper "$hp"
  echo "  attacker at the end: $(grep '^summary' hs.out | cut -d' ' -f2-)"
  check "handshake-cap: the controller closed all 300 within 15 s (closed $(fld summary closed-by-peer hs.out), open $(fld summary open hs.out), last at $(fld summary last-close-ms hs.out) ms)" \
    [ "$(fld summary closed-by-peer hs.out)" -eq 300 -a "$(fld summary open hs.out)" -eq 0 ]
  stop_ctl
}

for c in $cases; do
  echo "== $c"
  "case_${c//-/_}"
done
if [ "$failures" -gt 0 ]; then
  echo "$failures checks failed"
  for c in $cases; do
    [ -f "$c.log" ] && { echo "--- $c controller log (last 15 lines)"; tail -15 "$c.log"; }
  done
  exit 1
fi
echo "all checks passed"
