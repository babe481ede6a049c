/*
 * qcow2 zoned images: on-disk format, creation, validation, check
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * A zoned qcow2 image carries incompatible feature bit 5 and the zoned
 * header extension (docs/interop/qcow2.txt, "Zoned extension"), which
 * locates the write-pointer table: one big-endian 8-byte entry per zone.
 * Everything read from the image is validated here before it is used.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "block/block-io.h"
#include "qemu/bswap.h"
#include "qemu/cutils.h"
#include "qemu/host-utils.h"
#include "qemu/option.h"
#include "qemu/range.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "block/block_int.h"
#include "qemu/bitmap.h"
#include "qemu/coroutine.h"
#include "qcow2.h"
#include "qcow2-zone-sm.h"
#include "trace.h"

/* Zone model byte of the extension */
#define QCOW2_ZONE_MODEL_HM             1

/* A conventional zone's table entry */
#define QCOW2_ZONED_ENTRY_CONV          (1ULL << 63)

#define QCOW2_ZONED_MAX_ZONES           (1U << 24)
#define QCOW2_ZONED_MAX_ZONE_SIZE       (2 * GiB)
#define QCOW2_ZONED_DEFAULT_ZONE_SIZE   (256 * MiB)
#define QCOW2_ZONED_DEFAULT_MAX_APPEND  (64 * KiB)

