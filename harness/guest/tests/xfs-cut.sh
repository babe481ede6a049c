#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest, after nvme-prep.sh (NVME_NS=2): zoned XFS, the realtime
# device the ZNS namespace nsid 1, the data section on nsid 2, as an
# application that syncs after its fsyncs uses it.  The host prepends
#   PHASE  write: make the filesystem, mount it, write FILES files of 256
#                 KiB each (the same data: "RND <sha256>") with fsync(2)
#                 after each, one more without,
#                 then sync(1); print "=== SYNCED ===" and wait (the host
#                 cuts the power)
#          check: mount it; "MOUNT ok" and every file's checksum, or
#                 "MOUNT failed" and the kernel's XFS messages
#   FILES  how many files (default 24)
# and prints "ZONE ..." lines of nsid 1's first zones (nvme-prep.sh)
# after each phase's I/O.
fail() { echo "FAIL: $*"; exit 1; }
loadmod xfs
M=/mnt
RT=/dev/nvme-ns1
mnt() { mount -t xfs -o rtdev=$RT /dev/nvme-ns2 $M; }
if [ "$PHASE" = write ]; then
    mkfs.xfs -f -r rtdev=$RT /dev/nvme-ns2 > /tmp/mkfs.out 2>&1 ||
        { cat /tmp/mkfs.out; fail "mkfs.xfs"; }
    mnt || fail "mount"
    dd if=/dev/urandom of=/tmp/rnd bs=256k count=1 2>/dev/null
    echo "RND $(sha256sum < /tmp/rnd | cut -d' ' -f1)"
    for i in $(seq "${FILES:-24}"); do
        cp /tmp/rnd $M/f$i && /gnu/bin/sync $M/f$i || fail "write f$i"
    done
    cp /tmp/rnd $M/last
    sync
    echo "LBS $LBS"
    zones $N1 0 16
    echo "=== SYNCED ==="
    sleep 600
else
    if mnt; then
        echo "MOUNT ok"
        (cd $M && for f in *; do echo "SUM $(sha256sum < "$f" | cut -d' ' -f1) $f"; done)
        umount $M
    else
        echo "MOUNT failed"
        dmesg | grep 'XFS' | tail -n 5
    fi
    zones $N1 0 16
fi
