#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest (after nvme-prep.sh): a filesystem on the ZNS namespace
# (nsid 1, no conventional zones).  The host prepends
#   FS     btrfs | zonefs | f2fs (f2fs with NVME_NS=2: its metadata on the
#          plain namespace nsid 2, the first device of mkfs.f2fs, the zoned
#          one added with -c; f2fs cannot live on sequential zones alone.
#          It records the zoned device's path: /dev/nvme-ns1, a name that
#          stays the same across boots, see nvme-prep.sh)
#   PHASE  write: make the filesystem, mount it, write files, unmount,
#                 mount again and compare checksums; then write one
#                 more file, make everything durable, print every
#                 file's checksum and "=== SYNCED ===" and wait (the
#                 host cuts the power)
#          check: mount it and print every file's checksum
# Checksum lines are "SUM <sha256> <file>", sorted by file name (as fs.sh).
set -e
fail() { echo "FAIL: $*"; exit 1; }
loadmod "$FS"
M=/mnt
DEV=$N1
[ "$FS" = f2fs ] && DEV=/dev/nvme-ns2   # f2fs mounts its first device
sums() {
    (cd $M && find . -type f ! -size 0 | sort | while read -r f; do
        echo "SUM $(sha256sum < "$f" | cut -d' ' -f1) $f"
    done)
}
mnt() { mount -t "$FS" $DEV $M; }
# fill FILE KIB: FILE gets KIB KiB of random data (on zonefs, appended:
# its sequential files take direct writes at their end only)
fill() {
    if [ "$FS" = zonefs ]; then
        /gnu/bin/dd if=/tmp/rnd of="$1" bs=64k count=$(($2 / 64)) \
            oflag=direct,append conv=notrunc status=none
    else
        head -c $(($2 * 1024)) /tmp/rnd > "$1"
    fi
}

dd if=/dev/urandom of=/tmp/rnd bs=1M count=4 2>/dev/null
if [ "$PHASE" = write ]; then
    case $FS in
    btrfs) mkfs.btrfs -q -f -O zoned -m single -d single "$N1" > /dev/null ||
        fail "mkfs.btrfs" ;;
    f2fs) mkfs.f2fs -q -f -m -c /dev/nvme-ns1 /dev/nvme-ns2 || fail "mkfs.f2fs" ;;
    zonefs) mkzonefs -f "$N1" > /dev/null || fail "mkzonefs" ;;
    esac
    mnt || fail "mount $FS"
    echo "mounted: $(grep " $M " /proc/mounts | cut -d' ' -f1-3)"
    if [ "$FS" = zonefs ]; then
        echo "zonefs: $(ls $M/seq | wc -l) sequential files, $(ls $M/cnv 2>/dev/null | wc -l) conventional"
        fill $M/seq/0 1024; fill $M/seq/1 64; fill $M/seq/5 2048
        fill $M/seq/1 128
    else
        mkdir -p $M/d
        fill $M/a 3000; fill $M/b 7
        for i in $(seq 40); do fill $M/d/$i $((i * 3)); done
    fi
    sums > /tmp/before
    umount $M || fail "umount"
    mnt || fail "mount again"
    sums > /tmp/after
    cmp /tmp/before /tmp/after || fail "files differ after the remount"
    echo "remount: $(wc -l < /tmp/after) files intact"
    if [ "$FS" = zonefs ]; then
        fill $M/seq/2 512
    else
        fill $M/d/late 1500
    fi
    # sync(1) writes back and commits; zonefs has no commit, its files
    # are made durable one by one (fsync, which flushes the disk's cache)
    sync
    find $M -type f -exec /gnu/bin/sync {} +
    echo "zones written on nsid 1: $(zones "$N1" | grep -vc ' empty ')"
    sums
    echo "=== SYNCED ==="
    sleep 600
else
    mnt || fail "mount after the power cut"
    sums
    umount $M || fail "umount"
fi
