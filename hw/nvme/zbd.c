/*
 * QEMU NVM Express: Zoned Namespaces on zoned block nodes
 *
 * A namespace whose drive is a host-managed zoned block node (a zoned qcow2
 * image, for one) is a ZNS namespace whose zones are the node's zones: the
 * geometry, the write pointers and the zone states all come from the node,
 * and hw/nvme keeps no copy of them.  Zone Management Send and Receive and
 * Zone Append become the block layer's zone calls; Write, Write Zeroes,
 * Read and Flush take the ordinary path, and the node refuses what breaks
 * the zone rules with an errno that nvme_zbd_errno_status() turns into the
 * ZNS status.  So does Copy: each range is written at SDLBA onwards, and
 * the first one a zone refuses ends the command with the zone's status;
 * that its whole destination lies in one zone, within the capacity, is
 * checked before anything is written (nvme_zbd_check_copy()).
 *
 * Zones fail in the drive (x-blockdev-zone-fault); the drive's report
 * gives their states and attributes.  Those that fail behind the host's
 * back are listed in the Changed Zone List and raise a Zone Descriptor
 * Changed notice (nvme_zbd_zones_changed()).
 *
 * Copyright (c) 2026 The zoned qcow2 authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/coroutine.h"
#include "qemu/iov.h"
#include "qemu/memalign.h"
#include "qapi/error.h"
#include "migration/blocker.h"
#include "block/block_int.h"
#include "system/block-backend.h"

#include "nvme.h"
#include "trace.h"

/* Zone descriptors fetched from the drive at a time */
#define NVME_ZBD_BATCH 1024

/* The unit of the Zone Append Size Limit: CAP.MPSMIN, 4 KiB */
#define NVME_ZBD_MIN_PAGE 4096

/*
 * ZASL 0 means "as MDTS": the smallest limit ZASL can state is two pages.
 */
#define NVME_ZBD_MIN_APPEND (2 * NVME_ZBD_MIN_PAGE)

/* The Changed Zone List log page (NVMe ZNS 5.3.1) */
#define NVME_ZBD_CHANGED_MAX 511

typedef struct QEMU_PACKED NvmeZbdChangedZones {
    uint16_t nrzid;          /* 0xffff: more zones changed than listed */
    uint8_t rsvd2[6];
    uint64_t zid[NVME_ZBD_CHANGED_MAX];
} NvmeZbdChangedZones;

QEMU_BUILD_BUG_ON(sizeof(NvmeZbdChangedZones) != 4096);

typedef struct NvmeZbdAIOCB NvmeZbdAIOCB;

struct NvmeZbd {
    uint64_t zone_bytes;     /* zone size in bytes */
    uint64_t max_append;     /* the largest Zone Append, in bytes */
    Error *migration_blocker;
    /*
     * The zones whose condition or attributes changed behind the host's
     * back since it last read the Changed Zone List: their ZSLBAs, or an
     * overflow once there are more than the log page holds
     */
    uint64_t changed[NVME_ZBD_CHANGED_MAX];
    unsigned int nr_changed;
    bool changed_overflow;
    /* Offline actions in flight: changes the host asked for itself */
    QLIST_HEAD(, NvmeZbdAIOCB) offlining;
};

/* The state of one Zone Management command, run in a coroutine */
struct NvmeZbdAIOCB {
    BlockAIOCB common;
    NvmeRequest *req;
    bool cancelled;
    /* Zone Management Send: the zone it takes offline, while it does */
    uint64_t offline_idx;
    QLIST_ENTRY(NvmeZbdAIOCB) offline_next;
    /* Zone Management Receive: the bytes to transfer */
    size_t len;
    /* Zone Append */
    int64_t offset;
    void *buf;
    QEMUIOVector qiov;
};

static void nvme_zbd_cancel(BlockAIOCB *acb)
{
    NvmeZbdAIOCB *iocb = container_of(acb, NvmeZbdAIOCB, common);

    /* Stops at the next zone; a drive request in flight runs to its end */
    iocb->cancelled = true;
}

static const AIOCBInfo nvme_zbd_aiocb_info = {
    .aiocb_size = sizeof(NvmeZbdAIOCB),
    .cancel_async = nvme_zbd_cancel,
};

/* The drive's name for messages: -drive id, else the node's name */
static const char *nvme_zbd_drive_name(BlockBackend *blk)
{
    const char *name = blk_name(blk);

    return *name ? name : bdrv_get_node_name(blk_bs(blk));
}

static bool nvme_zbd_drive_is_zoned(BlockBackend *blk)
{
    BlockDriverState *bs = blk_bs(blk);

    return bs && bs->bl.zoned == BLK_Z_HM;
}

/*
 * The status of a write that the drive of @ns refused for a zone rule, or 0
 * for an error of the drive's own
 */
uint16_t nvme_zbd_errno_status(NvmeNamespace *ns, int ret)
{
    switch (ret) {
    case -EINVAL:
        /* not at the write pointer */
        return NVME_ZONE_INVALID_WRITE | NVME_DNR;
    case -ERANGE:
        /* across the zone's capacity or into the next zone */
        return NVME_ZONE_BOUNDARY_ERROR | NVME_DNR;
    case -EFBIG:
        return NVME_ZONE_FULL | NVME_DNR;
    case -ETOOMANYREFS:
        return NVME_ZONE_TOO_MANY_OPEN | NVME_DNR;
    case -EOVERFLOW:
        return NVME_ZONE_TOO_MANY_ACTIVE | NVME_DNR;
    case -EROFS:
        return NVME_ZONE_READ_ONLY | NVME_DNR;
    case -ENODEV:
        /* also a read: nothing of an offline zone can be read */
        return NVME_ZONE_OFFLINE | NVME_DNR;
    case -EPERM:
    case -EACCES:
        /*
         * A read-only drive: as Zone Management Send says it.  On a
         * writable one, the host refused the write: the drive's error.
         */
        return blk_is_writable(ns->blkconf.blk) ?
               0 : NVME_ZONE_READ_ONLY | NVME_DNR;
    default:
        return 0;
    }
}

