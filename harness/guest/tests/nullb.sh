# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced in the guest: /dev/zbd0, a zoned device of the kernel's own
# null_blk, memory-backed, with the geometry of NULLB_* (sizes in MiB).
# NULLB_NAME names another device (/dev/NAME); NULLB_ROTATIONAL=1 makes it
# a rotational disk, as Linux sees every virtio-blk disk.
loadmod null_blk
grep -q ' /sys/kernel/config ' /proc/mounts ||
    mount -t configfs none /sys/kernel/config
n=/sys/kernel/config/nullb/${NULLB_NAME:-zbd0}
mkdir "$n"
echo "$NULLB_SIZE" > "$n/size"
echo 1 > "$n/memory_backed"
echo 1 > "$n/zoned"
echo "$NULLB_ZONE_SIZE" > "$n/zone_size"
echo "$NULLB_ZONE_CAP" > "$n/zone_capacity"
echo "$NULLB_CONV" > "$n/zone_nr_conv"
echo "$NULLB_MAX_OPEN" > "$n/zone_max_open"
echo "$NULLB_MAX_ACTIVE" > "$n/zone_max_active"
[ -z "${NULLB_ROTATIONAL:-}" ] || echo "$NULLB_ROTATIONAL" > "$n/rotational"
echo 1 > "$n/power"
