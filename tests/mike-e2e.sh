#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# MIKE end to end with real processes on loopback: a controller
# (mcsec-controller), members (mike-peer: numbered datagrams through
# mcseckeysrc + mcsecenc/mcsecdec; mcsec-join), the admin tool (mcsecctl).
# Every process runs under `timeout`; everything started is killed at exit.
#
# usage: mike-e2e.sh BUILD_DIR [CASE...]
#   cases: config access traffic newcomer lifetime restart tree tree_unreachable
#   sender_ids wireshark failover-list failover-redirect failover-restart
#   (default: all)
set -euo pipefail
build=$1
shift
src_dir=$(cd "$(dirname "$0")/.." && pwd)
cases=${*:-config access traffic newcomer lifetime restart tree tree_unreachable sender_ids wireshark failover-list failover-redirect failover-restart}
tools=$build/tools
peer=$build/tests/mike-peer
tmp=$(mktemp -d)
pids=()

cleanup() {
  # TERM: `timeout` passes it on to the process it runs; a stopped one
  # (failover-restart makes one) is resumed first, to take it
  resume_stopped "${pids[@]}"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${MIKE_E2E_KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "error at line $LINENO (status $?)" >&2' ERR

export GST_PLUGIN_PATH_1_0=$build/gst
export GST_REGISTRY_1_0=$tmp/registry.bin
export GST_REGISTRY_FORK=no

. "$src_dir/tests/e2e-lib.sh"
gst_registry_ready "$peer"
never_joined() { # never_joined RC OUTPUT: timed out (4), never "joined"
  [ "$1" -eq 4 ] && ! grep -q "^joined" <<<"$2"
}
refused_with() { # refused_with RC WANTED_RC TEXT OUTPUT
  [ "$1" -eq "$2" ] && grep -qF -- "$3" <<<"$4"
}
wait_until() { # wait_until SECONDS COMMAND...: poll until it succeeds; 1 late
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.1
  done
}
. "$src_dir/examples/controller-lib.sh"

cd "$tmp"
"$tools/mcsecctl" pki pki cam1 cam2 rx1 rx2 rx3 rx4 stranger >/dev/null
"$tools/mcsecctl" pki other intruder >/dev/null          # another CA
"$tools/mcsecctl" pki pki --expired oldrx >/dev/null     # same CA, expired
ctl_port=$(free_port SOCK_STREAM)
chan_port=$(free_port SOCK_DGRAM)
{ controller_section "$ctl_port"; cat <<EOF
rejoin-window = 4000

[group video]
address = 239.255.0.1
port = 5004
senders = cam1
receivers = rx1;rx2;rx3;oldrx
activation-delay = 300
deactivation-delay = 1500

[group short]
receivers = rx1
key-lifetime = 2
activation-delay = 100

[group few]
senders = cam1;cam2
sender-id-bits = 8
rekey-on-join = false
rekey-on-leave = false

[group tv]
senders = cam1
receivers = rx1;rx2;rx3;rx4
rekey-channel = 239.255.77.1:$chan_port
rekey-interface = lo
batch-interval = 100
activation-delay = 300
deactivation-delay = 1500
EOF
} > ctl.conf
admin="$tools/mcsecctl --socket $tmp/state/admin.sock"
ctl_pid=
run_controller() {
  # not under timeout: the restart case kills this very process
  start_controller "$tools" ctl.conf || exit 1
  ctl_pid=$controller_pid
  pids+=("$ctl_pid")
}
member() { # member NAME: the credentials of NAME (group $grp, or video;
  # the controllers $ctl_list, or this one)
  [ -n "${grp:-}" ] && echo --rekey-interface "${rekey_if:-lo}"
  echo --controller "${ctl_list:-127.0.0.1:$ctl_port}" --group "${grp:-video}" --ca pki/ca.crt \
    --certificate "pki/$1.crt" --private-key "pki/$1.key"
}
receiver() { # receiver NAME PORT DURATION
  timeout --foreground 60 "$peer" receive $(member "$1") --port "$2" --duration "$3" \
    > "$1.out" 2> "$1.err" &
  pids+=($!)
}
sender() { # sender DURATION RATE TO
  timeout --foreground 60 "$peer" send $(member cam1) --signing-key pki/cam1-sign.key \
    --duration "$1" --rate "$2" --to "$3" > cam1.out 2> cam1.err &
  pids+=($!)
}

run_controller

# ---- configuration errors name the file, the line and the setting ----------
case_config() {
  bad() { # bad NAME EXPECTED SED-EXPRESSION
    local out
    sed -e "$3" ctl.conf > bad.conf
    out=$("$tools/mcsec-controller" --check bad.conf 2>&1) && rc=0 || rc=$?
    check "config: $1 ($out)" refused_with "$((rc != 0))" 1 "$2" "$out"
  }
  bad "unknown cipher" "bad.conf:13: [group video] cipher: unknown cipher" \
    's/^port = 5004$/port = 5004\ncipher = aes-gcm/'
  bad "not a number" "[group video] activation-delay: 'soon' is not a number" \
    's/^activation-delay = 300$/activation-delay = soon/'
  bad "not an Ed25519 key" "bad.conf:6: [controller] update-signing-key:" \
    's/controller-sign.key/controller.key/'
  # its older name, signing-key: still read, with a warning naming the
  # new one; errors name the setting as the file writes it
  bad "not an Ed25519 key (the older name)" "bad.conf:6: [controller] signing-key:" \
    's/controller-sign.key/controller.key/; s/^update-signing-key/signing-key/'
  bad "both names of the update-signing key" \
    "[controller] signing-key: give update-signing-key only" \
    's/^update-signing-key = \(.*\)$/update-signing-key = \1\nsigning-key = \1/'
  sed -e 's/^update-signing-key/signing-key/' ctl.conf > old.conf
  check "config: the older signing-key loads, --check warns and names the new" \
    bash -c "'$tools/mcsec-controller' --check old.conf > old.out 2> old.err &&
      grep -q 'with warnings' old.out &&
      grep -q 'old.conf:6: \[controller\] signing-key: deprecated name: write update-signing-key' old.err"
  bad "missing certificate" "[controller] certificate: missing" \
    '/^certificate/d'
  bad "nobody admitted" "[group short] receivers: the group admits nobody" \
    '/^receivers = rx1$/d'
  bad "rekey channel not multicast" \
    "[group tv] rekey-channel: '10.0.0.1:5100' is not a multicast ADDRESS:PORT" \
    "s/^rekey-channel = .*/rekey-channel = 10.0.0.1:5100/"
  bad "rekey channel without a port" "[group tv] rekey-channel:" \
    "s/^rekey-channel = .*/rekey-channel = 239.255.77.1/"
  bad "key tree without leave rekeys" \
    "[group tv] rekey-on-leave: a key tree group (rekey-channel) rekeys on every membership change" \
    "s/^batch-interval = 100$/batch-interval = 100\nrekey-on-leave = false/"
  bad "no such interface" "[group tv] rekey-interface: no network interface 'nosuch0'" \
    "s/^rekey-interface = lo$/rekey-interface = nosuch0/"
  bad "tree degree" "[group tv] key-tree-degree: '1' is not a number from 2 to 16" \
    "s/^batch-interval = 100$/batch-interval = 100\nkey-tree-degree = 1/"
  bad "misspelled setting" \
    "bad.conf:13: [group video] rekey-on-joins: unknown setting (did you mean 'rekey-on-join'?)" \
    's/^port = 5004$/port = 5004\nrekey-on-joins = false/'
  bad "setting of another section" \
    "[controller] senders: unknown setting (a setting of [group NAME])" \
    's/^rejoin-window = 4000$/rejoin-window = 4000\nsenders = cam1/'
  bad "missing key file" \
    "[controller] private-key: cannot read ./pki/nokey.key: No such file or directory" \
    's#pki/controller.key#pki/nokey.key#'
  bad "key file is a folder" \
    "[controller] private-key: cannot read ./pki: Is a directory" \
    's#pki/controller.key#pki#'
  bad "key file not a key" \
    "[controller] private-key: ./pki/ca.crt is not a PEM private key" \
    's#pki/controller.key#pki/ca.crt#'
  check "config: the test configuration itself is fine" \
    "$tools/mcsec-controller" --check ctl.conf
  # the installed sample, with this test's credentials and identities;
  # its private keys are systemd credentials (${CREDENTIALS_DIRECTORY})
  sed -e "s#/etc/mcsec/#$PWD/pki/#; s#/var/lib/mcsec#$PWD/sample-state#" \
    -e "s#camera-1;camera-2#cam1#" "$src_dir/tools/controller.conf.sample" \
    > sample.conf
  check "config: the sample configuration is valid (its keys as credentials)" \
    env CREDENTIALS_DIRECTORY="$PWD/pki" "$tools/mcsec-controller" \
    --check sample.conf
  check "config: the sample outside systemd names the setting" \
    bash -c "! env -u CREDENTIALS_DIRECTORY '$tools/mcsec-controller' \
      --check sample.conf > nocreds.txt 2>&1 &&
      grep -q 'private-key: \\\${CREDENTIALS_DIRECTORY} is not set' nocreds.txt"
}

# ---- the access matrix ----------------------------------------------------
case_access() {
  local rc out
  join() { timeout --foreground 20 "$tools/mcsec-join" --once --timeout 5 "$@" 2>&1; }
  out=$(join $(member rx1)) && rc=0 || rc=$?
  check "access: listed receiver joins (rc $rc)" [ "$rc" -eq 0 ]
  out=$(join $(member rx1) --role sender --signing-key-file pki/rx1-sign.key) \
    && rc=0 || rc=$?
  check "access: receiver asking to send is refused (rc $rc)" \
    refused_with "$rc" 3 "role-not-allowed" "$out"
  out=$(join $(member stranger)) && rc=0 || rc=$?
  check "access: identity not listed is refused (rc $rc)" \
    refused_with "$rc" 3 "not-authorised" "$out"
  out=$(join $(member rx1) --group nosuch) && rc=0 || rc=$?
  check "access: unknown group is refused (rc $rc)" \
    refused_with "$rc" 3 "unknown-group" "$out"
  out=$(join $(member cam1) --role sender) && rc=0 || rc=$?
  check "access: a sender without a signing key does not start (rc $rc)" \
    refused_with "$rc" 2 "signing-key" "$out"
  local before after
  before=$($admin --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["handshake-failures"])')
  out=$(timeout --foreground 20 "$tools/mcsec-join" --once --timeout 3 \
    --controller "127.0.0.1:$ctl_port" --group video --ca pki/ca.crt \
    --certificate other/intruder.crt --private-key other/intruder.key 2>&1) \
    && rc=0 || rc=$?
  check "access: certificate of another CA never joins (rc $rc)" \
    never_joined "$rc" "$out"
  out=$(join $(member oldrx)) && rc=0 || rc=$?
  check "access: expired certificate never joins (rc $rc)" \
    never_joined "$rc" "$out"
  # no client certificate at all: TLS 1.3 completes on the client side,
  # then the controller's alert ends it before any answer to JOIN
  out=$(timeout --foreground 20 python3 - "$ctl_port" <<'PY' 2>&1
import socket, ssl, struct, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_verify_locations("pki/ca.crt")
ctx.check_hostname = False
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
body = bytes([1, 1, 0, 0]) + struct.pack(">HH", 1, 5) + b"video" + struct.pack(">HHB", 2, 1, 1)
try:
    s.sendall(struct.pack(">I", len(body)) + body)
    data = s.recv(4096)
    print("answer" if data else "closed")
except (ssl.SSLError, OSError) as e:
    print("refused:", e)
PY
)
  check "access: no client certificate gets no answer ($out)" \
    grep -qv "^answer" <<<"$out"
  after=$($admin --json stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["handshake-failures"])')
  check "access: the controller counted 3 failed handshakes ($before -> $after)" \
    [ "$after" -ge $((before + 3)) ]
}

# ---- traffic: rekeys under traffic, an eviction -----------------------------
case_traffic() {
  local p1 p2 evict_spi
  p1=$(free_port SOCK_DGRAM)
  p2=$(free_port SOCK_DGRAM)
  receiver rx1 "$p1" 9
  receiver rx2 "$p2" 9
  sleep 0.7
  sender 7.5 400 "127.0.0.1:$p1,127.0.0.1:$p2"
  sleep 2.5
  $admin rekey video >/dev/null
  sleep 1
  $admin rekey video >/dev/null
  sleep 1
  evict_spi=$($admin --json evict video rx2 | python3 -c 'import json,sys; print("%08x" % json.load(sys.stdin)["spi"])')
  wait_all
  local sent
  sent=$(val cam1.out sent)
  echo "  sent $sent; rx1: $(val rx1.out received) received, $(val rx1.out missing) missing, $(spis_used rx1.out) SPIs; rx2: $(val rx2.out received) received, $(val rx2.out dropped-unknown-spi) unknown-spi"
  check "traffic: rx1 decrypted every datagram between its first and last" \
    [ "$(val rx1.out missing)" -eq 0 ]
  check "traffic: rx1 got all but the last unsigned block ($(val rx1.out received)/$sent)" \
    [ "$(val rx1.out received)" -ge $((sent - 32)) ]
  check "traffic: rx1 decrypted under 4 SPIs (join, 2 rekeys, eviction)" \
    [ "$(spis_used rx1.out)" -ge 4 ]
  check "traffic: rx1 decrypted under the SPI made by the eviction" \
    [ "$(val rx1.out "spi-$evict_spi")" -gt 0 ]
  check "traffic: rx2 was told it is evicted" grep -q "evicted reason=evicted" rx2.out
  check "traffic: rx2 decrypted nothing under the SPI made by the eviction" \
    [ "$(val rx2.out "spi-$evict_spi")" -eq 0 ]
  check "traffic: rx2 dropped what came after the switch (unknown SPI)" \
    [ "$(val rx2.out dropped-unknown-spi)" -gt 100 ]
  check "traffic: rx2 got nothing out of order before" [ "$(val rx2.out missing)" -eq 0 ]
}

# ---- a newcomer cannot read what was sent before it joined -----------------
case_newcomer() {
  local p1 p3 pc
  p1=$(free_port SOCK_DGRAM)
  p3=$(free_port SOCK_DGRAM)
  pc=$(free_port SOCK_DGRAM)
  # record the ciphertext of the first 2 seconds
  timeout --foreground 30 python3 - "$pc" > capture.count <<'PY' &
import socket, sys, time, pickle
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(0.2)
pkts, t0 = [], None
while True:
    try:
        p = s.recv(65536)
    except socket.timeout:
        if t0 and time.time() - t0 > 2:
            break
        continue
    t0 = t0 or time.time()
    pkts.append(p)
    if time.time() - t0 > 2:
        break
pickle.dump(pkts, open("capture.pkl", "wb"))
print(len(pkts))
PY
  pids+=($!)
  receiver rx1 "$p1" 8
  sleep 0.7
  sender 7 300 "127.0.0.1:$p1,127.0.0.1:$p3,127.0.0.1:$pc"
  sleep 3
  receiver rx3 "$p3" 5
  sleep 2.5
  # replay everything recorded before rx3 joined into rx3
  timeout --foreground 20 python3 - "$p3" <<'PY'
import pickle, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for p in pickle.load(open("capture.pkl", "rb")):
    s.sendto(p, ("127.0.0.1", int(sys.argv[1])))
PY
  wait_all
  local captured
  captured=$(cat capture.count)
  echo "  captured $captured early packets; rx3: first seq $(val rx3.out first), $(val rx3.out received) received, $(val rx3.out dropped-unknown-spi) unknown-spi"
  check "newcomer: the recording holds packets ($captured)" [ "$captured" -gt 100 ]
  check "newcomer: rx3 decrypts live traffic" [ "$(val rx3.out received)" -gt 100 ]
  check "newcomer: rx3 decrypted none of the recorded packets (first seq >= $captured)" \
    [ "$(val rx3.out first)" -ge "$captured" ]
  check "newcomer: rx3 dropped the recorded packets as unknown SPI" \
    [ "$(val rx3.out dropped-unknown-spi)" -ge "$captured" ]
  check "newcomer: rx1 lost nothing while rx3 joined" [ "$(val rx1.out missing)" -eq 0 ]
}

# ---- keys that reach their lifetime are replaced ---------------------------
case_lifetime() {
  timeout --foreground 20 "$tools/mcsec-join" $(member rx1) --group short > short.out 2>&1 &
  local p=$!
  pids+=("$p")
  sleep 5.5
  kill -INT "$p"
  wait "$p" 2>/dev/null || true
  local n
  n=$(grep -c '^updated' short.out || true)
  echo "  $n updates in 5.5 s with key-lifetime = 2 s"
  check "lifetime: the group rekeyed on its own at least twice" [ "$n" -ge 2 ]
  check "lifetime: the controller says why" \
    grep -q "group=short reason=lifetime" controller.log
}

# ---- the controller killed (SIGKILL) and restarted under traffic -----------
case_restart() {
  local p1 before_spis
  p1=$(free_port SOCK_DGRAM)
  receiver rx1 "$p1" 11.5
  sleep 0.7
  sender 10 400 "127.0.0.1:$p1"
  sleep 2.5
  kill -9 "$ctl_pid"
  wait "$ctl_pid" 2>/dev/null || true
  sleep 1.5
  run_controller
  wait_all
  local sent
  sent=$(val cam1.out sent)
  echo "  sent $sent; rx1: $(val rx1.out received) received, $(val rx1.out missing) missing, $(spis_used rx1.out) SPIs"
  check "restart: rx1 saw the controller go and come back" \
    grep -q "controller-back" rx1.out
  check "restart: the sender saw the controller go and come back" \
    grep -q "controller-back" cam1.out
  check "restart: no datagram lost across the restart" [ "$(val rx1.out missing)" -eq 0 ]
  check "restart: all but the last unsigned block arrived ($(val rx1.out received)/$sent)" \
    [ "$(val rx1.out received)" -ge $((sent - 32)) ]
  check "restart: keys changed after the restart (>= 2 SPIs used)" \
    [ "$(spis_used rx1.out)" -ge 2 ]
}

# ---- a key tree group: rekeys reach members once, on the rekey channel -----
case_tree() {
  local p1 p2 p3 evict_spi json
  local grp=tv
  p1=$(free_port SOCK_DGRAM)
  p2=$(free_port SOCK_DGRAM)
  p3=$(free_port SOCK_DGRAM)
  # about 1.5 s between the rekeys: each SA carries traffic
  receiver rx1 "$p1" 9.5
  receiver rx2 "$p2" 9.5
  receiver rx3 "$p3" 4 # leaves half way: a leave rekey
  sleep 0.7
  sender 8 400 "127.0.0.1:$p1,127.0.0.1:$p2,127.0.0.1:$p3"
  sleep 1.5
  $admin rekey tv >/dev/null
  sleep 3.3
  evict_spi=$($admin --json evict tv rx2 | python3 -c 'import json,sys; print("%08x" % json.load(sys.stdin)["spi"])')
  wait_all
  json=$($admin --json list)
  tv() { python3 -c 'import json,sys; g=[g for g in json.load(sys.stdin)["groups"] if g["name"]=="tv"][0]; print(eval(sys.argv[1]))' "$1" <<<"$json"; }
  local sent
  sent=$(val cam1.out sent)
  echo "  sent $sent; rx1: $(val rx1.out received) received, $(val rx1.out missing) missing, $(spis_used rx1.out) SPIs; rx2: $(spis_used rx2.out) SPIs, $(val rx2.out dropped-unknown-spi) unknown-spi; controller: $(tv 'g["channel"]') tree $(tv 'g["tree"]') updates-sent $(tv 'g["updates-sent"]')"
  check "tree: rx1 decrypted every datagram between its first and last" \
    [ "$(val rx1.out missing)" -eq 0 ]
  check "tree: rx1 got all but the last unsigned block ($(val rx1.out received)/$sent)" \
    [ "$(val rx1.out received)" -ge $((sent - 32)) ]
  check "tree: rx1 decrypted under 4 SPIs (sender's join, admin, rx3's leave, eviction)" \
    [ "$(spis_used rx1.out)" -ge 4 ]
  check "tree: rx1 decrypted under the SPI made by the eviction" \
    [ "$(val rx1.out "spi-$evict_spi")" -gt 0 ]
  check "tree: rx2 decrypted nothing under the SPI made by the eviction" \
    [ "$(val rx2.out "spi-$evict_spi")" -eq 0 ]
  check "tree: rx2 dropped what came after the switch (unknown SPI)" \
    [ "$(val rx2.out dropped-unknown-spi)" -gt 100 ]
  check "tree: rx3 lost nothing until it left" [ "$(val rx3.out missing)" -eq 0 ]
  check "tree: rx3 followed a rekey on the channel (2 SPIs)" \
    [ "$(spis_used rx3.out)" -ge 2 ]
  check "tree: the rekeys went out on the channel (>= 4)" \
    [ "$(tv 'g["channel"]["rekeys"]')" -ge 4 ]
  check "tree: one update per join over the connections, none per rekey" \
    [ "$(tv 'g["updates-sent"]')" -eq 4 ]
  check "tree: no member needed a repair or a new path" \
    [ "$(tv 'g["channel"]["repairs"] + g["channel"]["resyncs"]')" -eq 0 ]
  check "tree: mcsecctl shows the tree" \
    bash -c "$admin list | grep -q 'key tree: degree 4'"
}

# ---- a member the channel does not reach follows over its connection -------
case_tree_unreachable() {
  local p4 before after direct spi
  local grp=tv rekey_if
  # the channel is sent on lo; joined on another interface, it never arrives
  rekey_if=$(ls /sys/class/net | grep -vx lo | head -1 || true)
  if [ -z "$rekey_if" ]; then
    echo "  SKIP: no network interface besides lo to miss the channel on"
    return
  fi
  chan() { $admin --json list | python3 -c 'import json,sys; g=[g for g in json.load(sys.stdin)["groups"] if g["name"]=="tv"][0]["channel"]; print(eval(sys.argv[1]))' "$1"; }
  polls() { chan 'g["polls"] + g["repairs"]'; }
  before=$(polls)
  direct=$(chan 'g["direct"]')
  p4=$(free_port SOCK_DGRAM)
  receiver rx4 "$p4" 7.5
  sleep 0.7
  sender 6 300 "127.0.0.1:$p4"
  sleep 2
  $admin rekey tv >/dev/null
  sleep 2
  spi=$($admin --json rekey tv | python3 -c 'import json,sys; print("%08x" % json.load(sys.stdin)["spi"])')
  wait_all
  after=$(polls)
  direct=$(($(chan 'g["direct"]') - direct))
  echo "  rx4 (channel joined on $rekey_if): $(val rx4.out received) received, $(val rx4.out missing) missing, $(spis_used rx4.out) SPIs; polls and repairs served: $((after - before)), rekeys sent to it directly: $direct"
  check "tree_unreachable: rx4 lost nothing" [ "$(val rx4.out missing)" -eq 0 ]
  check "tree_unreachable: rx4 followed both rekeys over its connection" \
    [ "$(val rx4.out "spi-$spi")" -gt 0 ]
  check "tree_unreachable: the controller answered its polls" \
    [ "$((after - before))" -gt 2 ]
  check "tree_unreachable: then sent it the rekeys directly" [ "$direct" -ge 2 ]
}

# ---- no Sender-ID twice under one key, however many senders come and go ----
case_sender_ids() {
  local grp=few p
  # cam1 stays; cam2 joins and leaves 270 times: more than the 255
  # Sender-IDs of 8 bits, without a rekey on join or leave
  timeout --foreground 120 "$tools/mcsec-join" $(member cam1) --role sender \
    --signing-key pki/cam1-sign.key > stay.out 2>&1 &
  p=$!
  pids+=("$p")
  sleep 0.5
  for i in $(seq 270); do
    timeout --foreground 10 "$tools/mcsec-join" $(member cam2) --role sender \
      --signing-key pki/cam2-sign.key --once 2>&1 |
      sed -n 's/^joined.*newest-spi=\(0x[0-9a-f]*\).*/\1/p; s/^msa .*sender-id=\([0-9]*\).*/\1/p' |
      paste -sd' ' >> pairs.txt
  done
  kill -INT "$p"
  wait "$p" 2>/dev/null || true
  # cam1's Sender-ID under every SPI it saw
  local sid
  sid=$(sed -n 's/^msa .*sender-id=\([0-9]*\).*/\1/p' stay.out | tail -1)
  grep -o 'newest-spi=0x[0-9a-f]*' stay.out | cut -d= -f2 | sort -u |
    sed "s/\$/ $sid/" >> pairs.txt
  local n unique spis
  n=$(grep -c . pairs.txt)
  unique=$(sort -u pairs.txt | grep -c .)
  spis=$(cut -d' ' -f1 pairs.txt | sort -u | grep -c .)
  echo "  $n (SPI, Sender-ID) pairs, $unique distinct, under $spis SPIs (cam1: Sender-ID $sid)"
  check "sender_ids: every join got its Sender-ID (270 + cam1's)" [ "$n" -ge 271 ]
  check "sender_ids: no Sender-ID twice under one SPI" [ "$unique" -eq "$n" ]
  check "sender_ids: the 8-bit space ran out once: a second key" [ "$spis" -ge 2 ]
}

# ---- mcsecctl wireshark-esp: Wireshark decrypts what mcsec sent ------------
case_wireshark() {
  local out rc up
  out=$($admin wireshark-esp video 2>&1) && rc=0 || rc=$?
  check "wireshark: key export refused unless the controller allows it" \
    refused_with "$rc" 1 "key export is off" "$out"
  if ! command -v tshark >/dev/null; then
    echo "  SKIP: tshark is not installed (make deps installs it)"
    return
  fi
  mkdir -p ws && cd ws && ln -sf ../pki pki
  local ctl_port
  ctl_port=$(free_port SOCK_STREAM)
  up=$(free_port SOCK_DGRAM)
  {
    controller_section "$ctl_port"
    printf 'allow-key-export = true\n\n[group video]\nsenders = cam1\n'
    printf 'receivers = rx1\ncipher = aes-256-gcm\n'
  } > ws.conf
  start_controller "$tools" ws.conf || { cd ..; return; }
  pids+=("$controller_pid")
  # what a capture on the wire holds: the UDP payloads, written as a pcap of
  # raw IPv4 packets (no capture privilege needed)
  timeout --foreground 30 /usr/bin/python3 - "$up" <<'PY' &
import socket, struct, sys, time
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", port))
s.settimeout(1.5)
out = open("cap.pcap", "wb")
out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
n = 0
while True:
    try:
        p, src = s.recvfrom(65535)
    except socket.timeout:
        if n:
            break
        continue
    udp = struct.pack("!HHHH", src[1], port, 8 + len(p), 0) + p
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0,
                     64, 17, 0, socket.inet_aton("127.0.0.1"),
                     socket.inet_aton("127.0.0.1")) + udp
    t = time.time()
    out.write(struct.pack("<IIII", int(t), int(t % 1 * 1e6), len(ip), len(ip)))
    out.write(ip)
    n += 1
out.close()
PY
  local cap=$!
  sleep 0.3
  sender 2 100 "127.0.0.1:$up"
  sleep 1
  "$tools/mcsecctl" --socket "$PWD/state/admin.sock" wireshark-esp video > esp_sa
  wait "$cap" 2>/dev/null || true
  kill "$controller_pid" 2>/dev/null || true
  wait_all
  mkdir -p cfg/wireshark && cp esp_sa cfg/wireshark/esp_sa
  XDG_CONFIG_HOME=$PWD/cfg tshark -r cap.pcap -d "udp.port==$up,udpencap" \
    -o esp.enable_encryption_decode:TRUE \
    -o esp.enable_authentication_check:TRUE \
    -T fields -e esp.icv_good -e esp.decrypted_data > dissected.txt 2>/dev/null || true
  local sent good data all key
  sent=$(val cam1.out sent)
  # every ESP packet (datagrams, and SAM carrier packets without one) opens
  # with a good ICV; the datagrams' bytes are 5a
  good=$(grep -c '^1' dissected.txt || true)
  data=$(grep -c '^1.*5a5a5a5a' dissected.txt || true)
  all=$(grep -c . dissected.txt || true)
  key=$(sed -n 's/^"IPv4",.*,"0x\([0-9a-f]*\)","NULL".*/\1/p' esp_sa)
  echo "  sent $sent, captured $all; Wireshark (tshark) decrypted with a good ICV: $good ($data datagrams)"
  check "wireshark: the export has an AES-256-GCM row (key and salt, 36 bytes)" \
    [ "${#key}" -eq 72 ]
  check "wireshark: tshark decrypts packets with the exported SA" [ "$data" -gt 150 ]
  check "wireshark: ... every one of them, ICV good" [ "$good" -eq "$all" ]
  check "wireshark: the controller logged the export, without the key" \
    bash -c "grep -q 'event=keys-exported group=video' controller.log && ! grep -q '$key' controller.log"
  cd ..
}

# ---- a member given a list of controllers tries them in turn ---------------
case_failover-list() {
  local dead out rc ctl_list
  dead=$(free_port SOCK_STREAM) # nothing listens there: refused at once
  ctl_list="127.0.0.1:$dead,127.0.0.1:$ctl_port"
  out=$(timeout --foreground 20 "$tools/mcsec-join" --once --timeout 10 $(member rx1) 2>&1) \
    && rc=0 || rc=$?
  check "failover-list: the list's second controller takes the member in (rc $rc)" \
    [ "$rc" -eq 0 ]
  check "failover-list: it says which controller ($(grep '^connected' <<<"$out" || true))" \
    grep -qx "connected 127.0.0.1:$ctl_port" <<<"$out"
  # repeated --controller: one list, in order
  ctl_list="127.0.0.1:$dead"
  out=$(timeout --foreground 20 "$tools/mcsec-join" --once --timeout 10 $(member rx1) \
    --controller "127.0.0.1:$ctl_port" 2>&1) && rc=0 || rc=$?
  check "failover-list: --controller repeated makes the list (rc $rc)" \
    grep -qx "connected 127.0.0.1:$ctl_port" <<<"$out"
  # mcseckeysrc (through mike-peer) takes the list too
  ctl_list="127.0.0.1:$dead,127.0.0.1:$ctl_port"
  # (rx3: traffic evicts rx2, durably)
  timeout --foreground 60 "$peer" receive $(member rx3) --port "$(free_port SOCK_DGRAM)" \
    --duration 30 --stats-file list.stats > list.out 2> list.err &
  local p=$!
  pids+=("$p")
  check "failover-list: mcseckeysrc joins through the list" \
    wait_until 15 grep -qs " joined " list.stats
  kill "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  check "failover-list: mcseckeysrc posted no error" \
    bash -c "! grep -q ' error ' list.out"
  check "failover-list: no sanitizer report from mcseckeysrc's process" \
    no_sanitizer_report list.err
  # controllers that all fail (TLS refused: a listener that closes every
  # connection): tried in the list's order, each round once, with a
  # backoff between rounds (200, 400, 800, 1600 ms +-25%: at most 5 rounds
  # in 3 s), not a spin
  local a b
  a=$(free_port SOCK_STREAM)
  b=$(free_port SOCK_STREAM)
  rm -f accepts.txt
  timeout --foreground 30 python3 - "$a" "$b" > accepts.txt <<'PY' &
import select, socket, sys
ls = []
for port in sys.argv[1:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(port)))
    s.listen(16)
    ls.append(s)
print("ready", flush=True)
while True:
    for s in select.select(ls, [], [])[0]:
        c, _ = s.accept()
        print(s.getsockname()[1], flush=True)
        c.close()
PY
  local srv=$!
  wait_until 10 grep -q ready accepts.txt || true
  ctl_list="127.0.0.1:$a,127.0.0.1:$b"
  out=$(timeout --foreground 20 "$tools/mcsec-join" --once --timeout 3 $(member rx1) 2>&1) \
    && rc=0 || rc=$?
  kill "$srv" 2>/dev/null || true
  wait "$srv" 2>/dev/null || true
  local seq n
  seq=$({ grep -v ready accepts.txt || true; } | sed "s/^$a\$/a/; s/^$b\$/b/" |
    paste -sd' ')
  n=$(grep -cv ready accepts.txt || true)
  echo "  3 s of two failing controllers: $n connections ($seq)"
  check "failover-list: no controller of the list took it in (rc $rc)" \
    never_joined "$rc" "$out"
  check "failover-list: both tried, in the list's order, round after round" \
    grep -qE '^a b a b( a b)*( a)?$' <<<"$seq"
  check "failover-list: backoff between rounds: at most 5 rounds in 3 s" \
    [ "$n" -le 10 ]
  wait_all
}

