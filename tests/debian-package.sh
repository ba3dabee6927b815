#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The Debian packages (debian/): the source tree (the files git has or
# would add; never a build folder) copied to a scratch folder and built
# with `dpkg-buildpackage -us -uc -b` (nocheck: the tests run in make
# check; 2 jobs), then each .deb checked: its files (library, headers,
# plugin, tools, systemd unit, man pages), its dependencies and maintainer
# scripts, and, unpacked, the plugin in gst-inspect-1.0 and the tools.
#
# usage: debian-package.sh SOURCE_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
jobs=${MCSEC_DEB_JOBS:-2}
fail=0
pass() { echo "PASS $*"; }
failed() {
  echo "FAIL $*"
  fail=1
}

for p in dpkg-buildpackage dpkg-deb dpkg-architecture dh gst-inspect-1.0; do
  command -v "$p" >/dev/null || {
    echo "FAIL $p is not installed (make deps installs dpkg-dev, debhelper...)"
    exit 1
  }
done
# a clean environment for the build: nothing of meson test's
for v in $(compgen -e | grep -E '^(MESON|MALLOC_PERTURB_|[AUL]SAN_OPTIONS|GST_)' || true); do
  unset "$v"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/mcsec-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
copy=$work/mcsec
mkdir "$copy"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # tracked and new files as they are in the work tree (deleted ones left out)
  (cd "$src" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
    done | tar --null --no-recursion -T - -cf -) | tar -C "$copy" -xf -
else
  # no git: the tree without its meson build folders
  tar -C "$src" --exclude-vcs --exclude-tag-all=build.ninja -cf - . |
    tar -C "$copy" -xf -
fi
if [ -f "$copy/debian/control" ] && [ -z "$(find "$copy" -name build.ninja -print -quit)" ]; then
  pass "source copied ($(find "$copy" -type f | wc -l) files, no build folder)"
else
  failed "source copy: debian/control missing or a build folder copied"
  exit 1
fi

start=$(date +%s)
if (cd "$copy" && DEB_BUILD_OPTIONS="nocheck parallel=$jobs" \
  dpkg-buildpackage -us -uc -b -Pnocheck) >"$work/build.log" 2>&1; then
  pass "dpkg-buildpackage -us -uc -b ($(($(date +%s) - start)) s)"
else
  tail -n 60 "$work/build.log"
  failed "dpkg-buildpackage -us -uc -b (the log's end above)"
  exit 1
fi

version=$(cd "$copy" && dpkg-parsechangelog -S Version)
meson_version=$(sed -n "s/^ *version : '\([^']*\)'.*/\1/p" "$src/meson.build" | head -n 1)
[ "$version" = "$meson_version" ] &&
  pass "debian/changelog's version is meson.build's ($version)" ||
  failed "debian/changelog says $version, meson.build $meson_version"
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || true)
unitdir=${unitdir:-/lib/systemd/system} # as debian/rules says
deb() { echo "$work/${1}_${version}_$arch.deb"; }

# package: the files it must hold (paths as dpkg-deb -c prints them)
declare -A files=(
  [libmcsec0]="./usr/lib/$ma/libmcsec.so.0 ./usr/lib/$ma/libmcsec.so.$meson_version"
  [libmcsec-dev]="./usr/include/mcsec/mcsec.h ./usr/include/mcsec/mcsec-wire.h
    ./usr/include/mcsec/mcsec-mike.h ./usr/lib/$ma/libmcsec.so
    ./usr/lib/$ma/pkgconfig/libmcsec.pc"
  [gstreamer1.0-mcsec]="./usr/lib/$ma/gstreamer-1.0/libgstmcsec.so
    ./usr/share/doc/gstreamer1.0-mcsec/elements.md"
  [mcsec-tools]="./usr/bin/mcsec-controller ./usr/bin/mcsecctl
    ./usr/bin/mcsec-join ./usr/bin/mcsec-keygen
    .$unitdir/mcsec-controller.service
    ./usr/share/man/man8/mcsec-controller.8.gz
    ./usr/share/man/man5/mcsec-controller.conf.5.gz
    ./usr/share/man/man1/mcsecctl.1.gz ./usr/share/man/man1/mcsec-join.1.gz
    ./usr/share/man/man1/mcsec-keygen.1.gz
    ./usr/share/doc/mcsec-tools/examples/controller.conf.sample
    ./usr/share/doc/mcsec-tools/copyright"
)
# package: what its Depends must name (;-separated, a version where it matters)
declare -A depends=(
  [libmcsec0]="libc6;libssl3"
  [libmcsec-dev]="libmcsec0 (= $version);libssl-dev"
  [gstreamer1.0-mcsec]="libmcsec0 (>= $version);libgstreamer1.0-0;libglib2.0-0"
  [mcsec-tools]="libmcsec0 (>= $version);libglib2.0-0;libjson-glib-1.0-0;libcurl4;procps"
)
# has_dep DEPENDS ITEM: ITEM is one of DEPENDS's (with any version when
# ITEM has none)
has_dep() {
  local item IFS=,
  for item in $1; do
    item=${item# }
    case "$item" in "$2" | "$2 ("* | "$2 |"*) return 0 ;; esac
  done
  return 1
}
for p in libmcsec0 libmcsec-dev gstreamer1.0-mcsec mcsec-tools; do
  d=$(deb "$p")
  if [ ! -f "$d" ]; then
    failed "$p: no ${d##*/} (built: $(cd "$work" && echo *.deb))"
    continue
  fi
  dpkg-deb -c "$d" | awk '{print $6}' >"$work/$p.list"
  missing=""
  for f in ${files[$p]}; do
    grep -qxF "$f" "$work/$p.list" || missing="$missing $f"
  done
  [ -z "$missing" ] && pass "$p: $(wc -l <"$work/$p.list") entries, all expected files" ||
    failed "$p: missing$missing"
  deps=$(dpkg-deb -f "$d" Depends)
  missing=""
  IFS=';' read -ra wants <<<"${depends[$p]}"
  for want in "${wants[@]}"; do
    has_dep "$deps" "$want" || missing="$missing '$want'"
  done
  [ -z "$missing" ] && pass "$p: Depends: $deps" ||
    failed "$p: Depends lacks$missing (Depends: $deps)"
