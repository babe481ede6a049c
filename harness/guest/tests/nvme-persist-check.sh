#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest (after nvme-prep.sh), after the power cut that followed
# nvme-persist-write.sh: the zones and the checksums of the same data
# ("ZONE ..." and "SUM ..." lines), then a write at the write pointer of
# zone 0 and of zone 4 (reset before the cut), read back.
persist_state
head -c 4096 /dev/urandom > /tmp/d
ok=1
for z in 0 4; do
    wp=$(zones $D $z 1 | cut -d' ' -f4)
    at=$((($(zs $z) * LBS + wp) / 4096))
    dd if=/tmp/d of=$D bs=4k seek=$at count=1 oflag=direct 2>/dev/null &&
        dd if=$D of=/tmp/back bs=4k skip=$at count=1 iflag=direct 2>/dev/null &&
        cmp -s /tmp/d /tmp/back || { echo "zone $z: a write at its write pointer failed"; ok=0; }
done
[ $ok = 1 ] && echo "writes at the write pointers after the restart: ok"
