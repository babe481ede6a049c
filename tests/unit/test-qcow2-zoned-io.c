/*
 * Zoned qcow2 images through the block layer: zone append in flight
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * 32 zone appends in flight at once, to one zone and to several, must get
 * distinct, non-overlapping offsets that fill their zones from the start,
 * and the data read back must be what each append wrote.  With -m perf,
 * zone appends at queue depth 32 are timed against plain writes.
 */

#include "qemu/osdep.h"
#include "block/block.h"
#include "system/block-backend.h"
#include "qapi/error.h"
#include "qemu/main-loop.h"
#include "qemu/units.h"
#include "qobject/qdict.h"

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

int main(int argc, char **argv)
{
    bdrv_init();
    qemu_init_main_loop(&error_abort);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qcow2-zoned-io/append-one-zone", test_append_one_zone);
    g_test_add_func("/qcow2-zoned-io/append-many-zones",
                    test_append_many_zones);
    g_test_add_func("/qcow2-zoned-io/append-refused", test_append_refused);
    g_test_add_func("/qcow2-zoned-io/reset-waits-for-appends",
                    test_reset_waits_for_appends);
    g_test_add_func("/qcow2-zoned-io/perf-append", test_perf_append);
    return g_test_run();
}
