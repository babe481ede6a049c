/*
 * qcow2 zoned images: zone emulation at run time
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Write pointers live in memory (bs->wps, absolute offsets, where the
 * next write is accepted).  A write to a sequential zone reserves its
 * range at the write pointer when it starts, so that many writes can be
 * in flight to one zone in submission order; the writes of a zone complete
 * in that order, and a failed one takes the write pointer back to where it
 * started (the writes after it fail too, and new ones wait until they are
 * gone).  Reads see what completed writes put below the write pointer, as
 * it was when the read started.
 *
 * Table entries reach the disk in a flush, together with qcow2's metadata
 * and, as a rule, before the one flush of the image file
 * (qcow2_zoned_co_flush): no metadata I/O on the data path.  A reset or
 * finish owns its zones while it runs: it waits for their writes in
 * flight, and new writes to them wait for it.  Both are durable when they
 * complete, and change the zones in memory only once the disk agrees.
 *
 * Requests come from any thread.  z->lock serialises the bookkeeping and
 * is never held across I/O; z->table_lock serialises the writes of the
 * table.  Order: table_lock, then lock; qcow2's s->lock is never taken
 * with z->lock held.
 */

#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "qemu/bswap.h"
#include "qemu/crc32c.h"
#include "qemu/memalign.h"
#include "qemu/units.h"
#include "block/block-io.h"
#include "qcow2-zoned.h"
#include "trace.h"

/*
 * The most data that the entries of one flush may leave to verification
 * (above their zones' last completed flush).  A flush that would leave
 * more writes its entries settled, after the data is flushed: an open
 * after a crash reads at most about twice this much (the entries of the
 * last completed flush, and those of one in progress).
 */
#define QCOW2_ZONED_MAX_TO_VERIFY       (128 * MiB)

/* A zone's attribute bits are the block layer's (report) */
QEMU_BUILD_BUG_ON(QCOW2_ZONED_FAULT_FZR != BLK_ZA_FINISH_RECOMMENDED ||
                  QCOW2_ZONED_FAULT_RZR != BLK_ZA_RESET_RECOMMENDED);

static Qcow2ZoneBusy *busy_zone(Qcow2Zoned *z, uint32_t idx)
{
    return g_hash_table_lookup(z->busy, GUINT_TO_POINTER(idx));
}

/* Every byte of zone @idx below this is written; z->lock held */
static uint64_t done_wp(BlockDriverState *bs, uint32_t idx)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZoneBusy *zb = busy_zone(s->zoned, idx);

    return zb ? zb->done_wp : bs->wps->wp[idx];
}

/* The write pointer of zone @idx moves to @wp; z->lock held */
static void set_wp(BlockDriverState *bs, uint32_t idx, uint64_t wp)
{
    /* Front-ends read it without the lock */
    qatomic_set(&bs->wps->wp[idx], wp);
}

/* A zone whose entry a flush writes */
typedef struct FlushedZone {
    uint32_t idx;
    bool settle;        /* only settles the entry on disk */
    bool ordered;       /* written after the data is flushed */
    bool unstable;      /* ordered because a write's buffer changed */
    uint64_t wp;        /* the write pointer it writes */
    uint32_t crc;       /* raw CRC of the data below it not yet flushed */
    Qcow2ZonedEntry e;
} FlushedZone;

/*
 * Take the zones a flush writes: dirty zones, with their write pointers
 * now; and if there are any, zones whose entry on disk still needs
 * verification, settled at the write pointer of their last completed
 * flush, so that an open after a crash verifies only what the last flush
 * wrote.  If the dirty zones' entries would leave more than
 * QCOW2_ZONED_MAX_TO_VERIFY to verify, they are all written settled,
 * after the data is flushed.  z->lock held.
 */
static void take_zones(BlockDriverState *bs, GArray *taken)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g = &z->geo;
    long n = g->nr_zones, d, u, i;
    uint64_t to_verify = 0;
    guint j;

    d = find_first_bit(z->dirty, n);
    u = d < n ? find_first_bit(z->unsettled, n) : n;
    while ((i = MIN(d, u)) < n) {
        FlushedZone f = { .idx = i };

        if (i == d) {
            f.wp = done_wp(bs, i);
            f.crc = z->crc[i];
            /* What reached the disk may not hash to f.crc: order it */
            f.unstable = f.ordered = test_and_clear_bit(i, z->unstable);
            f.e = f.ordered ? qcow2_zoned_settled_entry(g, i, f.wp) :
                  qcow2_zoned_entry(g, i, f.wp, z->flushed[i], f.crc);
            /*
             * Ordered or not, counted: an entry that a failed flush wrote
             * may still be on disk, and the zone is dirty again
             */
            to_verify += f.wp - zone_start(g, i) - z->flushed[i];
            clear_bit(i, z->dirty);
            d = find_next_bit(z->dirty, n, i + 1);
        } else {
            f.settle = true;
            f.wp = zone_start(g, i) + z->flushed[i];
            f.e = qcow2_zoned_settled_entry(g, i, f.wp);
        }
        if (i == u) {
            u = find_next_bit(z->unsettled, n, i + 1);
        }
        g_array_append_val(taken, f);
    }

    if (to_verify <= QCOW2_ZONED_MAX_TO_VERIFY) {
        return;
    }
    trace_qcow2_zoned_flush_bound(bs, to_verify);
    for (j = 0; j < taken->len; j++) {
        FlushedZone *f = &g_array_index(taken, FlushedZone, j);

        if (!f->settle && !f->ordered) {
            f->ordered = true;
            f->e = qcow2_zoned_settled_entry(g, f->idx, f->wp);
        }
    }
}

