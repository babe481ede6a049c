#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# make bench: zoned qcow2 against plain qcow2 on this machine, side by side.
#
# 1. qemu-img bench sequential writes (4 KiB and 64 KiB, queue depth 1 and
#    32, -t none -i io_uring), a zoned and a plain image of the same cluster
#    size, a fresh image for every run, the two kinds interleaved; prints
#    the median throughput of each and the ratio zoned/plain.
# 2. Flush points: the same 4 KiB writes with a flush every 1, 8 or 64
#    writes, at queue depth 1 and 32.
# 2b. The floor, without QEMU: what one more 512-byte write per
#    fdatasync costs on this disk, on a raw O_DIRECT file, written after
#    the data or alongside it.
# 3. Host flushes per guest flush: how many flushes of the image file
#    (fdatasync, counted by strace) the qcow2 layer issues for one flush of
#    the image, in qemu-io runs of "write; flush", of FUA writes and of
#    writethrough writes on each kind.
#    An open after a crash with 120 MiB to verify, against a clean one.
# 4. Zone append at queue depth 32 against plain writes (a unit test's
#    -m perf mode, through the block layer).
# 5. An image of 1,048,576 zones: open time and memory against a plain
#    image of the same size, and a report of all zones.
# 6. fio in the Linux test guest (TCG): sequential writes, zonemode=zbd,
#    on our NVMe namespace against QEMU's own NVMe ZNS emulation on a
#    plain qcow2 image, and on zoned against plain qcow2 over virtio-blk;
#    the median of each and the ratios (BENCH_GUEST=0 skips it).
# BENCH_SECTIONS picks sections by name (default all of them: "seq flush
# floor hostflush crashopen append zones guest"); BENCH_RUNS (default 5) the runs of each
# measure of 1, 2 and 6.
# Figures, not pass/fail: a slow machine must not fail a test.

. "$(dirname "$0")/common.sh"

B=$BUILD/bench
rm -rf "$B" && mkdir -p "$B"
IMG=$BUILD/qemu-img
IO=$BUILD/qemu-io
RUNS=${BENCH_RUNS:-5}
SIZE=4G
ZONED_OPTS="zone.mode=host-managed,zone.size=64M"

[ -x "$IMG" ] || die "build first (make)"

