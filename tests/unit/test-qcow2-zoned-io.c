/*
 * Zoned qcow2 images through the block layer: zone append in flight
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * 32 zone appends in flight at once, to one zone and to several, must get
 * distinct, non-overlapping offsets that fill their zones from the start,
 * and the data read back must be what each append wrote.  With -m perf,
 * zone appends at queue depth 32 are timed against plain writes.
 *
 * A write whose buffer changes in flight does not leave a table entry
 * behind whose CRC the data on disk fails.
 *
 * Two iothreads on one zoned node (as virtio-blk with iothread-vq-mapping
 * uses it: the node lives in one of them, requests come from both at
 * once): zone appends and resets racing on one zone; writes, appends and
 * zone management on many zones under open and active limits.
 */

#include "qemu/osdep.h"
#include "block/block.h"
#include "block/block_int.h"
#include "system/block-backend.h"
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "qemu/units.h"
#include "qobject/qdict.h"
#include "qemu/atomic.h"
#include "qemu/coroutine.h"
#include "qemu/cutils.h"
#include "iothread.h"

#define QD 32
#define ZONE (1 * MiB)
#define DISK (64 * MiB)

typedef struct Req {
    int64_t offset;
    int64_t len;
    int ret;
    bool done;
    uint8_t *buf;
    QEMUIOVector qiov;
} Req;

static void req_cb(void *opaque, int ret)
{
    Req *r = opaque;

    r->ret = ret;
    r->done = true;
}

static void wait_all(Req *reqs, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        while (!reqs[i].done) {
            main_loop_wait(false);
        }
    }
}

/* A zoned image with options @extra, or a plain one if @extra is NULL */
static BlockBackend *new_zoned_image(char **path, const char *extra)
{
    int fd;
    g_autofree char *opts = extra ? g_strdup_printf(
        "zone.mode=host-managed,zone.size=%d%s", (int)ZONE, extra) : NULL;
    QDict *qdict = qdict_new();

    *path = g_strdup_printf("%s/qcow2-zoned-io-XXXXXX", g_get_tmp_dir());
    fd = g_mkstemp(*path);
    g_assert(fd >= 0);
    close(fd);
    bdrv_img_create(*path, "qcow2", NULL, NULL, opts, DISK, 0, true,
                    &error_abort);
    qdict_put_str(qdict, "driver", "qcow2");
    return blk_new_open(*path, NULL, qdict, BDRV_O_RDWR, &error_abort);
}

static void free_image(BlockBackend *blk, char *path)
{
    blk_unref(blk);
    unlink(path);
    g_free(path);
}

/* @n appends of varying length, request i to zone zones[i % nzones] */
static void appends(BlockBackend *blk, Req *reqs, int n, const int *zones,
                    int nzones)
{
    int i;

    for (i = 0; i < n; i++) {
        Req *r = &reqs[i];

        r->len = 4096 * (1 + i % 4);
        r->buf = g_malloc(r->len);
        memset(r->buf, i + 1, r->len);
        qemu_iovec_init_buf(&r->qiov, r->buf, r->len);
        r->offset = (int64_t)zones[i % nzones] * ZONE;
        r->done = false;
        blk_aio_zone_append(blk, &r->offset, &r->qiov, 0, req_cb, r);
    }
    wait_all(reqs, n);
}

