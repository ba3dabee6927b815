#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The command lines of the tools and examples (issue 17, "Operating the
# controller"): --help and --version answer with status 0, a bad command
# line is status 2 with a hint, options go before or after the command;
# mcsecctl finds the admin socket (--socket, $MCSEC_ADMIN_SOCKET,
# --config) and gives up on a controller that never answers (--timeout)
# instead of hanging.  The admin socket here is a stand-in (Python) that
# records the line it gets and answers like the controller, or never.
#
# usage: tools-cli.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src_dir=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
. "$src_dir/tests/e2e-lib.sh"
cd "$tmp"
unset MCSEC_ADMIN_SOCKET # (it would win over --config)
version=$(sed -n "s/^  version : '\(.*\)',$/\1/p" "$src_dir/meson.build")

# run NAME COMMAND...: status in NAME.rc, output in NAME.out/NAME.err
run() {
  local name=$1 rc=0
  shift
  timeout --foreground 20 "$@" >"$name.out" 2>"$name.err" || rc=$?
  echo "$rc" >"$name.rc"
}
rc() { cat "$1.rc"; }

for t in tools/mcsecctl tools/mcsec-join tools/mcsec-keygen tools/mcsec-controller; do
  n=$(basename "$t")
  run help "$build/$t" --help
  check "$n --help: status 0 and a usage" \
    eval '[ "$(rc help)" -eq 0 ] && grep -q "^Usage:" help.out'
  run version "$build/$t" --version
  check "$n --version: '$n $version'" \
    eval '[ "$(rc version)" -eq 0 ] && [ "$(cat version.out)" = "$n $version" ]'
  run bad "$build/$t" --no-such-option
  check "$n --no-such-option: status 2, names the option, points to --help" \
    eval '[ "$(rc bad)" -eq 2 ] && grep -q -- "--no-such-option" bad.err &&
      grep -q -- "--help" bad.err'
done
for t in examples/gst-demo examples/esp-loopback; do
  run help "$build/$t" --help
  check "$(basename $t) --help: status 0 and a usage" \
    eval '[ "$(rc help)" -eq 0 ] && grep -q "Usage:" help.out'
done

# mcsec-join: what is missing is named
run join "$build/tools/mcsec-join" --group tv
check "mcsec-join without --controller: status 2, names it" \
  eval '[ "$(rc join)" -eq 2 ] && grep -q -- "--controller is required" join.err'
run join "$build/tools/mcsec-join" --controller 127.0.0.1:1 --group tv \
  --certificate c --private-key k --ca a --signing-key-file "$tmp/missing.key"
check "mcsec-join --signing-key-file: the file's error (errno)" \
  eval '[ "$(rc join)" -eq 2 ] &&
    grep -q -- "--signing-key-file .*missing.key: No such file or directory" join.err'
# its older name, --signing-key: still read, no longer shown
run join "$build/tools/mcsec-join" --controller 127.0.0.1:1 --group tv \
  --certificate c --private-key k --ca a --signing-key "$tmp/missing.key"
check "mcsec-join --signing-key (older name) still works" \
  eval '[ "$(rc join)" -eq 2 ] && grep -q "missing.key: No such file or directory" join.err'
run help "$build/tools/mcsec-join" --help
check "mcsec-join --help: --signing-key-file, not --signing-key; role sender, not both" \
  eval 'grep -q -- "--signing-key-file=FILE" help.out &&
    ! grep -q -- "--signing-key=" help.out &&
    grep -q "sender (sends and receives" help.out'
run join "$build/tools/mcsec-join" --controller 127.0.0.1:1 --group tv \
  --certificate c --private-key k --ca a --role bogus
check "mcsec-join --role bogus: status 2, names the roles" \
  eval '[ "$(rc join)" -eq 2 ] && grep -q -- "--role: receiver, sender or feedback" join.err'

# mcsec-join --kernel: what it needs is named before any connection (the
# kernel itself: tests/kernel-ipsec.sh, case mike)
run join "$build/tools/mcsec-join" --controller 127.0.0.1:1 --group tv \
  --certificate c --private-key k --ca a --kernel
check "mcsec-join --kernel without --inner-udp-port: status 2, names it" \
  eval '[ "$(rc join)" -eq 2 ] && grep -q -- "--kernel needs --inner-udp-port" join.err'
run join "$build/tools/mcsec-join" --controller 127.0.0.1:1 --group tv \
  --certificate c --private-key k --ca a --kernel --inner-udp-port 5004 --once
check "mcsec-join --kernel --once: status 2 (it runs until stopped)" \
  eval '[ "$(rc join)" -eq 2 ] && grep -q -- "not with --once" join.err'
run join "$build/tools/mcsec-join" --controller 127.0.0.1:1 --group tv \
  --certificate c --private-key k --ca a --kernel --inner-udp-port 5004 \
  --role sender
check "mcsec-join --kernel --role sender: status 2, receive only (the kernel's IVs)" \
  eval '[ "$(rc join)" -eq 2 ] && grep -q -- "--kernel receives only" join.err'
run join "$build/tools/mcsec-join" --controller 127.0.0.1:1 --group tv \
  --certificate c --private-key k --ca a --kernel --inner-udp-port 5004 \
  --kernel-replay-window 100
check "mcsec-join --kernel-replay-window 100: status 2, names the range" \
  eval '[ "$(rc join)" -eq 2 ] && grep -q -- "--kernel-replay-window: 32..4096" join.err'

