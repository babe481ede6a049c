#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest tests on the newest guest (GUEST=new, see build.sh: Debian sid's
# Linux 7.x, xfsprogs 7.2, fio 3.41, util-linux 2.42, nvme-cli 2.16).
# Prints "<name> pass|fail|skip" a test.
#
# usage: check-new.sh [fast|full]
#   fast (make check): the kernel is 7.x; blkzone.sh (Write Zeroes across
#        clusters of conventional zones, zone commands, util-linux 2.42's
#        report against the host's); a subset of fio 3.41's zoned suite on
#        virtio-blk and on NVMe ZNS; zoned XFS on the NVMe namespace (its
#        data section on a plain namespace) whose cache is off
#        (write-cache=off): remount, xfs_repair -n, a power cut after
#        sync keeps every file; the XFS finding with the cache on
#        (xfs_cut below); the kernel's finding on rotational zoned disks
#        (rotational.sh, next to null_blk); zones that fail (check.sh's
#        sections 6 and 7: virtio-blk, NVMe and its notice, zonefs,
#        btrfs, f2fs)
#   full (make check-guest): that, fio 3.41's whole suite on both
#        front-ends next to null_blk and QEMU's NVMe ZNS in the same guest;
#        zoned XFS on virtio-blk (a zoned realtime disk and a plain data
#        disk; one disk with conventional zones) across a power cut; the
#        xfsprogs finding on conventional zones with a zone capacity below
#        the zone size, next to null_blk
# Output of the runs in build/guest-new-work; fio's summaries in its
# fio-summary.

. "$(dirname "$0")/../common.sh"

mode=${1:-fast}
case $mode in
fast|full) ;;
*) die "usage: check-new.sh [fast|full]" ;;
esac
export GUEST=new
W=$BUILD/guest-new-work
T=$TOP/harness/guest/tests
rm -rf "$W" && mkdir -p "$W"
. "$TOP/harness/guest/lib.sh"
"$TOP/harness/guest/build.sh" >&2 || die "the newest guest cannot be built"

# The kernel, and blkzone.sh as on the long-term guest
echo 'echo "kernel $(uname -r)"' > "$W/kernel"
blkzone_test guest-new "$W/kernel" "$T/blkzone.sh"
k=$(sed -n 's/^kernel \([0-9]*\)\..*/\1/p' "$W/guest-new-blkzone.out")
[ "${k:-0}" -ge 7 ] && echo "guest-new-kernel pass" ||
    echo "guest-new-kernel fail: $(grep -m1 '^kernel ' "$W/guest-new-blkzone.out")"

# The kernel finding on rotational zoned disks (README.rst): after Linux
# itself refused a write past the capacity of an empty zone, it refuses
# every write to that zone until a reset, on null_blk made rotational as on
# our disk (Linux sees every virtio-blk disk as rotational), not on
# null_blk as it comes.  It is the kernel's, not ours, only if none of
# those writes reached QEMU: the trace must show one write to zone 8, the
# one after the reset
rot=$W/rotational
{ echo '#!/bin/sh'
  echo 'NULLB_SIZE=256 NULLB_ZONE_SIZE=4 NULLB_ZONE_CAP=3 NULLB_CONV=8'
  echo 'NULLB_MAX_OPEN=8 NULLB_MAX_ACTIVE=12'
  cat "$T/nullb.sh"
  echo 'NULLB_NAME=zbd1 NULLB_ROTATIONAL=1'
  cat "$T/nullb.sh" "$T/rotational.sh"; } > "$rot"
fresh
"$TOP/harness/guest/run.sh" "$rot" "${disk[@]}" -D "$W/rotational.trace" \
    -trace virtio_blk_handle_write > "$W/rotational.out" 2>&1 || true
cat "$W/rotational.out" >&2
expect guest-new-rotational-kernel-finding "$W/rotational.out" \
    "/dev/zbd0 rotational=0: past the capacity refused, at the write pointer after a report accepted, after a reset accepted" \
    "/dev/zbd1 rotational=1: past the capacity refused, at the write pointer after a report refused, after a reset accepted" \
    "/dev/vda rotational=1: past the capacity refused, at the write pointer after a report refused, after a reset accepted"
