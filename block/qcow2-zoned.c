/*
 * qcow2 zoned images: on-disk format, creation, validation, check
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A zoned qcow2 image carries incompatible feature bit 5 and the zoned
 * header extension (docs/interop/qcow2.rst, "Zoned extension"), which
 * locates the write-pointer table: one 16-byte entry per zone, which
 * holds the zone's write pointer, the write pointer of the last completed
 * flush and a CRC-32C of the data between the two.  Everything read from
 * the image is validated here before it is used.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "block/block-io.h"
#include "qemu/bswap.h"
#include "qemu/crc32c.h"
#include "qemu/error-report.h"
#include "qemu/cutils.h"
#include "qemu/host-utils.h"
#include "qemu/memalign.h"
#include "qemu/option.h"
#include "qemu/range.h"
#include "qemu/units.h"
#include "block/block_int.h"
#include "qemu/bitmap.h"
#include "qemu/coroutine.h"
#include "qcow2-zoned.h"
#include "trace.h"

/* Zone model byte of the extension */
#define QCOW2_ZONE_MODEL_HM             1

/* The table format this code reads and writes */
#define QCOW2_ZONED_TABLE_FORMAT        1

/*
 * An earlier proposal for zoned qcow2 images, never merged, used the same
 * extension magic and feature bit with a 56-byte extension (misaligned
 * fields, a table size field) and a table of 8-byte write pointers in host
 * byte order.  Its images are refused by name.
 */
#define QCOW2_ZONED_EXT_SIZE_EARLIER    56

/*
 * An open after a crash verifies entries that cover at most this much
 * data, read or not (unallocated ranges are walked too); past it, write
 * pointers go back to their last flush.  What this code writes needs far
 * less (twice QCOW2_ZONED_MAX_TO_VERIFY of qcow2-zoned-io.c): only a
 * crafted image gets there.
 */
#define QCOW2_ZONED_MAX_VERIFY          (4 * GiB)

#define QCOW2_ZONED_MAX_ZONES           (1U << 24)
#define QCOW2_ZONED_MAX_ZONE_SIZE       (2 * GiB)
#define QCOW2_ZONED_DEFAULT_ZONE_SIZE   (256 * MiB)
#define QCOW2_ZONED_DEFAULT_MAX_APPEND  (64 * KiB)

/* On-disk header extension, big-endian, every field naturally aligned */
typedef struct QEMU_PACKED Qcow2ZonedExt {
    uint8_t zone_model;
    uint8_t table_format;
    uint8_t reserved[2];
    uint32_t conventional_zones;
    uint64_t zone_size;
    uint64_t zone_capacity;
    uint32_t nr_zones;
    uint32_t max_open_zones;
    uint32_t max_active_zones;
    uint32_t max_append_bytes;
    uint64_t wp_table_offset;
} Qcow2ZonedExt;

QEMU_BUILD_BUG_ON(sizeof(Qcow2ZonedExt) != QCOW2_ZONED_EXT_SIZE);
QEMU_BUILD_BUG_ON(offsetof(Qcow2ZonedExt, zone_size) % 8);
QEMU_BUILD_BUG_ON(offsetof(Qcow2ZonedExt, zone_capacity) % 8);
QEMU_BUILD_BUG_ON(offsetof(Qcow2ZonedExt, max_append_bytes) % 4);
QEMU_BUILD_BUG_ON(offsetof(Qcow2ZonedExt, wp_table_offset) % 8);

/*
 * CRC-32C arithmetic.  A zone's data is hashed write by write, in
 * parallel, and the pieces are put together in zone order, so the engine
 * keeps CRC registers that start from 0 and are never inverted ("raw"):
 * those are linear, raw(A || B) = raw(A) * x^(8 |B|) + raw(B), and the
 * raw CRC of zeros is 0; crc32c_shift() multiplies by x^(8 |B|).  The
 * table entry holds the standard CRC-32C.
 */

/* Raw CRC of @bytes of @qiov from @offset; NULL stands for zeros */
uint32_t qcow2_zoned_crc_qiov(QEMUIOVector *qiov, size_t offset,
                              size_t bytes)
{
    uint32_t reg = 0;
    int i;

    for (i = 0; qiov && i < qiov->niov && bytes; i++) {
        size_t len = qiov->iov[i].iov_len;

        if (offset >= len) {
            offset -= len;
            continue;
        }
        len = MIN(len - offset, bytes);
        reg = crc32c(reg, (uint8_t *)qiov->iov[i].iov_base + offset,
                     len) ^ 0xffffffff;
        bytes -= len;
        offset = 0;
    }
    return reg;
}

/* The standard CRC-32C of @len bytes whose raw CRC is @raw */
static uint32_t crc_standard(uint32_t raw, uint64_t len)
{
    return ~(crc32c_shift(0xffffffff, len) ^ raw);
}

/*
 * Check a geometry against the disk and cluster size.  Used for creation
 * options and for what an image claims alike, so both obey one rule set.
 * @opt names the options in messages: creation option names, or the header
 * field names when validating an image.
 */
typedef struct ZoneOptNames {
    const char *size, *capacity, *conv, *open, *active, *append;
} ZoneOptNames;

static const ZoneOptNames create_names = {
    "zone.size", "zone.capacity", "zone.conventional_zones",
    "zone.max_open_zones", "zone.max_active_zones", "zone.max_append_bytes",
};

static const ZoneOptNames header_names = {
    "zone_size", "zone_capacity", "conventional_zones",
    "max_open_zones", "max_active_zones", "max_append_bytes",
};

