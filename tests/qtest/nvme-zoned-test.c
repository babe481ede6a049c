/*
 * QTest testcase for NVMe Zoned Namespaces backed by a zoned qcow2 image
 *
 * The test drives an NVMe controller directly through libqos PCI: it
 * enables the controller with all I/O command sets, creates one I/O queue
 * pair and checks the zoned namespace's answers, status code by status
 * code, against the NVMe Zoned Namespace Command Set specification.
 *
 * Every case runs twice: on a zoned qcow2 image (the namespace's zones are
 * the image's zones) and, for comparison, on QEMU's in-memory ZNS emulation
 * of a raw file with the same geometry.  A single variant runs with e.g.
 * "-p /x86_64/nvme-zoned/raw".
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "libqtest.h"
#include "libqos/libqos-pc.h"
#include "libqos/pci-pc.h"
#include "block/nvme.h"

/* Geometry of the image: 512 byte blocks, 1M zones, 768K capacity */
#define LBA_SIZE        512
#define ZONE_LBAS       2048ULL
#define ZCAP_LBAS       1536ULL
#define NR_ZONES        16
#define NSZE            (NR_ZONES * ZONE_LBAS)
#define MAX_OPEN        2
#define MAX_ACTIVE      3
#define ZASL            4   /* 64K max append / 4K pages = 2^4 */
#define ZSLBA(z)        ((uint64_t)(z) * ZONE_LBAS)

#define PAGE_SIZE_NVME  4096
#define MDTS_BYTES      (PAGE_SIZE_NVME << 7)   /* nvme's default mdts=7 */
#define ZASL_BYTES      (PAGE_SIZE_NVME << ZASL)
#define BUF_SIZE        MDTS_BYTES

#define ADMIN_QSIZE     8
#define IO_QSIZE        32
#define NSID            1
#define CMD_TIMEOUT_S   10

/* Zone Management Send: cdw13 */
#define ZSA_SELECT_ALL  (1 << 8)

/* Zone states as a descriptor's ZS field reports them, in bits 7:4 */
#define ZS_EMPTY        NVME_ZONE_STATE_EMPTY
#define ZS_IOPEN        NVME_ZONE_STATE_IMPLICITLY_OPEN
#define ZS_EOPEN        NVME_ZONE_STATE_EXPLICITLY_OPEN
#define ZS_CLOSED       NVME_ZONE_STATE_CLOSED
#define ZS_RDONLY       NVME_ZONE_STATE_READ_ONLY
#define ZS_FULL         NVME_ZONE_STATE_FULL
#define ZS_OFFLINE      NVME_ZONE_STATE_OFFLINE

/* Expected statuses: the CQE status field without its phase bit */
#define ST_OK           NVME_SUCCESS
#define ST_INVAL        (NVME_INVALID_FIELD | NVME_DNR)
#define ST_LBA_RANGE    (NVME_LBA_RANGE | NVME_DNR)
#define ST_BOUNDARY     (NVME_ZONE_BOUNDARY_ERROR | NVME_DNR)
#define ST_FULL         (NVME_ZONE_FULL | NVME_DNR)
#define ST_INVAL_WRITE  (NVME_ZONE_INVALID_WRITE | NVME_DNR)
#define ST_TOO_ACTIVE   (NVME_ZONE_TOO_MANY_ACTIVE | NVME_DNR)
#define ST_TOO_OPEN     (NVME_ZONE_TOO_MANY_OPEN | NVME_DNR)
#define ST_INVAL_TRANS  (NVME_ZONE_INVAL_TRANSITION | NVME_DNR)
#define ST_ZONE_RO      (NVME_ZONE_READ_ONLY | NVME_DNR)
#define ST_ZONE_OFFLINE (NVME_ZONE_OFFLINE | NVME_DNR)

typedef struct ZVariant {
    const char *name;
    bool qcow2;
} ZVariant;

static const ZVariant variant_raw = { "raw", false };
static const ZVariant variant_qcow2 = { "qcow2", true };

typedef struct ZQueue {
    uint64_t addr;
    uint16_t size;
    uint16_t idx;       /* tail of a submission, head of a completion queue */
    bool phase;         /* phase tag a new completion queue entry carries */
} ZQueue;

typedef struct ZDev {
    const ZVariant *v;
    char *img;
    char *extra;        /* more QEMU arguments, or NULL */
    uint32_t nsid;      /* of I/O commands */
    QOSState *qs;
    QTestState *qts;
    QPCIDevice *dev;
    QPCIBar bar;
    uint32_t dstrd;
    ZQueue asq, acq, sq, cq;
    uint16_t cid;
    uint64_t buf;       /* BUF_SIZE bytes of data buffer */
    uint64_t prp_list;  /* one page */
} ZDev;

typedef struct ZReport {
    uint64_t nr_zones;
    int ndesc;
    NvmeZoneDescr d[NR_ZONES];
} ZReport;

/*** Images and QEMU ***/

static void run_qemu_img(const char *const *args)
{
    const char *qemu_img = g_getenv("QTEST_QEMU_IMG");
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autofree char *out = NULL;
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
                          &out, &err, &status, &error));
    if (!g_spawn_check_exit_status(status, &error)) {
        fprintf(stderr, "qemu-img failed: %s\n%s", error->message, err);
        g_assert_not_reached();
    }
}

/* A new zoned qcow2 image of @size, created with options @opts */
static char *create_zoned_image(const char *opts, const char *size)
{
    char *path = NULL;
    int fd = g_file_open_tmp("qtest-nvme-zoned.XXXXXX", &path, NULL);
    const char *args[] = {
        "create", "-q", "-f", "qcow2", "-o", opts, path, size, NULL
    };

    g_assert(fd >= 0);
    close(fd);
    run_qemu_img(args);
    return path;
}

static char *create_image(const ZVariant *v)
{
    char *path = NULL;
    int fd;

    if (v->qcow2) {
        return create_zoned_image("zone.mode=host-managed,zone.size=1M,"
                                  "zone.capacity=768K,zone.max_open_zones=2,"
                                  "zone.max_active_zones=3,"
                                  "zone.max_append_bytes=64K", "16M");
    }
    /* a raw image: a sparse file */
    fd = g_file_open_tmp("qtest-nvme-zoned.XXXXXX", &path, NULL);
    g_assert(fd >= 0);
    g_assert(ftruncate(fd, 16 * MiB) == 0);
    close(fd);
    return path;
}

static char *qemu_args(const ZVariant *v, const char *img)
{
    if (v->qcow2) {
        return g_strdup_printf(
            "-nodefaults "
            "-device nvme,id=nvme0,serial=zns0,addr=04.0 "
            "-blockdev file,filename=%s,node-name=f "
            "-blockdev qcow2,file=f,node-name=zd "
            "-device nvme-ns,drive=zd,bus=nvme0,nsid=1,id=ns1", img);
    }
    /*
     * QEMU's own emulation with the geometry of the image; cross_read=on
     * since reads of a zoned qcow2 image may cross zone boundaries.
     */
    return g_strdup_printf(
        "-nodefaults "
        "-device nvme,id=nvme0,serial=zns0,addr=04.0,zoned.zasl=%d "
        "-blockdev file,filename=%s,node-name=f "
        "-device nvme-ns,drive=f,bus=nvme0,nsid=1,zoned=on,"
        "zoned.zone_size=1M,zoned.zone_capacity=768K,zoned.max_open=%d,"
        "zoned.max_active=%d,zoned.cross_read=on",
        ZASL, img, MAX_OPEN, MAX_ACTIVE);
}

/*
 * Can QEMU realize the namespace at all?  Until the zoned qcow2 front-end
 * exists it cannot, and libqtest would abort the whole binary in
 * qtest_init(): find out first with a QEMU that quits right away, so that
 * only the qcow2 cases fail, each with QEMU's error.
 */
static bool qemu_can_start(const ZVariant *v, const char *img)
{
    static int ok[2] = { -1, -1 };
    static char *why;
    g_autofree char *args = NULL;
    g_autofree char *script = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    const char *argv[] = { "/bin/sh", "-c", NULL, NULL };
    int status;

    if (ok[v->qcow2] < 0) {
        args = qemu_args(v, img);
        script = g_strdup_printf(
            "printf '%%s\\n' '{\"execute\": \"qmp_capabilities\"}' "
            "'{\"execute\": \"quit\"}' | "
            "exec \"$QTEST_QEMU_BINARY\" -M pc -S -display none "
            "-qmp stdio %s", args);
        argv[2] = script;
        g_assert(g_spawn_sync(NULL, (char **)argv, NULL, 0, NULL, NULL,
                              &out, &err, &status, NULL));
        ok[v->qcow2] = g_spawn_check_exit_status(status, NULL);
        if (!ok[v->qcow2]) {
            why = g_strdup(err);
        }
    }
    if (!ok[v->qcow2]) {
        g_test_message("QEMU cannot start with the %s namespace: %s",
                       v->name, why);
        g_test_fail();
    }
    return ok[v->qcow2];
}

/*** The NVMe controller ***/

static uint32_t reg_read32(ZDev *d, uint32_t reg)
{
    return qpci_io_readl(d->dev, d->bar, reg);
}

static void reg_write32(ZDev *d, uint32_t reg, uint32_t val)
{
    qpci_io_writel(d->dev, d->bar, reg, val);
}

static void reg_write64(ZDev *d, uint32_t reg, uint64_t val)
{
    reg_write32(d, reg, val);
    reg_write32(d, reg + 4, val >> 32);
}

static void wait_ready(ZDev *d, bool ready)
{
    gint64 end = g_get_monotonic_time() + CMD_TIMEOUT_S * G_USEC_PER_SEC;
    uint32_t csts;

    for (;;) {
        csts = reg_read32(d, NVME_REG_CSTS);
        g_assert_cmphex(csts & 2, ==, 0); /* CFS */
        if ((csts & 1) == ready) {
            return;
        }
        g_assert(g_get_monotonic_time() < end);
        g_usleep(1000);
    }
}

static void queue_init(ZDev *d, ZQueue *q, uint16_t size, size_t entry)
{
    q->size = size;
    q->idx = 0;
    q->phase = true;
    q->addr = guest_alloc(&d->qs->alloc, size * entry);
    qtest_memset(d->qts, q->addr, 0, size * entry);
}

/* With QTEST_NVME_ZONED_TRACE set, every command and its status */
static void trace_cmd(const NvmeCmd *cmd, const NvmeCqe *cqe)
{
    if (g_getenv("QTEST_NVME_ZONED_TRACE")) {
        g_test_message("opc 0x%02x cdw10 0x%x cdw11 0x%x cdw12 0x%x cdw13 0x%x"
                       " -> status 0x%04x dw0 0x%x dw1 0x%x",
                       cmd->opcode, le32_to_cpu(cmd->cdw10),
                       le32_to_cpu(cmd->cdw11), le32_to_cpu(cmd->cdw12),
                       le32_to_cpu(cmd->cdw13),
                       le16_to_cpu(cqe->status) >> 1,
                       le32_to_cpu(cqe->result), le32_to_cpu(cqe->dw1));
    }
}

/* Submit @cmd on @sq (queue @qid), and do not wait; returns its CID */
static uint16_t submit_start(ZDev *d, int qid, ZQueue *sq, NvmeCmd *cmd)
{
    cmd->cid = cpu_to_le16(++d->cid);
    qtest_memwrite(d->qts, sq->addr + sq->idx * sizeof(NvmeCmd), cmd,
                   sizeof(NvmeCmd));
    sq->idx = (sq->idx + 1) % sq->size;
    reg_write32(d, 0x1000 + 2 * qid * d->dstrd, sq->idx);
    return d->cid;
}

/*
 * Wait for the completion of command @cid of queue @qid on @cq, the next
 * one there, and return the status field without the phase tag: bits 7:0
 * SC, 10:8 SCT, 14 DNR.
 */
static uint16_t submit_wait(ZDev *d, int qid, ZQueue *cq, uint16_t cid,
                            NvmeCmd *cmd, NvmeCqe *cqe_out)
{
    gint64 end = g_get_monotonic_time() + CMD_TIMEOUT_S * G_USEC_PER_SEC;
    NvmeCqe cqe;
    uint16_t status;
    int tries = 0;

    for (;;) {
        qtest_memread(d->qts, cq->addr + cq->idx * sizeof(NvmeCqe), &cqe,
                      sizeof(cqe));
        if ((le16_to_cpu(cqe.status) & 1) == cq->phase) {
            break;
        }
        g_assert(g_get_monotonic_time() < end);
        if (++tries > 10) {
            g_usleep(100);
        }
    }

    g_assert_cmpuint(le16_to_cpu(cqe.cid), ==, cid);
    g_assert_cmpuint(le16_to_cpu(cqe.sq_id), ==, qid);
    cq->idx++;
    if (cq->idx == cq->size) {
        cq->idx = 0;
        cq->phase = !cq->phase;
    }
    reg_write32(d, 0x1000 + (2 * qid + 1) * d->dstrd, cq->idx);

    status = le16_to_cpu(cqe.status) >> 1;
    trace_cmd(cmd, &cqe);
    if (cqe_out) {
        *cqe_out = cqe;
    }
    return status;
}

/* Submit @cmd on @sq (queue @qid) and wait for its completion on @cq */
static uint16_t submit(ZDev *d, int qid, ZQueue *sq, ZQueue *cq,
                       NvmeCmd *cmd, NvmeCqe *cqe_out)
{
    uint16_t cid = submit_start(d, qid, sq, cmd);

    return submit_wait(d, qid, cq, cid, cmd, cqe_out);
}

/*
 * Several commands at once on the I/O queue pair: submitted with one
 * doorbell write, completed in any order.  @cqes[i] is @cmds[i]'s.
 */
static void submit_batch(ZDev *d, NvmeCmd *cmds, int n, NvmeCqe *cqes)
{
    gint64 end = g_get_monotonic_time() + CMD_TIMEOUT_S * G_USEC_PER_SEC;
    uint16_t first_cid = d->cid + 1;
    g_autofree bool *done = g_new0(bool, n);
    ZQueue *sq = &d->sq, *cq = &d->cq;
    NvmeCqe cqe;
    int i, left = n;

    g_assert(n < IO_QSIZE);
    for (i = 0; i < n; i++) {
        cmds[i].nsid = cpu_to_le32(NSID);
        cmds[i].cid = cpu_to_le16(++d->cid);
        qtest_memwrite(d->qts, sq->addr + sq->idx * sizeof(NvmeCmd), &cmds[i],
                       sizeof(NvmeCmd));
        sq->idx = (sq->idx + 1) % sq->size;
    }
    reg_write32(d, 0x1000 + 2 * d->dstrd, sq->idx);

    while (left) {
        qtest_memread(d->qts, cq->addr + cq->idx * sizeof(NvmeCqe), &cqe,
                      sizeof(cqe));
        if ((le16_to_cpu(cqe.status) & 1) != cq->phase) {
            g_assert(g_get_monotonic_time() < end);
            g_usleep(100);
            continue;
        }
        i = (uint16_t)(le16_to_cpu(cqe.cid) - first_cid);
        g_assert_cmpint(i, <, n);
        g_assert(!done[i]);
        done[i] = true;
        cqes[i] = cqe;
        trace_cmd(&cmds[i], &cqe);
        left--;
        cq->idx++;
        if (cq->idx == cq->size) {
            cq->idx = 0;
            cq->phase = !cq->phase;
        }
    }
    reg_write32(d, 0x1000 + 3 * d->dstrd, cq->idx);
}

