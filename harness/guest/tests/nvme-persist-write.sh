#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest (after nvme-prep.sh), before a power cut: writes to the ZNS
# namespace made durable in each way a guest has, then "=== SYNCED ===" (the
# host kills QEMU with SIGKILL):
#   zone 0  64 KiB (dd) then fsync of the disk (a flush); 64 KiB with
#           O_DIRECT|O_SYNC (FUA); then 64 KiB not made durable (may be
#           there after the restart or not, never more)
#   zone 1  16 KiB nvme write --force-unit-access, 16 KiB nvme zns
#           zone-append --force-unit-access
#   zone 2  32 KiB nvme write, then nvme flush
#   zone 3  32 KiB nvme write, finish, nvme flush: full
#   zone 4  32 KiB nvme write, nvme flush, reset, nvme flush: empty
#   zone 5  fio, 64 KiB of sequential direct writes with --sync=1 (FUA)
# "SUM <zone> <sha256>" of the durable data of zones 0, 1, 2, 3, 5 and the
# zones (persist_state of nvme-prep.sh).
fail() { echo "FAIL: $*"; exit 1; }
d() { head -c "$2" /dev/zero | tr '\0' "$3" > "$1"; }
d /tmp/a 65536 A
d /tmp/b 65536 B
d /tmp/c 16384 C
d /tmp/e 32768 E
at=$(($(zs 0) * LBS / 65536))
dd if=/tmp/a of=$D bs=64k seek=$at count=1 oflag=direct conv=fsync 2>/dev/null ||
    fail "zone 0: write and fsync"
/gnu/bin/dd if=/tmp/b of=$D bs=64k seek=$((at + 1)) count=1 oflag=direct,sync status=none ||
    fail "zone 0: O_SYNC write"
nv write $D -s "$(zs 1)" -c $((16384 / LBS - 1)) -z 16384 -d /tmp/c \
    --force-unit-access > /dev/null 2>&1 || fail "zone 1: nvme write with FUA"
nv zns zone-append $D -s "$(zs 1)" -z 16384 -d /tmp/c --force-unit-access \
    > /dev/null 2>&1 || fail "zone 1: zone append with FUA"
for z in 2 3 4; do
    nv write $D -s "$(zs $z)" -c $((32768 / LBS - 1)) -z 32768 -d /tmp/e \
        > /dev/null 2>&1 || fail "zone $z: nvme write"
done
nv zns finish-zone $D -s "$(zs 3)" > /dev/null || fail "zone 3: finish"
nv flush $D > /dev/null || fail "nvme flush"
nv zns reset-zone $D -s "$(zs 4)" > /dev/null || fail "zone 4: reset"
nv flush $D > /dev/null || fail "nvme flush after the reset"
fio --name=sync --filename=$D --direct=1 --sync=1 \
    --ioengine=psync --rw=write --bs=16k --offset=$(($(zs 5) * LBS)) \
    --size=64k --output-format=terse --terse-version=3 > /tmp/fio.out 2>&1 ||
    { cat /tmp/fio.out; fail "zone 5: fio --sync=1"; }
persist_state
# Not made durable
dd if=/tmp/a of=$D bs=64k seek=$((at + 2)) count=1 oflag=direct 2>/dev/null
echo "=== SYNCED ==="
sleep 600
