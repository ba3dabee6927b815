#!/usr/bin/env bash
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Runs SCRIPT as root inside a QEMU virtual machine booted from Debian's
# stock kernel (the package linux-image-amd64 depends on), for the tests
# that need kernel features the build machine's kernel lacks (IPsec: ESP,
# XFRM).  The host's root is shared read-only over virtio-9p, so SCRIPT
# runs the very build under test (BUILD_DIR's binaries, gst-launch-1.0,
# python3, ip) chrooted into it, with its own /proc, /sys, /dev, /tmp
# (tmpfs) and /run, and lo up.  The run's folder (on the host, also at the
# same path inside) is the one writable share: the job's output and exit
# status come back through it.  Prints SCRIPT's output and exits with its
# status.
#
# The kernel is never installed into the host: `apt-get download` fetches
# its .deb into BUILD_DIR/kernel-vm/ (once), `dpkg-deb -x` unpacks it, and
# an initramfs is made of busybox-static, init.sh beside this file and the
# modules of MODULES below with their dependencies (depmod and
# `modprobe --show-depends` on the unpacked tree); both are cached under
# BUILD_DIR/kernel-vm/ until the package, this script, init.sh or busybox
# change.
#
# KVM when /dev/kvm is usable (a VM can be made, and it is not kvm-pvm,
# a nested set-up that runs only PVM-built guest kernels), else TCG,
# software emulation; it says which.  A KVM machine that does not boot
# within 30 s is run again under TCG (unless VM_ACCEL=kvm asked for KVM).
# Everything is bounded: a machine that has not booted within
# VM_BOOT_TIMEOUT seconds, or not finished within VM_TIMEOUT, is killed and
# the run FAILS with the console log.  So does a missing tool or kernel
# package: this never skips.
#
# usage: vm-run.sh BUILD_DIR SCRIPT [ARGS...]
# environment: VM_ACCEL=kvm|tcg (default: kvm when usable), VM_MEMORY (MiB,
#   1024), VM_CPUS (2 with KVM, 1 with TCG), VM_BOOT_TIMEOUT (30 s with
#   KVM, 240 s with TCG), VM_TIMEOUT (the whole run: 300 s with KVM, 900 s
#   with TCG), VM_KERNEL_PACKAGE (a linux-image-*-amd64 package instead of
#   the one linux-image-amd64 depends on), VM_KEEP=1 (keep the run's folder)
set -euo pipefail

