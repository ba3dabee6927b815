#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Operating the controller (issue 17), with real processes on loopback: a
# controller (mcsec-controller), members (mcsec-join), the admin tool.
#   reload        SIGHUP: a member not in the lists is refused, listed and
#                 SIGHUP'd it joins; removed and SIGHUP'd while joined it is
#                 evicted and the others rekey; nothing durable
#   reload_bad    SIGHUP with a broken file: refused, named, the running
#                 configuration stays; a new listen address waits for a
#                 restart and says so
#   journal       stderr on journald (JOURNAL_STREAM): every line starts
#                 with its syslog priority; elsewhere the lines are as ever
#   cold_start    a restart waits rejoin-window only when members were
#                 joined at the stop (clean or not), and says why
# Every process runs under `timeout`; everything started is killed at exit.
#
# usage: controller-ops.sh BUILD_DIR [CASE...]
set -euo pipefail
build=$1
shift
src_dir=$(cd "$(dirname "$0")/.." && pwd)
cases=${*:-reload reload_bad journal cold_start}
tools=$build/tools
tmp=$(mktemp -d)
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${MIKE_E2E_KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "error at line $LINENO (status $?)" >&2' ERR

. "$src_dir/tests/e2e-lib.sh"
. "$src_dir/examples/controller-lib.sh"
wait_until() { # wait_until SECONDS COMMAND...: poll until it succeeds
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.1
  done
}
logged() { grep -qF -- "$1" controller.log; }
answers() { "$tools/mcsecctl" --socket "$PWD/state/admin.sock" stats >/dev/null 2>&1; }

cd "$tmp"
"$tools/mcsecctl" pki pki cam1 rx1 rx2 >/dev/null
port=$(free_port SOCK_STREAM)
conf() { # conf RECEIVERS: the configuration, into ctl.conf
  { controller_section "$port"
    printf 'rejoin-window = 3000\n\n[group video]\nsenders = cam1\n'
    printf 'receivers = %s\nactivation-delay = 200\n' "$1"
    printf '\n[group tv]\nreceivers = rx1\n'; } > ctl.conf
}
ctl_pid=
run_controller() { # a fresh log each time (the last ones in runs.log)
  [ -s controller.log ] &&
    { echo "=== a controller's log"; cat controller.log; } >> runs.log
  : > controller.log
  start_controller "$tools" ctl.conf || exit 1
  ctl_pid=$controller_pid
  pids+=("$ctl_pid")
}
stop_controller() { # stop_controller [SIGNAL]
  kill "-${1:-TERM}" "$ctl_pid" 2>/dev/null || true
  wait "$ctl_pid" 2>/dev/null || true
}
join_once() { # join_once NAME: mcsec-join's exit status
  timeout --foreground 20 "$tools/mcsec-join" --once --timeout 5 \
    --controller "127.0.0.1:${2:-$port}" --group video --ca pki/ca.crt \
    --certificate "pki/$1.crt" --private-key "pki/$1.key" > "$1.once" 2>&1 &&
    return 0 || return $?
}
member() { # member NAME: joins and stays, its lines in NAME.out
  # emptied here, not by the background job's redirection: a wait for
  # '^joined' must not find an earlier run's line (the cold start crashed
  # the controller before rx1 had joined it, under load)
  : >"$1.out"
  timeout --foreground 60 "$tools/mcsec-join" --controller "127.0.0.1:$port" \
    --group video --ca pki/ca.crt --certificate "pki/$1.crt" \
    --private-key "pki/$1.key" > "$1.out" 2>&1 &
  pids+=($!)
  eval "${1}_pid=$!"
}
reload() { # reload: SIGHUP, then wait for its answer in the log
  local n
  n=$(grep -cE 'event=(reloaded|reload-failed) ' controller.log || true)
  kill -HUP "$ctl_pid"
  wait_until 5 bash -c "[ \$(grep -cE 'event=(reloaded|reload-failed) ' \
    controller.log) -gt $n ]"
}

# ---- SIGHUP: members added and removed without a restart --------------------
case_reload() {
  local rc spi
  rm -rf state
  conf "rx1"
  run_controller
  join_once rx2 && rc=0 || rc=$?
  check "reload: rx2, not listed, is refused (rc $rc)" \
    bash -c "[ $rc -eq 3 ] && grep -q not-authorised rx2.once"
  conf "rx1;rx2"
  reload
  check "reload: the controller says what changed" \
    logged 'event=reloaded groups=2 added="video:rx2" removed="" evicted=0 changed="[group video] receivers" restart-needed=0'
  join_once rx2 && rc=0 || rc=$?
  check "reload: listed now, rx2 joins without a restart (rc $rc)" [ "$rc" -eq 0 ]
  member rx1
  member rx2
  check "reload: rx1 and rx2 are members" \
    wait_until 10 bash -c "grep -q '^joined' rx1.out && grep -q '^joined' rx2.out"
  sleep 0.5 # rx2's join rekeyed: rx1 has the SA it made
  spi=$(grep -oE 'newest-spi=0x[0-9a-f]+' rx1.out | tail -1)
  conf "rx1"
  reload
  check "reload: rx2, removed while joined, is told it is evicted" \
    wait_until 10 grep -q '^evicted reason=evicted text="no longer in the group.s access lists"' rx2.out
  wait_until 5 bash -c "! kill -0 $rx2_pid 2>/dev/null" || true
  wait "$rx2_pid" && rc=0 || rc=$?
  check "reload: rx2's mcsec-join ended: evicted (status $rc)" [ "$rc" -eq 5 ]
  check "reload: the controller logged the eviction and one rekey" \
    bash -c "grep -q 'event=evicted group=video identity=rx2 connected=yes durable=no by=reload' controller.log &&
      [ \$(grep -c 'event=rekey group=video reason=reload' controller.log) -eq 1 ] &&
      grep -qF 'removed=\"video:rx2\" evicted=1' controller.log"
  check "reload: rx1 got the new SA ($spi before)" \
    wait_until 5 bash -c "grep -E '^updated .*newest-spi=' rx1.out | tail -1 | grep -v -q '$spi'"
  check "reload: rx1 is still a member" \
    bash -c "! grep -q '^evicted' rx1.out && kill -0 $rx1_pid"
  check "reload: nothing durable: no evicted identity in group video" \
    bash -c "'$tools/mcsecctl' --socket state/admin.sock --json list |
      /usr/bin/python3 -c 'import json,sys; g=[g for g in json.load(sys.stdin)[\"groups\"] if g[\"name\"]==\"video\"][0]; sys.exit(0 if g[\"evicted-identities\"]==[] else 1)'"
  join_once rx2 && rc=0 || rc=$?
  check "reload: rx2, not listed again, is refused (rc $rc)" [ "$rc" -eq 3 ]
  kill "$rx1_pid" 2>/dev/null || true
  stop_controller
  check "reload: the controller stopped cleanly" stopped_cleanly controller.log
}

# ---- SIGHUP with a broken file, and what needs a restart --------------------
case_reload_bad() {
  local rc other
  rm -rf state
  conf "rx1"
  run_controller
  sed -i 's/^receivers = rx1$/recievers = rx1;rx2/' ctl.conf
  reload
  check "reload_bad: the broken file is refused, the setting named" \
    logged "event=reload-failed why=\"ctl.conf:12: [group video] recievers: unknown setting (did you mean 'receivers'?)\" action=\"the running configuration stays\""
  join_once rx1 && rc=0 || rc=$?
  check "reload_bad: the running configuration stays: rx1 joins (rc $rc)" \
    [ "$rc" -eq 0 ]
  join_once rx2 && rc=0 || rc=$?
  check "reload_bad: ... and rx2 is refused (rc $rc)" [ "$rc" -eq 3 ]
  other=$(free_port SOCK_STREAM)
  conf "rx1"
  sed -i "s/^listen = .*/listen = 127.0.0.1:$other/; s/^activation-delay = 200$/activation-delay = 300\ncipher = aes-256-gcm/" ctl.conf
  reload
  check "reload_bad: a new listen address and cipher wait for a restart" \
    bash -c "grep -qF 'event=restart-needed setting=\"[controller] listen\"' controller.log &&
      grep -qF 'event=restart-needed setting=\"[group video] cipher\"' controller.log &&
      grep -qF 'changed=\"[group video] activation-delay\" restart-needed=2' controller.log"
  join_once rx1 && rc=0 || rc=$?
  check "reload_bad: the controller still listens where it did (rc $rc)" \
    [ "$rc" -eq 0 ]
  stop_controller
  check "reload_bad: the controller stopped cleanly" stopped_cleanly controller.log
}

# ---- journald: syslog priorities --------------------------------------------
case_journal() {
  local rc
  rm -rf state
  conf "rx1"
  : > controller.log
  # systemd's JOURNAL_STREAM: the device and inode of stderr
  JOURNAL_STREAM=$(stat -c '%d:%i' controller.log) \
    "$tools/mcsec-controller" ctl.conf 2>>controller.log &
  ctl_pid=$!
  pids+=("$ctl_pid")
  wait_until 5 answers || true
  join_once rx1 || true
  join_once rx2 || true
  stop_controller
  check "journal: every line starts with a priority" \
    bash -c "[ -s controller.log ] && ! grep -qvE '^<[3-7]>[0-9]{4}-' controller.log"
  check "journal: started is a notice, joined info, refused a notice" \
    bash -c "grep -qE '^<5>.* event=started ' controller.log &&
      grep -qE '^<6>.* event=joined group=video identity=rx1' controller.log &&
      grep -qE '^<5>.* event=refused .*identity=rx2' controller.log &&
      grep -qE '^<5>.* event=stopped ' controller.log"
  # a JOURNAL_STREAM that is not stderr (a child of a service, piped):
  # the lines as ever
  : > controller.log
  JOURNAL_STREAM=1:1 "$tools/mcsec-controller" ctl.conf 2>>controller.log &
  ctl_pid=$!
  pids+=("$ctl_pid")
  wait_until 5 answers || true
  stop_controller
  check "journal: elsewhere, no priority" \
    bash -c "grep -qE '^[0-9]{4}-.* event=started ' controller.log &&
      ! grep -q '^<' controller.log"
  # an error at the start is an error to journald too
  sed 's/^receivers = rx1$/recievers = rx1/' ctl.conf > bad.conf
  : > check.log
  JOURNAL_STREAM=$(stat -c '%d:%i' check.log) \
    "$tools/mcsec-controller" --check bad.conf 2>>check.log && rc=0 || rc=$?
  check "journal: a configuration error is <3> (rc $rc)" \
    bash -c "[ $rc -eq 1 ] && grep -q '^<3>mcsec-controller: bad.conf:12: \[group video\] recievers: unknown setting' check.log"
}

# ---- the cold start: wait only for members that were joined -----------------
case_cold_start() {
  rm -rf state
  conf "rx1"
  run_controller
  stop_controller
  run_controller # nobody was joined: no wait
  check "cold_start: no member at the stop: no wait, and why" \
    bash -c "grep -q 'event=started .*rejoin-window-ms=0 ' controller.log &&
      grep -qF 'event=rejoin-window group=video ms=0 why=\"no member was joined at the last stop\"' controller.log"
  join_once rx1 || true
  check "cold_start: the first SA is used at once" \
    wait_until 5 grep -q 'event=rekey group=video reason=join .*activate-in-ms=0 ' controller.log
  check "cold_start: the controller runs on after the member left" \
    kill -0 "$ctl_pid"
  member rx1
  wait_until 10 grep -q '^joined' rx1.out || true
  stop_controller KILL # a crash with rx1 joined
  run_controller
  check "cold_start: after a crash with rx1 joined: the window, and why" \
    bash -c "grep -q 'event=started .*rejoin-window-ms=3000 ' controller.log &&
      grep -qF 'event=rejoin-window group=video ms=3000 why=\"members were joined when the last run ended without a clean stop\"' controller.log &&
      grep -qF 'event=rejoin-window group=tv ms=0 ' controller.log"
  check "cold_start: rx1 rejoined" \
    wait_until 15 grep -q 'event=joined group=video identity=rx1' controller.log
  check "cold_start: its new SA waits for the window" \
    bash -c "grep 'event=rekey group=video' controller.log | grep -qv 'activate-in-ms=0 '"
  stop_controller # a clean stop with rx1 joined
  run_controller
  check "cold_start: after a clean stop: the count" \
    logged 'event=rejoin-window group=video ms=3000 why="1 member was joined at the last stop"'
  kill "$rx1_pid" 2>/dev/null || true
  wait "$rx1_pid" 2>/dev/null || true
  stop_controller
  check "cold_start: the controller stopped cleanly" stopped_cleanly controller.log
}

for c in $cases; do
  echo "== $c"
  "case_$c"
done
check "no controller reported a sanitizer error or a leak" \
  no_sanitizer_report "$tmp/controller.log" "$tmp/runs.log"
if [ "$failures" -gt 0 ]; then
  echo "$failures checks failed; the earlier controllers' logs (last 60 lines):"
  tail -60 "$tmp/runs.log" 2>/dev/null || true
  echo "--- the last controller's log:"
  tail -40 "$tmp/controller.log"
  for f in "$tmp"/*.out "$tmp"/*.once; do
    [ -e "$f" ] && { echo "--- $f"; cat "$f"; }
  done
  exit 1
fi
echo "all checks passed"