static uint16_t admin(ZDev *d, NvmeCmd *cmd, NvmeCqe *cqe)
{
    return submit(d, 0, &d->asq, &d->acq, cmd, cqe);
}

static uint16_t io(ZDev *d, NvmeCmd *cmd, NvmeCqe *cqe)
{
    cmd->nsid = cpu_to_le32(d->nsid);
    return submit(d, 1, &d->sq, &d->cq, cmd, cqe);
}

/* Point @cmd's PRPs at the first @len bytes of the data buffer */
static void set_prps(ZDev *d, NvmeCmd *cmd, size_t len)
{
    uint64_t list[PAGE_SIZE_NVME / sizeof(uint64_t)];
    size_t pages = DIV_ROUND_UP(MIN(len, BUF_SIZE), PAGE_SIZE_NVME);
    size_t i;

    cmd->dptr.prp1 = cpu_to_le64(d->buf);
    cmd->dptr.prp2 = 0;
    if (pages == 2) {
        cmd->dptr.prp2 = cpu_to_le64(d->buf + PAGE_SIZE_NVME);
    } else if (pages > 2) {
        for (i = 1; i < pages; i++) {
            list[i - 1] = cpu_to_le64(d->buf + i * PAGE_SIZE_NVME);
        }
        qtest_memwrite(d->qts, d->prp_list, list,
                       (pages - 1) * sizeof(uint64_t));
        cmd->dptr.prp2 = cpu_to_le64(d->prp_list);
    }
}

static void controller_enable(ZDev *d)
{
    uint64_t cap = qpci_io_readq(d->dev, d->bar, NVME_REG_CAP);
    uint32_t cc;
    NvmeCmd cmd;

    /* The controller must offer the I/O command sets (CSS bit 6) */
    g_assert(NVME_CAP_CSS(cap) & NVME_CAP_CSS_IOCSS);
    d->dstrd = 4 << NVME_CAP_DSTRD(cap);

    reg_write32(d, NVME_REG_CC, 0);
    wait_ready(d, false);

    queue_init(d, &d->asq, ADMIN_QSIZE, sizeof(NvmeCmd));
    queue_init(d, &d->acq, ADMIN_QSIZE, sizeof(NvmeCqe));
    reg_write32(d, NVME_REG_AQA, (ADMIN_QSIZE - 1) << 16 | (ADMIN_QSIZE - 1));
    reg_write64(d, NVME_REG_ASQ, d->asq.addr);
    reg_write64(d, NVME_REG_ACQ, d->acq.addr);

    cc = 1 << CC_EN_SHIFT | NVME_CC_CSS_ALL << CC_CSS_SHIFT |
         0 << CC_MPS_SHIFT | 6 << CC_IOSQES_SHIFT | 4 << CC_IOCQES_SHIFT;
    reg_write32(d, NVME_REG_CC, cc);
    wait_ready(d, true);

    /* One I/O queue pair, polled: no interrupts */
    queue_init(d, &d->cq, IO_QSIZE, sizeof(NvmeCqe));
    memset(&cmd, 0, sizeof(cmd));
    cmd.opcode = NVME_ADM_CMD_CREATE_CQ;
    cmd.dptr.prp1 = cpu_to_le64(d->cq.addr);
    cmd.cdw10 = cpu_to_le32((IO_QSIZE - 1) << 16 | 1);
    cmd.cdw11 = cpu_to_le32(1); /* physically contiguous */
    g_assert_cmphex(admin(d, &cmd, NULL), ==, ST_OK);

    queue_init(d, &d->sq, IO_QSIZE, sizeof(NvmeCmd));
    memset(&cmd, 0, sizeof(cmd));
    cmd.opcode = NVME_ADM_CMD_CREATE_SQ;
    cmd.dptr.prp1 = cpu_to_le64(d->sq.addr);
    cmd.cdw10 = cpu_to_le32((IO_QSIZE - 1) << 16 | 1);
    cmd.cdw11 = cpu_to_le32(1 << 16 | 1); /* CQ 1, physically contiguous */
    g_assert_cmphex(admin(d, &cmd, NULL), ==, ST_OK);
}

static void zdev_start(ZDev *d)
{
    g_autofree char *args = qemu_args(d->v, d->img);

    d->qs = qtest_pc_boot("%s %s", args, d->extra ?: "");
    d->qts = d->qs->qts;
    d->dev = qpci_device_find(d->qs->pcibus, QPCI_DEVFN(4, 0));
    g_assert(d->dev);
    d->bar = qpci_iomap(d->dev, 0, NULL);
    qpci_device_enable(d->dev);
    d->cid = 0;
    d->buf = guest_alloc(&d->qs->alloc, BUF_SIZE);
    d->prp_list = guest_alloc(&d->qs->alloc, PAGE_SIZE_NVME);
    controller_enable(d);
}

static void zdev_stop(ZDev *d)
{
    /* QEMU must have survived everything: qtest_quit() checks its exit */
    g_assert(qtest_probe_child(d->qts));
    qpci_iounmap(d->dev, d->bar);
    g_free(d->dev);
    d->dev = NULL;
    qtest_shutdown(d->qs);
    d->qs = NULL;
    d->qts = NULL;
}

/* A new image, or NULL if QEMU cannot start with it */
static ZDev *zdev_create(const ZVariant *v)
{
    ZDev *d = g_new0(ZDev, 1);

    d->v = v;
    d->nsid = NSID;
    d->img = create_image(v);
    if (!qemu_can_start(v, d->img)) {
        unlink(d->img);
        g_free(d->img);
        g_free(d);
        return NULL;
    }
    return d;
}

/* A new image and a QEMU using it, or NULL if QEMU cannot start */
static ZDev *zdev_new(const ZVariant *v)
{
    ZDev *d = zdev_create(v);

    if (d) {
        zdev_start(d);
    }
    return d;
}

static void zdev_free(ZDev *d)
{
    if (d->qs) {
        zdev_stop(d);
    }
    unlink(d->img);
    g_free(d->img);
    g_free(d->extra);
    g_free(d);
}

/*** Commands ***/

static uint8_t pattern_byte(uint64_t lba, size_t i, uint8_t seed)
{
    return (lba * 131 + i * 7 + seed) & 0xff;
}

static void fill_buf(ZDev *d, uint64_t lba, uint32_t nlb, uint8_t seed)
{
    size_t len = (size_t)nlb * LBA_SIZE;
    g_autofree uint8_t *p = g_malloc(len);
    size_t i;

    for (i = 0; i < len; i++) {
        p[i] = pattern_byte(lba + i / LBA_SIZE, i % LBA_SIZE, seed);
    }
    qtest_memwrite(d->qts, d->buf, p, len);
}

/* Does the buffer hold the pattern of @lba..@lba+@nlb-1, or zeroes? */
static void check_buf(ZDev *d, size_t off_lbas, uint64_t lba, uint32_t nlb,
                      uint8_t seed, bool zeroes)
{
    size_t len = (size_t)nlb * LBA_SIZE;
    g_autofree uint8_t *p = g_malloc(len);
    size_t i;

    qtest_memread(d->qts, d->buf + off_lbas * LBA_SIZE, p, len);
    for (i = 0; i < len; i++) {
        uint8_t want = zeroes ? 0 :
                       pattern_byte(lba + i / LBA_SIZE, i % LBA_SIZE, seed);
        if (p[i] != want) {
            fprintf(stderr, "LBA %" PRIu64 " byte %zu: 0x%x, expected 0x%x\n",
                    lba + i / LBA_SIZE, i % LBA_SIZE, p[i], want);
            g_assert_not_reached();
        }
    }
}

static void rw_setup(ZDev *d, NvmeCmd *cmd, uint8_t opc, uint64_t slba,
                     uint32_t nlb, uint32_t flags)
{
    memset(cmd, 0, sizeof(*cmd));
    cmd->opcode = opc;
    g_assert(nlb >= 1 && nlb <= 0x10000);
    if (opc != NVME_CMD_WRITE_ZEROES) {
        set_prps(d, cmd, (size_t)nlb * LBA_SIZE);
    }
    cmd->cdw10 = cpu_to_le32(slba);
    cmd->cdw11 = cpu_to_le32(slba >> 32);
    cmd->cdw12 = cpu_to_le32((nlb - 1) | flags);
}

static uint16_t rw_cmd_flags(ZDev *d, uint8_t opc, uint64_t slba,
                             uint32_t nlb, uint32_t flags, NvmeCqe *cqe)
{
    NvmeCmd cmd;

    rw_setup(d, &cmd, opc, slba, nlb, flags);
    return io(d, &cmd, cqe);
}

static uint16_t rw_cmd(ZDev *d, uint8_t opc, uint64_t slba, uint32_t nlb,
                       NvmeCqe *cqe)
{
    return rw_cmd_flags(d, opc, slba, nlb, 0, cqe);
}

/* Write the pattern of (@slba, @seed) */
static uint16_t zwrite(ZDev *d, uint64_t slba, uint32_t nlb, uint8_t seed)
{
    if ((size_t)nlb * LBA_SIZE <= BUF_SIZE) {
        fill_buf(d, slba, nlb, seed);
    }
    return rw_cmd(d, NVME_CMD_WRITE, slba, nlb, NULL);
}

/* Write that must succeed, in pieces of at most MDTS */
static void zwrite_ok(ZDev *d, uint64_t slba, uint32_t nlb, uint8_t seed)
{
    while (nlb) {
        uint32_t n = MIN(nlb, BUF_SIZE / LBA_SIZE);

        g_assert_cmphex(zwrite(d, slba, n, seed), ==, ST_OK);
        slba += n;
        nlb -= n;
    }
}

static uint16_t zread(ZDev *d, uint64_t slba, uint32_t nlb)
{
    if ((size_t)nlb * LBA_SIZE <= BUF_SIZE) {
        qtest_memset(d->qts, d->buf, 0xa5, (size_t)nlb * LBA_SIZE);
    }
    return rw_cmd(d, NVME_CMD_READ, slba, nlb, NULL);
}

/* Read back what zwrite() wrote, or zeroes */
static void zread_check(ZDev *d, uint64_t slba, uint32_t nlb, uint8_t seed,
                        bool zeroes)
{
    g_assert_cmphex(zread(d, slba, nlb), ==, ST_OK);
    check_buf(d, 0, slba, nlb, seed, zeroes);
}

/*
 * Zone Append to the zone at @zslba of the pattern of (@at, @seed), @at
 * being where the data should land; *@lba: where it did
 */
static uint16_t zappend(ZDev *d, uint64_t zslba, uint32_t nlb, uint64_t at,
                        uint8_t seed, uint64_t *lba)
{
    NvmeCqe cqe;
    uint16_t status;

    if ((size_t)nlb * LBA_SIZE <= BUF_SIZE) {
        fill_buf(d, at, nlb, seed);
    }
    status = rw_cmd(d, NVME_CMD_ZONE_APPEND, zslba, nlb, &cqe);
    if (lba) {
        *lba = le32_to_cpu(cqe.result) |
               (uint64_t)le32_to_cpu(cqe.dw1) << 32;
    }
    return status;
}

static uint16_t zflush(ZDev *d, uint32_t nsid)
{
    NvmeCmd cmd = { .opcode = NVME_CMD_FLUSH };

    cmd.nsid = cpu_to_le32(nsid);
    return submit(d, 1, &d->sq, &d->cq, &cmd, NULL);
}

/* Zone Management Send; @zsa may carry ZSA_SELECT_ALL */
static uint16_t zms(ZDev *d, uint64_t slba, uint32_t zsa)
{
    NvmeCmd cmd = { .opcode = NVME_CMD_ZONE_MGMT_SEND };

    cmd.cdw10 = cpu_to_le32(slba);
    cmd.cdw11 = cpu_to_le32(slba >> 32);
    cmd.cdw13 = cpu_to_le32(zsa);
    return io(d, &cmd, NULL);
}

/* Zone Management Receive into the data buffer */
static uint16_t zmr(ZDev *d, uint64_t slba, uint32_t numd, uint8_t zra,
                    uint8_t zrasf, bool partial)
{
    NvmeCmd cmd = { .opcode = NVME_CMD_ZONE_MGMT_RECV };

    set_prps(d, &cmd, ((size_t)numd + 1) * 4);
    cmd.cdw10 = cpu_to_le32(slba);
    cmd.cdw11 = cpu_to_le32(slba >> 32);
    cmd.cdw12 = cpu_to_le32(numd);
    cmd.cdw13 = cpu_to_le32(zra | zrasf << 8 | (partial ? 1 << 16 : 0));
    return io(d, &cmd, NULL);
}

#define REPORT_BYTES(n) (sizeof(NvmeZoneReportHeader) + \
                         (n) * sizeof(NvmeZoneDescr))
#define REPORT_NUMD(n)  (REPORT_BYTES(n) / 4 - 1)

/* Report of zones matching @zrasf from @slba, room for @room descriptors */
static void report_n(ZDev *d, uint64_t slba, uint8_t zrasf, bool partial,
                     int room, ZReport *r)
{
    uint8_t raw[REPORT_BYTES(NR_ZONES)];
    NvmeZoneReportHeader *hdr = (NvmeZoneReportHeader *)raw;
    int i;

    g_assert(room <= NR_ZONES);
    qtest_memset(d->qts, d->buf, 0xa5, REPORT_BYTES(NR_ZONES) + 64);
    g_assert_cmphex(zmr(d, slba, REPORT_NUMD(room), NVME_ZONE_REPORT, zrasf,
                        partial), ==, ST_OK);
    qtest_memread(d->qts, d->buf, raw, REPORT_BYTES(room));

    memset(r, 0, sizeof(*r));
    r->nr_zones = le64_to_cpu(hdr->nr_zones);
    r->ndesc = MIN(r->nr_zones, room);
    for (i = 0; i < r->ndesc; i++) {
        memcpy(&r->d[i], raw + REPORT_BYTES(i), sizeof(NvmeZoneDescr));
        r->d[i].zcap = le64_to_cpu(r->d[i].zcap);
        r->d[i].zslba = le64_to_cpu(r->d[i].zslba);
        r->d[i].wp = le64_to_cpu(r->d[i].wp);
    }
    /* Nothing was written beyond the buffer */
    qtest_memread(d->qts, d->buf + REPORT_BYTES(room), raw, 64);
    for (i = 0; i < 64; i++) {
        g_assert_cmphex(raw[i], ==, 0xa5);
    }
}

static void report(ZDev *d, uint64_t slba, uint8_t zrasf, bool partial,
                   ZReport *r)
{
    report_n(d, slba, zrasf, partial, NR_ZONES, r);
}

/* Descriptor of zone @z with state @zs and, unless it is not valid, @wp */
static void check_descr(const NvmeZoneDescr *zd, int z, uint8_t zs,
                        uint64_t wp)
{
    g_assert_cmpuint(zd->zslba, ==, ZSLBA(z));
    g_assert_cmphex(zd->zt, ==, NVME_ZONE_TYPE_SEQ_WRITE);
    if ((zd->zs >> 4) != zs) {
        fprintf(stderr, "zone %d: state 0x%x, expected 0x%x\n",
                z, zd->zs >> 4, zs);
    }
    g_assert_cmphex(zd->zs, ==, zs << 4);
    g_assert_cmpuint(zd->zcap, ==, ZCAP_LBAS);
    /* The write pointer of a full, read-only or offline zone is not valid */
    if (zs != ZS_FULL && zs != ZS_RDONLY && zs != ZS_OFFLINE) {
        g_assert_cmpuint(zd->wp, ==, wp);
    }
}

