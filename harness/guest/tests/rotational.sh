#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest (after nullb.sh made /dev/zbd0, non-rotational, and
# /dev/zbd1, rotational): Linux 7.x's zone write plugging on rotational
# zoned disks.  On an empty zone, a write past the zone's capacity is
# refused by the kernel itself; on a rotational disk the zone then refuses
# every write, a report zones does not clear that, a reset does.  Linux
# sees every virtio-blk disk as rotational.
# Disks: 4 MiB zones (8192 sectors), 3 MiB capacity, 8 conventional zones.
Z=8192
dd if=/dev/zero bs=64k count=1 2>/dev/null | tr '\0' 'r' > /tmp/d
w() {  # w DEV 64K-BLOCK: write /tmp/d there; accepted or refused
    dd if=/tmp/d of="$1" bs=64k seek="$2" count=1 oflag=direct 2>/dev/null &&
        echo accepted || echo refused
}
for dev in /dev/zbd0 /dev/zbd1 /dev/vda; do
    rot=$(cat "/sys/block/${dev#/dev/}/queue/rotational")
    past=$(w "$dev" $((8 * 64 + 48)))
    blkzone report -o $((8 * Z)) -c 1 "$dev" >/dev/null
    report=$(w "$dev" $((8 * 64)))
    blkzone reset -o $((8 * Z)) -c 1 "$dev"
    reset=$(w "$dev" $((8 * 64)))
    echo "$dev rotational=$rot: past the capacity $past," \
         "at the write pointer after a report $report, after a reset $reset"
done