static int cmp_offset(const void *a, const void *b)
{
    const Req *x = a, *y = b;

    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Each zone's appends tile it from its start; the data is theirs */
static void check_appends(BlockBackend *blk, Req *reqs, int n,
                          const int *zones, int nzones)
{
    g_autofree uint8_t *rbuf = g_malloc(16 * KiB);
    int i, z;

    for (i = 0; i < n; i++) {
        g_assert_cmpint(reqs[i].ret, ==, 0);
        g_assert_cmpint(blk_pread(blk, reqs[i].offset, reqs[i].len, rbuf, 0),
                        ==, 0);
        g_assert(memcmp(rbuf, reqs[i].buf, reqs[i].len) == 0);
    }
    qsort(reqs, n, sizeof(*reqs), cmp_offset);
    for (z = 0; z < nzones; z++) {
        int64_t next = (int64_t)zones[z] * ZONE;
        BlockZoneDescriptor desc;
        unsigned int nr = 1;

        for (i = 0; i < n; i++) {
            if (reqs[i].offset / ZONE == zones[z]) {
                g_assert_cmpint(reqs[i].offset, ==, next);
                next += reqs[i].len;
            }
        }
        g_assert_cmpint(blk_zone_report(blk, (int64_t)zones[z] * ZONE, &nr,
                                        &desc), ==, 0);
        g_assert_cmpint(desc.wp, ==, next);
    }
    for (i = 0; i < n; i++) {
        g_free(reqs[i].buf);
    }
}

static void test_append_one_zone(void)
{
    static const int zones[] = { 3 };
    Req reqs[QD];
    char *path;
    BlockBackend *blk = new_zoned_image(&path, "");

    appends(blk, reqs, QD, zones, 1);
    check_appends(blk, reqs, QD, zones, 1);
    free_image(blk, path);
}

static void test_append_many_zones(void)
{
    static const int zones[] = { 1, 2, 5, 9, 17 };
    Req reqs[QD];
    char *path;
    BlockBackend *blk = new_zoned_image(&path, ",zone.conventional_zones=1");

    appends(blk, reqs, QD, zones, ARRAY_SIZE(zones));
    check_appends(blk, reqs, QD, zones, ARRAY_SIZE(zones));
    free_image(blk, path);
}

/*
 * A zone reset issued while appends to the zone are in flight waits for
 * them: they all succeed, and the zone is empty afterwards
 */
static void test_reset_waits_for_appends(void)
{
    static const int zones[] = { 4 };
    Req reqs[QD], reset = { .done = false };
    char *path;
    BlockBackend *blk = new_zoned_image(&path, "");
    BlockZoneDescriptor desc;
    unsigned int nr = 1;
    int i;

    for (i = 0; i < QD; i++) {
        Req *r = &reqs[i];

        r->len = 4096;
        r->buf = g_malloc(r->len);
        memset(r->buf, i + 1, r->len);
        qemu_iovec_init_buf(&r->qiov, r->buf, r->len);
        r->offset = (int64_t)zones[0] * ZONE;
        r->done = false;
        blk_aio_zone_append(blk, &r->offset, &r->qiov, 0, req_cb, r);
    }
    blk_aio_zone_mgmt(blk, BLK_ZO_RESET, (int64_t)zones[0] * ZONE, ZONE,
                      req_cb, &reset);
    wait_all(reqs, QD);
    wait_all(&reset, 1);
    g_assert_cmpint(reset.ret, ==, 0);
    for (i = 0; i < QD; i++) {
        g_assert_cmpint(reqs[i].ret, ==, 0);
        g_free(reqs[i].buf);
    }
    g_assert_cmpint(blk_zone_report(blk, (int64_t)zones[0] * ZONE, &nr, &desc),
                    ==, 0);
    g_assert_cmpint(desc.wp, ==, desc.start);
    g_assert_cmpint(desc.state, ==, BLK_ZS_EMPTY);
    free_image(blk, path);
}

/* An append into a conventional zone, or larger than the limit, fails */
static void test_append_refused(void)
{
    Req r = { .len = 128 * KiB };
    char *path;
    BlockBackend *blk = new_zoned_image(&path, ",zone.conventional_zones=1");

    r.buf = g_malloc0(r.len);
    qemu_iovec_init_buf(&r.qiov, r.buf, r.len);
    r.offset = 2 * ZONE;
    blk_aio_zone_append(blk, &r.offset, &r.qiov, 0, req_cb, &r);
    wait_all(&r, 1);
    g_assert_cmpint(r.ret, ==, -EINVAL);

    qemu_iovec_init_buf(&r.qiov, r.buf, 4096);
    r.offset = 0;
    r.done = false;
    blk_aio_zone_append(blk, &r.offset, &r.qiov, 0, req_cb, &r);
    wait_all(&r, 1);
    g_assert_cmpint(r.ret, ==, -EINVAL);
    g_free(r.buf);
    free_image(blk, path);
}

/*
 * Two iothreads on one zoned node, as virtio-blk with iothread-vq-mapping
 * uses it: the node's home is the first iothread, and coroutines in both
 * submit requests to it at once.
 */
#define MT_THREADS 2
#define MT_BLK 4096
#define MT_SLOTS (ZONE / MT_BLK)
#define MT_TIMEOUT_S 30
/* Appended blocks: every word is ID_MAGIC << 32 | request number */
#define ID_MAGIC 0x5a6f6e65ULL
/* Written blocks: every word is OFS_MAGIC | its offset in the image */
#define OFS_MAGIC 0x4f66000000000000ULL

typedef struct MTEnv {
    BlockBackend *blk;
    char *path;
    IOThread *io[MT_THREADS];
} MTEnv;

static void mt_setup(MTEnv *e, const char *extra)
{
    int i;

    e->blk = new_zoned_image(&e->path, extra);
    for (i = 0; i < MT_THREADS; i++) {
        e->io[i] = iothread_new();
    }
    blk_set_aio_context(e->blk, iothread_get_aio_context(e->io[0]),
                        &error_abort);
}

/* Coroutine @fn(@opaque) runs in iothread @t */
static void mt_start(MTEnv *e, int t, CoroutineEntry *fn, void *opaque)
{
    aio_co_enter(iothread_get_aio_context(e->io[t]),
                 qemu_coroutine_create(fn, opaque));
}

/* Wait until no coroutine of *@pending runs any more */
static void mt_wait(int *pending)
{
    int64_t deadline = g_get_monotonic_time() +
                       MT_TIMEOUT_S * G_USEC_PER_SEC;

    while (qatomic_read(pending) > 0) {
        if (g_get_monotonic_time() > deadline) {
            g_test_message("%d coroutines have not finished after %d s: "
                           "their requests hang", qatomic_read(pending),
                           MT_TIMEOUT_S);
            g_assert_cmpint(qatomic_read(pending), ==, 0);
        }
        aio_poll(qemu_get_aio_context(), false);
        g_usleep(1000);
    }
}

/* The node back in the main thread, the iothreads gone */
static void mt_teardown(MTEnv *e)
{
    int i;

    blk_set_aio_context(e->blk, qemu_get_aio_context(), &error_abort);
    for (i = 0; i < MT_THREADS; i++) {
        iothread_join(e->io[i]);
    }
}

static void fill_id(uint64_t *buf, uint32_t id)
{
    int i;

    for (i = 0; i < MT_BLK / 8; i++) {
        buf[i] = ID_MAGIC << 32 | id;
    }
}

/* The request that block @buf names, or -1 if it names none */
static int64_t block_id(const uint64_t *buf)
{
    int i;

    for (i = 1; i < MT_BLK / 8; i++) {
        if (buf[i] != buf[0]) {
            return -1;
        }
    }
    return buf[0] >> 32 == ID_MAGIC ? (int64_t)(uint32_t)buf[0] : -1;
}

static void fill_offsets(uint64_t *buf, int64_t offset, int64_t len)
{
    int64_t i;

    for (i = 0; i < len / 8; i++) {
        buf[i] = OFS_MAGIC | (offset + i * 8);
    }
}

/*
 * What a 4 KiB zone append gets when its zone has no room left, full or
 * with the rest of its capacity taken by appends in flight
 */
static bool is_full_error(int ret)
{
    return ret == -EFBIG;
}

static bool is_resource_error(int ret)
{
    return ret == -ETOOMANYREFS || ret == -EOVERFLOW;
}

static void report_zone(BlockBackend *blk, uint32_t zone,
                        BlockZoneDescriptor *desc)
{
    unsigned int nr = 1;

    g_assert_cmpint(blk_zone_report(blk, (int64_t)zone * ZONE, &nr, desc),
                    ==, 0);
    g_assert_cmpint(nr, ==, 1);
}

/*
 * iothreads-one-zone: OZ_QD coroutines in each iothread append 4 KiB
 * blocks to one zone, OZ_APPENDS in all.  The first append that finds the
 * zone full resets it; the appends that find it full try again a little
 * later, racing with the reset, until they succeed.
 *
 * The resets cut the run into epochs.  An append that completed before
 * the reset that ends an epoch started, and was submitted after the reset
 * that began it was done, lies in that epoch for sure; the others may lie
 * in either.  Each epoch but the last ends full (its reset follows an
 * append that found it full, with no reset in between), so that there are
 * OZ_APPENDS / MT_SLOTS resets and the last epoch holds the rest; its
 * blocks name appends that succeeded there, at their offsets.
 */
#define OZ_APPENDS 2000
#define OZ_QD 8
#define OZ_ZONE 3

typedef struct OZReq {
    int64_t offset;
    int ret;
    int thread;
    int resets_before;      /* resets done when it was submitted */
    int resets_after;       /* resets started when it completed */
} OZReq;

typedef struct OneZone {
    BlockBackend *blk;
    OZReq reqs[OZ_APPENDS];
    int next;               /* the next request to submit */
    int resets_started;
    int resets_done;
    int reset_ret;          /* the first failure of a reset */
    int full[MT_THREADS];   /* appends that found the zone full */
    int pending;            /* coroutines still running */
} OneZone;

typedef struct OZWorker {
    OneZone *oz;
    int thread;
} OZWorker;

static void coroutine_fn oz_worker(void *opaque)
{
    OZWorker *w = opaque;
    OneZone *oz = w->oz;
    uint64_t *buf = g_malloc(MT_BLK);
    QEMUIOVector qiov;
    int i;

    qemu_iovec_init_buf(&qiov, buf, MT_BLK);
    while ((i = qatomic_fetch_inc(&oz->next)) < OZ_APPENDS) {
        OZReq *r = &oz->reqs[i];
        int epoch;

        fill_id(buf, i);
        r->thread = w->thread;
        for (;;) {
            epoch = qatomic_read(&oz->resets_done);
            r->resets_before = epoch;
            r->offset = OZ_ZONE * ZONE;
            r->ret = blk_co_zone_append(oz->blk, &r->offset, &qiov, 0);
            r->resets_after = qatomic_read(&oz->resets_started);
            /* Far more resets than the zone can take: give up */
            if (!is_full_error(r->ret) ||
                r->resets_after > 2 * OZ_APPENDS / MT_SLOTS) {
                break;
            }
            qatomic_inc(&oz->full[w->thread]);
            /* Full in this epoch: one reset an epoch, by whoever sees it */
            if (r->resets_after == epoch &&
                qatomic_cmpxchg(&oz->resets_started, epoch,
                                epoch + 1) == epoch) {
                int ret = blk_co_zone_mgmt(oz->blk, BLK_ZO_RESET,
                                           OZ_ZONE * ZONE, ZONE);

                if (ret < 0) {
                    qatomic_cmpxchg(&oz->reset_ret, 0, ret);
                }
                qatomic_inc(&oz->resets_done);
            } else {
                qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, 50 * SCALE_US);
            }
        }
    }
    g_free(buf);
    qatomic_dec(&oz->pending);
}

