#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest tests: a Linux guest uses a zoned qcow2 disk over virtio-blk.
# Prints "<name> pass|fail" a test.

. "$(dirname "$0")/../common.sh"

W=$BUILD/guest-work
rm -rf "$W" && mkdir -p "$W"
img=$W/zoned.qcow2
disk=(-blockdev "file,filename=$img,node-name=f"
      -blockdev "qcow2,file=f,node-name=d"
      -device "virtio-blk-pci,drive=d")

# blkzone in the guest; afterwards the host's zone report must agree
"$BUILD/qemu-img" create -q -f qcow2 -o zone.mode=host-managed,zone.size=4M,zone.capacity=3M,zone.conventional_zones=8,zone.max_open_zones=8,zone.max_active_zones=12 "$img" 256M
if "$TOP/harness/guest/run.sh" "$TOP/harness/guest/tests/blkzone.sh" \
        "${disk[@]}" > "$W/blkzone.out" 2>&1; then
    cat "$W/blkzone.out" >&2
    grep -q '^zoned=host-managed chunk_sectors=8192 nr_zones=64$' "$W/blkzone.out" &&
    grep -q '^max_open_zones=8 max_active_zones=12$' "$W/blkzone.out" &&
    grep -q '^zone_append_max_bytes=65536$' "$W/blkzone.out" &&
        echo "guest-sysfs-limits pass" || echo "guest-sysfs-limits fail"
    echo "guest-blkzone pass"
    # Guest: "start: 0x..., ..., wptr 0x<rel> ..., zcond: N(..)" in sectors;
    # host: absolute sectors.  After the restart, open zones are closed
    # (or empty if nothing was written); a full zone's pointer is Linux's
    # zone end in the guest and the capacity on the host.
    sed -n '/^REPORT$/,$p' "$W/blkzone.out" |
        sed -n 's/.*start: 0x\([0-9a-f]*\),.*wptr 0x\([0-9a-f]*\) .*zcond: *\([0-9]*\)(.*/\1 \2 \3/p' |
        while read -r start wp cond; do
            case $cond in
            2|3|4) [ $((16#$wp)) -gt 0 ] && cond=4 || cond=1 ;;
            esac
            [ "$cond" = 14 ] && wp=FULL
            printf '%d %s %s\n' $((16#$start)) "$wp" "$cond"
        done > "$W/guest.zones"
    "$BUILD/qemu-io" -f qcow2 -c "zrp 32M 5" "$img" |
        sed -n 's/^start: 0x\([0-9a-f]*\),.*wptr 0x\([0-9a-f]*\), zcond:\([0-9]*\),.*/\1 \2 \3/p' |
        while read -r start wp cond; do
            rel=$(printf '%06x' $((16#$wp - 16#$start)))
            [ "$cond" = 14 ] && rel=FULL
            printf '%d %s %s\n' $((16#$start)) "$rel" "$cond"
        done > "$W/host.zones"
    if [ -s "$W/guest.zones" ] && diff "$W/guest.zones" "$W/host.zones" >&2; then
        echo "guest-blkzone-matches-host pass"
    else
        echo "guest-blkzone-matches-host fail"
    fi
else
    cat "$W/blkzone.out" >&2
    echo "guest-blkzone fail"
fi
"$BUILD/qemu-img" check "$img" >&2 && echo "guest-image-check pass" ||
    echo "guest-image-check fail"