static bool validate_geometry(const Qcow2ZoneGeometry *g, uint64_t disk_size,
                              uint32_t cluster_size, const ZoneOptNames *n,
                              Error **errp)
{
    uint64_t nr_zones;
    uint32_t nr_seq;

    if (!is_power_of_2(g->zone_size) || g->zone_size < cluster_size ||
        g->zone_size > QCOW2_ZONED_MAX_ZONE_SIZE) {
        error_setg(errp, "%s must be a power of two between the cluster "
                   "size (%" PRIu32 ") and %" PRIu64 " bytes, not %" PRIu64,
                   n->size, cluster_size, QCOW2_ZONED_MAX_ZONE_SIZE,
                   g->zone_size);
        return false;
    }
    if (disk_size < g->zone_size) {
        error_setg(errp, "%s (%" PRIu64 ") must not be larger than the disk "
                   "(%" PRIu64 " bytes)", n->size, g->zone_size, disk_size);
        return false;
    }
    if (!g->zone_capacity || g->zone_capacity > g->zone_size ||
        !QEMU_IS_ALIGNED(g->zone_capacity, BDRV_SECTOR_SIZE)) {
        error_setg(errp, "%s must be a non-zero multiple of 512 of at most "
                   "the zone size (%" PRIu64 "), not %" PRIu64,
                   n->capacity, g->zone_size, g->zone_capacity);
        return false;
    }
    nr_zones = DIV_ROUND_UP(disk_size, g->zone_size);
    if (nr_zones > QCOW2_ZONED_MAX_ZONES) {
        error_setg(errp, "%s %" PRIu64 " makes %" PRIu64 " zones; at most "
                   "%u are supported", n->size, g->zone_size, nr_zones,
                   QCOW2_ZONED_MAX_ZONES);
        return false;
    }
    if (g->nr_zones != nr_zones) {
        error_setg(errp, "nr_zones is %" PRIu32 ", but a disk of %" PRIu64
                   " bytes has %" PRIu64 " zones of %" PRIu64 " bytes",
                   g->nr_zones, disk_size, nr_zones, g->zone_size);
        return false;
    }
    if (g->conventional_zones >= nr_zones) {
        error_setg(errp, "%s (%" PRIu32 ") must be less than the number of "
                   "zones (%" PRIu64 "): at least one zone must be "
                   "sequential", n->conv, g->conventional_zones, nr_zones);
        return false;
    }
    nr_seq = nr_zones - g->conventional_zones;
    if (g->max_active_zones > nr_seq) {
        error_setg(errp, "%s (%" PRIu32 ") must not exceed the number of "
                   "sequential zones (%" PRIu32 ")", n->active,
                   g->max_active_zones, nr_seq);
        return false;
    }
    if (g->max_open_zones > nr_seq) {
        error_setg(errp, "%s (%" PRIu32 ") must not exceed the number of "
                   "sequential zones (%" PRIu32 ")", n->open,
                   g->max_open_zones, nr_seq);
        return false;
    }
    if (g->max_active_zones && g->max_open_zones > g->max_active_zones) {
        error_setg(errp, "%s (%" PRIu32 ") must not exceed %s (%" PRIu32 ")",
                   n->open, g->max_open_zones, n->active,
                   g->max_active_zones);
        return false;
    }
    if (g->max_append_bytes < BDRV_SECTOR_SIZE ||
        !QEMU_IS_ALIGNED(g->max_append_bytes, BDRV_SECTOR_SIZE) ||
        g->max_append_bytes > g->zone_capacity) {
        error_setg(errp, "%s must be a multiple of 512 between 512 and the "
                   "zone capacity (%" PRIu64 "), not %" PRIu32, n->append,
                   g->zone_capacity, g->max_append_bytes);
        return false;
    }
    return true;
}

/* Zone options of a new image, with defaults, into a geometry */
static bool geometry_from_options(Qcow2ZoneHostManaged *hm, uint64_t disk_size,
                                  uint32_t cluster_size, Qcow2ZoneGeometry *g,
                                  Error **errp)
{
    uint64_t append;

    g->zone_size = hm->has_size ? hm->size : QCOW2_ZONED_DEFAULT_ZONE_SIZE;
    g->zone_capacity = hm->has_capacity ? hm->capacity : g->zone_size;
    g->conventional_zones = hm->has_conventional_zones ?
                            hm->conventional_zones : 0;
    g->max_open_zones = hm->has_max_open_zones ? hm->max_open_zones : 0;
    g->max_active_zones = hm->has_max_active_zones ? hm->max_active_zones : 0;
    append = hm->has_max_append_bytes ? hm->max_append_bytes :
             MIN(QCOW2_ZONED_DEFAULT_MAX_APPEND, g->zone_capacity);
    if (append > UINT32_MAX) {
        error_setg(errp, "zone.max_append_bytes must be a multiple of 512 "
                   "between 512 and the zone capacity (%" PRIu64 "), not %"
                   PRIu64, g->zone_capacity, append);
        return false;
    }
    g->max_append_bytes = append;
    g->nr_zones = 0;
    if (is_power_of_2(g->zone_size) && g->zone_size) {
        uint64_t n = DIV_ROUND_UP(disk_size, g->zone_size);
        g->nr_zones = MIN(n, (uint64_t)UINT32_MAX);
    }
    return validate_geometry(g, disk_size, cluster_size, &create_names, errp);
}

bool qcow2_zoned_validate_create(BlockdevCreateOptionsQcow2 *opts,
                                 int version, Error **errp)
{
    Qcow2ZoneGeometry g;
    uint64_t cluster_size = opts->has_cluster_size ? opts->cluster_size :
                            65536;

    if (!opts->zone) {
        return true;
    }
    if (version < 3) {
        error_setg(errp, "Zoned images require version 3 (compat=1.1 or "
                   "later)");
        return false;
    }
    if (opts->backing_file) {
        error_setg(errp, "Zoned images cannot have a backing file");
        return false;
    }
    if (opts->data_file) {
        error_setg(errp, "Zoned images cannot have an external data file");
        return false;
    }
    if (opts->encrypt) {
        error_setg(errp, "Zoned images cannot be encrypted");
        return false;
    }
    if (cluster_size > UINT32_MAX) {
        /* qcow2_co_create() reports the bad cluster size itself */
        return true;
    }
    return geometry_from_options(&opts->zone->u.host_managed, opts->size,
                                 cluster_size, &g, errp);
}

/* Decode the extension at @offset of the image file into s->zoned */
int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_read_ext(BlockDriverState *bs, uint64_t offset, uint32_t len,
                     Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2ZonedExt ext;
    Qcow2ZoneGeometry *g;
    int ret;

    if (len == QCOW2_ZONED_EXT_SIZE_EARLIER) {
        error_setg(errp, "Zoned extension of %" PRIu32 " bytes: the image has "
                   "the layout of an earlier zoned qcow2 proposal, which "
                   "QEMU does not read (this version reads the %zu-byte "
                   "extension and table format %u)", len, sizeof(ext),
                   QCOW2_ZONED_TABLE_FORMAT);
        return -ENOTSUP;
    }
    if (len != sizeof(ext)) {
        error_setg(errp, "Zoned extension has length %" PRIu32 ", expected %zu",
                   len, sizeof(ext));
        return -EINVAL;
    }
    ret = bdrv_co_pread(bs->file, offset, sizeof(ext), &ext, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not read the zoned extension");
        return ret;
    }
    if (ext.zone_model != QCOW2_ZONE_MODEL_HM) {
        error_setg(errp, "Zoned extension has unknown zone model %u",
                   ext.zone_model);
        return -EINVAL;
    }
    if (ext.table_format != QCOW2_ZONED_TABLE_FORMAT) {
        error_setg(errp, "Zoned extension has write-pointer table format %u; "
                   "this version supports format %u only", ext.table_format,
                   QCOW2_ZONED_TABLE_FORMAT);
        return -EINVAL;
    }
    if (ext.reserved[0] || ext.reserved[1]) {
        error_setg(errp, "Zoned extension has non-zero reserved bytes");
        return -EINVAL;
    }

    g_free(s->zoned);
    s->zoned = g_new0(Qcow2Zoned, 1);
    g = &s->zoned->geo;
    g->zone_size = be64_to_cpu(ext.zone_size);
    g->zone_capacity = be64_to_cpu(ext.zone_capacity);
    g->nr_zones = be32_to_cpu(ext.nr_zones);
    g->conventional_zones = be32_to_cpu(ext.conventional_zones);
    g->max_open_zones = be32_to_cpu(ext.max_open_zones);
    g->max_active_zones = be32_to_cpu(ext.max_active_zones);
    g->max_append_bytes = be32_to_cpu(ext.max_append_bytes);
    s->zoned->wp_table_offset = be64_to_cpu(ext.wp_table_offset);
    return 0;
}

