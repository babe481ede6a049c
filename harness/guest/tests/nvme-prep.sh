# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck disable=SC2034  # the variables are for the scripts that follow
# Sourced in the guest before the NVMe tests: the nvme driver loaded, the
# NVME_NS namespaces (default 1) of controller nvme0 there, and helpers
# that take the geometry from the device itself, so that the same script
# runs on a zoned qcow2 image and on QEMU's own ZNS emulation of a raw
# file, whatever the logical block size.
#   N1, N2...  the block device of namespace 1, 2... (Linux numbers its
#          nvme0nY in the order the namespaces were set up, not by nsid);
#          /dev/nvme-ns1, ... are names of them that stay the same from
#          one boot to the next (f2fs records the paths of its devices)
#   D      $N1
#   LBS    its logical block size (bytes); ZL, ZC: zone size and capacity
#          (LBAs); NZ: zones; NSZE: LBAs of the namespace
#   nv     nvme-cli (see below)
#   q DEV ATTR: /sys/block/DEV/queue/ATTR
#   zones DEV [FIRST [COUNT]]: "ZONE <index> <state> <wp>" a zone, from
#          nvme zns report-zones; wp relative to the zone start in bytes,
#          "-" when the zone has none (full, read-only, offline)
#   zs ZONE: the start LBA of zone ZONE of $D
#   sum ZONE BYTES: "SUM <zone> <sha256>", the checksum of the first BYTES
#          of zone ZONE of $D
#   persist_state: what nvme-persist-write.sh made durable before the
#          power cut and nvme-persist-check.sh reads after it: the "SUM"
#          lines of zones 0, 1, 2, 3 and 5, the "ZONE" lines of zones 0-5
loadmod nvme
for _ in $(seq 50); do
    set -- /sys/block/nvme0n*/nsid
    [ -e "$1" ] && [ $# -ge "${NVME_NS:-1}" ] && break
    sleep 0.1
done
for f in /sys/block/nvme0n*/nsid; do
    [ -e "$f" ] || { echo "FAIL: no NVMe namespace"; exit 1; }
    n=${f%/nsid}
    id=$(cat "$f")
    eval "N$id=/dev/${n##*/}"
    # shellcheck disable=SC2046  # major and minor
    [ -b "/dev/nvme-ns$id" ] || mknod "/dev/nvme-ns$id" b $(tr : ' ' < "$n/dev")
done
D=${N1:?}
for _ in $(seq 50); do
    [ -b "$D" ] && break
    sleep 0.1
done
# nvme-cli 2.3 tests errno after strtoul() without clearing it first
# (linux-nvme/nvme-cli#2030).  In this guest (not on the host) errno is
# already set when its option parser starts, and every numeric option fails
# with "Expected byte argument for ..."; with LANG naming a locale, even
# one the guest does not have, it is not.
nv() { LANG=C.UTF-8 nvme "$@"; }
nv io-passthru /dev/null --opcode=0x79 --cdw13=3 --dry-run > /dev/null 2>&1 ||
    { echo "FAIL: nvme-cli cannot parse numeric options"; exit 1; }
q() { cat "/sys/block/${1#/dev/}/queue/$2"; }
LBS=$(q $D logical_block_size)
ZL=$(($(q $D chunk_sectors) * 512 / LBS))
NZ=$(q $D nr_zones)
NSZE=$(($(blockdev --getsize64 $D) / LBS))
ZC=$(($(nv zns report-zones $D --descs=1 | sed -n 's/.* Cap: *\([0-9a-fx]*\) .*/\1/p')))
zones() {
    zlbs=$(q "$1" logical_block_size)
    zzl=$(($(q "$1" chunk_sectors) * 512 / zlbs))
    nv zns report-zones "$1" --start-lba=$((${2:-0} * zzl)) ${3:+--descs=$3} |
        sed -n 's/^SLBA: *\([0-9a-fx]*\) *WP: *\([0-9a-fx]*\) .* State: *\([0-9a-fx]*\) .*/\1 \2 \3/p' |
        while read -r slba wp st; do
            case $((st >> 4)) in
            1) s=empty ;; 2) s="imp-open" ;; 3) s="exp-open" ;; 4) s=closed ;;
            13) s="read-only" ;; 14) s=full ;; 15) s=offline ;; *) s="state-$st" ;;
            esac
            case $s in
            full|read-only|offline) w=- ;;
            *) w=$(((wp - slba) * zlbs)) ;;
            esac
            echo "ZONE $((slba / zzl)) $s $w"
        done
}
zs() { echo $(($1 * ZL)); }
sum() {
    echo "SUM $1 $(/gnu/bin/dd if=$D bs=$2 skip=$(($(zs $1) * LBS)) count=1 \
        iflag=direct,skip_bytes status=none | sha256sum | cut -d' ' -f1)"
}
persist_state() {
    sum 0 131072
    sum 1 32768
    sum 2 32768
    sum 3 32768
    sum 5 65536
    zones $D 0 6
}