z8=$(grep -o 'sector [0-9]* nsectors' "$W/rotational.trace" |
     awk '$2 >= 65536 && $2 < 73728 { print $2 }' | tr '\n' ' ')
[ "$z8" = "65536 " ] && echo "guest-new-rotational-not-ours pass" ||
    echo "guest-new-rotational-not-ours fail: writes to zone 8 in QEMU: $z8"

# Zones that fail, as on the long-term guest (check.sh's sections 6 and
# 7): blkzone, nvme-cli 2.16, the NVMe notice and Changed Zone List,
# zonefs, btrfs and f2fs on Linux 7.x
if [ "$mode" = fast ]; then
    GUEST_WORK=$W/faults FAULTS_ONLY=1 "$TOP/harness/guest/check.sh" fast |
        sed 's/^guest-/guest-new-/'
fi

# fio 3.41's zoned suite: on virtio-blk with conventional zones, and on
# an NVMe ZNS namespace (the same geometry without them)
FIO_FAST="1 2 4 6 11 14 19 27 33 45 50 52 53 55"
FIO_NVME_FAST="2 4 6 11 27 33 45"
NGEOMETRY=zone.mode=host-managed,zone.size=4M,zone.capacity=3M,zone.max_open_zones=8,zone.max_active_zones=12
# ndisk FILE... (nsid 1, 2...): an NVMe controller with a namespace a
# qcow2 image; ",OPTS" after a file are the nvme-ns device's own options
ndisk() {
    local n=0 a
    nd=(-device nvme,id=nvme0,serial=zns0)
    for a in "$@"; do
        n=$((n + 1))
        nd+=(-blockdev "file,filename=${a%%,*},node-name=nf$n"
             -blockdev "qcow2,file=nf$n,node-name=nd$n"
             -device "nvme-ns,drive=nd$n,bus=nvme0,nsid=$n${a#"${a%%,*}"}")
    done
}
fresh 1G
nimg=$W/nvme1.qcow2
"$BUILD/qemu-img" create -q -f qcow2 -o "$NGEOMETRY" "$nimg" 1G
ndisk "$nimg"
echo 'loadmod nvme' > "$W/nvme-prep"
if [ "$mode" = fast ]; then
    fio_run guest-new-fio-zbd /dev/vda "-o 8 $(printf -- '-t %s ' $FIO_FAST)" - "${disk[@]}"
    # shellcheck disable=SC2086
    fio_judge guest-new-fio-zbd "$(echo $FIO_FAST | wc -w)"
    fio_run guest-new-fio-zbd-nvme /dev/nvme0n1 \
        "-o 8 $(printf -- '-t %s ' $FIO_NVME_FAST)" "$W/nvme-prep" "${nd[@]}"
    # shellcheck disable=SC2086
    FIO_NO_CONV=1 fio_judge guest-new-fio-zbd-nvme "$(echo $FIO_NVME_FAST | wc -w)"
fi
if [ "$mode" = full ]; then
    # The whole suite (75 tests) on our two disks, and in the same guest on
    # the baselines with the same geometry: null_blk for virtio-blk,
    # QEMU's NVMe ZNS emulation of a raw file for our namespace
    compose "$W/nullb-prep" NULLB_SIZE=1024 NULLB_ZONE_SIZE=4 NULLB_ZONE_CAP=3 \
        NULLB_CONV=8 NULLB_MAX_OPEN=8 NULLB_MAX_ACTIVE=12 -- "$T/nullb.sh"
    # 3 GiB of guest memory each: null_blk keeps its 1 GiB there, and
    # test 34 (verified writes of 3 MiB blocks at queue depth 256) has fio
    # killed for lack of memory in a guest of 1 GiB
    export GUEST_MEM=3G
    fio_run guest-new-fio-zbd-null_blk /dev/zbd0 "-o 8" "$W/nullb-prep"
    fio_run guest-new-fio-zbd-full /dev/vda "-o 8" - "${disk[@]}"
    truncate -s 0 "$W/nvme.raw" && truncate -s 1G "$W/nvme.raw"
    fio_run guest-new-fio-zbd-nvme-baseline /dev/nvme0n1 "-o 8" "$W/nvme-prep" \
        -blockdev "file,filename=$W/nvme.raw,node-name=f" \
        -blockdev raw,file=f,node-name=d -device nvme,id=nvme0,serial=zns0,zoned.zasl=4 \
        -device nvme-ns,drive=d,bus=nvme0,nsid=1,zoned=on,zoned.zone_size=4M,zoned.zone_capacity=3M,zoned.max_open=8,zoned.max_active=12
    fio_run guest-new-fio-zbd-nvme-full /dev/nvme0n1 "-o 8" "$W/nvme-prep" "${nd[@]}"
    unset GUEST_MEM
    fio_compare guest-new-fio-zbd-full guest-new-fio-zbd-null_blk 75
    FIO_NO_CONV=1 fio_compare guest-new-fio-zbd-nvme-full guest-new-fio-zbd-nvme-baseline 75
