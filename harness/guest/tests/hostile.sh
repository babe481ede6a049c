#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest: requests a zoned disk must refuse.  Each is refused with an
# error, none stops the VM or QEMU, and the disk works afterwards.
# Disk: 4 MiB zones (8192 sectors) of 3 MiB capacity, 8 conventional zones.
Z=8192
err() { grep -o 'Input/output error\|Invalid argument\|No space left on device' | head -n1; }
dd if=/dev/zero bs=64k count=1 2>/dev/null | tr '\0' 'h' > /tmp/d
for op in reset open close finish; do
    echo "$op a conventional zone: $(blkzone $op -o $((2 * Z)) -c 1 /dev/vda 2>&1 | err)"
done
echo "open a zone past the end: $(blkzone open -o $((64 * Z)) -c 1 /dev/vda 2>&1 | err)"
echo "write ahead of the write pointer of an empty zone: $(dd if=/tmp/d \
    of=/dev/vda bs=64k seek=$((10 * 64 + 1)) count=1 oflag=direct 2>&1 | err)"
blkzone report -o $((10 * Z)) -c 1 /dev/vda >/dev/null
# In a zone of its own: Linux 7.x refuses every later write to a zone of a
# rotational disk after it refused this one, until a reset (rotational.sh)
echo "write past the capacity: $(dd if=/tmp/d of=/dev/vda bs=64k \
    seek=$((11 * 64 + 48)) count=1 oflag=direct 2>&1 | err)"
blkzone report -o $((11 * Z)) -c 1 /dev/vda >/dev/null
# Fill zone 8 to its capacity (3 MiB), then one write more
dd if=/dev/zero of=/dev/vda bs=1M seek=32 count=3 oflag=direct 2>/dev/null
echo "write to a full zone: $(dd if=/tmp/d of=/dev/vda bs=64k \
    seek=$((8 * 64 + 48)) count=1 oflag=direct 2>&1 | err)"
blkzone report -o $((8 * Z)) -c 1 /dev/vda | sed -n 's/.*zcond: *\(14\)(fu).*/zone 8: full/p'
echo "write zeroes ahead of the write pointer of an empty zone: $(/usr/sbin/blkdiscard \
    -z -o $((12 * Z * 512 + 65536)) -l 65536 /dev/vda 2>&1 | err)"
blkzone report -o $((12 * Z)) -c 1 /dev/vda >/dev/null
echo "read past the capacity: $(dd if=/dev/vda bs=64k skip=$((8 * 64 + 60)) \
    count=1 iflag=direct 2>/dev/null | tr -d '\0' | wc -c) non-zero bytes"
# Still a working disk: a write at the write pointer of zone 9, read back
dd if=/tmp/d of=/dev/vda bs=64k seek=$((9 * 64)) count=1 oflag=direct 2>/dev/null &&
    dd if=/dev/vda bs=64k skip=$((9 * 64)) count=1 iflag=direct 2>/dev/null |
    cmp -s - /tmp/d && echo "the disk works afterwards"