void qcow2_zoned_ext_data(BlockDriverState *bs,
                          uint8_t ext[QCOW2_ZONED_EXT_SIZE])
{
    BDRVQcow2State *s = bs->opaque;
    const Qcow2ZoneGeometry *g = &s->zoned->geo;
    Qcow2ZonedExt e = {
        .zone_model = QCOW2_ZONE_MODEL_HM,
        .table_format = QCOW2_ZONED_TABLE_FORMAT,
        .conventional_zones = cpu_to_be32(g->conventional_zones),
        .zone_size = cpu_to_be64(g->zone_size),
        .zone_capacity = cpu_to_be64(g->zone_capacity),
        .nr_zones = cpu_to_be32(g->nr_zones),
        .max_open_zones = cpu_to_be32(g->max_open_zones),
        .max_active_zones = cpu_to_be32(g->max_active_zones),
        .max_append_bytes = cpu_to_be32(g->max_append_bytes),
        .wp_table_offset = cpu_to_be64(s->zoned->wp_table_offset),
    };

    memcpy(ext, &e, sizeof(e));
}

/*
 * Decode the table entry @e of zone @idx: its write pointer into @wp (the
 * block layer's form: an absolute offset, bit 63 for a conventional zone),
 * and, for a sequential zone, where its last completed flush left it into
 * @flushed (relative) and its QCOW2_ZONED_FAULT_* bits into @fault, which
 * only an image with the zone-faults feature (@faults) may have.  Returns
 * false if the entry is invalid; @wp and @flushed are then still within
 * the zone, and @fault 0.
 */
static bool decode_entry(const Qcow2ZoneGeometry *g, uint64_t disk_size,
                         uint32_t idx, const Qcow2ZonedEntry *e, bool faults,
                         uint64_t *wp, uint32_t *flushed, uint8_t *fault)
{
    uint64_t v = be64_to_cpu(e->wp);
    uint32_t f = be32_to_cpu(e->flushed), crc = be32_to_cpu(e->crc);
    uint64_t cap = zone_capacity(g, disk_size, idx);
    uint8_t bits = (v >> QCOW2_ZONED_FAULT_SHIFT) & QCOW2_ZONED_FAULT_MASK;
    uint8_t failed;

    *fault = 0;
    if (idx < g->conventional_zones) {
        /* The block layer's mark of a conventional zone: BDRV_ZT_IS_CONV() */
        *wp = zone_start(g, idx) | (1ULL << 63);
        *flushed = 0;
        return v == QCOW2_ZONED_ENTRY_CONV && !f && !crc;
    }
    v &= ~((uint64_t)QCOW2_ZONED_FAULT_MASK << QCOW2_ZONED_FAULT_SHIFT);
    *wp = zone_start(g, idx) + MIN(v, cap);
    *flushed = MIN(f, *wp - zone_start(g, idx));
    if (v > cap || f > v || !QEMU_IS_ALIGNED(v | f, BDRV_SECTOR_SIZE) ||
        (f == v && crc)) {
        return false;
    }
    /*
     * A zone fails read-only or offline, not both, and with its data
     * durable: its entry is settled
     */
    failed = bits & QCOW2_ZONED_FAULT_FAILED;
    if (bits && (!faults || failed == QCOW2_ZONED_FAULT_FAILED ||
                 (failed && f != v))) {
        return false;
    }
    *fault = bits;
    return true;
}

/* @e with the fault bits @fault of a sequential zone */
static Qcow2ZonedEntry entry_with_fault(Qcow2ZonedEntry e, uint8_t fault)
{
    e.wp |= cpu_to_be64((uint64_t)fault << QCOW2_ZONED_FAULT_SHIFT);
    return e;
}

/*
 * The table entry of zone @idx with write pointer @wp (absolute), the
 * write pointer of its last completed flush @flushed (relative), and the
 * raw CRC @raw of the data between the two
 */
Qcow2ZonedEntry qcow2_zoned_entry(const Qcow2ZoneGeometry *g, uint32_t idx,
                                  uint64_t wp, uint32_t flushed,
                                  uint32_t raw)
{
    uint64_t rel = wp - zone_start(g, idx);

    if (idx < g->conventional_zones) {
        return (Qcow2ZonedEntry) { .wp = cpu_to_be64(QCOW2_ZONED_ENTRY_CONV) };
    }
    assert(flushed <= rel);
    return (Qcow2ZonedEntry) {
        .wp = cpu_to_be64(rel),
        .flushed = cpu_to_be32(flushed),
        .crc = cpu_to_be32(rel == flushed ? 0 :
                           crc_standard(raw, rel - flushed)),
    };
}

/* The entry of zone @idx that needs no verification: write pointer @wp */
Qcow2ZonedEntry qcow2_zoned_settled_entry(const Qcow2ZoneGeometry *g,
                                          uint32_t idx, uint64_t wp)
{
    return qcow2_zoned_entry(g, idx, wp,
                             is_seq(g, idx) ? wp - zone_start(g, idx) :
                        0, 0);
}

#define QCOW2_ZONED_VERIFY_BUF  (1 * MiB)

/*
 * Does the data of zone @idx in [@from, @to) (relative) have the standard
 * CRC-32C @crc?  Reads what the image holds there through the qcow2
 * metadata on disk, @buf (QCOW2_ZONED_VERIFY_BUF bytes) at a time; what no
 * cluster holds counts as zeros, unread, a run of the L2 table at a time.
 * Adds the bytes read to *@read.  s->lock held.  Returns 1 if it does, 0
 * if not, or -errno.
 */
