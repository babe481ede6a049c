#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest, the demo.  The host prepends PHASE:
#   write: /dev/vda gets a fio zoned workload, /dev/vdb an f2fs filesystem
#          with a file, the NVMe ZNS namespace /dev/nvme0n1 fio and zone
#          appends; everything is made durable, then the host cuts the power
#   check: after the power cut, the write pointers of /dev/vda and
#          /dev/nvme0n1, and the file on /dev/vdb's f2fs
set -e
Z=8192                              # sectors a zone
# zones: the conditions of zones 8 to 63, the zones that are neither
# empty nor full, and a "WP start wptr" line a zone for the host
zones() {
    blkzone report -o $((8 * Z)) -c 56 /dev/vda > /tmp/zones
    sed -n "s/.*zcond: *[0-9]*(\\([a-z]*\\)).*/\\1/p" /tmp/zones | sort | uniq -c |
        sed "s/em\$/empty/; s/fu\$/full/; s/oi\$/implicitly open/; s/cl\$/closed/; s/oe\$/explicitly open/"
    grep -v "zcond: 1(em)\\|zcond:14(fu)" /tmp/zones || true
    sed -n "s/.*start: \\(0x[0-9a-f]*\\),.*wptr \\(0x[0-9a-f]*\\).*/WP \\1 \\2/p" /tmp/zones
}
# nvme_zones: the same for the 64 zones of /dev/nvme0n1 ("NWP" lines)
NZ=16384                            # sectors an NVMe zone
nvme_zones() {
    blkzone report /dev/nvme0n1 > /tmp/nzones
    sed -n "s/.*zcond: *[0-9]*(\\([a-z]*\\)).*/\\1/p" /tmp/nzones | sort | uniq -c |
        sed "s/em\$/empty/; s/fu\$/full/; s/oi\$/implicitly open/; s/cl\$/closed/; s/oe\$/explicitly open/"
    sed -n "s/.*start: \\(0x[0-9a-f]*\\),.*wptr \\(0x[0-9a-f]*\\).*/NWP \\1 \\2/p" /tmp/nzones
}
loadmod nvme
for i in 1 2 3 4 5; do [ -b /dev/nvme0n1 ] && break; sleep 1; done
if [ "$PHASE" = write ]; then
    echo "--- /sys/block/vda/queue: the disk as Linux sees it"
    for a in zoned chunk_sectors nr_zones max_open_zones max_active_zones zone_append_max_bytes; do
        echo "$a=$(cat /sys/block/vda/queue/$a)"
    done
    echo "--- blkzone report (zones 6 to 9: conventional, then sequential)"
    blkzone report -o $((6 * Z)) -c 4 /dev/vda
    echo "--- fio, zonemode=zbd: sequential writes with verification, 12 zones"
    fio --name=seq --filename=/dev/vda --zonemode=zbd --direct=1 \
        --ioengine=libaio --iodepth=4 --rw=write --bs=128k \
        --offset=$((8 * Z * 512)) --size=48M --max_open_zones=8 \
        --verify=crc32c --output-format=terse --terse-version=3 |
        awk -F';' '{ printf "seq: wrote %d KiB at %d KiB/s, %d errors; verified %d KiB\n",
                     $47, $48, $5, $6 }'
    echo "--- fio, zonemode=zbd: random-zone writes for 5 s, at most 8 open zones"
    fio --name=rnd --filename=/dev/vda --zonemode=zbd --direct=1 \
        --ioengine=libaio --iodepth=8 --rw=randwrite --bs=64k \
        --offset=$((20 * Z * 512)) --size=128M --max_open_zones=8 \
        --time_based --runtime=5 --output-format=terse --terse-version=3 |
        awk -F';' '{ printf "rnd: wrote %d KiB at %d KiB/s (%d IOPS), %d errors\n",
                     $47, $48, $49, $5 }'
    # fio's writes are direct, with no flush: fsync of the disk (GNU sync
    # with an argument) flushes its write cache, as a database's fsync would
    /gnu/bin/sync /dev/vda
    echo "--- zones 8 to 63 after fio and a flush of the disk (fsync)"
    zones
    echo "--- f2fs on /dev/vdb (mkfs.f2fs -m), a file written and synced"
    mkfs.f2fs -q -f -m /dev/vdb
    loadmod f2fs
    mount -t f2fs /dev/vdb /mnt
    head -c 5000000 /dev/urandom > /mnt/file
    sync
    ls -l /mnt/file
    echo "file $(sha256sum /mnt/file)"
    sync
    echo "--- /dev/nvme0n1, an NVMe ZNS namespace on a zoned qcow2 image"
    for a in zoned chunk_sectors nr_zones max_open_zones max_active_zones zone_append_max_bytes; do
        echo "$a=$(cat /sys/block/nvme0n1/queue/$a)"
    done
    if command -v nvme > /dev/null; then
        nvme zns id-ns /dev/nvme0n1 | grep -i "zsze\|mar\|mor\|zoc" || true
    fi
    echo "--- fio on nvme0n1, zonemode=zbd: sequential writes with verification, 6 zones"
    fio --name=nseq --filename=/dev/nvme0n1 --zonemode=zbd --direct=1 \
        --ioengine=libaio --iodepth=4 --rw=write --bs=128k \
        --offset=0 --size=$((6 * NZ * 512)) --max_open_zones=6 \
        --verify=crc32c --output-format=terse --terse-version=3 |
        awk -F';' '{ printf "nseq: wrote %d KiB at %d KiB/s, %d errors; verified %d KiB\n",
                     $47, $48, $5, $6 }'
    if command -v nvme > /dev/null; then
        echo "--- nvme zns zone-append: 3 appends of 4 KiB to zone 10, each says where it wrote"
        head -c 4096 /dev/urandom > /tmp/a
        for i in 1 2 3; do
            nvme zns zone-append /dev/nvme0n1 -s $((10 * NZ)) -z 4096 -d /tmp/a
        done
        nvme zns report-zones /dev/nvme0n1 -d 12 | tail -n 3
    fi
    /gnu/bin/sync /dev/nvme0n1
    echo "--- nvme0n1's zones after a flush"
    nvme_zones | grep -v '^NWP '
    nvme_zones | grep '^NWP '
    echo "=== SYNCED ==="
    sleep 600
else
    echo "--- zones 8 to 63 after the power cut"
    zones
    echo "--- nvme0n1's zones after the power cut"
    nvme_zones | grep -v '^NWP '
    nvme_zones | grep '^NWP '
    echo "--- f2fs on /dev/vdb mounted again"
    loadmod f2fs
    mount -t f2fs /dev/vdb /mnt
    ls -l /mnt/file
    echo "file $(sha256sum /mnt/file)"
    umount /mnt
fi
