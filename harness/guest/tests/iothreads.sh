#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest: fio jobs on both vCPUs at once on 8 zones of a zoned
# virtio-blk disk with two queues, each served by its own iothread in QEMU
# (iothread-vq-mapping), so that QEMU takes requests for the zones from two
# threads at once.
#   1. four jobs, each on two zones of its own: sequential writes verified
#      with crc32c, twice over (fio resets the full zones in between)
#   2. eight jobs on the same eight zones: 4 KiB random-zone writes with
#      zone resets (zone_reset_threshold/frequency) and an fsync every 16
#      writes, for 20 s; zone reports from another process meanwhile
#   3. the zones reset with blkzone; then two verified jobs on zones 8 to
#      11 while four random-zone writers with resets and fsyncs use zones
#      12 to 15
# Then the zone report of the 8 zones, for the host to compare.  A fio run
# that does not end in time fails as hung I/O.  (fio 3.33 cannot send
# zone appends to a block device: no appends here.)
# Disk: 4 MiB zones (8192 sectors) of 3 MiB capacity, 8 conventional.
# With PLAIN=1 prepended, the same on a disk that is not zoned (no
# zonemode, no zone commands): a check of the two queues themselves.
Z=8192
MiB=1048576
OFS=$((32 * MiB))                   # zone 8, the first sequential one
if [ "${PLAIN:-0}" = 1 ]; then
    ZBD=""
else
    ZBD="--zonemode=zbd"
fi
set -- /sys/block/vda/mq/*
echo "queues: $#"
rc=0
# run NAME SECONDS FIO-ARGS...: fio with the common options, for at most
# SECONDS; "NAME: ok", or FAIL and fio's last words
run() {
    name=$1 limit=$2
    shift 2
    t0=$(date +%s)
    # shellcheck disable=SC2086
    fio --filename=/dev/vda --direct=1 $ZBD --ioengine=libaio \
        --iodepth=16 --cpus_allowed=0-1 --cpus_allowed_policy=split \
        --group_reporting "$@" > "/tmp/$name.log" 2>&1 &
    pid=$!
    while kill -0 $pid 2>/dev/null; do
        if [ $(($(date +%s) - t0)) -ge "$limit" ]; then
            echo "FAIL: $name: fio did not finish in $limit s: I/O hung"
            tail -n 20 "/tmp/$name.log"
            exit 1
        fi
        sleep 1
    done
    wait $pid
    frc=$?
    err=$(sed -n 's/.*err= *\([0-9]*\).*/\1/p' "/tmp/$name.log" | sort -u | tr '\n' ' ')
    echo "--- $name: fio exit code $frc, err= $err($(($(date +%s) - t0)) s):" \
        "$(grep -m1 -o 'IOPS=[^,]*' "/tmp/$name.log")"
    if [ "$frc" = 0 ] && [ "$err" = "0 " ]; then
        echo "$name: ok"
    else
        rc=1
        v=$(grep -m1 -i 'verify\|crc32c\|bad magic' "/tmp/$name.log")
        if [ -n "$v" ]; then
            echo "FAIL: $name: fio verify error: $v"
        else
            echo "FAIL: $name: fio exit code $frc, err= $err: $(grep -m1 -i 'error\|fio:' "/tmp/$name.log")"
        fi
        tail -n 20 "/tmp/$name.log"
    fi
}

run own-zones-verified 60 --name=own --rw=write --bs=16k \
    --offset=$OFS --size=$((8 * MiB)) --offset_increment=$((8 * MiB)) \
    --numjobs=4 --loops=2 --verify=crc32c --verify_fatal=1

# Zone reports from a third process meanwhile
if [ -n "$ZBD" ]; then
    (while :; do blkzone report -o $((8 * Z)) -c 8 /dev/vda > /dev/null || break; done) &
    rep=$!
fi
run shared-zones-resets 50 --name=shared --rw=randwrite --bs=4k \
    --offset=$OFS --size=$((32 * MiB)) --numjobs=8 --fsync=16 \
    ${ZBD:+--zone_reset_threshold=0.4 --zone_reset_frequency=0.25} \
    --time_based --runtime=20
[ -n "$ZBD" ] && kill "$rep" && wait "$rep" 2>/dev/null

if [ -n "$ZBD" ]; then
    blkzone reset -o $((8 * Z)) -c 8 /dev/vda || { echo "FAIL: blkzone reset"; rc=1; }
fi
run verified-and-random 45 --name=verified --rw=write --bs=16k \
    --offset=$OFS --size=$((8 * MiB)) --offset_increment=$((8 * MiB)) \
    --numjobs=2 --loops=2 --verify=crc32c --verify_fatal=1 \
    --name=random --rw=randwrite --bs=4k --fsync=16 \
    --offset=$((OFS + 16 * MiB)) --size=$((16 * MiB)) --numjobs=4 \
    ${ZBD:+--zone_reset_threshold=0.4 --zone_reset_frequency=0.25} \
    --time_based --runtime=10

# Both queues took requests: their interrupts, by vCPU
grep 'req\.[0-9]' /proc/interrupts | awk '{ print "interrupts of", $NF ":", $2, $3 }'
if [ -n "$ZBD" ]; then
    echo "REPORT"
    blkzone report -o $((8 * Z)) -c 8 /dev/vda
fi
exit $rc