static int coroutine_fn GRAPH_RDLOCK
zone_data_matches(BlockDriverState *bs, uint32_t idx, uint64_t from,
                  uint64_t to, uint32_t crc, uint8_t *buf, uint64_t *read)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t off = zone_start(&s->zoned->geo, idx) + from;
    uint64_t end = zone_start(&s->zoned->geo, idx) + to;
    uint32_t reg = 0xffffffff;
    int ret;

    while (off < end) {
        /* A zone is at most QCOW2_ZONED_MAX_ZONE_SIZE */
        unsigned int bytes = end - off;
        QCow2SubclusterType type;
        uint64_t host;

        ret = qcow2_get_host_offset(bs, off, &bytes, &host, &type);
        if (ret < 0) {
            return ret;
        }
        switch (type) {
        case QCOW2_SUBCLUSTER_NORMAL:
            bytes = MIN(bytes, QCOW2_ZONED_VERIFY_BUF);
            ret = bdrv_co_pread(bs->file, host, bytes, buf, 0);
            if (ret < 0) {
                return ret;
            }
            reg = crc32c(reg, buf, bytes) ^ 0xffffffff;
            *read += bytes;
            break;
        case QCOW2_SUBCLUSTER_COMPRESSED:
            /* Never written to a sequential zone: not what was written */
            return 0;
        default:
            /* No backing file: everything else reads as zeros */
            reg = crc32c_shift(reg, bytes);
            break;
        }
        off += bytes;
    }
    return (reg ^ 0xffffffff) == crc;
}

/*
 * After an unclean shutdown: each zone in z->unsettled takes the write
 * pointer of its entry if the data below it matches the entry's CRC, or
 * else the write pointer of its last completed flush.  Either way its
 * write pointer has no unverified data below it any more.  An error
 * reading the data fails the open, except for qemu-img check (@check),
 * which takes the zone back to its last flush, so that it can repair the
 * image.
 */
static int coroutine_fn GRAPH_RDLOCK
verify_zones(BlockDriverState *bs, bool check, Error **errp)
{
    ERRP_GUARD();
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g = &z->geo;
    QEMU_AUTO_VFREE uint8_t *buf = NULL;
    uint64_t read = 0, walked = 0;
    uint32_t checked = 0, back = 0, unread = 0;
    long i;
    int ret;

    i = find_first_bit(z->unsettled, g->nr_zones);
    if (i >= g->nr_zones) {
        return 0;
    }
    buf = qemu_try_blockalign(bs->file->bs, QCOW2_ZONED_VERIFY_BUF);
    if (!buf) {
        error_setg(errp, "Could not allocate a buffer to verify zones");
        return -ENOMEM;
    }
    for (; i < g->nr_zones; i = find_next_bit(z->unsettled, g->nr_zones,
                                               i + 1)) {
        uint64_t wp = bs->wps->wp[i] - zone_start(g, i);

        ret = 0;
        if (walked + (wp - z->flushed[i]) <= QCOW2_ZONED_MAX_VERIFY) {
            walked += wp - z->flushed[i];
            ret = zone_data_matches(bs, i, z->flushed[i], wp,
                                    be32_to_cpu(z->table[i].crc), buf, &read);
        } else {
            unread++;
        }
        if (ret < 0 && !check) {
            error_setg_errno(errp, -ret, "Could not verify the write pointer "
                             "of zone %ld", i);
            error_append_hint(errp, "'qemu-img check -r all' takes it back "
                              "to its last flush.\n");
            return ret;
        }
        trace_qcow2_zoned_verify(bs, i, z->flushed[i], wp, ret);
        checked++;
        if (ret <= 0) {
            back++;
            bs->wps->wp[i] = zone_start(g, i) + z->flushed[i];
        } else if (wp > z->flushed[i]) {
            z->verify_flush = true;
        }
        z->flushed[i] = bs->wps->wp[i] - zone_start(g, i);
    }
    /*
     * An image that another process has open (force-share: qemu-img -U)
     * is expected to be in use; only a real unclean close is news
     */
    if (!bs->force_share) {
        info_report("Zoned image '%s' was not closed cleanly; write pointers "
                    "verified: %" PRIu32 " (%" PRIu64 " bytes read), of "
                    "which back at their last flush: %" PRIu32, bs->filename,
                    checked, read, back);
    }
    if (unread) {
        warn_report("Zoned image '%s': more than %" PRIu64 " bytes to "
                    "verify; %" PRIu32 " zones went back to their last flush "
                    "unread", bs->filename, (uint64_t)QCOW2_ZONED_MAX_VERIFY,
                    unread);
    }
    return 0;
}

/*
 * Read the write-pointer table into z->table, and the write pointers into
 * bs->wps and the state machine, verifying those that need it.  With
 * @bad, invalid entries are counted there and taken as empty zones
 * (qemu-img check repairs them so); without it, the first one is an error.
 * s->lock held, or nothing else can use the node yet.
 */
static int coroutine_fn GRAPH_RDLOCK
load_wp_table(BlockDriverState *bs, uint32_t *bad, Error **errp)
{
    ERRP_GUARD();
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g = &z->geo;
    uint32_t i;
    int ret;

    z->table = g_try_malloc(wp_table_bytes(g));
    bs->wps = g_try_malloc(sizeof(*bs->wps) +
                           (uint64_t)g->nr_zones * sizeof(uint64_t));
    z->flushed = g_try_new0(uint32_t, g->nr_zones);
    z->crc = g_try_new0(uint32_t, g->nr_zones);
    z->dirty = bitmap_try_new(g->nr_zones);
    z->owned = bitmap_try_new(g->nr_zones);
    z->unstable = bitmap_try_new(g->nr_zones);
    z->unsettled = bitmap_try_new(g->nr_zones);
    z->fault = g_try_new0(uint8_t, g->nr_zones);
    if (!z->table || !bs->wps || !z->flushed || !z->crc || !z->dirty ||
        !z->owned || !z->unstable || !z->unsettled || !z->fault ||
        !zone_sm_init(&z->sm, g->nr_zones, g->conventional_zones,
                      g->max_open_zones, g->max_active_zones)) {
        error_setg(errp, "Could not allocate the write pointers of %" PRIu32
                   " zones", g->nr_zones);
        return -ENOMEM;
    }
    ret = bdrv_co_pread(bs->file, z->wp_table_offset, wp_table_bytes(g),
                        z->table, 0);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not read the write-pointer table");
        return ret;
    }
    qemu_co_mutex_init(&bs->wps->colock);
    for (i = 0; i < g->nr_zones; i++) {
        uint64_t *wp = &bs->wps->wp[i];

        if (!decode_entry(g, z->disk_size, i, &z->table[i],
                          s->incompatible_features &
                          QCOW2_INCOMPAT_ZONE_FAULTS,
                          wp, &z->flushed[i], &z->fault[i])) {
            if (!bad) {
                error_setg(errp, "Zone %" PRIu32 " has an invalid write "
                           "pointer entry 0x%016" PRIx64 " %08" PRIx32 " %08"
                           PRIx32, i, be64_to_cpu(z->table[i].wp),
                           be32_to_cpu(z->table[i].flushed),
                           be32_to_cpu(z->table[i].crc));
                error_append_hint(errp, "'qemu-img check -r all' repairs "
                                  "the entry, emptying a sequential zone.\n");
                return -EINVAL;
            }
            (*bad)++;
            if (is_seq(g, i)) {
                *wp = zone_start(g, i);
                z->flushed[i] = 0;
            }
        } else if (is_seq(g, i) && *wp - zone_start(g, i) != z->flushed[i]) {
            set_bit(i, z->unsettled);
        }
    }
    ret = verify_zones(bs, bad != NULL, errp);
    if (ret < 0) {
        return ret;
    }
    for (i = 0; i < g->nr_zones; i++) {
        zone_sm_load(&z->sm, i, bs->wps->wp[i] == zone_start(g, i),
                     bs->wps->wp[i] == cap_end(z, i));
        if (z->fault[i] & QCOW2_ZONED_FAULT_FAILED) {
            zone_sm_fail(&z->sm, i,
                         z->fault[i] & QCOW2_ZONED_FAULT_OFFLINE ?
                         BLK_ZS_OFFLINE : BLK_ZS_RDONLY);
        }
    }
    z->busy = g_hash_table_new(NULL, NULL);
    qemu_mutex_init(&z->lock);
    qemu_co_queue_init(&z->idle);
    qemu_co_mutex_init(&z->table_lock);
    z->loaded = true;
    return 0;
}

