#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Interop with the Linux kernel's IPsec (issue 16), against Debian 12's
# stock kernel booted in a VM (tests/kernel-vm/vm-run.sh: the build
# machines' kernel has no ESP).  One boot runs every case, on 127.0.0.1,
# with lo made to check inbound policies (disable_policy=0: by default lo
# checks none, and a policy would prove nothing).  Every command given to
# the kernel is printed; docs/linux-ipsec.md shows the same ones.
#
# nh253: for each of mcsecenc's five suites, a gst-launch-1.0 sender
#   (multifilesrc ! mcsecenc ! udpsink, a static key, no signing key, so
#   Next Header 253 and the bare datagram) sends 40 datagrams of 1 to 8000
#   bytes to a kernel ESP-in-UDP socket on 127.0.0.1 (UDP_ENCAP_ESPINUDP);
#   the kernel holds a transport-mode XFRM state with the SPI and key
#   material (`ip xfrm state ... encap espinudp`) and an inbound policy for
#   protocol 253 that requires ESP; it decrypts and authenticates every
#   packet, and the datagrams arrive on a raw IP socket for protocol 253
#   byte for byte, in order; nothing arrives undecrypted on the
#   encapsulation socket; `ip -s xfrm state` counts 40 packets, no replay
#   or integrity failures.  Then a plain protocol-253 packet (no ESP) must
#   be refused by the policy.
# nh17: the same five suites with `mcsecenc inner-udp-port=5004` (Next
#   Header 17, an inner UDP header with checksum 0): an inbound policy for
#   UDP to port 5004 only (not the outer ESP-in-UDP packet to 4500), and
#   the datagrams arrive on an ordinary UDP socket bound to 127.0.0.1:5004,
#   from 127.0.0.1:5004, byte for byte, in order; a plain UDP datagram to
#   5004 is refused by the policy.  The pitfalls of docs/linux-ipsec.md:
#   with lo's default disable_policy=1 the plain datagram is delivered; an
#   inbound policy for all UDP (no port) also matches the outer ESP-in-UDP
#   packets, and all 40 are dropped (XfrmInTmplMismatch) undecrypted.
# senders: two mcsecenc senders (Sender-IDs 1 and 2, one after the other,
#   inner-udp-port=5004): on one SA with one kernel state, the kernel's one
#   replay window takes the first sender's 40 datagrams and refuses all 40
#   of the second's as replays; with spi-per-sender (docs/wire-format.md
#   10.3: SPI base | Sender-ID) and a state per sender, all 80 arrive, each
#   state counting 40 packets and no replay.
# kernel-tx: the kernel refuses `flag esn` with replay-window 0.  The
#   kernel encrypts, mcsecdec sa-type=standard decrypts.  A Python sender
#   sends the 40 datagrams to 127.0.0.1:5006; an outbound transport-mode
#   state and a `dir out` policy for UDP to 5006 make them
#   ESP (lo made to apply outbound policies: disable_xfrm=0).  ESP in UDP
#   (`encap espinudp 4601 4600`): the packets reach a plain UDP socket on
#   4600 (gst-launch-1.0 udpsrc, no encapsulation option, so the kernel
#   leaves them alone) and mcsecdec passes exactly the datagrams sent (Next
#   Header 17, the inner UDP header stripped): aes-128-gcm,
#   chacha20-poly1305, aes-128-gmac; the same three with ESN (`flag esn`,
#   replay-window 32, the output sequence number started at 2^32 - 24 so
#   the 40 packets cross 2^32) and mcsecdec esn=true; then plain ESP (IP
#   protocol 50), aes-256-gcm, and aes-256-gmac with ESN: a raw socket for
#   protocol 50 captures the kernel's packets, the IPv4 header is checked
#   and stripped and the ESP packets go to mcsecdec through files
#   (multifilesrc).  On lo the kernel would also take its own ESP as input
#   and decrypt it with the same state; so that this case tests mcsecdec
#   alone, the state and policy carry `mark 1` (the sender's SO_MARK) and
#   the state `output-mark 2`: the packets leave marked 2, and on input no
#   state matches (XfrmInNoStates counts each) and nothing reaches the UDP
#   port in plaintext (checked).
# mike: MIKE keys for the kernel, `mcsec-join --kernel` following a group
#   through its rekeys (tests/kernel-mike.sh, where the case is described).
# Last, /proc/net/xfrm_stat: no error counter moved but those the cases
# provoke on purpose (XfrmInTmplMismatch, XfrmInNoStates,
# XfrmInStateSeqError), by exactly as many.
#
# usage: kernel-ipsec.sh BUILD_DIR [CASE...]          (boots the VM, runs
#          the cases, default all: nh253 nh17 senders kernel-tx mike)
#        kernel-ipsec.sh --in-vm BUILD_DIR [CASE...]  (inside the VM, as root)
set -euo pipefail
src_dir=$(cd "$(dirname "$0")/.." && pwd -P)
all_cases="nh253 nh17 senders kernel-tx mike"
if [ "${1:-}" != --in-vm ]; then
  [ $# -ge 1 ] || { echo "usage: kernel-ipsec.sh BUILD_DIR [CASE...]" >&2; exit 2; }
  build=$(cd "$1" && pwd -P)
  shift
  for c in "$@"; do
    case " $all_cases " in *" $c "*) ;; *) echo "no case $c ($all_cases)" >&2; exit 2 ;; esac
  done
  exec "$src_dir/tests/kernel-vm/vm-run.sh" "$build" \
    "$src_dir/tests/kernel-ipsec.sh" --in-vm "$build" "$@"