fi
image_check guest-new-fio-image-check
img=$nimg image_check guest-new-fio-nvme-image-check

# Zoned XFS on the NVMe namespace, its data section on a plain namespace
# (nsid 2), the zoned namespace's cache off: every write the guest saw
# complete is durable, so a power cut after sync loses no file
# xfs_judge NAME IMAGE: fs.sh's XFS runs NAME-write and NAME-check (after
# cut_run): the files intact after the remount, xfs_repair -n clean after
# it and after the power cut, every checksum kept, IMAGE clean
xfs_judge() {
    local name=$1
    grep -q '^remount: [0-9]* files intact$' "$W/$name-write.out" &&
        [ "$(grep -c '^xfs_repair -n: clean$' "$W/$name-write.out")" = 1 ] &&
        echo "$name-remount pass" || echo "$name-remount fail"
    power_cut_judge "$name-power-cut" "$W/$name-write.out" "$W/$name-check.out"
    grep -q '^xfs_repair -n: clean$' "$W/$name-check.out" &&
        echo "$name-repair-after-cut pass" || echo "$name-repair-after-cut fail"
    img=$2 image_check "$name-image-check" after-cut
}
xfs_nvme() {
    local name=$1 nsopts=$2
    "$BUILD/qemu-img" create -q -f qcow2 -o "$NGEOMETRY" "$nimg" 1G
    "$BUILD/qemu-img" create -q -f qcow2 "$W/nvme-plain.qcow2" 1G
    ndisk "$nimg$nsopts" "$W/nvme-plain.qcow2"
    compose "$W/$name-write.sh" FS=xfs NVME_NS=2 PHASE=write -- \
        "$T/nvme-prep.sh" "$T/nvme-fs.sh" "$T/fs.sh"
    compose "$W/$name-check.sh" FS=xfs NVME_NS=2 PHASE=check -- \
        "$T/nvme-prep.sh" "$T/nvme-fs.sh" "$T/fs.sh"
    cut_run "$name" "${nd[@]}"
    grep -q '^zones written on nsid 1: [1-9][0-9]*$' "$W/$name-write.out" &&
        echo "$name-zones-written pass" || echo "$name-zones-written fail"
    xfs_judge "$name" "$nimg"
}
xfs_nvme guest-new-xfs-nvme-nocache ,write-cache=off