/* Stage the entries of @taken, ordered ones or not */
static bool stage_taken(Qcow2Zoned *z, Qcow2ZonedUpdate *u, GArray *taken,
                        bool ordered)
{
    guint i;

    for (i = 0; i < taken->len; i++) {
        FlushedZone *f = &g_array_index(taken, FlushedZone, i);

        if (f->ordered == ordered && !qcow2_zoned_stage(z, u, f->idx, f->e)) {
            return false;
        }
    }
    return true;
}

/*
 * The entries of @taken are on disk, and flushed (@ret >= 0), or may or
 * may not be.  z->lock held.
 */
static void taken_done(BlockDriverState *bs, GArray *taken, int ret)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    guint i;

    for (i = 0; i < taken->len; i++) {
        FlushedZone *f = &g_array_index(taken, FlushedZone, i);
        uint32_t rel = f->wp - zone_start(&z->geo, f->idx);

        if (f->settle) {
            if (ret >= 0) {
                clear_bit(f->idx, z->unsettled);
            }
            continue;
        }
        if (ret < 0) {
            set_bit(f->idx, z->dirty);
            set_bit(f->idx, z->unsettled);
            if (f->unstable) {
                set_bit(f->idx, z->unstable);
            }
            continue;
        }
        /* z->crc[] now covers [f->wp, done_wp()) */
        z->crc[f->idx] ^= crc32c_shift(f->crc, done_wp(bs, f->idx) - f->wp);
        if (f->ordered || rel == z->flushed[f->idx]) {
            clear_bit(f->idx, z->unsettled);
        } else {
            set_bit(f->idx, z->unsettled);
        }
        z->flushed[f->idx] = rel;
    }
}

/*
 * Flush: one flush of the image file, as for a plain image.  The entries
 * of the dirty zones are written together with qcow2's caches, before
 * that flush and in no order with the data; each is made valid on disk
 * at any time by its CRC (see qcow2_zoned_write_runs).  Written after the
 * flush, settled, and flushed again are the entries of zones that had a
 * write whose buffer changed in flight, and all of them when they would
 * leave more than QCOW2_ZONED_MAX_TO_VERIFY to verify (take_zones).
 */
int coroutine_fn GRAPH_RDLOCK qcow2_zoned_co_flush(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    GArray *taken;
    Qcow2ZonedUpdate u;
    bool all;
    int ret;

    if (!z->loaded || (bs->open_flags & BDRV_O_INACTIVE)) {
        /* Inactivation wrote the table; an inactive node writes nothing */
        qemu_co_mutex_lock(&s->lock);
        ret = qcow2_write_caches(bs);
        qemu_co_mutex_unlock(&s->lock);
        return ret;
    }

    qemu_co_mutex_lock(&z->table_lock);
    taken = g_array_new(false, false, sizeof(FlushedZone));
    qcow2_zoned_update_init(bs, &u);
    qemu_mutex_lock(&z->lock);
    all = z->settle_all;
    take_zones(bs, taken);
    qemu_mutex_unlock(&z->lock);

    ret = stage_taken(z, &u, taken, false) ? 0 : -ENOMEM;
    if (ret == 0) {
        qemu_co_mutex_lock(&s->lock);
        ret = qcow2_write_caches(bs);
        qemu_co_mutex_unlock(&s->lock);
    }
    if (ret >= 0) {
        ret = qcow2_zoned_write_runs(bs, &u);
    }
    if (ret >= 0 && taken->len) {
        ret = qcow2_zoned_flush_file(bs);
    }
    qcow2_zoned_update_free(&u);
    qcow2_zoned_update_init(bs, &u);
    if (ret >= 0 && !stage_taken(z, &u, taken, true)) {
        ret = -ENOMEM;
    }
    if (ret >= 0) {
        ret = qcow2_zoned_write_staged(bs, &u);
    }
    qemu_mutex_lock(&z->lock);
    taken_done(bs, taken, ret);
    qemu_mutex_unlock(&z->lock);
    trace_qcow2_zoned_flush(bs, taken->len, ret);
    if (ret >= 0 && all) {
        /* Nothing left to verify: the next open reads the table as is */
        ret = qcow2_zoned_settle(bs);
    }
    qcow2_zoned_update_free(&u);
    g_array_free(taken, true);
    qemu_co_mutex_unlock(&z->table_lock);
    return ret;
}

