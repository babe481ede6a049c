#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest tests: a Linux guest uses a zoned qcow2 disk over virtio-blk, and
# as an NVMe ZNS namespace.  Prints "<name> pass|fail|skip" a test.
#
# usage: check.sh [fast|full]
#   fast (make check): sysfs limits, blkzone against the host's report,
#        zone resource errors, a power cut, no merging across zones,
#        requests the disk must refuse, fio from both vCPUs on a disk
#        whose two queues two iothreads serve, a subset of fio's zoned
#        suite, f2fs across a power cut; on NVMe ZNS: sysfs and Identify,
#        nvme-cli's zone commands against the host's report, hostile
#        commands and their statuses, a power cut, three namespaces, a
#        subset of fio's zoned suite; zones that fail on both (failed at
#        rest, while the guest runs, by NVMe's Offline action; across a
#        restart), under zonefs with each errors= option, and under
#        btrfs and f2fs
#   full (make check-guest): that, fio's whole suite on our disk, on
#        QEMU's NVMe ZNS and on null_blk (the baselines), btrfs and
#        zonefs; on our NVMe ZNS namespace fio's whole suite, btrfs,
#        zonefs and f2fs (with a plain namespace) across power cuts
# The fio suite's summaries go to build/guest-work/fio-summary, the NVMe
# hostile commands' statuses to build/guest-work/nvme-hostile-table.
# NVME_ZNS=raw: the NVMe tests on QEMU's own ZNS emulation of a raw file.

. "$(dirname "$0")/../common.sh"

mode=${1:-fast}
case $mode in
fast|full) ;;
*) die "usage: check.sh [fast|full]" ;;
esac
W=${GUEST_WORK:-$BUILD/guest-work}
T=$TOP/harness/guest/tests
rm -rf "$W" && mkdir -p "$W"
. "$TOP/harness/guest/lib.sh"
# FAULTS_ONLY=1: sections 6 and 7 of the NVMe part alone (zones that fail;
# check-new.sh runs them on the newest guest)
if [ -z "${FAULTS_ONLY:-}" ]; then
# blkzone in the guest; afterwards the host's zone report must agree
blkzone_test guest "$T/blkzone.sh"

# Zone resources: the guest sees their errors as Linux's own
fresh
"$TOP/harness/guest/run.sh" "$T/resources.sh" \
    "${disk[@]}" > "$W/resources.out" 2>&1
cat "$W/resources.out" >&2
expect guest-zone-resource-errors "$W/resources.out" \
    "write to a ninth zone: Too many references: cannot splice" \
    "open a ninth zone: Too many references: cannot splice" \
    "write to a thirteenth zone: Value too large for defined data type" \
    "write off the write pointer: Input/output error" \
    "active zones: 12"

# A power cut (SIGKILL of QEMU) after the guest synced: write pointers and
# data are there after the restart
fresh
GUEST_KILL_AT="=== SYNCED ===" "$TOP/harness/guest/run.sh" \
    "$T/persist-write.sh" "${disk[@]}" \
    > "$W/persist1.out" 2>&1
"$TOP/harness/guest/run.sh" "$T/persist-check.sh" \
    "${disk[@]}" > "$W/persist2.out" 2>&1
cat "$W/persist1.out" "$W/persist2.out" >&2
# Zone 8 holds its two synced writes, and maybe the unsynced third
sed -i 's/^wptr=0x000180 cond=4$/wptr=0x000100 cond=4/' "$W/persist2.out"
expect guest-power-cut "$W/persist2.out" \
    "wptr=0x000100 cond=4" "wptr=0x000080 cond=4" \
    "zone 8 data: intact" "zone 9 data: intact"
image_check guest-power-cut-image-check after-cut

# Writes that meet at a zone boundary, submitted together, are not merged
# into one across it
fresh
"$TOP/harness/guest/run.sh" "$T/merge.sh" "${disk[@]}" > "$W/merge.out" 2>&1 || true
cat "$W/merge.out" >&2
expect guest-no-merge-across-zones "$W/merge.out" \
    "writes meeting at a zone boundary: 0 of 20 batches failed" \
    "zone 8 wptr=0x000080"

# Requests the disk must refuse: each fails in the guest, none stops the VM
# (the disk has werror=stop: a zone error that went through the werror
# policy would stop it).  Linux stops some itself (reset and finish of a
# conventional zone, writes it knows are off the write pointer); those that
# reach QEMU complete with the zone statuses of the virtio spec (trace of
# virtio_blk_req_complete: 3 ZONE_INVALID_CMD for open and close of a
# conventional zone, 4 ZONE_UNALIGNED_WP for the first write and the first
# write zeroes to an empty zone, ahead of its write pointer), never with a
# plain IOERR (1)
fresh
"$TOP/harness/guest/run.sh" "$T/hostile.sh" "${disk[@]}" \
    -global virtio-blk-pci.werror=stop \
    -D "$W/hostile.trace" -trace virtio_blk_req_complete > "$W/hostile.out" 2>&1 || true
cat "$W/hostile.out" >&2
expect guest-hostile-requests "$W/hostile.out" \
    "reset a conventional zone: Input/output error" \
    "open a conventional zone: Input/output error" \
    "close a conventional zone: Input/output error" \
    "finish a conventional zone: Input/output error" \
    "open a zone past the end: Invalid argument" \
    "write ahead of the write pointer of an empty zone: Input/output error" \
    "write past the capacity: Input/output error" \
    "write to a full zone: Input/output error" \
    "write zeroes ahead of the write pointer of an empty zone: Input/output error" \
    "zone 8: full" "read past the capacity: 0 non-zero bytes" \
    "the disk works afterwards"
