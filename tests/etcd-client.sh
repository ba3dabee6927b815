#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The controller cluster's etcd client (tools/controller/etcd.c) and its
# state store (store-etcd.c, test-etcd-store) against a
# real 3-member etcd on loopback (tests/etcd-lib.sh): runs test-etcd
# (GLib tests) with ETCD_ENDPOINTS, ETCD_LIB and ETCD_DIR set; the members'
# logs are printed when it fails.  etcd is required: without it this
# fails rather than skips (`make deps` installs etcd-server and
# etcd-client).
#
# usage: etcd-client.sh BUILD_DIR [TEST-ETCD ARGS...]  (e.g. -p /etcd/watch)
set -euo pipefail
build=$1
shift
src_dir=$(cd "$(dirname "$0")/.." && pwd)

for bin in etcd etcdctl; do
  if ! command -v "$bin" >/dev/null; then
    echo "FAIL: $bin is not installed (Debian: etcd-server etcd-client;" \
      "make deps installs them)" >&2
    exit 1
  fi
done

. "$src_dir/tests/etcd-lib.sh"
status=0
cleanup() {
  [ "$status" -eq 0 ] || etcd_logs
  etcd_cleanup
}
trap cleanup EXIT

etcd_cluster_start 3
ETCD_ENDPOINTS=$(etcd_endpoints)
ETCD_LIB=$src_dir/tests/etcd-lib.sh
export ETCD_ENDPOINTS ETCD_LIB
echo "etcd $(etcd --version | head -1 | cut -d' ' -f3): $ETCD_ENDPOINTS"
"$build/tests/test-etcd" "$@" || status=$?
# the controller's state store over it (store-etcd.c)
[ "$#" -gt 0 ] || "$build/tests/test-etcd-store" || status=$?
exit "$status"