/*
 * Inactivation, or a reopen read-only: the write pointers reach the disk,
 * as bitmaps do, and need no verification by the next user of the image.
 * A reopen read-write uses it too (qcow2_zoned_reopen_rw()).
 */
int GRAPH_RDLOCK qcow2_zoned_inactivate(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    int ret;

    if (!z || !z->loaded) {
        return 0;
    }
    qemu_mutex_lock(&z->lock);
    z->settle_all = true;
    qemu_mutex_unlock(&z->lock);
    ret = bdrv_flush(bs);
    qemu_mutex_lock(&z->lock);
    z->settle_all = false;
    qemu_mutex_unlock(&z->lock);
    return ret;
}

/*
 * A node opened read-only becomes writable (a reopen read-write): what
 * its open verified is in memory only, and the entries on disk would be
 * verified again after a crash, against data the guest writes from now
 * on.  Store them settled first, as an open read-write does.  If that
 * fails, the zones take no more I/O.
 */
int GRAPH_RDLOCK qcow2_zoned_reopen_rw(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    bool unsettled;
    int ret;

    if (!z || !z->loaded) {
        return 0;
    }
    qemu_mutex_lock(&z->lock);
    unsettled = find_first_bit(z->unsettled, z->geo.nr_zones) <
                z->geo.nr_zones;
    qemu_mutex_unlock(&z->lock);
    if (!unsettled) {
        return 0;
    }
    ret = qcow2_zoned_inactivate(bs);
    if (ret < 0) {
        z->loaded = false;
    }
    return ret;
}

/*
 * Range [@offset, @offset + @bytes) of the disk lies in zone @idx, or in
 * conventional zones only.  -ERANGE if it crosses into a sequential zone.
 */
static int check_range(Qcow2Zoned *z, uint64_t offset, uint64_t bytes,
                       uint32_t *idx)
{
    const Qcow2ZoneGeometry *g = &z->geo;
    uint32_t first = zone_of(g, offset);
    uint32_t last = zone_of(g, offset + bytes - 1);

    *idx = first;
    if (offset + bytes > z->disk_size) {
        return -EINVAL;
    }
    if (!is_seq(g, last)) {
        return 0;
    }
    if (first != last) {
        return -ERANGE;
    }
    if (!QEMU_IS_ALIGNED(offset | bytes, BDRV_SECTOR_SIZE)) {
        return -EINVAL;
    }
    return 0;
}

/*
 * Before a write (or zone append, @append) of @bytes at *@offset: check
 * the zone rules, open the zone, reserve the range.  For an append,
 * *@offset is set to where the data goes.  Pair with
 * qcow2_zoned_write_end on success.
 *
 * Each broken rule has its errno, as front-ends have a status for each:
 * -EFBIG the zone is full (or writes in flight take the rest of its
 * capacity), -EINVAL the write is not at the write pointer
 * (or not sector aligned, or an append not at a zone start or too long),
 * -ERANGE it crosses the zone's capacity or a zone boundary,
 * -ETOOMANYREFS / -EOVERFLOW the open / active limit, -EROFS / -ENODEV
 * the zone is READ ONLY / OFFLINE.  A write that is not
 * at the write pointer fails at once, as on a device.
 */
