#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest (after nvme-prep.sh with NVME_NS=3): three namespaces of one
# controller, two zoned (nsid 1 and 2, their own images) and a plain one
# (nsid 3).  Each gets its own writes:
#   nsid 1  zone 0: 64 KiB of 'p' (dd); zone 3 finished
#   nsid 2  zone 0: 128 KiB of 'q' (dd); zone 2: 16 KiB of 'Q' appended;
#           zone 5 explicitly open
#   nsid 3  1 MiB of 'r' at 0 and 1 MiB of 's' at 100 MiB
# then prints each namespace's queue limits, the zones of the two zoned
# ones ("n1 ZONE ..." and "n2 ZONE ..." lines) and whether each one's data
# reads back.
fail() { echo "FAIL: $*"; exit 1; }
d() { head -c "$2" /dev/zero | tr '\0' "$3" > "$1"; }
for n in 1 2 3; do
    dev=$(eval echo "\$N$n")
    echo "nsid $n: zoned=$(q "$dev" zoned) nr_zones=$(q "$dev" nr_zones)" \
        "size=$(blockdev --getsize64 "$dev")"
done
d /tmp/p 65536 p
d /tmp/q 131072 q
d /tmp/Q 16384 Q
d /tmp/r 1048576 r
d /tmp/s 1048576 s
Z=$((ZL * LBS))                     # bytes a zone (the same geometry on both)
dd if=/tmp/p of="$N1" bs=64k count=1 oflag=direct 2>/dev/null || fail "dd nsid 1"
nv zns finish-zone "$N1" -s $((3 * ZL)) > /dev/null || fail "finish nsid 1 zone 3"
dd if=/tmp/q of="$N2" bs=128k count=1 oflag=direct 2>/dev/null || fail "dd nsid 2"
nv zns zone-append "$N2" -s $((2 * ZL)) -z 16384 -d /tmp/Q > /dev/null ||
    fail "append nsid 2 zone 2"
nv zns open-zone "$N2" -s $((5 * ZL)) > /dev/null || fail "open nsid 2 zone 5"
dd if=/tmp/r of="$N3" bs=1M count=1 oflag=direct 2>/dev/null || fail "dd nsid 3"
dd if=/tmp/s of="$N3" bs=1M seek=100 count=1 oflag=direct conv=fsync 2>/dev/null ||
    fail "dd nsid 3 at 100 MiB"
/gnu/bin/sync "$N1" "$N2"
zones "$N1" | sed 's/^/n1 /'
zones "$N2" | sed 's/^/n2 /'
# rd DEV OFFSET BYTES FILE: do BYTES at OFFSET of DEV read back as FILE?
rd() {
    /gnu/bin/dd if="$1" bs="$3" skip="$2" count=1 iflag=direct,skip_bytes \
        status=none | cmp -s - "$4"
}
rd "$N1" 0 65536 /tmp/p && echo "nsid 1 zone 0: its data"
rd "$N2" 0 131072 /tmp/q && echo "nsid 2 zone 0: its data"
rd "$N2" $((2 * Z)) 16384 /tmp/Q && echo "nsid 2 zone 2: its data"
rd "$N3" 0 1048576 /tmp/r && rd "$N3" $((100 << 20)) 1048576 /tmp/s &&
    echo "nsid 3: its data"
# nsid 1 holds nothing where nsid 2 appended
/gnu/bin/dd if="$N1" bs=16384 count=1 skip=$((2 * Z)) iflag=direct,skip_bytes \
    status=none | tr -d '\0' | wc -c | sed 's/^/nsid 1 zone 2: non-zero bytes: /'