/* Zone @z has state @zs and write pointer @wp (relative to its start) */
static void check_zone(ZDev *d, int z, uint8_t zs, uint64_t wp)
{
    ZReport r;

    report_n(d, ZSLBA(z), NVME_ZONE_REPORT_ALL, true, 1, &r);
    g_assert_cmpuint(r.nr_zones, ==, 1);
    check_descr(&r.d[0], z, zs, ZSLBA(z) + wp);
}

/*
 * The whole report against the expected states @zs[] and relative write
 * pointers @wp[], for every filter, partial or not
 */
static void check_all_zones(ZDev *d, const uint8_t *zs, const uint64_t *wp)
{
    static const uint8_t filter_state[] = {
        [NVME_ZONE_REPORT_EMPTY] = ZS_EMPTY,
        [NVME_ZONE_REPORT_IMPLICITLY_OPEN] = ZS_IOPEN,
        [NVME_ZONE_REPORT_EXPLICITLY_OPEN] = ZS_EOPEN,
        [NVME_ZONE_REPORT_CLOSED] = ZS_CLOSED,
        [NVME_ZONE_REPORT_FULL] = ZS_FULL,
        [NVME_ZONE_REPORT_READ_ONLY] = ZS_RDONLY,
        [NVME_ZONE_REPORT_OFFLINE] = ZS_OFFLINE,
    };
    ZReport r;
    int zrasf, partial, z, n;

    for (zrasf = NVME_ZONE_REPORT_ALL; zrasf <= NVME_ZONE_REPORT_OFFLINE;
         zrasf++) {
        for (partial = 0; partial <= 1; partial++) {
            report(d, 0, zrasf, partial, &r);
            n = 0;
            for (z = 0; z < NR_ZONES; z++) {
                if (zrasf != NVME_ZONE_REPORT_ALL &&
                    zs[z] != filter_state[zrasf]) {
                    continue;
                }
                g_assert_cmpint(n, <, r.ndesc);
                check_descr(&r.d[n], z, zs[z], ZSLBA(z) + wp[z]);
                n++;
            }
            g_assert_cmpuint(r.nr_zones, ==, n);
        }
    }
}

/*
 * After every case: the namespace still works.  Reset all zones, write at
 * a write pointer, read it back.
 */
static void check_still_works(ZDev *d)
{
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_RESET | ZSA_SELECT_ALL), ==,
                    ST_OK);
    zwrite_ok(d, ZSLBA(0), 8, 0x5a);
    zread_check(d, ZSLBA(0), 8, 0x5a, false);
    zread_check(d, ZSLBA(0) + 8, 8, 0, true);
    check_zone(d, 0, ZS_IOPEN, 8);
    g_assert_cmphex(zflush(d, NSID), ==, ST_OK);
}

/*** Cases ***/

/* ZASL, from Identify I/O Command Set specific Controller (CNS 06h), ZNS */
static uint8_t identify_zasl(ZDev *d)
{
    NvmeIdCtrlZoned id_ctrlz;
    NvmeCmd cmd = {
        .opcode = NVME_ADM_CMD_IDENTIFY,
        .cdw10 = cpu_to_le32(NVME_ID_CNS_CS_CTRL),
        .cdw11 = cpu_to_le32(NVME_CSI_ZONED << 24),
    };

    set_prps(d, &cmd, sizeof(id_ctrlz));
    g_assert_cmphex(admin(d, &cmd, NULL), ==, ST_OK);
    qtest_memread(d->qts, d->buf, &id_ctrlz, sizeof(id_ctrlz));
    return id_ctrlz.zasl;
}

static void test_identify(const void *opaque)
{
    ZDev *d = zdev_new(opaque);
    NvmeIdNs id_ns;
    NvmeIdNsZoned id_nsz;
    NvmeEffectsLog effects;
    uint8_t descs[NVME_IDENTIFY_DATA_SIZE];
    NvmeCmd cmd;
    int lbaf, i;
    bool csi_found = false;

    if (!d) {
        return;
    }

    /* Identify Namespace (CNS 00h) */
    memset(&cmd, 0, sizeof(cmd));
    cmd.opcode = NVME_ADM_CMD_IDENTIFY;
    cmd.nsid = cpu_to_le32(NSID);
    cmd.cdw10 = cpu_to_le32(NVME_ID_CNS_NS);
    set_prps(d, &cmd, sizeof(id_ns));
    g_assert_cmphex(admin(d, &cmd, NULL), ==, ST_OK);
    qtest_memread(d->qts, d->buf, &id_ns, sizeof(id_ns));
    g_assert_cmpuint(le64_to_cpu(id_ns.nsze), ==, NSZE);
    g_assert_cmpuint(le64_to_cpu(id_ns.ncap), ==, NSZE);
    lbaf = NVME_ID_NS_FLBAS_INDEX(id_ns.flbas) | (id_ns.flbas >> 5 & 3) << 4;
    g_assert_cmpuint(id_ns.lbaf[lbaf].ds, ==, 9);

    /* Identify I/O Command Set specific Namespace (CNS 05h), ZNS */
    memset(&cmd, 0, sizeof(cmd));
    cmd.opcode = NVME_ADM_CMD_IDENTIFY;
    cmd.nsid = cpu_to_le32(NSID);
    cmd.cdw10 = cpu_to_le32(NVME_ID_CNS_CS_NS);
    cmd.cdw11 = cpu_to_le32(NVME_CSI_ZONED << 24);
    set_prps(d, &cmd, sizeof(id_nsz));
    g_assert_cmphex(admin(d, &cmd, NULL), ==, ST_OK);
    qtest_memread(d->qts, d->buf, &id_nsz, sizeof(id_nsz));
    g_assert_cmpuint(le64_to_cpu(id_nsz.lbafe[lbaf].zsze), ==, ZONE_LBAS);
    g_assert_cmpuint(id_nsz.lbafe[lbaf].zdes, ==, 0);
    g_assert_cmphex(le16_to_cpu(id_nsz.zoc), ==, 0);
    /* 0's based */
    g_assert_cmpuint(le32_to_cpu(id_nsz.mor), ==, MAX_OPEN - 1);
    g_assert_cmpuint(le32_to_cpu(id_nsz.mar), ==, MAX_ACTIVE - 1);
    /* Reads may cross zone boundaries: Read Across Zone Boundaries */
    g_assert_cmphex(le16_to_cpu(id_nsz.ozcs) & NVME_ID_NS_ZONED_OZCS_RAZB,
                    ==, NVME_ID_NS_ZONED_OZCS_RAZB);

    g_assert_cmpuint(identify_zasl(d), ==, ZASL);

    /* Namespace Identification Descriptor list: CSI 2 */
    memset(&cmd, 0, sizeof(cmd));
    cmd.opcode = NVME_ADM_CMD_IDENTIFY;
    cmd.nsid = cpu_to_le32(NSID);
    cmd.cdw10 = cpu_to_le32(NVME_ID_CNS_NS_DESCR_LIST);
    set_prps(d, &cmd, sizeof(descs));
    g_assert_cmphex(admin(d, &cmd, NULL), ==, ST_OK);
    qtest_memread(d->qts, d->buf, descs, sizeof(descs));
    for (i = 0; i + 4 <= sizeof(descs) && descs[i]; i += 4 + descs[i + 1]) {
        if (descs[i] == NVME_NIDT_CSI) {
            g_assert_cmpuint(descs[i + 1], ==, 1);
            g_assert_cmpuint(descs[i + 4], ==, NVME_CSI_ZONED);
            csi_found = true;
        }
    }
    g_assert(csi_found);

    /* Commands Supported and Effects log of the Zoned command set */
    memset(&cmd, 0, sizeof(cmd));
    cmd.opcode = NVME_ADM_CMD_GET_LOG_PAGE;
    cmd.nsid = cpu_to_le32(NVME_NSID_BROADCAST);
    cmd.cdw10 = cpu_to_le32(NVME_LOG_CMD_EFFECTS |
                            (sizeof(effects) / 4 - 1) << 16);
    cmd.cdw14 = cpu_to_le32(NVME_CSI_ZONED << 24);
    set_prps(d, &cmd, sizeof(effects));
    g_assert_cmphex(admin(d, &cmd, NULL), ==, ST_OK);
    qtest_memread(d->qts, d->buf, &effects, sizeof(effects));
    g_assert(le32_to_cpu(effects.iocs[NVME_CMD_FLUSH]) & NVME_CMD_EFF_CSUPP);
    g_assert(le32_to_cpu(effects.iocs[NVME_CMD_WRITE]) & NVME_CMD_EFF_CSUPP);
    g_assert(le32_to_cpu(effects.iocs[NVME_CMD_READ]) & NVME_CMD_EFF_CSUPP);
    g_assert(le32_to_cpu(effects.iocs[NVME_CMD_ZONE_MGMT_SEND]) &
             NVME_CMD_EFF_CSUPP);
    g_assert(le32_to_cpu(effects.iocs[NVME_CMD_ZONE_MGMT_RECV]) &
             NVME_CMD_EFF_CSUPP);
    g_assert(le32_to_cpu(effects.iocs[NVME_CMD_ZONE_APPEND]) &
             NVME_CMD_EFF_CSUPP);

    check_still_works(d);
    zdev_free(d);
}