int coroutine_fn qcow2_zoned_write_begin(BlockDriverState *bs,
                                         int64_t *offset, int64_t bytes,
                                         bool append, QEMUIOVector *qiov,
                                         size_t qiov_offset,
                                         Qcow2ZonedWrite *w)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g;
    Qcow2ZoneBusy *zb;
    uint64_t wp;
    uint32_t idx, closed;
    int ret;

    w->zone = ZONE_SM_NONE;
    if (!z || (!append && (!bytes || *offset >= z->disk_size))) {
        /* Nothing to write, or the VM state area past the disk's end */
        return 0;
    }
    g = &z->geo;
    if (!bytes) {
        return -EINVAL;
    }
    ret = check_range(z, *offset, bytes, &idx);
    if (ret < 0) {
        trace_qcow2_zoned_write_refused(bs, *offset, bytes, ret);
        return ret;
    }
    if (!is_seq(g, idx)) {
        /* A zone append needs a write pointer */
        return append ? -EINVAL : 0;
    }
    if (append &&
        (bytes > g->max_append_bytes || *offset != zone_start(g, idx))) {
        return -EINVAL;
    }
    if (!z->loaded) {
        return -EIO;
    }

    qemu_mutex_lock(&z->lock);
    /* After a failed write, or while a reset or finish runs, wait */
    while (test_bit(idx, z->owned) ||
           ((zb = busy_zone(z, idx)) && zb->failed)) {
        qemu_co_queue_wait(&z->idle, &z->lock);
    }

    wp = bs->wps->wp[idx];
    if (append) {
        *offset = wp;
    }
    ret = zone_failed_errno(zone_sm_cond(&z->sm, idx));
    if (ret < 0) {
        /* A zone that failed takes no data */
    } else if (zone_sm_cond(&z->sm, idx) == BLK_ZS_FULL ||
               wp == cap_end(z, idx)) {
        /* Full, or about to be: what is in flight takes all that is left */
        ret = -EFBIG;
    } else if (*offset != wp) {
        ret = -EINVAL;
    } else if (wp + bytes > cap_end(z, idx)) {
        ret = -ERANGE;
    } else {
        ret = zone_sm_write(&z->sm, idx, &closed);
        if (ret == 0 && closed != ZONE_SM_NONE) {
            trace_qcow2_zoned_implicit_close(bs, closed);
        }
    }
    if (ret < 0) {
        qemu_mutex_unlock(&z->lock);
        trace_qcow2_zoned_write_refused(bs, *offset, bytes, ret);
        return ret;
    }
    /* Data is on its way: closing the zone now leaves it CLOSED */
    zone_sm_set_wp(&z->sm, idx, true, false);
    set_wp(bs, idx, wp + bytes);
    if (!zb) {
        zb = z->spare ?: g_new(Qcow2ZoneBusy, 1);
        z->spare = NULL;
        QTAILQ_INIT(&zb->inflight);
        zb->done_wp = wp;
        zb->failed = false;
        g_hash_table_insert(z->busy, GUINT_TO_POINTER(idx), zb);
    }
    w->zone = idx;
    w->offset = wp;
    w->end = wp + bytes;
    qemu_co_queue_init(&w->turn);
    QTAILQ_INSERT_TAIL(&zb->inflight, w, next);
    qemu_mutex_unlock(&z->lock);

    /*
     * Hashed outside the lock, before the data is on its way: what the
     * disk gets is what was hashed, unless the buffer changes in flight,
     * which qcow2_zoned_write_end() checks
     */
    w->qiov = qiov;
    w->qiov_offset = qiov_offset;
    w->crc = qiov ? qcow2_zoned_crc_qiov(qiov, qiov_offset, bytes) : 0;
    return 0;
}

/*
 * After the data of @w was written (@ret >= 0) or not: complete it in
 * zone order.  Returns what the request returns.  -ENOTSUP says the write
 * was not attempted: if nothing was reserved after it, its range is given
 * back as if it never had been reserved.
 *
 * The zone's CRC takes the write's in, and its buffer is hashed again: if
 * it changed while the write was in flight, the disk may hold something
 * else, and the zone's next entry is written only after its data is
 * flushed.
 */
int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_write_end(BlockDriverState *bs, Qcow2ZonedWrite *w, int ret)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    Qcow2ZonedWrite *next;
    Qcow2ZoneBusy *zb;
    uint64_t start;
    bool stable = true;

    if (w->zone == ZONE_SM_NONE) {
        return ret;
    }
    if (ret >= 0 && w->qiov) {
        stable = qcow2_zoned_crc_qiov(w->qiov, w->qiov_offset,
                              w->end - w->offset) == w->crc;
    }
    start = zone_start(&z->geo, w->zone);
    qemu_mutex_lock(&z->lock);
    zb = busy_zone(z, w->zone);
    /* Complete in zone order: the write before this one wakes it */
    while (QTAILQ_FIRST(&zb->inflight) != w) {
        qemu_co_queue_wait(&w->turn, &z->lock);
    }
    QTAILQ_REMOVE(&zb->inflight, w, next);

    if (ret == -ENOTSUP && !zb->failed &&
        bs->wps->wp[w->zone] == w->end) {
        set_wp(bs, w->zone, w->offset);
        zone_sm_set_wp(&z->sm, w->zone, w->offset != start, false);
    } else if (ret >= 0 && zb->failed) {
        /*
         * Its data lies past the write pointer that an earlier write
         * left behind: it reads as zeros, and the write failed
         */
        ret = -EIO;
    } else if (ret < 0 && !zb->failed) {
        zb->failed = true;
        set_wp(bs, w->zone, w->offset);
        zone_sm_set_wp(&z->sm, w->zone, w->offset != start, false);
        trace_qcow2_zoned_write_failed(bs, w->zone, w->offset, ret);
    } else if (ret >= 0) {
        zb->done_wp = w->end;
        set_bit(w->zone, z->dirty);
        z->crc[w->zone] = crc32c_shift(z->crc[w->zone],
                                       w->end - w->offset) ^
                          w->crc;
        if (!stable) {
            set_bit(w->zone, z->unstable);
            trace_qcow2_zoned_write_unstable(bs, w->zone, w->offset);
        }
        zone_sm_set_wp(&z->sm, w->zone, true, w->end == cap_end(z, w->zone));
    }

    next = QTAILQ_FIRST(&zb->inflight);
    if (next) {
        qemu_co_queue_next(&next->turn);
    } else {
        g_hash_table_remove(z->busy, GUINT_TO_POINTER(w->zone));
        if (z->spare) {
            g_free(zb);
        } else {
            z->spare = zb;
        }
        /* Writes behind a failure, resets and finishes may go on */
        qemu_co_queue_restart_all(&z->idle);
    }
    qemu_mutex_unlock(&z->lock);
    return ret;
}

