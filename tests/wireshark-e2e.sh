#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Wireshark end to end (issue 17, item 6): on loopback, a controller and
# two senders that join it (gst-launch-1.0 with mcseckeysrc: they sign, so
# their packets carry SAM data, ESP Next Header 254): RTP with per-packet
# signatures, H.264 in MPEG-TS in signed blocks (block members, carriers);
# the group rekeys while they send (a join, then `mcsecctl rekey`).  A
# third sender with a static key and no signing key sends RTP as plain
# datagrams (Next Header 253).  `mcsecctl wireshark-esp --follow` writes
# every SA of the group into the esp_sa file (which holds the static SA's
# row already) as it comes; tshark then decrypts the whole capture with
# it, and the Lua dissector (tools/wireshark/mcsec.lua) shows RTP, MPEG-TS
# and the SAM fields.  A one-shot export (the newest SA only) does not
# decrypt the earlier packets.  Then the dissector on short and garbage
# input: expert info, never a Lua error.  Every process runs under
# `timeout`.
#
# usage: wireshark-e2e.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src_dir=$(cd "$(dirname "$0")/.." && pwd)
plugin=$src_dir/tools/wireshark/mcsec.lua
tools=$build/tools
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${WIRESHARK_E2E_KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "error at line $LINENO (status $?)" >&2' ERR

. "$src_dir/tests/e2e-lib.sh"
. "$src_dir/examples/controller-lib.sh"

refused_with() { # refused_with RC WANTED_RC TEXT OUTPUT
  [ "$1" -eq "$2" ] && grep -qF -- "$3" <<<"$4"
}

if ! command -v tshark >/dev/null; then
  echo "SKIP: tshark is not installed (make deps installs it)"
  exit 77
fi

export GST_PLUGIN_PATH_1_0=$build/gst
export GST_REGISTRY_1_0=$tmp/registry.bin
export GST_REGISTRY_FORK=no
export XDG_STATE_HOME=$tmp/state-home
gst=(gst-launch-1.0)
if ldd "$build/gst/libgstmcsec.so" | grep -q libasan; then
  # gst-launch-1.0 is not instrumented: the sanitizers' runtimes preloaded
  # for the plugin (as tests/e2e-gst-launch.sh); tshark gets none
  gst=(env "LD_PRELOAD=$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
    ASAN_OPTIONS=detect_leaks=0 gst-launch-1.0)
fi

cd "$tmp"
"$tools/mcsecctl" pki pki cam1 cam2 rx1 >/dev/null
ctl_port=$(free_port SOCK_STREAM)
up=$(free_port SOCK_DGRAM)
{
  controller_section "$ctl_port"
  cat <<EOF
allow-key-export = true

[group video]
senders = cam1;cam2
receivers = rx1
cipher = aes-128-gcm
activation-delay = 300
deactivation-delay = 1500
EOF
} > ctl.conf
start_controller "$tools" ctl.conf || exit 1
pids+=("$controller_pid")
admin=("$tools/mcsecctl" --socket "$tmp/state/admin.sock")

# ---- the command line ------------------------------------------------------
rc=0
"${admin[@]}" wireshark-esp video --follow >out.txt 2>&1 || rc=$?
check "mcsecctl wireshark-esp --follow without --output: status 2, says so" \
  refused_with "$rc" 2 "--follow needs --output" "$(cat out.txt)"
rc=0
"${admin[@]}" list --output x >out.txt 2>&1 || rc=$?
check "mcsecctl list --output: status 2 (an option of wireshark-esp)" \
  refused_with "$rc" 2 "options of wireshark-esp" "$(cat out.txt)"
rc=0
timeout --foreground 10 "${admin[@]}" wireshark-esp nogroup --follow --output "$tmp/x_sa" \
  >out.txt 2>&1 || rc=$?
check "mcsecctl wireshark-esp --follow, a group the controller lacks: status 1 at once" \
  refused_with "$rc" 1 "group nogroup: no such group" "$(cat out.txt)"

# ---- the capture -------------------------------------------------------------
# what a capture on the wire holds: the UDP payloads, written as a pcap of
# raw IPv4 packets (no capture privilege needed); ends after 3 s of silence
timeout --foreground 90 /usr/bin/python3 - "$up" <<'PY' &
import socket, struct, sys, time
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("127.0.0.1", port))
s.settimeout(3)
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
cap=$!
pids+=("$cap")

