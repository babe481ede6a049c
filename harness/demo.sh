#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The main job (make demo): a zoned qcow2 image in use, with the built
# tools, then by a Linux guest over virtio-blk and NVMe ZNS, across a power
# cut.

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

msg "a Linux guest (TCG): zone report, fio zoned workload, f2fs, an NVMe ZNS namespace, then a power cut"
geo=zone.mode=host-managed,zone.size=4M,zone.capacity=3M,zone.conventional_zones=8,zone.max_open_zones=8,zone.max_active_zones=12
run "$BUILD/qemu-img" create -q -f qcow2 -o "$geo" "$D/vda.qcow2" 256M
run "$BUILD/qemu-img" create -q -f qcow2 -o "$geo" "$D/vdb.qcow2" 1G
disks=()
for v in vda vdb; do
    disks+=(-blockdev "file,filename=$D/$v.qcow2,node-name=f$v"
            -blockdev "qcow2,file=f$v,node-name=$v" -device "virtio-blk-pci,drive=$v")
done
# An NVMe ZNS namespace on a third image: ZNS has no conventional zones
run "$BUILD/qemu-img" create -q -f qcow2 -o zone.mode=host-managed,zone.size=8M,zone.capacity=6M,zone.max_open_zones=8,zone.max_active_zones=12 "$D/zns.qcow2" 512M
disks+=(-blockdev "file,filename=$D/zns.qcow2,node-name=fzns"
        -blockdev "qcow2,file=fzns,node-name=zns"
        -device nvme,id=nvme0,serial=zns0 -device "nvme-ns,drive=zns,bus=nvme0,nsid=1")
"$TOP/harness/guest/build.sh"
for p in write check; do
    compose "$D/guest-$p.sh" "PHASE=$p" -- "$TOP/harness/guest/tests/demo.sh"
done
printf '\n$ %s\n' "harness/guest/run.sh guest-write.sh ${disks[*]}"
GUEST_KILL_AT="=== SYNCED ===" "$TOP/harness/guest/run.sh" \
    "$D/guest-write.sh" "${disks[@]}" | tee "$D/boot1.out" | grep -v '^N\?WP '
msg "QEMU was killed with SIGKILL after the guest synced; booting again"
printf '\n$ %s\n' "harness/guest/run.sh guest-check.sh ${disks[*]}"
"$TOP/harness/guest/run.sh" "$D/guest-check.sh" "${disks[@]}" |
    tee "$D/boot2.out" | grep -v '^N\?WP '
grep '^WP \|^NWP \|^file ' "$D/boot1.out" | sort > "$D/before"
grep '^WP \|^NWP \|^file ' "$D/boot2.out" | sort > "$D/after"
if [ "$(grep -c '^WP ' "$D/before")" = 56 ] &&
   [ "$(grep -c '^NWP ' "$D/before")" = 64 ] && diff "$D/before" "$D/after"; then
    msg "the 56 write pointers of vda, the 64 of the NVMe namespace and the file on vdb's f2fs survived the power cut"
else
    die "the power cut lost something (see the difference above)"
fi
# a cut may leak clusters (exit code 3), never corrupt
run "$BUILD/qemu-img" check "$D/vda.qcow2" || [ $? = 3 ]
msg "done: the images are in $D"