# ---- refusals that are not final, from fake controllers of a cluster -------
# fake_controllers PORT:REASON:TEXT...: TLS listeners with the controller's
# credentials that answer every JOIN with REFUSE REASON (TEXT if not empty);
# REASON 0 closes every connection instead.  Each connection's port is a
# line of ./accepts.txt (after "ready").  Its pid in $fake_pid.
fake_controllers() {
  rm -f accepts.txt # (the wait below must not see the last one's "ready")
  timeout --foreground 60 python3 - "$@" > accepts.txt 2>&1 <<'PY' &
import select, socket, ssl, struct, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_cert_chain("pki/controller.crt", "pki/controller.key")
ctx.load_verify_locations("pki/ca.crt")
ctx.verify_mode = ssl.CERT_REQUIRED
ls = {}
for spec in sys.argv[1:]:
    port, reason, text = spec.split(":", 2)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(port)))
    s.listen(16)
    ls[s] = (int(port), int(reason), text.encode())
def recv_exact(t, n):
    b = b""
    while len(b) < n:
        d = t.recv(n - len(b))
        if not d:
            raise OSError("closed")
        b += d
    return b
print("ready", flush=True)
while True:
    for s in select.select(list(ls), [], [])[0]:
        c, _ = s.accept()
        port, reason, text = ls[s]
        print(port, flush=True)
        if reason == 0:
            c.close()
            continue
        c.settimeout(5)
        try:
            t = ctx.wrap_socket(c, server_side=True)
            recv_exact(t, struct.unpack(">I", recv_exact(t, 4))[0])  # JOIN
            body = bytes([1, 3, 0, 0]) + struct.pack(">HHH", 11, 2, reason)
            if text:
                body += struct.pack(">HH", 12, len(text)) + text
            t.sendall(struct.pack(">I", len(body)) + body)
            t.close()
        except (OSError, ssl.SSLError) as e:
            print("error", e, flush=True)
            c.close()