int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_open(BlockDriverState *bs, int flags, Error **errp)
{
    ERRP_GUARD();
    BDRVQcow2State *s = bs->opaque;
    bool has_bit = s->incompatible_features & QCOW2_INCOMPAT_ZONED;
    uint64_t disk_size = bs->total_sectors * BDRV_SECTOR_SIZE;
    const Qcow2ZoneGeometry *g;
    uint64_t off, bytes;
    int64_t file_size;
    uint32_t bad = 0;
    int overlap_check;
    int ret;

    if (!has_bit && !s->zoned) {
        return 0;
    }
    if (!s->zoned) {
        error_setg(errp, "Image has the zoned feature bit but no zoned "
                   "extension");
        return -EINVAL;
    }
    if (!has_bit) {
        error_setg(errp, "Image has a zoned extension but not the zoned "
                   "feature bit");
        return -EINVAL;
    }
    if (s->nb_snapshots) {
        error_setg(errp, "Zoned image has internal snapshots");
        return -EINVAL;
    }
    if (has_data_file(bs)) {
        error_setg(errp, "Zoned image has an external data file");
        return -EINVAL;
    }
    if (s->crypt_method_header) {
        error_setg(errp, "Zoned image has an encryption header");
        return -EINVAL;
    }
    if (s->image_backing_file) {
        error_setg(errp, "Zoned image has a backing file");
        return -EINVAL;
    }

    g = &s->zoned->geo;
    if (!validate_geometry(g, disk_size, s->cluster_size, &header_names,
                           errp)) {
        error_prepend(errp, "Invalid zoned extension: ");
        return -EINVAL;
    }

    off = s->zoned->wp_table_offset;
    bytes = ROUND_UP(wp_table_bytes(g), s->cluster_size);
    file_size = bdrv_co_getlength(bs->file->bs);
    if (file_size < 0) {
        error_setg_errno(errp, -file_size, "Could not get the file size");
        return file_size;
    }
    if (!off) {
        error_setg(errp, "Write-pointer table at offset 0, over the image "
                   "header");
        return -EINVAL;
    }
    if (!QEMU_IS_ALIGNED(off, s->cluster_size) || off > file_size ||
        wp_table_bytes(g) > file_size - off) {
        error_setg(errp, "Write-pointer table at 0x%" PRIx64 " (%" PRIu64
                   " bytes) is not a cluster-aligned area inside the image "
                   "file (%" PRId64 " bytes)", off, wp_table_bytes(g),
                   file_size);
        return -EINVAL;
    }
    /*
     * Whatever the overlap-check option says: the table is written at
     * every flush, and must not be anything else
     */
    overlap_check = s->overlap_check;
    s->overlap_check = QCOW2_OL_ALL;
    ret = qcow2_check_metadata_overlap(bs, QCOW2_OL_ZONED_TABLE, off, bytes);
    s->overlap_check = overlap_check;
    if (ret) {
        error_setg(errp, "Write-pointer table at 0x%" PRIx64 " overlaps %s",
                   off, ret < 0 ? "unreadable metadata" :
                   "other qcow2 metadata");
        return -EINVAL;
    }

    s->zoned->disk_size = disk_size;
    if (flags & (BDRV_O_NO_IO | BDRV_O_INACTIVE)) {
        /* The geometry is all there is to know: nothing reads the zones */
        return 0;
    }
    ret = load_wp_table(bs, (flags & BDRV_O_CHECK) ? &bad : NULL, errp);
    if (ret < 0) {
        return ret;
    }
    trace_qcow2_zoned_open(bs, g->nr_zones, g->zone_size, bad);
    if ((flags & BDRV_O_RDWR) && !(flags & BDRV_O_CHECK)) {
        /* What verification found is durable before the guest writes */
        ret = qcow2_zoned_settle(bs);
        if (ret < 0) {
            error_setg_errno(errp, -ret, "Could not write the verified write "
                             "pointers");
            return ret;
        }
    }
    return 0;
}

void qcow2_zoned_close(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;

    if (z) {
        if (z->loaded) {
            /* Nothing is in flight when a node closes */
            assert(!g_hash_table_size(z->busy));
            g_hash_table_destroy(z->busy);
            qemu_mutex_destroy(&z->lock);
        }
        zone_sm_free(&z->sm);
        g_free(z->spare);
        g_free(z->table);
        g_free(z->flushed);
        g_free(z->crc);
        g_free(z->dirty);
        g_free(z->owned);
        g_free(z->unstable);
        g_free(z->unsettled);
        g_free(z->fault);
        g_free(z);
        s->zoned = NULL;
    }
    g_free(bs->wps);
    bs->wps = NULL;
}

/*
 * Make the image zoned: allocate and write the table, then set the
 * extension and the feature bit in one header update.
 */