# the esp_sa file Wireshark reads, with a row of the user's own (the static
# sender's SA, written by hand): it stays
"$tools/mcsec-keygen" --cipher aes-128-gcm --output static.key
static_spi=0x00003000
static_sid=9
mkdir -p cfg/wireshark
esp_sa=$tmp/cfg/wireshark/esp_sa
printf '# my own SAs\n"IPv4","*","*","%s","AES-GCM with 16 octet ICV [RFC4106]","0x%s","NULL",""\n' \
  "$static_spi" "$(sed '/^cipher=/d' static.key)" > "$esp_sa"
timeout --foreground 90 "${admin[@]}" wireshark-esp video --follow --output "$esp_sa" \
  --interval 100 2> follow.err &
follow=$!
pids+=("$follow")

# the GStreamer registry, built once before the senders start together
timeout --foreground 120 "${gst[@]}" -q fakesrc num-buffers=1 ! mcsecenc ! fakesink >/dev/null 2>&1 || true
keysrc() { # keysrc NAME: mcseckeysrc for the sender NAME
  echo mcseckeysrc controller=127.0.0.1:$ctl_port group=video role=sender \
    certificate=pki/$1.crt private-key=pki/$1.key ca=pki/ca.crt
}
rtp_src="audiotestsrc is-live=true samplesperbuffer=160 num-buffers=300
  ! audio/x-raw,format=S16BE,rate=8000,channels=1 ! rtpL16pay"
# static: RTP (L16, 50 packets/s for 6 s) without source authentication:
# next header 253
timeout --foreground 60 "${gst[@]}" -q -e $rtp_src ! mcsecenc key-file=static.key \
  spi=$static_spi sender-id=$static_sid ! udpsink host=127.0.0.1 port="$up" \
  > static.log 2>&1 &
static_tx=$!
pids+=("$static_tx")
# cam1: the same with a signature a packet: 254, type 1
timeout --foreground 60 "${gst[@]}" -q -e $(keysrc cam1) signing-key-file=pki/cam1-sign.key \
  $rtp_src ! mcsecenc sam-scheme=per-packet \
  ! udpsink host=127.0.0.1 port="$up" > cam1.log 2>&1 &
rtp_tx=$!
pids+=("$rtp_tx")
sleep 1.5
# cam2: H.264 in MPEG-TS (seven TS packets a datagram), signed: 254.  Its
# join makes a new SA (rekey-on-join)
timeout --foreground 60 "${gst[@]}" -q -e $(keysrc cam2) signing-key-file=pki/cam2-sign.key \
  videotestsrc is-live=true num-buffers=75 \
  ! video/x-raw,width=320,height=240,framerate=25/1 ! openh264enc \
  ! h264parse ! mpegtsmux alignment=7 ! mcsecenc sam-block-size=16 \
  ! udpsink host=127.0.0.1 port="$up" > cam2.log 2>&1 &
ts_tx=$!
pids+=("$ts_tx")
sleep 1.5
"${admin[@]}" rekey video >/dev/null
wait_bounded 60 "$static_tx" "$rtp_tx" "$ts_tx" || true
wait_bounded 30 "$cap" || true
sleep 0.5 # one more look of --follow
kill "$follow" 2>/dev/null || true
wait "$follow" 2>/dev/null && follow_rc=0 || follow_rc=$?
# (the first look exports before the group has an SA: spi=0x00000000)
exports=$(grep 'event=keys-exported group=video' controller.log |
  grep -vc 'spi=0x00000000' || true)