fail() {
  echo "vm-run: FAIL: $*" >&2
  exit 1
}
[ $# -ge 2 ] || fail "usage: vm-run.sh BUILD_DIR SCRIPT [ARGS...]"
[ -d "$1" ] || fail "no build folder $1"
[ -f "$2" ] || fail "no script $2"
build=$(cd "$1" && pwd -P)
script=$(cd "$(dirname "$2")" && pwd -P)/$(basename "$2")
shift 2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
cache=$build/kernel-vm
case "$cache" in
*[[:space:]]*) fail "the build folder's path has white space: $build" ;;
esac
# inside, these are the VM's own (tmpfs, proc, ...), not the host's
case "$script" in
/tmp/* | /run/* | /dev/* | /proc/* | /sys/*)
  fail "$script: inside the VM $(echo "$script" | cut -d/ -f2) is the VM's own; put the script elsewhere" ;;
esac

# The modules the tests need; their dependencies are added in order.
# Built in (=y in the package's boot/config-*) needs nothing; a name the
# kernel has neither as a module nor built in is an error.
MODULES=(
  # the host's root and the run's folder over virtio-9p
  virtio_pci 9pnet_virtio 9p
  # IPsec: ESP (IPv4, IPv6), XFRM over netlink (ip xfrm), PF_KEY
  esp4 esp6 xfrm_user af_key
  # the ESP transforms: rfc4106(gcm(aes)), rfc4543(gcm(aes)),
  # rfc7539esp(chacha20,poly1305), generic and x86 (AES-NI, PCLMULQDQ,
  # SSSE3/AVX2) implementations, the IV generators
  gcm ctr ghash_generic authenc chacha20poly1305 chacha_generic
  poly1305_generic aesni_intel ghash_clmulni_intel chacha_x86_64
  poly1305_x86_64 seqiv echainiv
  # the IV generators' random numbers: the default "stdrng" (a DRBG) and
  # what it is built on; without it no ESP state can be added ("unable
  # to initialize cryptographic operations")
  sha512_generic sha512_ssse3 jitterentropy_rng drbg
)

need() {
  command -v "$1" >/dev/null 2>&1 ||
    fail "$1 not found: install the Debian package $2 (make deps does)"
}
need qemu-system-x86_64 qemu-system-x86
need cpio cpio
need depmod kmod
need modprobe kmod
need dpkg-deb dpkg
need apt-get apt
need flock util-linux
need python3 python3
busybox=/bin/busybox
[ -x "$busybox" ] || fail "no $busybox: install the Debian package busybox-static"
if ldd "$busybox" >/dev/null 2>&1; then
  fail "$busybox is dynamically linked: install busybox-static (not busybox)"
fi

mkdir -p "$cache/debs"
# one preparation at a time per build folder (tests may run in parallel)
exec 9>"$cache/lock"
flock -w 1200 9 || fail "$cache/lock held for 20 minutes"

# --- the kernel package ---
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 ~ /Depends:$/ && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
pkg=${VM_KERNEL_PACKAGE:-}
if [ -z "$pkg" ]; then
  pkg=$(kernel_package)
  if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ] &&
    ! ls "$cache/debs/"linux-image-*.deb >/dev/null 2>&1; then
    # a machine whose packages were all there, so make deps did not update
    echo "vm-run: no package index for linux-image-amd64: apt-get update"
    timeout 300 apt-get update -q || true
    pkg=$(kernel_package)
  fi
fi
deb=
if [ -n "$pkg" ]; then
  deb=$(ls -t "$cache/debs/${pkg}"_*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$deb" ]; then
    echo "vm-run: downloading $pkg (apt-get download, not installed)"
    if ! (cd "$cache/debs" &&
      timeout 600 apt-get download -q -o APT::Sandbox::User=root "$pkg"); then
      fail "apt-get download $pkg failed (apt-get update first: make deps)"
    fi
    deb=$(ls -t "$cache/debs/${pkg}"_*.deb 2>/dev/null | head -n1 || true)
    [ -n "$deb" ] || fail "apt-get download $pkg left no .deb in $cache/debs"
    # older kernels' packages are of no more use
    find "$cache/debs" -name '*.deb' ! -name "$(basename "$deb")" -delete
  fi
else
  # no package index (apt-get update never ran): a package fetched before
  deb=$(ls -t "$cache/debs/"linux-image-*.deb 2>/dev/null | head -n1 || true)
  [ -n "$deb" ] || fail "cannot tell which kernel linux-image-amd64 depends on \
(apt-cache depends linux-image-amd64 says nothing: run apt-get update, as make deps does)"
  echo "vm-run: no package index; using the cached $(basename "$deb")"
fi

# --- vmlinuz and the initramfs, made once per package and harness ---
stamp=$(cat "$deb.sha256" 2>/dev/null || true)
if [ -z "$stamp" ]; then
  stamp=$(sha256sum "$deb" | cut -d' ' -f1)
  echo "$stamp" > "$deb.sha256"
fi
stamp="$(basename "$deb") $stamp $(cat "$here/vm-run.sh" "$here/init.sh" "$busybox" |
  sha256sum | cut -d' ' -f1)"
img=$cache/image
if [ "$(cat "$img/stamp" 2>/dev/null || true)" != "$stamp" ]; then
  echo "vm-run: making the kernel and initramfs from $(basename "$deb")"
  rm -rf "$img" "$cache/unpacked" "$cache/initramfs"
  mkdir -p "$img"
  dpkg-deb -x "$deb" "$cache/unpacked" || fail "dpkg-deb -x $deb failed"
  kver=$(ls "$cache/unpacked/lib/modules")
  [ -n "$kver" ] && [ "$(echo "$kver" | wc -l)" -eq 1 ] ||
    fail "$(basename "$deb") holds no single lib/modules/VERSION"
  cp "$cache/unpacked/boot/vmlinuz-$kver" "$img/vmlinuz"
  cp "$cache/unpacked/boot/config-$kver" "$img/config"
  # Debian's packages do not ship modules.dep: the postinst makes it
  depmod -b "$cache/unpacked" "$kver"
  root=$cache/initramfs
  mkdir -p "$root/bin" "$root/lib/modules/$kver"
  : > "$root/modules.load"
  for m in "${MODULES[@]}"; do
    deps=$(modprobe -d "$cache/unpacked" -S "$kver" --show-depends "$m" 2>&1) ||
      fail "kernel $kver has no module $m: $deps"
    while read -r kind path _; do
      case "$kind" in
      builtin) continue ;;
      insmod) ;;
      *) fail "modprobe --show-depends $m: unexpected '$kind $path'" ;;
      esac
      rel=${path#"$cache/unpacked/lib/modules/$kver/"}
      grep -qxF "$rel" "$root/modules.load" && continue
      mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
      cp "$path" "$root/lib/modules/$kver/$rel"
      echo "$rel" >> "$root/modules.load"
    done <<< "$deps"
  done
  cp "$cache/unpacked/lib/modules/$kver"/modules.{builtin,builtin.modinfo,order} \
    "$root/lib/modules/$kver/"
  depmod -b "$root" "$kver"
  cp "$busybox" "$root/bin/busybox"
  cp "$here/init.sh" "$root/init"
  chmod 755 "$root/init" "$root/bin/busybox"
  (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) \
    > "$img/initramfs.cpio"
  echo "$kver" > "$img/kver"
  cp "$root/modules.load" "$img/modules.load"
  rm -rf "$cache/unpacked" "$root"
  echo "$stamp" > "$img/stamp"
fi
kver=$(cat "$img/kver")
# runs share the image; the next rebuild waits for them
flock -s 9

# --- KVM or TCG ---
# kvm: "" when /dev/kvm can run a stock kernel, else why not
kvm_unusable() {
  [ -c /dev/kvm ] || { echo "/dev/kvm missing"; return; }
  if [ -d /sys/module/kvm_pvm ] && [ ! -d /sys/module/kvm_intel ] &&
    [ ! -d /sys/module/kvm_amd ]; then
    # a nested "pagetable virtual machine": it runs PVM-built guest kernels
    # only, and Debian's stops before its first line
    echo "/dev/kvm is kvm-pvm, which cannot run a stock kernel"
    return
  fi
  # the API answers and a VM can be made (KVM_GET_API_VERSION, KVM_CREATE_VM)
  timeout 10 python3 - <<'PY' 2>/dev/null || echo "/dev/kvm not usable"
import fcntl, os
fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
assert fcntl.ioctl(fd, 0xAE00) == 12
os.close(fcntl.ioctl(fd, 0xAE01, 0))
PY
}
accel=${VM_ACCEL:-}
why=
if [ -z "$accel" ]; then
  why=$(kvm_unusable)
  if [ -z "$why" ]; then accel=kvm; else accel=tcg; fi
fi
[ "$accel" = kvm ] || [ "$accel" = tcg ] || fail "VM_ACCEL=$accel: kvm or tcg"

# --- the run ---
run=$(mktemp -d "$cache/run.XXXXXX")
qpid=
stop_qemu() {
  if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
    kill "$qpid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$qpid" 2>/dev/null || true
  fi
  [ -z "$qpid" ] || wait "$qpid" 2>/dev/null || true
  qpid=
}
cleanup() {
  local rc=$?
  stop_qemu
  if [ "${VM_KEEP:-0}" = 1 ]; then
    echo "vm-run: the run's folder is kept: $run" >&2
  else
    rm -rf "$run"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

show_console() {
  echo "--- console ($run/console.log) ---" >&2
  cat "$run/console.log" >&2 2>/dev/null || true
  echo "--- qemu ---" >&2
  cat "$run/qemu.log" >&2 2>/dev/null || true
  echo "---" >&2
}

# boot ACCEL BOOT_TIMEOUT TIMEOUT: runs the job; status 0 when the VM ran
# it to the end, 2 when it did not boot within BOOT_TIMEOUT (killed) or
# stopped before (the console is in $run), fails the run when it booted
# but did not finish within TIMEOUT
boot() {
  local accel=$1 boot_timeout=$2 timeout_s=$3 cpu cpus start booted='' qrc=0
  local done_at=''
  case "$accel" in
  kvm) cpu=host cpus=${VM_CPUS:-2} ;;
  tcg) cpu=max cpus=${VM_CPUS:-1} ;;
  esac
  rm -f "$run/booted" "$run/status" "$run/output" "$run/console.log"
  start=$SECONDS
  qemu-system-x86_64 -nodefaults -no-user-config -nographic -no-reboot \
    -machine q35 -accel "$accel" -cpu "$cpu" -smp "$cpus" \
    -m "${VM_MEMORY:-1024}" \
    -kernel "$img/vmlinuz" -initrd "$img/initramfs.cpio" \
    -append "console=ttyS0 panic=-1 loglevel=4 vmrun.out=$run vmrun.accel=$accel" \
    -serial "file:$run/console.log" -monitor none \
    -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
    -fsdev "local,id=vmout,path=$run,security_model=none" \
    -device virtio-9p-pci,fsdev=vmout,mount_tag=vmout \
    < /dev/null > "$run/qemu.log" 2>&1 &
  qpid=$!
  while kill -0 "$qpid" 2>/dev/null; do
    if [ -z "$booted" ] && [ -e "$run/booted" ]; then
      booted=$((SECONDS - start))
      echo "vm-run: booted in ${booted} s"
    fi
    if [ -z "$booted" ] && [ $((SECONDS - start)) -ge "$boot_timeout" ]; then
      stop_qemu
      return 2
    fi
    if [ -s "$run/status" ] && [ -z "${done_at:-}" ]; then
      done_at=$SECONDS
    fi
    if [ -n "${done_at:-}" ] && [ $((SECONDS - done_at)) -ge 30 ]; then
      # the job is done but the machine does not power off
      echo "vm-run: the VM did not power off within 30 s of the job's end: killed" >&2
      stop_qemu
      break
    fi
    if [ $((SECONDS - start)) -ge "$timeout_s" ]; then
      stop_qemu
      cat "$run/output" 2>/dev/null || true
      show_console
      fail "the VM did not finish within $timeout_s s ($accel)"
    fi
    sleep 0.2
  done
  if [ -n "$qpid" ]; then
    wait "$qpid" || qrc=$?
    qpid=
  fi
  elapsed=$((SECONDS - start))
  if [ ! -e "$run/booted" ]; then
    echo "vm-run: the VM stopped before it booted (qemu status $qrc, $accel)" >&2
    return 2
  fi
}

# the job: SCRIPT with its arguments, quoted, in a known environment
job() {
  echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  echo "export HOME=/tmp TMPDIR=/tmp LANG=C.UTF-8 VM_RUN=1 VM_ACCEL=$1"
  echo "cd /tmp"
  printf '%q ' /bin/bash "$script" "${@:2}"
  echo
  echo "echo \$? > $run/status"
}

rc=0
if [ "$accel" = kvm ]; then
  echo "vm-run: kernel $kver, accelerator: KVM (${VM_ACCEL:+VM_ACCEL=kvm, }/dev/kvm usable)"
  job kvm "$@" > "$run/job.sh"
  boot kvm "${VM_BOOT_TIMEOUT:-30}" "${VM_TIMEOUT:-300}" || rc=$?
  if [ "$rc" -eq 2 ]; then
    show_console
    # KVM can be there and still not run a stock kernel (nested set-ups):
    # when it was not asked for, software emulation does the run
    [ -z "${VM_ACCEL:-}" ] ||
      fail "the VM did not boot within ${VM_BOOT_TIMEOUT:-30} s (kvm)"
    why="KVM did not boot within ${VM_BOOT_TIMEOUT:-30} s"
    accel=tcg
  fi
fi
if [ "$accel" = tcg ]; then
  echo "vm-run: kernel $kver, accelerator: TCG, software emulation (${why:-VM_ACCEL=tcg})"
  job tcg "$@" > "$run/job.sh"
  rc=0
  boot tcg "${VM_BOOT_TIMEOUT:-240}" "${VM_TIMEOUT:-900}" || rc=$?
  if [ "$rc" -eq 2 ]; then
    show_console
    fail "the VM did not boot within ${VM_BOOT_TIMEOUT:-240} s (tcg)"
  fi
fi
if [ ! -s "$run/status" ]; then
  cat "$run/output" 2>/dev/null || true
  show_console
  fail "the job left no exit status ($accel)"
fi
cat "$run/output"
status=$(cat "$run/status")
echo "vm-run: $(basename "$script") exited $status; the VM ran ${elapsed} s ($accel)"
exit "$status"