static void test_iothreads_one_zone(void)
{
    const int64_t zstart = OZ_ZONE * ZONE;
    OneZone *oz = g_new0(OneZone, 1);
    OZWorker workers[MT_THREADS * OZ_QD];
    g_autofree uint64_t *zbuf = g_malloc(ZONE);
    g_autofree int *owner = NULL;
    int ok[MT_THREADS] = { 0 };
    BlockZoneDescriptor desc;
    int64_t nr_blocks, b;
    int epochs, i;
    MTEnv e;

    mt_setup(&e, "");
    oz->blk = e.blk;
    oz->pending = ARRAY_SIZE(workers);
    for (i = 0; i < ARRAY_SIZE(workers); i++) {
        workers[i] = (OZWorker) { .oz = oz, .thread = i % MT_THREADS };
        mt_start(&e, i % MT_THREADS, oz_worker, &workers[i]);
    }
    mt_wait(&oz->pending);
    mt_teardown(&e);

    epochs = oz->resets_done;
    g_test_message("%d resets; appends that found the zone full: %d from "
                   "iothread 0, %d from iothread 1", epochs, oz->full[0],
                   oz->full[1]);
    g_assert_cmpint(oz->reset_ret, ==, 0);
    g_assert_cmpint(oz->resets_started, ==, epochs);

    /* Who got each block of each epoch, of the appends sure of theirs */
    owner = g_new(int, (epochs + 1) * MT_SLOTS);
    for (i = 0; i < (epochs + 1) * MT_SLOTS; i++) {
        owner[i] = -1;
    }
    for (i = 0; i < OZ_APPENDS; i++) {
        OZReq *r = &oz->reqs[i];
        int *o;

        if (r->ret < 0) {
            g_test_message("append %d failed: %s", i, strerror(-r->ret));
        }
        g_assert_cmpint(r->ret, ==, 0);
        g_assert_cmpint(r->offset, >=, zstart);
        g_assert_cmpint(r->offset, <=, zstart + ZONE - MT_BLK);
        g_assert_cmpint(r->offset % MT_BLK, ==, 0);
        ok[r->thread]++;
        if (r->resets_before != r->resets_after) {
            continue;
        }
        o = &owner[r->resets_before * MT_SLOTS + (r->offset - zstart) / MT_BLK];
        g_assert_cmpint(*o, ==, -1);
        *o = i;
    }
    g_test_message("appends from iothread 0: %d, from iothread 1: %d",
                   ok[0], ok[1]);
    /* Every epoch but the last is full, the last holds the rest */
    g_assert_cmpint(epochs, ==, OZ_APPENDS / MT_SLOTS);
    report_zone(e.blk, OZ_ZONE, &desc);
    g_assert_cmpint(desc.wp, ==, zstart + OZ_APPENDS % MT_SLOTS * MT_BLK);
    g_assert_cmpint(desc.state, ==, BLK_ZS_IOPEN);
    nr_blocks = OZ_APPENDS % MT_SLOTS;

    /* The last epoch: each block is an append that succeeded there */
    g_assert_cmpint(blk_pread(e.blk, zstart, ZONE, zbuf, 0), ==, 0);
    for (b = 0; b < MT_SLOTS; b++) {
        int64_t id = block_id(zbuf + b * MT_BLK / 8);

        if (b >= nr_blocks) {
            /* Past the write pointer: zeros */
            g_assert(buffer_is_zero(zbuf + b * MT_BLK / 8, MT_BLK));
            continue;
        }
        g_assert_cmpint(id, >=, 0);
        g_assert_cmpint(id, <, OZ_APPENDS);
        g_assert_cmpint(oz->reqs[id].ret, ==, 0);
        g_assert_cmpint(oz->reqs[id].offset, ==, zstart + b * MT_BLK);
        g_assert_cmpint(oz->reqs[id].resets_after, ==, epochs);
    }
    /* ...and each append sure to be in it is there */
    for (i = 0; i < OZ_APPENDS; i++) {
        OZReq *r = &oz->reqs[i];

        if (r->ret == 0 && r->resets_before == epochs) {
            b = (r->offset - zstart) / MT_BLK;
            g_assert_cmpint(b, <, nr_blocks);
            g_assert_cmpint(block_id(zbuf + b * MT_BLK / 8), ==, i);
        }
    }
    free_image(e.blk, e.path);
    g_free(oz);
}