SECTIONS=" ${BENCH_SECTIONS:-seq flush floor hostflush crashopen append zones guest} "
SECTIONS=${SECTIONS//,/ }
# want SECTION: whether SECTION is to run
want() { [[ $SECTIONS == *" $1 "* ]]; }

# wait_bin FILE: QEMU may be rebuilt meanwhile: wait until FILE is there
# (ten minutes at most)
wait_bin() {
    local t0=$SECONDS
    while [ ! -x "$1" ] && [ $((SECONDS - t0)) -lt 600 ]; do sleep 5; done
}

# fresh KIND IMG: a new image of KIND (plain or zoned) at IMG
fresh() {
    wait_bin "$IMG"
    rm -f "$2"
    if [ "$1" = zoned ]; then
        "$IMG" create -q -f qcow2 -o "$ZONED_OPTS" "$2" $SIZE
    else
        "$IMG" create -q -f qcow2 "$2" $SIZE
    fi
}

# bench KIND BS QD COUNT [FLUSH]: MB/s of one run on a fresh image, with a
# flush every FLUSH writes if given.  Below queue depth 1, the queue is
# drained before each flush (the flush covers every write before it, as a
# guest's fsync does); at a larger depth it is not (--no-drain: writes go
# on while the flush runs, as a guest with many queues does).
bench() {
    local kind=$1 bs=$2 qd=$3 count=$4 img=$B/bench.qcow2 out t rc=0
    local -a flush=()
    [ -z "${5:-}" ] || flush=("--flush-interval=$5")
    [ -z "${5:-}" ] || [ "$qd" = 1 ] || flush+=(--no-drain)
    fresh "$kind" "$img"
    out=$("$IMG" bench -w -t none -i io_uring -f qcow2 \
        -c "$count" -d "$qd" -s "$bs" "${flush[@]}" "$img" 2>&1) || rc=$?
    t=$(sed -n 's/^Run completed in \([0-9.]*\) seconds\./\1/p' <<< "$out")
    [ -n "$t" ] && [ "$rc" = 0 ] ||
        die "qemu-img bench failed (exit $rc) on the $kind image: $out"
    awk -v c="$count" -v bs="$bs" -v t="$t" \
        'BEGIN { printf "%.1f\n", c * bs / t / 1048576 }'
}

# section TITLE: the title of a section, a blank line before all but the
# first
section() {
    [ -z "${SECTION_SEEN:-}" ] || echo
    SECTION_SEEN=1
    echo "== $*"
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# pair BS QD COUNT [FLUSH]: "plain_MB/s zoned_MB/s ratio", the medians of
# RUNS runs of each kind, interleaved, the kind that goes first changing
# every run.  Both kinds use one image path, so that every run starts in
# the same state, right after the previous run's image was deleted (on a
# file system mounted with discard, a run shares the disk with the
# discards of the image it replaces).
pair() {
    local p=() z=() i pm zm
    for ((i = 0; i < RUNS; i++)); do
        if ((i % 2)); then
            z+=("$(bench zoned "$@")")
            p+=("$(bench plain "$@")")
        else
            p+=("$(bench plain "$@")")
            z+=("$(bench zoned "$@")")
        fi
    done
    pm=$(printf '%s\n' "${p[@]}" | median)
    zm=$(printf '%s\n' "${z[@]}" | median)
    printf '%12s %12s %8s\n' "$pm" "$zm" \
        "$(awk -v a="$zm" -v b="$pm" 'BEGIN { printf "%.3f", a / b }')"
}

if want seq; then
    section "sequential writes: zoned vs plain qcow2 (median of $RUNS runs each)"
    printf '%-8s %-4s %12s %12s %8s\n' size qd plain_MB/s zoned_MB/s ratio
    for point in "4096 1 40000" "4096 32 100000" "65536 1 12000" "65536 32 24000"; do
        set -- $point
        printf '%-8s %-4s ' "$(( $1 / 1024 ))K" "$2"
        pair "$1" "$2" "$3"
    done
    rm -f "$B"/*.qcow2
fi

# 2. Flush points: 4 KiB sequential writes (-t none -i io_uring) with a
# flush every FLUSH writes (see bench() for the draining).  COUNT is
# chosen for 1 to 3 s a run here (a flush is 100 to 300 us).  The last
# flush is not in the time (qemu-img bench stops the clock when the last
# write completes).
if want flush; then
    section "flush points: 4 KiB sequential writes, a flush every FLUSH writes," \
        "zoned vs plain qcow2 (median of $RUNS runs each)"
    ft0=$SECONDS
    printf '%-4s %-6s %12s %12s %8s\n' qd flush plain_MB/s zoned_MB/s ratio
    # QD FLUSH COUNT
    for point in "1 1 2400" "1 8 6000" "1 64 12000" \
                 "32 1 4000" "32 8 12000" "32 64 30000"; do
        set -- $point
        printf '%-4s %-6s ' "$1" "$2"
        pair 4096 "$1" "$3" "$2"
    done
    echo "($((SECONDS - ft0)) s)"
    rm -f "$B"/*.qcow2
fi

# 2b. The floor, without QEMU: what one more sector per flush costs
# on this disk (harness/bench-floor.c), written after the data or in
# flight with it.  A design that stores each zone's write pointer durably
# at every flush writes at least one sector that a plain image does not,
# so these ratios bound from above what such a design reaches at a flush
# every write.
if want floor; then
    section "the floor: one more 512-byte write per fdatasync, on a raw" \
        "O_DIRECT file (no QEMU; median of $RUNS runs each)"
    gcc -O2 -Wall -o "$BUILD/bench-floor" "$TOP/harness/bench-floor.c" \
        -luring || die "cannot build harness/bench-floor.c"
    "$BUILD/bench-floor" "$B" 2400 "$RUNS"
fi

# 3. Host flushes per guest flush: qemu-io (-t none -i threads: a flush of
# the file is an fdatasync of a worker thread, which strace -f counts;
# with io_uring it would not be a system call) runs FN times "write 4 KiB
# at the write pointer; flush" on a fresh image, from offset 0 up (zone 0,
# sequential write required, on the zoned image; the same offsets on the
# plain one), and once with no command: the difference of the fdatasync
# and fsync calls of the two, over FN.  It includes what a first write
# allocates (a few flushes) and the flush of the refcounts before the L2
# entry of each new 64 KiB cluster (every 16 writes: 1/16 per guest
# flush).  BENCH_FLUSH_N sets FN (default 1024).
FN=${BENCH_FLUSH_N:-1024}
# hostflushes KIND N [MODE]: the fdatasync and fsync calls of a qemu-io run
# of N "write; flush" (MODE flush, the default), N FUA writes (fua), or N
# writes with cache=writethrough (writethrough) on a fresh image of KIND
hostflushes() {
    local kind=$1 n=$2 mode=${3:-flush} img=$B/$1.qcow2 i cache=none
    local write="write -q" flush="flush\n"
    wait_bin "$IO"
    fresh "$kind" "$img"
    case $mode in
    fua) write="write -q -f" flush="" ;;
    writethrough) cache=writethrough flush="" ;;
    esac
    for ((i = 0; i < n; i++)); do
        printf "$write %d 4k\n$flush" $((i * 4096))
    done > "$B/flush.io"
    strace -qq -f -c -o "$B/flush-$kind-$n.strace" -e trace=fdatasync,fsync \
        "$IO" -f qcow2 -t "$cache" -i threads "$img" < "$B/flush.io" \
        > /dev/null || die "qemu-io (under strace) failed on the $kind image"
    awk '$NF == "fdatasync" || $NF == "fsync" { s += $4 } END { print s + 0 }' \
        "$B/flush-$kind-$n.strace"
}
if want hostflush; then
    section "host flushes (fdatasync) per guest flush: qemu-io -i threads," \
        "$FN x (4 KiB write at the write pointer; flush), FUA writes," \
        "writethrough writes"
    ht0=$SECONDS
    if ! command -v strace >/dev/null 2>&1 ||
       ! strace -qq -o /dev/null true 2>/dev/null; then
        echo "skipped: no strace here (or it may not trace)"
    else
        printf '%-6s %-13s %8s %12s %10s %10s\n' kind requests guest \
            host_flushes at_open per_guest
        for mode in flush fua writethrough; do
            for kind in plain zoned; do
                h0=$(hostflushes "$kind" 0 "$mode")
                h=$(hostflushes "$kind" "$FN" "$mode")
                printf '%-6s %-13s %8s %12s %10s %10s\n' "$kind" "$mode" \
                    "$FN" "$h" "$h0" "$(awk -v h="$h" -v h0="$h0" -v n="$FN" \
                       'BEGIN { printf "%.3f", (h - h0) / n }')"
            done
        done
        echo "(at_open: the same run with no command, subtracted; $((SECONDS - ht0)) s)"
    fi
    rm -f "$B"/*.qcow2
fi

if want append; then
    section "zone append at queue depth 32 (4 KiB) against writes to a plain image"
    ninja -C "$BUILD/obj" tests/unit/test-qcow2-zoned-io >/dev/null
    for ((i = 0; i < 3; i++)); do
        "$BUILD/obj/tests/unit/test-qcow2-zoned-io" -m perf \
            -p /qcow2-zoned-io/perf-append | grep '^zone append'
    done
fi

# Open after a crash: qemu-io writes 120 MiB to one zone, flushes, and
# kills itself (sigraise 9): the entry the flush wrote still needs
# verification.  The open that follows reads those 120 MiB back and
# checks their CRC; a clean close leaves nothing to check.
if want crashopen; then
    section "open after a crash: 120 MiB to verify, against an open after a clean close"
    img=$B/crash.qcow2
    "$IMG" create -q -f qcow2 -o zone.mode=host-managed,zone.size=256M "$img" 1G
    ("$IO" -f qcow2 -c "write -q 0 120M" -c flush -c "sigraise 9" "$img" \
        >/dev/null 2>&1 || true) 2>/dev/null
    # -t none: the data comes from the disk, as after a power cut
    t0=$(date +%s.%N)
    crashed=$("$IO" -f qcow2 -t none -r -c "zrp 0 1" "$img" 2>&1)
    t1=$(date +%s.%N)
    "$IO" -f qcow2 -c "zrp 0 1" "$img" > /dev/null 2>&1
    t2=$(date +%s.%N)
    "$IO" -f qcow2 -t none -r -c "zrp 0 1" "$img" > /dev/null 2>&1
    t3=$(date +%s.%N)
    echo "$crashed" | sed 's/^/  /'
    awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN {
        printf "open after the crash %.3f s, after a clean close %.3f s\n",
               b - a, d - c }'
    rm -f "$img"
fi

if want zones; then
    section "1,048,576 zones (64 GiB of 64 KiB zones) against a plain 64 GiB image"
    "$IMG" create -q -f qcow2 -o zone.mode=host-managed,zone.size=64K \
        "$B/many.qcow2" 64G
    "$IMG" create -q -f qcow2 "$B/plain.qcow2" 64G
    # run IMAGE CMD: "seconds max_rss_kib" of a qemu-io run
    run() {
        /usr/bin/time -f '%e %M' "$IO" -f qcow2 -c "$2" "$1" 2>&1 >/dev/null |
            tail -n 1
    }
    read -r zt zm < <(run "$B/many.qcow2" "zrp 0 1")
    read -r pt pm < <(run "$B/plain.qcow2" "read 0 512")
    read -r rt _ < <(run "$B/many.qcow2" "zrp 0 1048576")
    printf 'open + one report:   zoned %ss  plain %ss\n' "$zt" "$pt"
    printf 'memory (max RSS):    zoned %s KiB  plain %s KiB  -> %s bytes per zone\n' \
        "$zm" "$pm" "$(( (zm - pm) * 1024 / 1048576 ))"
    printf 'report of all zones: %ss\n' "$rt"
    rm -f "$B"/*.qcow2
fi

# 6. fio in the guest.  Four disks, each on a fresh 4 GiB image, the file
# node as qemu-img bench has it above (-t none -i io_uring):
#   nvme-zns     QEMU's own ZNS emulation (hw/nvme, zones in memory) on a
#                plain qcow2 image: the same format cost, without our zones
#   nvme-zoned   our zoned image behind nvme-ns: the zones are the image's
#   virtio-plain a plain qcow2 image over virtio-blk
#   virtio-zoned our zoned image over virtio-blk
#   nvme-nocache our zoned image behind nvme-ns with write-cache=off:
#                every write durable when it completes (pair "cache",
#                against nvme-zoned: what that costs)
# The same geometry on the zoned ones: 64 MiB zones of 64 MiB capacity, no
# conventional zones, no open or active limits, appends up to 512 KiB
# (MDTS of QEMU's NVMe controller, what ZNS's ZASL 0 means).
# A run boots the guest once with the two disks of a pair (each NVMe
# namespace on a controller of its own), fresh images, and runs
# tests/bench-fio.sh: after a warm-up on the last zone of each disk, the
# disks take turns (A B, B A, ...), GROUNDS measured fio runs each, every
# one on zones no run wrote before: 4 jobs of 128 KiB psync writes
# (O_DIRECT), job i from the start of zone 2 * i to the end of zone
# 2 * i + 1 (of the run's eight zones).  Taking turns in one guest, seconds
# apart, the two disks see the same load of the machine.  On the zoned
# disks fio runs with zonemode=zbd; on virtio-plain it cannot (the disk has
# no zones): the same jobs write sequentially (rw=write, offset_increment
# two zones, size two zones), so every job writes the same bytes at the
# same places in the same order as on virtio-zoned; what differs is the
# zone work in QEMU (and fio's own zbd bookkeeping, small against TCG's
# cost).  The median of RUNS * GROUNDS runs a disk, their ratio, and the
# median of the ratios of the runs that followed each other ("paired").
# BENCH_GUEST_ROUNDS (GROUNDS, default 2), BENCH_FIO_ENGINE (psync) and
# BENCH_FIO_QD (1) change the runs.
if [ "${BENCH_GUEST:-1}" = 0 ] || ! want guest; then
    exit 0
fi
GQ=$BUILD/qemu-system-x86_64
GZONE=$((64 * 1048576))
GZONED_OPTS=zone.mode=host-managed,zone.size=64M,zone.max_append_bytes=512K
GJOBS=4 GZPJ=2 GBS=128k GROUNDS=${BENCH_GUEST_ROUNDS:-2}
# Eight zones a round, the last zone for the warm-up: 7 rounds at most
((GROUNDS >= 1 && GROUNDS <= 7)) || die "BENCH_GUEST_ROUNDS: 1 to 7"
GENGINE=${BENCH_FIO_ENGINE:-psync} GQD=${BENCH_FIO_QD:-1}
section "fio in the Linux guest (TCG, 2 vCPUs): sequential writes, $GBS $GENGINE" \
    "QD $GQD, $GJOBS jobs on $GZPJ zones each (median of $RUNS x $GROUNDS runs each)"
if ! "$TOP/harness/guest/build.sh" > "$B/guest-build.log" 2>&1; then
    echo "skipped: the guest cannot be built here (see $B/guest-build.log)"
    exit 0
fi
# guest_disk KIND N: the QEMU arguments of disk KIND (its serial) on a
# fresh image, node names and controller ids numbered N
guest_disk() {
    local kind=$1 n=$2 img=$B/g-$1.qcow2
    rm -f "$img"
    case $kind in
    *-zoned|nvme-nocache) "$IMG" create -q -f qcow2 -o "$GZONED_OPTS" "$img" $SIZE ;;
    *) "$IMG" create -q -f qcow2 "$img" $SIZE ;;
    esac
    printf '%s\n' -blockdev "file,filename=$img,node-name=f$n,cache.direct=on,aio=io_uring" \
        -blockdev "qcow2,file=f$n,node-name=d$n"
    case $kind in
    nvme-zns)   printf '%s\n' -device "nvme,id=nvme$n,serial=$kind" \
                    -device "nvme-ns,drive=d$n,bus=nvme$n,nsid=1,zoned=on,zoned.zone_size=64M" ;;
    nvme-zoned) printf '%s\n' -device "nvme,id=nvme$n,serial=$kind" \
                    -device "nvme-ns,drive=d$n,bus=nvme$n,nsid=1" ;;
    nvme-nocache) printf '%s\n' -device "nvme,id=nvme$n,serial=$kind" \
                    -device "nvme-ns,drive=d$n,bus=nvme$n,nsid=1,write-cache=off" ;;
    virtio-*)   printf '%s\n' -device "virtio-blk-pci,drive=d$n,serial=$kind" ;;
    esac
}
# guest_pair A B RUN: one run (a boot) of the pair; its lines "BW KIND ..."
# in $B/g-A-RUN.out
guest_pair() {
    local a=$1 b=$2 out=$B/g-$1-$3.out try t0
    local -a args
    compose "$B/g-$a.sh" "KINDS='$a $b'" "ZONE=$GZONE" "JOBS=$GJOBS" \
        "ZPJ=$GZPJ" "BS=$GBS" "ENGINE=$GENGINE" "IODEPTH=$GQD" \
        "ROUNDS=$GROUNDS" "$(case $a in nvme*) echo 'loadmod nvme' ;; esac)" -- \
        "$TOP/harness/guest/tests/bench-fio.sh"
    # QEMU may be rebuilt meanwhile: wait until it is there, then run
    # again on fresh images (up to three tries)
    for try in 1 2 3; do
        mapfile -t args < <(guest_disk "$a" 0; guest_disk "$b" 1)
        t0=$SECONDS
        while [ ! -x "$GQ" ] && [ $((SECONDS - t0)) -lt 600 ]; do sleep 5; done
        if GUEST_TIMEOUT=600 "$TOP/harness/guest/run.sh" "$B/g-$a.sh" \
               "${args[@]}" > "$out" 2>&1 &&
           [ "$(grep -c '^BW ' "$out")" = $((2 * GROUNDS)) ]; then
            return
        fi
        warn "the guest's fio runs on $a and $b failed (try $try; see $out)"
        sleep 5
    done
    cat "$out" >&2
    die "the guest's fio runs on $a and $b failed (see $out)"
}
gt0=$SECONDS
printf '%-8s %12s %12s %8s %8s\n' pair base_MB/s ours_MB/s ratio paired
for pair in "nvme nvme-zns nvme-zoned" "virtio virtio-plain virtio-zoned" \
            "cache nvme-zoned nvme-nocache"; do
    set -- $pair
    label=$1
    shift
    for ((i = 0; i < RUNS; i++)); do
        guest_pair "$1" "$2" "$i"
    done
    # mbs KIND: MB/s of each run of KIND
    mbs() {
        cat "$B/g-$1"-*.out |
            awk -v k="$2" '$1 == "BW" && $2 == k { printf "%.1f\n", $4 / 1048576 }'
    }
    pm=$(mbs "$1" "$1" | median)
    zm=$(mbs "$1" "$2" | median)
    # paired: the median of ours/base of the runs that followed each other
    # (the same round of a boot), less sensitive to the machine's load
    pr=$(for f in "$B/g-$1"-*.out; do
             awk -v a="$1" -v b="$2" '$1 == "BW" { v[$2, $3] = $4 }
                 END { for (r = 0; (a, r) in v; r++)
                           printf "%.4f\n", v[b, r] / v[a, r] }' "$f"
         done | median)
    printf '%-8s %12s %12s %8s %8s\n' "$label" "$pm" "$zm" \
        "$(awk -v a="$zm" -v b="$pm" 'BEGIN { printf "%.3f", a / b }')" \
        "$(printf '%.3f' "$pr")"
    printf '  %s: %s\n' "$1" "$(mbs "$1" "$1" | tr '\n' ' ')" \
        "$2" "$(mbs "$1" "$2" | tr '\n' ' ')"
done
echo "(target: ratio >= 0.90 for nvme and virtio; cache: what write-cache=off costs our namespace, no target; $((SECONDS - gt0)) s; the guests' output is in $B)"
rm -f "$B"/g-*.qcow2
