#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest: a filesystem on a zoned disk.  The host prepends
#   FS     btrfs | f2fs | zonefs | xfs
#   PHASE  write: make the filesystem, mount it, write files, unmount,
#                 mount again and compare checksums; then write one
#                 more file, make everything durable, print every
#                 file's checksum and "=== SYNCED ===" and wait (the
#                 host cuts the power)
#          check: mount it and print every file's checksum
# and a script before this one (nvme-fs.sh) may set
#   FS_DEV     the device to mount (default /dev/vda, the virtio disk)
#   FS_MKFS    the command that makes the filesystem (default: $FS's own,
#              on $FS_DEV)
#   FS_NO_CONV the device has no conventional zones (zonefs: no cnv/0)
#   FS_REPORT  a command run once the files are durable, before their
#              checksums are printed
#   FS_RTDEV   xfs: the zoned realtime device, apart from FS_DEV (the data
#              device: mkfs.xfs -r rtdev=, mount -o rtdev=); without it
#              mkfs.xfs puts the data section on the zoned disk's
#              conventional zones and the realtime section after them.
#              xfs_repair -n finds the filesystem clean after each unmount
# Checksum lines are "SUM <sha256> <file>", sorted by file name.
set -e
fail() { echo "FAIL: $*"; exit 1; }
loadmod "$FS"
M=/mnt
FS_DEV=${FS_DEV:-/dev/vda}
if [ -z "${FS_MKFS:-}" ]; then
    case $FS in
    # btrfs-progs 6.2 aborts on DUP metadata of a zoned device with
    # conventional zones ("bad tree block"; on null_blk too)
    btrfs) FS_MKFS="mkfs.btrfs -q -f -O zoned -m single -d single $FS_DEV" ;;
    f2fs) FS_MKFS="mkfs.f2fs -q -f -m $FS_DEV" ;;
    zonefs) FS_MKFS="mkzonefs -f $FS_DEV" ;;
    xfs) FS_MKFS="mkfs.xfs -f ${FS_RTDEV:+-r rtdev=$FS_RTDEV} $FS_DEV" ;;
    esac
fi
sums() {
    (cd $M && find . -type f ! -size 0 | sort | while read -r f; do
        echo "SUM $(sha256sum < "$f" | cut -d' ' -f1) $f"
    done)
}
mnt() { mount -t "$FS" ${FS_RTDEV:+-o rtdev=$FS_RTDEV} "$FS_DEV" $M; }
# unmnt: unmount; xfs_repair -n must find the filesystem clean
unmnt() {
    umount $M || fail "umount"
    [ "$FS" = xfs ] || return 0
    xfs_repair -n ${FS_RTDEV:+-r $FS_RTDEV} "$FS_DEV" > /tmp/repair.out 2>&1 ||
        { cat /tmp/repair.out; fail "xfs_repair -n"; }
    echo "xfs_repair -n: clean"
}
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
    # shellcheck disable=SC2086  # the command and its arguments
    $FS_MKFS > /tmp/mkfs.out 2>&1 || { cat /tmp/mkfs.out; fail "${FS_MKFS%% *}"; }
    mnt || fail "mount $FS"
    echo "mounted: $(grep " $M " /proc/mounts | cut -d' ' -f1-3)"
    if [ "$FS" = zonefs ]; then
        echo "zonefs: $(ls $M/seq | wc -l) sequential files, $(ls $M/cnv 2>/dev/null | wc -l) conventional"
        fill $M/seq/0 1024; fill $M/seq/1 64; fill $M/seq/5 2048
        fill $M/seq/1 128
        [ -n "${FS_NO_CONV:-}" ] ||
            dd if=/tmp/rnd of=$M/cnv/0 bs=64k count=3 conv=notrunc 2>/dev/null
    else
        mkdir -p $M/d
        fill $M/a 3000; fill $M/b 7
        for i in $(seq 40); do fill $M/d/$i $((i * 3)); done
    fi
    sums > /tmp/before
    unmnt
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
    [ -z "${FS_REPORT:-}" ] || $FS_REPORT
    sums
    echo "=== SYNCED ==="
    sleep 600
else
    mnt || fail "mount after the power cut"
    sums
    unmnt
fi
