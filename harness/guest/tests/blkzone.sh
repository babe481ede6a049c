#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest: the zoned virtio-blk disk as Linux sees it, zone commands
# with util-linux's blkzone, writes at and off the write pointer.
# Disk: 4 MiB zones (8192 sectors), 3 MiB capacity, 8 conventional zones.
Z=8192
fail() { echo "FAIL: $*"; exit 1; }
q() { cat /sys/block/vda/queue/$1; }

echo "zoned=$(q zoned) chunk_sectors=$(q chunk_sectors) nr_zones=$(q nr_zones)"
echo "max_open_zones=$(q max_open_zones) max_active_zones=$(q max_active_zones)"
echo "zone_append_max_bytes=$(q zone_append_max_bytes)"

# A conventional zone takes a write anywhere
dd if=/dev/urandom of=/tmp/data bs=64k count=1 2>/dev/null
dd if=/tmp/data of=/dev/vda bs=64k seek=3 count=1 oflag=direct 2>/dev/null ||
    fail "write to a conventional zone"

# Write Zeroes in conventional zone 1, not aligned to the image's 64 KiB
# clusters: across a cluster boundary, and from inside a cluster over the
# next (as mkfs.xfs sends them)
dd if=/dev/urandom of=/tmp/wz bs=64k count=4 2>/dev/null
dd if=/tmp/wz of=/dev/vda bs=64k seek=64 count=4 oflag=direct 2>/dev/null ||
    fail "write to conventional zone 1"
/usr/sbin/blkdiscard -z -o $((4194304 + 65024)) -l 1024 /dev/vda ||
    fail "write zeroes across a cluster boundary"
/usr/sbin/blkdiscard -z -o $((4194304 + 135168)) -l 126976 /dev/vda ||
    fail "write zeroes from inside a cluster over the next"
dd if=/dev/zero of=/tmp/wz bs=512 seek=127 count=2 conv=notrunc 2>/dev/null
dd if=/dev/zero of=/tmp/wz bs=4096 seek=33 count=31 conv=notrunc 2>/dev/null
dd if=/dev/vda of=/tmp/back bs=64k skip=64 count=4 iflag=direct 2>/dev/null
cmp /tmp/wz /tmp/back || fail "data after write zeroes differs"

# Zone 8: two writes at the write pointer, one off it
dd if=/tmp/data of=/dev/vda bs=64k seek=512 count=1 oflag=direct 2>/dev/null ||
    fail "write at the write pointer"
dd if=/tmp/data of=/dev/vda bs=64k seek=513 count=1 oflag=direct 2>/dev/null ||
    fail "second write at the write pointer"
if dd if=/tmp/data of=/dev/vda bs=64k seek=520 count=1 oflag=direct 2>/dev/null; then
    fail "a write off the write pointer succeeded"
fi
dd if=/dev/vda of=/tmp/back bs=64k skip=513 count=1 iflag=direct 2>/dev/null
cmp /tmp/data /tmp/back || fail "data read back differs"

# Zones 9, 10, 11: open, finish, write then close
blkzone open -o $((9 * Z)) -c 1 /dev/vda || fail "blkzone open"
blkzone finish -o $((10 * Z)) -c 1 /dev/vda || fail "blkzone finish"
dd if=/tmp/data of=/dev/vda bs=64k seek=704 count=1 oflag=direct 2>/dev/null ||
    fail "write to zone 11"
blkzone close -o $((11 * Z)) -c 1 /dev/vda || fail "blkzone close"
# Zone 12: written, then reset
dd if=/tmp/data of=/dev/vda bs=64k seek=768 count=1 oflag=direct 2>/dev/null ||
    fail "write to zone 12"
blkzone reset -o $((12 * Z)) -c 1 /dev/vda || fail "blkzone reset"

echo "REPORT"
blkzone report -o $((8 * Z)) -c 5 /dev/vda
sync