fi

build=$2
shift 2
cases=${*:-$all_cases}
[ "${VM_RUN:-}" = 1 ] || { echo "--in-vm: only inside vm-run.sh's VM" >&2; exit 2; }
. "$src_dir/tests/e2e-lib.sh"
. "$src_dir/tests/kernel-mike.sh"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip xfrm policy flush 2>/dev/null || true
  ip xfrm state flush 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "kernel $(uname -r) ($VM_ACCEL), cases: $cases"
# lo checks no inbound policy by default (disable_policy=1): here it must,
# or the policies below would prove nothing; nor does it apply outbound
# ones (disable_xfrm=1): the kernel would send the datagrams of kernel-tx
# unencrypted
echo 0 > /proc/sys/net/ipv4/conf/lo/disable_policy
echo 0 > /proc/sys/net/ipv4/conf/lo/disable_xfrm
keygen=$build/tools/mcsec-keygen
port=4500 sport=4501 n=40

# GStreamer: the plugin under test and the four system plugins the
# pipelines and mike-peer use (a registry of five plugins is quick to
# build under emulation)
sysdir=$(pkg-config --variable=pluginsdir gstreamer-1.0 2>/dev/null ||
  echo /usr/lib/x86_64-linux-gnu/gstreamer-1.0)
mkdir -p "$tmp/plugins"
for p in coreelements multifile udp app; do
  ln -s "$sysdir/libgst$p.so" "$tmp/plugins/"
done
export GST_PLUGIN_SYSTEM_PATH_1_0=$tmp/plugins
export GST_PLUGIN_PATH_1_0=$build/gst
export GST_REGISTRY_1_0=$tmp/registry.bin
export XDG_STATE_HOME=$tmp/state

# the suites: mcsecenc's cipher property, and the kernel's name of each
declare -A aead=(
  [aes-128-gcm]='rfc4106(gcm(aes))'
  [aes-256-gcm]='rfc4106(gcm(aes))'
  [chacha20-poly1305]='rfc7539esp(chacha20,poly1305)'
  [aes-128-gmac]='rfc4543(gcm(aes))'
  [aes-256-gmac]='rfc4543(gcm(aes))'
)
all_suites=$(printf '%s\n' "${!aead[@]}" | sort)
suites=$(timeout --foreground 120 gst-inspect-1.0 mcsecenc |
  sed -n '/^  cipher /,/^  [a-z]/p' | sed -n 's/^ *([0-9]*): \([a-z0-9-]*\) .*/\1/p')
echo "mcsecenc's suites:" $suites
check "mcsecenc has the five suites this test knows" \
  test "$(echo $suites | tr ' ' '\n' | sort | tr '\n' ' ')" = \
  "$(echo "$all_suites" | tr '\n' ' ')"

# the datagrams: every padding length, small, MTU-sized and one of 8000
python3 - "$tmp" "$n" <<'PY'
import sys
d, n = sys.argv[1], int(sys.argv[2])
sizes = list(range(1, 17)) + [100, 101, 102, 103, 255, 256, 257, 258,
    1000, 1001, 1002, 1003, 1396, 1397, 1398, 1399, 1400, 1401, 1402, 1403,
    1472, 2000, 4000, 8000]
assert len(sizes) == n
for i, s in enumerate(sizes):
    body = bytes(((i * 31 + j * 7) & 0xff) for j in range(s))
    hdr = b"D%03d" % i
    open("%s/d%03d.bin" % (d, i), "wb").write((hdr + body)[:s])
PY

# xstat NAME: a counter of /proc/net/xfrm_stat (CONFIG_XFRM_STATISTICS)
xstat() { awk -v k="$1" '$1 == k { print $2 }' /proc/net/xfrm_stat; }
# the error counters the cases provoke on purpose, added up as they go
declare -A provoked=()
# provoke NAME COUNT: COUNT more of xfrm_stat's NAME are expected
provoke() { provoked[$1]=$((${provoked[$1]:-0} + $2)); }

