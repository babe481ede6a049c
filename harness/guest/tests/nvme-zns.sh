#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest (after nvme-prep.sh): the ZNS namespace nvme0n1 as Linux
# and nvme-cli see it, then zone commands with nvme-cli's own zns commands
# and writes through Linux's block layer (dd), on zones 0 to 9:
#   0 two 64 KiB writes (dd)            implicitly open, wp 128 KiB
#   1 open, 16 KiB written (nvme write), close        closed, wp 16 KiB
#   2 open                                  explicitly open, empty
#   3 finish                                                   full
#   4 32 KiB written, finish                                   full
#   5 32 KiB written, reset                                   empty
#   6 three appends: 4 KiB, 8 KiB, ZASL          implicitly open
#   7 written to its capacity (dd)                             full
#   8 64 KiB written (dd), close                    closed, wp 64 KiB
#   9 open, 4 KiB written (dd)              explicitly open, wp 4 KiB
# Then "REPORT": every zone as nvme zns report-zones has it ("ZONE ..."
# lines, see nvme-prep.sh), and "BLKZONE": blkzone report of every zone.
fail() { echo "FAIL: $*"; exit 1; }
for a in zoned chunk_sectors nr_zones max_open_zones max_active_zones \
         zone_append_max_bytes logical_block_size; do
    echo "sysfs $a=$(q $D $a)"
done
nv zns id-ns $D > /tmp/idns || fail "nvme zns id-ns"
nv zns id-ctrl $D > /tmp/idctrl || fail "nvme zns id-ctrl"
sed -n 's/^\(zoc\|ozcs\|mar\|mor\) *: */id-ns \1=/p' /tmp/idns
sed -n 's/^lbafe *[0-9]*: zsze:\([0-9a-fx]*\) zdes:\([0-9]*\) (in use)$/id-ns zsze=\1 zdes=\2/p' /tmp/idns
sed -n 's/^zasl *: */id-ctrl zasl=/p' /tmp/idctrl
ZASL=$(sed -n 's/^zasl *: *//p' /tmp/idctrl)
echo "zone capacity=$((ZC * LBS))"

# d FILE BYTES CHAR: FILE holds BYTES bytes of CHAR
d() { head -c "$2" /dev/zero | tr '\0' "$3" > "$1"; }
w() {   # w ZONE-OFFSET-BYTES BYTES FILE: nvme write at zone $Z's start + offset
    nv write $D -s $(($(zs $Z) + $1 / LBS)) -c $(($2 / LBS - 1)) -z "$2" -d "$3" \
        > /dev/null 2>&1 || fail "nvme write to zone $Z"
}
# 64 KiB blocks of dd
dz() { echo $(($(zs $1) * LBS / 65536)); }
nv zns reset-zone $D -a > /dev/null || fail "nvme zns reset-zone -a"

d /tmp/a 131072 a
dd if=/tmp/a of=$D bs=64k seek="$(dz 0)" count=1 oflag=direct 2>/dev/null || fail "dd zone 0"
dd if=/tmp/a of=$D bs=64k seek=$(($(dz 0) + 1)) count=1 oflag=direct 2>/dev/null ||
    fail "dd zone 0, second"
Z=1
nv zns open-zone $D -s "$(zs 1)" > /dev/null || fail "open zone 1"
d /tmp/b 16384 b
w 0 16384 /tmp/b
nv zns close-zone $D -s "$(zs 1)" > /dev/null || fail "close zone 1"
nv zns open-zone $D -s "$(zs 2)" > /dev/null || fail "open zone 2"
nv zns finish-zone $D -s "$(zs 3)" > /dev/null || fail "finish zone 3"
Z=4
w 0 16384 /tmp/b
w 16384 16384 /tmp/b
nv zns finish-zone $D -s "$(zs 4)" > /dev/null || fail "finish zone 4"
Z=5
w 0 16384 /tmp/b
w 16384 16384 /tmp/b
nv zns reset-zone $D -s "$(zs 5)" > /dev/null || fail "reset zone 5"
# Appends: 4 KiB, 8 KiB, then the largest one (ZASL; 64 KiB if no limit)
big=65536
[ "$ZASL" -gt 0 ] && big=$((4096 << ZASL))
head -c $((4096 + 8192 + big)) /dev/urandom > /tmp/app
off=0
n=1
for len in 4096 8192 $big; do
    /gnu/bin/dd if=/tmp/app of=/tmp/part bs=$len skip=$off count=1 \
        iflag=skip_bytes status=none
    lba=$(nv zns zone-append $D -s "$(zs 6)" -z $len -d /tmp/part |
          sed -n 's/^Success appended data to LBA \([0-9a-f]*\)$/\1/p')
    [ -n "$lba" ] || fail "zone append $n"
    echo "append $n of $len bytes at $(((0x$lba - $(zs 6)) * LBS))"
    off=$((off + len))
    n=$((n + 1))
done
/gnu/bin/dd if=$D of=/tmp/back bs=$off skip=$(($(zs 6) * LBS)) count=1 \
    iflag=direct,skip_bytes status=none
cmp -s /tmp/app /tmp/back && echo "zone 6: the appended data reads back"
dd if=/dev/zero of=$D bs=64k seek="$(dz 7)" count=$((ZC * LBS / 65536)) oflag=direct 2>/dev/null ||
    fail "dd zone 7 to its capacity"
dd if=/tmp/a of=$D bs=64k seek="$(dz 8)" count=1 oflag=direct 2>/dev/null || fail "dd zone 8"
nv zns close-zone $D -s "$(zs 8)" > /dev/null || fail "close zone 8"
nv zns open-zone $D -s "$(zs 9)" > /dev/null || fail "open zone 9"
dd if=/tmp/a of=$D bs=4k seek=$(($(zs 9) * LBS / 4096)) count=1 oflag=direct 2>/dev/null ||
    fail "dd zone 9"

# What was written reads back
dd if=$D of=/tmp/back bs=64k skip="$(dz 0)" count=2 iflag=direct 2>/dev/null
cmp -s /tmp/a /tmp/back && echo "zone 0: data reads back"
rm -f /tmp/back
nv read $D -s "$(zs 1)" -c $((16384 / LBS - 1)) -z 16384 -d /tmp/back > /dev/null 2>&1
cmp -s /tmp/b /tmp/back && echo "zone 1: data reads back"

echo "REPORT"
zones $D
echo "BLKZONE"
blkzone report $D
sync