/* On-disk header extension, big-endian, every field naturally aligned */
typedef struct QEMU_PACKED Qcow2ZonedExt {
    uint8_t zone_model;
    uint8_t reserved[3];
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

/* The writes in flight to one sequential zone, in write pointer order */
typedef struct ZoneWrites {
    QTAILQ_HEAD(, Qcow2ZonedWrite) inflight;
    /* New writes waiting for the writes behind a failed one to go */
    CoQueue waiters;
    /* Every byte of the zone below it is written */
    uint64_t done_wp;
    /* A write failed: the ones after it fail too, new ones wait */
    bool failed;
} ZoneWrites;

/* A write that waits for the writes before it to reach its zone */
typedef struct ZoneWaiter {
    uint32_t zone;
    QemuCoSleep sleep;
    QLIST_ENTRY(ZoneWaiter) next;
} ZoneWaiter;

struct Qcow2Zoned {
    Qcow2ZoneGeometry geo;
    uint64_t wp_table_offset;

    /* Run time state, set up when the image is opened */
    uint64_t disk_size;
    ZoneSM sm;
    /* The table as it is, or is about to be, on disk (big-endian) */
    uint64_t *table;
    /* Zones whose write pointer moved since their entry was written */
    unsigned long *dirty;
    /* Zone index -> ZoneWrites, for zones with writes in flight */
    GHashTable *busy;
    /* A ZoneWrites kept for the next zone that gets busy */
    ZoneWrites *spare;
    /* Writes hold it shared, zone management exclusive */
    CoRwlock mgmt_lock;
    /* Serialises use of @table and its writes to disk */
    CoMutex table_lock;
    QLIST_HEAD(, ZoneWaiter) waiters;
};

static uint64_t wp_table_bytes(const Qcow2ZoneGeometry *geo)
{
    return (uint64_t)geo->nr_zones * sizeof(uint64_t);
}

static uint64_t zone_start(const Qcow2ZoneGeometry *geo, uint32_t idx)
{
    return (uint64_t)idx * geo->zone_size;
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
    if (ext.reserved[0] || ext.reserved[1] || ext.reserved[2]) {
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
 * Decode table entry @be of zone @idx into the block layer's form
 * (absolute offset; bit 63 for a conventional zone).  Returns false if the
 * entry is invalid.
 */
static bool decode_entry(const Qcow2ZoneGeometry *g, uint64_t disk_size,
                         uint32_t idx, uint64_t be, uint64_t *wp)
{
    uint64_t v = be64_to_cpu(be);

    if (idx < g->conventional_zones) {
        *wp = QCOW2_ZONED_ENTRY_CONV | zone_start(g, idx);
        return v == QCOW2_ZONED_ENTRY_CONV;
    }
    *wp = zone_start(g, idx) + MIN(v, zone_capacity(g, disk_size, idx));
    return v <= zone_capacity(g, disk_size, idx) &&
           QEMU_IS_ALIGNED(v, BDRV_SECTOR_SIZE);
}

/* The table entry of zone @idx in the block layer's form @wp */
static uint64_t encode_entry(const Qcow2ZoneGeometry *g, uint32_t idx,
                             uint64_t wp)
{
    if (idx < g->conventional_zones) {
        return cpu_to_be64(QCOW2_ZONED_ENTRY_CONV);
    }
    return cpu_to_be64(wp - zone_start(g, idx));
}

/*
 * Read the write-pointer table into z->table, and the write pointers into
 * bs->wps and the state machine.  With @bad, invalid entries are counted
 * there and taken as full zones; without it, the first one is an error.
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
    bs->wps = g_try_malloc(sizeof(*bs->wps) + wp_table_bytes(g));
    if (!z->table || !bs->wps) {
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
    zone_sm_init(&z->sm, g->nr_zones, g->conventional_zones,
                 g->max_open_zones, g->max_active_zones);
    for (i = 0; i < g->nr_zones; i++) {
        uint64_t *wp = &bs->wps->wp[i];

        if (!decode_entry(g, z->disk_size, i, z->table[i], wp)) {
            if (!bad) {
                error_setg(errp, "Zone %" PRIu32 " has an invalid write "
                           "pointer entry 0x%" PRIx64 "; 'qemu-img check -r "
                           "all' can repair it", i, be64_to_cpu(z->table[i]));
                return -EINVAL;
            }
            (*bad)++;
        }
        zone_sm_load(&z->sm, i, *wp == zone_start(g, i),
                     *wp == zone_start(g, i) + zone_capacity(g, z->disk_size,
                                                             i));
    }
    z->dirty = bitmap_new(g->nr_zones);
    z->busy = g_hash_table_new(NULL, NULL);
    qemu_co_rwlock_init(&z->mgmt_lock);
    qemu_co_mutex_init(&z->table_lock);
    QLIST_INIT(&z->waiters);
    return 0;
}

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
    ret = qcow2_check_metadata_overlap(bs, QCOW2_OL_ZONED_TABLE |
                                       QCOW2_OL_INACTIVE_L2, off, bytes);
    if (ret) {
        error_setg(errp, "Write-pointer table at 0x%" PRIx64 " overlaps %s",
                   off, ret < 0 ? "unreadable metadata" :
                   "other qcow2 metadata");
        return -EINVAL;
    }

    s->zoned->disk_size = disk_size;
    ret = load_wp_table(bs, (flags & BDRV_O_CHECK) ? &bad : NULL, errp);
    if (ret < 0) {
        return ret;
    }
    trace_qcow2_zoned_open(bs, g->nr_zones, g->zone_size, bad);
    return 0;
}

void qcow2_zoned_close(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;

    if (z) {
        /* Nothing is in flight when a node closes */
        assert(!z->busy || !g_hash_table_size(z->busy));
        zone_sm_free(&z->sm);
        g_free(z->spare);
        g_free(z->table);
        g_free(z->dirty);
        if (z->busy) {
            g_hash_table_destroy(z->busy);
        }
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
    g_autofree uint64_t *table = NULL;
    int64_t off;
    uint32_t i;
    int ret;

    if (!geometry_from_options(&zopts->u.host_managed, disk_size,
                               s->cluster_size, &g, errp)) {
        return -EINVAL;
    }
    table = g_try_new(uint64_t, g.nr_zones);
    if (!table) {
        error_setg(errp, "Could not allocate the write-pointer table");
        return -ENOMEM;
    }
    for (i = 0; i < g.nr_zones; i++) {
        table[i] = encode_entry(&g, i, zone_start(&g, i));
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

    if (!s->zoned || !bs->wps) {
        return;
    }
    g = &s->zoned->geo;
    bs->bl.zoned = BLK_Z_HM;
    bs->bl.zone_size = g->zone_size;
    bs->bl.nr_zones = g->nr_zones;
    bs->bl.max_open_zones = g->max_open_zones;
    bs->bl.max_active_zones = g->max_active_zones;
    bs->bl.max_append_sectors = g->max_append_bytes >> BDRV_SECTOR_BITS;
    bs->bl.write_granularity = BDRV_SECTOR_SIZE;
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
 * capacity (the zone is full: all its data stays readable, nothing is
 * written past it until a reset), an invalid conventional zone entry the
 * conventional marker.
 */
int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_co_check(BlockDriverState *bs, BdrvCheckResult *res,
                     BdrvCheckMode fix)
{
    BDRVQcow2State *s = bs->opaque;
    const Qcow2ZoneGeometry *g;
    uint64_t disk_size = bs->total_sectors * BDRV_SECTOR_SIZE;
    g_autofree uint64_t *table = NULL;
    uint32_t i, bad = 0;
    int ret;

    if (!s->zoned) {
        return 0;
    }
    g = &s->zoned->geo;
    table = g_try_new(uint64_t, g->nr_zones);
    if (!table) {
        res->check_errors++;
        return -ENOMEM;
    }
    ret = bdrv_co_pread(bs->file, s->zoned->wp_table_offset,
                        wp_table_bytes(g), table, 0);
    if (ret < 0) {
        fprintf(stderr, "ERROR could not read the write-pointer table: %s\n",
                strerror(-ret));
        res->check_errors++;
        return ret;
    }
    for (i = 0; i < g->nr_zones; i++) {
        uint64_t wp;

        if (decode_entry(g, disk_size, i, table[i], &wp)) {
            continue;
        }
        fprintf(stderr, "%s zone %" PRIu32 ": invalid write pointer entry "
                "0x%" PRIx64 "\n", fix & BDRV_FIX_ERRORS ? "Repairing" :
                "ERROR", i, be64_to_cpu(table[i]));
        if (i >= g->conventional_zones) {
            wp = zone_start(g, i) + zone_capacity(g, disk_size, i);
        }
        table[i] = encode_entry(g, i, wp);
        if (bs->wps) {
            bs->wps->wp[i] = wp;
        }
        bad++;
    }
    if (!bad) {
        return 0;
    }
    if (!(fix & BDRV_FIX_ERRORS)) {
        res->corruptions += bad;
        return 0;
    }
    ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_ZONED_TABLE,
                                        s->zoned->wp_table_offset,
                                        wp_table_bytes(g), false);
    if (ret >= 0) {
        ret = bdrv_co_pwrite(bs->file, s->zoned->wp_table_offset,
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
    if (s->zoned->table) {
        memcpy(s->zoned->table, table, wp_table_bytes(g));
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
 * gone).  Table entries reach the disk in a flush, after the data and
 * qcow2 metadata they cover (qcow2_zoned_co_flush): no metadata I/O on the
 * data path.
 */

static uint32_t zone_of(const Qcow2ZoneGeometry *g, uint64_t offset)
{
    return offset / g->zone_size;
}

static bool is_seq(const Qcow2ZoneGeometry *g, uint32_t idx)
{
    return idx >= g->conventional_zones;
}

/* Every byte of zone @idx below this is written */
static uint64_t done_wp(BlockDriverState *bs, uint32_t idx)
{
    BDRVQcow2State *s = bs->opaque;
    ZoneWrites *zw = g_hash_table_lookup(s->zoned->busy,
                                         GUINT_TO_POINTER(idx));

    return zw ? zw->done_wp : bs->wps->wp[idx];
}

/* Write table entries @lo to @hi from z->table; table_lock held */
static int coroutine_fn GRAPH_RDLOCK
write_table(BlockDriverState *bs, uint32_t lo, uint32_t hi)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    uint64_t start = QEMU_ALIGN_DOWN((uint64_t)lo * 8, BDRV_SECTOR_SIZE);
    uint64_t end = MIN(QEMU_ALIGN_UP(((uint64_t)hi + 1) * 8, BDRV_SECTOR_SIZE),
                       wp_table_bytes(&z->geo));
    int ret;

    ret = qcow2_pre_write_overlap_check(bs, QCOW2_OL_ZONED_TABLE,
                                        z->wp_table_offset + start,
                                        end - start, false);
    if (ret < 0) {
        return ret;
    }
    trace_qcow2_zoned_write_table(bs, lo, hi);
    return bdrv_co_pwrite(bs->file, z->wp_table_offset + start, end - start,
                          (uint8_t *)z->table + start, 0);
}

/* Set the table entries of zones @lo to @hi and make them durable */
static int coroutine_fn GRAPH_RDLOCK
persist_entries(BlockDriverState *bs, uint32_t lo, uint32_t hi)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    uint32_t i;
    int ret;

    for (i = lo; i <= hi; i++) {
        z->table[i] = encode_entry(&z->geo, i, done_wp(bs, i));
        clear_bit(i, z->dirty);
    }
    ret = write_table(bs, lo, hi);
    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret < 0) {
        bitmap_set(z->dirty, lo, hi - lo + 1);
    }
    return ret;
}

/*
 * Flush: the caches of qcow2, then write pointers.  The values are taken
 * first, the data and metadata of the writes they cover are flushed next,
 * and only then are the entries written (the block layer flushes them).
 */
int coroutine_fn GRAPH_RDLOCK qcow2_zoned_co_flush(BlockDriverState *bs)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    long lo, hi = -1, i;
    int ret;

    qemu_co_mutex_lock(&z->table_lock);
    lo = find_first_bit(z->dirty, z->geo.nr_zones);
    for (i = lo; i < z->geo.nr_zones;
         i = find_next_bit(z->dirty, z->geo.nr_zones, i + 1)) {
        z->table[i] = encode_entry(&z->geo, i, done_wp(bs, i));
        clear_bit(i, z->dirty);
        hi = i;
    }

    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_write_caches(bs);
    qemu_co_mutex_unlock(&s->lock);
    if (ret >= 0 && hi >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
        if (ret >= 0) {
            ret = write_table(bs, lo, hi);
        }
        if (ret < 0) {
            /* Try again at the next flush */
            bitmap_set(z->dirty, lo, hi - lo + 1);
        }
    }
    qemu_co_mutex_unlock(&z->table_lock);
    return ret;
}

/*
 * Range [@offset, @offset + @bytes) lies in zone @idx, or in conventional
 * zones only
 */
static int check_range(const Qcow2ZoneGeometry *g, uint64_t offset,
                       uint64_t bytes, uint32_t *idx)
{
    uint32_t first = zone_of(g, offset);
    uint32_t last = zone_of(g, offset + bytes - 1);

    *idx = first;
    if (!is_seq(g, last)) {
        return 0;
    }
    if (first != last) {
        return -EINVAL;
    }
    if (!QEMU_IS_ALIGNED(offset | bytes, BDRV_SECTOR_SIZE)) {
        return -EINVAL;
    }
    return 0;
}

/*
 * A write that arrives ahead of the write pointer of zone @idx waits a
 * little for the writes before it.  QEMU's block layer does not keep the
 * order of requests that are submitted from the completion callbacks of
 * others (qemu-img bench does that): a writer that keeps many writes in
 * flight to one zone, in order, must not see them refused for it.  A
 * write that is really off the write pointer is refused after the wait.
 */
#define QCOW2_ZONED_REORDER_WAIT_NS (10 * SCALE_MS)

static void coroutine_fn wait_for_predecessors(BlockDriverState *bs,
                                               uint32_t idx, uint64_t offset)
{
    BDRVQcow2State *s = bs->opaque;
    ZoneWaiter w = { .zone = idx };
    int64_t deadline = qemu_clock_get_ns(QEMU_CLOCK_REALTIME) +
                       QCOW2_ZONED_REORDER_WAIT_NS;
    int64_t now;

    QLIST_INSERT_HEAD(&s->zoned->waiters, &w, next);
    while (bs->wps->wp[idx] < offset &&
           (now = qemu_clock_get_ns(QEMU_CLOCK_REALTIME)) < deadline) {
        /* Woken by each write that reserves its range in this zone */
        qemu_co_sleep_ns_wakeable(&w.sleep, QEMU_CLOCK_REALTIME,
                                  deadline - now);
    }
    QLIST_REMOVE(&w, next);
}

static void wake_waiters(Qcow2Zoned *z, uint32_t idx)
{
    ZoneWaiter *w;

    QLIST_FOREACH(w, &z->waiters, next) {
        if (w->zone == idx) {
            qemu_co_sleep_wake(&w->sleep);
        }
    }
}

/*
 * Before a write (or zone append, @append) of @bytes at *@offset: check
 * the zone rules, open the zone, reserve the range.  For an append,
 * *@offset is set to where the data goes.  Pair with qcow2_zoned_write_end
 * on success.
 */
int coroutine_fn qcow2_zoned_write_begin(BlockDriverState *bs,
                                         int64_t *offset, int64_t bytes,
                                         bool append, Qcow2ZonedWrite *w)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g;
    ZoneWrites *zw;
    uint64_t wp;
    uint32_t idx, closed;
    int ret;

    w->zone = ZONE_SM_NONE;
    if (!z || (!bytes && !append)) {
        return 0;
    }
    g = &z->geo;
    if (!bytes) {
        return -EINVAL;
    }
    ret = check_range(g, *offset, bytes, &idx);
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

    qemu_co_rwlock_rdlock(&z->mgmt_lock);
    if (!append && *offset > bs->wps->wp[idx] &&
        *offset < cap_end(z, idx)) {
        wait_for_predecessors(bs, idx, *offset);
    }
    /* After a failed write, wait until the writes behind it are gone */
    while ((zw = g_hash_table_lookup(z->busy, GUINT_TO_POINTER(idx))) &&
           zw->failed) {
        qemu_co_queue_wait(&zw->waiters, NULL);
    }

    wp = bs->wps->wp[idx];
    if (append) {
        *offset = wp;
    }
    if (*offset != wp) {
        ret = -EINVAL;
    } else if (wp + bytes > cap_end(z, idx)) {
        ret = -EINVAL;
    } else {
        ret = zone_sm_write(&z->sm, idx, &closed);
        if (ret == 0 && closed != ZONE_SM_NONE) {
            trace_qcow2_zoned_implicit_close(bs, closed);
        }
    }
    if (ret == 0) {
        /* Data is on its way: closing the zone now leaves it CLOSED */
        zone_sm_set_wp(&z->sm, idx, true, false);
    }
    if (ret < 0) {
        qemu_co_rwlock_unlock(&z->mgmt_lock);
        trace_qcow2_zoned_write_refused(bs, *offset, bytes, ret);
        return ret;
    }

    bs->wps->wp[idx] = wp + bytes;
    wake_waiters(z, idx);
    if (!zw) {
        zw = z->spare ?: g_new(ZoneWrites, 1);
        z->spare = NULL;
        QTAILQ_INIT(&zw->inflight);
        qemu_co_queue_init(&zw->waiters);
        zw->done_wp = wp;
        zw->failed = false;
        g_hash_table_insert(z->busy, GUINT_TO_POINTER(idx), zw);
    }
    w->zone = idx;
    w->offset = wp;
    w->end = wp + bytes;
    w->co = NULL;
    QTAILQ_INSERT_TAIL(&zw->inflight, w, next);
    return 0;
}

/*
 * After the data of @w was written (@ret >= 0) or not: complete it in
 * zone order.  Returns what the request returns.
 */
int coroutine_fn qcow2_zoned_write_end(BlockDriverState *bs,
                                       Qcow2ZonedWrite *w, int ret)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g;
    Qcow2ZonedWrite *next;
    ZoneWrites *zw;
    uint64_t start;

    if (w->zone == ZONE_SM_NONE) {
        return ret;
    }
    g = &z->geo;
    start = zone_start(g, w->zone);
    zw = g_hash_table_lookup(z->busy, GUINT_TO_POINTER(w->zone));
    if (QTAILQ_FIRST(&zw->inflight) != w) {
        /* Complete in zone order: the write before this one wakes it */
        w->co = qemu_coroutine_self();
        qemu_coroutine_yield();
    }
    QTAILQ_REMOVE(&zw->inflight, w, next);

    if (ret >= 0 && zw->failed) {
        /*
         * Its data lies past the write pointer that an earlier write
         * left behind: it reads as zeros, and the write failed
         */
        ret = -EIO;
    } else if (ret < 0 && !zw->failed) {
        zw->failed = true;
        bs->wps->wp[w->zone] = w->offset;
        zone_sm_set_wp(&z->sm, w->zone, w->offset != start, false);
        trace_qcow2_zoned_write_failed(bs, w->zone, w->offset, ret);
    } else if (ret >= 0) {
        zw->done_wp = w->end;
        set_bit(w->zone, z->dirty);
        zone_sm_set_wp(&z->sm, w->zone, true, w->end == cap_end(z, w->zone));
    }

    next = QTAILQ_FIRST(&zw->inflight);
    if (next && next->co) {
        /*
         * The next write completes once this coroutine is done.  What its
         * completion submits may then reach the zone before what this
         * completion submitted; wait_for_predecessors() absorbs that.
         */
        aio_co_wake(next->co);
        next->co = NULL;
    }
    if (QTAILQ_EMPTY(&zw->inflight)) {
        /* New writes that wait for a failure to drain may go on */
        qemu_co_queue_restart_all(&zw->waiters);
        g_hash_table_remove(z->busy, GUINT_TO_POINTER(w->zone));
        if (z->spare) {
            g_free(zw);
        } else {
            z->spare = zw;
        }
    }
    qemu_co_rwlock_unlock(&z->mgmt_lock);
    return ret;
}