/*
 * Before a Copy writes its ranges one after the other from @slba: the
 * whole destination, @nlb blocks, must lie in one zone and within its
 * capacity, so that no range is written before a later one is refused.
 * That it starts at the write pointer, in a zone that is not full, the
 * drive checks at the first range, before anything is written.
 */
uint16_t nvme_zbd_check_copy(NvmeNamespace *ns, uint64_t slba, uint32_t nlb)
{
    uint64_t zslba;

    if (slba + nlb < slba || slba + nlb > le64_to_cpu(ns->id_ns.nsze)) {
        return NVME_LBA_RANGE | NVME_DNR;
    }
    zslba = slba - slba % ns->zone_size;
    if (slba + nlb > zslba + ns->zone_capacity) {
        return nvme_zbd_errno_status(ns, -ERANGE);
    }
    return NVME_SUCCESS;
}

/*
 * The zone management errnos: the drive checked the transition, or ran out
 * of open or active resources; an I/O error is the drive's own.
 */
static uint16_t nvme_zbd_mgmt_status(int ret)
{
    switch (ret) {
    case 0:
        return NVME_SUCCESS;
    case -EINVAL:
        return NVME_ZONE_INVAL_TRANSITION | NVME_DNR;
    case -ETOOMANYREFS:
        return NVME_ZONE_TOO_MANY_OPEN | NVME_DNR;
    case -EOVERFLOW:
        return NVME_ZONE_TOO_MANY_ACTIVE | NVME_DNR;
    case -EPERM:
    case -EACCES:
    case -EROFS:
        return NVME_ZONE_READ_ONLY | NVME_DNR;
    case -ENODEV:
        return NVME_ZONE_OFFLINE | NVME_DNR;
    default:
        return NVME_INTERNAL_DEV_ERROR;
    }
}

/* Geometry and limits */

static int nvme_zbd_refuse_param(NvmeNamespace *ns, Error **errp)
{
    const NvmeNamespaceParams *p = &ns->params;
    const char *drive = nvme_zbd_drive_name(ns->blkconf.blk);
    const char *given = p->zone_size_bs ? "zoned.zone_size" :
                        p->zone_cap_bs ? "zoned.zone_capacity" :
                        p->max_open_zones ? "zoned.max_open" :
                        p->max_active_zones ? "zoned.max_active" :
                        p->zd_extension_size ? "zoned.descr_ext_size" :
                        p->numzrwa ? "zoned.numzrwa" :
                        p->zrwas ? "zoned.zrwas" : NULL;

    if (given) {
        error_setg(errp, "'%s' cannot be set: the zones of a namespace on "
                   "zoned drive '%s' are the drive's", given, drive);
        return -1;
    }
    if (ns->params.ms || ns->params.pi) {
        error_setg(errp, "a namespace on zoned drive '%s' cannot have "
                   "metadata or protection information ('ms', 'pi')", drive);
        return -1;
    }
    if (ns->endgrp && ns->endgrp->fdp.enabled) {
        error_setg(errp, "a namespace on zoned drive '%s' cannot be part of "
                   "an FDP configuration", drive);
        return -1;
    }
    return 0;
}

/*
 * What the zones look like: no conventional zone, and every zone but a
 * short last one with the capacity of the first.
 */
static int nvme_zbd_check_zones(NvmeNamespace *ns, uint64_t zone_bytes,
                                uint32_t nr_zones, uint64_t *cap,
                                Error **errp)
{
    BlockBackend *blk = ns->blkconf.blk;
    g_autofree BlockZoneDescriptor *zones =
        g_new(BlockZoneDescriptor, NVME_ZBD_BATCH);
    uint32_t idx = 0, conv = 0, first_seq = 0, i;
    unsigned int n;
    int ret;

    *cap = 0;
    while (idx < nr_zones) {
        n = MIN(NVME_ZBD_BATCH, nr_zones - idx);
        ret = blk_zone_report(blk, idx * zone_bytes, &n, zones);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "cannot read the zones of drive "
                             "'%s'", nvme_zbd_drive_name(blk));
            return -1;
        }
        if (n == 0) {
            break;
        }
        for (i = 0; i < n; i++) {
            if (zones[i].type == BLK_ZT_CONV) {
                conv++;
            } else if (!*cap) {
                *cap = zones[i].cap;
                first_seq = idx + i;
            } else if (zones[i].cap != *cap &&
                       zones[i].length == zone_bytes) {
                error_setg(errp, "zone %u of drive '%s' has a capacity of "
                           "%" PRIu64 " bytes, zone %u one of %" PRIu64
                           " bytes: ZNS zones have one capacity",
                           idx + i, nvme_zbd_drive_name(blk), zones[i].cap,
                           first_seq, *cap);
                return -1;
            }
        }
        idx += n;
    }
    if (conv) {
        error_setg(errp, "drive '%s' has %u conventional zones "
                   "(zone.conventional_zones): a ZNS namespace has none",
                   nvme_zbd_drive_name(blk), conv);
        return -1;
    }
    return 0;
}

/* Zone Descriptor Changed */

/* Is the host taking zone @idx offline itself (Zone Management Send)? */
static bool nvme_zbd_host_offlines(NvmeZbd *zbd, uint64_t idx)
{
    NvmeZbdAIOCB *iocb;

    QLIST_FOREACH(iocb, &zbd->offlining, offline_next) {
        if (iocb->offline_idx == idx) {
            return true;
        }
    }
    return false;
}