/* Zeros written as data, for what qcow2 cannot zero in its L2 tables */
static int coroutine_fn GRAPH_RDLOCK
write_zeros_as_data(BlockDriverState *bs, int64_t offset, int64_t bytes,
                    BdrvRequestFlags flags)
{
    size_t len = MIN(bytes, 1 * MiB);
    void *zeros = qemu_try_blockalign0(bs, len);
    int ret = 0;

    if (!zeros) {
        return -ENOMEM;
    }
    while (bytes && ret >= 0) {
        QEMUIOVector qiov;
        size_t n = MIN(bytes, len);

        qemu_iovec_init_buf(&qiov, zeros, n);
        ret = qcow2_co_pwritev_data(bs, offset, n, &qiov, 0,
                                    flags & BDRV_REQ_FUA);
        offset += n;
        bytes -= n;
    }
    qemu_vfree(zeros);
    return ret;
}

/*
 * A write zeroes on a zoned image, in a conventional zone or reserved in
 * its sequential zone.  The block layer hands it over whole (see
 * qcow2_zoned_refresh_limits()), so it is split here as the block layer
 * splits it for any other image: qcow2 zeroes whole subclusters, or a
 * piece of one subcluster.  A piece that qcow2 cannot zero so gets its
 * zeros written as data, unless the caller forbade that.
 */
int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_write_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
                         BdrvRequestFlags flags)
{
    BDRVQcow2State *s = bs->opaque;
    int64_t end = offset + bytes;
    int ret = 0;

    while (offset < end && ret >= 0) {
        int64_t next = QEMU_ALIGN_UP(offset + 1, s->subcluster_size);

        if (QEMU_IS_ALIGNED(offset, s->subcluster_size)) {
            next = MAX(next, QEMU_ALIGN_DOWN(end, s->subcluster_size));
        }
        next = MIN(next, end);
        ret = qcow2_co_pwrite_zeroes_data(bs, offset, next - offset, flags);
        if (ret == -ENOTSUP && !(flags & BDRV_REQ_NO_FALLBACK)) {
            ret = write_zeros_as_data(bs, offset, next - offset, flags);
        }
        offset = next;
    }
    return ret;
}

/*
 * Write paths that cannot obey the zone rules (compressed writes, copy
 * offload, discard), and copy offload that would read past a write
 * pointer: allowed in conventional zones only
 */
int qcow2_zoned_conventional_only(BlockDriverState *bs, int64_t offset,
                                  int64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    const Qcow2ZoneGeometry *g;

    if (!s->zoned || !bytes) {
        return 0;
    }
    g = &s->zoned->geo;
    if (offset >= s->zoned->disk_size) {
        return 0;
    }
    return is_seq(g, zone_of(g, MIN(offset + bytes, s->zoned->disk_size) - 1))
           ? -ENOTSUP : 0;
}

/*
 * A read of [@offset, @offset + @bytes) in pieces: returns the length of
 * the first piece (a run of conventional zones, or part of one sequential
 * zone) and sets *@valid to how many of its first bytes hold data: what
 * writes completed by now put there.  The rest reads as zeros.  An
 * OFFLINE zone cannot be read: -ENODEV.
 */
