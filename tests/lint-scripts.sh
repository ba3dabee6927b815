#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# lint-scripts.sh (make format-check): every `timeout` in the test, example
# and benchmark scripts runs with --foreground.  A plain `timeout` sends
# SIGCONT after each signal it passes on, which can hang a sanitized
# process in its leak check (tests/e2e-lib.sh, at its top, says how).
set -u
cd "$(dirname "$0")/.."
found=$(grep -nE '(^|[^-a-z_.])timeout[[:space:]]+[-0-9$"\\]' \
  tests/*.sh examples/*.sh bench/*.sh)
rc=$?
if [ "$rc" -gt 1 ]; then
  echo "lint-scripts: grep failed (status $rc)" >&2
  exit 2
fi
bad=$(grep -v -- 'timeout --foreground' <<<"$found" | grep . || true)
if [ -n "$bad" ]; then
  echo "$bad"
  echo "lint-scripts: run these with timeout --foreground (tests/e2e-lib.sh)" >&2
  exit 1
fi
exit 0