/* List the zone at @zslba; false if the list stays as it was */
static bool nvme_zbd_list_changed(NvmeZbd *zbd, uint64_t zslba)
{
    unsigned int i;

    if (zbd->changed_overflow) {
        return false;
    }
    for (i = 0; i < zbd->nr_changed; i++) {
        if (zbd->changed[i] == zslba) {
            return false;
        }
    }
    if (zbd->nr_changed == NVME_ZBD_CHANGED_MAX) {
        zbd->changed_overflow = true;
        return true;
    }
    zbd->changed[zbd->nr_changed++] = zslba;
    return true;
}

/*
 * A Zone Descriptor Changed notice for @n, if it enabled them and none is
 * waiting to go out already (one that went out masks the next ones until
 * the host reads the log page)
 */
static void nvme_zbd_notify(NvmeCtrl *n, NvmeNamespace *ns)
{
    if (!n || nvme_ns(n, ns->params.nsid) != ns ||
        !NVME_AEC_ZONE_DESCR_CHANGED(n->features.async_config) ||
        nvme_event_queued(n, NVME_AER_TYPE_NOTICE,
                          NVME_LOG_CHANGED_ZONE_LIST)) {
        return;
    }
    trace_pci_nvme_zbd_zones_changed(ns->params.nsid, n->cntlid,
                                     ns->zbd->nr_changed,
                                     ns->zbd->changed_overflow);
    nvme_enqueue_event(n, NVME_AER_TYPE_NOTICE,
                       NVME_AER_INFO_NOTICE_ZONE_DESCR_CHANGED,
                       NVME_LOG_CHANGED_ZONE_LIST);
}

/*
 * Zones of the drive in [@offset, @offset + @len) failed, or their faults
 * were cleared, behind the host's back (x-blockdev-zone-fault, qemu-io's
 * zone_fault): they join the Changed Zone List of the namespace, and each
 * controller the namespace is attached to that enabled Zone Descriptor
 * Changed notices gets one.  The list is the namespace's: the first
 * controller that reads it empties it.
 */
static void nvme_zbd_zones_changed(void *opaque, int64_t offset, int64_t len)
{
    NvmeNamespace *ns = opaque;
    NvmeZbd *zbd = ns->zbd;
    bool listed = false;
    uint64_t idx, end;
    int i;

    /* hw/nvme runs in the main loop, and so do its drives */
    assert(qemu_in_main_thread());
    if (!zbd || offset < 0 || len <= 0) {
        return;
    }
    idx = offset / zbd->zone_bytes;
    end = MIN(DIV_ROUND_UP((uint64_t)offset + len, zbd->zone_bytes),
              ns->num_zones);
    for (; idx < end; idx++) {
        if (!nvme_zbd_host_offlines(zbd, idx)) {
            listed |= nvme_zbd_list_changed(zbd, idx * ns->zone_size);
        }
    }
    if (!listed) {
        return;
    }
    if (!ns->subsys) {
        /* the controller's own drive= */
        nvme_zbd_notify(ns->ctrl, ns);
        return;
    }
    for (i = 0; i < NVME_MAX_CONTROLLERS; i++) {
        nvme_zbd_notify(nvme_subsys_ctrl(ns->subsys, i), ns);
    }
}

/*
 * Get Log Page of the Changed Zone List of namespace NSID; reading it
 * empties it.  A namespace of hw/nvme's own zone emulation has none.
 */
uint16_t nvme_zbd_changed_zones_log(NvmeCtrl *n, NvmeRequest *req,
                                    uint8_t csi, uint8_t rae,
                                    uint32_t buf_len, uint64_t off)
{
    NvmeNamespace *ns = nvme_ns(n, le32_to_cpu(req->cmd.nsid));
    NvmeZbdChangedZones log = {};
    NvmeZbd *zbd;
    unsigned int i;

    if (csi != NVME_CSI_ZONED || !ns || ns->csi != NVME_CSI_ZONED ||
        off >= sizeof(log)) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }
    zbd = ns->zbd;
    if (zbd) {
        log.nrzid = cpu_to_le16(zbd->changed_overflow ? 0xffff :
                                zbd->nr_changed);
        for (i = 0; i < zbd->nr_changed && !zbd->changed_overflow; i++) {
            log.zid[i] = cpu_to_le64(zbd->changed[i]);
        }
        zbd->nr_changed = 0;
        zbd->changed_overflow = false;
    }
    if (!rae) {
        nvme_clear_log_events(n, NVME_AER_TYPE_NOTICE,
                              NVME_LOG_CHANGED_ZONE_LIST);
    }
    return nvme_c2h(n, (uint8_t *)&log + off, MIN(sizeof(log) - off, buf_len),
                    req);
}

static const BlockDevOps nvme_zbd_dev_ops = {
    .zones_changed_cb = nvme_zbd_zones_changed,
};