# XFS's unflushed realtime data after sync (the namespace's cache on): the
# Linux 7.2 finding that README.rst describes.  The guest writes
# files with fsync, one more without, then runs sync(1) and the power is
# cut.  sync writes that file back with Zone Appends and commits XFS's log
# on the data namespace, but flushes only the data namespace: the appends
# are in the zoned namespace's volatile cache, lost with the power, while
# the durable log counts them, and the mount fails ("zone N has used
# counter (X) larger than write pointer (Y)").
#   *-flushed-durable: our device's part.  From QEMU's trace: every Zone
#     Append completed before the zoned namespace's last Flush lies below
#     the write pointer the image has after the cut.
#   *-kernel-finding: pass when the mount failed so and what XFS lost
#     is only what was appended after that last Flush (the kernel's
#     part); skip when this run's mount succeeded.
# With the cache off (xfs_cut NAME ,write-cache=off), the same run must
# keep every file (*-keeps-every-file): the mount succeeds and the 25
# files read back as written.
xfs_cut() {
    local name=$1 wout=$W/$1-write.out cout=$W/$1-check.out tr=$W/$1.trace
    local lbs last lost rnd
    "$BUILD/qemu-img" create -q -f qcow2 -o "$NGEOMETRY" "$nimg" 1G
    "$BUILD/qemu-img" create -q -f qcow2 "$W/nvme-plain.qcow2" 1G
    ndisk "$nimg${2:-}" "$W/nvme-plain.qcow2"
    compose "$W/$name-write.sh" NVME_NS=2 PHASE=write -- "$T/nvme-prep.sh" "$T/xfs-cut.sh"
    compose "$W/$name-check.sh" NVME_NS=2 PHASE=check -- "$T/nvme-prep.sh" "$T/xfs-cut.sh"
    GUEST_KILL_AT="=== SYNCED ===" "$TOP/harness/guest/run.sh" \
        "$W/$name-write.sh" "${nd[@]}" -trace pci_nvme_flush_ns \
        -trace pci_nvme_zbd_append -D "$tr" > "$wout" 2>&1 || true
    "$TOP/harness/guest/run.sh" "$W/$name-check.sh" "${nd[@]}" > "$cout" 2>&1 || true
    cat "$wout" "$cout" >&2
    if [ -n "${2:-}" ]; then
        rnd=$(sed -n 's/^RND \([0-9a-f]*\)$/\1/p' "$wout")
        grep -q '^MOUNT ok$' "$cout" && [ -n "$rnd" ] &&
            [ "$(grep -c "^SUM $rnd " "$cout")" = 25 ] &&
            echo "$name-keeps-every-file pass" || echo "$name-keeps-every-file fail"
        return
    fi
    lbs=$(sed -n 's/^LBS \([0-9]*\)$/\1/p' "$wout")
    last=$(grep -n '^pci_nvme_flush_ns nsid 0x1$' "$tr" | tail -n1 | cut -d: -f1)
    if [ -z "$lbs" ] || [ -z "$last" ]; then
        echo "$name-flushed-durable fail: the run left no trace of flushes"
        return
    fi
    # The image's zones after the cut: "START WP COND" in bytes
    "$BUILD/qemu-io" -f qcow2 -c "zrp 0 1024" "$nimg" |
        sed -n 's/^start: 0x\([0-9a-f]*\),.*wptr 0x\([0-9a-f]*\), zcond:\([0-9]*\),.*/\1 \2 \3/p' |
        while read -r start wp cond; do
            echo "$((16#$start * 512)) $((16#$wp * 512)) $cond"
        done > "$W/$name.zones"
    local -a zwp zcond
    while read -r start wp cond; do
        zwp+=("$wp")
        zcond+=("$cond")
    done < "$W/$name.zones"
    # below before|after: the appends of the trace (before its line
    # $last, or after it) that end above their zone's write pointer
    # after the cut (full zones excepted)
    below() {
        local n=0 l slba nlb end zi
        local -a f
        while IFS= read -r l; do
            n=$((n + 1))
            [[ $l = pci_nvme_zbd_append* ]] || continue
            if [ "$1" = before ]; then
                [ "$n" -lt "$last" ] || continue
            else
                [ "$n" -gt "$last" ] || continue
            fi
            read -ra f <<<"$l"    # NAME cid C written at slba 0xS nlb N fua F
            slba=$((f[6])) nlb=${f[8]}
            end=$(((slba + nlb) * lbs))
            zi=$((slba * lbs / (4 * 1048576)))
            [ "${zcond[zi]}" != 14 ] && [ "$end" -gt "${zwp[zi]}" ] &&
                echo "slba ${f[6]} nlb $nlb"
        done < "$tr"
        return 0
    }
    lost=$(below before)
    if [ -z "$lost" ]; then
        echo "$name-flushed-durable pass"
    else
        echo "$name-flushed-durable fail: $(echo "$lost" | wc -l) appends completed before the last flush are lost, the first: $(echo "$lost" | head -n1)"
    fi
    if grep -q '^MOUNT ok$' "$cout"; then
        echo "$name-kernel-finding skip: XFS mounted after this cut"
    elif grep -q 'has used counter .* larger than write pointer' "$cout" &&
         [ -z "$lost" ] && [ -n "$(below after)" ]; then
        echo "$name-kernel-finding pass"
        grep -m1 'has used counter' "$cout" | sed 's/^/  /' >&2
    else
        echo "$name-kernel-finding fail"
    fi
}
xfs_cut guest-new-xfs-cut
xfs_cut guest-new-xfs-cut-nocache ,write-cache=off

