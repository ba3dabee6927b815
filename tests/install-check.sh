#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# `meson install` into a scratch root: the plugin is found by gst-inspect-1.0
# through GST_PLUGIN_PATH (docs/elements.md), `pkg-config libmcsec` works,
# the headers are there, and every installed tool answers --help.
#
# usage: install-check.sh BUILD_DIR
set -euo pipefail
build=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
meson install -C "$build" --destdir "$root" --no-rebuild >/dev/null
prefix=$(meson introspect "$build" --buildoptions |
  /usr/bin/python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
libdir=$(meson introspect "$build" --buildoptions |
  /usr/bin/python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "libdir"))')
lib=$root$prefix/$libdir
export LD_LIBRARY_PATH=$lib
export GST_PLUGIN_PATH_1_0=$lib/gstreamer-1.0
export GST_PLUGIN_SYSTEM_PATH_1_0=
export GST_REGISTRY_1_0=$root/registry.bin
fail=0
for e in mcsecenc mcsecdec mcseckeysrc; do
  if gst-inspect-1.0 "$e" >/dev/null 2>&1; then
    echo "PASS gst-inspect-1.0 $e (GST_PLUGIN_PATH=<libdir>/gstreamer-1.0)"
  else
    echo "FAIL gst-inspect-1.0 $e"
    fail=1
  fi
done
if PKG_CONFIG_PATH=$lib/pkgconfig pkg-config --exists libmcsec &&
   [ -f "$root$prefix/include/mcsec/mcsec.h" ] &&
   [ -f "$root$prefix/include/mcsec/mcsec-mike.h" ]; then
  echo "PASS pkg-config libmcsec, headers installed"
else
  echo "FAIL pkg-config libmcsec or headers"
  fail=1
fi
for t in mcsec-controller mcsecctl mcsec-join mcsec-keygen; do
  if "$root$prefix/bin/$t" --help >/dev/null 2>&1; then
    echo "PASS $t --help"
  else
    echo "FAIL $t --help"
    fail=1
  fi
done
[ -f "$root$prefix/share/doc/mcsec/mcsec-controller.service" ] &&
  echo "PASS systemd unit and sample configuration installed" ||
  { echo "FAIL systemd unit not installed"; fail=1; }
exit $fail