int nvme_zbd_ns_setup(NvmeNamespace *ns, Error **errp)
{
    BlockBackend *blk = ns->blkconf.blk;
    const char *drive = nvme_zbd_drive_name(blk);
    BlockDriverState *bs = blk_bs(blk);
    NvmeIdNsZoned *id_ns_z;
    uint64_t zone_bytes, cap, nsze, zone_lbas, max_append;
    uint32_t nr_zones, max_open, i;

    if (!nvme_zbd_drive_is_zoned(blk)) {
        return 0;
    }
    if (nvme_zbd_refuse_param(ns, errp) < 0) {
        return -1;
    }

    if (bs->bl.write_granularity > ns->lbasz) {
        error_setg(errp, "drive '%s' writes in units of %u bytes, more than "
                   "the logical block size (%zu)", drive,
                   bs->bl.write_granularity, ns->lbasz);
        return -1;
    }
    zone_bytes = bs->bl.zone_size;
    if (!zone_bytes || zone_bytes % ns->lbasz) {
        error_setg(errp, "the zone size of drive '%s' (%" PRIu64 " bytes) "
                   "is not a multiple of the logical block size (%zu)",
                   drive, zone_bytes, ns->lbasz);
        return -1;
    }
    nr_zones = ns->size / zone_bytes;
    if (!nr_zones) {
        error_setg(errp, "drive '%s' is smaller than one zone", drive);
        return -1;
    }
    if (nvme_zbd_check_zones(ns, zone_bytes, bs->bl.nr_zones, &cap,
                             errp) < 0) {
        return -1;
    }
    if (!cap || cap % ns->lbasz) {
        error_setg(errp, "the zone capacity of drive '%s' (%" PRIu64
                   " bytes) is not a multiple of the logical block size "
                   "(%zu)", drive, cap, ns->lbasz);
        return -1;
    }
    max_append = (uint64_t)bs->bl.max_append_sectors << BDRV_SECTOR_BITS;
    if (max_append < NVME_ZBD_MIN_APPEND) {
        error_setg(errp, "drive '%s' takes zone appends of at most %" PRIu64
                   " bytes (zone.max_append_bytes): the smallest limit NVMe "
                   "can state (ZASL) is %d bytes", drive, max_append,
                   NVME_ZBD_MIN_APPEND);
        return -1;
    }
    if (ns->size % zone_bytes) {
        warn_report("the last %" PRIu64 " bytes of drive '%s', a "
                    "zone shorter than the others, are not part of the "
                    "namespace: ZNS zones are all of one size",
                    ns->size % zone_bytes, drive);
    }
    if (!is_power_of_2(zone_bytes)) {
        warn_report("the zone size of drive '%s' (%" PRIu64
                    " bytes) is not a power of two; NVMe allows it, but "
                    "Linux does not use such a namespace as a block device",
                    drive, zone_bytes);
    }

    ns->zbd = g_new0(NvmeZbd, 1);
    ns->zbd->zone_bytes = zone_bytes;
    ns->zbd->max_append = pow2floor(max_append);
    /* As hw/nvme's own: NVMe's migration state has no zoned namespaces */
    error_setg(&ns->zbd->migration_blocker, "Migration is not supported "
               "for the zoned namespace on drive '%s'", drive);
    if (migrate_add_blocker(&ns->zbd->migration_blocker, errp) < 0) {
        g_free(ns->zbd);
        ns->zbd = NULL;
        return -1;
    }

    zone_lbas = zone_bytes / ns->lbasz;
    ns->zone_size = zone_lbas;
    ns->zone_capacity = cap / ns->lbasz;
    ns->num_zones = nr_zones;
    ns->zone_size_log2 = is_power_of_2(zone_lbas) ? ctz64(zone_lbas) : 0;

    id_ns_z = g_new0(NvmeIdNsZoned, 1);
    /*
     * Zeroes-based; all ones: no limit.  An open limit may not exceed the
     * active one (a drive with only an active limit has both).
     */
    max_open = bs->bl.max_open_zones;
    if (bs->bl.max_active_zones &&
        (!max_open || max_open > bs->bl.max_active_zones)) {
        max_open = bs->bl.max_active_zones;
    }
    id_ns_z->mar = cpu_to_le32(bs->bl.max_active_zones - 1);
    id_ns_z->mor = cpu_to_le32(max_open - 1);
    /* reads may cross zone boundaries and go past the write pointer */
    id_ns_z->ozcs = cpu_to_le16(NVME_ID_NS_ZONED_OZCS_RAZB);
    /* in the units of each format (Format NVM is refused, though) */
    for (i = 0; i <= ns->id_ns.nlbaf; i++) {
        id_ns_z->lbafe[i].zsze =
            cpu_to_le64(zone_bytes >> ns->id_ns.lbaf[i].ds);
    }
    ns->id_ns_zoned = id_ns_z;

    nsze = nr_zones * zone_lbas;
    ns->id_ns.nsze = cpu_to_le64(nsze);
    ns->id_ns.ncap = ns->id_ns.nsze;
    ns->id_ns.nuse = ns->id_ns.nsze;
    ns->csi = NVME_CSI_ZONED;
    /* hw/nvme's own zone emulation stays off: the zones are the drive's */
    ns->params.zoned = false;

    QLIST_INIT(&ns->zbd->offlining);
    blk_set_dev_ops(blk, &nvme_zbd_dev_ops, ns);

    trace_pci_nvme_zbd_setup(drive, zone_lbas, ns->zone_capacity, nr_zones,
                             bs->bl.max_open_zones, bs->bl.max_active_zones,
                             ns->zbd->max_append);
    return 0;
}

void nvme_zbd_ns_cleanup(NvmeNamespace *ns)
{
    if (ns->zbd) {
        blk_set_dev_ops(ns->blkconf.blk, NULL, NULL);
        migrate_del_blocker(&ns->zbd->migration_blocker);
        g_free(ns->id_ns_zoned);
        ns->id_ns_zoned = NULL;
        g_free(ns->zbd);
        ns->zbd = NULL;
    }
}

uint8_t nvme_zbd_ctrl_zasl(NvmeCtrl *n)
{
    uint8_t zasl = n->params.zasl;
    int i;

    for (i = 1; i <= NVME_MAX_NAMESPACES; i++) {
        NvmeNamespace *ns = nvme_ns(n, i);
        uint8_t ns_zasl;

        if (!ns || !ns->zbd) {
            continue;
        }
        ns_zasl = ctz64(ns->zbd->max_append / NVME_ZBD_MIN_PAGE);
        if (n->params.mdts) {
            ns_zasl = MIN(ns_zasl, n->params.mdts);
        }
        if (!zasl || ns_zasl < zasl) {
            zasl = ns_zasl;
        }
    }
    return zasl;
}

/*
 * Controller shutdown (CC.SHN) and the namespace's unplug: open zones are
 * closed, as a power cycle leaves them; the drive keeps no open state
 * across a restart.  A controller reset leaves the zones as they are, as
 * for hw/nvme's own zoned namespaces.
 */