st() { grep -c "virtio_blk_req_complete .* status $1\$" "$W/hostile.trace"; }
printf 'virtio statuses: %s ZONE_INVALID_CMD, %s ZONE_UNALIGNED_WP, %s IOERR\n' \
    "$(st 3)" "$(st 4)" "$(st 1)" >&2
[ "$(st 3)" -ge 2 ] && [ "$(st 4)" -ge 2 ] && [ "$(st 1)" = 0 ] &&
    echo "guest-hostile-virtio-statuses pass" ||
    echo "guest-hostile-virtio-statuses fail"

# Two iothreads serve the disk's two queues (iothread-vq-mapping), so QEMU
# takes requests for the same zones from two threads at once: fio jobs on
# both vCPUs, verified sequential writes and random-zone writes with zone
# resets and fsyncs, on 8 zones (tests/iothreads.sh).  QEMU must neither
# die nor hang, fio must find no error, the host's zone report must match
# the guest's and the image must be clean.
fresh
iodisk=(-object "iothread,id=io0" -object "iothread,id=io1"
        -blockdev "file,filename=$img,node-name=f"
        -blockdev "qcow2,file=f,node-name=zd"
        -device '{"driver":"virtio-blk-pci","drive":"zd","num-queues":2,"iothread-vq-mapping":[{"iothread":"io0"},{"iothread":"io1"}]}')
t0=$SECONDS
GUEST_TIMEOUT=120 "$TOP/harness/guest/run.sh" "$T/iothreads.sh" "${iodisk[@]}" \
    > "$W/iothreads.out" 2>&1 || true
cat "$W/iothreads.out" >&2
why=$(qemu_died "$W/iothreads.out")
cut=
if [ -n "$why" ]; then
    echo "guest-iothreads fail: $why (after $((SECONDS - t0)) s)"
    cut=after-cut
elif grep -q '^FAIL: ' "$W/iothreads.out"; then
    echo "guest-iothreads fail: $(grep -m1 '^FAIL: ' "$W/iothreads.out" | cut -c7-)"
    cut=after-cut
else
    expect guest-iothreads "$W/iothreads.out" "queues: 2" \
        "own-zones-verified: ok" "shared-zones-resets: ok" \
        "verified-and-random: ok" "=== GUEST TEST END rc=0 ==="
fi
if ! grep -q '^REPORT$' "$W/iothreads.out"; then
    echo "guest-iothreads-matches-host fail: the guest printed no zone report"
elif zones_match "$W/iothreads.out" 8; then
    echo "guest-iothreads-matches-host pass"
else
    echo "guest-iothreads-matches-host fail: the host's zone report differs from the guest's"
fi
# A run that failed may have ended with QEMU's death, a power cut: leaked
# clusters are allowed then
image_check guest-iothreads-image-check $cut

# fio's zoned suite (t/zbd/test-zbd-support of Debian's fio 3.33; fio_run
# and fio_judge in lib.sh)
# Tests that take about a second each and cover conventional zones, zone
# capacity, open and active limits and zone resets
FIO_FAST="1 2 4 6 11 14 19 27 33 45 50 52 53 55"
fresh 1G
if [ "$mode" = fast ]; then
    fio_run guest-fio-zbd /dev/vda "-o 8 $(printf -- '-t %s ' $FIO_FAST)" - "${disk[@]}"
    # shellcheck disable=SC2086
    fio_judge guest-fio-zbd "$(echo $FIO_FAST | wc -w)"
else
    # Test 54 trips an assertion of fio itself (zbd_replay_write_order);
    # it is excused on our disk only if it fails on null_blk the same way.
    compose "$W/nullb-prep" NULLB_SIZE=1024 NULLB_ZONE_SIZE=4 NULLB_ZONE_CAP=3 \
        NULLB_CONV=8 NULLB_MAX_OPEN=8 NULLB_MAX_ACTIVE=12 -- "$T/nullb.sh"
    fio_run guest-fio-zbd-null_blk-54 /dev/zbd0 "-o 8 -t 54" "$W/nullb-prep"
    fio_run guest-fio-zbd-full /dev/vda "-o 8" - "${disk[@]}"
    excused=
    a="zbd_replay_write_order: Assertion"
    grep -q '^54 FAIL' "$W/guest-fio-zbd-null_blk-54.results" &&
        grep -q "$a" "$W/guest-fio-zbd-null_blk-54.out" &&
        sed -n '/^--- log of failed test 54 /,/^---/p' "$W/guest-fio-zbd-full.out" |
            grep -q "$a" && excused=54
    fio_judge guest-fio-zbd-full 58 $excused
    # The baseline: QEMU's own NVMe ZNS emulation, same geometry but no
    # conventional zones (ZNS has none)
    truncate -s 0 "$W/nvme.raw" && truncate -s 1G "$W/nvme.raw"
    echo 'loadmod nvme' > "$W/nvme-prep"
    fio_run guest-fio-zbd-nvme-baseline /dev/nvme0n1 "-o 8" "$W/nvme-prep" \
        -blockdev "file,filename=$W/nvme.raw,node-name=f" \
        -blockdev raw,file=f,node-name=d -device nvme,id=nvme0,serial=zns0 \
        -device nvme-ns,drive=d,bus=nvme0,nsid=1,zoned=on,zoned.zone_size=4M,zoned.zone_capacity=3M,zoned.max_open=8,zoned.max_active=12
    [ "$(wc -l < "$W/guest-fio-zbd-nvme-baseline.results")" = 58 ] &&
        echo "guest-fio-zbd-nvme-baseline-ran pass" ||
        echo "guest-fio-zbd-nvme-baseline-ran fail"
fi
image_check guest-fio-image-check

