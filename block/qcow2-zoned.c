/*
 * qcow2 zoned images: on-disk format, creation, validation, check
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A zoned qcow2 image carries incompatible feature bit 5 and the zoned
 * header extension (docs/interop/qcow2.txt, "Zoned extension"), which
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
#include "qcow2.h"
#include "qcow2-zone-sm.h"
#include "trace.h"

/* Zone model byte of the extension */
#define QCOW2_ZONE_MODEL_HM             1

/* The table format this code reads and writes */
#define QCOW2_ZONED_TABLE_FORMAT        1

/* A conventional zone's table entry */
#define QCOW2_ZONED_ENTRY_CONV          (1ULL << 63)

/*
 * Bytes that may be written between two flushes before the engine flushes
 * by itself: an open after a crash reads at most about twice this much
 */
#define QCOW2_ZONED_MAX_UNFLUSHED       (128 * MiB)

/*
 * An open after a crash reads at most this much data to verify entries;
 * past it, write pointers go back to their last flush.  What this code
 * writes needs far less (QCOW2_ZONED_MAX_UNFLUSHED and the writes in
 * flight then): only a crafted image gets there.
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
 * A write-pointer table entry, big-endian.  For a sequential zone: @wp and
 * @flushed relative to the zone's start, @crc the CRC-32C of the zone's
 * bytes in [@flushed, @wp).  An open trusts @wp only if @crc matches the
 * data, and @flushed otherwise.
 */
typedef struct QEMU_PACKED Qcow2ZonedEntry {
    uint64_t wp;
    uint32_t flushed;
    uint32_t crc;
} Qcow2ZonedEntry;

QEMU_BUILD_BUG_ON(sizeof(Qcow2ZonedEntry) != 16);

/* The geometry, in CPU byte order */
typedef struct Qcow2ZoneGeometry {
    uint64_t zone_size;
    uint64_t zone_capacity;
    uint32_t nr_zones;
    uint32_t conventional_zones;
    uint32_t max_open_zones;
    uint32_t max_active_zones;
    uint32_t max_append_bytes;
} Qcow2ZoneGeometry;

typedef struct Qcow2Zoned Qcow2Zoned;

/* A sequential zone with writes in flight */
typedef struct ZoneBusy {
    /* Its writes in flight, in write pointer order */
    QTAILQ_HEAD(, Qcow2ZonedWrite) inflight;
    /* Every byte of the zone below it is written */
    uint64_t done_wp;
    /* A write failed: the ones after it fail too, new ones wait */
    bool failed;
} ZoneBusy;

struct Qcow2Zoned {
    Qcow2ZoneGeometry geo;
    uint64_t wp_table_offset;
    uint64_t disk_size;

    /*
     * Run time state.  Only an active node opened for I/O loads the
     * write pointers (@loaded): an inactive one may be looking at a table
     * that another process is still changing.
     */
    bool loaded;

    /*
     * Protects the bookkeeping of every zone: bs->wps->wp[], @sm, @dirty,
     * @busy, @spare, @owned, @flushed, @crc, @unstable, @unsettled,
     * @unflushed, @bound_flush, @settle_all.  Requests come from any
     * thread; the lock is held for bookkeeping only, never across I/O or
     * a yield.
     */
    QemuMutex lock;
    ZoneSM sm;
    /* Zones whose write pointer moved since their entry was written */
    unsigned long *dirty;
    /* Zone index -> ZoneBusy, for zones with writes in flight */
    GHashTable *busy;
    /* A ZoneBusy kept for the next zone that gets busy */
    ZoneBusy *spare;
    /* Zones that a reset or finish owns: their writes wait */
    unsigned long *owned;
    /* Waits for a zone to be neither busy nor owned (with @lock) */
    CoQueue idle;

    /*
     * Per zone, relative to its start: the write pointer of the last
     * completed flush, and the CRC-32C register (from 0, not inverted) of
     * the data that completed writes put between it and done_wp()
     */
    uint32_t *flushed;
    uint32_t *crc;
    /*
     * Zones with a completed write whose buffer changed while it was in
     * flight: what reached the disk may not be what @crc covers, so their
     * next entry is written after the data is flushed
     */
    unsigned long *unstable;
    /* Zones whose entry on disk needs verification on open */
    unsigned long *unsettled;
    /* Bytes written by writes completed since the last flush took them */
    uint64_t unflushed;
    /* A flush to keep @unflushed bounded is on its way */
    bool bound_flush;
    /* The next flush settles every zone (inactivation, close) */
    bool settle_all;
    /*
     * Verification accepted data that may not be on stable storage yet
     * (a process that died leaves it in the host's cache): the image file
     * is flushed before the next write of the table
     */
    bool verify_flush;

