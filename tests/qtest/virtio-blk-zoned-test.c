/*
 * QTest testcase for virtio-blk on a zoned qcow2 image
 *
 * A standalone virtio-blk driver (libqos virtio-pci, one virtqueue,
 * polled) sends what a Linux guest would not: several requests in one
 * kick, which virtio-blk may merge, zone appends of part of a logical
 * block, and zone commands whose backend fails on I/O.  Each case checks
 * the status of every request, and the zone's write pointer from a zone
 * report.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "libqtest.h"
#include "libqos/libqos-pc.h"
#include "libqos/virtio-pci.h"
#include "libqos/virtio.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "standard-headers/linux/virtio_blk.h"
#include "standard-headers/linux/virtio_config.h"
#include "standard-headers/linux/virtio_ring.h"

/* The image: one conventional zone, then sequential zones of 1M, 768K usable */
#define ZONE_SIZE       (1 * MiB)
#define ZONE_CAP        (768 * KiB)
#define NR_ZONES        8
#define ZONE_SECTORS    (ZONE_SIZE / 512)
#define ZSEC(z)         ((uint64_t)(z) * ZONE_SECTORS)
#define TIMEOUT_US      (30 * 1000 * 1000)
#define MAX_REQS        4

/* The zoned header extension of qcow2, and where its table offset is */
#define QCOW2_EXT_ZONED         0x7a6264
#define ZONED_EXT_TABLE_OFFSET  40

typedef struct VDev {
    char *img;
    QOSState *qs;
    QTestState *qts;
    QVirtioPCIDevice *pdev;
    QVirtioDevice *vdev;
    QVirtQueue *vq;
} VDev;

/* A request: out data that the device reads, in data that it writes */
typedef struct VReq {
    uint32_t type;
    uint64_t sector;
    const void *out;
    size_t out_len;
    size_t in_len;
    /* Filled in when it completes */
    uint8_t status;
    uint8_t *in;
    /* The request in guest memory: header, out, in, status */
    uint64_t addr;
    uint32_t head;
    bool done;
} VReq;

/*** Images and QEMU ***/

static void run_qemu_img(const char *const *args)
{
    const char *qemu_img = g_getenv("QTEST_QEMU_IMG");
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autofree char *err = NULL;
    GError *error = NULL;
    int status;

    g_assert(qemu_img);
    g_ptr_array_add(argv, (char *)qemu_img);
    for (; *args; args++) {
        g_ptr_array_add(argv, (char *)*args);
    }
    g_ptr_array_add(argv, NULL);
    g_assert(g_spawn_sync(NULL, (char **)argv->pdata, NULL, 0, NULL, NULL,
                          NULL, &err, &status, &error));
    if (!g_spawn_check_exit_status(status, &error)) {
        g_error("qemu-img failed: %s\n%s", error->message, err);
    }
}

/* A zoned image, or with @plain a regular one of the same size */
static char *create_image(bool plain)
{
    const char *args[] = {
        "create", "-q", "-f", "qcow2", "-o",
        "zone.mode=host-managed,zone.size=1M,zone.capacity=768K,"
        "zone.conventional_zones=1,zone.max_append_bytes=64K",
        NULL, "8M", NULL
    };
    char *path;
    int fd;

    fd = g_file_open_tmp("qtest-virtio-blk-zoned.XXXXXX", &path, NULL);
    g_assert(fd >= 0);
    close(fd);
    args[6] = path;
    if (plain) {
        args[5] = "cluster_size=64K";
    }
    run_qemu_img(args);
    return path;
}

/* The host offset of the write-pointer table, from the image's header */
static uint64_t wp_table_offset(const char *img)
{
    g_autofree uint8_t *buf = NULL;
    size_t len, off;

    g_assert(g_file_get_contents(img, (char **)&buf, &len, NULL));
    g_assert_cmpuint(len, >=, 104);
    off = ldl_be_p(buf + 100);  /* header_length */
    while (off + 8 <= len) {
        uint32_t magic = ldl_be_p(buf + off);
        uint32_t ext_len = ldl_be_p(buf + off + 4);

        g_assert(magic != 0);
        if (magic == QCOW2_EXT_ZONED) {
            g_assert_cmpuint(ext_len, >=, ZONED_EXT_TABLE_OFFSET + 8);
            return ldq_be_p(buf + off + 8 + ZONED_EXT_TABLE_OFFSET);
        }
        off += 8 + ROUND_UP(ext_len, 8);
    }
    g_assert_not_reached();
}

