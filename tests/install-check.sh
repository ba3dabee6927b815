#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# `meson install` into a scratch root: the plugin is found by gst-inspect-1.0
# through GST_PLUGIN_PATH (docs/elements.md), `pkg-config libmcsec` works,
# the headers are there, every installed tool answers --help, the systemd
# unit is where systemd looks (under the prefix), runs the prefix's
# binaries and passes `systemd-analyze verify`, and every man page is
# installed and renders without a warning.
#
# usage: install-check.sh BUILD_DIR
set -euo pipefail
build=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
meson install -C "$build" --destdir "$root" --no-rebuild >/dev/null
meson introspect "$build" --buildoptions >"$root/options.json"
option() {
  /usr/bin/python3 -c 'import json,sys; print(next(o["value"] for o in json.load(open(sys.argv[1])) if o["name"] == sys.argv[2]))' \
    "$root/options.json" "$1"
}
prefix=$(option prefix)
libdir=$(option libdir)
bindir=$(option bindir)
case "$bindir" in /*) ;; *) bindir=$prefix/$bindir ;; esac
mandir=$(option mandir)
case "$mandir" in /*) ;; *) mandir=$prefix/$mandir ;; esac
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
[ -f "$root$prefix/share/doc/mcsec/controller.conf.sample" ] &&
  echo "PASS sample configuration installed" ||
  { echo "FAIL sample configuration not installed"; fail=1; }
# gst-inspect-1.0's origin and documentation links: the installed
# elements.md (meson option doc-url, empty here: file://PREFIX/...)
docurl=$(option doc-url)
for e in mcsecenc mcsecdec mcseckeysrc mcsecrtpenc mcsecrtpdec; do
  info=$(gst-inspect-1.0 "$e" 2>/dev/null || true)
  uri=$(sed -n 's/^ *Doc-uri *//p' <<<"$info")
  origin=$(sed -n 's/^ *Origin URL *//p' <<<"$info")
  doc=${uri#file://}
  doc=${doc%%#*}
  anchor=${uri##*#}
  ok=1
  [ -n "$docurl" ] || [ "$origin" = "file://$prefix/share/doc/mcsec/" ] || ok=0
  [ "${uri%%#*}" = "${origin}elements.md" ] || ok=0
  [ -f "$root$doc" ] || ok=0
  # the anchor is a section's heading (GitHub's rule: lower case, - for spaces)
  grep -qix "## ${anchor//-/ }" "$root$doc" 2>/dev/null || ok=0
  if [ "$ok" = 1 ]; then
    echo "PASS $e: origin $origin, documentation $uri (installed)"
  else
    echo "FAIL $e: origin '$origin', documentation '$uri' (doc-url '$docurl')"
    fail=1
  fi
done

# The systemd unit (tools/meson.build): systemd's own folder when the prefix
# is systemd's (pkg-config systemd), else the same folder under the prefix.
unitdir=$(option systemdsystemunitdir)
if [ "$unitdir" = no ]; then
  echo "SKIP systemd unit: configured with -Dsystemdsystemunitdir=no"
else
  if [ -z "$unitdir" ]; then
    unitdir=$prefix/lib/systemd/system
    if pkg-config --exists systemd &&
      [ "$(pkg-config --variable=prefix systemd)" = "$prefix" ]; then
      unitdir=$(pkg-config --variable=systemdsystemunitdir systemd)
    fi
  fi
  unit=$root$unitdir/mcsec-controller.service
  if [ -f "$unit" ]; then
    echo "PASS systemd unit in $unitdir"
  else
    echo "FAIL systemd unit not in $unitdir ($(cd "$root" && find . -name '*.service'))"
    fail=1
  fi
  # what the unit must say (docs/controller.md "Running it as a service")
  for line in "ExecStartPre=$bindir/mcsec-controller --check /etc/mcsec/controller.conf" \
    "ExecStart=$bindir/mcsec-controller /etc/mcsec/controller.conf" \
    'ExecReload=/bin/kill -HUP $MAINPID' DynamicUser=yes StateDirectory=mcsec \
    LoadCredential=controller.key:/etc/mcsec/controller.key \
    LoadCredential=controller-sign.key:/etc/mcsec/controller-sign.key \
    ProtectSystem=strict NoNewPrivileges=yes PrivateDevices=yes \
    LimitNOFILE=262144 LimitCORE=0; do
    if grep -qxF -- "$line" "$unit" 2>/dev/null; then
      echo "PASS unit: $line"
    else
      echo "FAIL unit: no line '$line'"
      fail=1
    fi
  done
  # systemd-analyze verify: syntax, every setting known, the programs there,
  # the man pages named in Documentation= found; on a copy whose binaries
  # are the scratch root's (it checks that they exist and are executable)
  if ! command -v systemd-analyze >/dev/null; then
    echo "FAIL systemd-analyze is not installed (Debian's systemd package; make deps)"
    fail=1
  elif [ -f "$unit" ]; then
    mkdir -p "$root/verify"
    sed "s#=$bindir/#=$root$bindir/#" "$unit" >"$root/verify/mcsec-controller.service"
    out=$(MANPATH=$root$mandir SYSTEMD_LOG_COLOR=0 \
      systemd-analyze verify "$root/verify/mcsec-controller.service" 2>&1) && [ -z "$out" ] &&
      echo "PASS systemd-analyze verify mcsec-controller.service" ||
      { echo "FAIL systemd-analyze verify mcsec-controller.service:"; echo "$out"; fail=1; }
  fi
fi

# The man pages (docs/man/*.scd, built with scdoc): installed under mandir,
# found by man, rendered by groff without a warning, a NAME line apropos
# can read (lexgrog).
if [ "$(option man)" = disabled ]; then
  echo "SKIP man pages: configured with -Dman=disabled"
else
  for page in man8/mcsec-controller.8 man5/mcsec-controller.conf.5 \
    man1/mcsecctl.1 man1/mcsec-join.1 man1/mcsec-keygen.1; do
    f=$root$mandir/$page
    name=${page#*/}
    if [ ! -f "$f" ]; then
      echo "FAIL man page $page not installed (scdoc missing? make deps, or -Dman=disabled)"
      fail=1
      continue
    fi
    warnings=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$f" 2>&1)
    found=$(MANPATH=$root$mandir man -w "${name##*.}" "${name%.*}" 2>&1)
    if [ -z "$warnings" ] && [ "$found" = "$f" ] && lexgrog "$f" >/dev/null 2>&1; then
      echo "PASS man page $page: man finds it, groff renders it without warnings"
    else
      echo "FAIL man page $page: ${warnings:-no groff warning}; man -w: $found; $(lexgrog "$f" 2>&1)"
      fail=1
    fi
  done
fi
exit $fail
