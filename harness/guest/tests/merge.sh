#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest: two writes that meet at a zone boundary, submitted
# together, must not be merged into one write across it by the device.
# The last 64 KiB of conventional zone 7 and the first 64 KiB of zone 8
# (at its write pointer) go to the disk in one io_submit; QEMU's
# virtio-blk merges adjacent requests of a batch unless they meet at a zone
# boundary.  Disk: 4 MiB zones, 8 conventional.
Z=8192
bad=0
for i in $(seq 20); do
    blkzone reset -o $((8 * Z)) -c 1 /dev/vda || exit 1
    e=$(fio --name=meet --filename=/dev/vda --direct=1 --ioengine=libaio \
            --iodepth=2 --iodepth_batch_submit=2 --rw=write --bs=64k \
            --offset=$((8 * Z * 512 - 65536)) --size=128k \
            --output-format=terse --terse-version=3 2>/dev/null | cut -d';' -f5)
    [ "$e" = 0 ] || bad=$((bad + 1))
done
echo "writes meeting at a zone boundary: $bad of 20 batches failed"
blkzone report -o $((8 * Z)) -c 1 /dev/vda |
    sed -n 's/.*wptr \(0x[0-9a-f]*\) .*/zone 8 wptr=\1/p'