# Filesystems: make, mount, write, unmount, mount again, compare; then a
# power cut after sync, and the files are there after the restart
fs_cycle() {
    local fs=$1
    fresh 1G
    compose "$W/$fs-write.sh" "FS=$fs" PHASE=write -- "$T/fs.sh"
    compose "$W/$fs-check.sh" "FS=$fs" PHASE=check -- "$T/fs.sh"
    cut_run "$fs" "${disk[@]}"
    grep -q '^remount: [0-9]* files intact$' "$W/$fs-write.out" &&
        echo "guest-$fs-remount pass" || echo "guest-$fs-remount fail"
    power_cut_judge "guest-$fs-power-cut" "$W/$fs-write.out" "$W/$fs-check.out"
    image_check "guest-$fs-image-check" after-cut
}
fs_cycle f2fs
if [ "$mode" = full ]; then
    fs_cycle btrfs
    fs_cycle zonefs
fi

fi

# NVMe ZNS: a zoned image as a ZNS namespace (CSI 2) of QEMU's NVMe
# controller, nvme-ns on the zoned qcow2 node; its zones are the image's
# (no conventional zones: ZNS has none).  NVME_ZNS=raw runs the same guest
# scripts on QEMU's own ZNS emulation of a raw file instead, same geometry
# (its zones live in memory: what needs the image -- the host's zone
# report, the power cuts -- is skipped there).
NVME_ZNS=${NVME_ZNS:-qcow2}
case $NVME_ZNS in
qcow2|raw) ;;
*) die "NVME_ZNS is qcow2 (the zoned image) or raw (QEMU's ZNS emulation), not '$NVME_ZNS'" ;;
esac
NGEOMETRY=zone.mode=host-managed,zone.size=4M,zone.capacity=3M,zone.max_open_zones=8,zone.max_active_zones=12
# ZASL 4: 64 KiB appends (in 4 KiB pages), the image's default limit
NRAW=zoned=on,zoned.zone_size=4M,zoned.zone_capacity=3M,zoned.max_open=8,zoned.max_active=12
NRAW_CTRL=,zoned.zasl=4
# What Linux and nvme-cli must see of a 256 MiB namespace of that geometry
NVME_SYSFS=("sysfs zoned=host-managed" "sysfs chunk_sectors=8192" "sysfs nr_zones=64"
            "sysfs max_open_zones=8" "sysfs max_active_zones=12"
            "sysfs zone_append_max_bytes=65536" "sysfs logical_block_size=512")
NVME_ID=("id-ns zoc=0" "id-ns mar=0xb" "id-ns mor=0x7" "id-ns zsze=0x2000 zdes=0"
         "id-ctrl zasl=4" "zone capacity=3145728")
