# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest, after nvme-prep.sh and before fs.sh: fs.sh's filesystem on
# the ZNS namespace (nsid 1, no conventional zones).  f2fs and xfs (with
# the host's NVME_NS=2) have their metadata on the plain namespace nsid 2:
# neither can live on sequential zones alone.  For f2fs nsid 2 is the
# first device of mkfs.f2fs, the zoned one added with -c, and f2fs
# records the zoned device's path: /dev/nvme-ns1, a name that stays the
# same across boots (see nvme-prep.sh); f2fs mounts its first device.  For
# xfs nsid 2 is the data device, nsid 1 the realtime device.  Once the
# files are durable it prints "zones written on nsid 1: N".
# shellcheck disable=SC2034  # the variables are for fs.sh
FS_DEV=$N1
if [ "$FS" = f2fs ]; then
    FS_DEV=/dev/nvme-ns2
    FS_MKFS="mkfs.f2fs -q -f -m -c /dev/nvme-ns1 /dev/nvme-ns2"
elif [ "$FS" = xfs ]; then
    # XFS: the data section on nsid 2, the zoned realtime device nsid 1
    FS_DEV=/dev/nvme-ns2
    FS_RTDEV=/dev/nvme-ns1
fi
FS_NO_CONV=1
written_zones() { echo "zones written on nsid 1: $(zones "$N1" | grep -vc ' empty ')"; }
FS_REPORT=written_zones
