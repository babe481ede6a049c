/*
 * qcow2 zoned images: zones that fail
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * x-blockdev-zone-fault and qemu-io's zone_fault make zones READ ONLY or
 * OFFLINE, give them NVMe's Reset or Finish Zone Recommended attribute, or
 * make them sound again (clear).  The change is in the zones' table
 * entries, durable when the request completes; an image with a fault in
 * any entry has the zone-faults feature bit, so that a build that does not
 * know faults refuses it instead of taking the entries for broken ones.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qcow2-zoned.h"
#include "trace.h"

/* The fault bits of a zone that had @old and gets @fault */
static uint8_t apply_fault(uint8_t old, BlockZoneFault fault)
{
    switch (fault) {
    case BLOCK_ZONE_FAULT_READ_ONLY:
        return (old & ~QCOW2_ZONED_FAULT_FAILED) | QCOW2_ZONED_FAULT_RDONLY;
    case BLOCK_ZONE_FAULT_OFFLINE:
        return (old & ~QCOW2_ZONED_FAULT_FAILED) | QCOW2_ZONED_FAULT_OFFLINE;
    case BLOCK_ZONE_FAULT_RESET_RECOMMENDED:
        return old | QCOW2_ZONED_FAULT_RZR;
    case BLOCK_ZONE_FAULT_FINISH_RECOMMENDED:
        return old | QCOW2_ZONED_FAULT_FZR;
    default:
        return 0;
    }
}

/* Set or clear the zone-faults feature bit, durably.  s->lock held. */
static int coroutine_fn GRAPH_RDLOCK
set_feature(BlockDriverState *bs, bool on)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t old = s->incompatible_features;
    int ret;

    if (on) {
        s->incompatible_features |= QCOW2_INCOMPAT_ZONE_FAULTS;
    } else {
        s->incompatible_features &= ~QCOW2_INCOMPAT_ZONE_FAULTS;
    }
    if (s->incompatible_features == old) {
        return 0;
    }
    ret = qcow2_update_header(bs);
    if (ret >= 0) {
        ret = qcow2_zoned_flush_file(bs);
    }
    if (ret < 0 && on) {
        /* Whether or not the header has it, no entry has a fault yet */
        s->incompatible_features = old;
    }
    return ret;
}

/*
 * Zones @lo..@hi, which the caller owns, take @fault: the image file's
 * data first, so that their entries can be written settled, then the
 * entries, then memory.  z->table_lock held.
 */
static int coroutine_fn GRAPH_RDLOCK
fault_zones(BlockDriverState *bs, uint32_t lo, uint32_t hi,
            BlockZoneFault fault)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g = &z->geo;
    g_autofree uint8_t *nf = g_try_new(uint8_t, hi - lo + 1);
    Qcow2ZonedUpdate u;
    uint32_t idx;
    int ret = 0;

    if (!nf) {
        return -ENOMEM;
    }
    qemu_co_mutex_lock(&s->lock);
    if (fault != BLOCK_ZONE_FAULT_CLEAR) {
        ret = set_feature(bs, true);
    }
    if (ret >= 0) {
        ret = qcow2_write_caches(bs);
    }
    qemu_co_mutex_unlock(&s->lock);
    if (ret >= 0) {
        ret = qcow2_zoned_flush_file(bs);
    }
    if (ret < 0) {
        return ret;
    }

    qcow2_zoned_update_init(bs, &u);
    qemu_mutex_lock(&z->lock);
    for (idx = lo; idx <= hi && ret == 0; idx++) {
        Qcow2ZonedEntry e = qcow2_zoned_settled_entry(g, idx,
                                                      bs->wps->wp[idx]);

        nf[idx - lo] = apply_fault(z->fault[idx], fault);
        if (!qcow2_zoned_stage_fault(z, &u, idx, e, nf[idx - lo])) {
            ret = -ENOMEM;
        }
    }
    qemu_mutex_unlock(&z->lock);
    if (ret == 0) {
        ret = qcow2_zoned_write_staged(bs, &u);
    }
    if (ret < 0) {
        /* The zones stay as they are; their entries are written again */
        qcow2_zoned_redirty(z, &u);
        qcow2_zoned_update_free(&u);
        return ret;
    }
    qcow2_zoned_update_free(&u);

    qemu_mutex_lock(&z->lock);
    for (idx = lo; idx <= hi; idx++) {
        uint64_t wp = bs->wps->wp[idx];
        uint8_t f = nf[idx - lo];

        z->fault[idx] = f;
        clear_bit(idx, z->dirty);
        clear_bit(idx, z->unstable);
        clear_bit(idx, z->unsettled);
        z->flushed[idx] = wp - zone_start(g, idx);
        z->crc[idx] = 0;
        if (f & QCOW2_ZONED_FAULT_FAILED) {
            zone_sm_fail(&z->sm, idx, f & QCOW2_ZONED_FAULT_OFFLINE ?
                         BLK_ZS_OFFLINE : BLK_ZS_RDONLY);
        } else {
            zone_sm_heal(&z->sm, idx, wp == zone_start(g, idx),
                         wp == cap_end(z, idx));
        }
    }
    qemu_mutex_unlock(&z->lock);
    return 0;
}

/* No zone has a fault.  z->table_lock held. */
static bool no_faults(Qcow2Zoned *z)
{
    uint32_t idx;

    for (idx = z->geo.conventional_zones; idx < z->geo.nr_zones; idx++) {
        if (z->fault[idx]) {
            return false;
        }
    }
    return true;
}

int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_co_fault(BlockDriverState *bs, int64_t offset, int64_t len,
                     BlockZoneFault fault, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g;
    uint32_t lo, hi;
    int ret;

    if (!z || !z->loaded) {
        error_setg(errp, "Image '%s' has no zones that can fail",
                   bs->filename);
        return -ENOTSUP;
    }
    g = &z->geo;
    if (offset < 0 || len <= 0 || offset >= z->disk_size ||
        len > z->disk_size - offset ||
        !QEMU_IS_ALIGNED(offset, g->zone_size) ||
        (!QEMU_IS_ALIGNED(len, g->zone_size) &&
         offset + len != z->disk_size)) {
        error_setg(errp, "Bytes %" PRId64 "+%" PRId64 " are not whole zones "
                   "of the disk (zones of %" PRIu64 " bytes, disk of %"
                   PRIu64 " bytes)", offset, len, g->zone_size,
                   z->disk_size);
        return -EINVAL;
    }
    lo = zone_of(g, offset);
    hi = zone_of(g, offset + len - 1);
    if (!is_seq(g, lo)) {
        error_setg(errp, "Zone %" PRIu32 " is conventional: it cannot fail "
                   "or have zone attributes", lo);
        return -EINVAL;
    }

    qcow2_zoned_acquire(z, lo, hi);
    qemu_co_mutex_lock(&z->table_lock);
    ret = fault_zones(bs, lo, hi, fault);
    trace_qcow2_zoned_fault(bs, lo, hi, fault, ret);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not store the fault of zones %"
                         PRIu32 " to %" PRIu32, lo, hi);
    } else if (fault == BLOCK_ZONE_FAULT_CLEAR && no_faults(z)) {
        /* The image is one that any build of zoned qcow2 opens again */
        qemu_co_mutex_lock(&s->lock);
        ret = set_feature(bs, false);
        qemu_co_mutex_unlock(&s->lock);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not clear the zone-faults "
                             "feature bit");
        }
    }
    qemu_co_mutex_unlock(&z->table_lock);
    qcow2_zoned_release(z, lo, hi);
    return ret;
}