/*
 * Write paths that cannot obey the zone rules (compressed writes, copy
 * offload, discard): allowed in conventional zones only
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
    return is_seq(g, zone_of(g, offset + bytes - 1)) ? -ENOTSUP : 0;
}

/* Reads past the write pointer of a sequential zone return zeros */
void qcow2_zoned_zero_unwritten(BlockDriverState *bs, int64_t offset,
                                int64_t bytes, QEMUIOVector *qiov,
                                size_t qiov_offset)
{
    BDRVQcow2State *s = bs->opaque;
    const Qcow2ZoneGeometry *g;
    uint64_t end = offset + bytes;
    uint32_t idx;

    if (!s->zoned || !bytes) {
        return;
    }
    g = &s->zoned->geo;
    for (idx = zone_of(g, offset); idx <= zone_of(g, end - 1); idx++) {
        uint64_t zs = zone_start(g, idx);
        uint64_t from = MAX(offset, bs->wps->wp[idx]);
        uint64_t to = MIN(end, zs + g->zone_size);

        if (is_seq(g, idx) && from < to) {
            qemu_iovec_memset(qiov, qiov_offset + (from - offset), 0,
                              to - from);
        }
    }
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
    *nr_zones = n;
    return 0;
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

/* Reset zones @lo..@hi: their entries first, durably; then their data */
static int coroutine_fn GRAPH_RDLOCK
reset_zones(BlockDriverState *bs, uint32_t lo, uint32_t hi)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g = &z->geo;
    g_autofree unsigned long *reset = bitmap_new(hi - lo + 1);
    uint32_t idx, first = UINT32_MAX, last = 0;
    int ret = 0;

    qemu_co_mutex_lock(&z->table_lock);
    for (idx = lo; idx <= hi; idx++) {
        /* Empty zones are left alone: nothing to write, nothing to free */
        if (!is_seq(g, idx) ||
            (bs->wps->wp[idx] == zone_start(g, idx) &&
             zone_sm_cond(&z->sm, idx) == BLK_ZS_EMPTY)) {
            continue;
        }
        bs->wps->wp[idx] = zone_start(g, idx);
        zone_sm_reset(&z->sm, idx);
        set_bit(idx - lo, reset);
        first = MIN(first, idx);
        last = idx;
    }
    if (first != UINT32_MAX) {
        ret = persist_entries(bs, first, last);
    }
    qemu_co_mutex_unlock(&z->table_lock);
    if (ret < 0) {
        return ret;
    }

    for (idx = lo; idx <= hi; idx++) {
        uint64_t start = zone_start(g, idx);
        int r;

        if (!test_bit(idx - lo, reset)) {
            continue;
        }
        /* Not an error if it fails: the zone reads as zeros anyway */
        r = discard_range(bs, start, MIN(g->zone_size, z->disk_size - start));
        if (r < 0) {
            trace_qcow2_zoned_discard_failed(bs, idx, r);
        }
    }
    return 0;
}