/*
 * iothreads-many-zones: with at most 4 open and 8 active zones, each
 * iothread has a writer coroutine for each of 6 zones of its own, which
 * writes at the write pointer it tracks until the zone is full (some open
 * and close their zone explicitly now and then, some finish it half way,
 * all flush), and MZ_APPEND_QD coroutines that append 4 KiB blocks to 4
 * zones both iothreads share, closing them now and then, until they are
 * full.  A request refused for the open or active limit is retried a
 * little later.  Afterwards, and after the image is opened again, every
 * zone is full and holds what was written to it.
 */
#define MZ_WRITERS 12
#define MZ_APPEND_ZONES 4
#define MZ_FIRST_APPEND_ZONE (1 + MZ_WRITERS)
#define MZ_APPENDS (MZ_APPEND_ZONES * MT_SLOTS)
#define MZ_APPEND_QD 4
#define MZ_LIMITS ",zone.conventional_zones=1,zone.max_open_zones=4," \
                  "zone.max_active_zones=8"

typedef struct ManyZones ManyZones;

typedef struct MZWriter {
    ManyZones *mz;
    uint32_t zone;
    int64_t written;        /* where the data it wrote ends */
    bool finished;          /* zone finish, not filled */
} MZWriter;

struct ManyZones {
    BlockBackend *blk;
    MZWriter writers[MZ_WRITERS];
    int64_t app_offset[MZ_APPENDS];
    int app_ret[MZ_APPENDS];
    int next_append;
    int errors;             /* unexpected failures */
    int retries;            /* requests retried for the zone limits */
    bool stop;              /* after an unexpected failure */
    int pending;            /* coroutines still running */
};

