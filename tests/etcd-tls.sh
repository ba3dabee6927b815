#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A controller of a cluster talks to etcd over TLS (docs/cluster.md,
# "etcd over TLS"): one etcd member on loopback serving its clients over
# TLS only, with client certificates required (tests/etcd-lib.sh with
# ETCD_TLS_DIR); the credentials from `mcsecctl pki` (etcd's server
# certificate is made from the test CA with openssl, for 127.0.0.1; the
# controller's client certificate for etcd is a member certificate, CN
# etcd-client).
# Checked:
# - with etcd-ca, etcd-certificate and etcd-private-key the controller
#   leads the group and a member joins (`mcsec-join --once`); etcd holds
#   the group's leader key;
# - without the client certificate etcd refuses the controller, which
#   stops at start naming [cluster] etcd and the TLS alert;
# - with another CA (etcd's certificate not trusted): the same, with
#   curl's "SSL certificate problem";
# - configuration errors name the setting: etcd-ca with an http://
#   endpoint, a certificate without its key (--check), a CA file that is
#   missing (at start, and --check); --check reads the cluster key as a
#   start does: one others can read, one that is not 64 hex digits, each
#   an error naming cluster-key (it said OK before); a good one: OK.
#
# usage: etcd-tls.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src_dir=$(cd "$(dirname "$0")/.." && pwd)
tools=$build/tools
tmp=$(mktemp -d)
pids=()

