# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Shell helpers of the end-to-end tests (sourced): checks that count
# failures, and reading mike-peer's key=value reports.

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
  timeout 60 /usr/bin/python3 - "$1" >"$2" <<'PY' &
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
  grep -q 'event=stopped' "$1" &&
    ! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error' "$1"
}