# make_key SUITE: a key file $tmp/SUITE.key (mcsec-keygen) and its key
# material in $key as the kernel takes it (0x..., key || salt)
make_key() {
  rm -f "$tmp/$1.key"
  "$keygen" --cipher "$1" --output "$tmp/$1.key"
  # the key material: the file's line of hex (a "cipher=" line precedes)
  key=0x$(grep -iE '^[0-9a-f[:space:]]+$' "$tmp/$1.key" | tr -d ' \n\t')
  case "$1" in aes-128-*) bits=160 ;; *) bits=288 ;; esac
  [ $(((${#key} - 2) * 4)) -eq "$bits" ] ||
    { echo "no $bits-bit key material in $tmp/$1.key (${#key} characters)" >&2; exit 1; }
}

# xfrm ARGS...: `ip xfrm ARGS`, printed (the key material shortened)
xfrm() {
  echo "  ip xfrm $*" | sed -E 's/0x[0-9a-f]{40,}/0xKEY/'
  ip xfrm "$@"
}

# receiver KIND RESULT [REPS]: the kernel's ESP-in-UDP socket on 127.0.0.1:$port
# and where the kernel delivers the plaintext: KIND 253, a raw socket for
# protocol 253, or udp, an ordinary UDP socket on 127.0.0.1:5004; writes
# "ready" once both are open, then collects until $n datagrams or 3 s of
# silence, or 1 s after RESULT.stop appears when nothing came (at most 120
# s), and writes what it got (REPS times the $n datagrams expected): the datagrams (in
# order; the raw socket's IP header checked and removed, the UDP socket's
# source address checked) and anything that reached the encapsulation
# socket itself (undecrypted)
receiver() {
  timeout --foreground 150 python3 - "$1" "$2" "$tmp" "$n" "$port" "${3:-1}" <<'PY' &
import os, select, socket, sys, time
kind, out, d, n, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
reps = int(sys.argv[6])
n0, n = n, n * reps
UDP_ENCAP, UDP_ENCAP_ESPINUDP = 100, 2
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", port))
u.setsockopt(socket.IPPROTO_UDP, UDP_ENCAP, UDP_ENCAP_ESPINUDP)
if kind == "253":
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, 253)
else:
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.bind(("127.0.0.1", 5004))
r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
open(out + ".ready", "w").close()
got, raw_udp, bad_hdr = [], 0, 0
end = time.monotonic() + 120
quiet = None
while len(got) < n and time.monotonic() < end:
    ready, _, _ = select.select([u, r], [], [], 0.5)
    if not ready:
        if quiet is not None and time.monotonic() > quiet:
            break
        if quiet is None and os.path.exists(out + ".stop"):
            quiet = time.monotonic() + 1  # the sender is done, nothing came
        continue
    quiet = time.monotonic() + 3
    for s in ready:
        p, addr = s.recvfrom(70000)
        if s is u:
            raw_udp += 1
            continue
        if kind == "253":
            ihl = (p[0] & 15) * 4
            if (p[9] != 253 or p[12:16] != socket.inet_aton("127.0.0.1")
                    or p[16:20] != socket.inet_aton("127.0.0.1")):
                bad_hdr += 1
            p = p[ihl:]
        elif addr != ("127.0.0.1", 5004):
            bad_hdr += 1
        got.append(p)
want = [open("%s/d%03d.bin" % (d, i), "rb").read() for i in range(n0)] * reps
with open(out, "w") as f:
    print("received=%d" % len(got), file=f)
    print("in-order=%d" % sum(1 for a, b in zip(got, want) if a == b), file=f)
    print("intact=%d" % sum(1 for g in got if g in want), file=f)
    print("bad-header=%d" % bad_hdr, file=f)
    print("undecrypted=%d" % raw_udp, file=f)
    for i, g in enumerate(got[:n]):
        if i >= len(want) or g != want[i]:
            print("first-mismatch=%d len=%d head=%s" % (i, len(g), g[:8].hex()),
                  file=f)
            break
PY
  pids+=($!)
}

# wait_file FILE SECONDS: FILE exists within SECONDS
wait_file() {
  local end=$((SECONDS + $2))
  while [ ! -e "$1" ] && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
  [ -e "$1" ]
}

# state_fields [mark 1]: the counters of `ip -s xfrm state` for $spi, in
# st_packets, st_seq, st_oseq, st_oseq_hi, st_replay, st_failed, st_too_old
# (the stats' replay-window: behind the window) (-1: not shown)
st_packets=-1 st_seq=-1 st_oseq=-1 st_oseq_hi=-1 st_replay=-1 st_failed=-1 st_too_old=-1
state_fields() {
  local t f re
  t=$(ip -s xfrm state get src 127.0.0.1 dst 127.0.0.1 proto esp spi "$spi" "$@")
  for f in 'packets ([0-9]+)\(packets\)' 'seq anti-replay context: seq (0x[0-9a-f]+)' \
    'oseq [ ,]oseq (0x[0-9a-f]+)' 'oseq_hi oseq-hi (0x[0-9a-f]+)' \
    'replay replay-window [0-9]+ replay ([0-9]+)' 'failed failed ([0-9]+)' \
    'too_old replay-window ([0-9]+) replay [0-9]'; do
    re=${f#* }
    if [[ $t =~ $re ]]; then
      printf -v "st_${f%% *}" '%d' "${BASH_REMATCH[1]}"
    else
      printf -v "st_${f%% *}" '%d' -1
    fi
  done
}

# send_to_kernel KIND SUITE [MCSECENC-OPTION...]: receiver KIND $tmp/rx,
# then the $n datagrams through mcsecenc (SPI $spi_n, key $tmp/SUITE.key)
# to 127.0.0.1:$port from port $sport, once for each Sender-ID of
# $sender_ids (default 5), one sender after the other; the receiver's
# result in $tmp/rx
send_to_kernel() {
  local kind=$1 suite=$2 rx sid ids
  read -ra ids <<< "${sender_ids:-5}"
  rm -f "$tmp/rx"*
  receiver "$kind" "$tmp/rx" "${#ids[@]}"
  rx=${pids[-1]}
  wait_file "$tmp/rx.ready" 60 || echo "the receiver did not start in 60 s"
  for sid in "${ids[@]}"; do
    timeout --foreground 120 gst-launch-1.0 -q multifilesrc location="$tmp/d%03d.bin" \
        index=0 stop-index=$((n - 1)) \
      ! mcsecenc cipher="$suite" key-file="$tmp/$suite.key" spi="$spi_n" \
        sender-id="$sid" counter-file="$tmp/$suite.$kind.$spi_n.$sid.ctr" "${@:3}" \
      ! udpsink host=127.0.0.1 port="$port" bind-port="$sport" sync=false \
      > "$tmp/tx.log" 2>&1 || { echo "sender failed:"; cat "$tmp/tx.log"; }
  done
  touch "$tmp/rx.stop"
  wait_bounded 150 "$rx" || true
  cat "$tmp/rx" 2>/dev/null || echo "(the receiver wrote nothing)"
}

# ---------------------------------------------------------------------------
# mcsecenc -> the kernel (ESP in UDP): KIND 253 (Next Header 253, the raw
# socket) or 17 (inner-udp-port=5004, a UDP socket)
kernel_rx() {
  local kind=$1 suite spi_n enc_opts=() policy_sel
  if [ "$kind" = 253 ]; then
    spi_n=$((0x1100)) policy_sel=(proto 253)
  else
    spi_n=$((0x1200)) policy_sel=(proto udp dport 5004) enc_opts=(inner-udp-port=5004)
  fi
  for suite in $all_suites; do
    spi_n=$((spi_n + 1))
    spi=$(printf '0x%08x' "$spi_n")
    make_key "$suite"
    echo "== nh$kind $suite"
    # transport mode, ESP in UDP from the sender's port to the socket's
    xfrm state add src 127.0.0.1 dst 127.0.0.1 proto esp spi "$spi" \
      mode transport replay-window 32 aead "${aead[$suite]}" "$key" 128 \
      encap espinudp "$sport" "$port" 0.0.0.0
    # what arrives as protocol 253 (or UDP to 5004) must have come through
    # ESP; the outer packets (UDP to $port) are not the policy's business
    xfrm policy add src 127.0.0.1/32 dst 127.0.0.1/32 "${policy_sel[@]}" dir in \
      tmpl src 127.0.0.1 dst 127.0.0.1 proto esp mode transport

    send_to_kernel "$kind" "$suite" "${enc_opts[@]}"
    if [ "$kind" = 253 ]; then
      check "nh253 $suite: $n datagrams decrypted by the kernel, in order, byte for byte" \
        test "$(val "$tmp/rx" in-order)" = "$n"
      check "nh253 $suite: nothing else on the raw socket, IP headers 127.0.0.1 proto 253" \
        test "$(val "$tmp/rx" received)/$(val "$tmp/rx" bad-header)" = "$n/0"
    else
      check "nh17 $suite: $n datagrams decrypted by the kernel on the UDP socket 127.0.0.1:5004, in order, byte for byte" \
        test "$(val "$tmp/rx" in-order)" = "$n"
      check "nh17 $suite: nothing else on the UDP socket, every one from 127.0.0.1:5004" \
        test "$(val "$tmp/rx" received)/$(val "$tmp/rx" bad-header)" = "$n/0"
    fi
    check "nh$kind $suite: nothing undecrypted on the ESP-in-UDP socket" \
      test "$(val "$tmp/rx" undecrypted)" = 0
    state_fields
    echo "ip -s xfrm state: packets $st_packets seq $st_seq replay $st_replay failed $st_failed"
    check "nh$kind $suite: the state counts $n packets, highest sequence number $n" \
      test "$st_packets/$st_seq" = "$n/$n"
    check "nh$kind $suite: the state counts no replay or integrity failure" \
      test "$st_replay/$st_failed" = 0/0
    ip xfrm policy flush
    ip xfrm state flush
  done

  # the policy is what makes the delivery trustworthy: a plain packet is
  # refused (XfrmInTmplMismatch)
  ip xfrm policy add src 127.0.0.1/32 dst 127.0.0.1/32 "${policy_sel[@]}" dir in \
    tmpl src 127.0.0.1 dst 127.0.0.1 proto esp mode transport
  local before plain mismatch
  before=$(xstat XfrmInTmplMismatch)
  plain=$(timeout --foreground 30 python3 - "$kind" <<'PY'
import socket, sys
body = b"plain, no ESP"
lo = socket.inet_aton("127.0.0.1")
if sys.argv[1] == "253":
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, 253)
    # IPPROTO_RAW with our own header: a sender that receives nothing itself
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    hdr = bytes([0x45, 0, 0, 20 + len(body), 0, 0, 0, 0, 64, 253, 0, 0]) + lo + lo
    s.sendto(hdr + body, ("127.0.0.1", 0))
else:
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.bind(("127.0.0.1", 5004))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(body, ("127.0.0.1", 5004))
r.settimeout(2)
try:
    r.recv(2000)
    print("delivered")
except socket.timeout:
    print("refused")
PY
)
  mismatch=$(($(xstat XfrmInTmplMismatch) - before))
  provoke XfrmInTmplMismatch 1
  check "nh$kind: a plain packet (no ESP) is refused by the inbound policy ($plain, XfrmInTmplMismatch +$mismatch)" \
    test "$plain/$mismatch" = refused/1
  ip xfrm policy flush
  [ "$kind" = 17 ] || return 0

  # the pitfalls of docs/linux-ipsec.md: lo's default (disable_policy=1)
  # lets a plain datagram through the same policy
  echo 1 > /proc/sys/net/ipv4/conf/lo/disable_policy
  xfrm policy add src 127.0.0.1/32 dst 127.0.0.1/32 proto udp dport 5004 dir in \
    tmpl src 127.0.0.1 dst 127.0.0.1 proto esp mode transport
  plain=$(timeout --foreground 30 python3 - <<'PY'
import socket
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r.bind(("127.0.0.1", 5004))
r.settimeout(2)
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"plain", ("127.0.0.1", 5004))
try:
    r.recv(2000)
    print("delivered")
except socket.timeout:
    print("refused")
PY
)
  echo 0 > /proc/sys/net/ipv4/conf/lo/disable_policy
  check "nh17 pitfall: with lo's default disable_policy=1 the policy is not checked (a plain datagram $plain)" \
    test "$plain" = delivered
  ip xfrm policy flush

  # an inbound policy for all UDP also matches the outer ESP-in-UDP
  # packets, which are not ESP-protected themselves: all are dropped
  # before the encapsulation socket sees them
  suite=aes-128-gcm spi_n=$((0x1210))
  spi=$(printf '0x%08x' "$spi_n")
  make_key "$suite"
  echo "== nh17 pitfall: a policy for all UDP"
  xfrm state add src 127.0.0.1 dst 127.0.0.1 proto esp spi "$spi" \
    mode transport replay-window 32 aead "${aead[$suite]}" "$key" 128 \
    encap espinudp "$sport" "$port" 0.0.0.0
  xfrm policy add src 127.0.0.1/32 dst 127.0.0.1/32 proto udp dir in \
    tmpl src 127.0.0.1 dst 127.0.0.1 proto esp mode transport
  before=$(xstat XfrmInTmplMismatch)
  send_to_kernel 17 "$suite" "${enc_opts[@]}"
  mismatch=$(($(xstat XfrmInTmplMismatch) - before))
  provoke XfrmInTmplMismatch "$mismatch"
  state_fields
  check "nh17 pitfall: a policy for all UDP drops every ESP-in-UDP packet (received $(val "$tmp/rx" received), undecrypted $(val "$tmp/rx" undecrypted), state packets $st_packets, XfrmInTmplMismatch +$mismatch)" \
    test "$(val "$tmp/rx" received)/$(val "$tmp/rx" undecrypted)/$st_packets/$mismatch" = "0/0/0/$n"
  ip xfrm policy flush
  ip xfrm state flush
}

# ---------------------------------------------------------------------------
# two mcsecenc senders (Sender-IDs 1 and 2, one after the other, each from
# sequence number 1) -> the kernel, Next Header 17
two_senders() {
  local suite=aes-128-gcm sender_ids="1 2" base sid
  make_key "$suite"
  # one state for the group SA: the kernel's one replay window per SA
  # takes the first sender's 40 packets and refuses all of the second's
  spi_n=$((0x1220))
  spi=$(printf '0x%08x' "$spi_n")
  echo "== senders: two senders on one SA, one kernel state"
  xfrm state add src 127.0.0.1 dst 127.0.0.1 proto esp spi "$spi" \
    mode transport replay-window 32 aead "${aead[$suite]}" "$key" 128 \
    encap espinudp "$sport" "$port" 0.0.0.0
  xfrm policy add src 127.0.0.1/32 dst 127.0.0.1/32 proto udp dport 5004 dir in \
    tmpl src 127.0.0.1 dst 127.0.0.1 proto esp mode transport
  local seq_errors
  seq_errors=$(xstat XfrmInStateSeqError)
  send_to_kernel 17 "$suite" inner-udp-port=5004
  seq_errors=$(($(xstat XfrmInStateSeqError) - seq_errors))
  provoke XfrmInStateSeqError "$seq_errors"
  state_fields
  echo "ip -s xfrm state: packets $st_packets seq $st_seq replay $st_replay" \
    "behind the window $st_too_old failed $st_failed"
  check "senders, one state: the kernel delivers the first sender's $n datagrams only" \
    test "$(val "$tmp/rx" received)/$(val "$tmp/rx" in-order)" = "$n/$n"
  check "senders, one state: the second sender's $n refused as replays (replay $st_replay + behind the window $st_too_old, XfrmInStateSeqError +$seq_errors)" \
    test "$st_packets/$((st_replay + st_too_old))/$st_failed/$seq_errors" = "$n/$n/0/$n"
  ip xfrm policy flush
  ip xfrm state flush

  # per-sender SPIs (wire-format.md 10.3): SPI base | Sender-ID, a kernel
  # state for each with the group's key, a replay window for each
  base=$((0x00130000))
  spi_n=$base
  echo "== senders: spi-per-sender, a kernel state per sender"
  for sid in $sender_ids; do
    xfrm state add src 127.0.0.1 dst 127.0.0.1 proto esp \
      spi "$(printf '0x%08x' $((base | sid)))" \
      mode transport replay-window 32 aead "${aead[$suite]}" "$key" 128 \
      encap espinudp "$sport" "$port" 0.0.0.0
  done
  xfrm policy add src 127.0.0.1/32 dst 127.0.0.1/32 proto udp dport 5004 dir in \
    tmpl src 127.0.0.1 dst 127.0.0.1 proto esp mode transport
  send_to_kernel 17 "$suite" inner-udp-port=5004 spi-per-sender=true
  check "senders, spi-per-sender: the kernel delivers both senders' $n datagrams, in order, byte for byte" \
    test "$(val "$tmp/rx" received)/$(val "$tmp/rx" in-order)" = "$((2 * n))/$((2 * n))"
  check "senders, spi-per-sender: nothing undecrypted on the ESP-in-UDP socket" \
    test "$(val "$tmp/rx" undecrypted)" = 0
  for sid in $sender_ids; do
    spi=$(printf '0x%08x' $((base | sid)))
    state_fields
    echo "ip -s xfrm state $spi: packets $st_packets seq $st_seq replay $st_replay" \
      "behind the window $st_too_old failed $st_failed"
    check "senders, spi-per-sender: the state of SPI $spi counts $n packets up to sequence number $n, no replay or failure" \
      test "$st_packets/$st_seq/$st_replay/$st_too_old/$st_failed" = "$n/$n/0/0/0"
  done
  ip xfrm policy flush
  ip xfrm state flush
}

# ---------------------------------------------------------------------------
# the kernel -> mcsecdec sa-type=standard

# send_datagrams MARK: the $n datagrams from a UDP socket (SO_MARK MARK
# unless 0) to 127.0.0.1:5006, 5 ms apart
send_datagrams() {
  timeout --foreground 60 python3 - "$tmp" "$n" "$1" <<'PY'
import socket, sys, time
d, n, mark = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if mark:
    s.setsockopt(socket.SOL_SOCKET, 36, mark)  # SO_MARK
for i in range(n):
    s.sendto(open("%s/d%03d.bin" % (d, i), "rb").read(), ("127.0.0.1", 5006))
    time.sleep(0.005)
PY
}

# compare DIR RESULT: the files DIR/o000.bin... (one per datagram out of
# mcsecdec) against the datagrams sent
compare() {
  python3 - "$1" "$2" "$tmp" "$n" <<'PY'
import os, sys
od, out, d, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
got = []
while os.path.exists("%s/o%03d.bin" % (od, len(got))):
    got.append(open("%s/o%03d.bin" % (od, len(got)), "rb").read())
want = [open("%s/d%03d.bin" % (d, i), "rb").read() for i in range(n)]
with open(out, "w") as f:
    print("received=%d" % len(got), file=f)
    print("in-order=%d" % sum(1 for a, b in zip(got, want) if a == b), file=f)
    for i, g in enumerate(got[:n]):
        if i >= len(want) or g != want[i]:
            print("first-mismatch=%d len=%d head=%s" % (i, len(g), g[:8].hex()),
                  file=f)
            break
PY
}

# dec_stats LOG: mcsecdec's counters from its last stats message
dec_stats() {
  grep 'x-mcsec-dec-stats' "$1" | tail -n1 | sed 's/, sas=.*//' |
    grep -oE '(received|accepted|dropped[a-z-]*)=\(guint64\)[1-9][0-9]*' |
    sed 's/(guint64)//' | tr '\n' ' '
}

# kernel_tx SUITE udp|esp ESN(0|1): the kernel encrypts the datagrams,
# mcsecdec decrypts them
kernel_tx() {
  local suite=$1 encap=$2 esn=$3 name spi_n dec_opts=() st_opts=() mark=() pol_mark=()
  kt_n=$((kt_n + 1))
  spi_n=$((0x1300 + kt_n))
  spi=$(printf '0x%08x' "$spi_n")
  name="kernel-tx $suite"
  if [ "$encap" = udp ]; then name+=" ESP-in-UDP"; else name+=" plain ESP"; fi
  if [ "$esn" = 1 ]; then name+=" ESN"; fi
  make_key "$suite"
  echo "== $name"
  if [ "$esn" = 1 ]; then
    # ESN needs a replay window; the output sequence number starts at
    # 2^32 - 24, so the 40 packets carry 2^32 - 23 ... 2^32 + 16
    st_opts=(flag esn replay-oseq 0xffffffe8)
    dec_opts=(esn=true)
  fi
  if [ "$encap" = udp ]; then
    st_opts+=(encap espinudp 4601 4600 0.0.0.0)
  else
    # the kernel must not decrypt its own packets on lo: they leave marked
    # 2 (output-mark), and no state has mark 2
    mark=(mark 1) pol_mark=(mark 1)
    st_opts+=(output-mark 2)
  fi
  xfrm state add src 127.0.0.1 dst 127.0.0.1 proto esp spi "$spi" \
    mode transport replay-window 32 "${mark[@]}" aead "${aead[$suite]}" "$key" 128 \
    "${st_opts[@]}"
  xfrm policy add src 127.0.0.1/32 dst 127.0.0.1/32 proto udp dport 5006 \
    dir out "${pol_mark[@]}" tmpl src 127.0.0.1 dst 127.0.0.1 proto esp mode transport

  rm -rf "$tmp/out" "$tmp/esp" "$tmp/rx"* "$tmp/dec.log"
  mkdir -p "$tmp/out" "$tmp/esp"
  local dec=(mcsecdec sa-type=standard "${dec_opts[@]}" cipher="$suite"
    key-file="$tmp/$suite.key" spi="$spi_n" caps=application/octet-stream
    stats-interval=600000)
  local sink=(multifilesink location="$tmp/out/o%03d.bin")
  local no_states_before captured=0 plaintext=0
  no_states_before=$(xstat XfrmInNoStates)
  if [ "$encap" = udp ]; then
    # a plain UDP socket on 4600: it gets the ESP packets as they are
    timeout --foreground 120 gst-launch-1.0 -m udpsrc address=127.0.0.1 port=4600 \
        caps=application/x-mcsec num-buffers="$n" \
      ! "${dec[@]}" ! "${sink[@]}" > "$tmp/dec.log" 2>&1 &
    local gst=$!
    pids+=("$gst")
    # bound (at most 60 s) before the kernel sends
    local end=$((SECONDS + 60))
    while ! grep -q ':11F8 ' /proc/net/udp && [ "$SECONDS" -lt "$end" ]; do
      sleep 0.2
    done
    send_datagrams 0
    wait_bounded 40 "$gst" || true
  else
    # a raw socket for protocol 50 (and a UDP socket on 5006, where
    # plaintext would arrive if the kernel decrypted its own packets)
    timeout --foreground 150 python3 - "$tmp" "$n" "$spi_n" "$esn" <<'PY' &
import select, socket, sys, time
d, n, spi, esn = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
first = 0xffffffe9 if esn else 1
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50)
r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 5006))
open(d + "/rx.ready", "w").close()
got, bad, plain, seqs = 0, 0, 0, []
end = time.monotonic() + 120
quiet = None
while got < n and time.monotonic() < end:
    ready, _, _ = select.select([r, u], [], [], 0.5)
    if not ready:
        if got and time.monotonic() > quiet:
            break
        continue
    quiet = time.monotonic() + 3
    for s in ready:
        p = s.recv(70000)
        if s is u:
            plain += 1
            continue
        ihl = (p[0] & 15) * 4
        if (p[9] != 50 or p[12:16] != socket.inet_aton("127.0.0.1")
                or p[16:20] != socket.inet_aton("127.0.0.1")
                or int.from_bytes(p[ihl:ihl + 4], "big") != spi):
            bad += 1
            continue
        seqs.append(int.from_bytes(p[ihl + 4:ihl + 8], "big"))
        open("%s/esp/e%03d.bin" % (d, got), "wb").write(p[ihl:])
        got += 1
