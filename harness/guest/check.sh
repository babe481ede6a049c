#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Guest tests: a Linux guest uses a zoned qcow2 disk over virtio-blk.
# Prints "<name> pass|fail" a test.
#
# usage: check.sh [fast|full]
#   fast (make check): sysfs limits, blkzone against the host's report,
#        zone resource errors, a power cut, no merging across zones,
#        requests the disk must refuse, fio from both vCPUs on a disk
#        whose two queues two iothreads serve, a subset of fio's zoned
#        suite, f2fs across a power cut
#   full (make check-guest): that, fio's whole suite on our disk, on
#        QEMU's NVMe ZNS and on null_blk (the baselines), btrfs and zonefs
# The fio suite's summaries go to build/guest-work/fio-summary.

. "$(dirname "$0")/../common.sh"

mode=${1:-fast}
case $mode in
fast|full) ;;
*) die "usage: check.sh [fast|full]" ;;
esac
W=$BUILD/guest-work
T=$TOP/harness/guest/tests
rm -rf "$W" && mkdir -p "$W"
img=$W/zoned.qcow2
disk=(-blockdev "file,filename=$img,node-name=f"
      -blockdev "qcow2,file=f,node-name=d"
      -device "virtio-blk-pci,drive=d")
# The geometry of every test disk: 4 MiB zones of 3 MiB capacity, 8
# conventional zones, at most 8 open and 12 active zones
GEOMETRY=zone.mode=host-managed,zone.size=4M,zone.capacity=3M,zone.conventional_zones=8,zone.max_open_zones=8,zone.max_active_zones=12
fresh() {  # fresh [SIZE]: a new zoned image
    "$BUILD/qemu-img" create -q -f qcow2 -o "$GEOMETRY" "$img" "${1:-256M}"
}
# image_check NAME [after-cut]: qemu-img check finds the image clean; after
# a power cut it may also find leaked clusters (exit code 3), never
# corruption
image_check() {
    local rc=0
    "$BUILD/qemu-img" check "$img" >&2 || rc=$?
    if [ "$rc" = 0 ] || { [ "${2:-}" = after-cut ] && [ "$rc" = 3 ]; }; then
        echo "$1 pass"
    else
        echo "$1 fail"
    fi
}
expect() {  # expect NAME FILE LINE...: every LINE is in FILE
    local name=$1 file=$2 l
    shift 2
    for l in "$@"; do
        grep -qxF -- "$l" "$file" || { echo "$name fail"; return; }
    done
    echo "$name pass"
}
# zones_match OUT N: the zone report the guest printed after a line
# "REPORT" in OUT (blkzone report of N zones from zone 8) is the host's
# report of the image (qemu-io).  Guest: "start: 0x..., ..., wptr 0x<rel>
# ..., zcond: N(..)" in sectors; host: absolute sectors.  After the
# restart, open zones are closed (or empty if nothing was written); a full
# zone's pointer is Linux's zone end in the guest and the capacity on the
# host.
zones_match() {
    local out=$1 n=$2
    sed -n '/^REPORT$/,$p' "$out" |
        sed -n 's/.*start: 0x\([0-9a-f]*\),.*wptr 0x\([0-9a-f]*\) .*zcond: *\([0-9]*\)(.*/\1 \2 \3/p' |
        while read -r start wp cond; do
            case $cond in
            2|3|4) [ $((16#$wp)) -gt 0 ] && cond=4 || cond=1 ;;
            esac
            [ "$cond" = 14 ] && wp=FULL
            printf '%d %s %s\n' $((16#$start)) "$wp" "$cond"
        done > "${out%.out}.guest-zones"
    "$BUILD/qemu-io" -f qcow2 -c "zrp 32M $n" "$img" |
        sed -n 's/^start: 0x\([0-9a-f]*\),.*wptr 0x\([0-9a-f]*\), zcond:\([0-9]*\),.*/\1 \2 \3/p' |
        while read -r start wp cond; do
            rel=$(printf '%06x' $((16#$wp - 16#$start)))
            [ "$cond" = 14 ] && rel=FULL
            printf '%d %s %s\n' $((16#$start)) "$rel" "$cond"
        done > "${out%.out}.host-zones"
    [ -s "${out%.out}.guest-zones" ] &&
        diff "${out%.out}.guest-zones" "${out%.out}.host-zones" >&2
}
# qemu_died OUT: if QEMU died in the run whose run.sh output is OUT, how:
# its exit code, or the signal that bash saw kill it after the guest had
# finished, and its last words if they are there
qemu_died() {
    local code sig why last
    code=$(sed -n 's/.*the guest did not finish its test (QEMU exit code \([0-9]*\)).*/\1/p' "$1")
    sig=$(sed -n 's/.*run\.sh: line [0-9]*: *[0-9]* \(.*[^ ]\) *timeout --foreground.*/\1/p' "$1" | head -n1)
    if [ "$code" = 124 ] || [ "$code" = 137 ]; then
        why="the guest did not finish in time (hung?)"
    elif [ -n "$code" ] && [ "$code" -gt 128 ]; then
        why="QEMU crashed with signal $((code - 128)) (SIG$(kill -l $((code - 128))))"
    elif [ -n "$code" ]; then
        why="QEMU exited with code $code"
    elif [ -n "$sig" ]; then
        why="QEMU crashed ($sig) after the guest had finished"
    else
        return 0
    fi
    last=$(grep -av 'did not finish its test' "$1" |
           grep -a -m1 'qemu-system-x86_64: \|Assertion\|assertion\|ERROR:\|corrupted\|double free\|free(): ' || true)
    echo "$why${last:+: $last}"
}

# blkzone in the guest; afterwards the host's zone report must agree
fresh
if "$TOP/harness/guest/run.sh" "$T/blkzone.sh" \
        "${disk[@]}" > "$W/blkzone.out" 2>&1; then
    cat "$W/blkzone.out" >&2
    grep -q '^zoned=host-managed chunk_sectors=8192 nr_zones=64$' "$W/blkzone.out" &&
    grep -q '^max_open_zones=8 max_active_zones=12$' "$W/blkzone.out" &&
    grep -q '^zone_append_max_bytes=65536$' "$W/blkzone.out" &&
        echo "guest-sysfs-limits pass" || echo "guest-sysfs-limits fail"
    echo "guest-blkzone pass"
    if zones_match "$W/blkzone.out" 5; then
        echo "guest-blkzone-matches-host pass"
    else
        echo "guest-blkzone-matches-host fail"
    fi
else
    cat "$W/blkzone.out" >&2
    echo "guest-blkzone fail"
fi
image_check guest-image-check

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

# Requests the disk must refuse: each fails in the guest, none stops the VM.
# Linux stops some itself (reset and finish of a conventional zone, writes
# it knows are off the write pointer); those that reach QEMU complete with
# the zone statuses of the virtio spec (trace of virtio_blk_req_complete:
# 3 ZONE_INVALID_CMD for open and close of a conventional zone, 4
# ZONE_UNALIGNED_WP for the first write to an empty zone, ahead of its write
# pointer), never with a plain IOERR (1)
fresh
"$TOP/harness/guest/run.sh" "$T/hostile.sh" "${disk[@]}" \
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
    "zone 8: full" "read past the capacity: 0 non-zero bytes" \
    "the disk works afterwards"
st() { grep -c "virtio_blk_req_complete .* status $1\$" "$W/hostile.trace"; }
printf 'virtio statuses: %s ZONE_INVALID_CMD, %s ZONE_UNALIGNED_WP, %s IOERR\n' \
    "$(st 3)" "$(st 4)" "$(st 1)" >&2
[ "$(st 3)" -ge 2 ] && [ "$(st 4)" -ge 1 ] && [ "$(st 1)" = 0 ] &&
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

# fio's zoned suite (t/zbd/test-zbd-support of Debian's fio 3.33)
# fio_run NAME DEV OPTS PREP [QEMU ARGS...]: the suite in a guest against
# DEV, with test-zbd-support's OPTS, after the guest script PREP (a file,
# or -); "N STATUS REASON" a test in $W/NAME.results, a summary line in
# $W/fio-summary
fio_run() {
    local name=$1 dev=$2 opts=$3 prep=$4 t0=$SECONDS
    shift 4
    [ "$prep" = - ] && prep=/dev/null
    compose "$W/$name.sh" "ZBD_DEV=$dev" "ZBD_OPTS='$opts'" -- \
        "$prep" "$T/fio-zbd.sh"
    GUEST_TIMEOUT=1800 "$TOP/harness/guest/run.sh" "$W/$name.sh" "$@" 2>&1 |
        sed 's/\x1b\[[0-9;]*m//g' > "$W/$name.out" || true
    cat "$W/$name.out" >&2
    sed -n 's/^Running test \([0-9]*\) \.\.\. \(PASS\|SKIP\|FAIL\) *\(.*\)/\1 \2 \3/p' \
        "$W/$name.out" > "$W/$name.results"
    printf '%s: %d passed, %d skipped, %d failed (%s) in %d s\n' "$name" \
        "$(grep -c ' PASS' "$W/$name.results")" \
        "$(grep -c ' SKIP' "$W/$name.results")" \
        "$(grep -c ' FAIL' "$W/$name.results")" \
        "$(awk '$2 != "PASS" { printf "%s%s %s", s, $1, $2; s = ", " }' \
               "$W/$name.results")" \
        $((SECONDS - t0)) | tee -a "$W/fio-summary" >&2
}
# fio_judge NAME NTESTS [EXCUSED...]: all NTESTS ran; every failure is
# excused, every skip is one that no virtio-blk disk can run
fio_judge() {
    local name=$1 n=$2 t st reason ok=pass
    shift 2
    [ "$(wc -l < "$W/$name.results")" = "$n" ] || ok=fail
    while read -r t st reason; do
        case $st in
        FAIL) [[ " $* " = *" $t "* ]] || ok=fail ;;
        SKIP) case $reason in
              *"is not a SCSI device"|*"is not a regular block device") ;;
              *) ok=fail ;;
              esac ;;
        esac
    done < "$W/$name.results"
    echo "$name $ok"
}

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
    GUEST_KILL_AT="=== SYNCED ===" "$TOP/harness/guest/run.sh" \
        "$W/$fs-write.sh" "${disk[@]}" > "$W/$fs-write.out" 2>&1 || true
    "$TOP/harness/guest/run.sh" "$W/$fs-check.sh" "${disk[@]}" \
        > "$W/$fs-check.out" 2>&1 || true
    cat "$W/$fs-write.out" "$W/$fs-check.out" >&2
    grep -q '^remount: [0-9]* files intact$' "$W/$fs-write.out" &&
        echo "guest-$fs-remount pass" || echo "guest-$fs-remount fail"
    grep '^SUM ' "$W/$fs-write.out" > "$W/$fs-write.sums" || true
    grep '^SUM ' "$W/$fs-check.out" > "$W/$fs-check.sums" || true
    [ -s "$W/$fs-write.sums" ] && grep -q '^=== GUEST TEST END rc=0 ===$' "$W/$fs-check.out" &&
        diff "$W/$fs-write.sums" "$W/$fs-check.sums" >&2 &&
        echo "guest-$fs-power-cut pass" || echo "guest-$fs-power-cut fail"
    image_check "guest-$fs-image-check" after-cut
}
fs_cycle f2fs
if [ "$mode" = full ]; then
    fs_cycle btrfs
    fs_cycle zonefs
fi