    /* Serialises the writes of the table, and protects @table */
    CoMutex table_lock;
    /* The table as last written to disk */
    Qcow2ZonedEntry *table;
};

static uint64_t wp_table_bytes(const Qcow2ZoneGeometry *geo)
{
    return (uint64_t)geo->nr_zones * sizeof(Qcow2ZonedEntry);
}

static uint64_t zone_start(const Qcow2ZoneGeometry *geo, uint32_t idx)
{
    return (uint64_t)idx * geo->zone_size;
}

static uint32_t zone_of(const Qcow2ZoneGeometry *g, uint64_t offset)
{
    return offset / g->zone_size;
}

static bool is_seq(const Qcow2ZoneGeometry *g, uint32_t idx)
{
    return idx >= g->conventional_zones;
}

/* Writable bytes of zone @idx: the last zone may be shorter */
static uint64_t zone_capacity(const Qcow2ZoneGeometry *geo, uint64_t disk_size,
                              uint32_t idx)
{
    return MIN(geo->zone_capacity, disk_size - zone_start(geo, idx));
}

/* Where the writable part of zone @idx of an open image ends */
static uint64_t cap_end(const Qcow2Zoned *z, uint32_t idx)
{
    return zone_start(&z->geo, idx) +
           zone_capacity(&z->geo, z->disk_size, idx);
}

/*
 * CRC-32C arithmetic.  A zone's data is hashed write by write, in
 * parallel, and the pieces are put together in zone order, so the engine
 * keeps CRC registers that start from 0 and are never inverted ("raw"):
 * those are linear, raw(A || B) = raw(A) * x^(8 |B|) + raw(B), and the
 * raw CRC of zeros is 0.  The table entry holds the standard CRC-32C.
 */
#define CRC32C_POLY_REFLECTED   0x82f63b78

/* x^(8 * 2^k) modulo the CRC-32C polynomial, bit-reflected */
static const uint32_t crc_x8_pow2[32] = {
    0x00800000, 0x00008000, 0x82f63b78, 0x6ea2d55c,
    0x18b8ea18, 0x510ac59a, 0xb82be955, 0xb8fdb1e7,
    0x88e56f72, 0x74c360a4, 0xe4172b16, 0x0d65762a,
    0x35d73a62, 0x28461564, 0xbf455269, 0xe2ea32dc,
    0xfe7740e6, 0xf946610b, 0x3c204f8f, 0x538586e3,
    0x59726915, 0x734d5309, 0xbc1ac763, 0x7d0722cc,
    0xd289cabe, 0xe94ca9bc, 0x05b74f3f, 0xa51e1f42,
    0x40000000, 0x20000000, 0x08000000, 0x00800000,
};

/* a * b modulo the polynomial, bit-reflected */
static uint32_t crc_mul(uint32_t a, uint32_t b)
{
    uint32_t m, p = 0;

    for (m = 1U << 31; m; m >>= 1) {
        if (a & m) {
            p ^= b;
        }
        b = b & 1 ? (b >> 1) ^ CRC32C_POLY_REFLECTED : b >> 1;
    }
    return p;
}

/* The raw register @reg after @len more zero bytes */
static uint32_t crc_shift(uint32_t reg, uint64_t len)
{
    int k;

    for (k = 0; len && k < 32; k++, len >>= 1) {
        if (len & 1) {
            reg = crc_mul(crc_x8_pow2[k], reg);
        }
    }
    assert(!len);
    return reg;
}

/* Raw CRC of @bytes of @qiov from @offset; NULL stands for zeros */
static uint32_t crc_raw_qiov(QEMUIOVector *qiov, size_t offset, size_t bytes)
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
    return ~(crc_shift(0xffffffff, len) ^ raw);
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
    s->zoned = g_new0(struct Qcow2Zoned, 1);
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
 * @flushed (relative).  Returns false if the entry is invalid; @wp and
 * @flushed are then still within the zone.
 */
static bool decode_entry(const Qcow2ZoneGeometry *g, uint64_t disk_size,
                         uint32_t idx, const Qcow2ZonedEntry *e, uint64_t *wp,
                         uint32_t *flushed)
{
    uint64_t v = be64_to_cpu(e->wp);
    uint32_t f = be32_to_cpu(e->flushed), crc = be32_to_cpu(e->crc);
    uint64_t cap = zone_capacity(g, disk_size, idx);

    if (idx < g->conventional_zones) {
        *wp = QCOW2_ZONED_ENTRY_CONV | zone_start(g, idx);
        *flushed = 0;
        return v == QCOW2_ZONED_ENTRY_CONV && !f && !crc;
    }
    *wp = zone_start(g, idx) + MIN(v, cap);
    *flushed = MIN(f, *wp - zone_start(g, idx));
    return v <= cap && f <= v && QEMU_IS_ALIGNED(v | f, BDRV_SECTOR_SIZE) &&
           (f != v || !crc);
}