# nvme_fresh N [SIZE]: $W/nvmeN.qcow2 (.raw with NVME_ZNS=raw), new and empty
nvme_fresh() {
    if [ "$NVME_ZNS" = raw ]; then
        rm -f "$W/nvme$1.raw" && truncate -s "${2:-256M}" "$W/nvme$1.raw"
    else
        "$BUILD/qemu-img" create -q -f qcow2 -o "$NGEOMETRY" "$W/nvme$1.qcow2" "${2:-256M}"
    fi
}
nimg() { if [ "$NVME_ZNS" = raw ]; then echo "$W/nvme$1.raw"; else echo "$W/nvme$1.qcow2"; fi; }
# nvme_disk NS...: in ndisk, the QEMU arguments of a controller with these
# namespaces, nsid 1, 2...; NS is N (the zoned nvme_fresh image N) or
# plain:FILE (a plain qcow2 image: a namespace of the NVM command set)
nvme_disk() {
    local nsid=0 a ctrl=
    [ "$NVME_ZNS" = qcow2 ] || ctrl=$NRAW_CTRL
    ndisk=(-device "nvme,id=nvme0,serial=zns0$ctrl")
    for a in "$@"; do
        nsid=$((nsid + 1))
        case $a in
        plain:*)
            ndisk+=(-blockdev "file,filename=${a#plain:},node-name=f$nsid"
                    -blockdev "qcow2,file=f$nsid,node-name=zd$nsid"
                    -device "nvme-ns,drive=zd$nsid,bus=nvme0,nsid=$nsid") ;;
        *)
            if [ "$NVME_ZNS" = raw ]; then
                ndisk+=(-blockdev "file,filename=$(nimg "$a"),node-name=f$nsid"
                        -blockdev "raw,file=f$nsid,node-name=zd$nsid"
                        -device "nvme-ns,drive=zd$nsid,bus=nvme0,nsid=$nsid,$NRAW")
            else
                ndisk+=(-blockdev "file,filename=$(nimg "$a"),node-name=f$nsid"
                        -blockdev "qcow2,file=f$nsid,node-name=zd$nsid"
                        -device "nvme-ns,drive=zd$nsid,bus=nvme0,nsid=$nsid")
            fi ;;
        esac
    done
}
# nvme_run NAME SCRIPT... -- [VAR=VALUE...]: the guest scripts after
# nvme-prep.sh (the variables set first) with ndisk, output in $W/NAME.out
nvme_run() {
    local name=$1 files=()
    shift
    while [ "$1" != -- ]; do
        files+=("$T/$1")
        shift
    done
    shift
    compose "$W/$name.sh" "$@" -- "$T/nvme-prep.sh" "${files[@]}"
    "$TOP/harness/guest/run.sh" "$W/$name.sh" "${ndisk[@]}" > "$W/$name.out" 2>&1 || true
    cat "$W/$name.out" >&2
}
# nvme_ok NAME OUT: the guest script ran to its end, QEMU did not die
nvme_ok() {
    local why
    why=$(qemu_died "$2")
    if [ -n "$why" ]; then
        echo "$1 fail: $why"
    elif grep -q '^FAIL: ' "$2"; then
        echo "$1 fail: $(grep -m1 '^FAIL: ' "$2" | cut -c7-)"
    elif grep -q '^=== GUEST TEST END rc=0 ===$' "$2"; then
        echo "$1 pass"
    else
        echo "$1 fail"
    fi
}
# nvme_host_zones IMG N: the image's first N zones as the guest prints
# them ("ZONE <index> <state> <wp>", see nvme-prep.sh) after a restart
nvme_host_zones() {
    "$BUILD/qemu-io" -f qcow2 -c "zrp 0 $2" "$1" |
        sed -n 's/^start: 0x\([0-9a-f]*\),.*wptr 0x\([0-9a-f]*\), zcond:\([0-9]*\),.*/\1 \2 \3/p' |
        while read -r start wp cond; do
            rel=$(((16#$wp - 16#$start) * 512))
            case $cond in
            1) s=empty ;; 2|3|4) s=closed ;; 14) s=full rel=- ;; *) s=cond-$cond ;;
            esac
            [ "$s" = closed ] && [ "$rel" = 0 ] && s=empty
            echo "ZONE $((16#$start / 8192)) $s $rel"
        done
}
# nvme_guest_zones: the "ZONE" lines on stdin as they are after a restart
# (open zones are closed, or empty if nothing was written)
nvme_guest_zones() {
    sed -e 's/^\(ZONE [0-9]*\) \(imp-open\|exp-open\|closed\) 0$/\1 empty 0/' \
        -e 's/^\(ZONE [0-9]*\) \(imp-open\|exp-open\) /\1 closed /'
}
# nvme_zones_match OUT PREFIX IMG N NAME: the guest's zone report (its
# lines "PREFIX ZONE ..." in OUT, N zones) is the image's; both in
# $W/NAME.guest-zones and $W/NAME.host-zones
nvme_zones_match() {
    local out=$1 p=$2 img=$3 n=$4 base=$W/$5
    sed -n "s/^${p}ZONE /ZONE /p" "$out" | nvme_guest_zones > "$base.guest-zones"
    nvme_host_zones "$img" "$n" > "$base.host-zones"
    [ "$(wc -l < "$base.guest-zones")" = "$n" ] &&
        diff "$base.guest-zones" "$base.host-zones" >&2
}
# nvme_image_check NAME N... [after-cut]: qemu-img check of images N
nvme_image_check() {
    local name=$1 rc=0 st=0 i cut=
    shift
    [ "${*: -1}" = after-cut ] && cut=after-cut
    if [ "$NVME_ZNS" = raw ]; then
        echo "$name skip"
        return
    fi
    for i in "$@"; do
        [ "$i" = after-cut ] && continue
        rc=0
        "$BUILD/qemu-img" check "$(nimg "$i")" >&2 || rc=$?
        [ "$rc" = 0 ] || { [ -n "$cut" ] && [ "$rc" = 3 ]; } || st=1
    done
    [ "$st" = 0 ] && echo "$name pass" || echo "$name fail"
}
mtime() { echo "$1 $((SECONDS - $2)) s" >> "$W/nvme-times"; }

if [ -z "${FAULTS_ONLY:-}" ]; then
# 1. One boot: nvme-hostile.sh, then nvme-zns.sh
t0=$SECONDS
nvme_fresh 1
nvme_disk 1
nvme_run nvme-zns nvme-hostile.sh nvme-zns.sh --
o=$W/nvme-zns.out
nvme_ok guest-nvme-zns-ran "$o"
expect guest-nvme-sysfs "$o" "${NVME_SYSFS[@]}"
expect guest-nvme-identify "$o" "${NVME_ID[@]}"
# Zones 0 to 9 after nvme-zns.sh's commands, appends where they belong,
# and the data read back
expect guest-nvme-zone-commands "$o" \
    "ZONE 0 imp-open 131072" "ZONE 1 closed 16384" "ZONE 2 exp-open 0" \
    "ZONE 3 full -" "ZONE 4 full -" "ZONE 5 empty 0" "ZONE 6 imp-open 77824" \
    "ZONE 7 full -" "ZONE 8 closed 65536" "ZONE 9 exp-open 4096" \
    "append 1 of 4096 bytes at 0" "append 2 of 8192 bytes at 4096" \
    "append 3 of 65536 bytes at 12288" "zone 6: the appended data reads back" \
    "zone 0: data reads back" "zone 1: data reads back"
