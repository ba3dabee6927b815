#!/usr/bin/python3
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
"""What an application in Python (PyGObject) reads from mcsecenc and
mcsecdec (issue 17, items 1 and 5): every field of `stats`, the arrays of
structures (`sas`, `sas[].senders`, `sam-senders`) included; the stats as
element messages (`stats-interval`); the drop warnings with their details;
a `key-file` error with its cause.  Runs real pipelines with the system's
fakesrc and fakesink against the plugin in the build tree (the meson test
sets GST_PLUGIN_PATH_1_0)."""

import os
import sys
import tempfile

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what, flush=True)


def walk(value, path, seen):
    """Read every value under value (a structure, an array, a scalar): any
    type PyGObject cannot convert raises TypeError here."""
    if isinstance(value, Gst.Structure):
        seen.append((path, value.get_name()))
        for i in range(value.n_fields()):
            name = value.nth_field_name(i)
            walk(value.get_value(name), f"{path}.{name}", seen)
    elif isinstance(value, (list, tuple)) or type(value).__name__ == "ValueArray":
        for i in range(len(value)):
            walk(value[i], f"{path}[{i}]", seen)
    else:
        check(isinstance(value, (int, str)),
              f"{path}: {type(value).__name__} {value!r}")


def run(desc, timeout=10):
    """Run desc to its end; returns (pipeline, the messages on the bus)."""
    pipeline = Gst.parse_launch(desc)
    bus = pipeline.get_bus()
    msgs = []
    ret = pipeline.set_state(Gst.State.PLAYING)
    while True:
        msg = bus.timed_pop(timeout * Gst.SECOND)
        if msg is None:
            check(False, f"no end of stream: {desc}")
            break
        msgs.append(msg)
        if msg.type in (Gst.MessageType.EOS, Gst.MessageType.ERROR):
            break
        if ret == Gst.StateChangeReturn.FAILURE and not bus.have_pending():
            break
    return pipeline, msgs


def stats_fields(d, keys):
    """Every field of both elements' stats is readable."""
    pipeline, msgs = run(
        f"fakesrc num-buffers=40 sizetype=fixed sizemax=60 filltype=zero ! "
        f"mcsecenc name=enc key-file={keys['group']} "
        f"counter-file={d}/sender.ctr signing-key-file={keys['priv']} "
        f"sam-block-size=8 stats-interval=60000 ! "
        f"mcsecdec name=dec key-file={keys['group']} sam-policy=optional "
        f"sender-keys=0={keys['pub']} caps=application/x-rtp "
        f"stats-interval=60000 ! fakesink")
    check(msgs and msgs[-1].type == Gst.MessageType.EOS,
          "the pipeline runs to its end")
    for name in ("enc", "dec"):
        stats = pipeline.get_by_name(name).get_property("stats")
        seen = []
        try:
            walk(stats, name, seen)
        except TypeError as e:
            check(False, f"{name} stats: TypeError {e} "
                  "(is python3-gst-1.0 installed?)")
            continue
        if name == "dec":
            names = {n for _, n in seen}
            for want in ("application/x-mcsec-sa-stats",
                         "application/x-mcsec-sender-stats",
                         "application/x-mcsec-sam-sender-stats"):
                check(want in names, f"dec stats hold a {want}")
            sas = stats.get_value("sas")
            check(len(sas) == 1 and sas[0].get_value("spi") == 0x1000,
                  "sas: one SA, 0x1000")
            senders = sas[0].get_value("senders")
            # the datagrams, and the carriers of the last signature
            check(len(senders) == 1 and
                  senders[0].get_value("sender-id") == 0 and
                  senders[0].get_value("accepted") >= 40,
                  f"sas[0].senders: sender 0 with its datagrams: {senders}")
            sam = stats.get_value("sam-senders")
            check(len(sam) == 1 and sam[0].get_value("sam-verified") > 0,
                  "sam-senders: sender 0 verified")
    # one last stats message of each at the end of the stream
    posted = {m.get_structure().get_name() for m in msgs
              if m.type == Gst.MessageType.ELEMENT}
    check({"application/x-mcsec-enc-stats",
           "application/x-mcsec-dec-stats"} <= posted,
          f"stats messages at the end: {posted}")
    for m in msgs:
        if m.type == Gst.MessageType.ELEMENT:
            walk(m.get_structure(), "message", [])
    pipeline.set_state(Gst.State.NULL)


def wrong_key_warning(d, keys):
    """A receiver with another key warns, naming the reason."""
    pipeline, msgs = run(
        f"fakesrc num-buffers=10 sizetype=fixed sizemax=60 filltype=zero ! "
        f"mcsecenc key-file={keys['group']} counter-file={d}/other.ctr ! "
        f"mcsecdec key-file={keys['other']} caps=application/x-rtp ! "
        f"fakesink")
    warnings = [m for m in msgs if m.type == Gst.MessageType.WARNING]
    check(len(warnings) == 2, f"two warnings (first, then at the end): "
          f"{len(warnings)}")
    total = 0
    for m in warnings:
        err, _ = m.parse_warning()
        details = m.parse_warning_details()
        check("dropped-auth" in err.message, err.message)
        check(details is not None and
              details.get_value("reason") == "auth", "details: auth")
        total += details.get_value("count")
    check(total == 10, f"the counts add up to the drops: {total}")
    pipeline.set_state(Gst.State.NULL)


def key_file_error(d, keys):
    """A key-file that cannot be read fails the start, saying why."""
    missing = os.path.join(d, "missing.key")
    pipeline, msgs = run(
        f"fakesrc num-buffers=1 ! mcsecdec key-file={missing} "
        f"caps=application/x-rtp ! fakesink")
    errors = [m.parse_error()[0].message for m in msgs
              if m.type == Gst.MessageType.ERROR]
    check(f"key-file '{missing}': No such file or directory" in errors,
          f"the error names the file and the cause: {errors}")
    pipeline.set_state(Gst.State.NULL)


def main():
    Gst.init(None)
    if not hasattr(Gst, "ValueArray"):
        print("FAIL: PyGObject without GStreamer's overrides cannot read "
              "arrays in structures: install python3-gst-1.0")
        return 1
    with tempfile.TemporaryDirectory() as d:
        key = ed25519.Ed25519PrivateKey.generate()
        keys = {"priv": f"{d}/sender.key", "pub": f"{d}/sender.pub",
                "group": f"{d}/group.key", "other": f"{d}/other.key"}
        with open(keys["priv"], "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        with open(keys["pub"], "wb") as f:
            f.write(key.public_key().public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo))
        for name in ("group", "other"):
            with open(keys[name], "w") as f:
                f.write(os.urandom(20).hex() + "\n")
        stats_fields(d, keys)
        wrong_key_warning(d, keys)
        key_file_error(d, keys)
    print("OK" if failures == 0 else f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