/*
 * Finish zone @idx: the rest of its capacity reads as zeros, then it is
 * full, durably
 */
static int coroutine_fn GRAPH_RDLOCK
finish_zone(BlockDriverState *bs, uint32_t idx)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Zoned *z = s->zoned;
    const Qcow2ZoneGeometry *g = &z->geo;
    uint64_t wp = bs->wps->wp[idx];
    uint64_t zend = MIN(zone_start(g, idx) + g->zone_size, z->disk_size);
    uint64_t aligned = MIN(ROUND_UP(wp, s->cluster_size), zend);
    int ret;

    if (zone_sm_cond(&z->sm, idx) == BLK_ZS_FULL) {
        return 0;
    }
    /* What a failed write or a crash left past the write pointer goes */
    if (aligned > wp) {
        g_autofree void *zeros = g_malloc0(aligned - wp);
        QEMUIOVector qiov;

        qemu_iovec_init_buf(&qiov, zeros, aligned - wp);
        ret = qcow2_co_pwritev_data(bs, wp, aligned - wp, &qiov, 0, 0);
        if (ret < 0) {
            return ret;
        }
    }
    if (zend > aligned) {
        ret = discard_range(bs, aligned, zend - aligned);
        if (ret < 0) {
            return ret;
        }
    }
    qemu_co_mutex_lock(&s->lock);
    ret = qcow2_write_caches(bs);
    qemu_co_mutex_unlock(&s->lock);
    if (ret >= 0) {
        ret = bdrv_co_flush(bs->file->bs);
    }
    if (ret < 0) {
        return ret;
    }

    qemu_co_mutex_lock(&z->table_lock);
    bs->wps->wp[idx] = cap_end(z, idx);
    zone_sm_finish(&z->sm, idx);
    ret = persist_entries(bs, idx, idx);
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

    qemu_co_rwlock_wrlock(&z->mgmt_lock);
    trace_qcow2_zoned_mgmt(bs, op, lo, hi);
    switch (op) {
    case BLK_ZO_OPEN:
        for (idx = lo; idx <= hi && ret >= 0; idx++) {
            ret = zone_sm_open(&z->sm, idx, &closed);
            if (ret == 0 && closed != ZONE_SM_NONE) {
                trace_qcow2_zoned_implicit_close(bs, closed);
            }
        }
        break;
    case BLK_ZO_CLOSE:
        for (idx = lo; idx <= hi && ret >= 0; idx++) {
            ret = zone_sm_close(&z->sm, idx);
        }
        break;
    case BLK_ZO_FINISH:
        for (idx = lo; idx <= hi && ret >= 0; idx++) {
            ret = finish_zone(bs, idx);
        }
        break;
    case BLK_ZO_RESET:
        ret = reset_zones(bs, lo, hi);
        break;
    default:
        ret = -ENOTSUP;
        break;
    }
    qemu_co_rwlock_unlock(&z->mgmt_lock);
    return ret;
}