int64_t qcow2_zoned_read_piece(BlockDriverState *bs, int64_t offset,
                               int64_t bytes, int64_t *valid)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g;
    uint64_t end, limit;
    uint32_t idx;

    *valid = bytes;
    if (!z || offset >= z->disk_size) {
        return bytes;
    }
    g = &z->geo;
    idx = zone_of(g, offset);
    if (!is_seq(g, idx)) {
        *valid = MIN(bytes, zone_start(g, g->conventional_zones) - offset);
        return *valid;
    }
    if (!z->loaded) {
        return -EIO;
    }
    end = MIN(offset + bytes, zone_start(g, idx) + g->zone_size);
    qemu_mutex_lock(&z->lock);
    if (zone_sm_cond(&z->sm, idx) == BLK_ZS_OFFLINE) {
        /* Nothing of an offline zone can be read */
        qemu_mutex_unlock(&z->lock);
        return -ENODEV;
    }
    limit = done_wp(bs, idx);
    qemu_mutex_unlock(&z->lock);
    *valid = limit > offset ? MIN(end, limit) - offset : 0;
    return end - offset;
}

int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_co_report(BlockDriverState *bs, int64_t offset,
                      unsigned int *nr_zones, BlockZoneDescriptor *zones)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g;
    uint32_t idx;
    unsigned int n;

    if (!z) {
        return -ENOTSUP;
    }
    g = &z->geo;
    if (offset < 0 || offset >= z->disk_size) {
        *nr_zones = 0;
        return offset < 0 ? -EINVAL : 0;
    }
    if (!z->loaded) {
        return -EIO;
    }
    qemu_mutex_lock(&z->lock);
    for (idx = zone_of(g, offset), n = 0;
         idx < g->nr_zones && n < *nr_zones; idx++, n++) {
        uint64_t start = zone_start(g, idx);
        uint64_t len = MIN(g->zone_size, z->disk_size - start);
        bool seq = is_seq(g, idx);

        zones[n] = (BlockZoneDescriptor) {
            .start = start,
            .length = len,
            .cap = seq ? zone_capacity(g, z->disk_size, idx) : len,
            .wp = seq ? bs->wps->wp[idx] : start + len,
            .type = seq ? BLK_ZT_SWR : BLK_ZT_CONV,
            .state = zone_sm_cond(&z->sm, idx),
            /* The fault bits of the attributes are the block layer's */
            .attrs = z->fault[idx] & QCOW2_ZONED_FAULT_ATTRS,
        };
    }
    qemu_mutex_unlock(&z->lock);
    *nr_zones = n;
    return 0;
}

/*
 * Zones @lo..@hi become the caller's: once none of them has writes in
 * flight or another owner, new writes to them wait until qcow2_zoned_release()
 */
void coroutine_fn qcow2_zoned_acquire(Qcow2Zoned *z, uint32_t lo,
                                      uint32_t hi)
{
    GHashTableIter it;
    gpointer key;
    bool busy;

    qemu_mutex_lock(&z->lock);
    do {
        busy = find_next_bit(z->owned, (unsigned long)hi + 1, lo) <= hi;
        g_hash_table_iter_init(&it, z->busy);
        while (!busy && g_hash_table_iter_next(&it, &key, NULL)) {
            busy = GPOINTER_TO_UINT(key) >= lo && GPOINTER_TO_UINT(key) <= hi;
        }
        if (busy) {
            qemu_co_queue_wait(&z->idle, &z->lock);
        }
    } while (busy);
    bitmap_set(z->owned, lo, hi - lo + 1);
    qemu_mutex_unlock(&z->lock);
}

void coroutine_fn qcow2_zoned_release(Qcow2Zoned *z, uint32_t lo,
                                      uint32_t hi)
{
    qemu_mutex_lock(&z->lock);
    bitmap_clear(z->owned, lo, hi - lo + 1);
    qemu_co_queue_restart_all(&z->idle);
    qemu_mutex_unlock(&z->lock);
}

/*
 * Discard the clusters of [@offset, @offset + @bytes), which are whole
 * clusters or end at the end of the disk, so that they read as zeros and
 * the image file shrinks
 */
static int coroutine_fn GRAPH_RDLOCK
discard_range(BlockDriverState *bs, uint64_t offset, uint64_t bytes)
{
    BDRVQcow2State *s = bs->opaque;
    int ret;

    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_cluster_discard(bs, offset, bytes, QCOW2_DISCARD_ALWAYS,
                                true);
    qemu_co_mutex_unlock(&s->lock);
    return ret;
}

/*
 * A reset changes zone @idx: it is sequential, sound, and holds something
 * or has an attribute
 */
static bool needs_reset(BlockDriverState *bs, uint32_t idx)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;

    return is_seq(&z->geo, idx) &&
           !zone_failed_errno(zone_sm_cond(&z->sm, idx)) &&
           (bs->wps->wp[idx] != zone_start(&z->geo, idx) ||
            zone_sm_cond(&z->sm, idx) != BLK_ZS_EMPTY ||
            (z->fault[idx] & QCOW2_ZONED_FAULT_ATTRS));
}