# the newest SA alone, as a single export gives it
"${admin[@]}" wireshark-esp video --output "$tmp/oneshot_sa" 2> oneshot.err ||
  true
# --follow looking too seldom: two rekeys between two looks
timeout --foreground 30 "${admin[@]}" wireshark-esp video --follow --output "$tmp/slow_sa" \
  --interval 1500 2> slow.err &
slow=$!
pids+=("$slow")
for _ in $(seq 100); do [ -s slow_sa ] && break; sleep 0.1; done # its first look
"${admin[@]}" rekey video >/dev/null
"${admin[@]}" rekey video >/dev/null
sleep 2
kill "$slow" 2>/dev/null || true
wait "$slow" 2>/dev/null || true
kill "$controller_pid" 2>/dev/null || true
wait "$controller_pid" 2>/dev/null || true

check "the senders sent (their gst-launch-1.0 logs: at the end if anything fails)" \
  [ -s cap.pcap ]
check "mcsecctl --follow ended on SIGTERM with status 0 (status $follow_rc)" \
  [ "$follow_rc" -eq 0 ]

# ---- tshark ------------------------------------------------------------------
# ts CONFIG_DIR ARGS...: tshark over the capture, decrypting with
# CONFIG_DIR/wireshark/esp_sa
ts() {
  local cfg=$1
  shift
  XDG_CONFIG_HOME=$cfg timeout --foreground 120 tshark -r cap.pcap \
    -d "udp.port==$up,udpencap" -o esp.enable_encryption_decode:TRUE \
    -o esp.enable_authentication_check:TRUE "$@" 2>>tshark.err
}
fields=(-T fields -E separator=/t -E occurrence=f -e esp.spi -e esp.icv_good
  -e esp.decrypted_data -e rtp.seq -e rtp.ssrc -e mp2t.pid -e mcsec.sam.type
  -e mcsec.sam.block -e mcsec.sam.count -e mcsec.sam.alg -e mcsec.sender_id)
ts "$tmp/cfg" -X "lua_script:$plugin" "${fields[@]}" > fields.txt
# pk.txt, one line a packet: SPI, ICV good, next header (the last byte
# decrypted: fd 253, fe 254), then the other fields; "-" for none
awk -F'\t' '{ $3 = $3 == "" ? "" : substr($3, length($3) - 1)
  for (i = 1; i <= 11; i++) printf "%s%s", ($i == "" ? "-" : $i), (i < 11 ? " " : "\n") }' \
  fields.txt > pk.txt
count() { awk "$1" pk.txt | wc -l; } # count AWK-CONDITION: packets
all=$(wc -l < pk.txt)
good=$(count '$2 == 1')
spis=$(awk '{ print $1 }' pk.txt | sort -u | wc -l)
n253=$(count '$3 == "fd"')
n254=$(count '$3 == "fe"')
echo "  captured $all packets under $spis SPIs; decrypted with a good ICV: $good ($n253 with next header 253, $n254 with 254)"
check "wireshark: every packet decrypts, ICV good, with --follow's SAs" \
  eval '[ "$all" -gt 600 ] && [ "$good" -eq "$all" ]'
check "wireshark: ... across the group's rekeys ($spis SPIs in the capture, the static one included)" \
  [ "$spis" -ge 4 ]
spis_in_file() { # every SPI of the capture has its row in the file
  local s
  for s in $(awk '{ print $1 }' pk.txt | sort -u); do
    grep -qiF "\"$s\"" "$esp_sa" || return 1
  done
}
check "wireshark: --follow wrote every SPI of the capture" spis_in_file
check "wireshark: the user's own rows in the esp_sa file stay" \
  eval 'grep -qx "# my own SAs" "$esp_sa" && grep -q "\"$static_spi\"" "$esp_sa"'
check "wireshark: the esp_sa file is mode 0600" [ "$(stat -c %a "$esp_sa")" = 600 ]