# blkzone's report (sectors, relative write pointers; util-linux 2.42
# prints "wptr N/A" for full zones) is nvme-cli's
sed -n '/^BLKZONE$/,$p' "$o" |
    sed -n 's/.*start: 0x\([0-9a-f]*\),.*wptr \(0x[0-9a-f]*\|N\/A\) .*zcond: *\([0-9]*\)(.*/\1 \2 \3/p' |
    while read -r start wp cond; do
        case $cond in
        1) s=empty ;; 2) s="imp-open" ;; 3) s="exp-open" ;; 4) s=closed ;; 14) s=full ;;
        *) s="cond-$cond" ;;
        esac
        w=-
        [ "$s" = full ] || w=$((16#${wp#0x} * 512))
        echo "ZONE $((16#$start / 8192)) $s $w"
    done > "$W/nvme-zns.blkzone-zones"
sed -n '/^REPORT$/,/^BLKZONE$/s/^ZONE /ZONE /p' "$o" > "$W/nvme-zns.nvme-zones"
[ "$(wc -l < "$W/nvme-zns.nvme-zones")" = 64 ] &&
    diff "$W/nvme-zns.nvme-zones" "$W/nvme-zns.blkzone-zones" >&2 &&
    echo "guest-nvme-blkzone-agrees pass" || echo "guest-nvme-blkzone-agrees fail"
if [ "$NVME_ZNS" = raw ]; then
    echo "guest-nvme-matches-host skip"
elif sed -n '/^REPORT$/,/^BLKZONE$/p' "$o" > "$W/nvme-zns.report" &&
        nvme_zones_match "$W/nvme-zns.report" "" "$(nimg 1)" 64 nvme-zns; then
    echo "guest-nvme-matches-host pass"
else
    echo "guest-nvme-matches-host fail"
fi
# The hostile commands: each status as the NVMe ZNS specification has it
# (command specific statuses are SCT 1; all of them with DNR, 0x4000);
# "A/B": either (a write not at the write pointer that also crosses a
# zone: Zone Invalid Write or Zone Boundary Error).  A table of what was
# seen goes to $W/nvme-hostile-table.
razb=$(sed -n 's/^S limits: .* ozcs=\([0-9a-fx]*\) .*/\1/p' "$o")
[ $((${razb:-0} & 1)) = 1 ] && razb=success || razb=0x41b8
nvme_hostile_expected() {
    cat <<EOT
send open, SLBA not a zone start|0x4002
send close, SLBA not a zone start|0x4002
send finish, SLBA not a zone start|0x4002
send reset, SLBA not a zone start|0x4002
send offline, SLBA not a zone start|0x4002
send open, SLBA past the namespace end|0x4080
send reserved action 0|0x4002
send unknown action 0x77|0x4002
send unknown action 0x77, Select All|0x4002
send close, Select All|success
send open, Select All|success
send finish, Select All|success
send reset, Select All|success
send offline, Select All (no read-only zone)|success
write 4 KiB at the write pointer of an empty zone|success
write 4 KiB past the write pointer|0x41bc
write at the zone start, behind the write pointer|0x41bc
write across two zones, not at a write pointer|0x41bc/0x41b8
write 8 KiB at the write pointer, 4 KiB before the zone capacity|0x41b8
zone append of 8 KiB, 4 KiB before the zone capacity|0x41b8
zone append of the last 4 KiB|success
write to a full zone|0x41b9
zone append to a full zone|0x41b9
write of the last LBA and one past the namespace end|0x4080
write at the namespace end|0x4080
read of the last LBA and one past the namespace end|0x4080
read across a zone boundary|$razb
zone append, ZSLBA not a zone start|0x4002
zone append of ZASL + 4 KiB|0x4002
zone append of ZASL|success
write with FUA at the write pointer|success
explicit open of an empty zone, max_open_zones explicitly open|0x41be
write to an empty zone, max_open_zones explicitly open|0x41be
write to an empty zone, max_active_zones active|0x41bd
explicit open of an empty zone, max_active_zones active|0x41bd
explicit open of a closed zone, max_active_zones active|success
close an empty zone|0x41bf
finish an empty zone|success
open a full zone|0x41bf
close a full zone|0x41bf
finish a full zone|success
offline an empty zone (not read-only)|0x41bf
reset an empty zone|success
receive with NUMD 0 (4 bytes)|0x4002
receive of MDTS bytes|success
receive of 192 bytes, partial report|success
receive of 192 bytes, not partial|success
receive with ZRASF 5 (full zones)|success
receive with ZRA 2 (reserved)|0x4002
receive with ZRA 1 (extended report), no zone descriptor extensions|0x4002
receive with ZRASF 8 (reserved)|0x4002
receive, SLBA past the namespace end|0x4080
identify the ZNS namespace (CNS 5, CSI 2)|success
identify CNS 5, CSI 2, of an invalid namespace (0xfffffff0)|0x400b
identify the controller for an unknown command set (CNS 6, CSI 3)|0x4002
commands supported and effects log of the ZNS command set|success
EOT
}
# decode STATUS: 0x41b8 -> "0x41b8 (SCT 1 SC 0xb8 DNR)"
decode() {
    case $1 in
    0x*) printf '%s (SCT %d SC 0x%02x%s)' "$1" $((($1 >> 8) & 7)) $(($1 & 0xff)) \
             "$([ $(($1 & 0x4000)) = 0 ] || echo ' DNR')" ;;
    *) echo "$1" ;;
    esac
}
bad=0
{
    printf '# NVMe ZNS namespace (%s): hostile commands, the status expected, the status seen\n' "$NVME_ZNS"
    printf '# %s | %s | %s | %s | %s\n' request command expected seen result
    while IFS='|' read -r req exp; do
        line=$(grep -F "H $req | " "$o" | head -n1 || true)
        cmd=$(echo "$line" | awk -F' [|] ' '{ print $2 }')
        seen=$(echo "$line" | awk -F' [|] ' '{ print $3 }')
        res=ok
        [[ "/$exp/" = *"/${seen:-none}/"* ]] || { res=WRONG; bad=$((bad + 1)); }
        printf '%s | %s | %s | %s | %s\n' "$req" "${cmd:-not sent}" "$exp" \
            "$(decode "${seen:-nothing}")" "$res"
    done < <(nvme_hostile_expected)
} > "$W/nvme-hostile-table"
cat "$W/nvme-hostile-table" >&2
[ "$bad" = 0 ] && [ "$(grep -c '^H ' "$o")" = "$(nvme_hostile_expected | wc -l)" ] &&
    echo "guest-nvme-hostile-statuses pass" || echo "guest-nvme-hostile-statuses fail"