int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_create(BlockDriverState *bs, Qcow2ZoneCreateOptions *zopts,
                   Error **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t disk_size = bs->total_sectors * BDRV_SECTOR_SIZE;
    Qcow2ZoneGeometry g;
    g_autofree Qcow2ZonedEntry *table = NULL;
    int64_t off;
    uint32_t i;
    int ret;

    if (!geometry_from_options(&zopts->u.host_managed, disk_size,
                               s->cluster_size, &g, errp)) {
        return -EINVAL;
    }
    table = g_try_new(Qcow2ZonedEntry, g.nr_zones);
    if (!table) {
        error_setg(errp, "Could not allocate the write-pointer table");
        return -ENOMEM;
    }
    for (i = 0; i < g.nr_zones; i++) {
        table[i] = qcow2_zoned_settled_entry(&g, i, zone_start(&g, i));
    }

    off = qcow2_alloc_clusters(bs, wp_table_bytes(&g));
    if (off < 0) {
        error_setg_errno(errp, -off, "Could not allocate the write-pointer "
                         "table");
        return off;
    }
    ret = qcow2_pre_write_overlap_check(bs, 0, off,
                                        ROUND_UP(wp_table_bytes(&g),
                                                 s->cluster_size), false);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Write-pointer table would overlap "
                         "metadata");
        return ret;
    }
    ret = bdrv_co_pwrite_zeroes(bs->file, off,
                                ROUND_UP(wp_table_bytes(&g), s->cluster_size),
                                0);
    if (ret >= 0) {
        ret = bdrv_co_pwrite(bs->file, off, wp_table_bytes(&g), table, 0);
    }
    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not write the write-pointer table");
        return ret;
    }

    s->zoned = g_new0(Qcow2Zoned, 1);
    s->zoned->geo = g;
    s->zoned->wp_table_offset = off;
    s->zoned->disk_size = disk_size;
    s->incompatible_features |= QCOW2_INCOMPAT_ZONED;
    ret = qcow2_update_header(bs);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "Could not update the qcow2 header");
        return ret;
    }
    /* The image is zoned from now on, as if it had been opened so */
    return load_wp_table(bs, NULL, errp);
}

void qcow2_zoned_refresh_limits(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    const Qcow2ZoneGeometry *g;

    if (!s->zoned) {
        return;
    }
    /* Also while inactive: a device on an incoming migration needs it */
    g = &s->zoned->geo;
    bs->bl.zoned = BLK_Z_HM;
    bs->bl.zone_size = g->zone_size;
    bs->bl.nr_zones = g->nr_zones;
    bs->bl.max_open_zones = g->max_open_zones;
    bs->bl.max_active_zones = g->max_active_zones;
    bs->bl.max_append_sectors = g->max_append_bytes >> BDRV_SECTOR_BITS;
    bs->bl.write_granularity = BDRV_SECTOR_SIZE;
    /*
     * A write zeroes must reach qcow2_co_pwrite_zeroes() whole: split at
     * cluster boundaries, its first pieces would move the write pointer
     * before a later one finds that the request crosses the capacity.
     * qcow2_zoned_write_zeroes() splits it once the zone rules took it.
     */
    bs->bl.pwrite_zeroes_alignment = BDRV_SECTOR_SIZE;
}

Qcow2ZoneInfo *qcow2_zoned_get_info(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    const Qcow2ZoneGeometry *g;
    Qcow2ZoneInfo *info;

    if (!s->zoned) {
        return NULL;
    }
    g = &s->zoned->geo;
    info = g_new(Qcow2ZoneInfo, 1);
    *info = (Qcow2ZoneInfo) {
        .mode = QCOW2_ZONE_MODEL_HOST_MANAGED,
        .size = g->zone_size,
        .capacity = g->zone_capacity,
        .nr_zones = g->nr_zones,
        .conventional_zones = g->conventional_zones,
        .max_open_zones = g->max_open_zones,
        .max_active_zones = g->max_active_zones,
        .max_append_bytes = g->max_append_bytes,
    };
    return info;
}

bool qcow2_zoned_table_overlaps(BlockDriverState *bs, int64_t offset,
                                int64_t size)
{
    BDRVQcow2State *s = bs->opaque;

    return s->zoned &&
           ranges_overlap(offset, size, s->zoned->wp_table_offset,
                          ROUND_UP(wp_table_bytes(&s->zoned->geo),
                                   s->cluster_size));
}

/* qemu-img check: the table's clusters are in use */
int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_check_refcounts(BlockDriverState *bs, BdrvCheckResult *res,
                            void **refcount_table,
                            int64_t *refcount_table_size)
{
    BDRVQcow2State *s = bs->opaque;

    if (!s->zoned) {
        return 0;
    }
    return qcow2_inc_refcounts_imrt(bs, res, refcount_table,
                                    refcount_table_size,
                                    s->zoned->wp_table_offset,
                                    wp_table_bytes(&s->zoned->geo));
}

/*
 * qemu-img check: every entry of the table on disk must be valid.  With
 * BDRV_FIX_ERRORS, an invalid sequential zone entry becomes the zone's
 * start, an invalid conventional zone entry the conventional marker.  The
 * zone is empty then: what it held cannot be told from what a reset left
 * behind, so none of it may become readable.
 *
 * Entries that an unclean shutdown left to verify are no error; opening
 * the image verified them, and any repair writes what it found.
 */
int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_co_check(BlockDriverState *bs, BdrvCheckResult *res,
                     BdrvCheckMode fix)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g;
    uint64_t disk_size = bs->total_sectors * BDRV_SECTOR_SIZE;
    g_autofree Qcow2ZonedEntry *table = NULL;
    uint32_t i, bad = 0, unsettled = 0;
    int ret;

    if (!z) {
        return 0;
    }
    g = &z->geo;
    table = g_try_malloc(wp_table_bytes(g));
    if (!table) {
        res->check_errors++;
        return -ENOMEM;
    }
    ret = bdrv_co_pread(bs->file, z->wp_table_offset, wp_table_bytes(g),
                        table, 0);
    if (ret < 0) {
        fprintf(stderr, "ERROR could not read the write-pointer table: %s\n",
                strerror(-ret));
        res->check_errors++;
        return ret;
    }
    for (i = 0; i < g->nr_zones; i++) {
        uint64_t wp;
        uint32_t flushed;
        uint8_t fault;

        if (decode_entry(g, disk_size, i, &table[i],
                         s->incompatible_features & QCOW2_INCOMPAT_ZONE_FAULTS,
                         &wp, &flushed, &fault)) {
            if (is_seq(g, i) && wp - zone_start(g, i) != flushed) {
                unsettled++;
                if (fix && z->loaded) {
                    table[i] = entry_with_fault(
                        qcow2_zoned_settled_entry(g, i, bs->wps->wp[i]),
                        fault);
                }
            }
            continue;
        }
        fprintf(stderr, "%s zone %" PRIu32 ": invalid write pointer entry "
                "0x%016" PRIx64 " %08" PRIx32 " %08" PRIx32 "%s\n",
                fix & BDRV_FIX_ERRORS ? "Repairing" : "ERROR", i,
                be64_to_cpu(table[i].wp), be32_to_cpu(table[i].flushed),
                be32_to_cpu(table[i].crc),
                (fix & BDRV_FIX_ERRORS) && is_seq(g, i) ?
                "; the zone is now empty" : "");
        table[i] = qcow2_zoned_settled_entry(g, i, is_seq(g, i) ?
                                             zone_start(g, i) : wp);
        bad++;
    }
    if (unsettled) {
        fprintf(stderr, "Zones not closed cleanly: %" PRIu32 "; opening the "
                "image verified their write pointers%s\n", unsettled,
                fix && z->loaded ? ", which are now stored" : "");
    }
    if (!bad && !(unsettled && fix && z->loaded)) {
        return 0;
    }
    if (bad && !(fix & BDRV_FIX_ERRORS)) {
        res->corruptions += bad;
        return 0;
    }
    ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_ZONED_TABLE,
                                        z->wp_table_offset,
                                        wp_table_bytes(g), false);
    if (ret >= 0 && z->verify_flush) {
        /* What verification accepted reaches the disk first */
        ret = qcow2_zoned_flush_file(bs);
        z->verify_flush = ret < 0;
    }
    if (ret >= 0) {
        ret = bdrv_co_pwrite(bs->file, z->wp_table_offset,
                             wp_table_bytes(g), table, 0);
    }
    if (ret >= 0) {
        ret = qcow2_zoned_flush_file(bs);
    }
    if (ret < 0) {
        fprintf(stderr, "ERROR could not write the write-pointer table: %s\n",
                strerror(-ret));
        res->corruptions += bad;
        res->check_errors++;
        return ret;
    }
    if (z->table) {
        /* Repaired zones are empty and sound, in memory as on disk */
        memcpy(z->table, table, wp_table_bytes(g));
        bitmap_zero(z->unsettled, g->nr_zones);
    }
    res->corruptions_fixed += bad;
    return 0;
}

