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
