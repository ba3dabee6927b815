# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench-lib.sh: what the controller cluster's benchmarks share
# (bench-cluster.sh, bench-tree-failover.sh).  Sourced after set -euo
# pipefail; src_dir must be set.

# bench_start HELPER SHM_KB: skips the bench (exit 0) without etcd,
# stops when HELPER is not built; puts the temporary files on /dev/shm when
# it has SHM_KB free (etcd's members preallocate 64 MB logs each: a
# container's small /dev/shm would not hold them, tests/etcd-lib.sh then
# uses $TMPDIR); sets tmp.
bench_start() {
  local t shm_free
  for t in etcd etcdctl; do
    if ! command -v $t >/dev/null; then
      echo "  skipped: $t is not installed (Debian: etcd-server etcd-client)"
      exit 0
    fi
  done
  [ -x "$1" ] || { echo "no $1: build first" >&2; exit 1; }
  shm_free=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 {print $4}')
  if [ -w /dev/shm ] && [ "${shm_free:-0}" -gt "$2" ]; then
    export TMPDIR=/dev/shm
  fi
  tmp=$(mktemp -d)
}

# calc FORMAT EXPRESSION: awk's arithmetic, printed with FORMAT
calc() { awk "BEGIN {printf \"$1\", $2}"; }

# watch_key ENDPOINTS KEY OUT: etcd's events on KEY into OUT, each line
# with the time it was read (seconds since the epoch); sets watch_pid
watch_key() {
  ETCDCTL_API=3 etcdctl --endpoints "$1" watch "$2" 2>/dev/null > >(
    exec /usr/bin/python3 -u -c '
import sys, time
for line in sys.stdin:
    print("%.6f %s" % (time.time(), line.strip()), flush=True)' >"$3") &
  watch_pid=$!
  disown "$watch_pid"
}