void nvme_zbd_ns_shutdown(NvmeNamespace *ns)
{
    BlockBackend *blk = ns->blkconf.blk;
    g_autofree BlockZoneDescriptor *zones = NULL;
    uint32_t idx = 0, i;
    unsigned int n;

    if (!ns->zbd) {
        return;
    }
    zones = g_new(BlockZoneDescriptor, NVME_ZBD_BATCH);
    while (idx < ns->num_zones) {
        n = MIN(NVME_ZBD_BATCH, ns->num_zones - idx);
        if (blk_zone_report(blk, idx * ns->zbd->zone_bytes, &n, zones) < 0 ||
            !n) {
            return;
        }
        for (i = 0; i < n; i++) {
            if (zones[i].state == BLK_ZS_IOPEN ||
                zones[i].state == BLK_ZS_EOPEN) {
                blk_zone_mgmt(blk, BLK_ZO_CLOSE, zones[i].start,
                              zones[i].length);
            }
        }
        idx += n;
    }
}

/* Commands */

/* The zone that @slba starts; an error if it starts none */
static uint16_t nvme_zbd_zone_slba(NvmeNamespace *ns, uint64_t slba,
                                   uint32_t *idx)
{
    if (slba >= le64_to_cpu(ns->id_ns.nsze)) {
        return NVME_LBA_RANGE | NVME_DNR;
    }
    if (slba % ns->zone_size) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }
    *idx = slba / ns->zone_size;
    return NVME_SUCCESS;
}

static void nvme_zbd_complete(void *opaque, int ret)
{
    NvmeRequest *req = opaque;

    req->aiocb = NULL;
    nvme_enqueue_req_completion(nvme_cq(req), req);
}

static NvmeZbdAIOCB *nvme_zbd_aiocb(NvmeRequest *req)
{
    NvmeZbdAIOCB *iocb = blk_aio_get(&nvme_zbd_aiocb_info,
                                     req->ns->blkconf.blk,
                                     nvme_zbd_complete, req);

    iocb->req = req;
    iocb->cancelled = false;
    iocb->len = 0;
    iocb->offset = 0;
    iocb->buf = NULL;
    req->aiocb = &iocb->common;
    req->status = NVME_SUCCESS;
    return iocb;
}

/*
 * Each drive request of the coroutine counts as in flight on its own, as
 * a device's requests do: a drain may complete between two of them, and
 * the next one waits for the drained section to end.
 */
static void nvme_zbd_start(NvmeZbdAIOCB *iocb, CoroutineEntry *fn)
{
    aio_co_enter(qemu_get_current_aio_context(),
                 qemu_coroutine_create(fn, iocb));
}

/*
 * Complete the command with @status, what it did.  An Abort sets Command
 * Abort Requested before it cancels; but a drive request in flight runs
 * to its end and cannot be undone, so the command's own status wins: its
 * caller passes Command Abort Requested only if it stopped early.  A Zone
 * Append that an Abort came too late for returns the LBA it wrote.
 */
static void coroutine_fn nvme_zbd_end(NvmeZbdAIOCB *iocb, uint16_t status)
{
    NvmeRequest *req = iocb->req;

    req->status = status;
    if (req->status) {
        trace_pci_nvme_zbd_status(nvme_cid(req), req->cmd.opcode,
                                  req->status);
    }
    iocb->common.cb(iocb->common.opaque, 0);
    qemu_aio_unref(iocb);
}

/* Zone Management Send */

/* May @action go from zone state @zs in one zone?  (NVMe ZNS 2.1) */
static bool nvme_zbd_transition_ok(uint8_t action, BlockZoneState zs)
{
    switch (action) {
    case NVME_ZONE_ACTION_OPEN:
        return zs == BLK_ZS_EMPTY || zs == BLK_ZS_IOPEN ||
               zs == BLK_ZS_EOPEN || zs == BLK_ZS_CLOSED;
    case NVME_ZONE_ACTION_CLOSE:
        return zs == BLK_ZS_IOPEN || zs == BLK_ZS_EOPEN ||
               zs == BLK_ZS_CLOSED;
    case NVME_ZONE_ACTION_FINISH:
    case NVME_ZONE_ACTION_RESET:
        return zs == BLK_ZS_EMPTY || zs == BLK_ZS_IOPEN ||
               zs == BLK_ZS_EOPEN || zs == BLK_ZS_CLOSED ||
               zs == BLK_ZS_FULL;
    default:
        /* Offline: a Read Only zone (an Offline one stays so) */
        return zs == BLK_ZS_RDONLY || zs == BLK_ZS_OFFLINE;
    }
}

/* Which zones Select All acts on (NVMe ZNS 3.4.3) */
static bool nvme_zbd_select_all(uint8_t action, BlockZoneState zs)
{
    switch (action) {
    case NVME_ZONE_ACTION_OPEN:
        return zs == BLK_ZS_CLOSED;
    case NVME_ZONE_ACTION_CLOSE:
        return zs == BLK_ZS_IOPEN || zs == BLK_ZS_EOPEN;
    case NVME_ZONE_ACTION_FINISH:
        return zs == BLK_ZS_IOPEN || zs == BLK_ZS_EOPEN ||
               zs == BLK_ZS_CLOSED;
    case NVME_ZONE_ACTION_RESET:
        return zs == BLK_ZS_IOPEN || zs == BLK_ZS_EOPEN ||
               zs == BLK_ZS_CLOSED || zs == BLK_ZS_FULL;
    default:
        return zs == BLK_ZS_RDONLY;
    }
}

static BlockZoneOp nvme_zbd_op(uint8_t action)
{
    switch (action) {
    case NVME_ZONE_ACTION_OPEN:
        return BLK_ZO_OPEN;
    case NVME_ZONE_ACTION_CLOSE:
        return BLK_ZO_CLOSE;
    case NVME_ZONE_ACTION_FINISH:
        return BLK_ZO_FINISH;
    default:
        return BLK_ZO_RESET;
    }
}