done

# the unit as packaged, and the service set up by the maintainer scripts
# (dh_installsystemd found it): known to systemd, not enabled on install
tools=$(deb mcsec-tools)
if [ -f "$tools" ]; then
  mkdir -p "$work/control"
  dpkg-deb -e "$tools" "$work/control"
  grep -q "deb-systemd-helper debian-installed 'mcsec-controller.service'" "$work/control/postinst" &&
    grep -q 'mcsec-controller.service' "$work/control/postrm" &&
    pass "mcsec-tools: postinst/postrm handle mcsec-controller.service (not enabled on install)" ||
    failed "mcsec-tools: maintainer scripts do not handle the unit as expected"
fi

# unpacked: the plugin loads with its library from the packages, the tools run
x=$work/root
for p in libmcsec0 libmcsec-dev gstreamer1.0-mcsec mcsec-tools; do
  [ ! -f "$(deb "$p")" ] || dpkg-deb -x "$(deb "$p")" "$x"
done
unit=$x$unitdir/mcsec-controller.service
[ -f "$unit" ] && grep -qx 'ExecStart=/usr/bin/mcsec-controller /etc/mcsec/controller.conf' "$unit" &&
  pass "the unit runs /usr/bin/mcsec-controller" ||
  failed "the unit's ExecStart ($(grep -s '^ExecStart=' "$unit" || echo 'no unit'))"
export LD_LIBRARY_PATH=$x/usr/lib/$ma
export GST_PLUGIN_PATH_1_0=$x/usr/lib/$ma/gstreamer-1.0
export GST_PLUGIN_SYSTEM_PATH_1_0=
export GST_REGISTRY_1_0=$work/registry.bin
for e in mcsecenc mcsecdec mcseckeysrc; do
  if gst-inspect-1.0 "$e" >/dev/null 2>&1; then
    pass "gst-inspect-1.0 $e (the packaged plugin)"
  else
    failed "gst-inspect-1.0 $e (the packaged plugin)"
  fi
done
# its documentation link: the package's elements.md, uncompressed
uri=$(gst-inspect-1.0 mcsecenc 2>/dev/null | sed -n 's/^ *Doc-uri *//p')
[ "$uri" = file:///usr/share/doc/gstreamer1.0-mcsec/elements.md#mcsecenc ] &&
  [ -f "$x/usr/share/doc/gstreamer1.0-mcsec/elements.md" ] &&
  pass "gst-inspect-1.0 mcsecenc links the packaged elements.md" ||
  failed "gst-inspect-1.0 mcsecenc's Doc-uri: '$uri'"
for t in mcsecctl mcsec-join mcsec-keygen; do
  out=$("$x/usr/bin/$t" --version 2>&1) || true
  [ "$out" = "$t $meson_version" ] && pass "$t --version: $out" ||
    failed "$t --version: $out"
done
"$x/usr/bin/mcsec-controller" --help >/dev/null 2>&1 &&
  pass "mcsec-controller --help" || failed "mcsec-controller --help"
# the packaged library is the one they use
libs=$(ldd "$x/usr/bin/mcsec-keygen")
grep -qF "$x/usr/lib/$ma/libmcsec.so.0" <<<"$libs" &&
  pass "mcsec-keygen links the packaged libmcsec.so.0" ||
  failed "mcsec-keygen does not link the packaged libmcsec.so.0"
exit $fail