static void test_report(const void *opaque)
{
    ZDev *d = zdev_new(opaque);
    uint8_t zs[NR_ZONES];
    uint64_t wp[NR_ZONES] = { 0 };
    ZReport r;
    int z;

    if (!d) {
        return;
    }

    for (z = 0; z < NR_ZONES; z++) {
        zs[z] = ZS_EMPTY;
    }
    check_all_zones(d, zs, wp);

    /*
     * Every state but read-only and offline, within the limits (open:
     * zones 1 and 3, active: zones 0, 1, 3)
     */
    zwrite_ok(d, ZSLBA(0), 8, 0);
    zs[0] = ZS_IOPEN;
    wp[0] = 8;
    check_all_zones(d, zs, wp);

    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_OPEN), ==, ST_OK);
    zs[1] = ZS_EOPEN;
    check_all_zones(d, zs, wp);

    g_assert_cmphex(zms(d, ZSLBA(2), NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    zs[2] = ZS_FULL;
    g_assert_cmphex(zms(d, ZSLBA(0), NVME_ZONE_ACTION_CLOSE), ==, ST_OK);
    zs[0] = ZS_CLOSED;
    check_all_zones(d, zs, wp);

    zwrite_ok(d, ZSLBA(3), 16, 0);
    zs[3] = ZS_IOPEN;
    wp[3] = 16;
    g_assert_cmphex(zms(d, ZSLBA(4), NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    zs[4] = ZS_FULL;
    zwrite_ok(d, ZSLBA(1), 24, 0);
    wp[1] = 24;
    check_all_zones(d, zs, wp);

    /* From a zone start: zones 3.. only; full ones: zone 4 */
    report(d, ZSLBA(3), NVME_ZONE_REPORT_ALL, false, &r);
    g_assert_cmpuint(r.nr_zones, ==, NR_ZONES - 3);
    check_descr(&r.d[0], 3, ZS_IOPEN, ZSLBA(3) + 16);
    report(d, ZSLBA(3), NVME_ZONE_REPORT_FULL, false, &r);
    g_assert_cmpuint(r.nr_zones, ==, 1);
    check_descr(&r.d[0], 4, ZS_FULL, 0);

    /* From inside a zone: the report starts with the zone holding SLBA */
    report(d, ZSLBA(2) + 100, NVME_ZONE_REPORT_ALL, false, &r);
    g_assert_cmpuint(r.nr_zones, ==, NR_ZONES - 2);
    check_descr(&r.d[0], 2, ZS_FULL, 0);
    report(d, NSZE - 1, NVME_ZONE_REPORT_ALL, false, &r);
    g_assert_cmpuint(r.nr_zones, ==, 1);
    check_descr(&r.d[0], NR_ZONES - 1, ZS_EMPTY, ZSLBA(NR_ZONES - 1));

    /*
     * Room for one descriptor: partial=0 counts every matching zone,
     * partial=1 the ones returned; one descriptor is returned either way
     */
    report_n(d, 0, NVME_ZONE_REPORT_ALL, false, 1, &r);
    g_assert_cmpuint(r.nr_zones, ==, NR_ZONES);
    check_descr(&r.d[0], 0, ZS_CLOSED, 8);
    report_n(d, 0, NVME_ZONE_REPORT_ALL, true, 1, &r);
    g_assert_cmpuint(r.nr_zones, ==, 1);
    check_descr(&r.d[0], 0, ZS_CLOSED, 8);
    report_n(d, 0, NVME_ZONE_REPORT_EMPTY, false, 1, &r);
    g_assert_cmpuint(r.nr_zones, ==, NR_ZONES - 5);
    check_descr(&r.d[0], 5, ZS_EMPTY, ZSLBA(5));
    report_n(d, 0, NVME_ZONE_REPORT_EMPTY, true, 1, &r);
    g_assert_cmpuint(r.nr_zones, ==, 1);
    check_descr(&r.d[0], 5, ZS_EMPTY, ZSLBA(5));
    report_n(d, 0, NVME_ZONE_REPORT_FULL, true, 1, &r);
    g_assert_cmpuint(r.nr_zones, ==, 1);
    check_descr(&r.d[0], 2, ZS_FULL, 0);
    report_n(d, 0, NVME_ZONE_REPORT_OFFLINE, true, 1, &r);
    g_assert_cmpuint(r.nr_zones, ==, 0);

    /* The header alone (NUMD 15): no descriptor */
    report_n(d, 0, NVME_ZONE_REPORT_ALL, false, 0, &r);
    g_assert_cmpuint(r.nr_zones, ==, NR_ZONES);
    report_n(d, 0, NVME_ZONE_REPORT_ALL, true, 0, &r);
    g_assert_cmpuint(r.nr_zones, ==, 0);

    /*
     * Less than the header (NUMD 0, 4 bytes).  The specification does not
     * say; QEMU refuses a buffer that cannot hold the header.
     */
    g_assert_cmphex(zmr(d, 0, 0, NVME_ZONE_REPORT, 0, false), ==, ST_INVAL);
    g_assert_cmphex(zmr(d, 0, 0, NVME_ZONE_REPORT, 0, true), ==, ST_INVAL);

    /* Up to MDTS bytes are fine, one dword more is not */
    g_assert_cmphex(zmr(d, 0, MDTS_BYTES / 4 - 1, NVME_ZONE_REPORT, 0, false),
                    ==, ST_OK);
    g_assert_cmphex(zmr(d, 0, MDTS_BYTES / 4, NVME_ZONE_REPORT, 0, false),
                    ==, ST_INVAL);

    /* Zone Receive Actions: 1 (extended) needs descriptor extensions */
    g_assert_cmphex(zmr(d, 0, REPORT_NUMD(NR_ZONES),
                        NVME_ZONE_REPORT_EXTENDED, 0, false), ==, ST_INVAL);
    g_assert_cmphex(zmr(d, 0, REPORT_NUMD(NR_ZONES), 2, 0, false), ==,
                    ST_INVAL);
    g_assert_cmphex(zmr(d, 0, REPORT_NUMD(NR_ZONES), 0xff, 0, false), ==,
                    ST_INVAL);
    /* Reserved Zone Receive Action Specific Field values */
    g_assert_cmphex(zmr(d, 0, REPORT_NUMD(NR_ZONES), NVME_ZONE_REPORT, 8,
                        false), ==, ST_INVAL);
    g_assert_cmphex(zmr(d, 0, REPORT_NUMD(NR_ZONES), NVME_ZONE_REPORT, 0xff,
                        false), ==, ST_INVAL);

    /* SLBA past the namespace */
    g_assert_cmphex(zmr(d, NSZE, REPORT_NUMD(NR_ZONES), NVME_ZONE_REPORT, 0,
                        false), ==, ST_LBA_RANGE);
    g_assert_cmphex(zmr(d, 1ULL << 40, REPORT_NUMD(NR_ZONES),
                        NVME_ZONE_REPORT, 0, true), ==, ST_LBA_RANGE);

    /* Nothing of that changed a zone */
    check_all_zones(d, zs, wp);

    check_still_works(d);
    zdev_free(d);
}

static void test_mgmt_send(const void *opaque)
{
    ZDev *d = zdev_new(opaque);
    static const uint32_t actions[] = {
        NVME_ZONE_ACTION_CLOSE, NVME_ZONE_ACTION_FINISH,
        NVME_ZONE_ACTION_OPEN, NVME_ZONE_ACTION_RESET,
        NVME_ZONE_ACTION_OFFLINE,
    };
    ZReport r;
    int i;

    if (!d) {
        return;
    }

    /* SLBA not a zone start, SLBA past the namespace */
    for (i = 0; i < ARRAY_SIZE(actions); i++) {
        g_assert_cmphex(zms(d, ZSLBA(1) + 1, actions[i]), ==, ST_INVAL);
        g_assert_cmphex(zms(d, ZSLBA(1) + ZCAP_LBAS, actions[i]), ==,
                        ST_INVAL);
        g_assert_cmphex(zms(d, NSZE, actions[i]), ==, ST_LBA_RANGE);
        g_assert_cmphex(zms(d, 1ULL << 40, actions[i]), ==, ST_LBA_RANGE);
    }

    /* Reserved Zone Send Actions */
    g_assert_cmphex(zms(d, 0, 0), ==, ST_INVAL);
    g_assert_cmphex(zms(d, 0, 6), ==, ST_INVAL);
    g_assert_cmphex(zms(d, 0, 0x0f), ==, ST_INVAL);
    g_assert_cmphex(zms(d, 0, 0xff), ==, ST_INVAL);
    g_assert_cmphex(zms(d, 0, 6 | ZSA_SELECT_ALL), ==, ST_INVAL);

    /* Set Zone Descriptor Extension without extensions (ZDES 0) */
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_SET_ZD_EXT), ==, ST_INVAL);
    check_zone(d, 0, ZS_EMPTY, 0);

    /* Offline only applies to read-only zones */
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_OFFLINE), ==, ST_INVAL_TRANS);
    check_zone(d, 0, ZS_EMPTY, 0);

    /* Empty zone: close is no transition, finish is */
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_CLOSE), ==, ST_INVAL_TRANS);
    check_zone(d, 0, ZS_EMPTY, 0);
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_RESET), ==, ST_OK);
    check_zone(d, 0, ZS_EMPTY, 0);
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    check_zone(d, 0, ZS_FULL, 0);

    /* Full zone: finish again is fine, open/close/offline are not */
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_OPEN), ==, ST_INVAL_TRANS);
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_CLOSE), ==, ST_INVAL_TRANS);
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_OFFLINE), ==, ST_INVAL_TRANS);
    check_zone(d, 0, ZS_FULL, 0);
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_RESET), ==, ST_OK);
    check_zone(d, 0, ZS_EMPTY, 0);

    /* Empty -> explicitly open -> (write) -> closed -> open -> full */
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_OPEN), ==, ST_OK);
    check_zone(d, 1, ZS_EOPEN, 0);
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_OPEN), ==, ST_OK);
    check_zone(d, 1, ZS_EOPEN, 0);
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_OFFLINE), ==,
                    ST_INVAL_TRANS);
    zwrite_ok(d, ZSLBA(1), 8, 1);
    check_zone(d, 1, ZS_EOPEN, 8);
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_CLOSE), ==, ST_OK);
    check_zone(d, 1, ZS_CLOSED, 8);
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_CLOSE), ==, ST_OK);
    check_zone(d, 1, ZS_CLOSED, 8);
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_OFFLINE), ==,
                    ST_INVAL_TRANS);
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_OPEN), ==, ST_OK);
    check_zone(d, 1, ZS_EOPEN, 8);
    zwrite_ok(d, ZSLBA(1) + 8, 8, 1);
    check_zone(d, 1, ZS_EOPEN, 16);
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    check_zone(d, 1, ZS_FULL, 0);
    zread_check(d, ZSLBA(1), 16, 1, false);

    /* Implicitly open -> explicitly open; closed -> finish; reset */
    zwrite_ok(d, ZSLBA(2), 8, 2);
    check_zone(d, 2, ZS_IOPEN, 8);
    g_assert_cmphex(zms(d, ZSLBA(2), NVME_ZONE_ACTION_OPEN), ==, ST_OK);
    check_zone(d, 2, ZS_EOPEN, 8);
    g_assert_cmphex(zms(d, ZSLBA(2), NVME_ZONE_ACTION_CLOSE), ==, ST_OK);
    check_zone(d, 2, ZS_CLOSED, 8);
    g_assert_cmphex(zms(d, ZSLBA(2), NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    check_zone(d, 2, ZS_FULL, 0);
    zwrite_ok(d, ZSLBA(3), 8, 3);
    g_assert_cmphex(zms(d, ZSLBA(3), NVME_ZONE_ACTION_CLOSE), ==, ST_OK);
    check_zone(d, 3, ZS_CLOSED, 8);
    g_assert_cmphex(zms(d, ZSLBA(3), NVME_ZONE_ACTION_RESET), ==, ST_OK);
    check_zone(d, 3, ZS_EMPTY, 0);
    zread_check(d, ZSLBA(3), 8, 0, true);
    zwrite_ok(d, ZSLBA(4), 8, 4);
    g_assert_cmphex(zms(d, ZSLBA(4), NVME_ZONE_ACTION_RESET), ==, ST_OK);
    check_zone(d, 4, ZS_EMPTY, 0);
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_RESET), ==, ST_OK);
    check_zone(d, 1, ZS_EMPTY, 0);
    zread_check(d, ZSLBA(1), 16, 0, true);

    /*
     * An explicitly opened zone that is closed before anything was written
     * to it: the state is reported, not checked (QEMU's emulation makes it
     * CLOSED, a ZBC-like model EMPTY); its write pointer stays at the start
     */
    g_assert_cmphex(zms(d, ZSLBA(5), NVME_ZONE_ACTION_OPEN), ==, ST_OK);
    g_assert_cmphex(zms(d, ZSLBA(5), NVME_ZONE_ACTION_CLOSE), ==, ST_OK);
    report_n(d, ZSLBA(5), NVME_ZONE_REPORT_ALL, true, 1, &r);
    g_test_message("%s: open + close of an empty zone: state 0x%x",
                   d->v->name, r.d[0].zs >> 4);
    g_assert_cmpuint(r.d[0].wp, ==, ZSLBA(5));
    g_assert(r.d[0].zs >> 4 == ZS_EMPTY || r.d[0].zs >> 4 == ZS_CLOSED);
    g_assert_cmphex(zms(d, ZSLBA(5), NVME_ZONE_ACTION_RESET), ==, ST_OK);
    check_zone(d, 5, ZS_EMPTY, 0);

    /* Select All ignores SLBA */
    g_assert_cmphex(zms(d, 5, NVME_ZONE_ACTION_CLOSE | ZSA_SELECT_ALL), ==,
                    ST_OK);
    g_assert_cmphex(zms(d, NSZE, NVME_ZONE_ACTION_CLOSE | ZSA_SELECT_ALL), ==,
                    ST_OK);
    /* ... but there is no Set Zone Descriptor Extension for all */
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_SET_ZD_EXT | ZSA_SELECT_ALL),
                    ==, ST_INVAL);

    check_still_works(d);
    zdev_free(d);
}

static void test_limits(const void *opaque)
{
    ZDev *d = zdev_new(opaque);

    if (!d) {
        return;
    }

    /* Two explicitly open zones: no open resource left */
    g_assert_cmphex(zms(d, ZSLBA(0), NVME_ZONE_ACTION_OPEN), ==, ST_OK);
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_OPEN), ==, ST_OK);
    zwrite_ok(d, ZSLBA(0), 8, 0);
    zwrite_ok(d, ZSLBA(1), 8, 1);
    g_assert_cmphex(zms(d, ZSLBA(2), NVME_ZONE_ACTION_OPEN), ==, ST_TOO_OPEN);
    check_zone(d, 2, ZS_EMPTY, 0);
    /* A write would open it implicitly: the same */
    g_assert_cmphex(zwrite(d, ZSLBA(2), 8, 2), ==, ST_TOO_OPEN);
    g_assert_cmphex(zappend(d, ZSLBA(2), 8, ZSLBA(2), 2, NULL), ==,
                    ST_TOO_OPEN);
    check_zone(d, 2, ZS_EMPTY, 0);
    /* Finishing or resetting an empty zone needs no resource */
    g_assert_cmphex(zms(d, ZSLBA(3), NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    check_zone(d, 3, ZS_FULL, 0);
    g_assert_cmphex(zms(d, ZSLBA(3), NVME_ZONE_ACTION_RESET), ==, ST_OK);

    /* Close one: 1 open, 2 active; then a third active zone, closed */
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_CLOSE), ==, ST_OK);
    zwrite_ok(d, ZSLBA(2), 8, 2);
    check_zone(d, 2, ZS_IOPEN, 8);
    g_assert_cmphex(zms(d, ZSLBA(2), NVME_ZONE_ACTION_CLOSE), ==, ST_OK);
    check_zone(d, 2, ZS_CLOSED, 8);

    /* 1 open, 3 active: a fourth zone cannot become active */
    g_assert_cmphex(zms(d, ZSLBA(3), NVME_ZONE_ACTION_OPEN), ==,
                    ST_TOO_ACTIVE);
    g_assert_cmphex(zwrite(d, ZSLBA(3), 8, 3), ==, ST_TOO_ACTIVE);
    g_assert_cmphex(zappend(d, ZSLBA(3), 8, ZSLBA(3), 3, NULL), ==,
                    ST_TOO_ACTIVE);
    check_zone(d, 3, ZS_EMPTY, 0);
    g_assert_cmphex(zms(d, ZSLBA(3), NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    check_zone(d, 3, ZS_FULL, 0);

    /* ... but a closed one can open again, once */
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_OPEN), ==, ST_OK);
    check_zone(d, 1, ZS_EOPEN, 8);
    g_assert_cmphex(zms(d, ZSLBA(2), NVME_ZONE_ACTION_OPEN), ==, ST_TOO_OPEN);
    g_assert_cmphex(zwrite(d, ZSLBA(2) + 8, 8, 2), ==, ST_TOO_OPEN);
    check_zone(d, 2, ZS_CLOSED, 8);

    /* A full zone frees both resources */
    g_assert_cmphex(zms(d, ZSLBA(0), NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    g_assert_cmphex(zms(d, ZSLBA(4), NVME_ZONE_ACTION_OPEN), ==, ST_OK);
    check_zone(d, 4, ZS_EOPEN, 0);
    g_assert_cmphex(zms(d, ZSLBA(2), NVME_ZONE_ACTION_OPEN), ==, ST_TOO_OPEN);

    /*
     * At the open limit with implicitly open zones, the controller may
     * close one of them to open another (QEMU's zoned.auto_transition,
     * on by default): the least recently opened/written one
     */
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_RESET | ZSA_SELECT_ALL), ==,
                    ST_OK);
    zwrite_ok(d, ZSLBA(0), 8, 0);
    zwrite_ok(d, ZSLBA(1), 8, 1);
    zwrite_ok(d, ZSLBA(2), 8, 2);
    check_zone(d, 0, ZS_CLOSED, 8);
    check_zone(d, 1, ZS_IOPEN, 8);
    check_zone(d, 2, ZS_IOPEN, 8);
    /* An explicit open of a closed zone may close an implicitly open one */
    g_assert_cmphex(zms(d, ZSLBA(0), NVME_ZONE_ACTION_OPEN), ==, ST_OK);
    check_zone(d, 0, ZS_EOPEN, 8);
    check_zone(d, 1, ZS_CLOSED, 8);
    check_zone(d, 2, ZS_IOPEN, 8);
    zread_check(d, ZSLBA(1), 8, 1, false);

    /* 3 active: an empty zone cannot open, even by closing another one */
    g_assert_cmphex(zwrite(d, ZSLBA(3), 8, 3), ==, ST_TOO_ACTIVE);
    check_zone(d, 3, ZS_EMPTY, 0);
    /*
     * A command that fails changes no zone.  Not on raw: QEMU's emulation
     * closes an implicitly open zone (nvme_zrm_auto_transition_zone())
     * before it finds that the active limit refuses the new one.
     */
    if (d->v->qcow2) {
        check_zone(d, 2, ZS_IOPEN, 8);
    }

    check_still_works(d);
    zdev_free(d);
}

static void test_select_all(const void *opaque)
{
    ZDev *d = zdev_new(opaque);
    uint8_t zs[NR_ZONES];
    uint64_t wp[NR_ZONES] = { 0 };
    int z;

    if (!d) {
        return;
    }
    for (z = 0; z < NR_ZONES; z++) {
        zs[z] = ZS_EMPTY;
    }

    /* Closed 0, implicitly open 1, explicitly open 2, full 3 */
    zwrite_ok(d, ZSLBA(0), 8, 0);
    g_assert_cmphex(zms(d, ZSLBA(0), NVME_ZONE_ACTION_CLOSE), ==, ST_OK);
    zwrite_ok(d, ZSLBA(1), 8, 1);
    g_assert_cmphex(zms(d, ZSLBA(2), NVME_ZONE_ACTION_OPEN), ==, ST_OK);
    zwrite_ok(d, ZSLBA(2), 8, 2);
    g_assert_cmphex(zms(d, ZSLBA(3), NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    zs[0] = ZS_CLOSED;
    zs[1] = ZS_IOPEN;
    zs[2] = ZS_EOPEN;
    zs[3] = ZS_FULL;
    wp[0] = wp[1] = wp[2] = 8;
    check_all_zones(d, zs, wp);

    /* Offline all: no read-only zone, nothing happens */
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_OFFLINE | ZSA_SELECT_ALL), ==,
                    ST_OK);
    check_all_zones(d, zs, wp);

    /* Close all: the open zones */
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_CLOSE | ZSA_SELECT_ALL), ==,
                    ST_OK);
    zs[1] = zs[2] = ZS_CLOSED;
    check_all_zones(d, zs, wp);

    /* Open all: the closed zones (two of them, the open limit) */
    g_assert_cmphex(zms(d, ZSLBA(0), NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    zs[0] = ZS_FULL;
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_OPEN | ZSA_SELECT_ALL), ==,
                    ST_OK);
    zs[1] = zs[2] = ZS_EOPEN;
    check_all_zones(d, zs, wp);

    /* Open all without closed zones: nothing happens */
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_OPEN | ZSA_SELECT_ALL), ==,
                    ST_OK);
    check_all_zones(d, zs, wp);

    /* Finish all: open and closed zones, not the empty ones */
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_CLOSE), ==, ST_OK);
    zwrite_ok(d, ZSLBA(4), 8, 4);
    zs[1] = ZS_CLOSED;
    zs[4] = ZS_IOPEN;
    wp[4] = 8;
    check_all_zones(d, zs, wp);
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_FINISH | ZSA_SELECT_ALL), ==,
                    ST_OK);
    zs[1] = zs[2] = zs[4] = ZS_FULL;
    check_all_zones(d, zs, wp);
    zread_check(d, ZSLBA(4), 8, 4, false);

    /* Reset all: every zone that is not empty */
    zwrite_ok(d, ZSLBA(7), 8, 7);
    g_assert_cmphex(zms(d, ZSLBA(7), NVME_ZONE_ACTION_CLOSE), ==, ST_OK);
    zwrite_ok(d, ZSLBA(5), 8, 5);
    g_assert_cmphex(zms(d, ZSLBA(6), NVME_ZONE_ACTION_OPEN), ==, ST_OK);
    zs[5] = ZS_IOPEN;
    zs[6] = ZS_EOPEN;
    zs[7] = ZS_CLOSED;
    wp[5] = wp[7] = 8;
    check_all_zones(d, zs, wp);
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_RESET | ZSA_SELECT_ALL), ==,
                    ST_OK);
    for (z = 0; z < NR_ZONES; z++) {
        zs[z] = ZS_EMPTY;
        wp[z] = 0;
    }
    check_all_zones(d, zs, wp);
    zread_check(d, ZSLBA(4), 8, 0, true);
    zread_check(d, ZSLBA(7), 8, 0, true);

    /* Reset all of nothing; all resources are free again */
    g_assert_cmphex(zms(d, 0, NVME_ZONE_ACTION_RESET | ZSA_SELECT_ALL), ==,
                    ST_OK);
    g_assert_cmphex(zms(d, ZSLBA(8), NVME_ZONE_ACTION_OPEN), ==, ST_OK);
    g_assert_cmphex(zms(d, ZSLBA(9), NVME_ZONE_ACTION_OPEN), ==, ST_OK);
    check_zone(d, 8, ZS_EOPEN, 0);
    check_zone(d, 9, ZS_EOPEN, 0);

    check_still_works(d);
    zdev_free(d);
}