static void coroutine_fn nvme_zbd_send_co(void *opaque)
{
    NvmeZbdAIOCB *iocb = opaque;
    NvmeRequest *req = iocb->req;
    NvmeNamespace *ns = req->ns;
    NvmeZoneSendCmd *cmd = (NvmeZoneSendCmd *)&req->cmd;
    BlockBackend *blk = ns->blkconf.blk;
    uint64_t zone_bytes = ns->zbd->zone_bytes;
    bool all = cmd->zsflags & NVME_ZSFLAG_SELECT_ALL;
    uint8_t action = cmd->zsa;
    BlockZoneOp op = nvme_zbd_op(action);
    g_autofree BlockZoneDescriptor *zones = NULL;
    uint32_t idx, end, i;
    unsigned int n;
    int ret;

    if (all) {
        idx = 0;
        end = ns->num_zones;
    } else {
        idx = le64_to_cpu(cmd->slba) / ns->zone_size;
        end = idx + 1;
    }

    if (all && action == NVME_ZONE_ACTION_RESET) {
        /* One reset of every zone: the drive passes over empty ones */
        ret = blk_co_zone_mgmt(blk, BLK_ZO_RESET, 0,
                               ns->num_zones * zone_bytes);
        nvme_zbd_end(iocb, nvme_zbd_mgmt_status(ret));
        return;
    }

    zones = g_new(BlockZoneDescriptor, MIN(NVME_ZBD_BATCH, end - idx));
    while (idx < end && !iocb->cancelled) {
        n = MIN(NVME_ZBD_BATCH, end - idx);
        ret = blk_co_zone_report(blk, idx * zone_bytes, &n, zones);
        if (ret < 0 || !n) {
            nvme_zbd_end(iocb, NVME_INTERNAL_DEV_ERROR);
            return;
        }
        for (i = 0; i < n && !iocb->cancelled; i++) {
            BlockZoneState zs = zones[i].state;

            if (all ? !nvme_zbd_select_all(action, zs) :
                !nvme_zbd_transition_ok(action, zs)) {
                if (!all) {
                    nvme_zbd_end(iocb, NVME_ZONE_INVAL_TRANSITION |
                                 NVME_DNR);
                    return;
                }
                continue;
            }
            if (action == NVME_ZONE_ACTION_OFFLINE) {
                if (zs == BLK_ZS_RDONLY) {
                    /* the host's own change: no Zone Descriptor Changed */
                    iocb->offline_idx = idx + i;
                    QLIST_INSERT_HEAD(&ns->zbd->offlining, iocb,
                                      offline_next);
                    ret = blk_co_zone_fault(blk, zones[i].start, zone_bytes,
                                            BLOCK_ZONE_FAULT_OFFLINE, NULL);
                    QLIST_REMOVE(iocb, offline_next);
                    if (ret < 0) {
                        nvme_zbd_end(iocb, NVME_INTERNAL_DEV_ERROR);
                        return;
                    }
                }
                continue;
            }
            ret = blk_co_zone_mgmt(blk, op, zones[i].start, zone_bytes);
            if (ret == -EINVAL && all) {
                /* a write changed the zone's state since the report */
                continue;
            }
            if (ret < 0) {
                nvme_zbd_end(iocb, nvme_zbd_mgmt_status(ret));
                return;
            }
        }
        idx += i;
    }
    /* Cancelled before the last zone: what is done stays done */
    nvme_zbd_end(iocb, idx < end ? NVME_CMD_ABORT_REQ : NVME_SUCCESS);
}