time.sleep(1)  # plaintext, if any, comes right behind
while select.select([u], [], [], 0)[0]:
    u.recv(70000)
    plain += 1
with open(d + "/rx", "w") as f:
    print("captured=%d" % got, file=f)
    print("bad-header=%d" % bad, file=f)
    print("plaintext=%d" % plain, file=f)
    print("seq-in-order=%d" % (seqs == [(first + i) & 0xffffffff for i in range(n)]),
          file=f)
PY
    local cap=$!
    pids+=("$cap")
    wait_file "$tmp/rx.ready" 60 || echo "the capture did not start in 60 s"
    send_datagrams 1
    wait_bounded 40 "$cap" || true
    cat "$tmp/rx" 2>/dev/null || echo "(the capture wrote nothing)"
    captured=$(val "$tmp/rx" captured)
    plaintext=$(val "$tmp/rx" plaintext)
    [ "$captured" -gt 0 ] &&
      timeout --foreground 120 gst-launch-1.0 -m multifilesrc location="$tmp/esp/e%03d.bin" \
          index=0 stop-index=$((captured - 1)) caps=application/x-mcsec \
        ! "${dec[@]}" ! "${sink[@]}" > "$tmp/dec.log" 2>&1
  fi
  compare "$tmp/out" "$tmp/rx.out"
  echo "mcsecdec: $(dec_stats "$tmp/dec.log")"
  cat "$tmp/rx.out"
  local packets oseq oseq_hi ostate want
  state_fields "${mark[@]}"
  packets=$st_packets oseq=$st_oseq oseq_hi=$st_oseq_hi
  if [ "$esn" = 1 ]; then
    echo "ip -s xfrm state: packets $packets oseq-hi $oseq_hi oseq $oseq"
    ostate=$packets/$oseq_hi/$oseq want=$n/1/$((n - 24))
  else
    echo "ip -s xfrm state: packets $packets oseq $oseq"
    ostate=$packets/$oseq want=$n/$n
  fi
  check "$name: the kernel's state encrypted $n packets (packets/oseq $ostate)" \
    test "$ostate" = "$want"
  if [ "$encap" = esp ]; then
    check "$name: $n ESP packets captured on protocol 50, 127.0.0.1, our SPI, sequence numbers in order" \
      test "$captured/$(val "$tmp/rx" bad-header)/$(val "$tmp/rx" seq-in-order)" = "$n/0/1"
    local no_states=$(($(xstat XfrmInNoStates) - no_states_before))
    provoke XfrmInNoStates "$no_states"
    check "$name: the kernel did not decrypt its own packets (no plaintext, XfrmInNoStates +$no_states)" \
      test "$plaintext/$no_states" = "0/$n"
  fi
  check "$name: mcsecdec passed the $n datagrams, in order, byte for byte" \
    test "$(val "$tmp/rx.out" received)/$(val "$tmp/rx.out" in-order)" = "$n/$n"
  check "$name: mcsecdec accepted $n packets and dropped none" \
    test "$(dec_stats "$tmp/dec.log")" = "received=$n accepted=$n "
  if [ "$failures" -gt "${kt_failures:-0}" ]; then
    echo "--- /proc/net/xfrm_stat: $(awk '$2 != 0' /proc/net/xfrm_stat | tr -s ' \t\n' ' ')"
    echo "--- mcsecdec's log:"
    grep -v 'x-mcsec-dec-stats' "$tmp/dec.log" | tail -n 20
  fi
  kt_failures=$failures
  ip xfrm policy flush
  ip xfrm state flush
}