PY
  fake_pid=$!
  pids+=("$fake_pid")
  wait_until 10 grep -qs ready accepts.txt || true
}
stop_fakes() { kill "$fake_pid" 2>/dev/null || true; wait "$fake_pid" 2>/dev/null || true; }
# accepted A=PORT B=PORT C=PORT: the ports accepts.txt saw, as letters
# (only its port lines: a handshake cut short by the member's --timeout
# adds an "error" line about the same connection, which failed a run once)
accepted() {
  local args=() kv
  for kv in "$@"; do args+=(-e "s/^${kv#*=}\$/${kv%%=*}/"); done
  { grep -E '^[0-9]+$' accepts.txt || true; } | sed "${args[@]}" | paste -sd' '
}

case_failover-redirect() {
  local f1 f2 d out rc ctl_list seq live="127.0.0.1:$ctl_port"
  f1=$(free_port SOCK_STREAM)
  f2=$(free_port SOCK_STREAM)
  d=$(free_port SOCK_STREAM)
  join() { timeout --foreground 20 "$tools/mcsec-join" --once "$@" 2>&1; }
  said() { grep -qxF -- "$1" <<<"$out"; } # said LINE: mcsec-join printed it
  said_not() { ! grep -q -- "$1" <<<"$out"; }
  # a follower names the leader: the member goes there first, skipping the
  # entry in between
  fake_controllers "$f1:9:leader=$live" "$d:0:"
  ctl_list="127.0.0.1:$f1,127.0.0.1:$d,$live"
  out=$(join --timeout 10 $(member rx1)) && rc=0 || rc=$?
  seq=$(accepted a="$f1" d="$d")
  stop_fakes
  check "failover-redirect: not-leader: joined at the leader named (rc $rc)" \
    said "connected $live"
  check "failover-redirect: ... said redirected" \
    said "redirected reason=not-leader text=\"leader=$live\""
  check "failover-redirect: ... refused nothing" said_not "^refused"
  check "failover-redirect: ... without trying the entry in between ($seq)" \
    [ "$seq" = a ]
  # the leader named as a name: matched once resolved
  fake_controllers "$f1:9:leader=localhost:$ctl_port" "$d:0:"
  out=$(join --timeout 10 $(member rx1)) && rc=0 || rc=$?
  seq=$(accepted a="$f1" d="$d")
  stop_fakes
  check "failover-redirect: leader=localhost:PORT is the list's $live (rc $rc)" \
    said "connected $live"
  check "failover-redirect: ... at once ($seq)" [ "$seq" = a ]
  # two controllers that name each other: one redirection per round, then
  # the next entry, then the backoff: no spin
  fake_controllers "$f1:9:leader=127.0.0.1:$f2" "$f2:9:leader=127.0.0.1:$f1" \
    "$d:0:"
  ctl_list="127.0.0.1:$f1,127.0.0.1:$d,127.0.0.1:$f2"
  out=$(join --timeout 3 $(member rx1)) && rc=0 || rc=$?
  seq=$(accepted a="$f1" b="$f2" d="$d")
  stop_fakes
  echo "  3 s between two controllers naming each other (a, b) and a dead one (d): $seq"
  check "failover-redirect: naming each other: never joined (rc $rc)" \
    never_joined "$rc" "$out"
  # rounds go on from the entry after the last one tried: a (its leader b,
  # whose own redirection is not followed) then d; then b (its leader a)
  # then d, ...
  check "failover-redirect: ... each round one redirection, then the next entry" \
    grep -qE '^a b d b a d( b a d)*( b( a( d)?)?)?$' <<<"$seq"
  check "failover-redirect: ... at most 5 rounds in 3 s" \
    [ "$(wc -w <<<"$seq")" -le 15 ]
  # a leader that is not in the list is never followed
  fake_controllers "$f1:9:leader=$live"
  ctl_list="127.0.0.1:$f1"
  out=$(join --timeout 2 $(member rx1)) && rc=0 || rc=$?
  stop_fakes
  check "failover-redirect: a leader outside the list is not followed (rc $rc)" \
    never_joined "$rc" "$out"
  check "failover-redirect: ... though it was told (redirected lines)" \
    grep -q "^redirected reason=not-leader" <<<"$out"
  check "failover-redirect: ... and never connected" said_not "^connected"
  # unavailable: the next controller
  fake_controllers "$f1:10:etcd unreachable"
  ctl_list="127.0.0.1:$f1,$live"
  out=$(join --timeout 10 $(member rx1)) && rc=0 || rc=$?
  stop_fakes
  check "failover-redirect: unavailable: the next controller takes it in (rc $rc)" \
    said "connected $live"
  check "failover-redirect: ... after redirected reason=unavailable" \
    said "redirected reason=unavailable text=\"etcd unreachable\""
  wait_all
}