static uint16_t nvme_zbd_mgmt_send(NvmeCtrl *n, NvmeRequest *req)
{
    NvmeZoneSendCmd *cmd = (NvmeZoneSendCmd *)&req->cmd;
    NvmeNamespace *ns = req->ns;
    bool all = cmd->zsflags & NVME_ZSFLAG_SELECT_ALL;
    uint64_t slba = le64_to_cpu(cmd->slba);
    uint32_t idx = 0;
    uint16_t status;

    trace_pci_nvme_zbd_mgmt_send(nvme_cid(req), slba, cmd->zsa, all);

    switch (cmd->zsa) {
    case NVME_ZONE_ACTION_OPEN:
        if (cmd->zsflags & NVME_ZSFLAG_ZRWA_ALLOC) {
            /* no Zone Random Write Area */
            return NVME_INVALID_ZONE_OP | NVME_DNR;
        }
        /* fall through */
    case NVME_ZONE_ACTION_CLOSE:
    case NVME_ZONE_ACTION_FINISH:
    case NVME_ZONE_ACTION_RESET:
    case NVME_ZONE_ACTION_OFFLINE:
        break;
    case NVME_ZONE_ACTION_SET_ZD_EXT:
        /* ZDES is 0: there are no zone descriptor extensions */
    default:
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    if (!all) {
        status = nvme_zbd_zone_slba(ns, slba, &idx);
        if (status) {
            return status;
        }
    }

    nvme_zbd_start(nvme_zbd_aiocb(req), nvme_zbd_send_co);
    return NVME_NO_COMPLETE;
}

/* Zone Management Receive */

/*
 * Copy @len bytes to the start of the host's buffer; the rest of it, past
 * the descriptors there are, is left as it was
 */
static uint16_t nvme_zbd_to_host(NvmeRequest *req, void *buf, size_t len)
{
    dma_addr_t residual;

    if (req->sg.flags & NVME_SG_DMA) {
        if (dma_buf_read(buf, len, &residual, &req->sg.qsg,
                         MEMTXATTRS_UNSPECIFIED) != MEMTX_OK) {
            return NVME_DATA_TRAS_ERROR;
        }
    } else if (qemu_iovec_from_buf(&req->sg.iov, 0, buf, len) != len) {
        return NVME_DATA_TRAS_ERROR;
    }
    return NVME_SUCCESS;
}

static bool nvme_zbd_report_matches(uint8_t zrasf, BlockZoneState zs)
{
    static const BlockZoneState filter[] = {
        [NVME_ZONE_REPORT_EMPTY] = BLK_ZS_EMPTY,
        [NVME_ZONE_REPORT_IMPLICITLY_OPEN] = BLK_ZS_IOPEN,
        [NVME_ZONE_REPORT_EXPLICITLY_OPEN] = BLK_ZS_EOPEN,
        [NVME_ZONE_REPORT_CLOSED] = BLK_ZS_CLOSED,
        [NVME_ZONE_REPORT_FULL] = BLK_ZS_FULL,
        [NVME_ZONE_REPORT_READ_ONLY] = BLK_ZS_RDONLY,
        [NVME_ZONE_REPORT_OFFLINE] = BLK_ZS_OFFLINE,
    };

    return zrasf == NVME_ZONE_REPORT_ALL || filter[zrasf] == zs;
}

static void coroutine_fn nvme_zbd_recv_co(void *opaque)
{
    NvmeZbdAIOCB *iocb = opaque;
    NvmeRequest *req = iocb->req;
    NvmeNamespace *ns = req->ns;
    BlockBackend *blk = ns->blkconf.blk;
    uint32_t dw13 = le32_to_cpu(req->cmd.cdw13);
    uint8_t zrasf = (dw13 >> 8) & 0xff;
    bool partial = (dw13 >> 16) & 1;
    uint64_t slba = le32_to_cpu(req->cmd.cdw10) |
                    ((uint64_t)le32_to_cpu(req->cmd.cdw11) << 32);
    uint32_t idx = slba / ns->zone_size;
    uint64_t max_descr, nr_descr = 0, nr_match = 0;
    g_autofree BlockZoneDescriptor *zones = NULL;
    g_autofree uint8_t *buf = NULL;
    NvmeZoneReportHeader *header;
    unsigned int nz;
    uint32_t i;
    uint16_t status;

    max_descr = (iocb->len - sizeof(NvmeZoneReportHeader)) /
                sizeof(NvmeZoneDescr);
    buf = g_try_malloc0(iocb->len);
    if (!buf) {
        nvme_zbd_end(iocb, NVME_INTERNAL_DEV_ERROR);
        return;
    }
    zones = g_new(BlockZoneDescriptor, NVME_ZBD_BATCH);

    while (idx < ns->num_zones && !iocb->cancelled) {
        nz = MIN(NVME_ZBD_BATCH, ns->num_zones - idx);
        if (partial && nr_descr == max_descr) {
            break;
        }
        if (blk_co_zone_report(blk, idx * ns->zbd->zone_bytes, &nz,
                               zones) < 0 || !nz) {
            nvme_zbd_end(iocb, NVME_INTERNAL_DEV_ERROR);
            return;
        }
        for (i = 0; i < nz; i++) {
            BlockZoneDescriptor *z = &zones[i];
            NvmeZoneDescr *d;

            if (!nvme_zbd_report_matches(zrasf, z->state)) {
                continue;
            }
            nr_match++;
            if (nr_descr == max_descr) {
                if (partial) {
                    break;
                }
                continue;
            }
            d = (NvmeZoneDescr *)(buf + sizeof(NvmeZoneReportHeader)) +
                nr_descr++;
            d->zt = NVME_ZONE_TYPE_SEQ_WRITE;
            d->zs = z->state << 4;
            d->za = (z->attrs & BLK_ZA_FINISH_RECOMMENDED ?
                     NVME_ZA_FINISH_RECOMMENDED : 0) |
                    (z->attrs & BLK_ZA_RESET_RECOMMENDED ?
                     NVME_ZA_RESET_RECOMMENDED : 0);
            d->zcap = cpu_to_le64(z->cap / ns->lbasz);
            d->zslba = cpu_to_le64(z->start / ns->lbasz);
            if (z->state == BLK_ZS_FULL || z->state == BLK_ZS_RDONLY ||
                z->state == BLK_ZS_OFFLINE) {
                /* the write pointer is not valid in these states */
                d->wp = cpu_to_le64(UINT64_MAX);
            } else {
                d->wp = cpu_to_le64(z->wp / ns->lbasz);
            }
        }
        idx += nz;
    }
    if (iocb->cancelled) {
        nvme_zbd_end(iocb, NVME_CMD_ABORT_REQ);
        return;
    }

    header = (NvmeZoneReportHeader *)buf;
    header->nr_zones = cpu_to_le64(partial ? nr_descr : nr_match);
    status = nvme_zbd_to_host(req, buf, iocb->len);
    nvme_zbd_end(iocb, status);
}

static uint16_t nvme_zbd_mgmt_recv(NvmeCtrl *n, NvmeRequest *req)
{
    NvmeNamespace *ns = req->ns;
    /* NUMD is zeroes-based, in dwords */
    uint64_t data_size = ((uint64_t)le32_to_cpu(req->cmd.cdw12) + 1) << 2;
    uint32_t dw13 = le32_to_cpu(req->cmd.cdw13);
    uint8_t zra = dw13 & 0xff, zrasf = (dw13 >> 8) & 0xff;
    uint64_t slba = le32_to_cpu(req->cmd.cdw10) |
                    ((uint64_t)le32_to_cpu(req->cmd.cdw11) << 32);
    uint64_t max_descr;
    NvmeZbdAIOCB *iocb;
    uint16_t status;
    size_t len;

    trace_pci_nvme_zbd_mgmt_recv(nvme_cid(req), slba, zra, zrasf, data_size);

    if (slba >= le64_to_cpu(ns->id_ns.nsze)) {
        return NVME_LBA_RANGE | NVME_DNR;
    }
    /* no Extended Report: ZDES is 0 */
    if (zra != NVME_ZONE_REPORT) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }
    if (zrasf > NVME_ZONE_REPORT_OFFLINE) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }
    if (data_size < sizeof(NvmeZoneReportHeader)) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }
    status = nvme_check_mdts(n, data_size);
    if (status) {
        return status;
    }
    /*
     * The host's whole buffer is mapped (an SGL must be used up), but what
     * is filled, allocated and transferred is never more than the
     * descriptors there are from SLBA's zone on: NUMD does not size an
     * allocation.
     */
    max_descr = (data_size - sizeof(NvmeZoneReportHeader)) /
                sizeof(NvmeZoneDescr);
    max_descr = MIN(max_descr, ns->num_zones - slba / ns->zone_size);
    len = sizeof(NvmeZoneReportHeader) + max_descr * sizeof(NvmeZoneDescr);
    status = nvme_map_dptr(n, &req->sg, data_size, &req->cmd);
    if (status) {
        return status;
    }

    iocb = nvme_zbd_aiocb(req);
    iocb->len = len;
    nvme_zbd_start(iocb, nvme_zbd_recv_co);
    return NVME_NO_COMPLETE;
}

