# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The `mike` case of kernel-ipsec.sh (sourced there, inside the VM): MIKE
# keys for the kernel (issue 16 item 4, docs/linux-ipsec.md "MIKE keys for
# the kernel").  A controller on 127.0.0.1 with a group that has
# spi-per-sender; two senders (mike-peer: mcseckeysrc, mcsecenc
# inner-udp-port=5004, numbered datagrams at a fixed rate, each sender's
# filled with its own byte) send ESP in UDP to 127.0.0.1:4700; then the
# receiver joins with `mcsec-join --kernel --inner-udp-port 5004` (no
# mcsec element: the kernel decrypts) and a plain UDP socket on 5004 takes
# the datagrams.  While they flow the group is rekeyed three times
# (`mcsecctl rekey`; the receiver's join made a new SA before).  Checked:
# - the follower installs a state per SA and sender (SPI base | Sender-ID)
#   before the SA's activation and removes the SA's states after the
#   deactivation delay;
# - from each sender, every number from the first one received to the
#   last one sent arrives, once each: 0 datagrams lost across the rekeys;
# - the kernel counted no replay, integrity or state error;
# - a plain UDP datagram to 5004 (no ESP) is refused by the policy;
# - the senders leave (the group has rekey-on-leave = false, so no rekey):
#   their states are removed;
# - a sender joins again; evicted (`mcsecctl evict`), the follower exits 5
#   and none of its states or its policy are left;
# - a follower killed with SIGKILL leaves its states and policy; the next
#   one with the same reqid removes them before it starts
#   ("removed-leftover"); a second follower for the same address and reqid
#   is refused and the first keeps its states; SIGTERM removes everything;
# - with lo's disable_policy=1 the follower warns; its policy flushed by
#   someone else, it stops (status 1) and removes its states;
# - a group with source authentication (sam = block) is refused.

# mike_rx RESULT: a UDP socket on 127.0.0.1:5004 (SO_RCVBUF 4 MiB); writes
# RESULT.ready, then collects until RESULT.stop and 2 s of silence, and
# writes per sender (fill byte XX): XX-first, XX-last, XX-count,
# XX-missing (numbers absent between its first and last), XX-dup
mike_rx() {
  timeout --foreground 300 python3 - "$1" <<'PY' &
import os, select, socket, sys, time
out = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("127.0.0.1", 5004))
open(out + ".ready", "w").close()
seen, other, last_heard = {}, 0, time.monotonic()
while True:
    r, _, _ = select.select([s], [], [], 0.2)
    if r:
        p, addr = s.recvfrom(70000)
        last_heard = time.monotonic()
        if len(p) < 17 or addr != ("127.0.0.1", 5004):
            other += 1
            continue
        seen.setdefault(p[16], []).append(int.from_bytes(p[:8], "big"))
    elif os.path.exists(out + ".stop") and time.monotonic() - last_heard > 2:
        break
with open(out, "w") as f:
    print("other=%d" % other, file=f)
    for fill, nums in seen.items():
        k = "%02x" % fill
        u = set(nums)
        print("%s-first=%d" % (k, min(u)), file=f)
        print("%s-last=%d" % (k, max(u)), file=f)
        print("%s-count=%d" % (k, len(nums)), file=f)
        print("%s-missing=%d" % (k, max(u) - min(u) + 1 - len(u)), file=f)
        print("%s-dup=%d" % (k, len(nums) - len(u)), file=f)
PY
  pids+=($!)
}

# mike_states: how many XFRM states carry the follower's reqid
mike_states() { ip xfrm state list reqid 0x6d637300 | grep -c '^src' || true; }
has_states() { [ "$(mike_states)" -gt 0 ]; }
mike_policies() { ip xfrm policy list dir in | grep -c '^src' || true; }
# wait_until SECONDS COMMAND...: polls until it succeeds
wait_until() {
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.2
  done
}
# wait_grep SECONDS PATTERN FILE...: a line of each FILE matches, within
# SECONDS
wait_grep() {
  local end=$((SECONDS + $1)) re=$2 f
  shift 2
  for f; do
    until grep -qE "$re" "$f" 2>/dev/null; do
      [ "$SECONDS" -ge "$end" ] && return 1
      sleep 0.2
    done
  done
}