expect guest-nvme-hostile-states "$o" \
    "S after the refused sends: empty" \
    "S before Select All: imp-open closed exp-open full" \
    "S after close all: closed closed closed full" \
    "S after open all: exp-open exp-open exp-open full" \
    "S after finish all: full full full full" \
    "S after reset all: empty empty empty empty" \
    "S after offline all: empty empty empty empty" \
    "S zone 21 after its last 4 KiB: full" "S zone 22: imp-open 69632" \
    "S active zones: 12" "S active zones after: 12" "S zones 50, 51: empty full" \
    "S report of MDTS bytes: nr_zones=64 of 64" \
    "S partial report of 192 bytes: nr_zones=2" \
    "S report of 192 bytes: nr_zones=64 of 64" "S full zones: nr_zones=1" \
    "S effects of opcode 0x79: csupp=1" "S effects of opcode 0x7a: csupp=1" \
    "S effects of opcode 0x7d: csupp=1" "the disk works afterwards"
nvme_image_check guest-nvme-image-check 1
mtime nvme-zns $t0

# 2. A power cut (SIGKILL of QEMU) after writes made durable by a flush,
# by FUA (O_SYNC, nvme write/zone-append --force-unit-access, fio
# --sync=1), a finish and a reset: after the restart the same zones and
# data
t0=$SECONDS
if [ "$NVME_ZNS" = raw ]; then
    echo "guest-nvme-power-cut skip"
    echo "guest-nvme-power-cut-image-check skip"
else
    nvme_fresh 1
    nvme_disk 1
    GUEST_KILL_AT="=== SYNCED ===" nvme_run nvme-persist1 nvme-persist-write.sh --
    nvme_run nvme-persist2 nvme-persist-check.sh --
    # Zone 0 holds its two durable writes, and maybe the third
    sed -i 's/^ZONE 0 closed 196608$/ZONE 0 closed 131072/' "$W/nvme-persist2.out"
    grep '^SUM ' "$W/nvme-persist1.out" > "$W/nvme-persist1.sums" || true
    grep '^SUM ' "$W/nvme-persist2.out" > "$W/nvme-persist2.sums" || true
    if [ "$(wc -l < "$W/nvme-persist1.sums")" = 5 ] &&
            diff "$W/nvme-persist1.sums" "$W/nvme-persist2.sums" >&2; then
        expect guest-nvme-power-cut "$W/nvme-persist2.out" \
            "ZONE 0 closed 131072" "ZONE 1 closed 32768" "ZONE 2 closed 32768" \
            "ZONE 3 full -" "ZONE 4 empty 0" "ZONE 5 closed 65536" \
            "writes at the write pointers after the restart: ok"
    else
        echo "guest-nvme-power-cut fail: the data differs after the restart"
    fi
    nvme_image_check guest-nvme-power-cut-image-check 1 after-cut
fi
mtime nvme-power-cut $t0

# 3. Two zoned namespaces and a plain one on one controller: each has
# what was written to it, and nothing else
t0=$SECONDS
nvme_fresh 1
nvme_fresh 2
"$BUILD/qemu-img" create -q -f qcow2 "$W/nvme-plain.qcow2" 256M
nvme_disk 1 2 "plain:$W/nvme-plain.qcow2"
nvme_run nvme-multi nvme-multi.sh -- NVME_NS=3
o=$W/nvme-multi.out
expect guest-nvme-namespaces "$o" \
    "nsid 1: zoned=host-managed nr_zones=64 size=268435456" \
    "nsid 2: zoned=host-managed nr_zones=64 size=268435456" \
    "nsid 3: zoned=none nr_zones=0 size=268435456" \
    "n1 ZONE 0 imp-open 65536" "n1 ZONE 2 empty 0" "n1 ZONE 3 full -" "n1 ZONE 5 empty 0" \
    "n2 ZONE 0 imp-open 131072" "n2 ZONE 2 imp-open 16384" "n2 ZONE 3 empty 0" \
    "n2 ZONE 5 exp-open 0" \
    "nsid 1 zone 0: its data" "nsid 2 zone 0: its data" "nsid 2 zone 2: its data" \
    "nsid 3: its data" "nsid 1 zone 2: non-zero bytes: 0"
# The host reads the same data from the images
fmt=qcow2
[ "$NVME_ZNS" = raw ] && fmt=raw
if { "$BUILD/qemu-io" -f $fmt -c "read -P 0x70 0 64k" -c "read -P 0 64k 64k" "$(nimg 1)" &&
     "$BUILD/qemu-io" -f $fmt -c "read -P 0x71 0 128k" -c "read -P 0x51 8M 16k" "$(nimg 2)" &&
     "$BUILD/qemu-io" -f qcow2 -c "read -P 0x72 0 1M" -c "read -P 0 1M 99M" \
         -c "read -P 0x73 100M 1M" "$W/nvme-plain.qcow2"; } > "$W/nvme-multi.host-data" 2>&1 &&
        ! grep -q 'verification failed' "$W/nvme-multi.host-data"; then
    echo "guest-nvme-namespaces-host-data pass"
else
    cat "$W/nvme-multi.host-data" >&2
    echo "guest-nvme-namespaces-host-data fail"
fi
if [ "$NVME_ZNS" = raw ]; then
    echo "guest-nvme-namespaces-match-host skip"
elif nvme_zones_match "$o" "n1 " "$(nimg 1)" 64 nvme-multi-n1 &&
        nvme_zones_match "$o" "n2 " "$(nimg 2)" 64 nvme-multi-n2; then
    echo "guest-nvme-namespaces-match-host pass"
else
    echo "guest-nvme-namespaces-match-host fail"
fi
nvme_image_check guest-nvme-namespaces-image-check 1 2
mtime nvme-namespaces $t0

