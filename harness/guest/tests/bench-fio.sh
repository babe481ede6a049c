#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest (make bench): fio sequential writes on two fresh disks, the
# two taking turns.  The host prepends
#   KINDS   the two disks, by their serial numbers (virtio-blk or NVMe),
#           e.g. "nvme-zns nvme-zoned"
#   ZONE    zone size in bytes (of the zoned disks; the plain one is cut in
#           pieces of the same size)
#   JOBS    fio jobs; ZPJ: zones a job writes (from their start to their
#           end); a run writes JOBS * ZPJ zones, job i from zone
#           FIRST + i * ZPJ, FIRST the first zone no run wrote before
#   BS      block size; ENGINE, IODEPTH: fio's ioengine and iodepth
#   ROUNDS  measured runs a disk: A B, B A, A B, ...
#   NOZBD   (optional) 1: no zonemode=zbd on zoned disks either (their
#           writes are at their write pointers all the same), to tell
#           fio's and Linux's zone work from QEMU's
# and what makes the disks appear (loadmod nvme).
# A zoned disk (host-managed) is written with zonemode=zbd; a plain one
# with the same jobs without it: the same bytes at the same places in the
# same order.  Before the measured runs, each disk has a warm-up run of
# one job on its last zone (reset afterwards): fio and its libraries are
# in the page cache, the paths of both disks warm.
# Prints "disk KIND DEV ..." a disk, "BW KIND RUN BYTES/S" a measured run.
serial() {
    cat "/sys/block/$1/serial" 2>/dev/null ||
        cat "/sys/block/$1/device/serial" 2>/dev/null
}
for k in $KINDS; do
    dev=
    for _ in $(seq 100); do
        for b in /sys/block/*; do
            b=${b##*/}
            [ "$(serial "$b" | tr -d ' ')" = "$k" ] && dev=$b
        done
        [ -n "$dev" ] && [ -b "/dev/$dev" ] && break
        sleep 0.1
    done
    [ -b "/dev/$dev" ] || { echo "FAIL: no disk with serial $k"; exit 1; }
    eval "dev_$(echo "$k" | tr - _)=$dev"
    q=/sys/block/$dev/queue
    # The same I/O scheduler on every disk (Linux >= 6.10 needs none for
    # zoned writes at queue depths above one: zone write plugging)
    echo none > "$q/scheduler"
    echo "disk $k $dev $(cat $q/zoned) scheduler=$(cat $q/scheduler | tr -d ' ')" \
        "lbs=$(cat $q/logical_block_size) max_sectors_kb=$(cat $q/max_sectors_kb)" \
        "size=$(blockdev --getsize64 "/dev/$dev")" \
        "queues=$(ls -d /sys/block/$dev/mq/* | wc -l)"
done
devof() { eval "echo \$dev_$(echo "$1" | tr - _)"; }
# fio DEV FIRST-ZONE NAME NUMJOBS SIZE: NUMJOBS jobs of sequential writes,
# job i writes SIZE bytes from zone FIRST-ZONE + i * ZPJ on
fio_run() {
    zbd=
    [ "$(cat "/sys/block/$1/queue/zoned")" = host-managed ] &&
        [ "${NOZBD:-0}" != 1 ] && zbd=--zonemode=zbd
    # shellcheck disable=SC2086
    fio --name="$3" --filename="/dev/$1" --direct=1 $zbd --rw=write --bs="$BS" \
        --ioengine="$ENGINE" --iodepth="$IODEPTH" --numjobs="$4" \
        --offset=$(($2 * ZONE)) --offset_increment=$((ZPJ * ZONE)) \
        --size="$5" --group_reporting --output-format=json \
        > /tmp/fio.json 2> /tmp/fio.err || return 1
    ! grep -q '"error" *: *[1-9]' /tmp/fio.json
}
for k in $KINDS; do
    d=$(devof "$k")
    nz=$(($(blockdev --getsize64 "/dev/$d") / ZONE))
    fio_run "$d" $((nz - 1)) warm 1 "$ZONE" ||
        { echo "FAIL: warm-up on $k"; cat /tmp/fio.err /tmp/fio.json; exit 1; }
    if [ "$(cat "/sys/block/$d/queue/zoned")" = host-managed ]; then
        blkzone reset -o $(((nz - 1) * ZONE / 512)) -c 1 "/dev/$d" ||
            { echo "FAIL: reset on $k"; exit 1; }
    fi
done
set -- $KINDS
r=0
while [ $r -lt "$ROUNDS" ]; do
    if [ $((r % 2)) = 0 ]; then order="$1 $2"; else order="$2 $1"; fi
    for k in $order; do
        d=$(devof "$k")
        first=$((r * JOBS * ZPJ))
        fio_run "$d" $first seq "$JOBS" $((ZPJ * ZONE)) ||
            { echo "FAIL: fio on $k"; cat /tmp/fio.err /tmp/fio.json; exit 1; }
        # The write section of the one (grouped) job
        awk -v k="$k" -v r=$r '
            /"write" *: *\{/ { w = 1 }
            w && /"io_bytes"/ { gsub(/[^0-9]/, ""); io = $0 }
            w && /"bw_bytes"/ { gsub(/[^0-9]/, ""); bw = $0 }
            w && /"runtime"/ { gsub(/[^0-9]/, ""); rt = $0; exit }
            END { printf "BW %s %d %s io_bytes=%s runtime_ms=%s\n", k, r, bw, io, rt }' \
            /tmp/fio.json
        if [ "$(cat "/sys/block/$d/queue/zoned")" = host-managed ]; then
            # fio wrote what it should: the run's zones are full
            full=$(blkzone report -o $((first * ZONE / 512)) -c $((JOBS * ZPJ)) \
                   "/dev/$d" | grep -c 'zcond:14')
            [ "$full" = $((JOBS * ZPJ)) ] ||
                { echo "FAIL: $k: $full of $((JOBS * ZPJ)) zones full"; exit 1; }
        fi
    done
    r=$((r + 1))
done
exit 0