# next header 253: the static sender's RTP
rtp_ok=$(count '$3 == "fd" && $4 != "-" && $5 != "-"')
ssrcs=$(awk '$3 == "fd" { print $5 }' pk.txt | sort -u | wc -l)
seqs=$(awk '$3 == "fd" { print $4 }' pk.txt | sort -u | wc -l)
sid_ok=$(count '$3 == "fd" && $11 == '$static_sid)
check "dissector: next header 253 is RTP: rtp.seq and rtp.ssrc in each ($rtp_ok of $n253)" \
  eval '[ "$n253" -gt 250 ] && [ "$rtp_ok" -eq "$n253" ]'
check "dissector: ... one stream ($ssrcs SSRC), no sequence number twice ($seqs)" \
  eval '[ "$ssrcs" -eq 1 ] && [ "$seqs" -eq "$n253" ]'
check "dissector: ... its Sender-ID from the ESP IV (mcsec.sender_id $static_sid in $sid_ok)" \
  [ "$sid_ok" -eq "$n253" ]
# next header 254: SAM data
signed=$(count '$3 == "fe" && $7 == 1')
signed_rtp=$(count '$3 == "fe" && $7 == 1 && $4 != "-" && $5 != "-"')
members=$(count '$3 == "fe" && $7 == 2')
members_ts=$(count '$3 == "fe" && $7 == 2 && $6 != "-" && $8 != "-" && $9 != "-"')
carriers=$(count '$3 == "fe" && $7 == 3 && $8 != "-" && $9 > 0')
sam_ok=$(count '$3 == "fe" && $7 != "-" && $10 == 1')
echo "  next header 254: $signed signed packets ($signed_rtp RTP), $members block members ($members_ts MPEG-TS), $carriers carriers"
check "dissector: next header 254 shows its SAM fields (mcsec.sam.type, .alg Ed25519 in $sam_ok of $n254)" \
  eval '[ "$n254" -gt 300 ] && [ "$sam_ok" -eq "$n254" ]'
check "dissector: ... a per-packet signature, then RTP (rtp.seq, rtp.ssrc)" \
  eval '[ "$signed" -gt 250 ] && [ "$signed_rtp" -eq "$signed" ]'
check "dissector: ... a block member (mcsec.sam.block, .count), then MPEG-TS (mp2t.pid)" \
  eval '[ "$members" -gt 50 ] && [ "$members_ts" -eq "$members" ]'
check "dissector: ... carriers (type 3) with their symbols" [ "$carriers" -ge 1 ]
senders=$(awk '$11 != "-" { print $1, $11 }' pk.txt | sort -u | awk '{ print $2 }' | sort -u | wc -l)
no_sid=$(count '$11 == "-"')
check "dissector: every packet has its Sender-ID ($senders distinct, $no_sid without)" \
  eval '[ "$no_sid" -eq 0 ] && [ "$senders" -ge 2 ]'
ts "$tmp/cfg" -X "lua_script:$plugin" -V > verbose.txt
check "dissector: no Lua error anywhere in the capture (nor a caught one)" \
  eval '! grep -qE "Lua Error|mcsec dissector error" verbose.txt'
ts "$tmp/cfg" -X "lua_script:$plugin" -o mcsec.payload:data \
  -T fields -e rtp.seq -e mcsec.payload > pref.txt
check "dissector: preference mcsec.payload:data: no RTP dissected" \
  eval '! cut -f1 pref.txt | grep -q . && grep -q . pref.txt'

# the plugin where Wireshark looks without -X: the personal Lua plugin
# folder (~/.local/lib/wireshark/plugins), as docs/controller.md says
mkdir -p home/.local/lib/wireshark/plugins
cp "$plugin" home/.local/lib/wireshark/plugins/
HOME=$tmp/home ts "$tmp/cfg" -T fields -e rtp.seq > personal.txt
check "dissector: found in ~/.local/lib/wireshark/plugins (no -X)" \
  grep -q '[0-9]' personal.txt