/*
 * QEMU with the image on a virtio-blk-pci device at 04.0, @file the
 * protocol node's options, @dev_opts more options of the device; the
 * device is set up with one virtqueue and no interrupts.
 */
static void vdev_start(VDev *d, const char *file, const char *dev_opts)
{
    uint64_t features;

    d->qs = qtest_pc_boot("-nodefaults "
                          "-blockdev %s,node-name=f "
                          "-blockdev qcow2,file=f,node-name=zd "
                          "-device virtio-blk-pci,id=vblk,drive=zd,"
                          "addr=04.0%s%s",
                          file, dev_opts ? "," : "", dev_opts ?: "");
    d->qts = d->qs->qts;
    d->pdev = virtio_pci_new(d->qs->pcibus,
                             &(QPCIAddress) { .devfn = QPCI_DEVFN(4, 0) });
    g_assert(d->pdev);
    d->vdev = &d->pdev->vdev;
    g_assert_cmpint(d->vdev->device_type, ==, VIRTIO_ID_BLOCK);
    qvirtio_pci_device_enable(d->pdev);
    qvirtio_start_device(d->vdev);

    features = qvirtio_get_features(d->vdev);
    features &= ~(QVIRTIO_F_BAD_FEATURE |
                  (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
                  (1ull << VIRTIO_RING_F_EVENT_IDX));
    qvirtio_set_features(d->vdev, features);
    d->vq = qvirtqueue_setup(d->vdev, &d->qs->alloc, 0);
    qvirtio_set_driver_ok(d->vdev);
}

static void vdev_stop(VDev *d)
{
    /* QEMU must have survived everything: it still answers */
    g_assert(qtest_probe_child(d->qts));
    qvirtqueue_cleanup(d->vdev->bus, d->vq, &d->qs->alloc);
    qvirtio_pci_device_disable(d->pdev);
    g_free(d->pdev->pdev);
    g_free(d->pdev);
    qtest_shutdown(d->qs);
}

static void vdev_start_image(VDev *d, const char *dev_opts)
{
    g_autofree char *file = NULL;

    d->img = create_image(false);
    file = g_strdup_printf("file,filename=%s", d->img);
    vdev_start(d, file, dev_opts);
    g_assert(qvirtio_get_features(d->vdev) & (1ull << VIRTIO_BLK_F_ZONED));
}

static void vdev_free(VDev *d)
{
    unlink(d->img);
    g_free(d->img);
}

/*** Requests ***/

static void vreq_add(VDev *d, VReq *r)
{
    struct virtio_blk_outhdr hdr = {
        .type = cpu_to_le32(r->type),
        .sector = cpu_to_le64(r->sector),
    };
    uint64_t status_addr;
    uint8_t status = 0xff;

    r->addr = guest_alloc(&d->qs->alloc,
                          sizeof(hdr) + r->out_len + r->in_len + 1);
    status_addr = r->addr + sizeof(hdr) + r->out_len + r->in_len;
    qtest_memwrite(d->qts, r->addr, &hdr, sizeof(hdr));
    if (r->out_len) {
        qtest_memwrite(d->qts, r->addr + sizeof(hdr), r->out, r->out_len);
    }
    qtest_memwrite(d->qts, status_addr, &status, 1);

    r->head = qvirtqueue_add(d->qts, d->vq, r->addr, sizeof(hdr),
                             false, true);
    if (r->out_len) {
        qvirtqueue_add(d->qts, d->vq, r->addr + sizeof(hdr), r->out_len,
                       false, true);
    }
    if (r->in_len) {
        qvirtqueue_add(d->qts, d->vq, r->addr + sizeof(hdr) + r->out_len,
                       r->in_len, true, true);
    }
    qvirtqueue_add(d->qts, d->vq, status_addr, 1, true, false);
    r->done = false;
}

static void vreq_finish(VDev *d, VReq *r)
{
    uint64_t in_addr = r->addr + sizeof(struct virtio_blk_outhdr) +
                       r->out_len;

    r->status = qtest_readb(d->qts, in_addr + r->in_len);
    g_free(r->in);
    r->in = g_malloc(r->in_len + 1);
    qtest_memread(d->qts, in_addr, r->in, r->in_len);
    guest_free(&d->qs->alloc, r->addr);
    r->done = true;
}

/*
 * Put @n requests on the virtqueue and notify the device once, as a
 * driver that batches does: virtio-blk takes them in one pass, and may
 * merge the reads or writes among them.  Then wait for all of them.
 */
static void vreqs_run(VDev *d, VReq *reqs, int n)
{
    uint64_t avail = d->vq->avail;
    gint64 start = g_get_monotonic_time();
    uint16_t idx;
    int i, left = n;

    qvirtqueue_reset_pool(d->vq);
    for (i = 0; i < n; i++) {
        vreq_add(d, &reqs[i]);
    }
    /* struct vring_avail: flags, idx, ring[] (little endian on x86) */
    idx = qtest_readw(d->qts, avail + 2);
    for (i = 0; i < n; i++) {
        qtest_writew(d->qts, avail + 4 + 2 * ((idx + i) % d->vq->size),
                     reqs[i].head);
    }
    qtest_writew(d->qts, avail + 2, idx + n);
    d->vdev->bus->virtqueue_kick(d->vdev, d->vq);

    while (left) {
        uint32_t head;

        if (!qvirtqueue_get_buf(d->qts, d->vq, &head, NULL)) {
            g_assert(g_get_monotonic_time() - start <= TIMEOUT_US);
            continue;
        }
        for (i = 0; i < n; i++) {
            if (!reqs[i].done && reqs[i].head == head) {
                vreq_finish(d, &reqs[i]);
                left--;
                break;
            }
        }
        g_assert_cmpint(i, <, n);
    }
}

static uint8_t vreq_run(VDev *d, VReq *r)
{
    vreqs_run(d, r, 1);
    return r->status;
}

static void vreq_free(VReq *r)
{
    g_free(r->in);
    r->in = NULL;
}

static uint8_t vwrite(VDev *d, uint64_t sector, size_t len, uint8_t pattern)
{
    g_autofree uint8_t *buf = g_malloc(len);
    VReq r = {
        .type = VIRTIO_BLK_T_OUT, .sector = sector, .out = buf, .out_len = len,
    };

    memset(buf, pattern, len);
    vreq_run(d, &r);
    vreq_free(&r);
    return r.status;
}

/* Read @len bytes at @sector: each must be @pattern */
static void vread_check(VDev *d, uint64_t sector, size_t len, uint8_t pattern)
{
    VReq r = { .type = VIRTIO_BLK_T_IN, .sector = sector, .in_len = len };
    size_t i;

    g_assert_cmpint(vreq_run(d, &r), ==, VIRTIO_BLK_S_OK);
    for (i = 0; i < len; i++) {
        g_assert_cmphex(r.in[i], ==, pattern);
    }
    vreq_free(&r);
}

static uint8_t vzone_cmd(VDev *d, uint32_t type, uint64_t sector)
{
    VReq r = { .type = type, .sector = sector };

    return vreq_run(d, &r);
}

/* A zone append of @len bytes to the zone at @sector; *@where its sector */
static uint8_t vappend(VDev *d, uint64_t sector, size_t len, uint8_t pattern,
                       uint64_t *where)
{
    g_autofree uint8_t *buf = g_malloc(len);
    VReq r = {
        .type = VIRTIO_BLK_T_ZONE_APPEND, .sector = sector,
        .out = buf, .out_len = len, .in_len = 8,
    };

    memset(buf, pattern, len);
    vreq_run(d, &r);
    if (where) {
        *where = ldq_le_p(r.in);
    }
    vreq_free(&r);
    return r.status;
}

/* The descriptor of the zone that starts at @sector, from a zone report */
static struct virtio_blk_zone_descriptor vzone(VDev *d, uint64_t sector)
{
    struct virtio_blk_zone_report hdr;
    struct virtio_blk_zone_descriptor z;
    VReq r = {
        .type = VIRTIO_BLK_T_ZONE_REPORT, .sector = sector,
        .in_len = sizeof(hdr) + sizeof(z),
    };

    g_assert_cmpint(vreq_run(d, &r), ==, VIRTIO_BLK_S_OK);
    memcpy(&hdr, r.in, sizeof(hdr));
    memcpy(&z, r.in + sizeof(hdr), sizeof(z));
    vreq_free(&r);
    g_assert_cmpuint(le64_to_cpu(hdr.nr_zones), ==, 1);
    g_assert_cmpuint(le64_to_cpu(z.z_start), ==, sector);
    z.z_cap = le64_to_cpu(z.z_cap);
    z.z_start = le64_to_cpu(z.z_start);
    z.z_wp = le64_to_cpu(z.z_wp);
    return z;
}

static uint64_t vzone_wp(VDev *d, uint64_t sector)
{
    return vzone(d, sector).z_wp;
}

/* A counter of the device's BlockAcctStats, from query-blockstats */
static int64_t blockstat(VDev *d, const char *name)
{
    g_autoptr(QDict) resp = qtest_qmp(d->qts,
                                      "{'execute': 'query-blockstats'}");
    QListEntry *e;

    g_assert(qdict_haskey(resp, "return"));
    QLIST_FOREACH_ENTRY(qdict_get_qlist(resp, "return"), e) {
        QDict *dev = qobject_to(QDict, qlist_entry_obj(e));
        const char *qdev = qdict_get_try_str(dev, "qdev");

        if (qdev && strstr(qdev, "vblk")) {
            return qdict_get_int(qdict_get_qdict(dev, "stats"), name);
        }
    }
    g_assert_not_reached();
}

/*** Cases ***/

/*
 * A valid write and, right after it, one that runs past the zone's
 * capacity, in one kick: each is judged alone.  Merged, both failed.
 */
static void test_merge_capacity(void)
{
    g_autofree uint8_t *a = g_malloc(4 * KiB);
    g_autofree uint8_t *b = g_malloc(ZONE_CAP);
    VDev d = {};
    VReq r[2] = {
        { .type = VIRTIO_BLK_T_OUT, .sector = ZSEC(1),
          .out = a, .out_len = 4 * KiB },
        { .type = VIRTIO_BLK_T_OUT, .sector = ZSEC(1) + 8,
          .out = b, .out_len = ZONE_CAP },
    };

    vdev_start_image(&d, NULL);
    memset(a, 0xa1, 4 * KiB);
    memset(b, 0xb1, ZONE_CAP);
    vreqs_run(&d, r, 2);
    g_assert_cmpint(r[0].status, ==, VIRTIO_BLK_S_OK);
    g_assert_cmpint(r[1].status, ==, VIRTIO_BLK_S_ZONE_INVALID_CMD);
    g_assert_cmpuint(vzone_wp(&d, ZSEC(1)), ==, ZSEC(1) + 8);
    vread_check(&d, ZSEC(1), 4 * KiB, 0xa1);
    g_assert_cmpint(blockstat(&d, "wr_merged"), ==, 0);
    vreq_free(&r[0]);
    vreq_free(&r[1]);
    vdev_stop(&d);
    vdev_free(&d);
}

/*
 * Two valid 4K writes that meet at 1M, in one kick: both succeed, and
 * the data reads back.  Returns how many writes virtio-blk merged.
 */
static int64_t two_writes_at_1m(VDev *d, uint8_t seed)
{
    g_autofree uint8_t *a = g_malloc(4 * KiB);
    g_autofree uint8_t *b = g_malloc(4 * KiB);
    VReq r[2] = {
        { .type = VIRTIO_BLK_T_OUT, .sector = ZSEC(1) - 8,
          .out = a, .out_len = 4 * KiB },
        { .type = VIRTIO_BLK_T_OUT, .sector = ZSEC(1),
          .out = b, .out_len = 4 * KiB },
    };

    memset(a, seed, 4 * KiB);
    memset(b, seed + 1, 4 * KiB);
    vreqs_run(d, r, 2);
    g_assert_cmpint(r[0].status, ==, VIRTIO_BLK_S_OK);
    g_assert_cmpint(r[1].status, ==, VIRTIO_BLK_S_OK);
    vreq_free(&r[0]);
    vreq_free(&r[1]);
    vread_check(d, ZSEC(1) - 8, 4 * KiB, seed);
    vread_check(d, ZSEC(1), 4 * KiB, seed + 1);
    return blockstat(d, "wr_merged");
}

/*
 * On the zoned image the two writes meet at a zone boundary, the end of
 * the conventional zone and the start of the first sequential one:
 * merged, the write crossed into the next zone and both failed.
 */
static void test_merge_zone_boundary(void)
{
    VDev d = {};

    vdev_start_image(&d, NULL);
    g_assert_cmpint(two_writes_at_1m(&d, 0xa2), ==, 0);
    g_assert_cmpuint(vzone_wp(&d, ZSEC(1)), ==, ZSEC(1) + 8);
    vdev_stop(&d);
    vdev_free(&d);
}

/* On a regular image nothing changed: the same two writes merge */
static void test_merge_plain(void)
{
    g_autofree char *file = NULL;
    VDev d = {};

    d.img = create_image(true);
    file = g_strdup_printf("file,filename=%s", d.img);
    vdev_start(&d, file, NULL);
    g_assert(!(qvirtio_get_features(d.vdev) & (1ull << VIRTIO_BLK_F_ZONED)));
    g_assert_cmpint(two_writes_at_1m(&d, 0xa3), ==, 1);
    vdev_stop(&d);
    vdev_free(&d);
}

/*
 * Reads still merge within a zone, and not across a zone boundary; both
 * return the data.
 */
static void test_merge_reads(void)
{
    VDev d = {};
    VReq r[2] = {
        { .type = VIRTIO_BLK_T_IN, .sector = ZSEC(2), .in_len = 4 * KiB },
        { .type = VIRTIO_BLK_T_IN, .sector = ZSEC(2) + 8, .in_len = 4 * KiB },
    };
    int i;

    vdev_start_image(&d, NULL);
    g_assert_cmpint(vwrite(&d, ZSEC(1), ZONE_CAP, 0xc1), ==, VIRTIO_BLK_S_OK);
    g_assert_cmpint(vwrite(&d, ZSEC(2), 8 * KiB, 0xc2), ==, VIRTIO_BLK_S_OK);

    vreqs_run(&d, r, 2);
    for (i = 0; i < 2; i++) {
        g_assert_cmpint(r[i].status, ==, VIRTIO_BLK_S_OK);
        g_assert_cmphex(r[i].in[0], ==, 0xc2);
        g_assert_cmphex(r[i].in[4 * KiB - 1], ==, 0xc2);
        vreq_free(&r[i]);
    }
    g_assert_cmpint(blockstat(&d, "rd_merged"), ==, 1);

    /* The last 4K of zone 1 (past its capacity: zeroes) and zone 2's first */
    r[0].sector = ZSEC(2) - 8;
    r[1].sector = ZSEC(2);
    vreqs_run(&d, r, 2);
    g_assert_cmpint(r[0].status, ==, VIRTIO_BLK_S_OK);
    g_assert_cmpint(r[1].status, ==, VIRTIO_BLK_S_OK);
    g_assert_cmphex(r[0].in[0], ==, 0);
    g_assert_cmphex(r[1].in[0], ==, 0xc2);
    g_assert_cmpint(blockstat(&d, "rd_merged"), ==, 1);
    vreq_free(&r[0]);
    vreq_free(&r[1]);
    vdev_stop(&d);
    vdev_free(&d);
}

/*
 * With 4K logical blocks the config's write granularity is 4K, and an
 * append of part of a block is refused: it would leave the write pointer
 * where no write the driver may send can continue.
 */
static void test_append_granularity(void)
{
    uint64_t wg_off = offsetof(struct virtio_blk_config,
                               zoned.write_granularity);
    g_autofree char *file = NULL;
    VDev d = {};
    uint64_t where = 0;

    vdev_start_image(&d, "logical_block_size=4096,physical_block_size=4096");
    g_assert_cmpuint(qvirtio_config_readl(d.vdev, wg_off), ==, 4096);

    g_assert_cmpint(vappend(&d, ZSEC(1), 512, 0xd1, NULL), ==,
                    VIRTIO_BLK_S_ZONE_INVALID_CMD);
    g_assert_cmpint(vappend(&d, ZSEC(1), 4096 + 512, 0xd1, NULL), ==,
                    VIRTIO_BLK_S_ZONE_INVALID_CMD);
    g_assert_cmpuint(vzone(&d, ZSEC(1)).z_state, ==, VIRTIO_BLK_ZS_EMPTY);
    g_assert_cmpuint(vzone_wp(&d, ZSEC(1)), ==, ZSEC(1));

    g_assert_cmpint(vappend(&d, ZSEC(1), 4096, 0xd2, &where), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpuint(where, ==, ZSEC(1));
    g_assert_cmpint(vappend(&d, ZSEC(1), 8192, 0xd3, &where), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpuint(where, ==, ZSEC(1) + 8);
    g_assert_cmpuint(vzone_wp(&d, ZSEC(1)), ==, ZSEC(1) + 24);
    vread_check(&d, ZSEC(1), 4096, 0xd2);
    vread_check(&d, ZSEC(1) + 8, 8192, 0xd3);
    vdev_stop(&d);

    /* With 512-byte blocks, a 512-byte append is whole */
    file = g_strdup_printf("file,filename=%s", d.img);
    vdev_start(&d, file, NULL);
    g_assert_cmpuint(qvirtio_config_readl(d.vdev, wg_off), ==, 512);
    g_assert_cmpint(vappend(&d, ZSEC(1), 512, 0xd4, &where), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpuint(where, ==, ZSEC(1) + 24);
    g_assert_cmpuint(vzone_wp(&d, ZSEC(1)), ==, ZSEC(1) + 25);
    vdev_stop(&d);
    vdev_free(&d);
}

/*
 * Zone commands and appends that fail because the backend cannot write
 * (here: every write to the write-pointer table fails with EIO) are I/O
 * errors; a command that breaks a zone rule is still an invalid command.
 * Writethrough, so that an append is durable when it completes: its
 * flush writes the table.
 */
static void test_io_error_status(void)
{
    g_autofree char *file = NULL;
    VDev d = {};
    uint64_t table;

    d.img = create_image(false);
    table = wp_table_offset(d.img);
    file = g_strdup_printf("blkdebug,image.driver=file,image.filename=%s,"
                           "inject-error.0.event=pwritev,"
                           "inject-error.0.errno=5,"
                           "inject-error.0.once=off,"
                           "inject-error.0.sector=%" PRIu64,
                           d.img, table / 512);
    vdev_start(&d, file, "write-cache=off");

    g_assert_cmpint(vappend(&d, ZSEC(2), 4096, 0xe1, NULL), ==,
                    VIRTIO_BLK_S_IOERR);
    g_assert_cmpint(vzone_cmd(&d, VIRTIO_BLK_T_ZONE_FINISH, ZSEC(3)), ==,
                    VIRTIO_BLK_S_IOERR);
    /*
     * What the zones then say: the append's data was written (only its
     * flush failed), the finish was not
     */
    g_assert_cmpuint(vzone_wp(&d, ZSEC(2)), ==, ZSEC(2) + 8);
    vread_check(&d, ZSEC(2), 4096, 0xe1);
    g_assert_cmpuint(vzone(&d, ZSEC(3)).z_state, ==, VIRTIO_BLK_ZS_EMPTY);
    /* Whatever the write did, the reset of its zone fails on the table */
    vwrite(&d, ZSEC(1), 4096, 0xe2);
    g_assert_cmpint(vzone_cmd(&d, VIRTIO_BLK_T_ZONE_RESET, ZSEC(1)), ==,
                    VIRTIO_BLK_S_IOERR);

    /* Not an I/O error: a reset of the conventional zone */
    g_assert_cmpint(vzone_cmd(&d, VIRTIO_BLK_T_ZONE_RESET, ZSEC(0)), ==,
                    VIRTIO_BLK_S_ZONE_INVALID_CMD);
    vdev_stop(&d);
    vdev_free(&d);
}

/* x-blockdev-zone-fault on the device's node: @fault for zone @zone */
static void zone_fault(VDev *d, uint32_t zone, const char *fault)
{
    g_autoptr(QDict) resp = qtest_qmp(d->qts,
        "{'execute': 'x-blockdev-zone-fault', 'arguments': {"
        "'node-name': 'zd', 'offset': %" PRIu64 ", 'length': %" PRIu64 ", "
        "'fault': %s}}", (uint64_t)zone * ZONE_SIZE, (uint64_t)ZONE_SIZE,
        fault);

    g_assert(qdict_haskey(resp, "return"));
}

static bool vm_running(VDev *d)
{
    g_autoptr(QDict) resp = qtest_qmp(d->qts,
                                      "{'execute': 'query-status'}");

    return qdict_get_bool(qdict_get_qdict(resp, "return"), "running");
}

/*
 * Zones that failed while the guest runs: the report shows them READ ONLY
 * and OFFLINE; what they refuse completes with ZONE_INVALID_CMD, never
 * through werror / rerror (which would stop the VM here); a READ ONLY
 * zone still reads; Reset All passes them by
 */
static void test_failed_zones(void)
{
    static const uint32_t mgmt[] = {
        VIRTIO_BLK_T_ZONE_OPEN, VIRTIO_BLK_T_ZONE_CLOSE,
        VIRTIO_BLK_T_ZONE_FINISH, VIRTIO_BLK_T_ZONE_RESET,
    };
    VReq rd = { .type = VIRTIO_BLK_T_IN, .sector = ZSEC(3), .in_len = 4096 };
    VDev d = {};
    size_t i;

    vdev_start_image(&d, "werror=stop,rerror=stop");
    g_assert_cmpint(vwrite(&d, ZSEC(2), 4096, 0xf2), ==, VIRTIO_BLK_S_OK);
    g_assert_cmpint(vwrite(&d, ZSEC(3), 4096, 0xf3), ==, VIRTIO_BLK_S_OK);
    zone_fault(&d, 2, "read-only");
    zone_fault(&d, 3, "offline");

    g_assert_cmpuint(vzone(&d, ZSEC(2)).z_state, ==, VIRTIO_BLK_ZS_RDONLY);
    g_assert_cmpuint(vzone(&d, ZSEC(3)).z_state, ==, VIRTIO_BLK_ZS_OFFLINE);

    vread_check(&d, ZSEC(2), 4096, 0xf2);
    g_assert_cmpint(vwrite(&d, ZSEC(2) + 8, 4096, 1), ==,
                    VIRTIO_BLK_S_ZONE_INVALID_CMD);
    g_assert_cmpint(vappend(&d, ZSEC(2), 4096, 1, NULL), ==,
                    VIRTIO_BLK_S_ZONE_INVALID_CMD);
    g_assert_cmpint(vreq_run(&d, &rd), ==, VIRTIO_BLK_S_ZONE_INVALID_CMD);
    vreq_free(&rd);
    g_assert_cmpint(vwrite(&d, ZSEC(3) + 8, 4096, 1), ==,
                    VIRTIO_BLK_S_ZONE_INVALID_CMD);
    for (i = 0; i < ARRAY_SIZE(mgmt); i++) {
        g_assert_cmpint(vzone_cmd(&d, mgmt[i], ZSEC(2)), ==,
                        VIRTIO_BLK_S_ZONE_INVALID_CMD);
        g_assert_cmpint(vzone_cmd(&d, mgmt[i], ZSEC(3)), ==,
                        VIRTIO_BLK_S_ZONE_INVALID_CMD);
    }
    g_assert(vm_running(&d));

    g_assert_cmpint(vzone_cmd(&d, VIRTIO_BLK_T_ZONE_RESET_ALL, 0), ==,
                    VIRTIO_BLK_S_OK);
    g_assert_cmpuint(vzone(&d, ZSEC(2)).z_state, ==, VIRTIO_BLK_ZS_RDONLY);
    vread_check(&d, ZSEC(2), 4096, 0xf2);

    /* Sound again: the zone takes writes at its write pointer */
    zone_fault(&d, 3, "clear");
    g_assert_cmpuint(vzone(&d, ZSEC(3)).z_state, ==, VIRTIO_BLK_ZS_CLOSED);
    vread_check(&d, ZSEC(3), 4096, 0xf3);
    g_assert_cmpint(vwrite(&d, ZSEC(3) + 8, 4096, 1), ==, VIRTIO_BLK_S_OK);
    vdev_stop(&d);
    vdev_free(&d);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    if (!g_getenv("QTEST_QEMU_IMG")) {
        g_test_message("QTEST_QEMU_IMG not set");
        return 0;
    }

    qtest_add_func("virtio-blk-zoned/merge-capacity", test_merge_capacity);
    qtest_add_func("virtio-blk-zoned/merge-zone-boundary",
                   test_merge_zone_boundary);
    qtest_add_func("virtio-blk-zoned/merge-reads", test_merge_reads);
    qtest_add_func("virtio-blk-zoned/merge-plain", test_merge_plain);
    qtest_add_func("virtio-blk-zoned/append-granularity",
                   test_append_granularity);
    qtest_add_func("virtio-blk-zoned/io-error-status", test_io_error_status);
    qtest_add_func("virtio-blk-zoned/failed-zones", test_failed_zones);

    return g_test_run();
}