# ---- the controller dies; the member finds it at the list's other address --
case_failover-restart() {
  local p1 p2 rp ctl_list a_pid b_pid j
  mkdir -p fo && cd fo && ln -sfn ../pki pki
  p1=$(free_port SOCK_STREAM)
  p2=$(free_port SOCK_STREAM)
  rp=$(free_port SOCK_DGRAM)
  conf() { # conf PORT
    controller_section "$1"
    printf 'rejoin-window = 2000\n\n[group video]\nsenders = cam1\n'
    printf 'receivers = rx1;rx2\nactivation-delay = 300\n'
    printf 'deactivation-delay = 1500\n'
  }
  conf "$p1" > a.conf
  conf "$p2" > b.conf
  start_controller "$tools" a.conf ||
    { check "failover-restart: the controller starts" false; cd ..; return; }
  a_pid=$controller_pid
  pids+=("$a_pid")
  ctl_list="127.0.0.1:$p1,127.0.0.1:$p2"
  timeout --foreground 60 "$tools/mcsec-join" $(member rx2) > join.out 2>&1 &
  j=$!
  pids+=("$j")
  timeout --foreground 60 "$peer" receive $(member rx1) --port "$rp" --duration 40 \
    --stats-file rx1.stats > rx1.out 2> rx1.err &
  local rx=$!
  pids+=("$rx")
  timeout --foreground 60 "$peer" send $(member cam1) --signing-key pki/cam1-sign.key \
    --duration 40 --rate 300 --to "127.0.0.1:$rp" --stats-file cam1.stats \
    > cam1.out 2> cam1.err &
  local tx=$!
  pids+=("$tx")
  check "failover-restart: the members joined the list's first controller" \
    wait_until 15 bash -c "grep -qs ' joined ' cam1.stats &&
      grep -qs '^received=[1-9]' rx1.stats &&
      grep -qx 'connected 127.0.0.1:$p1' join.out"
  kill -9 "$a_pid"
  wait "$a_pid" 2>/dev/null || true
  # the same controller (its state) back at the list's second address
  start_controller "$tools" b.conf ||
    { check "failover-restart: the controller restarts" false; cd ..; return; }
  b_pid=$controller_pid
  pids+=("$b_pid")
  check "failover-restart: mcsec-join found it there" \
    wait_until 20 grep -qx "connected 127.0.0.1:$p2" join.out
  check "failover-restart: so did the sender and the receiver (controller-back)" \
    wait_until 20 bash -c "grep -q ' controller-back ' cam1.stats &&
      grep -q ' controller-back ' rx1.stats"
  check "failover-restart: the receiver decrypts under the new controller's SA" \
    wait_until 20 bash -c "[ \$(grep -cE '^spi-[0-9a-f]+=[1-9]' rx1.stats) -ge 2 ]"
  kill "$tx" 2>/dev/null || true
  wait "$tx" 2>/dev/null || true
  kill "$rx" 2>/dev/null || true
  wait "$rx" 2>/dev/null || true
  echo "  sent $(val cam1.out sent); rx1: $(val rx1.out received) received, $(val rx1.out missing) missing, $(spis_used rx1.out) SPIs"
  check "failover-restart: no datagram lost across the failover" \
    [ "$(val rx1.out missing)" -eq 0 ]
  # a controller that goes silent (stopped, its connections open): after
  # MCSEC_MIKE_DEAD_MS the member tries the list's next one, here another
  # controller (its own state) at the first address
  local c_pid
  kill -STOP "$b_pid"
  mkdir -p c && cd c && ln -sfn ../pki pki
  conf "$p1" > c.conf # its state is c/state
  if ! start_controller "$tools" c.conf; then
    check "failover-restart: another controller starts" false
    kill -9 "$b_pid"
    cd ../..
    return
  fi
  c_pid=$controller_pid
  pids+=("$c_pid")
  cd ..
  check "failover-restart: a silent controller is left for the next one" \
    wait_until 20 bash -c "[ \$(grep -cx 'connected 127.0.0.1:$p1' join.out) -ge 2 ]"
  kill -9 "$b_pid" 2>/dev/null || true
  kill "$j" "$c_pid" 2>/dev/null || true
  wait "$b_pid" "$j" "$c_pid" 2>/dev/null || true
  echo "  mcsec-join: $(grep -E '^(connected|connection-lost)' join.out | paste -sd'|')"
  check "failover-restart: mcsec-join said why it left each" \
    bash -c "grep -q '^connection-lost TLS: unexpected eof' join.out &&
      grep -q '^connection-lost the controller went silent' join.out"
  check "failover-restart: no sanitizer report from the members" \
    bash -c "! grep -E 'Sanitizer|runtime error' join.out &&
      ! grep -E 'ERROR: AddressSanitizer|runtime error' rx1.err cam1.err"
  pids=("$ctl_pid")
  cd ..
}

wait_all() { # every member of the case
  for p in "${pids[@]}"; do
    [ "$p" = "$ctl_pid" ] && continue
    wait "$p" 2>/dev/null || true
  done
  pids=("$ctl_pid")
}

for c in $cases; do
  echo "== $c"
  "case_$c"
done
# every member's output (the controller's is checked at its stop)
check "no member process reported a sanitizer error or a leak" \
  no_sanitizer_report "$tmp"/*.err "$tmp"/*.out
if [ "$failures" -gt 0 ]; then
  echo "$failures checks failed; controller log:"
  tail -40 "$tmp/controller.log"
  for f in "$tmp"/*.out "$tmp"/*.err; do echo "--- $f"; cat "$f"; done
  exit 1
fi
echo "all checks passed"
