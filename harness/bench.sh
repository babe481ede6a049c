#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# make bench: zoned qcow2 against plain qcow2 on this machine, side by side.
#
# 1. qemu-img bench sequential writes (4 KiB and 64 KiB, queue depth 1 and
#    32, -t none -i io_uring), a zoned and a plain image of the same cluster
#    size, a fresh image for every run, the two kinds interleaved; prints
#    the median throughput of each and the ratio zoned/plain.
# 2. Zone append at queue depth 32 against plain writes (a unit test's
#    -m perf mode, through the block layer).
# 3. An image of 1,048,576 zones: open time and memory against a plain
#    image of the same size, and a report of all zones.
# 4. fio in the Linux test guest (TCG): sequential writes, zonemode=zbd,
#    on our NVMe namespace against QEMU's own NVMe ZNS emulation on a
#    plain qcow2 image, and on zoned against plain qcow2 over virtio-blk;
#    the median of each and the ratios (BENCH_GUEST=0 skips it).
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

# bench KIND BS QD COUNT: MB/s of one run on a fresh image
bench() {
    local kind=$1 bs=$2 qd=$3 count=$4 img=$B/$1.qcow2 t
    rm -f "$img"
    if [ "$kind" = zoned ]; then
        "$IMG" create -q -f qcow2 -o "$ZONED_OPTS" "$img" $SIZE
    else
        "$IMG" create -q -f qcow2 "$img" $SIZE
    fi
    t=$("$IMG" bench -w -t none -i io_uring -f qcow2 -c "$count" -d "$qd" \
        -s "$bs" "$img" | sed -n 's/^Run completed in \([0-9.]*\) seconds\./\1/p')
    [ -n "$t" ] || die "qemu-img bench failed on the $kind image"
    awk -v c="$count" -v bs="$bs" -v t="$t" \
        'BEGIN { printf "%.1f\n", c * bs / t / 1048576 }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "== sequential writes: zoned vs plain qcow2 (median of $RUNS runs each)"
printf '%-8s %-4s %12s %12s %8s\n' size qd plain_MB/s zoned_MB/s ratio
for point in "4096 1 40000" "4096 32 100000" "65536 1 12000" "65536 32 24000"; do
    set -- $point
    p=() z=()
    for ((i = 0; i < RUNS; i++)); do
        p+=("$(bench plain "$1" "$2" "$3")")
        z+=("$(bench zoned "$1" "$2" "$3")")
    done
    pm=$(printf '%s\n' "${p[@]}" | median)
    zm=$(printf '%s\n' "${z[@]}" | median)
    printf '%-8s %-4s %12s %12s %8s\n' "$(( $1 / 1024 ))K" "$2" "$pm" "$zm" \
        "$(awk -v a="$zm" -v b="$pm" 'BEGIN { printf "%.3f", a / b }')"
done
rm -f "$B"/*.qcow2

echo
echo "== zone append at queue depth 32 (4 KiB) against writes to a plain image"
ninja -C "$BUILD/obj" tests/unit/test-qcow2-zoned-io >/dev/null
for ((i = 0; i < 3; i++)); do
    "$BUILD/obj/tests/unit/test-qcow2-zoned-io" -m perf \
        -p /qcow2-zoned-io/perf-append | grep '^zone append'
done

echo
echo "== 1,048,576 zones (64 GiB of 64 KiB zones) against a plain 64 GiB image"
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

# 4. fio in the guest.  Four disks, each on a fresh 4 GiB image, the file
# node as qemu-img bench has it above (-t none -i io_uring):
#   nvme-zns     QEMU's own ZNS emulation (hw/nvme, zones in memory) on a
#                plain qcow2 image: the same format cost, without our zones
#   nvme-zoned   our zoned image behind nvme-ns: the zones are the image's
#   virtio-plain a plain qcow2 image over virtio-blk
#   virtio-zoned our zoned image over virtio-blk
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
if [ "${BENCH_GUEST:-1}" = 0 ]; then
    exit 0
fi
GQ=$BUILD/qemu-system-x86_64
GZONE=$((64 * 1048576))
GZONED_OPTS=zone.mode=host-managed,zone.size=64M,zone.max_append_bytes=512K
GJOBS=4 GZPJ=2 GBS=128k GROUNDS=${BENCH_GUEST_ROUNDS:-2}
# Eight zones a round, the last zone for the warm-up: 7 rounds at most
((GROUNDS >= 1 && GROUNDS <= 7)) || die "BENCH_GUEST_ROUNDS: 1 to 7"
GENGINE=${BENCH_FIO_ENGINE:-psync} GQD=${BENCH_FIO_QD:-1}
echo
echo "== fio in the Linux guest (TCG, 2 vCPUs): sequential writes, $GBS $GENGINE" \
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
    *-zoned) "$IMG" create -q -f qcow2 -o "$GZONED_OPTS" "$img" $SIZE ;;
    *) "$IMG" create -q -f qcow2 "$img" $SIZE ;;
    esac
    printf '%s\n' -blockdev "file,filename=$img,node-name=f$n,cache.direct=on,aio=io_uring" \
        -blockdev "qcow2,file=f$n,node-name=d$n"
    case $kind in
    nvme-zns)   printf '%s\n' -device "nvme,id=nvme$n,serial=$kind" \
                    -device "nvme-ns,drive=d$n,bus=nvme$n,nsid=1,zoned=on,zoned.zone_size=64M" ;;
    nvme-zoned) printf '%s\n' -device "nvme,id=nvme$n,serial=$kind" \
                    -device "nvme-ns,drive=d$n,bus=nvme$n,nsid=1" ;;
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
for pair in "nvme-zns nvme-zoned" "virtio-plain virtio-zoned"; do
    set -- $pair
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
    printf '%-8s %12s %12s %8s %8s\n' "${1%%-*}" "$pm" "$zm" \
        "$(awk -v a="$zm" -v b="$pm" 'BEGIN { printf "%.3f", a / b }')" \
        "$(printf '%.3f' "$pr")"
    printf '  %s: %s\n' "$1" "$(mbs "$1" "$1" | tr '\n' ' ')" \
        "$2" "$(mbs "$1" "$2" | tr '\n' ' ')"
done
echo "(target: ratio >= 0.90; $((SECONDS - gt0)) s; the guests' output is in $B)"
rm -f "$B"/g-*.qcow2
