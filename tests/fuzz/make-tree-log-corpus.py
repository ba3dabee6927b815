#!/usr/bin/env python3
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The seed corpus of fuzz-tree-log (tests/fuzz/corpus/tree-log): a key tree
# group's entries in etcd as docs/cluster.md ("Key trees in etcd") lays
# them out, built around the key tree logs of tests/fuzz/corpus/lkh-import
# (a snapshot and two commits' changes, from make-corpus).  Each input is
# the entries, [len (2, big-endian) | entry]...
#
#   make-tree-log-corpus.py CORPUS_DIR
import struct
import sys

src = sys.argv[1] + "/../lkh-import/"
out = sys.argv[1] + "/"


def parts(blob):
    got, pos = [], 0
    while pos + 2 <= len(blob):
        n = struct.unpack(">H", blob[pos:pos + 2])[0]
        got.append(blob[pos + 2:pos + 2 + n])
        pos += 2 + n
    return got


def records(x):
    n = struct.unpack(">I", x[2:6])[0]
    for i in range(n):
        r = x[6 + 25 * i:6 + 25 * (i + 1)]
        yield struct.unpack(">I", r[:4])[0], r[8]


def leaf(n, ident):
    return struct.pack(">IH", n, len(ident)) + ident


def entry(kind, seq, chunks, body):
    return struct.pack(">BBIQI", 1, kind, 0x1000 + seq, seq, chunks) + body


def framed(entries):
    return b"".join(struct.pack(">H", len(e)) + e for e in entries)


for name in ("log-4-40", "log-2-9"):
    snap, *changes = parts(open(src + name + ".bin", "rb").read())
    names = {n: b"m%d" % n for n, kind in records(snap) if kind == 1}
    body = struct.pack(">I", len(snap)) + snap + struct.pack(">I", len(names))
    body += b"".join(leaf(n, i) for n, i in sorted(names.items()))
    # the snapshot in two chunks, then the changes
    half = len(body) // 2
    es = [entry(0, 1, 2, body[:half]), entry(0, 1, 2, body[half:])]
    for k, ch in enumerate(changes):
        notes = []
        for n, kind in records(ch):
            if kind == 1 and n not in names:
                names[n] = b"new%d-%d" % (k, n)
                notes.append(leaf(n, names[n]))
            elif kind == 2 and n in names:
                del names[n]
                notes.append(leaf(n, b""))
        es.append(entry(1, 2 + k, 2, struct.pack(">I", len(ch)) + ch +
                        struct.pack(">I", len(notes)) + b"".join(notes)))
    open(out + name + ".bin", "wb").write(framed(es))
    open(out + name + "-snapshot.bin", "wb").write(framed(es[:2]))