installed=$(meson introspect "$build" --installed | /usr/bin/python3 -c \
  'import json,sys; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$plugin")
check "meson installs the dissector into <libdir>/wireshark/plugins ($installed)" \
  eval '[[ "$installed" == */wireshark/plugins/mcsec.lua ]]'

# ---- a single export: the newest SA only --------------------------------------
mkdir -p one/wireshark
cp oneshot_sa one/wireshark/esp_sa
ts "$tmp/one" -T fields -e esp.icv_good > one.txt
one_good=$(grep -c '^1' one.txt || true)
check "wireshark-esp without --follow: one SA, the newest ($one_good of $all packets decrypt)" \
  eval '[ "$(grep -c "^\"IPv4\"" oneshot_sa)" -eq 1 ] && [ "$one_good" -gt 0 ] &&
    [ "$one_good" -lt "$all" ]'
check "... and it names the SPIs whose keys the controller no longer holds" \
  grep -q "no longer holds the keys of its earlier SAs (SPI 0x" oneshot.err

# ---- secrets ---------------------------------------------------------------------
rows=$(grep -c '^"IPv4".*AES-GCM' "$esp_sa" || true)
rows=$((rows - 1)) # the static SA's
echo "  --follow: $rows SAs of the group in the file; the controller logged $exports exports"
check "the controller logged one export per SA, not one per look" \
  [ "$exports" -eq "$rows" ]
check "--follow says when SAs came and went between two looks ($(cat slow.err | tr '\n' ' '))" \
  grep -q "group video: 1 SA(s) came and went between two looks" slow.err
no_key_logged() { # no key of the file in any log or message
  local k
  for k in $(sed -n 's/^"IPv4",.*,"0x\([0-9a-f]*\)","NULL".*/\1/p' "$esp_sa"); do
    ! grep -q "$k" controller.log follow.err oneshot.err slow.err tshark.err || return 1
  done
}
check "no key in the controller's log, mcsecctl's messages or tshark's" \
  no_key_logged
check "the controller stopped cleanly" stopped_cleanly controller.log
check "no sanitizer report from mcsecctl or the senders" \
  no_sanitizer_report follow.err oneshot.err slow.err static.log cam1.log cam2.log

# ---- short and garbage input ---------------------------------------------------------
# raw IPv4 packets with protocol 253 and 254 (the same ip.proto table ESP
# hands its payload to): each SAM case, then random bytes and mutated
# headers
/usr/bin/python3 - garbage.pcap <<'PY'
import random, struct, sys
def ip(proto, payload, n):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), n & 0xFFFF,
                       0, 64, proto, 0, b"\x7f\0\0\1", b"\x7f\0\0\1") + payload
rtp = bytes([0x80, 96]) + struct.pack("!HII", 7, 1234, 0xdeadbeef) + b"\x11" * 160
ts = b"".join(bytes([0x47, 0x01, 0x00, 0x10]) + b"\xff" * 184 for _ in range(7))
sym = lambda i: bytes([i]) + b"\xab" * 16
def hdr(t, blk, idx, d, n1, c, alg=1):
    return bytes([t, alg]) + struct.pack("!I", blk) + bytes([idx, d, n1, c])
cases = [
    (254, bytes([1, 1]) + b"\x55" * 64 + rtp),           # 1 signed, RTP
    (254, hdr(2, 1000, 3, 1, 15, 2) + sym(0) + sym(5) + ts),  # 2 member, TS
    (254, hdr(3, 1001, 0, 1, 15, 4) + sym(1) + sym(2) + sym(3) + sym(4)),
    (254, b"\x02"),                                       # 4 too short
    (254, bytes([1, 1]) + b"\0" * 10),                    # 5 short signature
    (254, hdr(2, 5, 0, 1, 7, 3) + sym(0)),                # 6 symbols cut
    (254, hdr(3, 5, 0, 1, 7, 5) + sym(0) * 5),            # 7 count 5
    (254, hdr(3, 5, 0, 1, 7, 1) + sym(0) + b"xx"),        # 8 trailing bytes
    (254, bytes([9, 1, 2, 3])),                           # 9 unknown type
    (254, hdr(2, 5, 0, 0, 7, 1, alg=7) + sym(0) + rtp),  # 10 alg 7, delta 0
    (253, b"\x80"),                                       # 11 one byte
]
random.seed(17)
valid = [c[1] for c in cases[:3]] + [rtp, ts]
for i in range(2000):
    if i % 2:
        p = bytes(random.getrandbits(8) for _ in range(random.randint(0, 90)))
    else:
        p = bytearray(random.choice(valid))
        for _ in range(random.randint(1, 6)):
            p[random.randrange(len(p))] = random.getrandbits(8)
        p = bytes(p[:random.randint(0, len(p))])
    cases.append((random.choice([253, 254]), p))