# 4. fio's zoned suite on the namespace: a quick subset (fast), the whole
# suite (full; QEMU's own ZNS emulation ran it above as the baseline).
# The tests that need conventional zones skip on every ZNS namespace.
t0=$SECONDS
FIO_NVME_FAST="2 4 6 11 27 33 45"
nvme_fresh 1 1G
nvme_disk 1
echo 'loadmod nvme' > "$W/nvme-prep"
if [ "$mode" = fast ]; then
    fio_run guest-fio-zbd-nvme /dev/nvme0n1 "-o 8 $(printf -- '-t %s ' $FIO_NVME_FAST)" \
        "$W/nvme-prep" "${ndisk[@]}"
    # shellcheck disable=SC2086
    FIO_NO_CONV=1 fio_judge guest-fio-zbd-nvme "$(echo $FIO_NVME_FAST | wc -w)"
else
    fio_run guest-fio-zbd-nvme-full /dev/nvme0n1 "-o 8" "$W/nvme-prep" "${ndisk[@]}"
    excused=
    sed -n '/^--- log of failed test 54 /,/^---/p' "$W/guest-fio-zbd-nvme-full.out" |
        grep -q "zbd_replay_write_order: Assertion" &&
        grep -q '^54 FAIL' "$W/guest-fio-zbd-null_blk-54.results" && excused=54
    FIO_NO_CONV=1 fio_judge guest-fio-zbd-nvme-full 58 $excused
fi
nvme_image_check guest-fio-nvme-image-check 1
mtime nvme-fio $t0

# 5. Filesystems on the namespace (full): btrfs, zonefs, and f2fs with its
# metadata on a plain namespace (nsid 2); a power cut after sync
nvme_fs_cycle() {
    local fs=$1 vars
    vars=("FS=$fs")
    nvme_fresh 1 1G
    if [ "$fs" = f2fs ]; then
        "$BUILD/qemu-img" create -q -f qcow2 "$W/nvme-plain.qcow2" 64M
        nvme_disk 1 "plain:$W/nvme-plain.qcow2"
        vars+=(NVME_NS=2)
    else
        nvme_disk 1
    fi
    GUEST_KILL_AT="=== SYNCED ===" nvme_run "nvme-$fs-write" nvme-fs.sh fs.sh -- "${vars[@]}" PHASE=write
    nvme_run "nvme-$fs-check" nvme-fs.sh fs.sh -- "${vars[@]}" PHASE=check
    # (f2fs too must have written to the zoned namespace)
    grep -q '^remount: [0-9]* files intact$' "$W/nvme-$fs-write.out" &&
        grep -q '^zones written on nsid 1: [1-9][0-9]*$' "$W/nvme-$fs-write.out" &&
        echo "guest-nvme-$fs-remount pass" || echo "guest-nvme-$fs-remount fail"
    if [ "$NVME_ZNS" = raw ]; then
        echo "guest-nvme-$fs-power-cut skip"
    else
        power_cut_judge "guest-nvme-$fs-power-cut" "$W/nvme-$fs-write.out" \
            "$W/nvme-$fs-check.out"
    fi
    nvme_image_check "guest-nvme-$fs-image-check" 1 after-cut
}
if [ "$mode" = full ]; then
    t0=$SECONDS
    nvme_fs_cycle btrfs
    nvme_fs_cycle zonefs
    nvme_fs_cycle f2fs
    mtime nvme-filesystems $t0
fi

fi

