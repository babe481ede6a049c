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