mike_case() {
  local d=$tmp/mike tools=$build/tools ctl_port conf join_pid rx tx=() rate=50
  echo "== mike: a group's keys for the kernel through MIKE (mcsec-join --kernel)"
  mkdir -p "$d"
  pushd "$d" >/dev/null
  . "$src_dir/examples/controller-lib.sh"
  "$tools/mcsecctl" pki pki cam1 cam2 rx1 rx2 rx3 rx4 >/dev/null
  ctl_port=$(free_port SOCK_STREAM)
  conf=$d/controller.conf
  { controller_section "$ctl_port"; cat <<EOF

[group kernel]
address = 127.0.0.1
port = 4700
senders = cam1;cam2
receivers = rx1;rx2;rx3;rx4
sam = none
sender-id-bits = 8
spi-per-sender = true
activation-delay = 1000
deactivation-delay = 2000
rekey-on-leave = false

[group signed]
address = 127.0.0.1
port = 4800
receivers = rx4
EOF
  } > "$conf"
  start_controller "$tools" "$conf"
  pids+=("$controller_pid")
  local s common=(--controller "127.0.0.1:$ctl_port" --group kernel --ca pki/ca.crt)

  # the senders first: the receiver then finds both in its first MSA
  for s in 1 2; do
    timeout --foreground 200 "$build/tests/mike-peer" send "${common[@]}" \
      --certificate "pki/cam$s.crt" --private-key "pki/cam$s.key" \
      --signing-key-file "pki/cam$s-sign.key" --to 127.0.0.1:4700 --inner-udp-port 5004 --fill "0x$s$s" \
      --rate "$rate" --duration 180 --size 200 --stats-file "cam$s.stats" \
      > "cam$s.out" 2> "cam$s.err" &
    tx+=($!)
    pids+=($!)
  done
  if ! check "mike: both senders are sending" \
    wait_grep 120 '^sent=[1-9]' cam1.stats cam2.stats; then
    tail -n 5 cam1.err cam2.err cam1.stats cam2.stats
  fi

  local no_states
  no_states=$(xstat XfrmInNoStates)
  mike_rx "$d/rx"
  rx=${pids[-1]}
  wait_file "$d/rx.ready" 60 || echo "the receiver did not start in 60 s"
  timeout --foreground 250 "$tools/mcsec-join" "${common[@]}" --certificate pki/rx1.crt \
    --private-key pki/rx1.key --kernel --inner-udp-port 5004 \
    > join.log 2> join.err &
  join_pid=$!
  pids+=($join_pid)
  check "mike: mcsec-join --kernel joins and adds the inbound policy" \
    wait_grep 60 '^kernel policy dst=127.0.0.1 proto=udp dport=5004' join.log
  # the join's rekey: the next SA's states before its activation
  check "mike: the follower installs the next SA's states (both senders) before its activation" \
    wait_grep 30 'sender-id=.*before its activation' join.log
  echo "ip xfrm state (the follower's):"
  ip xfrm state list reqid 0x6d637300 | grep -E '^src|proto esp' | sed 's/^/  /' || true
  ip xfrm policy list dir in | sed 's/^/  /' || true
  local mismatch
  mismatch=$(xstat XfrmInTmplMismatch)
  python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"p" * 40, ("127.0.0.1", 5004))'
  sleep 3
  mismatch=$(($(xstat XfrmInTmplMismatch) - mismatch))
  provoke XfrmInTmplMismatch 1
  "$tools/mcsecctl" --socket "$d/state/admin.sock" rekey kernel > /dev/null
  sleep 4
  "$tools/mcsecctl" --socket "$d/state/admin.sock" rekey kernel > /dev/null
  sleep 4
  "$tools/mcsecctl" --socket "$d/state/admin.sock" rekey kernel > /dev/null
  sleep 3
  # the stream still flows: the SAs before the newest two are retired
  local sent_then states_then installed_then
  sent_then=$(val cam1.stats sent)
  states_then=$(mike_states)
  installed_then=$(grep -c '^kernel installed' join.log || true)
  # 3 s more, then the senders stop (what they pushed goes out first) and
  # leave, then the receiver
  sleep 3
  kill -TERM "${tx[@]}"
  wait_bounded 60 "${tx[@]}" || echo "a sender did not finish"
  # from the encapsulation socket's opening to the first states, the
  # senders' packets find no state; later, a gap would show as a number
  # missing below
  no_states=$(($(xstat XfrmInNoStates) - no_states))
  echo "XfrmInNoStates +$no_states (before the SA of the follower's join is used)"
  provoke XfrmInNoStates "$no_states"
  touch "$d/rx.stop"
  wait_bounded 60 "$rx" || true
  cat "$d/rx" 2>/dev/null || echo "(the receiver wrote nothing)"
  for s in 1 2; do
    local sent first
    sent=$(val "cam$s.out" sent)
    first=$(val "$d/rx" "$s$s-first")
    echo "cam$s: sent $sent, received from $first to $(val "$d/rx" "$s$s-last")"
    check "mike: sender $s: every datagram from the first received ($first) to the last sent ($((sent - 1))) arrived once, in a plain UDP socket: 0 lost across 3 rekeys" \
      test "$(val "$d/rx" "$s$s-last")/$(val "$d/rx" "$s$s-missing")/$(val "$d/rx" "$s$s-dup")/$((first < sent - 10 * rate))" = "$((sent - 1))/0/0/1"
  done
  check "mike: the senders went on for more than 2 s after the last rekey's activation" \
    test "$(val cam1.out sent)" -gt "$((sent_then + 2 * rate))"
  check "mike: a plain datagram to 5004 (no ESP) is refused by the policy (XfrmInTmplMismatch +$mismatch): nothing else arrived" \
    test "$mismatch/$(val "$d/rx" other)" = 1/0
  # the follower's lines: per SA, the states of every Sender-ID, SPI = SA |
  # Sender-ID with the SA's low 8 bits 0; what its lines leave installed
  # is what the kernel holds
  python3 - join.log "$(mike_states)" > follow <<'PY'