if [ "$mode" = full ]; then
    # Zoned XFS on virtio-blk: the realtime device a zoned disk without
    # conventional zones, the data section on a plain disk; then one disk
    # with conventional zones that holds both (the data section on the
    # conventional zones, the realtime section on the sequential ones)
    xfs_virtio() {
        local name=$1 geometry=$2 vars=(FS=xfs)
        local -a d=("${disk[@]}")
        "$BUILD/qemu-img" create -q -f qcow2 -o "$geometry" "$img" 2G
        if [ -n "${3:-}" ]; then
            "$BUILD/qemu-img" create -q -f qcow2 "$W/plain.qcow2" 1G
            d+=(-blockdev "file,filename=$W/plain.qcow2,node-name=pf"
                -blockdev "qcow2,file=pf,node-name=pd"
                -device "virtio-blk-pci,drive=pd")
            vars+=(FS_DEV=/dev/vdb FS_RTDEV=/dev/vda)
        fi
        compose "$W/$name-write.sh" "${vars[@]}" PHASE=write -- "$T/fs.sh"
        compose "$W/$name-check.sh" "${vars[@]}" PHASE=check -- "$T/fs.sh"
        cut_run "$name" "${d[@]}"
        xfs_judge "$name" "$img"
    }
    xfs_virtio guest-new-xfs-virtio-rtdev "$NGEOMETRY" plain
    xfs_virtio guest-new-xfs-virtio-internal \
        zone.mode=host-managed,zone.size=4M,zone.conventional_zones=128,zone.max_open_zones=8,zone.max_active_zones=12

    # xfsprogs 7.2 with conventional zones whose zone capacity is below
    # the zone size: mkfs.xfs starts the realtime section at the number
    # of conventional zones times the capacity, inside the conventional
    # zones, and the kernel refuses the mount ("zone 0 capacity (1024)
    # does not match RT group size (768)").  It is xfsprogs' (or the
    # kernel's) if null_blk with the same geometry fails the same way.
    echo 'loadmod xfs
mkfs.xfs -f "$XDEV" > /tmp/mkfs.out 2>&1 || { cat /tmp/mkfs.out; echo "MKFS failed"; }
if mount -t xfs "$XDEV" /mnt; then echo "MOUNT ok"; umount /mnt
else echo "MOUNT failed"; dmesg | grep "XFS" | tail -n 3; fi' > "$W/xfs-mount"
    compose "$W/xfs-cap-nullb.sh" NULLB_SIZE=2048 NULLB_ZONE_SIZE=4 NULLB_ZONE_CAP=3 \
        NULLB_CONV=128 NULLB_MAX_OPEN=8 NULLB_MAX_ACTIVE=12 XDEV=/dev/zbd0 -- \
        "$T/nullb.sh" "$W/xfs-mount"
    compose "$W/xfs-cap.sh" XDEV=/dev/vda -- "$W/xfs-mount"
    "$TOP/harness/guest/run.sh" "$W/xfs-cap-nullb.sh" > "$W/xfs-cap-nullb.out" 2>&1 || true
    "$BUILD/qemu-img" create -q -f qcow2 -o \
        zone.mode=host-managed,zone.size=4M,zone.capacity=3M,zone.conventional_zones=128,zone.max_open_zones=8,zone.max_active_zones=12 \
        "$img" 2G
    "$TOP/harness/guest/run.sh" "$W/xfs-cap.sh" "${disk[@]}" > "$W/xfs-cap.out" 2>&1 || true
    cat "$W/xfs-cap-nullb.out" "$W/xfs-cap.out" >&2
    m='does not match RT group size'
    if grep -q '^MOUNT ok$' "$W/xfs-cap.out"; then
        echo "guest-new-xfs-capacity-finding skip: XFS mounts now"
    elif grep -q "$m" "$W/xfs-cap.out" && grep -q "$m" "$W/xfs-cap-nullb.out"; then
        echo "guest-new-xfs-capacity-finding pass"
    else
        echo "guest-new-xfs-capacity-finding fail"
    fi
fi