/*
 * The table entry of zone @idx with write pointer @wp (absolute), the
 * write pointer of its last completed flush @flushed (relative), and the
 * raw CRC @raw of the data between the two
 */
static Qcow2ZonedEntry encode_entry(const Qcow2ZoneGeometry *g, uint32_t idx,
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
static Qcow2ZonedEntry settled_entry(const Qcow2ZoneGeometry *g, uint32_t idx,
                                     uint64_t wp)
{
    return encode_entry(g, idx, wp, is_seq(g, idx) ? wp - zone_start(g, idx) :
                        0, 0);
}

#define QCOW2_ZONED_VERIFY_BUF  (1 * MiB)

/*
 * Does the data of zone @idx in [@from, @to) (relative) have the standard
 * CRC-32C @crc?  Reads what the image holds there through the qcow2
 * metadata on disk, @buf (QCOW2_ZONED_VERIFY_BUF bytes) at a time; what no
 * cluster holds counts as zeros, unread.  Adds the bytes read to *@read.
 * s->lock held.  Returns 1 if it does, 0 if not, or -errno.
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
        unsigned int bytes = MIN(end - off, QCOW2_ZONED_VERIFY_BUF);
        QCow2SubclusterType type;
        uint64_t host;

        ret = qcow2_get_host_offset(bs, off, &bytes, &host, &type);
        if (ret < 0) {
            return ret;
        }
        switch (type) {
        case QCOW2_SUBCLUSTER_NORMAL:
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
            reg = crc_shift(reg, bytes);
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
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g = &z->geo;
    QEMU_AUTO_VFREE uint8_t *buf = NULL;
    uint64_t read = 0;
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
        if (read < QCOW2_ZONED_MAX_VERIFY) {
            ret = zone_data_matches(bs, i, z->flushed[i], wp,
                                    be32_to_cpu(z->table[i].crc), buf, &read);
        } else {
            unread++;
        }
        if (ret < 0 && !check) {
            error_setg_errno(errp, -ret, "Could not verify the write pointer "
                             "of zone %ld; 'qemu-img check -r all' takes it "
                             "back to its last flush", i);
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
    info_report("Zoned image '%s' was not closed cleanly; write pointers "
                "verified: %" PRIu32 " (%" PRIu64 " bytes read), of which "
                "back at their last flush: %" PRIu32, bs->filename, checked,
                read, back);
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
    if (!z->table || !bs->wps || !z->flushed || !z->crc || !z->dirty ||
        !z->owned || !z->unstable || !z->unsettled ||
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

        if (!decode_entry(g, z->disk_size, i, &z->table[i], wp,
                          &z->flushed[i])) {
            if (!bad) {
                error_setg(errp, "Zone %" PRIu32 " has an invalid write "
                           "pointer entry 0x%016" PRIx64 " %08" PRIx32 " %08"
                           PRIx32 "; 'qemu-img check -r all' can repair it",
                           i, be64_to_cpu(z->table[i].wp),
                           be32_to_cpu(z->table[i].flushed),
                           be32_to_cpu(z->table[i].crc));
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
    }
    z->busy = g_hash_table_new(NULL, NULL);
    qemu_mutex_init(&z->lock);
    qemu_co_queue_init(&z->idle);
    qemu_co_mutex_init(&z->table_lock);
    z->loaded = true;
    return 0;
}

static int coroutine_fn GRAPH_RDLOCK settle_zones(BlockDriverState *bs);

int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_open(BlockDriverState *bs, int flags, Error **errp)
{
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
    if (has_data_file(bs) || s->crypt_method_header ||
        s->image_backing_file) {
        error_setg(errp, "Zoned image has a%s", has_data_file(bs) ?
                   "n external data file" : s->crypt_method_header ?
                   " encryption header" : " backing file");
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
    if (!off || !QEMU_IS_ALIGNED(off, s->cluster_size) || off > file_size ||
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
        ret = settle_zones(bs);
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
        table[i] = settled_entry(&g, i, zone_start(&g, i));
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

    s->zoned = g_new0(struct Qcow2Zoned, 1);
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

        if (decode_entry(g, disk_size, i, &table[i], &wp, &flushed)) {
            if (is_seq(g, i) && wp - zone_start(g, i) != flushed) {
                unsettled++;
                if (fix && z->loaded) {
                    table[i] = settled_entry(g, i, bs->wps->wp[i]);
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
        table[i] = settled_entry(g, i, is_seq(g, i) ? zone_start(g, i) : wp);
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
        ret = bdrv_co_flush(bs->file->bs);
        z->verify_flush = ret < 0;
    }
    if (ret >= 0) {
        ret = bdrv_co_pwrite(bs->file, z->wp_table_offset,
                             wp_table_bytes(g), table, 0);
    }
    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret < 0) {
        fprintf(stderr, "ERROR could not write the write-pointer table: %s\n",
                strerror(-ret));
        res->corruptions += bad;
        res->check_errors++;
        return ret;
    }
    if (z->table) {
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

/* Read a size or number creation option, noting whether it was given */
static uint64_t take_opt(QemuOpts *opts, const char *name, bool *has,
                         bool is_size)
{
    *has = qemu_opt_get(opts, name) != NULL;
    return is_size ? qemu_opt_get_size_del(opts, name, 0) :
                     qemu_opt_get_number_del(opts, name, 0);
}

/*
 * qemu-img measure: the bytes the write-pointer table of an image with
 * these creation options takes, 0 if it is not zoned, or -errno.
 */
int64_t qcow2_zoned_measure(QemuOpts *opts, uint64_t disk_size,
                            uint32_t cluster_size, Error **errp)
{
    g_autofree char *mode = qemu_opt_get_del(opts, "zone.mode");
    Qcow2ZoneHostManaged hm;
    Qcow2ZoneGeometry g;
    uint64_t v;

    if (!mode) {
        return 0;
    }
    if (strcmp(mode, "host-managed")) {
        error_setg(errp, "zone.mode must be host-managed, not '%s'", mode);
        return -EINVAL;
    }
    hm.size = take_opt(opts, "zone.size", &hm.has_size, true);
    hm.capacity = take_opt(opts, "zone.capacity", &hm.has_capacity, true);
    v = take_opt(opts, "zone.conventional_zones", &hm.has_conventional_zones,
                 false);
    hm.conventional_zones = MIN(v, UINT32_MAX);
    v = take_opt(opts, "zone.max_open_zones", &hm.has_max_open_zones, false);
    hm.max_open_zones = MIN(v, UINT32_MAX);
    v = take_opt(opts, "zone.max_active_zones", &hm.has_max_active_zones,
                 false);
    hm.max_active_zones = MIN(v, UINT32_MAX);
    hm.max_append_bytes = take_opt(opts, "zone.max_append_bytes",
                                   &hm.has_max_append_bytes, true);
    if (!geometry_from_options(&hm, disk_size, cluster_size, &g, errp)) {
        return -EINVAL;
    }
    return ROUND_UP(wp_table_bytes(&g), cluster_size);
}

/*
 * Zone emulation at run time.
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
 * and before the one flush of the image file (qcow2_zoned_co_flush): no
 * metadata I/O on the data path.  A reset or finish owns its zones while
 * it runs: it waits for their writes in flight, and new writes to them
 * wait for it.  Both are durable when they complete, and change the zones
 * in memory only once the disk agrees.
 *
 * Requests come from any thread.  z->lock serialises the bookkeeping and
 * is never held across I/O; z->table_lock serialises the writes of the
 * table.  Order: table_lock, then lock; qcow2's s->lock is never taken
 * with z->lock held.
 */

static ZoneBusy *busy_zone(Qcow2Zoned *z, uint32_t idx)
{
    return g_hash_table_lookup(z->busy, GUINT_TO_POINTER(idx));
}

/* Every byte of zone @idx below this is written; z->lock held */
static uint64_t done_wp(BlockDriverState *bs, uint32_t idx)
{
    BDRVQcow2State *s = bs->opaque;
    ZoneBusy *zb = busy_zone(s->zoned, idx);

    return zb ? zb->done_wp : bs->wps->wp[idx];
}

/* The write pointer of zone @idx moves to @wp; z->lock held */
static void set_wp(BlockDriverState *bs, uint32_t idx, uint64_t wp)
{
    /* Front-ends read it without the lock */
    qatomic_set(&bs->wps->wp[idx], wp);
}

/*
 * Table entries on their way to disk: runs of whole write granules
 * (the file's request alignment, at least a sector), each a copy of
 * z->table with new values in it, so that an entry's neighbours are
 * written as they are on disk.
 */
typedef struct TableRun {
    uint64_t start, len;        /* bytes of the table */
    uint8_t *buf;
} TableRun;

typedef struct TableUpdate {
    uint64_t granule;
    GArray *runs;
} TableUpdate;

static void table_update_init(BlockDriverState *bs, TableUpdate *u)
{
    u->granule = MAX(BDRV_SECTOR_SIZE, bs->file->bs->bl.request_alignment);
    u->runs = g_array_new(false, false, sizeof(TableRun));
}

static void table_update_free(TableUpdate *u)
{
    guint i;

    for (i = 0; i < u->runs->len; i++) {
        g_free(g_array_index(u->runs, TableRun, i).buf);
    }
    g_array_free(u->runs, true);
}

/*
 * Put @e into the entry of zone @idx; zones come in ascending order.
 * z->table_lock held.  Returns false if out of memory.
 */
static bool stage_entry(Qcow2Zoned *z, TableUpdate *u, uint32_t idx,
                        Qcow2ZonedEntry e)
{
    uint64_t pos = (uint64_t)idx * sizeof(Qcow2ZonedEntry);
    uint64_t gstart = QEMU_ALIGN_DOWN(pos, u->granule);
    uint64_t gend = MIN(gstart + u->granule, wp_table_bytes(&z->geo));
    TableRun *r = u->runs->len ?
                  &g_array_index(u->runs, TableRun, u->runs->len - 1) : NULL;

    if (!r || pos >= r->start + r->len) {
        if (r && gstart == r->start + r->len) {
            /* The next granule: the run grows */
            uint8_t *buf = g_try_realloc(r->buf, gend - r->start);

            if (!buf) {
                return false;
            }
            r->buf = buf;
        } else {
            TableRun n = { .start = gstart, .buf = g_try_malloc(u->granule) };

            if (!n.buf) {
                return false;
            }
            g_array_append_val(u->runs, n);
            r = &g_array_index(u->runs, TableRun, u->runs->len - 1);
            r->len = 0;
        }
        memcpy(r->buf + r->len, (uint8_t *)z->table + r->start + r->len,
               gend - r->start - r->len);
        r->len = gend - r->start;
    }
    memcpy(r->buf + (pos - r->start), &e, sizeof(e));
    return true;
}

/*
 * Write the staged runs.  z->table_lock held.  z->table follows each run
 * written.  Every entry is valid on disk whenever it gets there: its
 * flushed write pointer was durable when it was made, and an open checks
 * the rest against its CRC.
 */
static int coroutine_fn GRAPH_RDLOCK
write_runs(BlockDriverState *bs, TableUpdate *u)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    guint i;
    int ret;

    if (z->verify_flush && u->runs->len) {
        /* What verification accepted reaches the disk first */
        trace_qcow2_zoned_flush_file(bs);
        ret = bdrv_co_flush(bs->file->bs);
        if (ret < 0) {
            return ret;
        }
        z->verify_flush = false;
    }
    for (i = 0; i < u->runs->len; i++) {
        TableRun *r = &g_array_index(u->runs, TableRun, i);

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
static int coroutine_fn GRAPH_RDLOCK
write_staged(BlockDriverState *bs, TableUpdate *u)
{
    int ret = write_runs(bs, u);

    if (ret >= 0 && u->runs->len) {
        trace_qcow2_zoned_flush_file(bs);
        ret = bdrv_co_flush(bs->file->bs);
    }
    return ret;
}

/*
 * A table update failed: what it staged may or may not be on disk.  Its
 * zones are written again at the next flush, with their values then.
 */
static void redirty_staged(Qcow2Zoned *z, TableUpdate *u)
{
    guint i;

    qemu_mutex_lock(&z->lock);
    for (i = 0; i < u->runs->len; i++) {
        TableRun *r = &g_array_index(u->runs, TableRun, i);

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

/* A zone whose entry a flush writes */
typedef struct FlushedZone {
    uint32_t idx;
    bool settle;        /* only settles the entry on disk */
    bool ordered;       /* written after the data is flushed */
    uint64_t wp;        /* the write pointer it writes */
    uint32_t crc;       /* raw CRC of the data below it not yet flushed */
    Qcow2ZonedEntry e;
} FlushedZone;

/*
 * Take the zones a flush writes: dirty zones, with their write pointers
 * now (unless @settle_only); zones whose entry on disk still needs
 * verification, settled at the write pointer of their last completed
 * flush, when there are dirty zones anyway (or @settle_only), so that an
 * open after a crash verifies only what the last flush wrote.  z->lock
 * held.
 */
static void take_zones(BlockDriverState *bs, GArray *taken, bool settle_only)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g = &z->geo;
    long n = g->nr_zones, d, u, i;

    d = settle_only ? n : find_first_bit(z->dirty, n);
    u = d < n || settle_only ? find_first_bit(z->unsettled, n) : n;
    while ((i = MIN(d, u)) < n) {
        FlushedZone f = { .idx = i };

        if (i == d) {
            f.wp = done_wp(bs, i);
            f.crc = z->crc[i];
            /* What reached the disk may not hash to f.crc: order it */
            f.ordered = test_and_clear_bit(i, z->unstable);
            f.e = f.ordered ? settled_entry(g, i, f.wp) :
                  encode_entry(g, i, f.wp, z->flushed[i], f.crc);
            clear_bit(i, z->dirty);
            d = find_next_bit(z->dirty, n, i + 1);
        } else {
            f.settle = true;
            f.wp = zone_start(g, i) + z->flushed[i];
            f.e = settled_entry(g, i, f.wp);
        }
        if (i == u) {
            u = find_next_bit(z->unsettled, n, i + 1);
        }
        g_array_append_val(taken, f);
    }
    if (!settle_only) {
        z->unflushed = 0;
    }
}

/* Stage the entries of @taken, ordered ones or not */
static bool stage_taken(Qcow2Zoned *z, TableUpdate *u, GArray *taken,
                        bool ordered)
{
    guint i;

    for (i = 0; i < taken->len; i++) {
        FlushedZone *f = &g_array_index(taken, FlushedZone, i);

        if (f->ordered == ordered && !stage_entry(z, u, f->idx, f->e)) {
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
            if (f->ordered) {
                set_bit(f->idx, z->unstable);
            }
            continue;
        }
        /* z->crc[] now covers [f->wp, done_wp()) */
        z->crc[f->idx] ^= crc_shift(f->crc, done_wp(bs, f->idx) - f->wp);
        if (f->ordered || rel == z->flushed[f->idx]) {
            clear_bit(f->idx, z->unsettled);
        } else {
            set_bit(f->idx, z->unsettled);
        }
        z->flushed[f->idx] = rel;
    }
}

/*
 * Write the entries that need verification as entries that need none, at
 * the write pointer of their zone's last completed flush (or the one
 * verification found), and flush them.  z->table_lock held, or nothing
 * else uses the node yet.
 */
static int coroutine_fn GRAPH_RDLOCK settle_zones(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    GArray *taken = g_array_new(false, false, sizeof(FlushedZone));
    TableUpdate u;
    int ret;

    table_update_init(bs, &u);
    qemu_mutex_lock(&z->lock);
    take_zones(bs, taken, true);
    qemu_mutex_unlock(&z->lock);
    ret = stage_taken(z, &u, taken, false) ? write_staged(bs, &u) : -ENOMEM;
    qemu_mutex_lock(&z->lock);
    taken_done(bs, taken, ret);
    qemu_mutex_unlock(&z->lock);
    table_update_free(&u);
    g_array_free(taken, true);
    return ret;
}

/*
 * Flush: one flush of the image file, as for a plain image.  The entries
 * of the dirty zones are written together with qcow2's caches, before
 * that flush and in no order with the data; each is made valid on disk
 * at any time by its CRC (see write_runs).  Only the entries of zones that
 * had a write whose buffer changed in flight are written after the flush
 * and flushed again.
 */
int coroutine_fn GRAPH_RDLOCK qcow2_zoned_co_flush(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    GArray *taken;
    TableUpdate u;
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
    table_update_init(bs, &u);
    qemu_mutex_lock(&z->lock);
    all = z->settle_all;
    take_zones(bs, taken, false);
    qemu_mutex_unlock(&z->lock);

    ret = stage_taken(z, &u, taken, false) ? 0 : -ENOMEM;
    if (ret == 0) {
        qemu_co_mutex_lock(&s->lock);
        ret = qcow2_write_caches(bs);
        qemu_co_mutex_unlock(&s->lock);
    }
    if (ret >= 0) {
        ret = write_runs(bs, &u);
    }
    if (ret >= 0 && taken->len) {
        trace_qcow2_zoned_flush_file(bs);
        ret = bdrv_co_flush(bs->file->bs);
    }
    table_update_free(&u);
    table_update_init(bs, &u);
    if (ret >= 0 && !stage_taken(z, &u, taken, true)) {
        ret = -ENOMEM;
    }
    if (ret >= 0) {
        ret = write_staged(bs, &u);
    }
    qemu_mutex_lock(&z->lock);
    taken_done(bs, taken, ret);
    qemu_mutex_unlock(&z->lock);
    trace_qcow2_zoned_flush(bs, taken->len, ret);
    if (ret >= 0 && all) {
        /* Nothing left to verify: the next open reads the table as is */
        ret = settle_zones(bs);
    }
    table_update_free(&u);
    g_array_free(taken, true);
    qemu_co_mutex_unlock(&z->table_lock);
    return ret;
}

/*
 * Inactivation, or a reopen read-only: the write pointers reach the disk,
 * as bitmaps do, and need no verification by the next user of the image
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

/* The raw CRC of what write @opaque writes, as its data starts on its way */
static void coroutine_fn hash_write(void *opaque)
{
    Qcow2ZonedWrite *w = opaque;

    w->crc = crc_raw_qiov(w->qiov, w->qiov_offset, w->end - w->offset);
    w->hashed = true;
    if (w->hash_waiter) {
        aio_co_wake(w->hash_waiter);
    }
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
 * -ETOOMANYREFS / -EOVERFLOW the open / active limit.  A write that is not
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
    ZoneBusy *zb;
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
    if (zone_sm_cond(&z->sm, idx) == BLK_ZS_FULL || wp == cap_end(z, idx)) {
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
        zb = z->spare ?: g_new(ZoneBusy, 1);
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
     * Hashed outside the lock, and while the data is on its way: the hash
     * runs once this coroutine waits for the data's I/O
     */
    w->qiov = qiov;
    w->qiov_offset = qiov_offset;
    w->hashed = !qiov;
    w->crc = 0;
    w->hash_waiter = NULL;
    if (qiov) {
        aio_co_enter(qemu_get_current_aio_context(),
                     qemu_coroutine_create(hash_write, w));
    }
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
 * flushed.  Once QCOW2_ZONED_MAX_UNFLUSHED bytes were written since the
 * last flush, this write flushes, so that an open after a crash has a
 * bounded amount of data to verify.
 */
int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_write_end(BlockDriverState *bs, Qcow2ZonedWrite *w, int ret)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    Qcow2ZonedWrite *next;
    ZoneBusy *zb;
    uint64_t start;
    bool stable = true, bound = false;

    if (w->zone == ZONE_SM_NONE) {
        return ret;
    }
    if (!w->hashed) {
        /* The data's I/O did not wait, or not long enough */
        w->hash_waiter = qemu_coroutine_self();
        qemu_coroutine_yield();
    }
    if (ret >= 0 && w->qiov) {
        stable = crc_raw_qiov(w->qiov, w->qiov_offset,
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
        z->crc[w->zone] = crc_shift(z->crc[w->zone], w->end - w->offset) ^
                          w->crc;
        if (!stable) {
            set_bit(w->zone, z->unstable);
            trace_qcow2_zoned_write_unstable(bs, w->zone, w->offset);
        }
        z->unflushed += w->end - w->offset;
        if (z->unflushed >= QCOW2_ZONED_MAX_UNFLUSHED && !z->bound_flush) {
            z->bound_flush = bound = true;
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

    if (bound) {
        int r = bdrv_co_flush(bs);

        trace_qcow2_zoned_bound_flush(bs, r);
        qemu_mutex_lock(&z->lock);
        z->bound_flush = false;
        qemu_mutex_unlock(&z->lock);
    }
    return ret;
}

/* Zeros for a write zeroes that qcow2 cannot do as one: its range is ours */
int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_write_zeroes(BlockDriverState *bs, int64_t offset, int64_t bytes,
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
 * writes completed by now put there.  The rest reads as zeros.
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
        };
    }
    qemu_mutex_unlock(&z->lock);
    *nr_zones = n;
    return 0;
}

/*
 * Zones @lo..@hi become the caller's: once none of them has writes in
 * flight or another owner, new writes to them wait until zones_release()
 */
static void coroutine_fn zones_acquire(Qcow2Zoned *z, uint32_t lo,
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

static void coroutine_fn zones_release(Qcow2Zoned *z, uint32_t lo,
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

/* A reset changes zone @idx: it is sequential and holds something */
static bool needs_reset(BlockDriverState *bs, uint32_t idx)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;

    return is_seq(&z->geo, idx) &&
           (bs->wps->wp[idx] != zone_start(&z->geo, idx) ||
            zone_sm_cond(&z->sm, idx) != BLK_ZS_EMPTY);
}

/*
 * Reset zones @lo..@hi, which the caller owns: their entries first,
 * durably, then memory; then their data
 */
static int coroutine_fn GRAPH_RDLOCK
reset_zones(BlockDriverState *bs, uint32_t lo, uint32_t hi)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g = &z->geo;
    g_autofree unsigned long *reset = bitmap_try_new(hi - lo + 1);
    TableUpdate u;
    uint32_t idx;
    int ret = 0;

    if (!reset) {
        return -ENOMEM;
    }
    qemu_co_mutex_lock(&z->table_lock);
    table_update_init(bs, &u);
    qemu_mutex_lock(&z->lock);
    for (idx = lo; idx <= hi && ret == 0; idx++) {
        if (needs_reset(bs, idx)) {
            set_bit(idx - lo, reset);
            if (!stage_entry(z, &u, idx,
                             settled_entry(g, idx, zone_start(g, idx)))) {
                ret = -ENOMEM;
            }
        }
    }
    qemu_mutex_unlock(&z->lock);
    if (ret == 0) {
        ret = write_staged(bs, &u);
    }
    trace_qcow2_zoned_reset(bs, lo, hi, ret);
    if (ret < 0) {
        /* The zones stay as they are; their entries are written again */
        redirty_staged(z, &u);
    } else {
        qemu_mutex_lock(&z->lock);
        for (idx = find_first_bit(reset, hi - lo + 1); idx <= hi - lo;
             idx = find_next_bit(reset, hi - lo + 1, idx + 1)) {
            set_wp(bs, lo + idx, zone_start(g, lo + idx));
            zone_sm_reset(&z->sm, lo + idx);
            clear_bit(lo + idx, z->dirty);
            clear_bit(lo + idx, z->unstable);
            clear_bit(lo + idx, z->unsettled);
            z->flushed[lo + idx] = 0;
            z->crc[lo + idx] = 0;
        }
        qemu_mutex_unlock(&z->lock);
    }
    table_update_free(&u);
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
 * The zeros and the entry reach the disk in one flush, in no order: the
 * entry's CRC covers the zeros too, so that an entry on disk without them
 * fails verification.  A zone with an unstable write is flushed first.
 * The finish holds z->table_lock throughout: a flush that took the zone
 * completes (or fails, and the zone is dirty again) before it looks.
 */
static int coroutine_fn GRAPH_RDLOCK
finish_zone(BlockDriverState *bs, uint32_t idx)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g = &z->geo;
    uint64_t zend = MIN(zone_start(g, idx) + g->zone_size, z->disk_size);
    uint64_t wp, aligned;
    bool full, dirty, unstable;
    Qcow2ZonedEntry e;
    TableUpdate u;
    int ret = 0;

    qemu_co_mutex_lock(&z->table_lock);
    qemu_mutex_lock(&z->lock);
    wp = bs->wps->wp[idx];
    full = zone_sm_cond(&z->sm, idx) == BLK_ZS_FULL;
    dirty = test_bit(idx, z->dirty);
    unstable = test_bit(idx, z->unstable);
    qemu_mutex_unlock(&z->lock);
    if (full && !dirty) {
        goto out;
    }
    /* What a failed write or a crash left past the write pointer goes */
    aligned = MIN(ROUND_UP(wp, s->cluster_size), zend);
    if (!full && aligned > wp) {
        ret = qcow2_zoned_write_zeroes(bs, wp, aligned - wp, 0);
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
    if (ret >= 0 && unstable) {
        trace_qcow2_zoned_flush_file(bs);
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret < 0) {
        goto out;
    }

    qemu_mutex_lock(&z->lock);
    e = unstable ? settled_entry(g, idx, cap_end(z, idx)) :
        encode_entry(g, idx, cap_end(z, idx), z->flushed[idx],
                     crc_shift(z->crc[idx], cap_end(z, idx) - wp));
    qemu_mutex_unlock(&z->lock);
    table_update_init(bs, &u);
    ret = stage_entry(z, &u, idx, e) ? write_staged(bs, &u) : -ENOMEM;
    trace_qcow2_zoned_finish(bs, idx, ret);
    if (ret < 0) {
        redirty_staged(z, &u);
        qemu_mutex_lock(&z->lock);
        set_bit(idx, z->unsettled);
        qemu_mutex_unlock(&z->lock);
    } else {
        qemu_mutex_lock(&z->lock);
        set_wp(bs, idx, cap_end(z, idx));
        zone_sm_finish(&z->sm, idx);
        clear_bit(idx, z->dirty);
        clear_bit(idx, z->unstable);
        if (be32_to_cpu(e.flushed) == be64_to_cpu(e.wp)) {
            clear_bit(idx, z->unsettled);
        } else {
            set_bit(idx, z->unsettled);
        }
        z->flushed[idx] = cap_end(z, idx) - zone_start(g, idx);
        z->crc[idx] = 0;
        qemu_mutex_unlock(&z->lock);
    }
    table_update_free(&u);
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
        zones_acquire(z, lo, hi);
        for (idx = lo; idx <= hi && ret >= 0; idx++) {
            ret = finish_zone(bs, idx);
        }
        zones_release(z, lo, hi);
        break;
    case BLK_ZO_RESET:
        zones_acquire(z, lo, hi);
        ret = reset_zones(bs, lo, hi);
        zones_release(z, lo, hi);
        break;
    default:
        ret = -ENOTSUP;
        break;
    }
    return ret;
}