static void test_append(const void *opaque)
{
    ZDev *d = zdev_new(opaque);
    uint64_t lba;

    if (!d) {
        return;
    }

    /* Appends land at the write pointer, one after the other */
    g_assert_cmphex(zappend(d, ZSLBA(0), 8, ZSLBA(0), 0, &lba), ==, ST_OK);
    g_assert_cmpuint(lba, ==, ZSLBA(0));
    g_assert_cmphex(zappend(d, ZSLBA(0), 8, ZSLBA(0) + 8, 0, &lba), ==,
                    ST_OK);
    g_assert_cmpuint(lba, ==, ZSLBA(0) + 8);
    check_zone(d, 0, ZS_IOPEN, 16);
    zread_check(d, ZSLBA(0), 16, 0, false);

    g_assert_cmphex(zappend(d, ZSLBA(1), 1, ZSLBA(1), 1, &lba), ==, ST_OK);
    g_assert_cmpuint(lba, ==, ZSLBA(1));
    g_assert_cmphex(zappend(d, ZSLBA(1), 8, ZSLBA(1) + 1, 1, &lba), ==,
                    ST_OK);
    g_assert_cmpuint(lba, ==, ZSLBA(1) + 1);
    check_zone(d, 1, ZS_IOPEN, 9);
    /* ... and after a write */
    zwrite_ok(d, ZSLBA(1) + 9, 7, 1);
    g_assert_cmphex(zappend(d, ZSLBA(1), 16, ZSLBA(1) + 16, 1, &lba), ==,
                    ST_OK);
    g_assert_cmpuint(lba, ==, ZSLBA(1) + 16);
    zread_check(d, ZSLBA(1), 32, 1, false);

    /* SLBA must be the zone start */
    g_assert_cmphex(zappend(d, ZSLBA(0) + 16, 8, 0, 0, NULL), ==, ST_INVAL);
    g_assert_cmphex(zappend(d, ZSLBA(0) + 1, 8, 0, 0, NULL), ==, ST_INVAL);
    check_zone(d, 0, ZS_IOPEN, 16);
    g_assert_cmphex(zappend(d, NSZE, 8, 0, 0, NULL), ==, ST_LBA_RANGE);

    /* At most ZASL */
    g_assert_cmphex(zappend(d, ZSLBA(0), ZASL_BYTES / LBA_SIZE + 1, 0, 0,
                            NULL), ==, ST_INVAL);
    g_assert_cmphex(zappend(d, ZSLBA(0), 2 * ZASL_BYTES / LBA_SIZE, 0, 0,
                            NULL), ==, ST_INVAL);
    check_zone(d, 0, ZS_IOPEN, 16);
    g_assert_cmphex(zappend(d, ZSLBA(0), ZASL_BYTES / LBA_SIZE,
                            ZSLBA(0) + 16, 0, &lba), ==, ST_OK);
    g_assert_cmpuint(lba, ==, ZSLBA(0) + 16);
    zread_check(d, ZSLBA(0), 16 + ZASL_BYTES / LBA_SIZE, 0, false);

    /* Within the capacity: up to it but not beyond */
    zwrite_ok(d, ZSLBA(1) + 32, ZCAP_LBAS - 32 - 8, 1);
    g_assert_cmphex(zappend(d, ZSLBA(1), 16, 0, 1, NULL), ==, ST_BOUNDARY);
    g_assert_cmphex(zappend(d, ZSLBA(1), 9, 0, 1, NULL), ==, ST_BOUNDARY);
    check_zone(d, 1, ZS_IOPEN, ZCAP_LBAS - 8);
    g_assert_cmphex(zappend(d, ZSLBA(1), 8, ZSLBA(1) + ZCAP_LBAS - 8, 1,
                            &lba), ==, ST_OK);
    g_assert_cmpuint(lba, ==, ZSLBA(1) + ZCAP_LBAS - 8);
    check_zone(d, 1, ZS_FULL, 0);
    zread_check(d, ZSLBA(1) + ZCAP_LBAS - 16, 16, 1, false);

    /* Full zones */
    g_assert_cmphex(zappend(d, ZSLBA(1), 8, 0, 1, NULL), ==, ST_FULL);
    g_assert_cmphex(zms(d, ZSLBA(0), NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    g_assert_cmphex(zappend(d, ZSLBA(0), 8, 0, 0, NULL), ==, ST_FULL);
    g_assert_cmphex(zappend(d, ZSLBA(0), 1, 0, 0, NULL), ==, ST_FULL);

    /* A reset zone starts over */
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_RESET), ==, ST_OK);
    g_assert_cmphex(zappend(d, ZSLBA(1), 8, ZSLBA(1), 9, &lba), ==, ST_OK);
    g_assert_cmpuint(lba, ==, ZSLBA(1));
    zread_check(d, ZSLBA(1), 8, 9, false);

    check_still_works(d);
    zdev_free(d);
}

static void test_write(const void *opaque)
{
    ZDev *d = zdev_new(opaque);

    if (!d) {
        return;
    }

    /* Only at the write pointer */
    g_assert_cmphex(zwrite(d, ZSLBA(0) + 8, 8, 0), ==, ST_INVAL_WRITE);
    check_zone(d, 0, ZS_EMPTY, 0);
    zwrite_ok(d, ZSLBA(0), 8, 0);
    g_assert_cmphex(zwrite(d, ZSLBA(0), 8, 0), ==, ST_INVAL_WRITE);
    g_assert_cmphex(zwrite(d, ZSLBA(0) + 4, 8, 0), ==, ST_INVAL_WRITE);
    g_assert_cmphex(zwrite(d, ZSLBA(0) + 16, 8, 0), ==, ST_INVAL_WRITE);
    g_assert_cmphex(zwrite(d, ZSLBA(0) + ZCAP_LBAS, 8, 0), ==,
                    ST_INVAL_WRITE);
    check_zone(d, 0, ZS_IOPEN, 8);
    zwrite_ok(d, ZSLBA(0) + 8, 8, 0);
    check_zone(d, 0, ZS_IOPEN, 16);
    zread_check(d, ZSLBA(0), 16, 0, false);

    /* Beyond the capacity */
    zwrite_ok(d, ZSLBA(0) + 16, ZCAP_LBAS - 16 - 8, 0);
    check_zone(d, 0, ZS_IOPEN, ZCAP_LBAS - 8);
    g_assert_cmphex(zwrite(d, ZSLBA(0) + ZCAP_LBAS - 8, 16, 0), ==,
                    ST_BOUNDARY);
    g_assert_cmphex(zwrite(d, ZSLBA(0) + ZCAP_LBAS - 8, 9, 0), ==,
                    ST_BOUNDARY);
    /* ... and across the zone boundary */
    g_assert_cmphex(zwrite(d, ZSLBA(0) + ZCAP_LBAS - 8,
                           ZONE_LBAS - ZCAP_LBAS + 16, 0), ==, ST_BOUNDARY);
    check_zone(d, 0, ZS_IOPEN, ZCAP_LBAS - 8);
    /* Up to it: the zone is full */
    zwrite_ok(d, ZSLBA(0) + ZCAP_LBAS - 8, 8, 0);
    check_zone(d, 0, ZS_FULL, 0);
    zread_check(d, ZSLBA(0) + ZCAP_LBAS - 16, 16, 0, false);

    /* Full zones */
    g_assert_cmphex(zwrite(d, ZSLBA(0), 8, 0), ==, ST_FULL);
    g_assert_cmphex(zwrite(d, ZSLBA(0) + ZCAP_LBAS, 8, 0), ==, ST_FULL);
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    g_assert_cmphex(zwrite(d, ZSLBA(1), 1, 1), ==, ST_FULL);
    check_zone(d, 1, ZS_FULL, 0);

    /* Past the end of the namespace */
    g_assert_cmphex(zwrite(d, NSZE - 8, 16, 0), ==, ST_LBA_RANGE);
    g_assert_cmphex(zwrite(d, NSZE, 1, 0), ==, ST_LBA_RANGE);
    g_assert_cmphex(zwrite(d, 1ULL << 40, 1, 0), ==, ST_LBA_RANGE);
    g_assert_cmphex(zwrite(d, UINT64_MAX, 1, 0), ==, ST_LBA_RANGE);
    check_zone(d, NR_ZONES - 1, ZS_EMPTY, 0);

    /* More than MDTS */
    g_assert_cmphex(zwrite(d, ZSLBA(2), MDTS_BYTES / LBA_SIZE + 1, 0), ==,
                    ST_INVAL);
    check_zone(d, 2, ZS_EMPTY, 0);

    /* The last zone can be written to its capacity */
    zwrite_ok(d, ZSLBA(NR_ZONES - 1), ZCAP_LBAS, 15);
    check_zone(d, NR_ZONES - 1, ZS_FULL, 0);
    zread_check(d, ZSLBA(NR_ZONES - 1), 64, 15, false);

    check_still_works(d);
    zdev_free(d);
}