/* A failure no request of this test should get: everyone stops */
static void mz_failed(ManyZones *mz, const char *what, int64_t offset,
                      int ret)
{
    g_test_message("%s at %" PRId64 " failed: %s", what, offset,
                   strerror(-ret));
    qatomic_inc(&mz->errors);
    qatomic_set(&mz->stop, true);
}

/* Refused for the zone limits: wait a little before the retry */
static bool coroutine_fn mz_retry(ManyZones *mz, int ret)
{
    if (!is_resource_error(ret) || qatomic_read(&mz->stop)) {
        return false;
    }
    qatomic_inc(&mz->retries);
    qemu_co_sleep_ns(QEMU_CLOCK_REALTIME, 200 * SCALE_US);
    return true;
}

static void coroutine_fn mz_writer(void *opaque)
{
    MZWriter *w = opaque;
    ManyZones *mz = w->mz;
    const int64_t zstart = (int64_t)w->zone * ZONE, zend = zstart + ZONE;
    bool explicit = w->zone % 3 == 0, finish = w->zone % 4 == 0;
    bool is_open = false;
    uint64_t *buf = g_malloc(16 * MT_BLK);
    int64_t wp = zstart;
    QEMUIOVector qiov;
    int n = 0, ret;

    while (wp < zend && !qatomic_read(&mz->stop)) {
        int64_t len = MIN(MT_BLK * (1 + (w->zone + n) % 16), zend - wp);

        if (finish && wp >= zstart + ZONE / 2) {
            ret = blk_co_zone_mgmt(mz->blk, BLK_ZO_FINISH, zstart, ZONE);
            if (ret < 0) {
                mz_failed(mz, "zone finish", zstart, ret);
            }
            w->finished = true;
            break;
        }
        if (explicit && !is_open) {
            ret = blk_co_zone_mgmt(mz->blk, BLK_ZO_OPEN, zstart, ZONE);
            if (ret == 0) {
                is_open = true;
            } else if (!is_resource_error(ret)) {
                mz_failed(mz, "zone open", zstart, ret);
                break;
            }
            /* At the limits: this write opens it implicitly, or waits */
        }
        fill_offsets(buf, wp, len);
        qemu_iovec_init_buf(&qiov, buf, len);
        ret = blk_co_pwritev(mz->blk, wp, len, &qiov, 0);
        if (mz_retry(mz, ret)) {
            continue;
        }
        if (ret < 0) {
            mz_failed(mz, "write", wp, ret);
            break;
        }
        wp += len;
        n++;
        if (n % 5 == 0) {
            ret = blk_co_flush(mz->blk);
            if (ret < 0) {
                mz_failed(mz, "flush", wp, ret);
                break;
            }
        }
        if (is_open && n % 8 == 0 && wp < zend) {
            ret = blk_co_zone_mgmt(mz->blk, BLK_ZO_CLOSE, zstart, ZONE);
            if (ret < 0) {
                mz_failed(mz, "zone close", zstart, ret);
                break;
            }
            is_open = false;
        }
    }
    w->written = wp;
    g_free(buf);
    qatomic_dec(&mz->pending);
}

static void coroutine_fn mz_appender(void *opaque)
{
    ManyZones *mz = opaque;
    uint64_t *buf = g_malloc(MT_BLK);
    QEMUIOVector qiov;
    int i, ret;

    qemu_iovec_init_buf(&qiov, buf, MT_BLK);
    while (!qatomic_read(&mz->stop) &&
           (i = qatomic_fetch_inc(&mz->next_append)) < MZ_APPENDS) {
        int64_t zstart = (int64_t)(MZ_FIRST_APPEND_ZONE +
                                   i % MZ_APPEND_ZONES) * ZONE;

        fill_id(buf, i);
        do {
            mz->app_offset[i] = zstart;
            ret = blk_co_zone_append(mz->blk, &mz->app_offset[i], &qiov, 0);
        } while (mz_retry(mz, ret));
        mz->app_ret[i] = ret;
        if (ret < 0) {
            mz_failed(mz, "zone append", zstart, ret);
            break;
        }
        if (i % 64 == 63) {
            ret = blk_co_zone_mgmt(mz->blk, BLK_ZO_CLOSE, zstart, ZONE);
            if (ret < 0) {
                mz_failed(mz, "zone close", zstart, ret);
                break;
            }
        }
        if (i % 100 == 99) {
            ret = blk_co_flush(mz->blk);
            if (ret < 0) {
                mz_failed(mz, "flush", zstart, ret);
                break;
            }
        }
    }
    g_free(buf);
    qatomic_dec(&mz->pending);
}

