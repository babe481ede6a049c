# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest, run.sh with GUEST_QMP: zonefs on the zoned virtio-blk disk
# (node "d": 4 MiB zones of 3 MiB, 8 conventional) when the zone under a
# file fails, for each errors= option (Linux's zonefs.rst, "IO error
# handling").
# PHASE=run: per option, mount, append 64 KiB to a sequential file, its
# zone fails read-only (QMP), append again; what the file and the file
# system are then.  Then a zone that fails offline.
# Both phases end with a mount that prints every such file (PHASE=mount,
# the next boot: what zonefs finds of failed zones at mount).  After
# faults-lib.sh.
CONV=8
loadmod zonefs
head -c 65536 /dev/zero | tr '\0' z > /tmp/z
err() { grep -o 'Input/output error\|Read-only file system\|Permission denied' | head -n1; }
fault() {  # fault ZONE FAULT STATE: zone ZONE fails, seen as STATE
    qmp_fault d $(($1 * 4 * MiB)) "$2"
    waitfor "vc $1" "$3"
}
append() { dd if=/tmp/z of="$1" bs=64k count=1 oflag=direct,append conv=notrunc 2>&1 | err; }
# state FILE: its size, what a read of it gets, whether the file system
# is read-only
state() {
    if dd if="$1" of=/tmp/r bs=64k count=1 iflag=direct 2>/dev/null; then
        rd="$(stat -c %s /tmp/r) bytes"
    else
        rd=fails
    fi
    fs=$(awk '$2 == "/mnt" { split($4, o, ","); print o[1] }' /proc/mounts)
    echo "size $(stat -c %s "$1"), read $rd, mode $(stat -c %A "$1"), fs $fs"
}

if [ "$PHASE" = run ]; then
    mkzonefs -f /dev/vda > /dev/null 2>&1 || echo "FAIL: mkzonefs"
    k=0
    for opt in remount-ro zone-ro zone-offline repair; do
        mount -t zonefs -o errors=$opt /dev/vda /mnt || echo "FAIL: mount $opt"
        append /mnt/seq/$k
        fault $((CONV + k)) read-only 13
        echo "errors=$opt, zone read-only: append: $(append /mnt/seq/$k); $(state /mnt/seq/$k)"
        umount /mnt
        k=$((k + 1))
    done
    mount -t zonefs -o errors=zone-ro /dev/vda /mnt
    append /mnt/seq/$k
    fault $((CONV + k)) offline 15
    echo "errors=zone-ro, zone offline: append: $(append /mnt/seq/$k); $(state /mnt/seq/$k)"
    umount /mnt
fi
mount -t zonefs /dev/vda /mnt || echo "FAIL: mount"
for k in 0 1 2 3 4 5; do
    echo "at mount: seq/$k $(state /mnt/seq/$k)"
done
umount /mnt
