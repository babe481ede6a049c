/*
 * qcow2 zoned images: what the format code and the zone emulation share
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * qcow2-zoned.c reads, validates, checks and writes the image's zone
 * metadata (the zoned extension and the write-pointer table);
 * qcow2-zoned-io.c emulates the zones at run time on top of it, with the
 * state machine of qcow2-zone-sm.c.  qcow2.c sees only the functions that
 * qcow2.h declares.
 */

#ifndef BLOCK_QCOW2_ZONED_H
#define BLOCK_QCOW2_ZONED_H

#include "qemu/coroutine.h"
#include "qemu/thread.h"
#include "block/block_int.h"
#include "qcow2.h"
#include "qcow2-zone-sm.h"

/* A conventional zone's table entry */
#define QCOW2_ZONED_ENTRY_CONV          (1ULL << 63)

/*
 * A sequential zone's faults: bits 59 to 62 of its entry's wp field, with
 * the image's zone-faults feature bit.  FZR and RZR are attributes only
 * (NVMe's Finish / Reset Zone Recommended); a READ ONLY or OFFLINE zone
 * has failed.
 */
#define QCOW2_ZONED_FAULT_SHIFT         59
#define QCOW2_ZONED_FAULT_FZR           (1 << 0)
#define QCOW2_ZONED_FAULT_RZR           (1 << 1)
#define QCOW2_ZONED_FAULT_RDONLY        (1 << 2)
#define QCOW2_ZONED_FAULT_OFFLINE       (1 << 3)
#define QCOW2_ZONED_FAULT_ATTRS \
    (QCOW2_ZONED_FAULT_FZR | QCOW2_ZONED_FAULT_RZR)
#define QCOW2_ZONED_FAULT_FAILED \
    (QCOW2_ZONED_FAULT_RDONLY | QCOW2_ZONED_FAULT_OFFLINE)
#define QCOW2_ZONED_FAULT_MASK \
    (QCOW2_ZONED_FAULT_ATTRS | QCOW2_ZONED_FAULT_FAILED)

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
typedef struct Qcow2ZoneBusy {
    /* Its writes in flight, in write pointer order */
    QTAILQ_HEAD(, Qcow2ZonedWrite) inflight;
    /* Every byte of the zone below it is written */
    uint64_t done_wp;
    /* A write failed: the ones after it fail too, new ones wait */
    bool failed;
} Qcow2ZoneBusy;

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
     * @settle_all.  Requests come from any thread; the lock is held for
     * bookkeeping only, never across I/O or a yield.
     */
    QemuMutex lock;
    ZoneSM sm;
    /* Zones whose write pointer moved since their entry was written */
    unsigned long *dirty;
    /* Zone index -> Qcow2ZoneBusy, for zones with writes in flight */
    GHashTable *busy;
    /* A Qcow2ZoneBusy kept for the next zone that gets busy */
    Qcow2ZoneBusy *spare;
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
    /*
     * Per zone: its QCOW2_ZONED_FAULT_* bits, as in its entry.  Changed
     * with both @lock and @table_lock held, and staged into every entry
     * written.  A failed zone's state in @sm is READ ONLY or OFFLINE.
     */
    uint8_t *fault;
    /* The next flush settles every zone (inactivation, close) */
    bool settle_all;

    /* Serialises the writes of the table; protects @table, @verify_flush */
    CoMutex table_lock;
    /* The table as last written to disk */
    Qcow2ZonedEntry *table;
    /*
     * Verification accepted data that may not be on stable storage yet
     * (a process that died leaves it in the host's cache): the image file
     * is flushed before the next write of the table.  Set by the open
     * that verifies, before any request.
     */
    bool verify_flush;
};

/*
 * What a request to a zone in state @st gets if the zone failed: -EROFS
 * for a READ ONLY zone (reads work), -ENODEV for an OFFLINE one; else 0
 */
static inline int zone_failed_errno(BlockZoneState st)
{
    return st == BLK_ZS_RDONLY ? -EROFS : st == BLK_ZS_OFFLINE ? -ENODEV : 0;
}

