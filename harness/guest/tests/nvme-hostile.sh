#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest (after nvme-prep.sh): commands a ZNS namespace must refuse,
# sent as they are with nvme-cli's io-passthru and admin-passthru (Linux
# checks none of them).  Each prints
#   H <request> | <nvme-cli command> | <status>
# status: the NVMe status field nvme-cli reports, DNR bit included (0x41b8
# is DNR, SCT 1, SC 0xb8), "success", or nvme-cli's own error.  The host
# holds the statuses the NVMe ZNS specification asks for.  "S ..." lines
# are zone states and values the host checks too; some requests are
# controls that must succeed.  At the end the namespace must still work:
# "the disk works afterwards".
# Zones used: 10-13 (Select All), 20-22 (writes, appends), 30 on (zone
# resources), 50-51 (state transitions), 60-61 (the disk afterwards).
K=$((4096 / LBS))                   # LBAs in 4 KiB
MAXIO=$(($(q "$D" max_hw_sectors_kb) * 1024))   # MDTS as Linux has it
MO=$(q $D max_open_zones)
MA=$(q $D max_active_zones)
ZASL=$(nv zns id-ctrl $D | sed -n 's/^zasl *: *//p')
OZCS=$(nv zns id-ns $D | sed -n 's/^ozcs *: *//p')
head -c "$MAXIO" /dev/urandom > /tmp/data
fail() { echo "FAIL: $*"; exit 1; }

# st NVME-ARGS...: the status of one nvme-cli command
st() {
    nv "$@" > /tmp/st.out 2>&1
    rc=$?
    s=$(sed -n 's/^NVMe status: .*(\(0x[0-9a-f]*\))$/\1/p' /tmp/st.out | tail -n 1)
    if [ -n "$s" ]; then
        echo "$s"
    elif [ $rc = 0 ]; then
        echo success
    else
        echo "error: $(tr '\n' ' ' < /tmp/st.out | cut -c1-120)"
    fi
}
# h REQUEST NVME-ARGS...: one request, its line
h() {
    r=$1
    shift
    echo "H $r | nvme $(echo "$*" | sed "s| $D||") | $(st "$@")"
}
# Commands, as nvme-cli arguments:
# zms ACTION SLBA [all]: Zone Management Send (0x79); cdw13 bit 8 Select All
zms() {
    sa=0
    [ -n "${3:-}" ] && sa=0x100
    echo io-passthru $D --opcode=0x79 -n 1 --cdw10=$2 --cdw13="$(printf '0x%x' $(($1 | sa)))"
}
# zmr SLBA CDW13 BYTES: Zone Management Receive (0x7a) into /tmp/rep
zmr() {
    rm -f /tmp/rep
    echo io-passthru $D --opcode=0x7a -n 1 -r -l $3 -i /tmp/rep --cdw10=$1 \
        --cdw12=$(($3 / 4 - 1)) --cdw13="$(printf '0x%x' "$2")"
}
# io OPCODE SLBA NLB [fua]: write (0x01), read (0x02), zone append (0x7d)
# of NLB LBAs; writes take /tmp/data, reads go to /tmp/rd
io() {
    dir="-w -i /tmp/data"
    [ "$1" = 0x02 ] && dir="-r -i /tmp/rd"
    fua=0
    [ -n "${4:-}" ] && fua=0x40000000
    echo io-passthru $D --opcode=$1 -n 1 $dir -l $(($3 * LBS)) --cdw10=$2 \
        --cdw12="$(printf '0x%x' $(($3 - 1 | fua)))"
}
# ok NVME-ARGS...: a step that must succeed
ok() { [ "$(st "$@")" = success ] || fail "nvme $*: $(cat /tmp/st.out)"; }
# fill ZONE BYTES: write BYTES from the start of empty zone ZONE
fill() {
    at=$(($1 * ZL))
    left=$(($2 / LBS))
    while [ $left -gt 0 ]; do
        n=$((MAXIO / LBS))
        [ $n -gt $left ] && n=$left
        # shellcheck disable=SC2046
        ok $(io 0x01 $at $n)
        at=$((at + n))
        left=$((left - n))
    done
}
states() { zones $D "$1" "$2" | awk '{ printf " %s", $3 }'; }
nrz() { /gnu/bin/od -A n -t u8 -N 8 /tmp/rep 2>/dev/null | tr -d ' '; }
# shellcheck disable=SC2046
ok $(zms 4 0 all)
echo "S limits: max_open=$MO max_active=$MA zasl=$ZASL ozcs=$OZCS mdts_bytes=$MAXIO"

