# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# member-tls.py IDENTITY PORT [ALPN] < PROGRAM: runs the Python PROGRAM
# read from stdin with
#   s          IDENTITY's TLS 1.3 connection to 127.0.0.1:PORT (its
#              certificate pki/IDENTITY.crt, the CA pki/ca.crt; a 5 s
#              timeout), offering ALPN when given;
#   join(G)    a receiver's MIKE JOIN frame for group G
#              (docs/mike-protocol.md);
#   frame(T, STREAM, BODY)  a relay link's frame (docs/cluster.md);
#   read_all() what s reads until the other end closes or fails.
# The tests' hand-made members (tests/cluster.sh, relay-backpressure.sh);
# os, socket, time and struct are for PROGRAM.
import os
import socket
import ssl
import struct
import sys
import time

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.check_hostname = False
ctx.load_verify_locations("pki/ca.crt")
ctx.load_cert_chain("pki/%s.crt" % sys.argv[1], "pki/%s.key" % sys.argv[1])
if len(sys.argv) > 3:
    ctx.set_alpn_protocols([sys.argv[3]])
s = ctx.wrap_socket(
    socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=5))


def join(group):
    attrs = (struct.pack(">HH", 1, len(group)) + group.encode() +
             struct.pack(">HH", 2, 1) + b"\x01")
    return struct.pack(">I", 4 + len(attrs)) + bytes([1, 1, 0, 0]) + attrs


def frame(t, stream, body):
    return struct.pack(">BII", t, stream, len(body)) + body


def read_all():
    got = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            got += d
    except (ssl.SSLError, OSError):
        pass
    return got


exec(sys.stdin.read())