kt_n=0
for c in $cases; do
  case "$c" in
  nh253) kernel_rx 253 ;;
  nh17) kernel_rx 17 ;;
  senders) two_senders ;;
  mike) mike_case ;;
  kernel-tx)
    # the kernel takes ESN only with a replay window
    make_key aes-128-gcm
    spi=0x000013ff
    esn0=$(ip xfrm state add src 127.0.0.1 dst 127.0.0.1 proto esp spi "$spi" \
      mode transport replay-window 0 aead "${aead[aes-128-gcm]}" "$key" 128 \
      flag esn 2>&1 && echo added || true)
    ip xfrm state flush
    check "kernel-tx: a state with flag esn and replay-window 0 is refused ($esn0)" \
      test -n "$esn0" -a "$esn0" = "${esn0%added}"
    # every suite once at least, every way once at least
    for suite in aes-128-gcm chacha20-poly1305 aes-128-gmac; do
      kernel_tx "$suite" udp 0
    done
    kernel_tx aes-128-gcm udp 1
    kernel_tx chacha20-poly1305 udp 1
    kernel_tx aes-128-gmac udp 1
    kernel_tx aes-256-gcm esp 0
    kernel_tx aes-256-gmac esp 1
    ;;
  esac
done

# no error counter of the XFRM stack moved, but those provoked on purpose,
# by exactly as many
want_stat=$(for k in "${!provoked[@]}"; do echo "$k ${provoked[$k]}"; done | sort)
nonzero=$(awk '$2 != 0 { print $1, $2 }' /proc/net/xfrm_stat | sort)
check "the XFRM error counters (/proc/net/xfrm_stat) moved only as provoked: $(echo ${want_stat:-none})" \
  test "$nonzero" = "$want_stat"
[ "$nonzero" = "$want_stat" ] || echo "$nonzero"

if [ "$failures" -gt 0 ]; then
  echo "$failures checks failed; the last sender's log:"
  cat "$tmp/tx.log" 2>/dev/null || true
  exit 1
fi
echo "all checks passed"