. "$src_dir/tests/e2e-lib.sh"
. "$src_dir/tests/etcd-lib.sh"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "$failures" -eq 0 ] || etcd_logs || true
  etcd_cleanup
  [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

cd "$tmp"
"$tools/mcsecctl" pki pki etcd-client rx1 >/dev/null
"$tools/mcsecctl" pki other rx9 >/dev/null # another CA
mkdir etcd-tls
cp pki/ca.crt etcd-tls/ca.crt
# etcd's certificate, from the same CA: its JSON gateway dials etcd's own
# gRPC with it as a client certificate under --client-cert-auth, so it
# needs clientAuth too (the controller's certificate has serverAuth only)
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj /CN=etcd -keyout etcd-tls/server.key -out etcd-tls/server.csr 2>/dev/null
printf '%s\n' "subjectAltName = IP:127.0.0.1, DNS:localhost" \
  "extendedKeyUsage = serverAuth, clientAuth" > etcd-tls/server.ext
openssl x509 -req -in etcd-tls/server.csr -CA pki/ca.crt -CAkey pki/ca.key \
  -CAcreateserial -days 2 -extfile etcd-tls/server.ext \
  -out etcd-tls/server.crt 2>/dev/null
cp pki/etcd-client.crt etcd-tls/client.crt
cp pki/etcd-client.key etcd-tls/client.key
export ETCD_TLS_DIR=$tmp/etcd-tls
etcd_cluster_start 1
eps=$(etcd_endpoints)
echo "etcd over TLS: $eps"
check "etcd-lib: the endpoint is https://" test "${eps#https://}" != "$eps"

. "$src_dir/examples/controller-lib.sh"

# conf NAME TLS-LINES...: a controller configuration for the cluster with
# these [cluster] lines, in NAME.conf, its state in NAME/
conf() {
  local name=$1 port
  shift
  port=$(free_port SOCK_STREAM)
  mkdir -p "$name"
  {
    controller_section "$port" | sed "s|^state-dir = state|state-dir = $name|"
    cat <<EOF

[cluster]
etcd = $eps
name = $name
lease = 2
etcd-timeout = 1000
prefix = /tls-test/$name/
EOF
    printf '%s\n' "$@"
    cat <<EOF

[group video]
receivers = rx1
EOF
  } > "$name.conf"
  echo "$port" > "$name.port"
}

# join NAME: mcsec-join --once through controller NAME; its status
join() {
  local rc=0
  timeout --foreground 30 "$tools/mcsec-join" --controller "127.0.0.1:$(cat "$1.port")" \
    --group video --certificate pki/rx1.crt --private-key pki/rx1.key \
    --ca pki/ca.crt --once --timeout 8 > "$1.join" 2>&1 || rc=$?
  echo "$rc"
}

start() {
  "$tools/mcsec-controller" "$1.conf" 2>>"$1.log" &
  pids+=($!)
  echo $! > "$1.pid"
}

# the whole TLS set-up: the member joins
conf good "etcd-ca = etcd-tls/ca.crt" "etcd-certificate = pki/etcd-client.crt" \
  "etcd-private-key = pki/etcd-client.key"
start good
rc=$(join good)
check "with etcd-ca and a client certificate the controller leads and a member joins (status $rc)" \
  test "$rc/$(grep -c '^joined' good.join || true)" = 0/1
leader=$(ETCDCTL_API=3 etcdctl --endpoints "$eps" $(_etcdctl_tls) get --prefix \
  /tls-test/good/leader/ --print-value-only 2>&1 || true)
check "etcd holds the group's leader key (\"$leader\")" grep -q '^good ' <<<"$leader"

# run NAME: the controller in the foreground (it stops at start when etcd
# cannot be reached: no lease); status in NAME.rc, stderr in NAME.log
run() {
  local rc=0
  timeout --foreground 20 "$tools/mcsec-controller" "$1.conf" 2>"$1.log" || rc=$?
  echo "$rc" > "$1.rc"
}

# no client certificate: etcd refuses the handshake, and the controller
# stops at start naming the setting and the reason
conf nocert "etcd-ca = etcd-tls/ca.crt"
run nocert
# (under TLS 1.3 etcd refuses after the client's side of the handshake:
# curl reads the alert, a reset or a closed socket, whichever comes first;
# etcd's log says why)
check "without a client certificate the controller stops at start (status $(cat nocert.rc)) naming [cluster] etcd ($(cat nocert.log)); etcd: no client certificate" \
  eval '[ "$(cat nocert.rc)" -ne 0 ] && [ "$(cat nocert.rc)" -ne 124 ] &&
    grep -qE "\[cluster\] etcd: etcd /v3/lease/grant: no endpoint served it .*https://127.0.0.1:[0-9]+: " nocert.log &&
    grep -q "client didn.t provide a certificate" "$ETCD_DIR"/m1/log'

# another CA: etcd's certificate is not trusted
conf otherca "etcd-ca = other/ca.crt" "etcd-certificate = pki/etcd-client.crt" \
  "etcd-private-key = pki/etcd-client.key"
run otherca
check "with another CA (etcd's certificate not trusted) the controller stops at start (status $(cat otherca.rc)), saying so" \
  eval '[ "$(cat otherca.rc)" -ne 0 ] && [ "$(cat otherca.rc)" -ne 124 ] &&
    grep -q "\[cluster\] etcd: .*SSL certificate problem" otherca.log'

# a CA file that is missing: named at start
conf noca "etcd-ca = etcd-tls/missing.crt"
run noca
check "a CA file that is missing: the controller stops at start naming etcd-ca ($(cat noca.log))" \
  grep -q 'noca.conf:[0-9]*: \[cluster\] etcd-ca: cannot read .*missing.crt' noca.log

# configuration errors name the setting
conf plain "etcd-ca = etcd-tls/ca.crt"
sed -i "s|^etcd = https://|etcd = http://|" plain.conf
out=$("$tools/mcsec-controller" --check plain.conf 2>&1 || true)
check "etcd-ca with an http:// endpoint: an error naming etcd ($out)" \
  grep -q '\[cluster\] etcd: an http:// endpoint with etcd-ca' <<<"$out"
conf halfcert "etcd-certificate = pki/etcd-client.crt"
out=$("$tools/mcsec-controller" --check halfcert.conf 2>&1 || true)
check "a client certificate without its key: an error naming etcd-private-key ($out)" \
  grep -q 'etcd-private-key: missing' <<<"$out"
out=$("$tools/mcsec-controller" --check noca.conf 2>&1 || true)
check "--check: the missing CA file named ($out)" \
  grep -q 'noca.conf:[0-9]*: \[cluster\] etcd-ca: cannot read .*missing.crt' <<<"$out"
openssl rand -hex 32 >good.key
chmod 600 good.key
head -c 40 good.key >short.key
chmod 600 short.key
cp good.key open.key
chmod 644 open.key
for k in good short open; do
  conf "ck$k" "etcd-ca = etcd-tls/ca.crt" "etcd-certificate = pki/etcd-client.crt" \
    "etcd-private-key = pki/etcd-client.key" "cluster-key = $k.key"
done
out=$("$tools/mcsec-controller" --check ckopen.conf 2>&1 || true)
check "--check: a cluster key others can read, named ($out)" \
  grep -q '\[cluster\] cluster-key: .*open.key is readable by others' <<<"$out"
out=$("$tools/mcsec-controller" --check ckshort.conf 2>&1 || true)
check "--check: a cluster key that is not 64 hex digits, named ($out)" \
  grep -q '\[cluster\] cluster-key: .*short.key does not hold 64 hex digits' <<<"$out"
out=$("$tools/mcsec-controller" --check ckgood.conf 2>&1 || true)
check "--check: the good cluster key: OK ($out)" grep -q 'ckgood.conf: OK' <<<"$out"
for n in good nocert otherca noca; do
  [ "$failures" -eq 0 ] || { echo "--- $n.log"; tail -n 5 "$n.log"; cat "$n.join" 2>/dev/null; }
done
[ "$failures" -eq 0 ] && echo "all checks passed"
exit $((failures > 0))
