# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers of the guest tests (check.sh, check-new.sh).  Sourced after
# common.sh, with W (the work folder) and T (the guest scripts) set.

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
# zone's pointer is Linux's zone end in the guest (util-linux 2.42 prints
# "wptr N/A") and the capacity on the host.
zones_match() {
    local out=$1 n=$2
    sed -n '/^REPORT$/,$p' "$out" |
        sed -n 's/.*start: 0x\([0-9a-f]*\),.*wptr \(0x[0-9a-f]*\|N\/A\) .*zcond: *\([0-9]*\)(.*/\1 \2 \3/p' |
        while read -r start wp cond; do
            wp=${wp#0x}
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
# excused, every skip is one that no virtio-blk disk can run (with
# FIO_NO_CONV set, nor a disk without conventional zones: ZNS), or (fio
# 3.41) one that the test disks' geometry rules out (at most 8 open and 12
# active zones), or one for null_blk's error injection only
fio_judge() {
    local name=$1 n=$2 t st reason ok=pass
    shift 2
    [ "$(wc -l < "$W/$name.results")" = "$n" ] || ok=fail
    while read -r t st reason; do
        case $st in
        FAIL) [[ " $* " = *" $t "* ]] || ok=fail ;;
        SKIP) case $reason in
              *"is not a SCSI device"|*"is not a regular block device") ;;
              "max_open_zones of "*" is smaller than "*|*" has max_active_zones limit") ;;
              *" is not null_blk"|*" does not support either badblocks or error injection"|\
              "badblocks_once attribute is not set for "*) ;;
              *"does not have enough conventional zones"|*" conventional zones")
                  [ -n "${FIO_NO_CONV:-}" ] || ok=fail ;;
              *) ok=fail ;;
              esac ;;
        esac
    done < "$W/$name.results"
    echo "$name $ok"
}


# blkzone_test PREFIX SCRIPT...: the guest scripts (blkzone.sh last) on a
# fresh disk; Linux's sysfs limits, blkzone's run, the host's zone report
# against the guest's, the image clean; output in $W/PREFIX-blkzone.out
blkzone_test() {
    local p=$1 out=$W/$1-blkzone.out
    shift
    fresh
    compose "$W/$p-blkzone.sh" -- "$@"
    if "$TOP/harness/guest/run.sh" "$W/$p-blkzone.sh" \
            "${disk[@]}" > "$out" 2>&1; then
        cat "$out" >&2
        grep -q '^zoned=host-managed chunk_sectors=8192 nr_zones=64$' "$out" &&
        grep -q '^max_open_zones=8 max_active_zones=12$' "$out" &&
        grep -q '^zone_append_max_bytes=65536$' "$out" &&
            echo "$p-sysfs-limits pass" || echo "$p-sysfs-limits fail"
        echo "$p-blkzone pass"
        if zones_match "$out" 5; then
            echo "$p-blkzone-matches-host pass"
        else
            echo "$p-blkzone-matches-host fail"
        fi
    else
        cat "$out" >&2
        echo "$p-blkzone fail"
    fi
    image_check "$p-image-check"
}
# power_cut_judge NAME WRITE-OUT CHECK-OUT: the files' checksums that
# fs.sh printed before the power cut are those it printed after it
power_cut_judge() {
    grep '^SUM ' "$2" > "${2%.out}.sums" || true
    grep '^SUM ' "$3" > "${3%.out}.sums" || true
    [ -s "${2%.out}.sums" ] && grep -q '^=== GUEST TEST END rc=0 ===$' "$3" &&
        diff "${2%.out}.sums" "${3%.out}.sums" >&2 &&
        echo "$1 pass" || echo "$1 fail"
}
# cut_run NAME QEMU-ARGS...: $W/NAME-write.sh until it prints "===
# SYNCED ===" and the power is cut, then $W/NAME-check.sh; their output in
# $W/NAME-write.out and $W/NAME-check.out
cut_run() {
    local name=$1
    shift
    GUEST_KILL_AT="=== SYNCED ===" "$TOP/harness/guest/run.sh" \
        "$W/$name-write.sh" "$@" > "$W/$name-write.out" 2>&1 || true
    "$TOP/harness/guest/run.sh" "$W/$name-check.sh" "$@" \
        > "$W/$name-check.out" 2>&1 || true
    cat "$W/$name-write.out" "$W/$name-check.out" >&2
}
# fio_compare NAME BASE NTESTS: the suite's run NAME next to its
# baseline BASE (another device, same geometry, same guest): all NTESTS
# ran, every test that passes on BASE passes on NAME, every failure of
# NAME is one of BASE's, and every skip is one fio_judge explains
fio_compare() {
    local name=$1 base=$2 t st r ok=pass shared
    shared=$(awk '$2 == "FAIL" { print $1 }' "$W/$base.results" | tr '\n' ' ')
    while read -r t st r; do
        [ "$st" = PASS ] || continue
        grep -q "^$t PASS" "$W/$name.results" || ok=fail
    done < "$W/$base.results"
    # shellcheck disable=SC2086
    [ "$(fio_judge "$name" "$3" $shared)" = "$name pass" ] || ok=fail
    echo "$name-vs-baseline $ok"
}