static inline uint64_t wp_table_bytes(const Qcow2ZoneGeometry *geo)
{
    return (uint64_t)geo->nr_zones * sizeof(Qcow2ZonedEntry);
}

static inline uint64_t zone_start(const Qcow2ZoneGeometry *geo, uint32_t idx)
{
    return (uint64_t)idx * geo->zone_size;
}

static inline uint32_t zone_of(const Qcow2ZoneGeometry *g, uint64_t offset)
{
    return offset / g->zone_size;
}

static inline bool is_seq(const Qcow2ZoneGeometry *g, uint32_t idx)
{
    return idx >= g->conventional_zones;
}

/* Writable bytes of zone @idx: the last zone may be shorter */
static inline uint64_t zone_capacity(const Qcow2ZoneGeometry *geo,
                                     uint64_t disk_size, uint32_t idx)
{
    return MIN(geo->zone_capacity, disk_size - zone_start(geo, idx));
}

/* Where the writable part of zone @idx of an open image ends */
static inline uint64_t cap_end(const Qcow2Zoned *z, uint32_t idx)
{
    return zone_start(&z->geo, idx) +
           zone_capacity(&z->geo, z->disk_size, idx);
}

/*
 * Table entries on their way to disk: runs of whole write granules
 * (the file's request alignment, at least a sector), each a copy of
 * z->table with new values in it, so that an entry's neighbours are
 * written as they are on disk.
 */
typedef struct Qcow2ZonedRun {
    uint64_t start, len;        /* bytes of the table */
    uint8_t *buf;
} Qcow2ZonedRun;

typedef struct Qcow2ZonedUpdate {
    uint64_t granule;
    GArray *runs;
} Qcow2ZonedUpdate;

/* qcow2-zoned.c: CRC-32C arithmetic (see there) */
uint32_t qcow2_zoned_crc_qiov(QEMUIOVector *qiov, size_t offset,
                              size_t bytes);

/* qcow2-zoned.c: table entries */
Qcow2ZonedEntry qcow2_zoned_entry(const Qcow2ZoneGeometry *g, uint32_t idx,
                                  uint64_t wp, uint32_t flushed,
                                  uint32_t raw);
Qcow2ZonedEntry qcow2_zoned_settled_entry(const Qcow2ZoneGeometry *g,
                                          uint32_t idx, uint64_t wp);

/* qcow2-zoned-io.c: zones that a reset, finish or fault owns */
void coroutine_fn qcow2_zoned_acquire(Qcow2Zoned *z, uint32_t lo,
                                      uint32_t hi);
void coroutine_fn qcow2_zoned_release(Qcow2Zoned *z, uint32_t lo,
                                      uint32_t hi);

/* qcow2-zoned.c: flushing the image file, with its trace event */
int coroutine_fn GRAPH_RDLOCK qcow2_zoned_flush_file(BlockDriverState *bs);

/* qcow2-zoned.c: writing the table; z->table_lock held */
void qcow2_zoned_update_init(BlockDriverState *bs, Qcow2ZonedUpdate *u);
void qcow2_zoned_update_free(Qcow2ZonedUpdate *u);
bool qcow2_zoned_stage(Qcow2Zoned *z, Qcow2ZonedUpdate *u, uint32_t idx,
                       Qcow2ZonedEntry e);
bool qcow2_zoned_stage_fault(Qcow2Zoned *z, Qcow2ZonedUpdate *u, uint32_t idx,
                             Qcow2ZonedEntry e, uint8_t fault);
int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_write_runs(BlockDriverState *bs, Qcow2ZonedUpdate *u);
int coroutine_fn GRAPH_RDLOCK
qcow2_zoned_write_staged(BlockDriverState *bs, Qcow2ZonedUpdate *u);
void qcow2_zoned_redirty(Qcow2Zoned *z, Qcow2ZonedUpdate *u);
int coroutine_fn GRAPH_RDLOCK qcow2_zoned_settle(BlockDriverState *bs);

#endif