/* Every zone is full; what was written and appended is there */
static void mz_check(ManyZones *mz, BlockBackend *blk)
{
    g_autofree uint64_t *zbuf = g_malloc(ZONE);
    g_autofree int *owner = g_new(int, MZ_APPEND_ZONES * MT_SLOTS);
    BlockZoneDescriptor desc;
    int64_t i;
    int z;

    for (z = 0; z < MZ_WRITERS; z++) {
        MZWriter *w = &mz->writers[z];
        int64_t zstart = (int64_t)w->zone * ZONE;

        report_zone(blk, w->zone, &desc);
        g_assert_cmpint(desc.state, ==, BLK_ZS_FULL);
        g_assert_cmpint(desc.wp, ==, zstart + ZONE);
        if (w->finished) {
            g_assert_cmpint(w->written, >=, zstart + ZONE / 2);
        } else {
            g_assert_cmpint(w->written, ==, zstart + ZONE);
        }
        g_assert_cmpint(blk_pread(blk, zstart, ZONE, zbuf, 0), ==, 0);
        for (i = 0; i < ZONE / 8; i++) {
            uint64_t want = zstart + i * 8 < w->written ?
                            OFS_MAGIC | (zstart + i * 8) : 0;

            g_assert_cmphex(zbuf[i], ==, want);
        }
    }

    for (i = 0; i < MZ_APPEND_ZONES * MT_SLOTS; i++) {
        owner[i] = -1;
    }
    for (i = 0; i < MZ_APPENDS; i++) {
        uint32_t zone = MZ_FIRST_APPEND_ZONE + i % MZ_APPEND_ZONES;
        int64_t rel = mz->app_offset[i] - (int64_t)zone * ZONE;
        int *o;

        g_assert_cmpint(mz->app_ret[i], ==, 0);
        g_assert_cmpint(rel, >=, 0);
        g_assert_cmpint(rel, <=, ZONE - MT_BLK);
        g_assert_cmpint(rel % MT_BLK, ==, 0);
        o = &owner[(zone - MZ_FIRST_APPEND_ZONE) * MT_SLOTS + rel / MT_BLK];
        g_assert_cmpint(*o, ==, -1);
        *o = i;
    }
    for (z = 0; z < MZ_APPEND_ZONES; z++) {
        int64_t zstart = (int64_t)(MZ_FIRST_APPEND_ZONE + z) * ZONE;

        report_zone(blk, MZ_FIRST_APPEND_ZONE + z, &desc);
        g_assert_cmpint(desc.state, ==, BLK_ZS_FULL);
        g_assert_cmpint(desc.wp, ==, zstart + ZONE);
        g_assert_cmpint(blk_pread(blk, zstart, ZONE, zbuf, 0), ==, 0);
        for (i = 0; i < MT_SLOTS; i++) {
            g_assert_cmpint(block_id(zbuf + i * MT_BLK / 8), ==,
                            owner[z * MT_SLOTS + i]);
        }
    }
}

static void test_iothreads_many_zones(void)
{
    ManyZones *mz = g_new0(ManyZones, 1);
    QDict *qdict;
    MTEnv e;
    int i;

    mt_setup(&e, MZ_LIMITS);
    mz->blk = e.blk;
    mz->pending = MZ_WRITERS + MT_THREADS * MZ_APPEND_QD;
    for (i = 0; i < MZ_APPENDS; i++) {
        mz->app_ret[i] = 1;     /* not submitted */
    }
    for (i = 0; i < MZ_WRITERS; i++) {
        mz->writers[i] = (MZWriter) { .mz = mz, .zone = 1 + i };
        mt_start(&e, i * MT_THREADS / MZ_WRITERS, mz_writer,
                 &mz->writers[i]);
    }
    for (i = 0; i < MT_THREADS * MZ_APPEND_QD; i++) {
        mt_start(&e, i % MT_THREADS, mz_appender, mz);
    }
    mt_wait(&mz->pending);
    mt_teardown(&e);
    g_test_message("%d requests retried for the zone limits", mz->retries);
    g_assert_cmpint(mz->errors, ==, 0);
    mz_check(mz, e.blk);

    /* The write pointers are in the image */
    blk_unref(e.blk);
    qdict = qdict_new();
    qdict_put_str(qdict, "driver", "qcow2");
    e.blk = blk_new_open(e.path, NULL, qdict, BDRV_O_RDWR, &error_abort);
    mz_check(mz, e.blk);
    free_image(e.blk, e.path);
    g_free(mz);
}

/*
 * -m perf: zone appends against writes to a plain image, queue depth 32,
 * 4 KiB
 */