# mcsec-keygen: --cipher (the elements' word), --suite still understood
run kg "$build/tools/mcsec-keygen" --cipher aes-256-gcm
check "mcsec-keygen --cipher aes-256-gcm: 36 bytes of hex" \
  eval '[ "$(rc kg)" -eq 0 ] && grep -qE "^[0-9a-f]{72}$" kg.out'
run kg "$build/tools/mcsec-keygen" --suite chacha20-poly1305
check "mcsec-keygen --suite (older name) still works" \
  eval '[ "$(rc kg)" -eq 0 ] && grep -qE "^[0-9a-f]{72}$" kg.out'
run kg "$build/tools/mcsec-keygen" --cipher aes-256-gcm --output "$tmp/kg.key"
check "mcsec-keygen --output: a key file that names its cipher, mode 0600" \
  eval '[ "$(rc kg)" -eq 0 ] && [ "$(sed -n 1p kg.key)" = cipher=aes-256-gcm ] &&
    sed -n 2p kg.key | grep -qE "^[0-9a-f]{72}$" && [ "$(wc -l <kg.key)" -eq 2 ] &&
    [ "$(stat -c %a kg.key)" = 600 ]'
run kg "$build/tools/mcsec-keygen" --cipher des
check "mcsec-keygen --cipher des: status 2, names the setting" \
  eval '[ "$(rc kg)" -eq 2 ] && grep -q -- "--cipher: unknown cipher .des." kg.err'

# ---- mcsecctl against a stand-in admin socket ------------------------------
# fake_admin PATH MODE: MODE answer (one line in, {"ok":true,...} out, the
# line appended to PATH.lines) or silent (accepts, reads, never answers)
fake_admin() {
  /usr/bin/python3 - "$1" "$2" <<'PY' &
import json, os, socket, sys
path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(8)
held = []
while True:
    c, _ = s.accept()
    line = c.makefile("rb").readline().decode().strip()
    with open(path + ".lines", "a") as f:
        f.write(line + "\n")
    if mode == "silent":
        held.append(c)
        continue
    c.sendall((json.dumps({"ok": True, "connections": 7}) + "\n").encode())
    c.close()
PY
  pids+=($!)
  for _ in $(seq 50); do [ -S "$1" ] && return 0; sleep 0.1; done
  return 1
}
mkdir -p state quiet
fake_admin "$tmp/state/admin.sock" answer
fake_admin "$tmp/quiet/admin.sock" silent

run ctl "$build/tools/mcsecctl" stats --json --socket "$tmp/state/admin.sock"
check "mcsecctl: options after the command (stats --json --socket)" \
  eval '[ "$(rc ctl)" -eq 0 ] && grep -q "\"connections\": 7" ctl.out &&
    [ "$(tail -1 state/admin.sock.lines)" = stats ]'
MCSEC_ADMIN_SOCKET="$tmp/state/admin.sock" run ctl "$build/tools/mcsecctl" \
  rekey tv
check "mcsecctl: \$MCSEC_ADMIN_SOCKET" \
  eval '[ "$(rc ctl)" -eq 0 ] && [ "$(tail -1 state/admin.sock.lines)" = "rekey tv" ]'
# the configuration's state-dir, relative to the file's folder
mkdir -p etc
printf '[controller]\nstate-dir = ../state\n' >etc/controller.conf
(cd / && run "$tmp/ctl" "$build/tools/mcsecctl" \
  --config "$tmp/etc/controller.conf" evict tv rx1)
check "mcsecctl --config: STATE-DIR/admin.sock, relative to the file" \
  eval '[ "$(rc ctl)" -eq 0 ] && [ "$(tail -1 state/admin.sock.lines)" = "evict tv rx1" ]'
printf '[controller]\nadmin-socket = %s\n' "$tmp/state/admin.sock" \
  >etc/other.conf
run ctl "$build/tools/mcsecctl" --config etc/other.conf list
check "mcsecctl --config: its admin-socket" \
  eval '[ "$(rc ctl)" -eq 0 ] && [ "$(tail -1 state/admin.sock.lines)" = list ]'
run ctl "$build/tools/mcsecctl" --socket "$tmp/nothing.sock" list
check "mcsecctl: no controller there: status 1, says where it looked" \
  eval '[ "$(rc ctl)" -eq 1 ] && grep -q "nothing.sock (--socket): No such file" ctl.err'
run ctl "$build/tools/mcsecctl" --timeout 1 --socket "$tmp/quiet/admin.sock" \
  list
check "mcsecctl: a controller that never answers is an error (--timeout 1)" \
  eval '[ "$(rc ctl)" -eq 1 ] && grep -q "did not answer within 1 s" ctl.err'
run ctl "$build/tools/mcsecctl" rekey
check "mcsecctl rekey without a group: status 2, says so" \
  eval '[ "$(rc ctl)" -eq 2 ] && grep -q "takes 1 argument, not 0" ctl.err'
run ctl "$build/tools/mcsecctl" lsit
check "mcsecctl lsit: status 2, unknown command" \
  eval '[ "$(rc ctl)" -eq 2 ] && grep -q "unknown command .lsit." ctl.err'
run ctl "$build/tools/mcsecctl" pki pki cam1 --days 2
check "mcsecctl pki: its options after the members too" \
  eval '[ "$(rc ctl)" -eq 0 ] && [ -s pki/cam1.crt ] &&
    [ "$(openssl x509 -in pki/cam1.crt -noout -checkend $((3 * 86400)) || true)" = \
      "Certificate will expire" ]'

[ "$failures" -eq 0 ] && echo "all checks passed" || {
  echo "$failures check(s) failed"
  exit 1
}