/* Refuse an operation that a zoned image does not support */
int qcow2_zoned_refuse(BlockDriverState *bs, const char *what, Error **errp)
{
    BDRVQcow2State *s = bs->opaque;

    if (!s->zoned) {
        return 0;
    }
    error_setg(errp, "Cannot %s a zoned image", what);
    return -ENOTSUP;
}

/*
 * Read a size or number creation option, noting whether it was given; with
 * @del, take it out of @opts
 */
static uint64_t take_opt(QemuOpts *opts, const char *name, bool *has,
                         bool is_size, bool del)
{
    *has = qemu_opt_get(opts, name) != NULL;
    if (is_size) {
        return del ? qemu_opt_get_size_del(opts, name, 0) :
                     qemu_opt_get_size(opts, name, 0);
    }
    return del ? qemu_opt_get_number_del(opts, name, 0) :
                 qemu_opt_get_number(opts, name, 0);
}

/* A number creation option that must fit 32 bits, as in blockdev-create */
static bool take_opt32(QemuOpts *opts, const char *name, bool *has,
                       uint32_t *val, bool del, Error **errp)
{
    g_autofree char *typed = g_strdup(qemu_opt_get(opts, name));
    uint64_t v = take_opt(opts, name, has, false, del);

    /* "-1" reads as UINT64_MAX: name what was typed */
    if (v > UINT32_MAX) {
        error_setg(errp, "%s must be from 0 to %" PRIu32 ", not '%s'",
                   name, UINT32_MAX, typed);
        return false;
    }
    *val = v;
    return true;
}

/*
 * The zone.* creation options of @opts into @hm; false if there are none
 * (*@zoned false) or they are wrong (*@zoned true, @errp set).  Errors name
 * the options as the user typed them.  With @del, they are taken out of
 * @opts.
 */
static bool zone_opts_read(QemuOpts *opts, bool del, bool *zoned,
                           Qcow2ZoneHostManaged *hm, Error **errp)
{
    g_autofree char *mode = del ? qemu_opt_get_del(opts, "zone.mode") :
                                  g_strdup(qemu_opt_get(opts, "zone.mode"));

    *zoned = mode != NULL;
    if (!mode) {
        static const char *const zone_opts[] = {
            "zone.size", "zone.capacity", "zone.conventional_zones",
            "zone.max_open_zones", "zone.max_active_zones",
            "zone.max_append_bytes",
        };
        int i;

        for (i = 0; i < ARRAY_SIZE(zone_opts); i++) {
            if (qemu_opt_get(opts, zone_opts[i])) {
                error_setg(errp, "%s requires zone.mode", zone_opts[i]);
                *zoned = true;
                return false;
            }
        }
        return false;
    }
    if (strcmp(mode, "host-managed")) {
        error_setg(errp, "zone.mode must be host-managed, not '%s'", mode);
        return false;
    }
    hm->size = take_opt(opts, "zone.size", &hm->has_size, true, del);
    hm->capacity = take_opt(opts, "zone.capacity", &hm->has_capacity, true,
                            del);
    hm->max_append_bytes = take_opt(opts, "zone.max_append_bytes",
                                    &hm->has_max_append_bytes, true, del);
    return take_opt32(opts, "zone.conventional_zones",
                      &hm->has_conventional_zones, &hm->conventional_zones,
                      del, errp) &&
           take_opt32(opts, "zone.max_open_zones", &hm->has_max_open_zones,
                      &hm->max_open_zones, del, errp) &&
           take_opt32(opts, "zone.max_active_zones",
                      &hm->has_max_active_zones, &hm->max_active_zones, del,
                      errp);
}

/*
 * qemu-img create: check the zone.* options as typed, before they become
 * blockdev-create's members (whose names the QAPI visitor's errors give)
 */
bool qcow2_zoned_check_create_opts(QemuOpts *opts, Error **errp)
{
    Qcow2ZoneHostManaged hm;
    bool zoned;

    return zone_opts_read(opts, false, &zoned, &hm, errp) || !zoned;
}

/*
 * qemu-img measure: the bytes the write-pointer table of an image with
 * these creation options takes, 0 if it is not zoned, or -errno.
 */
int64_t qcow2_zoned_measure(QemuOpts *opts, uint64_t disk_size,
                            uint32_t cluster_size, Error **errp)
{
    Qcow2ZoneHostManaged hm;
    Qcow2ZoneGeometry g;
    bool zoned;

    if (!zone_opts_read(opts, true, &zoned, &hm, errp)) {
        return zoned ? -EINVAL : 0;
    }
    if (!geometry_from_options(&hm, disk_size, cluster_size, &g, errp)) {
        return -EINVAL;
    }
    return ROUND_UP(wp_table_bytes(&g), cluster_size);
}

/*
 * Writing the table
 */

void qcow2_zoned_update_init(BlockDriverState *bs, Qcow2ZonedUpdate *u)
{
    u->granule = MAX(BDRV_SECTOR_SIZE, bs->file->bs->bl.request_alignment);
    u->runs = g_array_new(false, false, sizeof(Qcow2ZonedRun));
}

