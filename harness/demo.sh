#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The main job (make demo): a zoned qcow2 image in use, with the built
# tools, then by a Linux guest over virtio-blk, across a power cut.

. "$(dirname "$0")/common.sh"

D=$BUILD/demo
rm -rf "$D" && mkdir -p "$D"
img=$D/zoned.qcow2
run() { printf '\n$ %s\n' "$*"; "$@"; }
io() { run "$BUILD/qemu-io" -f qcow2 "$@" "$img"; }

msg "a host-managed zoned disk: 64 MiB zones of 48 MiB capacity, 4 conventional"
run "$BUILD/qemu-img" create -f qcow2 -o zone.mode=host-managed,zone.size=64M,zone.capacity=48M,zone.conventional_zones=4,zone.max_open_zones=4,zone.max_active_zones=6 "$img" 1G
run "$BUILD/qemu-img" info "$img"

msg "writes go at the write pointer; zone append says where it wrote"
io -c "write -P 0x11 256M 1M" -c "write -P 0x22 257M 1M" \
   -c "zap -p 320M 64k" -c "zap -p 320M 64k" -c "zrp 256M 2"
msg "a write that is not at the write pointer is refused"
io -c "write 260M 4k" || true

msg "write pointers survive a restart (zones with data come back closed)"
io -c "zrp 256M 3" -c "read -P 0x22 257M 1M" -c "read -P 0 258M 1M"

msg "finish one zone, reset another: its clusters are freed (discard=unmap)"
io -d unmap -c "zf 256M 64M" -c "zrs 320M 64M" -c "zrp 256M 2"
run "$BUILD/qemu-img" check "$img"

msg "a Linux guest (TCG) uses a zoned disk over virtio-blk"
gimg=$D/guest.qcow2
"$BUILD/qemu-img" create -q -f qcow2 -o zone.mode=host-managed,zone.size=4M,zone.capacity=3M,zone.conventional_zones=8,zone.max_open_zones=8,zone.max_active_zones=12 "$gimg" 256M
disk=(-blockdev "file,filename=$gimg,node-name=f"
      -blockdev "qcow2,file=f,node-name=d" -device "virtio-blk-pci,drive=d")
run "$TOP/harness/guest/run.sh" "$TOP/harness/guest/tests/blkzone.sh" "${disk[@]}"
msg "the guest writes and syncs; then QEMU is killed (SIGKILL) and restarted"
"$BUILD/qemu-img" create -q -f qcow2 -o zone.mode=host-managed,zone.size=4M,zone.capacity=3M,zone.conventional_zones=8,zone.max_open_zones=8,zone.max_active_zones=12 "$gimg" 256M
GUEST_KILL_AT="=== SYNCED ===" run "$TOP/harness/guest/run.sh" \
    "$TOP/harness/guest/tests/persist-write.sh" "${disk[@]}"
run "$TOP/harness/guest/run.sh" "$TOP/harness/guest/tests/persist-check.sh" \
    "${disk[@]}"
msg "done: the images are in $D"