with open(sys.argv[1], "wb") as out:
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
    for n, (proto, p) in enumerate(cases):
        pkt = ip(proto, p, n)
        out.write(struct.pack("<IIII", 1000 + n, 0, len(pkt), len(pkt)))
        out.write(pkt)
PY
timeout --foreground 120 tshark -r garbage.pcap -X "lua_script:$plugin" -V > garbage.txt 2>>tshark.err
frames=$(grep -c '^Frame ' garbage.txt || true)
check "garbage: $frames packets dissected, not one Lua error (nor a caught one)" \
  eval '[ "$frames" -eq 2011 ] && ! grep -qE "Lua Error|mcsec dissector error" garbage.txt'
expert() { # expert FRAME FIELD: FRAME has the expert info FIELD
  timeout --foreground 60 tshark -r garbage.pcap -X "lua_script:$plugin" \
    -Y "frame.number == $1 && $2" 2>/dev/null | grep -q .
}
check "garbage: SAM data of 1 byte: mcsec.sam.too_short" expert 4 mcsec.sam.too_short
check "garbage: a signature cut short: mcsec.sam.too_short" expert 5 mcsec.sam.too_short
check "garbage: symbols announced, not there: mcsec.sam.too_short" expert 6 mcsec.sam.too_short
check "garbage: 5 symbols: mcsec.sam.too_many_symbols" expert 7 mcsec.sam.too_many_symbols
check "garbage: bytes after a carrier: mcsec.sam.carrier_trailing" expert 8 mcsec.sam.carrier_trailing
check "garbage: type 9: mcsec.sam.unknown_type" expert 9 mcsec.sam.unknown_type
check "garbage: algorithm 7: mcsec.sam.unknown_alg" expert 10 mcsec.sam.unknown_alg
check "garbage: symbols with delta 0: mcsec.sam.zero_delta" expert 10 mcsec.sam.zero_delta
sam_experts="mcsec.sam.too_short || mcsec.sam.unknown_type || mcsec.sam.unknown_alg
  || mcsec.sam.too_many_symbols || mcsec.sam.zero_delta || mcsec.sam.carrier_trailing"
check "garbage: the well-formed ones have no mcsec expert info" \
  eval '! timeout --foreground 60 tshark -r garbage.pcap -X "lua_script:$plugin" \
    -Y "frame.number <= 3 && ($sam_experts)" 2>/dev/null | grep -q .'
timeout --foreground 60 tshark -r garbage.pcap -X "lua_script:$plugin" -Y 'frame.number <= 3' \
  -T fields -e mcsec.sam.type -e rtp.seq -e mp2t.pid -e mcsec.sam.symbol.id \
  -E occurrence=f 2>/dev/null | tr '\t\n' ',;' > well-formed.txt
check "garbage: a signed RTP datagram, a TS block member, a carrier ($(cat well-formed.txt))" \
  grep -qx "1,7,,;2,,0x00000100,0;3,,,1;" well-formed.txt

if [ "$failures" -gt 0 ]; then
  echo "$failures checks failed"
  for f in follow.err oneshot.err slow.err static.log cam1.log cam2.log; do echo "--- $f"; cat "$f"; done
  echo "--- controller.log"; tail -n 30 controller.log
  exit 1
fi
echo "all checks passed"