/*
 * Reset zones @lo..@hi, which the caller owns: their entries first,
 * durably, then memory; then their data.  Zones that failed are skipped.
 */
static int coroutine_fn GRAPH_RDLOCK
reset_zones(BlockDriverState *bs, uint32_t lo, uint32_t hi)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g = &z->geo;
    g_autofree unsigned long *reset = bitmap_try_new(hi - lo + 1);
    Qcow2ZonedUpdate u;
    uint32_t idx;
    int ret = 0;

    if (!reset) {
        return -ENOMEM;
    }
    qemu_co_mutex_lock(&z->table_lock);
    qcow2_zoned_update_init(bs, &u);
    qemu_mutex_lock(&z->lock);
    for (idx = lo; idx <= hi && ret == 0; idx++) {
        if (needs_reset(bs, idx)) {
            Qcow2ZonedEntry e = qcow2_zoned_settled_entry(g, idx,
                                                          zone_start(g, idx));

            set_bit(idx - lo, reset);
            /* A reset zone is recommended nothing any more */
            if (!qcow2_zoned_stage_fault(z, &u, idx, e, 0)) {
                ret = -ENOMEM;
            }
        }
    }
    qemu_mutex_unlock(&z->lock);
    if (ret == 0) {
        ret = qcow2_zoned_write_staged(bs, &u);
    }
    trace_qcow2_zoned_reset(bs, lo, hi, ret);
    if (ret < 0) {
        /* The zones stay as they are; their entries are written again */
        qcow2_zoned_redirty(z, &u);
    } else {
        qemu_mutex_lock(&z->lock);
        for (idx = find_first_bit(reset, hi - lo + 1); idx <= hi - lo;
             idx = find_next_bit(reset, hi - lo + 1, idx + 1)) {
            set_wp(bs, lo + idx, zone_start(g, lo + idx));
            zone_sm_reset(&z->sm, lo + idx);
            z->fault[lo + idx] = 0;
            clear_bit(lo + idx, z->dirty);
            clear_bit(lo + idx, z->unstable);
            clear_bit(lo + idx, z->unsettled);
            z->flushed[lo + idx] = 0;
            z->crc[lo + idx] = 0;
        }
        qemu_mutex_unlock(&z->lock);
    }
    qcow2_zoned_update_free(&u);
    qemu_co_mutex_unlock(&z->table_lock);
    if (ret < 0) {
        return ret;
    }

    for (idx = find_first_bit(reset, hi - lo + 1); idx <= hi - lo;
         idx = find_next_bit(reset, hi - lo + 1, idx + 1)) {
        uint64_t start = zone_start(g, lo + idx);
        int r;

        /* Not an error if it fails: the zone reads as zeros anyway */
        r = discard_range(bs, start, MIN(g->zone_size, z->disk_size - start));
        if (r < 0) {
            trace_qcow2_zoned_discard_failed(bs, lo + idx, r);
        }
    }
    return 0;
}

/*
 * Finish zone @idx, which the caller owns: the rest of its capacity reads
 * as zeros, and it is full, durably, and then in memory.  A zone that
 * writes filled is made durable too: a finish that completed survives a
 * crash, whatever made the zone full.
 *
 * The zone's data and zeros are flushed, then its entry is written
 * settled and flushed: a finished zone leaves nothing to verify, however
 * much it holds since its last flush.  The finish holds z->table_lock
 * throughout: a flush that took the zone completes (or fails, and the
 * zone is dirty again) before it looks.
 */
