# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Shell helpers the example scripts and the MIKE tests share (sourced):
# free loopback ports, the [controller] section for credentials made with
# `mcsecctl pki pki ...` in the current folder, and starting a controller.

# free_port SOCK_STREAM|SOCK_DGRAM: a port free on 127.0.0.1 now
free_port() {
  /usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' "$1"
}

# controller_section PORT: a controller on 127.0.0.1:PORT with ./pki and
# ./state (extra [controller] settings may follow it)
controller_section() {
  cat <<CONF
[controller]
listen = 127.0.0.1:$1
certificate = pki/controller.crt
private-key = pki/controller.key
ca = pki/ca.crt
update-signing-key = pki/controller-sign.key
state-dir = state
CONF
}

# start_controller TOOLS_DIR CONF: run it in the background, its log in
# ./controller.log, its pid in $controller_pid; returns once its admin
# socket answers (or fails after 5 s)
start_controller() {
  "$1/mcsec-controller" "$2" 2>>controller.log &
  controller_pid=$!
  for _ in $(seq 100); do
    "$1/mcsecctl" --socket "$PWD/state/admin.sock" stats >/dev/null 2>&1 &&
      return 0
    sleep 0.05
  done
  echo "the controller did not start:"
  cat controller.log
  return 1
}
