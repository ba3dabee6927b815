#!/bin/busybox sh
# mcsec: secure IP multicast for media pipelines
# Copyright (C) 2026 The mcsec authors
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# /init of the initramfs vm-run.sh builds (busybox-static and the kernel
# modules of /modules.load).  It loads the modules, mounts the host's root
# (9p tag "hostroot", read-only) on /host and the run's folder (tag
# "vmout", writable) at its own path inside it, mounts /proc, /sys, /dev,
# /tmp and /run in there, brings lo up and runs the job (JOB.sh in the
# run's folder, written by vm-run.sh) chrooted into the host's root, as
# root.  The job writes its own exit status (the file "status"); this only
# marks the steps ("booted") and powers the machine off.  Kernel command
# line: vmrun.out=FOLDER vmrun.accel=kvm|tcg.
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /host
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin

say() { echo "vm-init: $*"; }
die() {
  say "FAIL: $*"
  sync
  poweroff -f
  sleep 5
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || true
kver=$(uname -r)
# what the kernel asks for on its own (a crypto template, an xfrm type)
# comes from the same set of modules (modules.dep made by depmod on the host)
echo /sbin/modprobe > /proc/sys/kernel/modprobe

out=
accel=unknown
for a in $(cat /proc/cmdline); do
  case "$a" in
  vmrun.out=*) out=${a#vmrun.out=} ;;
  vmrun.accel=*) accel=${a#vmrun.accel=} ;;
  esac
done
[ -n "$out" ] || die "no vmrun.out= on the kernel command line"

# in dependency order (modprobe --show-depends on the host); an
# accelerated cipher whose CPU feature is missing fails to load, and the
# generic one serves instead
while read -r m; do
  [ -n "$m" ] || continue
  name=$(basename "$m" .ko | tr - _)
  # the kernel may have asked for it already (modprobe)
  [ -d "/sys/module/$name" ] && continue
  insmod "/lib/modules/$kver/$m" 2>/dev/null ||
    say "insmod $name failed (an accelerator the CPU lacks?)"
done < /modules.load

o9p=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$o9p,ro,cache=loose" hostroot /host ||
  die "cannot mount the host's root (9p tag hostroot)"
[ -d "/host$out" ] || die "the run's folder $out is not in the host's root"
mount -t 9p -o "$o9p,rw,cache=none" vmout "/host$out" ||
  die "cannot mount the run's folder (9p tag vmout)"
echo "$kver $accel" > "/host$out/booted"

mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t devtmpfs devtmpfs /host/dev
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /host/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm
mount -t tmpfs -o mode=1777 tmpfs /host/tmp
mount -t tmpfs -o mode=755 tmpfs /host/run
ip link set lo up
hostname mcsec-vm

say "kernel $kver ($accel), running the job"
# the job's output to the console too, so that a hang shows how far it got
chroot /host /bin/bash "$out/job.sh" 2>&1 | tee "/host$out/output"
sync
umount "/host$out" 2>/dev/null
say "job done, powering off"
poweroff -f
sleep 5