void qcow2_zoned_update_free(Qcow2ZonedUpdate *u)
{
    guint i;

    for (i = 0; i < u->runs->len; i++) {
        g_free(g_array_index(u->runs, Qcow2ZonedRun, i).buf);
    }
    g_array_free(u->runs, true);
}

/*
 * Put @e into the entry of zone @idx; zones come in ascending order.
 * z->table_lock held.  Returns false if out of memory.
 */
bool qcow2_zoned_stage(Qcow2Zoned *z, Qcow2ZonedUpdate *u, uint32_t idx,
                       Qcow2ZonedEntry e)
{
    return qcow2_zoned_stage_fault(z, u, idx, e, z->fault[idx]);
}

/* qcow2_zoned_stage(), the zone's fault bits in the entry being @fault */
bool qcow2_zoned_stage_fault(Qcow2Zoned *z, Qcow2ZonedUpdate *u, uint32_t idx,
                             Qcow2ZonedEntry e, uint8_t fault)
{
    uint64_t pos = (uint64_t)idx * sizeof(Qcow2ZonedEntry);
    uint64_t gstart = QEMU_ALIGN_DOWN(pos, u->granule);
    uint64_t gend = MIN(gstart + u->granule, wp_table_bytes(&z->geo));
    Qcow2ZonedRun *r = u->runs->len ?
        &g_array_index(u->runs, Qcow2ZonedRun, u->runs->len - 1) : NULL;

    if (!r || pos >= r->start + r->len) {
        if (r && gstart == r->start + r->len) {
            /* The next granule: the run grows */
            uint8_t *buf = g_try_realloc(r->buf, gend - r->start);

            if (!buf) {
                return false;
            }
            r->buf = buf;
        } else {
            Qcow2ZonedRun n = {
                .start = gstart, .buf = g_try_malloc(u->granule)
            };

            if (!n.buf) {
                return false;
            }
            g_array_append_val(u->runs, n);
            r = &g_array_index(u->runs, Qcow2ZonedRun, u->runs->len - 1);
            r->len = 0;
        }
        memcpy(r->buf + r->len, (uint8_t *)z->table + r->start + r->len,
               gend - r->start - r->len);
        r->len = gend - r->start;
    }
    if (is_seq(&z->geo, idx)) {
        e = entry_with_fault(e, fault);
    }
    memcpy(r->buf + (pos - r->start), &e, sizeof(e));
    return true;
}

/* Flush the image file: what the table's ordering waits for */
int coroutine_fn GRAPH_RDLOCK qcow2_zoned_flush_file(BlockDriverState *bs)
{
    trace_qcow2_zoned_flush_file(bs);
    return bdrv_co_flush(bs->file->bs);
}

/*
 * Write the staged runs.  z->table_lock held.  z->table follows each run
 * written.  Every entry is valid on disk whenever it gets there: its
 * flushed write pointer was durable when it was made, and an open checks
 * the rest against its CRC.
 */
int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_write_runs(BlockDriverState *bs, Qcow2ZonedUpdate *u)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    guint i;
    int ret;

    if (z->verify_flush && u->runs->len) {
        /* What verification accepted reaches the disk first */
        ret = qcow2_zoned_flush_file(bs);
        if (ret < 0) {
            return ret;
        }
        z->verify_flush = false;
    }
    for (i = 0; i < u->runs->len; i++) {
        Qcow2ZonedRun *r = &g_array_index(u->runs, Qcow2ZonedRun, i);

        ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_ZONED_TABLE,
                                            z->wp_table_offset + r->start,
                                            r->len, false);
        if (ret < 0) {
            return ret;
        }
        trace_qcow2_zoned_write_table(bs, r->start / sizeof(Qcow2ZonedEntry),
                                      (r->start + r->len) /
                                      sizeof(Qcow2ZonedEntry) - 1);
        ret = bdrv_co_pwrite(bs->file, z->wp_table_offset + r->start, r->len,
                             r->buf, 0);
        if (ret < 0) {
            return ret;
        }
        memcpy((uint8_t *)z->table + r->start, r->buf, r->len);
    }
    return 0;
}

/* Write the staged runs, then flush the image file.  z->table_lock held. */
int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_write_staged(BlockDriverState *bs, Qcow2ZonedUpdate *u)
{
    int ret = qcow2_zoned_write_runs(bs, u);

    if (ret >= 0 && u->runs->len) {
        ret = qcow2_zoned_flush_file(bs);
    }
    return ret;
}

/*
 * A table update failed: what it staged may or may not be on disk.  Its
 * zones are written again at the next flush, with their values then.
 */
void qcow2_zoned_redirty(Qcow2Zoned *z, Qcow2ZonedUpdate *u)
{
    guint i;

    qemu_mutex_lock(&z->lock);
    for (i = 0; i < u->runs->len; i++) {
        Qcow2ZonedRun *r = &g_array_index(u->runs, Qcow2ZonedRun, i);

        uint32_t idx = r->start / sizeof(Qcow2ZonedEntry);
        uint32_t end = idx + r->len / sizeof(Qcow2ZonedEntry);

        /* Conventional zones have no entry to write again */
        idx = MAX(idx, z->geo.conventional_zones);
        if (end > idx) {
            bitmap_set(z->dirty, idx, end - idx);
        }
    }
    qemu_mutex_unlock(&z->lock);
}

/*
 * Write the entries that need verification as entries that need none, at
 * the write pointer of their zone's last completed flush (or the one
 * verification found), and flush them.  z->table_lock held, or nothing
 * else uses the node yet.
 */
int coroutine_fn GRAPH_RDLOCK qcow2_zoned_settle(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g = &z->geo;
    long n = g->nr_zones, i;
    Qcow2ZonedUpdate u;
    int ret = 0;

    qcow2_zoned_update_init(bs, &u);
    qemu_mutex_lock(&z->lock);
    for (i = find_first_bit(z->unsettled, n); i < n && ret == 0;
         i = find_next_bit(z->unsettled, n, i + 1)) {
        if (!qcow2_zoned_stage(z, &u, i, qcow2_zoned_settled_entry(g, i,
                               zone_start(g, i) + z->flushed[i]))) {
            ret = -ENOMEM;
        }
    }
    qemu_mutex_unlock(&z->lock);
    if (ret == 0) {
        ret = qcow2_zoned_write_staged(bs, &u);
    }
    if (ret >= 0) {
        /* Only a flush changes z->flushed[] and sets bits: it waits */
        qemu_mutex_lock(&z->lock);
        bitmap_zero(z->unsettled, n);
        qemu_mutex_unlock(&z->lock);
    }
    qcow2_zoned_update_free(&u);
    return ret;
}
