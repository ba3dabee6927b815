#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Interop with the Linux kernel's IPsec (issue 16), against Debian 12's
# stock kernel booted in a VM (tests/kernel-vm/vm-run.sh: the build
# machines' kernel has no ESP).  Inside it, for each of mcsecenc's five
# suites: a gst-launch-1.0 sender (multifilesrc ! mcsecenc ! udpsink, a
# static key, no signing key, so Next Header 253 and the bare datagram)
# sends 40 datagrams of 1 to 8000 bytes to a kernel ESP-in-UDP socket on
# 127.0.0.1 (UDP_ENCAP_ESPINUDP); the kernel holds a transport-mode XFRM
# state with the SPI and key material (`ip xfrm state ... encap espinudp`)
# and an inbound policy for protocol 253 that requires ESP (enforced on lo,
# which by default checks none: disable_policy=0); it decrypts and
# authenticates every packet, and the datagrams arrive on a raw IP socket
# for protocol 253 byte for byte, in order; nothing arrives undecrypted on
# the encapsulation socket; `ip -s xfrm state` counts 40 packets, no
# replay or integrity failures; /proc/net/xfrm_stat has no error.  Then a
# plain protocol-253 packet (no ESP) must be refused by the policy.
#
# usage: kernel-ipsec.sh BUILD_DIR            (boots the VM, runs itself)
#        kernel-ipsec.sh --in-vm BUILD_DIR    (inside the VM, as root)
set -euo pipefail
src_dir=$(cd "$(dirname "$0")/.." && pwd -P)
if [ "${1:-}" != --in-vm ]; then
  [ $# -eq 1 ] || { echo "usage: kernel-ipsec.sh BUILD_DIR" >&2; exit 2; }
  build=$(cd "$1" && pwd -P)
  exec "$src_dir/tests/kernel-vm/vm-run.sh" "$build" \
    "$src_dir/tests/kernel-ipsec.sh" --in-vm "$build"
fi

build=$2
[ "${VM_RUN:-}" = 1 ] || { echo "--in-vm: only inside vm-run.sh's VM" >&2; exit 2; }
. "$src_dir/tests/e2e-lib.sh"
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

echo "kernel $(uname -r) ($VM_ACCEL)"
# lo checks no inbound policy by default (disable_policy=1): here it must,
# or the policy below would prove nothing
echo 0 > /proc/sys/net/ipv4/conf/lo/disable_policy
keygen=$build/tools/mcsec-keygen
port=4500 sport=4501 n=40

# GStreamer: the plugin under test and the three system plugins the sender
# uses (a registry of four plugins is quick to build under emulation)
sysdir=$(pkg-config --variable=pluginsdir gstreamer-1.0 2>/dev/null ||
  echo /usr/lib/x86_64-linux-gnu/gstreamer-1.0)
mkdir -p "$tmp/plugins"
for p in coreelements multifile udp; do
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
suites=$(timeout 120 gst-inspect-1.0 mcsecenc |
  sed -n '/^  cipher /,/^  [a-z]/p' | sed -n 's/^ *([0-9]*): \([a-z0-9-]*\) .*/\1/p')
echo "mcsecenc's suites:" $suites
check "mcsecenc has the five suites this test knows" \
  test "$(echo $suites | tr ' ' '\n' | sort | tr '\n' ' ')" = \
  "$(printf '%s\n' "${!aead[@]}" | sort | tr '\n' ' ')"

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

# receiver RESULT: the kernel's ESP-in-UDP socket on 127.0.0.1:$port and a
# raw socket for protocol 253; writes "ready" once both are open, then
# collects until $n datagrams or 3 s of silence (at most 120 s), and
# writes what it got: the datagrams (in order, IP header checked and
# removed) and anything that reached the UDP socket itself (undecrypted)
receiver() {
  timeout 150 python3 - "$1" "$tmp" "$n" "$port" <<'PY' &
import os, select, socket, sys, time
out, d, n, port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
UDP_ENCAP, UDP_ENCAP_ESPINUDP = 100, 2
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", port))
u.setsockopt(socket.IPPROTO_UDP, UDP_ENCAP, UDP_ENCAP_ESPINUDP)
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, 253)
r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
open(out + ".ready", "w").close()
got, raw_udp, bad_hdr = [], 0, 0
end = time.monotonic() + 120
quiet = None
while len(got) < n and time.monotonic() < end:
    ready, _, _ = select.select([u, r], [], [], 0.5)
    if not ready:
        if got and quiet is not None and time.monotonic() > quiet:
            break
        continue
    quiet = time.monotonic() + 3
    for s in ready:
        p = s.recv(70000)
        if s is u:
            raw_udp += 1
            continue
        ihl = (p[0] & 15) * 4
        if (p[9] != 253 or p[12:16] != socket.inet_aton("127.0.0.1")
                or p[16:20] != socket.inet_aton("127.0.0.1")):
            bad_hdr += 1
        got.append(p[ihl:])
want = [open("%s/d%03d.bin" % (d, i), "rb").read() for i in range(n)]
with open(out, "w") as f:
    print("received=%d" % len(got), file=f)
    print("in-order=%d" % sum(1 for a, b in zip(got, want) if a == b), file=f)
    print("intact=%d" % sum(1 for g in got if g in want), file=f)
    print("distinct=%d" % len(set(got)), file=f)
    print("bad-ip-header=%d" % bad_hdr, file=f)
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

# state_field FIELD: a counter of `ip -s xfrm state` for $spi
state_field() {
  ip -s xfrm state get src 127.0.0.1 dst 127.0.0.1 proto esp spi "$spi" |
    python3 -c '
import re, sys
t = sys.stdin.read()
m = {"packets": r"(\d+)\(packets\)", "failed": r"failed (\d+)",
     "replay": r"replay-window \d+ replay (\d+)", "seq": r"anti-replay context: seq (0x[0-9a-f]+)"}
v = re.search(m[sys.argv[1]], t)
print(int(v.group(1), 0) if v else -1)' "$1"
}

spi_n=$((0x1100))
for suite in $(printf '%s\n' "${!aead[@]}" | sort); do
  spi_n=$((spi_n + 1))
  spi=$(printf '0x%08x' "$spi_n")
  "$keygen" --cipher "$suite" --output "$tmp/$suite.key"
  # the key material: the file's line of hex (a "cipher=" line may precede)
  key=0x$(grep -iE '^[0-9a-f[:space:]]+$' "$tmp/$suite.key" | tr -d ' \n\t')
  case "$suite" in aes-128-*) bits=160 ;; *) bits=288 ;; esac
  [ $(((${#key} - 2) * 4)) -eq "$bits" ] ||
    { echo "no $bits-bit key material in $(cat "$tmp/$suite.key")" >&2; exit 1; }
  # transport mode, ESP in UDP from the sender's port to the socket's
  ip xfrm state add src 127.0.0.1 dst 127.0.0.1 proto esp spi "$spi" \
    mode transport replay-window 32 aead "${aead[$suite]}" "$key" 128 \
    encap espinudp "$sport" "$port" 0.0.0.0
  # what arrives as protocol 253 must have come through ESP
  ip xfrm policy add src 127.0.0.1/32 dst 127.0.0.1/32 proto 253 dir in \
    tmpl src 127.0.0.1 dst 127.0.0.1 proto esp mode transport
  echo "== $suite: ip xfrm state add src 127.0.0.1 dst 127.0.0.1 proto esp spi $spi" \
    "mode transport replay-window 32 aead '${aead[$suite]}' 0x<$bits bits> 128" \
    "encap espinudp $sport $port 0.0.0.0"

  rm -f "$tmp/rx"*
  receiver "$tmp/rx"
  rx=${pids[-1]}
  wait_file "$tmp/rx.ready" 60 || echo "the receiver did not start in 60 s"
  timeout 120 gst-launch-1.0 -q multifilesrc location="$tmp/d%03d.bin" \
      index=0 stop-index=$((n - 1)) \
    ! mcsecenc cipher="$suite" key-file="$tmp/$suite.key" spi="$spi_n" \
      sender-id=5 counter-file="$tmp/$suite.ctr" \
    ! udpsink host=127.0.0.1 port="$port" bind-port="$sport" sync=false \
    > "$tmp/tx.log" 2>&1 || { echo "sender failed:"; cat "$tmp/tx.log"; }
  wait_bounded 150 "$rx" || true
  cat "$tmp/rx" 2>/dev/null || echo "(the receiver wrote nothing)"
  check "$suite: $n datagrams decrypted by the kernel, in order, byte for byte" \
    test "$(val "$tmp/rx" in-order)" = "$n"
  check "$suite: nothing else on the raw socket, IP headers 127.0.0.1 proto 253" \
    test "$(val "$tmp/rx" received)/$(val "$tmp/rx" bad-ip-header)" = "$n/0"
  check "$suite: nothing undecrypted on the ESP-in-UDP socket" \
    test "$(val "$tmp/rx" undecrypted)" = 0
  echo "ip -s xfrm state: packets $(state_field packets) seq $(state_field seq)" \
    "replay $(state_field replay) failed $(state_field failed)"
  check "$suite: the state counts $n packets, highest sequence number $n" \
    test "$(state_field packets)/$(state_field seq)" = "$n/$n"
  check "$suite: the state counts no replay or integrity failure" \
    test "$(state_field replay)/$(state_field failed)" = 0/0
  ip xfrm policy flush
  ip xfrm state flush
done

# every error counter of the XFRM stack is 0 (CONFIG_XFRM_STATISTICS)
nonzero=$(awk '$2 != 0' /proc/net/xfrm_stat)
check "no XFRM errors (/proc/net/xfrm_stat)" test -z "$nonzero"
[ -z "$nonzero" ] || echo "$nonzero"

# the policy is what makes protocol 253 trustworthy: a plain packet is
# refused (XfrmInTmplMismatch), an ESP one of the same state passes
ip xfrm policy add src 127.0.0.1/32 dst 127.0.0.1/32 proto 253 dir in \
  tmpl src 127.0.0.1 dst 127.0.0.1 proto esp mode transport
plain=$(timeout 30 python3 - <<'PY'
import socket
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, 253)
r.settimeout(2)
# IPPROTO_RAW with our own header: a sender that receives nothing itself
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
body = b"plain, no ESP"
lo = socket.inet_aton("127.0.0.1")
hdr = bytes([0x45, 0, 0, 20 + len(body), 0, 0, 0, 0, 64, 253, 0, 0]) + lo + lo
s.sendto(hdr + body, ("127.0.0.1", 0))
try:
    r.recv(2000)
    print("delivered")
except socket.timeout:
    print("refused")
PY
)
mismatch=$(awk '$1 == "XfrmInTmplMismatch" { print $2 }' /proc/net/xfrm_stat)
check "a plain protocol-253 packet is refused by the inbound policy ($plain, XfrmInTmplMismatch $mismatch)" \
  test "$plain/$mismatch" = refused/1
ip xfrm policy flush

if [ "$failures" -gt 0 ]; then
  echo "$failures checks failed; the last sender's log:"
  cat "$tmp/tx.log"
  exit 1
fi
echo "all checks passed"
