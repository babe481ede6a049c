#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest, after the power cut: the synced writes and their write
# pointers are there.
Z=8192
dd if=/dev/zero bs=64k count=2 2>/dev/null | tr '\0' 'Z' > /tmp/data
blkzone report -o $((8 * Z)) -c 2 /dev/vda |
    sed -n 's/.*wptr \(0x[0-9a-f]*\) .*zcond: *\([0-9]*\).*/wptr=\1 cond=\2/p'
dd if=/dev/vda of=/tmp/back bs=64k skip=512 count=2 iflag=direct 2>/dev/null
rc=0
cmp -s /tmp/data /tmp/back && echo "zone 8 data: intact" ||
    { echo "zone 8 data: LOST"; rc=1; }
dd if=/dev/vda of=/tmp/back bs=64k skip=576 count=1 iflag=direct 2>/dev/null
head -c 65536 /tmp/data | cmp -s - /tmp/back && echo "zone 9 data: intact" ||
    { echo "zone 9 data: LOST"; rc=1; }
exit $rc