static double run_qd32(BlockBackend *blk, bool append, int total)
{
    Req reqs[QD];
    uint8_t *buf = g_malloc0(4096);
    int64_t next = 0, start = g_get_monotonic_time();
    int issued = 0, i;

    for (i = 0; i < QD; i++) {
        reqs[i].done = true;
        reqs[i].ret = 0;
        qemu_iovec_init_buf(&reqs[i].qiov, buf, 4096);
    }
    while (issued < total) {
        for (i = 0; i < QD && issued < total; i++) {
            if (!reqs[i].done) {
                continue;
            }
            g_assert_cmpint(reqs[i].ret, ==, 0);
            reqs[i].done = false;
            if (append) {
                reqs[i].offset = QEMU_ALIGN_DOWN(next, ZONE);
                blk_aio_zone_append(blk, &reqs[i].offset, &reqs[i].qiov, 0,
                                    req_cb, &reqs[i]);
            } else {
                blk_aio_pwritev(blk, next, &reqs[i].qiov, 0, req_cb,
                                &reqs[i]);
            }
            next += 4096;
            issued++;
        }
        main_loop_wait(false);
    }
    wait_all(reqs, QD);
    g_free(buf);
    return (double)total * 4096 / MiB /
           ((g_get_monotonic_time() - start) / 1e6);
}

static void test_perf_append(void)
{
    const int total = DISK / 4096;
    char *path;
    BlockBackend *blk;
    double w, a;

    if (!g_test_perf()) {
        g_test_skip("a benchmark: run with -m perf");
        return;
    }
    blk = new_zoned_image(&path, NULL);
    w = run_qd32(blk, false, total);
    free_image(blk, path);
    blk = new_zoned_image(&path, "");
    a = run_qd32(blk, true, total);
    free_image(blk, path);
    printf("zone append QD32 4K: %.1f MiB/s, write QD32 4K: %.1f MiB/s, "
           "ratio %.3f\n", a, w, a / w);
}

/*
 * unstable-buffer: a guest may change a buffer while its write is in
 * flight, and the disk then holds something else than what the write
 * hashed when it started.  A write to zone 1 is held by blkdebug on its
 * way to the file, its buffer changes, it completes, the image is flushed
 * and copied as a power cut would leave it: the copy must open with the
 * write pointer after the write (its entry must not carry the CRC of the
 * first contents), and read what reached the disk.  With @fail_flush,
 * the first flush fails at the image file and a second one succeeds: the
 * failure must not forget that the zone's CRC does not match its data.
 */
static void do_unstable_buffer(bool fail_flush)
{
    char *path = g_strdup_printf("%s/qcow2-zoned-io-XXXXXX", g_get_tmp_dir());
    g_autofree char *zone_opts =
        g_strdup("zone.mode=host-managed,zone.size=1M");
    g_autofree char *copy = NULL;
    g_autofree char *contents = NULL;
    g_autofree uint8_t *back = g_malloc(64 * KiB);
    Req r = { .offset = ZONE, .len = 64 * KiB };
    QDict *opts = qdict_new();
    BlockZoneDescriptor desc;
    BlockBackend *blk, *crashed;
    BlockDriverState *bs;
    gsize len;
    int fd;

    fd = g_mkstemp(path);
    g_assert(fd >= 0);
    close(fd);
    copy = g_strdup_printf("%s.crash", path);
    bdrv_img_create(path, "qcow2", NULL, NULL, zone_opts, DISK, 0, true,
                    &error_abort);
    qdict_put_str(opts, "driver", "qcow2");
    qdict_put_str(opts, "file.driver", "blkdebug");
    qdict_put_str(opts, "file.image.driver", "file");
    qdict_put_str(opts, "file.image.filename", path);
    if (fail_flush) {
        qdict_put_str(opts, "file.inject-error.0.event", "flush_to_os");
        qdict_put_str(opts, "file.inject-error.0.iotype", "flush");
        qdict_put_str(opts, "file.inject-error.0.errno", "5");
        qdict_put_str(opts, "file.inject-error.0.once", "on");
    }
    blk = blk_new_open(NULL, NULL, opts, BDRV_O_RDWR, &error_abort);
    bs = blk_bs(blk);

    r.buf = g_malloc(r.len);
    memset(r.buf, 0x11, r.len);
    qemu_iovec_init_buf(&r.qiov, r.buf, r.len);
    g_assert_cmpint(bdrv_debug_breakpoint(bs, "write_aio", "data"), ==, 0);
    blk_aio_pwritev(blk, r.offset, &r.qiov, 0, req_cb, &r);
    while (!bdrv_debug_is_suspended(bs, "data")) {
        main_loop_wait(false);
    }
    memset(r.buf, 0x22, r.len);
    g_assert_cmpint(bdrv_debug_resume(bs, "data"), ==, 0);
    wait_all(&r, 1);
    g_assert_cmpint(r.ret, ==, 0);
    if (fail_flush) {
        g_assert_cmpint(blk_flush(blk), ==, -EIO);
    }
    g_assert_cmpint(blk_flush(blk), ==, 0);

    g_assert(g_file_get_contents(path, &contents, &len, NULL));
    g_assert(g_file_set_contents(copy, contents, len, NULL));
    opts = qdict_new();
    qdict_put_str(opts, "driver", "qcow2");
    crashed = blk_new_open(copy, NULL, opts, 0, &error_abort);
    report_zone(crashed, 1, &desc);
    g_assert_cmpint(desc.wp, ==, ZONE + r.len);
    g_assert_cmpint(blk_pread(crashed, ZONE, r.len, back, 0), ==, 0);
    g_assert(!memcmp(back, r.buf, r.len));
    blk_unref(crashed);
    unlink(copy);
    g_free(r.buf);
    free_image(blk, path);
}

