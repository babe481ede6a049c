#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest: zone resource limits reach Linux as their own errors.
# Disk: 4 MiB zones (8192 sectors), 8 conventional zones, max open 8,
# max active 12.
Z=8192
dd if=/dev/zero of=/tmp/blk bs=4k count=1 2>/dev/null
w() {   # write 4 KiB at the write pointer of empty zone $1
    dd if=/tmp/blk of=/dev/vda bs=4k seek=$(($1 * 1024)) count=1 \
        oflag=direct 2>&1 | grep -o 'Too many references.*\|Value too large.*\|Input/output error'
}
# Eight explicitly open zones: no zone can open implicitly
for z in 8 9 10 11 12 13 14 15; do
    blkzone open -o $((z * Z)) -c 1 /dev/vda || echo "open $z failed"
done
echo "write to a ninth zone: $(w 16)"
echo "open a ninth zone: $(blkzone open -o $((16 * Z)) -c 1 /dev/vda 2>&1 |
    grep -o 'Too many references.*')"
# After a failed write Linux (6.12) refuses writes to the zone until a
# zone report has told it the write pointer again
blkzone report -o $((16 * Z)) -c 1 /dev/vda >/dev/null
# Twelve zones with data (closed or open): no thirteenth may activate
blkzone close -o $((8 * Z)) -c 8 /dev/vda
for z in 8 9 10 11 12 13 14 15 16 17 18 19; do
    r=$(w "$z")
    [ -z "$r" ] || echo "write to zone $z failed: $r"
done
echo "write to a thirteenth zone: $(w 20)"
echo "write off the write pointer: $(dd if=/tmp/blk of=/dev/vda bs=4k \
    seek=$((8 * 1024 + 5)) count=1 oflag=direct 2>&1 | grep -o 'Input/output error')"
blkzone report -o $((8 * Z)) -c 13 /dev/vda | grep -c 'zcond: [24]' |
    sed 's/^/active zones: /'