/* Zone Append: one append of the drive a command, never split */

static void coroutine_fn nvme_zbd_append_co(void *opaque)
{
    NvmeZbdAIOCB *iocb = opaque;
    NvmeRequest *req = iocb->req;
    NvmeNamespace *ns = req->ns;
    NvmeRwCmd *rw = (NvmeRwCmd *)&req->cmd;
    NvmeZonedResult *res = (NvmeZonedResult *)&req->cqe;
    BlockBackend *blk = ns->blkconf.blk;
    BlockAcctStats *stats = blk_get_stats(blk);
    BdrvRequestFlags flags = 0;
    uint32_t nlb = iocb->qiov.size / ns->lbasz;
    uint16_t status;
    int ret;

    if (le16_to_cpu(rw->control) & NVME_RW_FUA) {
        flags |= BDRV_REQ_FUA;
    }
    ret = blk_co_zone_append(blk, &iocb->offset, &iocb->qiov, flags);
    qemu_vfree(iocb->buf);
    qemu_iovec_destroy(&iocb->qiov);
    if (ret < 0) {
        block_acct_failed(stats, &req->acct);
        status = nvme_zbd_errno_status(ns, ret);
        nvme_zbd_end(iocb, status ? status : NVME_WRITE_FAULT);
        return;
    }
    block_acct_done(stats, &req->acct);
    res->slba = cpu_to_le64(iocb->offset / ns->lbasz);
    trace_pci_nvme_zbd_append(nvme_cid(req), le64_to_cpu(res->slba), nlb,
                              !!(flags & BDRV_REQ_FUA));
    nvme_zbd_end(iocb, NVME_SUCCESS);
}

static uint16_t nvme_zbd_append(NvmeCtrl *n, NvmeRequest *req)
{
    NvmeNamespace *ns = req->ns;
    NvmeRwCmd *rw = (NvmeRwCmd *)&req->cmd;
    BlockBackend *blk = ns->blkconf.blk;
    uint64_t slba = le64_to_cpu(rw->slba);
    uint32_t nlb = (uint32_t)le16_to_cpu(rw->nlb) + 1;
    uint64_t len = (uint64_t)nlb * ns->lbasz;
    uint64_t max_append = ns->zbd->max_append;
    uint8_t zasl = nvme_zbd_ctrl_zasl(n);
    NvmeZbdAIOCB *iocb;
    uint32_t idx;
    uint16_t status;
    void *buf;

    status = nvme_check_mdts(n, len);
    if (status) {
        return status;
    }
    if (slba + nlb < slba || slba + nlb > le64_to_cpu(ns->id_ns.nsze)) {
        return NVME_LBA_RANGE | NVME_DNR;
    }
    /* Zone Append names the zone by its start (ZSLBA) */
    status = nvme_zbd_zone_slba(ns, slba, &idx);
    if (status) {
        return status;
    }
    /* What Identify states for the whole controller holds for each */
    if (zasl) {
        max_append = MIN(max_append, (uint64_t)NVME_ZBD_MIN_PAGE << zasl);
    }
    if (len > max_append) {
        return NVME_INVALID_FIELD | NVME_DNR;
    }

    status = nvme_map_dptr(n, &req->sg, len, &req->cmd);
    if (status) {
        return status;
    }
    buf = qemu_try_blockalign(blk_bs(blk), len);
    if (!buf) {
        return NVME_INTERNAL_DEV_ERROR;
    }
    /* a bounce buffer: the guest's pages may not map as one request */
    status = nvme_bounce_data(n, buf, len, NVME_TX_DIRECTION_TO_DEVICE, req);
    if (status) {
        qemu_vfree(buf);
        return status;
    }

    iocb = nvme_zbd_aiocb(req);
    iocb->offset = (int64_t)idx * ns->zbd->zone_bytes;
    iocb->buf = buf;
    qemu_iovec_init(&iocb->qiov, 1);
    qemu_iovec_add(&iocb->qiov, buf, len);
    block_acct_start(blk_get_stats(blk), &req->acct, len,
                     BLOCK_ACCT_ZONE_APPEND);
    nvme_zbd_start(iocb, nvme_zbd_append_co);
    return NVME_NO_COMPLETE;
}

/*
 * The commands a namespace on a zoned drive answers itself.  Returns false
 * for those that take hw/nvme's ordinary path.
 */
bool nvme_zbd_io_cmd(NvmeCtrl *n, NvmeRequest *req, uint16_t *status)
{
    switch (req->cmd.opcode) {
    case NVME_CMD_ZONE_APPEND:
        *status = nvme_zbd_append(n, req);
        return true;
    case NVME_CMD_ZONE_MGMT_SEND:
        *status = nvme_zbd_mgmt_send(n, req);
        return true;
    case NVME_CMD_ZONE_MGMT_RECV:
        *status = nvme_zbd_mgmt_recv(n, req);
        return true;
    case NVME_CMD_DSM:
        /*
         * Deallocation is advisory: a zone's write pointer says what it
         * holds, and Reset Zone frees its blocks.
         */
        *status = NVME_SUCCESS;
        return true;
    default:
        return false;
    }
}