# 6. Zones that fail (tests/faults.sh), on a virtio-blk disk and an NVMe
# namespace in one guest: failed at rest with qemu-io (each with data),
# failed while the guest runs with QMP, and the Offline action; every
# request's error; then the states after a restart.  Both devices stop the
# VM on an I/O error (werror/rerror=stop; nvme-ns has no such policy): the
# script ends only if no request to a failed zone went through the policy.
# virtio-blk's statuses from QEMU's trace: ZONE_INVALID_CMD (3), never
# IOERR (1).
if [ "$NVME_ZNS" = qcow2 ]; then
    t0=$SECONDS
    fresh
    nvme_fresh 1
    "$BUILD/qemu-io" -f qcow2 -c "write -P 0x99 36M 64k" \
        -c "zone_fault read-only 36M 4M" -c "zone_fault offline 40M 4M" \
        "$img" > /dev/null
    "$BUILD/qemu-io" -f qcow2 -c "write -P 0x91 4M 64k" \
        -c "zone_fault read-only 4M 4M" -c "zone_fault offline 8M 4M" \
        "$(nimg 1)" > /dev/null
    nvme_disk 1
    fdisk=(-blockdev "file,filename=$img,node-name=f"
           -blockdev "qcow2,file=f,node-name=d"
           -device "virtio-blk-pci,drive=d,werror=stop,rerror=stop")
    for phase in run restart; do
        compose "$W/faults-$phase.sh" PHASE=$phase -- "$T/nvme-prep.sh" \
            "$T/faults-lib.sh" "$T/faults.sh"
        GUEST_QMP=1 "$TOP/harness/guest/run.sh" "$W/faults-$phase.sh" \
            "${fdisk[@]}" "${ndisk[@]}" -D "$W/faults-$phase.trace" \
            -trace virtio_blk_req_complete > "$W/faults-$phase.out" 2>&1 || true
        cat "$W/faults-$phase.out" >&2
    done
    o=$W/faults-run.out
    expect guest-zone-faults-at-rest "$o" \
        "virtio zones 9 10 11: 13 15 1" "nvme zones 1 2 3: read-only offline empty"
    expect guest-zone-faults-virtio "$o" \
        "virtio read zone 9: 0 bytes differ" \
        "virtio write zone 9: Input/output error" \
        "virtio reset zone 9: Input/output error" \
        "virtio read zone 10: Input/output error" \
        "virtio write zone 10: Input/output error" \
        "virtio zone 11 at run time: 13" \
        "virtio read zone 11: 0 bytes differ" \
        "virtio write zone 11: Input/output error"
    expect guest-zone-faults-nvme "$o" \
        "nvme read zone 1: 0 bytes differ" \
        "nvme write zone 1: Zone Is Read Only" \
        "nvme append zone 1: Zone Is Read Only" \
        "nvme reset zone 1: Invalid Zone State Transition" \
        "nvme read zone 2: Zone Is Offline" \
        "nvme write zone 2: Zone Is Offline" \
        "nvme zone 1 after Offline: offline" \
        "nvme offline an empty zone: Invalid Zone State Transition" \
        "nvme zone 3 at run time: read-only" \
        "nvme write zone 3: Input/output error"
    expect guest-zone-faults-nvme-changed "$o" \
        "nvme changed zones before: 0" \
        "nvme event: async event result 00bfef02" \
        "nvme changed zones: 1 3" \
        "nvme changed zones again: 0"
    expect guest-zone-faults-vm-runs "$o" "the disks work afterwards"
    st() { grep -c "virtio_blk_req_complete .* status $1\$" "$W/faults-run.trace"; }
    printf 'virtio statuses: %s ZONE_INVALID_CMD, %s IOERR\n' "$(st 3)" "$(st 1)" >&2
    [ "$(st 3)" -ge 1 ] && [ "$(st 1)" = 0 ] &&
        echo "guest-zone-faults-virtio-statuses pass" ||
        echo "guest-zone-faults-virtio-statuses fail"
    expect guest-zone-faults-restart "$W/faults-restart.out" \
        "virtio zones 9 10 11: 13 15 13" \
        "nvme zones 1 2 3: offline offline read-only"
    image_check guest-zone-faults-image-check
    nvme_image_check guest-zone-faults-nvme-image-check 1
    mtime zone-faults $t0

    # zonefs when the zone under a file fails while it is mounted, for
    # each errors= option, as its documentation has it (zonefs.rst, "IO
    # error handling"): read-only at run time, the file keeps its size and
    # can be read but not written (zone-offline: it is gone), remount-ro
    # makes the file system read-only; offline, the file is gone; at the
    # next mount, the files of both are empty and closed
    t0=$SECONDS
    fresh
    zdisk=(-blockdev "file,filename=$img,node-name=f"
           -blockdev "qcow2,file=f,node-name=d" -device "virtio-blk-pci,drive=d")
    for phase in run mount; do
        compose "$W/zonefs-faults-$phase.sh" PHASE=$phase -- \
            "$T/faults-lib.sh" "$T/zonefs-faults.sh"
        GUEST_QMP=1 "$TOP/harness/guest/run.sh" "$W/zonefs-faults-$phase.sh" \
            "${zdisk[@]}" > "$W/zonefs-faults-$phase.out" 2>&1 || true
        cat "$W/zonefs-faults-$phase.out" >&2
    done
    zf="size 0, read fails, mode ----------, fs rw"
    expect guest-zonefs-faults "$W/zonefs-faults-run.out" \
        "errors=remount-ro, zone read-only: append: Input/output error; size 65536, read 65536 bytes, mode -r--r-----, fs ro" \
        "errors=zone-ro, zone read-only: append: Input/output error; size 65536, read 65536 bytes, mode -r--r-----, fs rw" \
        "errors=zone-offline, zone read-only: append: Input/output error; $zf" \
        "errors=repair, zone read-only: append: Input/output error; size 65536, read 65536 bytes, mode -r--r-----, fs rw" \
        "errors=zone-ro, zone offline: append: Input/output error; $zf"
    expect guest-zonefs-faults-at-mount "$W/zonefs-faults-mount.out" \
        "at mount: seq/0 $zf" "at mount: seq/3 $zf" "at mount: seq/4 $zf" \
        "at mount: seq/5 size 0, read 0 bytes, mode -rw-r-----, fs rw"
    image_check guest-zonefs-faults-image-check
    mtime zonefs-faults $t0
fi

# 7. btrfs and f2fs when the zones they wrote to fail under them (tests/
# fs-faults.sh): read-only, then offline, each on a new disk.  What the
# file systems do is theirs (README); what must hold is ours: QEMU keeps
# running (werror/rerror=stop: a request to a failed zone that went
# through the policy would stop the VM and the script would not end), the
# data of read-only zones reads back, that of offline ones does not, and
# the image stays sound.
t0=$SECONDS
for fs in btrfs f2fs; do
    for fault in read-only offline; do
        fresh
        compose "$W/fs-faults-$fs-$fault.sh" "FS=$fs" "FAULT=$fault" -- \
            "$T/faults-lib.sh" "$T/fs-faults.sh"
        GUEST_MEM=2G GUEST_QMP=1 "$TOP/harness/guest/run.sh" \
            "$W/fs-faults-$fs-$fault.sh" -blockdev "file,filename=$img,node-name=f" \
            -blockdev "qcow2,file=f,node-name=d" \
            -device "virtio-blk-pci,drive=d,werror=stop,rerror=stop" \
            > "$W/fs-faults-$fs-$fault.out" 2>&1 || true
        cat "$W/fs-faults-$fs-$fault.out" >&2
        if [ $fault = read-only ]; then read=same; else read="fails: Input/output error"; fi
        expect "guest-fs-faults-$fs-$fault" "$W/fs-faults-$fs-$fault.out" \
            "$fs, zones $fault: read the file: $read" "=== FS FAULTS END ==="
        image_check "guest-fs-faults-$fs-$fault-image-check"
    done
done
mtime fs-faults $t0
if [ -f "$W/nvme-times" ]; then cat "$W/nvme-times" >&2; fi