import re, sys
sas, removed, bad = {}, set(), 0
for line in open(sys.argv[1]):
    m = re.match(r"kernel installed spi=(0x[0-9a-f]+) sa=(0x[0-9a-f]+) sender-id=(\d+)", line)
    if m:
        spi, sa, sid = int(m[1], 16), int(m[2], 16), int(m[3])
        bad += spi != sa | sid or sa & 255 != 0 or not 1 <= sid <= 255
        sas.setdefault(sa, set()).add(sid)
    m = re.match(r"kernel removed spi=(0x[0-9a-f]+)", line)
    if m:
        removed.add(int(m[1], 16))
every = set().union(*sas.values()) if sas else set()
full = sum(1 for ids in sas.values() if ids == every)
print("sas=%d\nsender-ids=%d\nevery-sender=%d\nbad-spi=%d\nremoved=%d\nleft=%d\nkernel=%s"
      % (len(sas), len(every), full, bad, len(removed),
         sum(len(i) for i in sas.values()) - len(removed), sys.argv[2]))
PY
  sed 's/^/  /' join.log
  cat follow
  local sas
  sas=$(val follow sas)
  # (a member gets the SA its join makes, never the one before: the
  # senders' packets under that one find no state, before the first
  # received)
  check "mike: the follower installed states for 4 SAs at least (its join's, 3 rekeys), each for every Sender-ID of both senders ($(val follow sender-ids)), SPI = SA | Sender-ID" \
    test "$((sas >= 4))/$(($(val follow sender-ids) >= 2))/$(val follow every-sender)/$(val follow bad-spi)" = "1/1/$sas/0"
  local ids
  ids=$(val follow sender-ids)
  check "mike: 3 s after the last rekey, with $installed_then states installed so far, the kernel held those of the newest two SAs at most ($states_then, $ids Sender-IDs each): the retired SAs' removed" \
    test "$((installed_then >= 4 * ids))/$((states_then <= 2 * ids))" = 1/1
  check "mike: the senders left (the group's updates no longer list them): their states removed, none left ($(val follow left) by the follower's lines, $(val follow kernel) in the kernel)" \
    test "$(val follow left)/$(val follow kernel)" = 0/0
  local replay_errors
  replay_errors=$(ip -s xfrm state list reqid 0x6d637300 | grep -oE 'replay [0-9]+ failed [0-9]+' | grep -vc '^replay 0 failed 0' || true)
  check "mike: the kernel's states count no replay and no integrity failure" \
    test "$replay_errors" = 0

  # a sender again (for the rest of the case), so that the followers below
  # hold states for it; each new follower gets the SA of its join only, so
  # packets under the one before find no state (counted, not checked)
  no_states=$(xstat XfrmInNoStates)
  timeout --foreground 200 "$build/tests/mike-peer" send "${common[@]}" \
    --certificate pki/cam1.crt --private-key pki/cam1.key \
    --signing-key-file pki/cam1-sign.key --to 127.0.0.1:4700 \
    --inner-udp-port 5004 --rate "$rate" --duration 100 > cam3.out 2> cam3.err &
  local cam3=$!
  pids+=($cam3)
  local before
  check "mike: the follower installs the returning sender's states" \
    wait_until 60 has_states
  before=$(mike_states)

  # evicted: the follower removes everything and exits 5
  "$tools/mcsecctl" --socket "$d/state/admin.sock" evict kernel rx1 > /dev/null
  local rc=0
  wait "$join_pid" || rc=$?
  check "mike: evicted, mcsec-join --kernel exits 5" test "$rc" = 5
  check "mike: the evicted member's kernel states ($before before) and policy are gone ($(mike_states) states, $(mike_policies) policies)" \
    test "$((before > 0))/$(mike_states)/$(mike_policies)" = 1/0/0
  grep -E '^(evicted|kernel (removed|policy removed))' join.log | tail -n 3

  # killed: its states and policy stay; the next follower with the same
  # reqid removes them first
  # (not under timeout: SIGKILL must reach mcsec-join itself)
  "$tools/mcsec-join" "${common[@]}" --certificate pki/rx2.crt \
    --private-key pki/rx2.key --kernel --inner-udp-port 5004 \
    > join2.log 2> join2.err &
  join_pid=$!
  pids+=($join_pid)
  wait_grep 60 '^kernel installed .*sender-id=' join2.log || true
  kill -9 "$join_pid"
  wait "$join_pid" 2>/dev/null || true
  local left
  left=$(grep -oE '^kernel installed spi=0x[0-9a-f]+' join2.log | sort -u | wc -l)
  check "mike: a follower killed with SIGKILL leaves its $left states and its policy" \
    test "$((left > 0))/$(mike_states)/$(mike_policies)" = "1/$left/1"
  # another member (rx2 may count as joined until the controller notices;
  # what is left is found by reqid and address, whoever left it)
  timeout --foreground 60 "$tools/mcsec-join" "${common[@]}" --certificate pki/rx3.crt \
    --private-key pki/rx3.key --kernel --inner-udp-port 5004 \
    > join3.log 2> join3.err &
  join_pid=$!
  wait_grep 60 '^kernel installed .*sender-id=' join3.log || true
  check "mike: the next follower removes what the killed one left ($(grep -c '^kernel removed-leftover spi=' join3.log || true) of $left states, and its policy) and installs its own" \
    test "$(grep -c '^kernel removed-leftover spi=' join3.log || true)/$(grep -c '^kernel removed-leftover policy' join3.log || true)/$((\
      $(grep -c '^kernel installed' join3.log || true) > 0))" = "$left/1/1"

  # one follower per reqid and address: a second is refused before it
  # touches anything, and the first keeps its states and policy
  local rc4=0
  timeout --foreground 60 "$tools/mcsec-join" "${common[@]}" --certificate pki/rx4.crt \
    --private-key pki/rx4.key --kernel --inner-udp-port 5004 \
    > join4.log 2> join4.err || rc4=$?
  check "mike: a second follower for 127.0.0.1 with the same reqid is refused (status $rc4, names --kernel-reqid); the first runs on with its policy and states ($(mike_states))" \
    test "$rc4/$(grep -c -- '--kernel-reqid' join4.err || true)/$(kill -0 "$join_pid" 2>/dev/null && echo runs)/$(mike_policies)/$(has_states && echo states)" = 1/1/runs/1/states

  kill -TERM "$join_pid"
  wait "$join_pid" 2>/dev/null || true
  check "mike: SIGTERM: nothing of the follower left ($(mike_states) states, $(mike_policies) policies)" \
    test "$(mike_states)/$(mike_policies)" = 0/0

  # its policy removed by someone else (ip xfrm policy flush): the
  # follower stops at its next check (each second) and removes its
  # states; with lo's disable_policy=1 it warns that the policy is not
  # checked there
  echo 1 > /proc/sys/net/ipv4/conf/lo/disable_policy
  timeout --foreground 60 "$tools/mcsec-join" "${common[@]}" --certificate pki/rx3.crt \
    --private-key pki/rx3.key --kernel --inner-udp-port 5004 \
    > join5.log 2> join5.err &
  join_pid=$!
  wait_grep 60 '^kernel installed .*sender-id=' join5.log || true
  echo 0 > /proc/sys/net/ipv4/conf/lo/disable_policy
  check "mike: with lo's disable_policy=1 the follower warns that the policy is not checked" \
    grep -q '^kernel warning: .*lo/disable_policy is 1' join5.log
  ip xfrm policy flush
  rc=0
  wait_bounded 10 "$join_pid" || true
  wait "$join_pid" 2>/dev/null || rc=$?
  check "mike: its policy flushed by someone else, the follower stops (status $rc) saying so, and leaves no state ($(mike_states))" \
    test "$rc/$(grep -c 'XFRM policy for UDP to 127.0.0.1:5004 is gone' join5.err || true)/$(mike_states)" = 1/1/0

  # a group that requires source authentication is not followed
  rc=0
  timeout --foreground 60 "$tools/mcsec-join" "${common[@]}" --group signed \
    --certificate pki/rx4.crt --private-key pki/rx4.key --kernel \
    --inner-udp-port 5006 > join6.log 2> join6.err || rc=$?
  check "mike: a group with sam = block is refused (status $rc, names sam = none), nothing installed" \
    test "$rc/$(grep -c 'needs sam = none' join6.err || true)/$(mike_states)/$(mike_policies)" = 1/1/0/0
  kill "$cam3" 2>/dev/null || true
  wait_bounded 30 "$cam3" || true
  provoke XfrmInNoStates $(($(xstat XfrmInNoStates) - no_states))
  for f in join.err join2.err join3.err join4.err join5.err join6.err cam1.err cam2.err cam3.err; do
    [ -s "$f" ] && { echo "$f:"; sed 's/^/  /' "$f"; }
  done
  kill "$controller_pid" 2>/dev/null || true
  popd >/dev/null
  ip xfrm policy flush
  ip xfrm state flush
}
