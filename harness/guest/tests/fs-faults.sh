# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest, run.sh with GUEST_QMP: a file system ($FS: btrfs or f2fs)
# on the zoned virtio-blk disk (node "d": 4 MiB zones of 3 MiB, 8
# conventional) when the zones it writes to fail under it.  Mount, write a
# file and sync; every sequential zone it has written to (open, closed or
# full) then fails with $FAULT (QMP).  Then: the file read back (page cache
# dropped), a new file written and synced, what the file system is, what
# the kernel said, and a mount after an unmount.  The disk's werror and
# rerror are "stop": a request that went through them would stop the VM
# and hang this script, so its end ("=== FS FAULTS END ===") also says
# that QEMU kept running.  After faults-lib.sh.
CONV=8
loadmod "$FS"
case $FS in
btrfs) mkfs="mkfs.btrfs -q -f -O zoned -m single -d single /dev/vda" ;;
f2fs) mkfs="mkfs.f2fs -q -f -m /dev/vda" ;;
esac
err() {
    grep -o 'Input/output error\|Read-only file system\|No space left on device\|Permission denied' |
        head -n1
}
mode() { awk '$2 == "/mnt" { split($4, o, ","); print o[1] }' /proc/mounts; }
# zones used: the sequential zones whose condition is open, closed or full
used() {
    blkzone report /dev/vda |
        sed -n 's/.*start: *\(0x[0-9a-f]*\),.*zcond: *\([0-9]*\).*/\1 \2/p' |
        while read -r start cond; do
            z=$((start / Z))
            [ "$z" -ge $CONV ] || continue
            case $cond in 2|3|4|14) printf '%s ' "$z" ;; esac
        done
}
# readback FILE COPY: whether FILE reads back as COPY, from the disk
readback() {
    sync
    echo 3 > /proc/sys/vm/drop_caches
    if cat "$1" > /tmp/rb 2> /tmp/rb.err; then
        cmp -s /tmp/rb "$2" && echo same || echo differs
    else
        echo "fails: $(err < /tmp/rb.err)"
    fi
}

$mkfs > /tmp/mkfs.out 2>&1 || { echo "FAIL: $mkfs"; cat /tmp/mkfs.out; }
mount -t "$FS" /dev/vda /mnt || echo "FAIL: mount"
head -c $((48 * MiB)) /dev/urandom > /tmp/a
cp /tmp/a /mnt/a
sync
zones=$(used)
echo "zones written: $(echo $zones | wc -w)"
dmesg -c > /dev/null
for z in $zones; do
    qmp_fault d $((z * 4 * MiB)) "$FAULT"
done
want=13
[ "$FAULT" = offline ] && want=15
for z in $zones; do
    waitfor "vc $z" $want
done
echo "$FS, zones $FAULT: read the file: $(readback /mnt/a /tmp/a)"
head -c $((8 * MiB)) /dev/urandom > /tmp/b
w=$( { cp /tmp/b /mnt/b && sync -f /mnt; } 2>&1 | err)
echo "$FS, zones $FAULT: write a file and sync: ${w:-succeeds}"
echo "$FS, zones $FAULT: file system: $(mode)"
umount /mnt 2>&1 | sed 's/^/umount: /'
if mount -t "$FS" /dev/vda /mnt 2> /tmp/mount.err; then
    echo "$FS, zones $FAULT: mount again: $(mode); the file: $(readback /mnt/a /tmp/a)"
    umount /mnt
else
    echo "$FS, zones $FAULT: mount again fails: $(err < /tmp/mount.err)"
fi
dmesg | grep -i "$FS\|I/O error" | head -n 20 | sed 's/^\[[ 0-9.]*\] /KERNEL: /'
echo "=== FS FAULTS END ==="