# shellcheck disable=SC2046
{
# Zone Management Send with bad fields
for a in 3:open 1:close 2:finish 4:reset 5:offline; do
    h "send ${a#*:}, SLBA not a zone start" $(zms ${a%:*} $((10 * ZL + K)))
done
h "send open, SLBA past the namespace end" $(zms 3 $NSZE)
h "send reserved action 0" $(zms 0 $((10 * ZL)))
h "send unknown action 0x77" $(zms 0x77 $((10 * ZL)))
h "send unknown action 0x77, Select All" $(zms 0x77 0 all)
echo "S after the refused sends:$(states 10 1)"

# Select All (cdw13 bit 8): the SLBA, not a zone start here, is ignored
ok $(io 0x01 $((10 * ZL)) $((4 * K)))
ok $(io 0x01 $((11 * ZL)) $((4 * K)))
ok $(zms 1 $((11 * ZL)))
ok $(zms 3 $((12 * ZL)))
ok $(io 0x01 $((12 * ZL)) $((4 * K)))
ok $(zms 2 $((13 * ZL)))
echo "S before Select All:$(states 10 4)"
h "send close, Select All" $(zms 1 $((10 * ZL + K)) all)
echo "S after close all:$(states 10 4)"
h "send open, Select All" $(zms 3 $((10 * ZL + K)) all)
echo "S after open all:$(states 10 4)"
h "send finish, Select All" $(zms 2 $((10 * ZL + K)) all)
echo "S after finish all:$(states 10 4)"
h "send reset, Select All" $(zms 4 $((10 * ZL + K)) all)
echo "S after reset all:$(states 10 4)"
h "send offline, Select All (no read-only zone)" $(zms 5 $((10 * ZL + K)) all)
echo "S after offline all:$(states 10 4)"

# Writes and appends
h "write 4 KiB at the write pointer of an empty zone" $(io 0x01 $((20 * ZL)) $K)
h "write 4 KiB past the write pointer" $(io 0x01 $((20 * ZL + 2 * K)) $K)
h "write at the zone start, behind the write pointer" $(io 0x01 $((20 * ZL)) $K)
h "write across two zones, not at a write pointer" $(io 0x01 $((21 * ZL - K)) $((2 * K)))
fill 21 $(((ZC - K) * LBS))
h "write 8 KiB at the write pointer, 4 KiB before the zone capacity" \
    $(io 0x01 $((21 * ZL + ZC - K)) $((2 * K)))
h "zone append of 8 KiB, 4 KiB before the zone capacity" $(io 0x7d $((21 * ZL)) $((2 * K)))
h "zone append of the last 4 KiB" $(io 0x7d $((21 * ZL)) $K)
echo "S zone 21 after its last 4 KiB:$(states 21 1)"
h "write to a full zone" $(io 0x01 $((21 * ZL)) $K)
h "zone append to a full zone" $(io 0x7d $((21 * ZL)) $K)
h "write of the last LBA and one past the namespace end" $(io 0x01 $((NSZE - 1)) 2)
h "write at the namespace end" $(io 0x01 $NSZE 1)
h "read of the last LBA and one past the namespace end" $(io 0x02 $((NSZE - 1)) 2)
h "read across a zone boundary" $(io 0x02 $((23 * ZL - K)) $((2 * K)))
h "zone append, ZSLBA not a zone start" $(io 0x7d $((22 * ZL + K)) $K)
if [ "$ZASL" -gt 0 ]; then
    h "zone append of ZASL + 4 KiB" $(io 0x7d $((22 * ZL)) $(((4096 << ZASL) / LBS + K)))
    h "zone append of ZASL" $(io 0x7d $((22 * ZL)) $(((4096 << ZASL) / LBS)))
fi
h "write with FUA at the write pointer" $(io 0x01 $((22 * ZL + (4096 << ZASL) / LBS)) $K fua)
echo "S zone 22: $(zones $D 22 1 | cut -d' ' -f3-)"

# Zone resources: max_open_zones explicitly open, then max_active_zones
# active (closed ones with data and implicitly open ones)
ok $(zms 4 0 all)
z=30
while [ $z -lt $((30 + MO)) ]; do
    ok $(zms 3 $((z * ZL)))
    z=$((z + 1))
done
h "explicit open of an empty zone, max_open_zones explicitly open" $(zms 3 $((z * ZL)))
h "write to an empty zone, max_open_zones explicitly open" $(io 0x01 $((z * ZL)) $K)
z=30
while [ $z -lt $((30 + MO)) ]; do
    ok $(io 0x01 $((z * ZL)) $K)
    z=$((z + 1))
done
ok $(zms 1 0 all)
while [ $z -lt $((30 + MA)) ]; do
    ok $(io 0x01 $((z * ZL)) $K)
    z=$((z + 1))
done
echo "S active zones: $(zones $D 30 $((MA + 1)) | grep -c 'open\|closed')"
h "write to an empty zone, max_active_zones active" $(io 0x01 $((z * ZL)) $K)
h "explicit open of an empty zone, max_active_zones active" $(zms 3 $((z * ZL)))
h "explicit open of a closed zone, max_active_zones active" $(zms 3 $((30 * ZL)))
echo "S active zones after: $(zones $D 30 $((MA + 1)) | grep -c 'open\|closed')"

# Zone state transitions
ok $(zms 4 0 all)
h "close an empty zone" $(zms 1 $((50 * ZL)))
h "finish an empty zone" $(zms 2 $((51 * ZL)))
h "open a full zone" $(zms 3 $((51 * ZL)))
h "close a full zone" $(zms 1 $((51 * ZL)))
h "finish a full zone" $(zms 2 $((51 * ZL)))
h "offline an empty zone (not read-only)" $(zms 5 $((50 * ZL)))
h "reset an empty zone" $(zms 4 $((50 * ZL)))
echo "S zones 50, 51:$(states 50 2)"

# Zone Management Receive (64-byte header, 64-byte descriptors)
h "receive with NUMD 0 (4 bytes)" $(zmr 0 0 4)
h "receive of MDTS bytes" $(zmr 0 0 $MAXIO)
echo "S report of MDTS bytes: nr_zones=$(nrz) of $NZ"
h "receive of 192 bytes, partial report" $(zmr 0 0x10000 192)
echo "S partial report of 192 bytes: nr_zones=$(nrz)"
h "receive of 192 bytes, not partial" $(zmr 0 0 192)
echo "S report of 192 bytes: nr_zones=$(nrz) of $NZ"
h "receive with ZRASF 5 (full zones)" $(zmr 0 0x500 4096)
echo "S full zones: nr_zones=$(nrz)"
h "receive with ZRA 2 (reserved)" $(zmr 0 2 4096)
h "receive with ZRA 1 (extended report), no zone descriptor extensions" $(zmr 0 1 4096)
h "receive with ZRASF 8 (reserved)" $(zmr 0 0x800 4096)
h "receive, SLBA past the namespace end" $(zmr $NSZE 0 4096)

# Admin commands about the ZNS command set (Identify, CNS 5 and 6 with a
# CSI; Get Log Page 5, Commands Supported and Effects, of CSI 2)
h "identify the ZNS namespace (CNS 5, CSI 2)" \
    admin-passthru $D --opcode=0x06 -n 1 -r -l 4096 -i /tmp/id --cdw10=5 --cdw11=0x02000000
h "identify CNS 5, CSI 2, of an invalid namespace (0xfffffff0)" \
    admin-passthru $D --opcode=0x06 -n 0xfffffff0 -r -l 4096 -i /tmp/id --cdw10=5 --cdw11=0x02000000
h "identify the controller for an unknown command set (CNS 6, CSI 3)" \
    admin-passthru $D --opcode=0x06 -r -l 4096 -i /tmp/id --cdw10=6 --cdw11=0x03000000
h "commands supported and effects log of the ZNS command set" \
    admin-passthru $D --opcode=0x02 -r -l 4096 -i /tmp/log --cdw10=0x03ff0005 --cdw14=0x02000000
for o in 0x79 0x7a 0x7d; do
    echo "S effects of opcode $o: csupp=$(($(/gnu/bin/od -A n -t u4 -j $((1024 + 4 * o)) -N 4 /tmp/log) & 1))"
done
}

# The namespace still works: a write at a write pointer with nvme-cli and
# one through Linux's block layer, each read back
# shellcheck disable=SC2046
ok $(io 0x01 $((60 * ZL)) $((4 * K)))
# shellcheck disable=SC2046
ok $(io 0x02 $((60 * ZL)) $((4 * K)))
head -c 65536 /tmp/data > /tmp/d64
at=$((61 * ZL * LBS / 65536))
head -c $((16 * 1024)) /tmp/data | cmp -s - /tmp/rd &&
    dd if=/tmp/d64 of=$D bs=64k seek=$at count=1 oflag=direct 2>/dev/null &&
    dd if=$D of=/tmp/back bs=64k skip=$at count=1 iflag=direct 2>/dev/null &&
    cmp -s /tmp/d64 /tmp/back && echo "the disk works afterwards"