static int coroutine_fn GRAPH_RDLOCK
finish_zone(BlockDriverState *bs, uint32_t idx)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g = &z->geo;
    uint64_t zend = MIN(zone_start(g, idx) + g->zone_size, z->disk_size);
    uint64_t wp, aligned;
    bool full, dirty;
    uint8_t fault;
    Qcow2ZonedEntry e;
    Qcow2ZonedUpdate u;
    int ret = 0;

    qemu_co_mutex_lock(&z->table_lock);
    qemu_mutex_lock(&z->lock);
    wp = bs->wps->wp[idx];
    full = zone_sm_cond(&z->sm, idx) == BLK_ZS_FULL;
    dirty = test_bit(idx, z->dirty);
    ret = zone_failed_errno(zone_sm_cond(&z->sm, idx));
    fault = z->fault[idx] & ~QCOW2_ZONED_FAULT_FZR;
    qemu_mutex_unlock(&z->lock);
    if (ret < 0 || (full && !dirty && fault == z->fault[idx])) {
        goto out;
    }
    /* What a failed write or a crash left past the write pointer goes */
    aligned = MIN(ROUND_UP(wp, s->cluster_size), zend);
    if (!full && aligned > wp) {
        ret = write_zeros_as_data(bs, wp, aligned - wp, 0);
        if (ret < 0) {
            goto out;
        }
    }
    if (!full && zend > aligned) {
        ret = discard_range(bs, aligned, zend - aligned);
        if (ret < 0) {
            goto out;
        }
    }
    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_write_caches(bs);
    qemu_co_mutex_unlock(&s->lock);
    if (ret >= 0) {
        ret = qcow2_zoned_flush_file(bs);
    }
    if (ret < 0) {
        goto out;
    }

    e = qcow2_zoned_settled_entry(g, idx, cap_end(z, idx));
    qcow2_zoned_update_init(bs, &u);
    /* A full zone is not recommended to be finished any more */
    ret = qcow2_zoned_stage_fault(z, &u, idx, e, fault) ?
          qcow2_zoned_write_staged(bs, &u) : -ENOMEM;
    trace_qcow2_zoned_finish(bs, idx, ret);
    if (ret < 0) {
        qcow2_zoned_redirty(z, &u);
        qemu_mutex_lock(&z->lock);
        set_bit(idx, z->unsettled);
        qemu_mutex_unlock(&z->lock);
    } else {
        qemu_mutex_lock(&z->lock);
        set_wp(bs, idx, cap_end(z, idx));
        zone_sm_finish(&z->sm, idx);
        z->fault[idx] = fault;
        clear_bit(idx, z->dirty);
        clear_bit(idx, z->unstable);
        clear_bit(idx, z->unsettled);
        z->flushed[idx] = cap_end(z, idx) - zone_start(g, idx);
        z->crc[idx] = 0;
        qemu_mutex_unlock(&z->lock);
    }
    qcow2_zoned_update_free(&u);
out:
    qemu_co_mutex_unlock(&z->table_lock);
    return ret;
}

int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_co_mgmt(BlockDriverState *bs, BlockZoneOp op, int64_t offset,
                    int64_t len)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g;
    uint32_t lo, hi, idx, closed;
    bool all;
    int ret = 0;

    if (!z) {
        return -ENOTSUP;
    }
    g = &z->geo;
    if (offset < 0 || len <= 0 || offset >= z->disk_size ||
        len > z->disk_size - offset ||
        !QEMU_IS_ALIGNED(offset, g->zone_size) ||
        (!QEMU_IS_ALIGNED(len, g->zone_size) &&
         offset + len != z->disk_size)) {
        return -EINVAL;
    }
    lo = zone_of(g, offset);
    hi = zone_of(g, offset + len - 1);
    /* Resetting the whole device skips its conventional zones */
    all = op == BLK_ZO_RESET && offset == 0 && len == z->disk_size;
    if (!all && !is_seq(g, lo)) {
        return -EINVAL;
    }
    if (!z->loaded) {
        return -EIO;
    }

    trace_qcow2_zoned_mgmt(bs, op, lo, hi);
    switch (op) {
    case BLK_ZO_OPEN:
    case BLK_ZO_CLOSE:
        /* No I/O: only a reset or finish of the same zones is waited for */
        qemu_mutex_lock(&z->lock);
        while (find_next_bit(z->owned, (unsigned long)hi + 1, lo) <= hi) {
            qemu_co_queue_wait(&z->idle, &z->lock);
        }
        for (idx = lo; idx <= hi && ret >= 0; idx++) {
            ret = zone_failed_errno(zone_sm_cond(&z->sm, idx));
            if (ret < 0) {
                break;
            }
            if (op == BLK_ZO_CLOSE) {
                ret = zone_sm_close(&z->sm, idx);
                continue;
            }
            ret = zone_sm_open(&z->sm, idx, &closed);
            if (ret == 0 && closed != ZONE_SM_NONE) {
                trace_qcow2_zoned_implicit_close(bs, closed);
            }
        }
        qemu_mutex_unlock(&z->lock);
        break;
    case BLK_ZO_FINISH:
        qcow2_zoned_acquire(z, lo, hi);
        for (idx = lo; idx <= hi && ret >= 0; idx++) {
            ret = finish_zone(bs, idx);
        }
        qcow2_zoned_release(z, lo, hi);
        break;
    case BLK_ZO_RESET:
        qcow2_zoned_acquire(z, lo, hi);
        /* Resetting the whole device skips zones that failed, too */
        qemu_mutex_lock(&z->lock);
        for (idx = lo; idx <= hi && !all && ret == 0; idx++) {
            ret = zone_failed_errno(zone_sm_cond(&z->sm, idx));
        }
        qemu_mutex_unlock(&z->lock);
        if (ret == 0) {
            ret = reset_zones(bs, lo, hi);
        }
        qcow2_zoned_release(z, lo, hi);
        break;
    default:
        ret = -ENOTSUP;
        break;
    }
    return ret;
}