static void test_read(const void *opaque)
{
    ZDev *d = zdev_new(opaque);

    if (!d) {
        return;
    }

    /* Past the write pointer: zeroes */
    zwrite_ok(d, ZSLBA(0), 8, 0);
    g_assert_cmphex(zread(d, ZSLBA(0), 16), ==, ST_OK);
    check_buf(d, 0, ZSLBA(0), 8, 0, false);
    check_buf(d, 8, ZSLBA(0) + 8, 8, 0, true);
    zread_check(d, ZSLBA(0) + 100, 8, 0, true);
    zread_check(d, ZSLBA(5), 64, 0, true);
    /* Between the capacity and the end of the zone */
    zread_check(d, ZSLBA(0) + ZCAP_LBAS, ZONE_LBAS - ZCAP_LBAS, 0, true);

    /* Across zone boundaries */
    zwrite_ok(d, ZSLBA(1), 8, 1);
    g_assert_cmphex(zread(d, ZSLBA(1) - 8, 16), ==, ST_OK);
    check_buf(d, 0, ZSLBA(1) - 8, 8, 0, true);
    check_buf(d, 8, ZSLBA(1), 8, 1, false);
    g_assert_cmphex(zread(d, ZSLBA(1) - 512, 1024), ==, ST_OK);
    check_buf(d, 0, 0, 512, 0, true);
    check_buf(d, 512, ZSLBA(1), 8, 1, false);
    check_buf(d, 520, 0, 504, 0, true);
    /* ... from a full zone into an empty one */
    g_assert_cmphex(zms(d, ZSLBA(2), NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    zread_check(d, ZSLBA(3) - 8, 16, 0, true);
    /* ... to the end of the namespace */
    zread_check(d, NSZE - 16, 16, 0, true);

    /* Past the end of the namespace */
    g_assert_cmphex(zread(d, NSZE - 8, 16), ==, ST_LBA_RANGE);
    g_assert_cmphex(zread(d, NSZE, 1), ==, ST_LBA_RANGE);
    g_assert_cmphex(zread(d, UINT64_MAX, 1), ==, ST_LBA_RANGE);
    /* More than MDTS */
    g_assert_cmphex(zread(d, 0, MDTS_BYTES / LBA_SIZE + 1), ==, ST_INVAL);

    /* Reads change no zone */
    check_zone(d, 0, ZS_IOPEN, 8);
    check_zone(d, 1, ZS_IOPEN, 8);
    check_zone(d, 3, ZS_EMPTY, 0);

    check_still_works(d);
    zdev_free(d);
}

static void test_flush(const void *opaque)
{
    ZDev *d = zdev_new(opaque);

    if (!d) {
        return;
    }

    g_assert_cmphex(zflush(d, NSID), ==, ST_OK);
    zwrite_ok(d, ZSLBA(0), 8, 0);
    g_assert_cmphex(zflush(d, NSID), ==, ST_OK);
    g_assert_cmphex(zflush(d, NVME_NSID_BROADCAST), ==, ST_OK);
    check_zone(d, 0, ZS_IOPEN, 8);

    check_still_works(d);
    zdev_free(d);
}

static void test_write_zeroes(const void *opaque)
{
    ZDev *d = zdev_new(opaque);

    if (!d) {
        return;
    }

    /* Write Zeroes moves the write pointer as Write does */
    zwrite_ok(d, ZSLBA(0), 8, 0);
    g_assert_cmphex(rw_cmd(d, NVME_CMD_WRITE_ZEROES, ZSLBA(0) + 8, 16, NULL),
                    ==, ST_OK);
    check_zone(d, 0, ZS_IOPEN, 24);
    zwrite_ok(d, ZSLBA(0) + 24, 8, 0);
    g_assert_cmphex(zread(d, ZSLBA(0), 32), ==, ST_OK);
    check_buf(d, 0, ZSLBA(0), 8, 0, false);
    check_buf(d, 8, 0, 16, 0, true);
    check_buf(d, 24, ZSLBA(0) + 24, 8, 0, false);

    /* ... and follows the same rules */
    g_assert_cmphex(rw_cmd(d, NVME_CMD_WRITE_ZEROES, ZSLBA(0), 8, NULL), ==,
                    ST_INVAL_WRITE);
    g_assert_cmphex(rw_cmd(d, NVME_CMD_WRITE_ZEROES, ZSLBA(0) + 64, 8, NULL),
                    ==, ST_INVAL_WRITE);
    /*
     * Past the capacity: refused as a whole, nothing written (the block
     * layer splits a large Write Zeroes at cluster boundaries: each piece
     * must not be checked on its own)
     */
    g_assert_cmphex(rw_cmd(d, NVME_CMD_WRITE_ZEROES, ZSLBA(0) + 32,
                           ZONE_LBAS + 52, NULL), ==, ST_BOUNDARY);
    check_zone(d, 0, ZS_IOPEN, 32);
    g_assert_cmphex(rw_cmd(d, NVME_CMD_WRITE_ZEROES, ZSLBA(0) + 32,
                           ZCAP_LBAS - 32 + 1, NULL), ==, ST_BOUNDARY);
    check_zone(d, 0, ZS_IOPEN, 32);
    g_assert_cmphex(rw_cmd(d, NVME_CMD_WRITE_ZEROES, ZSLBA(0) + 32,
                           ZCAP_LBAS, NULL), ==, ST_BOUNDARY);
    check_zone(d, 0, ZS_IOPEN, 32);
    g_assert_cmphex(rw_cmd(d, NVME_CMD_WRITE_ZEROES, NSZE - 8, 16, NULL), ==,
                    ST_LBA_RANGE);
    check_zone(d, 0, ZS_IOPEN, 32);
    /* Up to the capacity, from an empty zone: full */
    g_assert_cmphex(rw_cmd(d, NVME_CMD_WRITE_ZEROES, ZSLBA(1), ZCAP_LBAS,
                           NULL), ==, ST_OK);
    check_zone(d, 1, ZS_FULL, 0);
    g_assert_cmphex(rw_cmd(d, NVME_CMD_WRITE_ZEROES, ZSLBA(1), 8, NULL), ==,
                    ST_FULL);
    zread_check(d, ZSLBA(1) + ZCAP_LBAS - 64, 64, 0, true);

    /*
     * Not aligned to the image's 64K clusters, and across them: from the
     * write pointer to just past a cluster, then across three more
     */
    zwrite_ok(d, ZSLBA(2), 8, 2);
    g_assert_cmphex(rw_cmd(d, NVME_CMD_WRITE_ZEROES, ZSLBA(2) + 8, 121,
                           NULL), ==, ST_OK);
    g_assert_cmphex(rw_cmd(d, NVME_CMD_WRITE_ZEROES, ZSLBA(2) + 129, 300,
                           NULL), ==, ST_OK);
    zwrite_ok(d, ZSLBA(2) + 429, 8, 2);
    check_zone(d, 2, ZS_IOPEN, 437);
    g_assert_cmphex(zread(d, ZSLBA(2), 437), ==, ST_OK);
    check_buf(d, 0, ZSLBA(2), 8, 2, false);
    check_buf(d, 8, 0, 421, 0, true);
    check_buf(d, 429, ZSLBA(2) + 429, 8, 2, false);

    /* Force Unit Access: Write, Write Zeroes, Zone Append, Read */
    fill_buf(d, ZSLBA(0) + 32, 8, 0);
    g_assert_cmphex(rw_cmd_flags(d, NVME_CMD_WRITE, ZSLBA(0) + 32, 8,
                                 NVME_RW_FUA << 16, NULL), ==, ST_OK);
    g_assert_cmphex(rw_cmd_flags(d, NVME_CMD_WRITE_ZEROES, ZSLBA(0) + 40, 8,
                                 NVME_RW_FUA << 16, NULL), ==, ST_OK);
    fill_buf(d, ZSLBA(0) + 48, 8, 0);
    g_assert_cmphex(rw_cmd_flags(d, NVME_CMD_ZONE_APPEND, ZSLBA(0), 8,
                                 NVME_RW_FUA << 16, NULL), ==, ST_OK);
    g_assert_cmphex(rw_cmd_flags(d, NVME_CMD_READ, ZSLBA(0) + 32, 24,
                                 NVME_RW_FUA << 16, NULL), ==, ST_OK);
    check_buf(d, 0, ZSLBA(0) + 32, 8, 0, false);
    check_buf(d, 8, 0, 8, 0, true);
    check_buf(d, 16, ZSLBA(0) + 48, 8, 0, false);
    check_zone(d, 0, ZS_IOPEN, 56);

    check_still_works(d);
    zdev_free(d);
}

#define QD 8

/* @n Zone Appends of 8 blocks to zone @z at once, data of seed @seed + i */
static void append_batch(ZDev *d, int z, int n, uint8_t seed, NvmeCqe *cqes)
{
    NvmeCmd cmds[QD];
    int i;

    g_assert(n <= QD);
    for (i = 0; i < n; i++) {
        uint64_t buf = d->buf + i * PAGE_SIZE_NVME;
        uint8_t p[8 * LBA_SIZE];
        int j;

        for (j = 0; j < sizeof(p); j++) {
            p[j] = pattern_byte(j / LBA_SIZE, j % LBA_SIZE, seed + i);
        }
        qtest_memwrite(d->qts, buf, p, sizeof(p));
        rw_setup(d, &cmds[i], NVME_CMD_ZONE_APPEND, ZSLBA(z), 8, 0);
        cmds[i].dptr.prp1 = cpu_to_le64(buf);
        cmds[i].dptr.prp2 = 0;
    }
    submit_batch(d, cmds, n, cqes);
}

static uint64_t cqe_lba(const NvmeCqe *cqe)
{
    return le32_to_cpu(cqe->result) | (uint64_t)le32_to_cpu(cqe->dw1) << 32;
}

/* The appends that succeeded took distinct places in [@start, @end) */
static int check_appends(ZDev *d, const NvmeCqe *cqes, int n, uint8_t seed,
                         uint64_t start, uint64_t end)
{
    uint64_t taken = 0;
    int i, ok = 0;

    for (i = 0; i < n; i++) {
        uint64_t lba = cqe_lba(&cqes[i]);
        uint64_t bit;

        if (le16_to_cpu(cqes[i].status) >> 1) {
            continue;
        }
        ok++;
        g_assert_cmpuint(lba, >=, start);
        g_assert_cmpuint(lba + 8, <=, end);
        g_assert_cmpuint((lba - start) % 8, ==, 0);
        bit = 1ULL << ((lba - start) / 8);
        g_assert(!(taken & bit));
        taken |= bit;
        g_assert_cmphex(zread(d, lba, 8), ==, ST_OK);
        check_buf(d, 0, 0, 8, seed + i, false);
    }
    return ok;
}

static void test_append_qd(const void *opaque)
{
    ZDev *d = zdev_new(opaque);
    NvmeCqe cqes[QD];
    int i;

    if (!d) {
        return;
    }

    /* QD appends at once to one zone: all land, one after the other */
    append_batch(d, 0, QD, 0x10, cqes);
    for (i = 0; i < QD; i++) {
        g_assert_cmphex(le16_to_cpu(cqes[i].status) >> 1, ==, ST_OK);
    }
    g_assert_cmpint(check_appends(d, cqes, QD, 0x10, ZSLBA(0),
                                  ZSLBA(0) + QD * 8), ==, QD);
    check_zone(d, 0, ZS_IOPEN, QD * 8);

    /*
     * Room for 3 of 5: 3 land, the others fail.  Whether those find the
     * zone full or the capacity exhausted depends on when the controller
     * looks (QEMU's emulation: Zone Boundary Error, as the zone's capacity
     * is taken by appends in flight; a zoned qcow2 image: Zone Is Full).
     */
    zwrite_ok(d, ZSLBA(1), ZCAP_LBAS - 24, 1);
    append_batch(d, 1, 5, 0x20, cqes);
    for (i = 0; i < 5; i++) {
        uint16_t st = le16_to_cpu(cqes[i].status) >> 1;

        g_assert(st == ST_OK || st == ST_FULL || st == ST_BOUNDARY);
    }
    g_assert_cmpint(check_appends(d, cqes, 5, 0x20, ZSLBA(1) + ZCAP_LBAS - 24,
                                  ZSLBA(1) + ZCAP_LBAS), ==, 3);
    check_zone(d, 1, ZS_FULL, 0);

    check_still_works(d);
    zdev_free(d);
}

/*
 * A controller reset keeps the zones as they are; a shutdown closes the
 * open ones (or makes them empty if nothing was written to them), as a
 * power cycle does.
 */
static void test_ctrl_reset(const void *opaque)
{
    ZDev *d = zdev_new(opaque);
    gint64 end;
    ZReport r;
    uint32_t cc;

    if (!d) {
        return;
    }

    zwrite_ok(d, ZSLBA(0), 8, 0);
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_OPEN), ==, ST_OK);
    g_assert_cmphex(zms(d, ZSLBA(2), NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    zwrite_ok(d, ZSLBA(3), 8, 3);
    g_assert_cmphex(zms(d, ZSLBA(3), NVME_ZONE_ACTION_CLOSE), ==, ST_OK);

    /* Reset: the write pointers stay */
    controller_enable(d);
    report(d, 0, NVME_ZONE_REPORT_ALL, false, &r);
    g_assert_cmpuint(r.d[0].wp, ==, ZSLBA(0) + 8);
    g_assert_cmpuint(r.d[1].wp, ==, ZSLBA(1));
    /*
     * ... and so do the zone states, on a zoned drive as in QEMU's own
     * (zone 0 was closed implicitly when zone 3 took its open resource)
     */
    check_descr(&r.d[0], 0, ZS_CLOSED, ZSLBA(0) + 8);
    check_descr(&r.d[1], 1, ZS_EOPEN, ZSLBA(1));
    check_descr(&r.d[2], 2, ZS_FULL, 0);
    check_descr(&r.d[3], 3, ZS_CLOSED, ZSLBA(3) + 8);
    zread_check(d, ZSLBA(0), 8, 0, false);

    /* Shutdown notification, then enable again */
    zwrite_ok(d, ZSLBA(0) + 8, 8, 0);
    cc = reg_read32(d, NVME_REG_CC);
    reg_write32(d, NVME_REG_CC, cc | 1 << CC_SHN_SHIFT);
    end = g_get_monotonic_time() + CMD_TIMEOUT_S * G_USEC_PER_SEC;
    while (((reg_read32(d, NVME_REG_CSTS) >> 2) & 3) != 2) {
        g_assert(g_get_monotonic_time() < end);
        g_usleep(1000);
    }
    controller_enable(d);
    check_zone(d, 0, ZS_CLOSED, 16);
    check_zone(d, 1, ZS_EMPTY, 0);
    check_zone(d, 2, ZS_FULL, 0);
    check_zone(d, 3, ZS_CLOSED, 8);
    zread_check(d, ZSLBA(0), 16, 0, false);
    zread_check(d, ZSLBA(3), 8, 3, false);

    check_still_works(d);
    zdev_free(d);
}

/*** Persistence (zoned qcow2 only: QEMU's emulation keeps zones in RAM) ***/

#define PERSIST_IMG_ENV "QTEST_NVME_ZONED_IMG"

/*
 * Zone 0: 24 blocks written, implicitly open; zone 1: written to its
 * capacity; zone 2: 8 blocks, closed; zone 3: finished; zone 4: written
 * and reset.
 */
static void persist_setup(ZDev *d)
{
    zwrite_ok(d, ZSLBA(0), 24, 0);
    zwrite_ok(d, ZSLBA(1), ZCAP_LBAS, 1);
    g_assert_cmphex(zms(d, ZSLBA(2), NVME_ZONE_ACTION_OPEN), ==, ST_OK);
    zwrite_ok(d, ZSLBA(2), 8, 2);
    g_assert_cmphex(zms(d, ZSLBA(2), NVME_ZONE_ACTION_CLOSE), ==, ST_OK);
    g_assert_cmphex(zms(d, ZSLBA(3), NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    zwrite_ok(d, ZSLBA(4), 8, 4);
    g_assert_cmphex(zms(d, ZSLBA(4), NVME_ZONE_ACTION_RESET), ==, ST_OK);
}

/*
 * After a restart, zones that were open are closed (a controller reset
 * closes open zones); write pointers and data are what they were.
 */
static void persist_check(ZDev *d)
{
    uint8_t zs[NR_ZONES];
    uint64_t wp[NR_ZONES] = { 24, 0, 8 };
    uint64_t lba;
    int z;

    for (z = 0; z < NR_ZONES; z++) {
        zs[z] = ZS_EMPTY;
    }
    zs[0] = ZS_CLOSED;
    zs[1] = ZS_FULL;
    zs[2] = ZS_CLOSED;
    zs[3] = ZS_FULL;
    check_all_zones(d, zs, wp);

    zread_check(d, ZSLBA(0), 24, 0, false);
    zread_check(d, ZSLBA(0) + 24, 8, 0, true);
    zread_check(d, ZSLBA(1), 512, 1, false);
    zread_check(d, ZSLBA(1) + ZCAP_LBAS - 512, 512, 1, false);
    zread_check(d, ZSLBA(2), 8, 2, false);
    zread_check(d, ZSLBA(4), 8, 0, true);

    /* The zones go on from where they were */
    g_assert_cmphex(zwrite(d, ZSLBA(0), 8, 0), ==, ST_INVAL_WRITE);
    g_assert_cmphex(zwrite(d, ZSLBA(1) + ZCAP_LBAS - 8, 8, 1), ==, ST_FULL);
    zwrite_ok(d, ZSLBA(0) + 24, 8, 0);
    check_zone(d, 0, ZS_IOPEN, 32);
    g_assert_cmphex(zappend(d, ZSLBA(2), 8, ZSLBA(2) + 8, 2, &lba), ==,
                    ST_OK);
    g_assert_cmpuint(lba, ==, ZSLBA(2) + 8);
    zread_check(d, ZSLBA(0), 32, 0, false);
    zread_check(d, ZSLBA(2), 16, 2, false);
}

static void test_persist_quit(const void *opaque)
{
    ZDev *d = zdev_new(opaque);

    if (!d) {
        return;
    }

    /* No flush: a clean shutdown writes everything */
    persist_setup(d);
    zdev_stop(d);
    zdev_start(d);
    persist_check(d);

    /* Twice */
    zdev_stop(d);
    zdev_start(d);
    check_zone(d, 0, ZS_CLOSED, 32);
    check_zone(d, 2, ZS_CLOSED, 16);

    check_still_works(d);
    zdev_free(d);
}

/* In a test subprocess: QEMU on the image the parent made */
static ZDev *power_cut_dev(const ZVariant *v)
{
    ZDev *d = g_new0(ZDev, 1);

    d->v = v;
    d->nsid = NSID;
    d->img = g_strdup(g_getenv(PERSIST_IMG_ENV));
    g_assert(d->img);
    zdev_start(d);
    return d;
}

/*
 * Run the test's subprocess part on a fresh image, then start QEMU again
 * on what the power cut left
 */
static ZDev *after_power_cut(const ZVariant *v)
{
    ZDev *d = zdev_create(v);

    if (!d) {
        return NULL;
    }
    g_setenv(PERSIST_IMG_ENV, d->img, true);
    g_test_trap_subprocess(NULL, 60 * G_USEC_PER_SEC,
                           G_TEST_SUBPROCESS_INHERIT_STDERR);
    g_unsetenv(PERSIST_IMG_ENV);
    g_test_trap_assert_passed();
    zdev_start(d);
    return d;
}

/* In a test subprocess: SIGKILL QEMU, reap it and exit */
static void G_NORETURN power_cut(ZDev *d)
{
    pid_t pid = qtest_pid(d->qts);
    int wstatus;

    g_assert_cmpint(pid, >, 0);
    g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
    g_assert_cmpint(waitpid(pid, &wstatus, 0), ==, pid);
    g_assert(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL);
    _exit(0);
}

static void test_persist_kill(const void *opaque)
{
    const ZVariant *v = opaque;
    ZDev *d;

    if (g_test_subprocess()) {
        /*
         * Power cut: what was flushed must be there afterwards.  libqtest
         * cannot see its QEMU die of SIGKILL without aborting, so this part
         * runs in a subprocess that kills and reaps QEMU and then exits
         * without a word to libqtest.
         */
        d = power_cut_dev(v);
        persist_setup(d);
        g_assert_cmphex(zflush(d, NSID), ==, ST_OK);

        power_cut(d);
    }

    d = after_power_cut(v);
    if (!d) {
        return;
    }
    persist_check(d);
    check_still_works(d);
    zdev_free(d);
}

/*
 * Write and Zone Append with Force Unit Access are durable when they
 * complete, with no Flush: after a power cut, their data and write
 * pointers are there.
 */
static void test_persist_fua(const void *opaque)
{
    const ZVariant *v = opaque;
    NvmeCqe cqe;
    ZDev *d;

    if (g_test_subprocess()) {
        d = power_cut_dev(v);
        /* Each made durable by its own FUA: no later one flushes for it */
        fill_buf(d, ZSLBA(1), 8, 8);
        g_assert_cmphex(rw_cmd_flags(d, NVME_CMD_ZONE_APPEND, ZSLBA(1), 8,
                                     NVME_RW_FUA << 16, &cqe), ==, ST_OK);
        g_assert_cmpuint(cqe_lba(&cqe), ==, ZSLBA(1));
        fill_buf(d, ZSLBA(0), 16, 7);
        g_assert_cmphex(rw_cmd_flags(d, NVME_CMD_WRITE, ZSLBA(0), 16,
                                     NVME_RW_FUA << 16, NULL), ==, ST_OK);
        g_assert_cmphex(rw_cmd_flags(d, NVME_CMD_WRITE_ZEROES, ZSLBA(1) + 8,
                                     8, NVME_RW_FUA << 16, NULL), ==, ST_OK);
        power_cut(d);
    }

    d = after_power_cut(v);
    if (!d) {
        return;
    }
    check_zone(d, 0, ZS_CLOSED, 16);
    check_zone(d, 1, ZS_CLOSED, 16);
    zread_check(d, ZSLBA(0), 16, 7, false);
    zread_check(d, ZSLBA(1) + 8, 8, 0, true);
    g_assert_cmphex(zread(d, ZSLBA(1), 8), ==, ST_OK);
    check_buf(d, 0, ZSLBA(1), 8, 8, false);
    check_still_works(d);
    zdev_free(d);
}

/*** Copy and Dataset Management ***/

/* Copy the one range @slba..+@nlb to @sdlba (source range format 0) */
/* Copy @nr ranges, each of @nlb blocks from @slba, to @sdlba onwards */
static uint16_t zcopy_n(ZDev *d, uint64_t slba, uint32_t nlb, uint64_t sdlba,
                        int nr)
{
    uint8_t range[2][32] = {};
    NvmeCmd cmd = {};
    int i;

    g_assert(nr >= 1 && nr <= ARRAY_SIZE(range));
    for (i = 0; i < nr; i++) {
        stq_le_p(&range[i][8], slba);
        stw_le_p(&range[i][16], nlb - 1);
    }
    qtest_memwrite(d->qts, d->buf, range, sizeof(range[0]) * nr);
    cmd.opcode = NVME_CMD_COPY;
    set_prps(d, &cmd, sizeof(range[0]) * nr);
    cmd.cdw10 = cpu_to_le32(sdlba);
    cmd.cdw11 = cpu_to_le32(sdlba >> 32);
    cmd.cdw12 = cpu_to_le32(nr - 1);    /* format 0 */
    return io(d, &cmd, NULL);
}

static uint16_t zcopy(ZDev *d, uint64_t slba, uint32_t nlb, uint64_t sdlba)
{
    return zcopy_n(d, slba, nlb, sdlba, 1);
}

/*
 * Copy into a zone writes at its write pointer, under the zone rules; on a
 * zoned drive, Dataset Management leaves the data where it is.
 */
static void test_copy_dsm(const void *opaque)
{
    ZDev *d = zdev_new(opaque);
    uint8_t range[16] = {};
    NvmeCmd cmd = {};

    if (!d) {
        return;
    }

    zwrite_ok(d, ZSLBA(0), 16, 5);
    g_assert_cmphex(zcopy(d, ZSLBA(0), 16, ZSLBA(1)), ==, ST_OK);
    g_assert_cmphex(zread(d, ZSLBA(1), 16), ==, ST_OK);
    check_buf(d, 0, ZSLBA(0), 16, 5, false);
    check_zone(d, 1, ZS_IOPEN, 16);

    /*
     * Not at the write pointer (twice), into a full zone.  QEMU's own
     * emulation completes the first without DNR: only ours is held to it.
     */
#define COPY_ST(st) (d->v->qcow2 ? (st) : (st) & ~NVME_DNR)
    g_assert_cmphex(COPY_ST(zcopy(d, ZSLBA(0), 8, ZSLBA(1) + 32)), ==,
                    COPY_ST(ST_INVAL_WRITE));
    g_assert_cmphex(COPY_ST(zcopy(d, ZSLBA(0), 8, ZSLBA(1) + ZCAP_LBAS - 8)),
                    ==, COPY_ST(ST_INVAL_WRITE));
    g_assert_cmphex(zms(d, ZSLBA(2), NVME_ZONE_ACTION_FINISH), ==, ST_OK);
#undef COPY_ST
    if (d->v->qcow2) {
        /* QEMU's emulation: Invalid Zone State Transition, not Zone Full */
        g_assert_cmphex(zcopy(d, ZSLBA(0), 8, ZSLBA(2)), ==, ST_FULL);
    }
    check_zone(d, 1, ZS_IOPEN, 16);

    if (d->v->qcow2) {
        /* Deallocate zone 0's blocks: advisory, the data stays */
        stl_le_p(&range[4], 16);
        stq_le_p(&range[8], ZSLBA(0));
        qtest_memwrite(d->qts, d->buf, range, sizeof(range));
        cmd.opcode = NVME_CMD_DSM;
        set_prps(d, &cmd, sizeof(range));
        cmd.cdw11 = cpu_to_le32(NVME_DSMGMT_AD);
        g_assert_cmphex(io(d, &cmd, NULL), ==, ST_OK);
        zread_check(d, ZSLBA(0), 16, 5, false);
        check_zone(d, 0, ZS_IOPEN, 16);

        /*
         * Two ranges, each one a valid write where it goes, that together
         * go past the zone's capacity: refused before anything is written
         */
        zwrite_ok(d, ZSLBA(3), ZCAP_LBAS - 8, 6);
        g_assert_cmphex(zcopy_n(d, ZSLBA(0), 8, ZSLBA(3) + ZCAP_LBAS - 8, 2),
                        ==, ST_BOUNDARY);
        check_zone(d, 3, ZS_IOPEN, ZCAP_LBAS - 8);
        /* where they fit, both are written */
        g_assert_cmphex(zcopy_n(d, ZSLBA(0), 4, ZSLBA(3) + ZCAP_LBAS - 8, 2),
                        ==, ST_OK);
        g_assert_cmphex(zread(d, ZSLBA(3) + ZCAP_LBAS - 8, 8), ==, ST_OK);
        check_buf(d, 0, ZSLBA(0), 4, 5, false);
        check_buf(d, 4, ZSLBA(0), 4, 5, false);
    }

    check_still_works(d);
    zdev_free(d);
}

/*** Registration ***/

/*
 * A second namespace whose drive takes larger Zone Appends (256K) than the
 * first (64K): Identify Controller states the smaller limit (ZASL is one
 * for the controller), and the second namespace keeps to it
 */
static void test_zasl_two_namespaces(const void *opaque)
{
    ZDev *d = zdev_create(opaque);
    g_autofree char *img2 = NULL;

    if (!d) {
        return;
    }
    img2 = create_zoned_image("zone.mode=host-managed,zone.size=1M,"
                              "zone.capacity=768K,"
                              "zone.max_append_bytes=256K", "16M");
    d->extra = g_strdup_printf(
        "-blockdev file,filename=%s,node-name=f2 "
        "-blockdev qcow2,file=f2,node-name=zd2 "
        "-device nvme-ns,drive=zd2,bus=nvme0,nsid=2", img2);
    zdev_start(d);

    g_assert_cmpuint(identify_zasl(d), ==, ZASL);

    d->nsid = 2;
    g_assert_cmphex(zappend(d, ZSLBA(0), 2 * ZASL_BYTES / LBA_SIZE, 0, 0,
                            NULL), ==, ST_INVAL);
    check_zone(d, 0, ZS_EMPTY, 0);
    g_assert_cmphex(zappend(d, ZSLBA(0), ZASL_BYTES / LBA_SIZE, 0, 0, NULL),
                    ==, ST_OK);
    check_zone(d, 0, ZS_IOPEN, ZASL_BYTES / LBA_SIZE);
    zdev_free(d);
    unlink(img2);
}

/*
 * A second namespace on a read-only drive: every command that would write
 * gets Zone Is Read Only, as Zone Management Send does (a Write got Write
 * Fault, and QEMU printed an error for each), and reads work
 */
static void test_read_only_drive(const void *opaque)
{
    ZDev *d = zdev_create(opaque);
    g_autofree char *img2 = NULL;

    if (!d) {
        return;
    }
    img2 = create_image(d->v);
    d->extra = g_strdup_printf(
        "-blockdev file,filename=%s,node-name=f2,read-only=on "
        "-blockdev qcow2,file=f2,node-name=zd2,read-only=on "
        "-device nvme-ns,drive=zd2,bus=nvme0,nsid=2", img2);
    zdev_start(d);

    d->nsid = 2;
    g_assert_cmphex(zwrite(d, ZSLBA(1), 8, 1), ==, ST_ZONE_RO);
    g_assert_cmphex(rw_cmd(d, NVME_CMD_WRITE_ZEROES, ZSLBA(1), 8, NULL), ==,
                    ST_ZONE_RO);
    g_assert_cmphex(zappend(d, ZSLBA(1), 8, ZSLBA(1), 1, NULL), ==,
                    ST_ZONE_RO);
    g_assert_cmphex(zcopy(d, ZSLBA(0), 8, ZSLBA(1)), ==, ST_ZONE_RO);
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_OPEN), ==, ST_ZONE_RO);
    check_zone(d, 1, ZS_EMPTY, 0);
    zread_check(d, ZSLBA(1), 8, 0, true);

    /* The first namespace, on a writable drive, is not affected */
    d->nsid = NSID;
    zwrite_ok(d, ZSLBA(1), 8, 2);
    zread_check(d, ZSLBA(1), 8, 2, false);
    zdev_free(d);
    unlink(img2);
}

/*
 * An HMP command that must print nothing.  qemu-io commands name the
 * device (-d): on a node name, HMP attaches a BlockBackend of its own,
 * which drains the node, and waits for a request held at a breakpoint.
 */
static void hmp_quiet(ZDev *d, const char *cmd)
{
    g_autofree char *out = qtest_hmp(d->qts, "%s", cmd);

    g_assert_cmpstr(out, ==, "");
}

/*
 * An Abort of a Zone Append whose drive append is in flight (held at a
 * blkdebug breakpoint) cannot undo it: the append completes with its own
 * status and the LBA where its data went (it completed with Command Abort
 * Requested, and the host could not learn where its data was)
 */
static void test_abort_append(const void *opaque)
{
    ZDev *d = zdev_create(opaque);
    g_autofree char *img2 = NULL;
    NvmeCmd cmd, abort_cmd = { .opcode = NVME_ADM_CMD_ABORT };
    NvmeCqe cqe;
    uint16_t cid;
    uint64_t lba;

    if (!d) {
        return;
    }
    img2 = create_image(d->v);
    d->extra = g_strdup_printf(
        "-blockdev blkdebug,node-name=dbg2,image.driver=file,"
        "image.filename=%s "
        "-blockdev qcow2,file=dbg2,node-name=zd2 "
        "-device nvme-ns,id=ns2,drive=zd2,bus=nvme0,nsid=2", img2);
    zdev_start(d);
    d->nsid = 2;
    zwrite_ok(d, ZSLBA(1), 8, 1);

    hmp_quiet(d, "qemu-io -d ns2 \"break write_aio A\"");
    fill_buf(d, ZSLBA(1) + 8, 8, 2);
    rw_setup(d, &cmd, NVME_CMD_ZONE_APPEND, ZSLBA(1), 8, 0);
    cmd.nsid = cpu_to_le32(d->nsid);
    cid = submit_start(d, 1, &d->sq, &cmd);
    hmp_quiet(d, "qemu-io -d ns2 \"wait_break A\"");

    /* CDW10: SQID 1, CID; DW0 bit 0 set: not aborted, as it turns out */
    abort_cmd.cdw10 = cpu_to_le32(1 | (uint32_t)cid << 16);
    g_assert_cmphex(admin(d, &abort_cmd, &cqe), ==, ST_OK);
    g_assert_cmphex(le32_to_cpu(cqe.result) & 1, ==, 1);
    hmp_quiet(d, "qemu-io -d ns2 \"resume A\"");

    g_assert_cmphex(submit_wait(d, 1, &d->cq, cid, &cmd, &cqe), ==, ST_OK);
    lba = le32_to_cpu(cqe.result) | (uint64_t)le32_to_cpu(cqe.dw1) << 32;
    g_assert_cmpuint(lba, ==, ZSLBA(1) + 8);
    check_zone(d, 1, ZS_IOPEN, 16);
    zread_check(d, ZSLBA(1) + 8, 8, 2, false);
    zdev_free(d);
    unlink(img2);
}

/* x-blockdev-zone-fault: @fault for zone @z of the first namespace */
static void zone_fault(ZDev *d, int z, const char *fault)
{
    g_autoptr(QDict) resp = qtest_qmp(d->qts,
        "{'execute': 'x-blockdev-zone-fault', 'arguments': {"
        "'node-name': 'zd', 'offset': %" PRIu64 ", 'length': %" PRIu64 ", "
        "'fault': %s}}", (uint64_t)ZSLBA(z) * LBA_SIZE,
        (uint64_t)ZONE_LBAS * LBA_SIZE, fault);

    g_assert(qdict_haskey(resp, "return"));
}

/*
 * Zones that fail while the host runs, and across a restart: Zone Is Read
 * Only and Zone Is Offline for what they refuse, the report gives their
 * states (and no write pointer), Select All passes them by, and the
 * Offline action takes a Read Only zone offline, for good
 */
static void test_failed_zones(const void *opaque)
{
    static const uint32_t actions[] = {
        NVME_ZONE_ACTION_OPEN, NVME_ZONE_ACTION_CLOSE,
        NVME_ZONE_ACTION_FINISH, NVME_ZONE_ACTION_RESET,
    };
    ZDev *d = zdev_new(opaque);
    ZReport r;
    int i;

    if (!d) {
        return;
    }
    zwrite_ok(d, ZSLBA(1), 8, 1);
    zwrite_ok(d, ZSLBA(2), 8, 2);
    zone_fault(d, 1, "read-only");
    zone_fault(d, 2, "offline");

    report_n(d, ZSLBA(1), NVME_ZONE_REPORT_ALL, true, 2, &r);
    check_descr(&r.d[0], 1, ZS_RDONLY, 0);
    check_descr(&r.d[1], 2, ZS_OFFLINE, 0);
    g_assert_cmphex(r.d[0].wp, ==, UINT64_MAX);
    g_assert_cmphex(r.d[1].wp, ==, UINT64_MAX);
    report(d, 0, NVME_ZONE_REPORT_READ_ONLY, false, &r);
    g_assert_cmpuint(r.nr_zones, ==, 1);
    report(d, 0, NVME_ZONE_REPORT_OFFLINE, false, &r);
    g_assert_cmpuint(r.nr_zones, ==, 1);

    zread_check(d, ZSLBA(1), 8, 1, false);
    g_assert_cmphex(zwrite(d, ZSLBA(1) + 8, 8, 3), ==, ST_ZONE_RO);
    g_assert_cmphex(rw_cmd(d, NVME_CMD_WRITE_ZEROES, ZSLBA(1) + 8, 8, NULL),
                    ==, ST_ZONE_RO);
    g_assert_cmphex(zappend(d, ZSLBA(1), 8, ZSLBA(1) + 8, 3, NULL), ==,
                    ST_ZONE_RO);
    g_assert_cmphex(zread(d, ZSLBA(2), 8), ==, ST_ZONE_OFFLINE);
    g_assert_cmphex(zwrite(d, ZSLBA(2) + 8, 8, 3), ==, ST_ZONE_OFFLINE);
    g_assert_cmphex(zappend(d, ZSLBA(2), 8, ZSLBA(2) + 8, 3, NULL), ==,
                    ST_ZONE_OFFLINE);
    for (i = 0; i < ARRAY_SIZE(actions); i++) {
        g_assert_cmphex(zms(d, ZSLBA(1), actions[i]), ==, ST_INVAL_TRANS);
        g_assert_cmphex(zms(d, ZSLBA(2), actions[i]), ==, ST_INVAL_TRANS);
        g_assert_cmphex(zms(d, 0, actions[i] | ZSA_SELECT_ALL), ==, ST_OK);
    }
    check_zone(d, 1, ZS_RDONLY, 0);
    check_zone(d, 2, ZS_OFFLINE, 0);

    /* Offline: a Read Only zone goes, an Offline one stays, others not */
    g_assert_cmphex(zms(d, ZSLBA(3), NVME_ZONE_ACTION_OFFLINE), ==,
                    ST_INVAL_TRANS);
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_OFFLINE), ==, ST_OK);
    g_assert_cmphex(zms(d, ZSLBA(2), NVME_ZONE_ACTION_OFFLINE), ==, ST_OK);
    check_zone(d, 1, ZS_OFFLINE, 0);
    g_assert_cmphex(zread(d, ZSLBA(1), 8), ==, ST_ZONE_OFFLINE);

    /* Attributes: reported; a reset clears both, a finish its own */
    zone_fault(d, 4, "reset-recommended");
    zone_fault(d, 4, "finish-recommended");
    zone_fault(d, 5, "finish-recommended");
    report_n(d, ZSLBA(4), NVME_ZONE_REPORT_ALL, true, 2, &r);
    g_assert_cmphex(r.d[0].za, ==, NVME_ZA_RESET_RECOMMENDED |
                                   NVME_ZA_FINISH_RECOMMENDED);
    g_assert_cmphex(r.d[1].za, ==, NVME_ZA_FINISH_RECOMMENDED);
    zwrite_ok(d, ZSLBA(5), 8, 5);
    g_assert_cmphex(zms(d, ZSLBA(5), NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    g_assert_cmphex(zms(d, ZSLBA(4), NVME_ZONE_ACTION_FINISH), ==, ST_OK);
    report_n(d, ZSLBA(4), NVME_ZONE_REPORT_ALL, true, 2, &r);
    g_assert_cmphex(r.d[0].za, ==, NVME_ZA_RESET_RECOMMENDED);
    g_assert_cmphex(r.d[1].za, ==, 0);
    g_assert_cmphex(zms(d, ZSLBA(4), NVME_ZONE_ACTION_RESET), ==, ST_OK);
    report_n(d, ZSLBA(4), NVME_ZONE_REPORT_ALL, true, 1, &r);
    g_assert_cmphex(r.d[0].za, ==, 0);
    zone_fault(d, 6, "reset-recommended");

    zdev_stop(d);
    zdev_start(d);
    check_zone(d, 1, ZS_OFFLINE, 0);
    check_zone(d, 2, ZS_OFFLINE, 0);
    report_n(d, ZSLBA(6), NVME_ZONE_REPORT_ALL, true, 1, &r);
    g_assert_cmphex(r.d[0].za, ==, NVME_ZA_RESET_RECOMMENDED);
    g_assert_cmphex(zread(d, ZSLBA(1), 8), ==, ST_ZONE_OFFLINE);
    check_zone(d, 3, ZS_EMPTY, 0);
    zwrite_ok(d, ZSLBA(3), 8, 4);
    zdev_free(d);
}

/* Asynchronous events: Zone Descriptor Changed, the Changed Zone List */
#define LID_CHANGED_ZONES   0xbf
#define AEN_ZONE_CHANGED    (NVME_AER_TYPE_NOTICE | 0xef << 8 | \
                             LID_CHANGED_ZONES << 16)
#define OAES_ZDCN           (1U << 27)

/* Get Log Page of the Changed Zone List: its zone identifiers, or -1 */
static int changed_zones(ZDev *d, uint32_t nsid, uint8_t csi, bool rae,
                         uint64_t *zid, uint16_t *status)
{
    uint8_t log[4096];
    NvmeCmd cmd = {
        .opcode = NVME_ADM_CMD_GET_LOG_PAGE,
        .nsid = cpu_to_le32(nsid),
        .cdw10 = cpu_to_le32(LID_CHANGED_ZONES | (rae ? 1 << 15 : 0) |
                             (sizeof(log) / 4 - 1) << 16),
        .cdw14 = cpu_to_le32(csi << 24),
    };
    uint16_t nrzid;
    int i;

    set_prps(d, &cmd, sizeof(log));
    *status = admin(d, &cmd, NULL);
    if (*status) {
        return -1;
    }
    qtest_memread(d->qts, d->buf, log, sizeof(log));
    nrzid = lduw_le_p(log);
    for (i = 0; i < nrzid && i < 511; i++) {
        zid[i] = ldq_le_p(log + 8 + 8 * i);
    }
    return nrzid;
}

/* The Changed Zone List must be @n zones, @z0 and @z1 */
static void check_changed(ZDev *d, bool rae, int n, int z0, int z1)
{
    uint64_t zid[511];
    uint16_t status;

    g_assert_cmpint(changed_zones(d, NSID, NVME_CSI_ZONED, rae, zid,
                                  &status), ==, n);
    if (n > 0) {
        g_assert_cmphex(zid[0], ==, ZSLBA(z0));
    }
    if (n > 1) {
        g_assert_cmphex(zid[1], ==, ZSLBA(z1));
    }
}

static void set_aec(ZDev *d, uint32_t aec)
{
    NvmeCmd cmd = {
        .opcode = NVME_ADM_CMD_SET_FEATURES,
        .cdw10 = cpu_to_le32(NVME_ASYNCHRONOUS_EVENT_CONF),
        .cdw11 = cpu_to_le32(aec),
    };

    g_assert_cmphex(admin(d, &cmd, NULL), ==, ST_OK);
}

static uint16_t aer_start(ZDev *d)
{
    NvmeCmd cmd = { .opcode = NVME_ADM_CMD_ASYNC_EV_REQ };

    return submit_start(d, 0, &d->asq, &cmd);
}

/* The next admin completion is the event request @cid's, with @dw0 */
static void aer_wait(ZDev *d, uint16_t cid, uint32_t dw0)
{
    NvmeCmd cmd = { .opcode = NVME_ADM_CMD_ASYNC_EV_REQ };
    NvmeCqe cqe;

    g_assert_cmphex(submit_wait(d, 0, &d->acq, cid, &cmd, &cqe), ==, ST_OK);
    g_assert_cmphex(le32_to_cpu(cqe.result), ==, dw0);
}

/*
 * Zones that fail behind the host's back are listed in the Changed Zone
 * List, whether or not the host asked for Zone Descriptor Changed notices;
 * with them enabled, the first change after the list was read raises one.
 * A zone the host takes offline itself is not listed.  Every admin
 * command checks that the event request is still outstanding: its
 * completion would come first.
 */
static void test_zone_changed(const void *opaque)
{
    const ZVariant *v = opaque;
    ZDev *d = zdev_new(v);
    NvmeIdCtrl id;
    NvmeCmd cmd = {
        .opcode = NVME_ADM_CMD_IDENTIFY,
        .cdw10 = cpu_to_le32(NVME_ID_CNS_CTRL),
    };
    const uint64_t expect[] = {
        ZSLBA(1), ZSLBA(3), ZSLBA(2), ZSLBA(4), ZSLBA(5)
    };
    NvmeCmd nslog = {
        .opcode = NVME_ADM_CMD_GET_LOG_PAGE,
        .nsid = cpu_to_le32(0xffffffff),
        .cdw10 = cpu_to_le32(NVME_LOG_CHANGED_NSLIST | (4096 / 4 - 1) << 16),
    };
    uint64_t zid[511];
    uint16_t status, cid, cid_log;

    if (!d) {
        return;
    }
    set_prps(d, &cmd, sizeof(id));
    g_assert_cmphex(admin(d, &cmd, NULL), ==, ST_OK);
    qtest_memread(d->qts, d->buf, &id, sizeof(id));
    g_assert_cmphex(le32_to_cpu(id.oaes) & OAES_ZDCN, ==,
                    v->qcow2 ? OAES_ZDCN : 0);
    check_changed(d, false, 0, 0, 0);
    /* an I/O command set specific log page: CSI 2, of a namespace */
    g_assert_cmpint(changed_zones(d, NSID, NVME_CSI_NVM, false, zid,
                                  &status), ==, -1);
    g_assert_cmphex(status, ==, ST_INVAL);
    g_assert_cmpint(changed_zones(d, NSID + 1, NVME_CSI_ZONED, false, zid,
                                  &status), ==, -1);
    g_assert_cmphex(status, ==, ST_INVAL);
    if (!v->qcow2) {
        zdev_free(d);
        return;
    }

    /* Notices off: listed, no event */
    cid = aer_start(d);
    zone_fault(d, 1, "read-only");
    zone_fault(d, 3, "reset-recommended");
    zone_fault(d, 3, "finish-recommended");

    /* On, with zones listed already: the next change raises one */
    set_aec(d, OAES_ZDCN);
    zone_fault(d, 2, "offline");
    aer_wait(d, cid, AEN_ZONE_CHANGED);
    /* masked until the host reads the list; the host's Offline not listed */
    zone_fault(d, 4, "finish-recommended");
    hmp_quiet(d, "qemu-io -d ns1 \"zone_fault read-only 5M 1M\"");
    g_assert_cmphex(zms(d, ZSLBA(1), NVME_ZONE_ACTION_OFFLINE), ==, ST_OK);
    check_zone(d, 1, ZS_OFFLINE, 0);

    /* Retained: the list empties, the notice stays masked */
    cid = aer_start(d);
    g_assert_cmpint(changed_zones(d, NSID, NVME_CSI_ZONED, true, zid,
                                  &status), ==, 5);
    g_assert_cmpmem(zid, sizeof(expect), expect, sizeof(expect));
    zone_fault(d, 6, "read-only");
    check_changed(d, false, 1, 6, 0);

    /* Read without retaining: the next change raises the next notice */
    zone_fault(d, 7, "offline");
    aer_wait(d, cid, AEN_ZONE_CHANGED);
    zone_fault(d, 6, "clear");
    check_changed(d, false, 2, 7, 6);

    /*
     * A notice waiting behind the one that went out survives a read of
     * another Notice log page (the Changed Namespace List), which unmasks
     * Notices: it goes out then
     */
    cid = aer_start(d);
    zone_fault(d, 8, "read-only");
    aer_wait(d, cid, AEN_ZONE_CHANGED);
    cid = aer_start(d);
    zone_fault(d, 9, "read-only");
    set_prps(d, &nslog, 4096);
    cid_log = submit_start(d, 0, &d->asq, &nslog);
    aer_wait(d, cid, AEN_ZONE_CHANGED);
    g_assert_cmphex(submit_wait(d, 0, &d->acq, cid_log, &nslog, NULL), ==,
                    ST_OK);
    check_changed(d, false, 2, 8, 9);

    /* Notices off again: the list still fills, silently */
    set_aec(d, 0);
    cid = aer_start(d);
    zone_fault(d, 10, "read-only");
    check_changed(d, false, 1, 10, 0);
    zdev_free(d);
}

/*
 * More zones change than the Changed Zone List holds (511): it says so
 * (0xffff) instead of listing them, until the host reads it
 */
static void test_zone_changed_overflow(const void *opaque)
{
    ZDev *d = zdev_create(opaque);
    g_autofree char *img2 = NULL;
    g_autoptr(QDict) resp = NULL;
    uint64_t zid[511];
    uint16_t status;

    if (!d) {
        return;
    }
    /* 640 zones of 64 KiB */
    img2 = create_zoned_image("zone.mode=host-managed,zone.size=64K", "40M");
    d->extra = g_strdup_printf(
        "-blockdev qcow2,node-name=zd2,file.driver=file,file.filename=%s "
        "-device nvme-ns,drive=zd2,bus=nvme0,nsid=2", img2);
    zdev_start(d);
    resp = qtest_qmp(d->qts,
        "{'execute': 'x-blockdev-zone-fault', 'arguments': {"
        "'node-name': 'zd2', 'offset': 0, 'length': %d, "
        "'fault': 'finish-recommended'}}", 40 * 1024 * 1024);
    g_assert(qdict_haskey(resp, "return"));
    g_assert_cmpint(changed_zones(d, 2, NVME_CSI_ZONED, false, zid,
                                  &status), ==, 0xffff);
    g_assert_cmpint(changed_zones(d, 2, NVME_CSI_ZONED, false, zid,
                                  &status), ==, 0);
    zdev_free(d);
    unlink(img2);
}

typedef struct ZCase {
    const char *name;
    GTestDataFunc fn;
    bool qcow2_only;
} ZCase;

static const ZCase cases[] = {
    { "identify", test_identify },
    { "report", test_report },
    { "mgmt-send", test_mgmt_send },
    { "limits", test_limits },
    { "select-all", test_select_all },
    { "append", test_append },
    { "write", test_write },
    { "read", test_read },
    { "flush", test_flush },
    { "write-zeroes", test_write_zeroes },
    { "append-qd", test_append_qd },
    { "ctrl-reset", test_ctrl_reset },
    { "copy-dsm", test_copy_dsm },
    { "persist-quit", test_persist_quit, true },
    { "persist-kill", test_persist_kill, true },
    { "persist-fua", test_persist_fua, true },
    { "zasl-two-namespaces", test_zasl_two_namespaces, true },
    { "read-only-drive", test_read_only_drive, true },
    { "abort-append", test_abort_append, true },
    { "failed-zones", test_failed_zones, true },
    { "zone-changed", test_zone_changed },
    { "zone-changed-overflow", test_zone_changed_overflow, true },
};

static void add_cases(const ZVariant *v)
{
    int i;

    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        g_autofree char *path = NULL;

        if (cases[i].qcow2_only && !v->qcow2) {
            continue;
        }
        path = g_strdup_printf("nvme-zoned/%s/%s", v->name, cases[i].name);
        qtest_add_data_func(path, v, cases[i].fn);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    if (!g_getenv("QTEST_QEMU_IMG")) {
        g_test_message("QTEST_QEMU_IMG not set");
        return 0;
    }

    add_cases(&variant_raw);
    add_cases(&variant_qcow2);

    return g_test_run();
}
