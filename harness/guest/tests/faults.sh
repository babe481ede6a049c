# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest (after nvme-prep.sh), run.sh with GUEST_QMP: zones that
# failed, on the zoned virtio-blk disk (vda: 4 MiB zones of 3 MiB, 8
# conventional) and on the NVMe namespace ($D, node zd1, no conventional
# zones).  Before this boot, at rest (check.sh): vda zone 9 read-only with
# 64 KiB of 0x99 in it, zone 10 offline; namespace zone 1 read-only with 64
# KiB of 0x91 in it, zone 2 offline.  The disks' werror and rerror are
# "stop": a request to a failed zone that went through them would stop the
# VM and hang this script.
# PHASE=run: what each request gets, zones that fail while the guest runs
# (a line "QMP: ..." that run.sh sends), NVMe's Offline action.
# PHASE=restart: the states only.  (After faults-lib.sh.)
err() {
    grep -o 'Input/output error\|Invalid argument\|ZONE_IS_READ_ONLY\|ZONE_IS_OFFLINE\|INVALID_ZONE_STATE_TRANSITION\|Zone Is Read Only\|Zone Is Offline\|Invalid Zone State Transition' |
        head -n1
}
nc() { zones $D "$1" 1 | cut -d' ' -f3; }
# same BYTES CHAR [DD ARGS]: what dd reads is BYTES of CHAR
same() {
    c=$2
    shift 2
    dd bs=64k count=1 iflag=direct "$@" 2>/dev/null | tr -d "$c" | wc -c
}

echo "virtio zones 9 10 11: $(vc 9) $(vc 10) $(vc 11)"
echo "nvme zones 1 2 3: $(nc 1) $(nc 2) $(nc 3)"
[ "$PHASE" = restart ] && exit 0

o99=$(printf '\231')
o91=$(printf '\221')
echo "virtio read zone 9: $(same 65536 "$o99" if=/dev/vda skip=$((9 * 64))) bytes differ"
echo "virtio write zone 9: $(dd if=/dev/zero of=/dev/vda bs=64k \
    seek=$((9 * 64 + 1)) count=1 oflag=direct 2>&1 | err)"
echo "virtio reset zone 9: $(blkzone reset -o $((9 * Z)) -c 1 /dev/vda 2>&1 | err)"
echo "virtio read zone 10: $(dd if=/dev/vda of=/dev/null bs=64k \
    skip=$((10 * 64)) count=1 iflag=direct 2>&1 | err)"
echo "virtio write zone 10: $(dd if=/dev/zero of=/dev/vda bs=64k \
    seek=$((10 * 64)) count=1 oflag=direct 2>&1 | err)"

# Zone 11 fails while the guest uses it
head -c 65536 /dev/zero | tr '\0' 'b' > /tmp/b
dd if=/tmp/b of=/dev/vda bs=64k seek=$((11 * 64)) count=1 oflag=direct 2>/dev/null
qmp_fault d $((11 * 4 * MiB)) read-only
waitfor "vc 11" 13
echo "virtio zone 11 at run time: $(vc 11)"
echo "virtio read zone 11: $(same 65536 b if=/dev/vda skip=$((11 * 64))) bytes differ"
echo "virtio write zone 11: $(dd if=/tmp/b of=/dev/vda bs=64k \
    seek=$((11 * 64 + 1)) count=1 oflag=direct 2>&1 | err)"

head -c 4096 /dev/zero > /tmp/z
echo "nvme read zone 1: $(same 65536 "$o91" if=$D skip=$(($(zs 1) * LBS / 65536))) bytes differ"
echo "nvme write zone 1: $(nv write $D -s $(($(zs 1) + 65536 / LBS)) \
    -c $((4096 / LBS - 1)) -z 4096 -d /tmp/z 2>&1 | err)"
echo "nvme append zone 1: $(nv zns zone-append $D -s $(zs 1) -z 4096 \
    -d /tmp/z 2>&1 | err)"
echo "nvme reset zone 1: $(nv zns reset-zone $D -s $(zs 1) 2>&1 | err)"
echo "nvme read zone 2: $(nv read $D -s $(zs 2) -c 0 -z $LBS -d /dev/null 2>&1 | err)"
echo "nvme write zone 2: $(nv write $D -s $(zs 2) -c $((4096 / LBS - 1)) \
    -z 4096 -d /tmp/z 2>&1 | err)"
nv zns offline-zone $D -s $(zs 1) > /dev/null 2>&1
echo "nvme zone 1 after Offline: $(nc 1)"
echo "nvme offline an empty zone: $(nv zns offline-zone $D -s $(zs 4) 2>&1 | err)"
# Zone Descriptor Changed notices: Linux leaves them off; turned on, the
# zone that fails below raises one (the kernel logs its result: notice 2,
# 0xef, log page 0xbf), and the Changed Zone List names it ("COUNT ZONE...",
# emptied by each read); zone 1, that the host took offline, is not in it
cz() {
    nv zns changed-zone-list /dev/nvme0 -n 1 -o binary > /tmp/cz 2>&1 ||
        { echo "error: $(head -c 200 /tmp/cz)"; return; }
    n=$(od -An -tu2 -N2 /tmp/cz | tr -d ' ')
    printf '%s' "$n"
    i=0
    while [ $i -lt "$n" ] && [ $i -lt 511 ]; do
        printf ' %s' $(($(od -An -tu8 -j $((8 + 8 * i)) -N8 /tmp/cz) / ZL))
        i=$((i + 1))
    done
}
# (the value in hex, with or without 0x; --value: newer nvme-cli's -v is
# --verbose)
aec=$(nv get-feature /dev/nvme0 -f 0xb 2>&1 |
      sed -n 's/.*Current value: *\(0x\)*\([0-9a-fA-F]*\).*/\2/p')
nv set-feature /dev/nvme0 -f 0xb --value=$((0x${aec:-0} | 1 << 27)) \
    > /dev/null 2>&1
echo "nvme changed zones before: $(cz)"
qmp_fault zd1 $((3 * 4 * MiB)) read-only
waitfor "nc 3" read-only
echo "nvme zone 3 at run time: $(nc 3)"
waitfor "dmesg | grep -c 'async event result'" 1
echo "nvme event: $(dmesg | grep -o 'async event result [0-9a-f]*' | tail -n1)"
echo "nvme changed zones: $(cz)"
echo "nvme changed zones again: $(cz)"
echo "nvme write zone 3: $(dd if=/tmp/b of=$D bs=64k \
    seek=$(($(zs 3) * LBS / 65536)) count=1 oflag=direct 2>&1 | err)"
# Still a working disk, both of them
dd if=/tmp/b of=/dev/vda bs=64k seek=$((12 * 64)) count=1 oflag=direct 2>/dev/null &&
    dd if=/tmp/b of=$D bs=64k seek=$(($(zs 5) * LBS / 65536)) count=1 \
        oflag=direct 2>/dev/null && echo "the disks work afterwards"
