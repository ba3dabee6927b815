#!/usr/bin/python3
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A receiver in Python (PyGObject, Debian's python3-gi): joins an mcsec
group with mcseckeysrc, decrypts with mcsecdec, prints the membership's
events as they come and, at the end, what mcsecdec accepted and dropped
(never a key: the elements do not expose any).

  mcsec-receiver.py --controller HOST:PORT --group NAME --certificate FILE \\
      --private-key FILE --ca FILE --port UDP-PORT [--duration SECONDS]

The datagrams go to a fakesink here; put a depayloader and a decoder in
their place for real media (see mcsec-receiver.c)."""

import argparse
import re
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for opt in ("controller", "group", "certificate", "private-key", "ca"):
        p.add_argument("--" + opt, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--duration", type=float, default=0)
    a = p.parse_args()

    Gst.init(None)
    pipeline = Gst.parse_launch(
        f"mcseckeysrc controller={a.controller} group={a.group} "
        f"certificate={a.certificate} private-key={a.private_key} ca={a.ca} "
        f"udpsrc port={a.port} ! mcsecdec name=dec "
        f"caps=application/octet-stream ! fakesink")
    dec = pipeline.get_by_name("dec")
    loop = GLib.MainLoop()

    def on_message(bus, msg):
        if msg.type == Gst.MessageType.ELEMENT:
            s = msg.get_structure()
            if s.get_name() == "mcsec-membership":
                print("membership", s.get_string("event"),
                      s.get_string("reason") or "", s.get_string("text") or "",
                      flush=True)
        elif msg.type == Gst.MessageType.ERROR:
            err, _ = msg.parse_error()
            print("error:", err.message, flush=True)
            loop.quit()

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    if a.duration > 0:
        GLib.timeout_add(int(a.duration * 1000), loop.quit)
    if pipeline.set_state(Gst.State.PLAYING) != Gst.StateChangeReturn.FAILURE:
        loop.run()
    # before NULL: the membership's SAs (and their counters) go with it
    stats = dec.get_property("stats")
    pipeline.set_state(Gst.State.NULL)

    accepted = stats.get_uint64("accepted")[1]
    drops = {stats.nth_field_name(i): stats.get_uint64(stats.nth_field_name(i))[1]
             for i in range(stats.n_fields())
             if stats.nth_field_name(i).startswith("dropped-")}
    # the per-SA and per-sender entries are arrays of structures, which
    # PyGObject without gst-python cannot convert: read them from the text
    senders = set()
    text = stats.to_string().replace("\\", "")
    for m in re.finditer(r"x-mcsec-sender-stats, sender-id=\(uint\)(\d+)"
                         r"[^;]*?accepted=\(guint64\)(\d+)", text):
        if int(m.group(2)) > 0:
            senders.add(int(m.group(1)))
    print(f"decrypted={accepted} senders={len(senders)}",
          " ".join(f"{k}={v}" for k, v in drops.items() if v), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
