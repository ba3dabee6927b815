# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Shell helpers of the end-to-end tests (sourced): checks that count
# failures, and reading mike-peer's key=value reports.
#
# Signals and LeakSanitizer.  A sanitized process checks for leaks as it
# exits: LeakSanitizer stops it with ptrace (SIGSTOP) and reads its memory.
# A SIGCONT that lands in that moment cancels the pending SIGSTOP, and the
# process then hangs for good, spinning (measured: an ASan mcsec-join sent
# SIGINT, then SIGCONT 0-6 ms later, hung 3 times in 60).  Plain `timeout`
# sends one: when it passes a signal on (ours, or its own TERM at the end)
# it sends SIGCONT after it, to the command and its process group, and a
# command that exits fast enough is already in its leak check.  So every
# `timeout` in tests/*.sh, examples/*.sh and bench/*.sh runs with
# --foreground (the signal, to the command alone; tests/lint-scripts.sh,
# in `make format-check`, refuses one without), and SIGCONT goes only to
# a process that is stopped (resume_stopped).

failures=0

# check NAME COMMAND...: PASS or FAIL (counted in $failures)
check() {
  local name=$1
  shift
  if "$@"; then
    echo "PASS $name"
  else
    echo "FAIL $name"
    failures=$((failures + 1))
  fi
}

# val FILE KEY: the value of KEY= in FILE, or 0
val() {
  local v
  v=$(grep -m1 "^$2=" "$1" 2>/dev/null | cut -d= -f2 || true)
  echo "${v:-0}"
}

# spis_used FILE: how many SPIs a mike-peer receiver decrypted under
spis_used() { grep -cE '^spi-[0-9a-f]+=[1-9]' "$1" || true; }

# capture PORT FILE: every datagram to 127.0.0.1:PORT, its SPI and IV
# (Sender-ID || counter) as hex, one line each, until 4 s of silence (in
# the background; its pid appended to $pids)
capture() {
  timeout --foreground 60 /usr/bin/python3 - "$1" >"$2" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(4)
while True:
    try:
        p = s.recv(65536)
    except socket.timeout:
        break
    if len(p) >= 16:
        print(p[0:4].hex(), p[8:16].hex(), flush=True)
PY
  pids+=($!)
}

# stopped_cleanly LOG: the controller logged its stop, and no sanitizer
# report
stopped_cleanly() {
  grep -q 'event=stopped' "$1" && no_sanitizer_report "$1"
}

# hang_report PID...: each process and its descendants, their state and
# every thread's stack (gdb), to stderr: what a hung test waited for
hang_report() {
  local p all=() kids
  for p in "$@"; do
    all+=("$p")
    kids=$(pgrep -P "$p" || true)
    for k in $kids; do all+=("$k"); all+=($(pgrep -P "$k" || true)); done
  done
  echo "HANG: still running:" >&2
  ps -o pid,ppid,stat,wchan:24,etimes,args -p "$(IFS=,; echo "${all[*]}")" >&2 || true
  for p in "${all[@]}"; do
    case "$(ps -o comm= -p "$p" 2>/dev/null)" in
    timeout | "") continue ;;
    esac
    echo "HANG: stacks of $p:" >&2
    timeout --foreground 30 gdb -p "$p" -batch -nx -ex 'thread apply all bt' 2>&1 |
      grep -E '^(Thread|#)' >&2 || true
  done
}

# resume_stopped PID...: SIGCONT to each one that is stopped (a test's
# SIGSTOP), none to the others (see the top of this file)
resume_stopped() {
  local p
  for p in "$@"; do
    case "$(ps -o stat= -p "$p" 2>/dev/null)" in
    T*) kill -CONT "$p" 2>/dev/null || true ;;
    esac
  done
}

# wait_bounded SECONDS PID...: wait until every process has ended; one
# still running after SECONDS is a hang: hang_report, killed, status 1
wait_bounded() {
  local end=$((SECONDS + $1)) p left=()
  shift
  while :; do
    left=()
    for p in "$@"; do kill -0 "$p" 2>/dev/null && left+=("$p"); done
    if [ ${#left[@]} -eq 0 ] || [ "$SECONDS" -ge "$end" ]; then break; fi
    sleep 0.2
  done
  if [ ${#left[@]} -gt 0 ]; then
    hang_report "${left[@]}"
    for p in "${left[@]}"; do
      pkill -9 -P "$p" 2>/dev/null || true
      kill -9 "$p" 2>/dev/null || true
    done
  fi
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
  [ ${#left[@]} -eq 0 ]
}

# gst_registry_ready PROGRAM: the GStreamer registry ($GST_REGISTRY_1_0)
# built once, by PROGRAM (a sanitized GStreamer program of the build, such
# as mike-peer: it calls gst_init, then fails on no arguments), before the
# test's processes start together.  A process that scans the plugins
# itself (GST_REGISTRY_FORK=no, which a sanitized plugin needs) keeps what
# GLib and the system's plugins allocate while loading (GLib's outgrown
# quark arrays, fontconfig's caches), and LeakSanitizer reports it at its
# exit: without this, every receiver started in the first seconds of a
# test did.  The one scanning process here is not checked for leaks.
gst_registry_ready() {
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    timeout --foreground 120 "$1" >/dev/null 2>&1 || true
  [ -s "$GST_REGISTRY_1_0" ] ||
    { echo "$1 built no GStreamer registry at $GST_REGISTRY_1_0" >&2; return 1; }
}

# no_sanitizer_report FILE...: none of the files holds a sanitizer report
# (a file that is not there holds none: grep's status 2 is not a pass by
# accident, only 1, "no match", is)
no_sanitizer_report() {
  local f rc
  for f in "$@"; do
    [ -e "$f" ] || continue
    rc=0
    grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error' "$f" || rc=$?
    [ "$rc" -eq 1 ] || return 1
  done
}