static void test_unstable_buffer(void)
{
    do_unstable_buffer(false);
}

static void test_unstable_buffer_failed_flush(void)
{
    do_unstable_buffer(true);
}

/*
 * A zoned filter that takes zone appends as file-posix does: with no
 * flags (it asserts so).  It counts the flushes that reach it.
 */
static int strict_flushes;

static int strict_open(BlockDriverState *bs, QDict *options, int flags,
                       Error **errp)
{
    return bdrv_open_file_child(NULL, options, "file", bs, errp);
}

static void strict_refresh_limits(BlockDriverState *bs, Error **errp)
{
    BlockLimits *f = &bs->file->bs->bl;

    bs->bl.zoned = f->zoned;
    bs->bl.zone_size = f->zone_size;
    bs->bl.nr_zones = f->nr_zones;
    bs->bl.max_append_sectors = f->max_append_sectors;
    bs->bl.write_granularity = f->write_granularity;
    bs->wps = bs->file->bs->wps;
}

static int coroutine_fn GRAPH_RDLOCK
strict_zone_append(BlockDriverState *bs, int64_t *offset, QEMUIOVector *qiov,
                   BdrvRequestFlags flags)
{
    g_assert_cmpint(flags, ==, 0);
    return bdrv_co_zone_append(bs->file->bs, offset, qiov, 0);
}

static int coroutine_fn GRAPH_RDLOCK strict_flush(BlockDriverState *bs)
{
    strict_flushes++;
    return bdrv_co_flush(bs->file->bs);
}

static BlockDriver bdrv_zone_strict = {
    .format_name            = "zone-strict",
    .instance_size          = 1,
    .bdrv_open              = strict_open,
    .bdrv_child_perm        = bdrv_default_perms,
    .bdrv_refresh_limits    = strict_refresh_limits,
    .bdrv_co_zone_append    = strict_zone_append,
    .bdrv_co_flush_to_os    = strict_flush,
};

/*
 * In writethrough mode a zone append is durable when it completes: the
 * block layer flushes after it rather than pass a FUA flag that a driver
 * such as file-posix does not take
 */
static void test_append_writethrough(void)
{
    g_autofree char *path = NULL;
    BlockBackend *img = new_zoned_image(&path, "");
    QDict *opts = qdict_new();
    BlockBackend *blk;
    Req r = { .offset = ZONE, .len = 4096 };
    int before;

    blk_unref(img);
    qdict_put_str(opts, "driver", "zone-strict");
    qdict_put_str(opts, "file.driver", "qcow2");
    qdict_put_str(opts, "file.file.driver", "file");
    qdict_put_str(opts, "file.file.filename", path);
    blk = blk_new_open(NULL, NULL, opts, BDRV_O_RDWR, &error_abort);
    blk_set_enable_write_cache(blk, false);
    r.buf = g_malloc(r.len);
    memset(r.buf, 0x5a, r.len);
    qemu_iovec_init_buf(&r.qiov, r.buf, r.len);
    before = strict_flushes;
    blk_aio_zone_append(blk, &r.offset, &r.qiov, 0, req_cb, &r);
    wait_all(&r, 1);
    g_assert_cmpint(r.ret, ==, 0);
    g_assert_cmpint(r.offset, ==, ZONE);
    g_assert_cmpint(strict_flushes, ==, before + 1);
    g_free(r.buf);
    free_image(blk, g_steal_pointer(&path));
}

int main(int argc, char **argv)
{
    bdrv_init();
    bdrv_register(&bdrv_zone_strict);
    qemu_init_main_loop(&error_abort);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qcow2-zoned-io/append-one-zone", test_append_one_zone);
    g_test_add_func("/qcow2-zoned-io/append-many-zones",
                    test_append_many_zones);
    g_test_add_func("/qcow2-zoned-io/append-refused", test_append_refused);
    g_test_add_func("/qcow2-zoned-io/reset-waits-for-appends",
                    test_reset_waits_for_appends);
    g_test_add_func("/qcow2-zoned-io/iothreads-one-zone",
                    test_iothreads_one_zone);
    g_test_add_func("/qcow2-zoned-io/iothreads-many-zones",
                    test_iothreads_many_zones);
    g_test_add_func("/qcow2-zoned-io/unstable-buffer", test_unstable_buffer);
    g_test_add_func("/qcow2-zoned-io/unstable-buffer-failed-flush",
                    test_unstable_buffer_failed_flush);
    g_test_add_func("/qcow2-zoned-io/append-writethrough",
                    test_append_writethrough);
    g_test_add_func("/qcow2-zoned-io/perf-append", test_perf_append);
    return g_test_run();
}
