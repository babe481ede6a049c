/*
 * Zone state machine of zoned qcow2 images
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Decides zone condition transitions and open/active resource accounting
 * for a host-managed zoned device, as Linux and the ZBC / NVMe ZNS models
 * expect.  It does no I/O and knows nothing of qcow2: the caller reports
 * where write pointers are, and carries out what the transitions imply.
 */

#ifndef BLOCK_QCOW2_ZONE_SM_H
#define BLOCK_QCOW2_ZONE_SM_H

#include "block/block-common.h"

#define ZONE_SM_NONE UINT32_MAX

typedef struct ZoneSMLink {
    uint32_t prev, next;
} ZoneSMLink;

typedef struct ZoneSM {
    uint32_t nr_zones;
    uint32_t max_open;      /* 0: no limit */
    uint32_t max_active;    /* 0: no limit */
    uint32_t nr_open;       /* implicitly and explicitly open zones */
    uint32_t nr_active;     /* open and closed zones */
    uint32_t nr_imp_open;
    /* Implicitly open zones, least recently written first */
    uint32_t lru_head, lru_tail;
    /*
     * Per zone: a BlockZoneState, ZONE_SM_WRITTEN if the write pointer is
     * past the zone start
     */
    uint8_t *cond;
    ZoneSMLink *lru;        /* only with an open limit */
} ZoneSM;

#define ZONE_SM_WRITTEN 0x80

/*
 * Every zone starts EMPTY, the first @nr_conv ones are conventional.
 * Returns false if the memory for @nr_zones zones cannot be allocated.
 */
bool zone_sm_init(ZoneSM *sm, uint32_t nr_zones, uint32_t nr_conv,
                  uint32_t max_open, uint32_t max_active);
void zone_sm_free(ZoneSM *sm);

/*
 * Zone @z as read from disk: its write pointer is at the start (@empty),
 * at the capacity (@full), or between (then it is CLOSED and active)
 */
void zone_sm_load(ZoneSM *sm, uint32_t z, bool empty, bool full);

BlockZoneState zone_sm_cond(const ZoneSM *sm, uint32_t z);

/*
 * Before a write to sequential zone @z: the zone must be writable, and an
 * EMPTY or CLOSED zone is opened implicitly.  That may close the least
 * recently written implicitly open zone, returned in @closed (ZONE_SM_NONE
 * if none).  Returns 0, -EINVAL (zone FULL or conventional), -ETOOMANYREFS
 * (open limit, nothing to close) or -EOVERFLOW (active limit).
 */
int zone_sm_write(ZoneSM *sm, uint32_t z, uint32_t *closed);

/*
 * The write pointer of zone @z moved: past its start or not (@written), to
 * its capacity (@full: the zone becomes FULL and frees its resources).
 * A closed zone whose write pointer went back to its start is EMPTY.
 */
void zone_sm_set_wp(ZoneSM *sm, uint32_t z, bool written, bool full);

/*
 * Zone management.  Each returns 0 or a negative errno as zone_sm_write;
 * open may close an implicitly open zone into @closed.
 */
int zone_sm_open(ZoneSM *sm, uint32_t z, uint32_t *closed);
int zone_sm_close(ZoneSM *sm, uint32_t z);
int zone_sm_finish(ZoneSM *sm, uint32_t z);
int zone_sm_reset(ZoneSM *sm, uint32_t z);

/*
 * Zone @z fails: it becomes READ ONLY or OFFLINE (@cond) whatever it was,
 * and gives back its open and active resources.  -EINVAL for a
 * conventional zone.
 */
int zone_sm_fail(ZoneSM *sm, uint32_t z, BlockZoneState cond);

/* Failed zone @z is sound again, as zone_sm_load() finds it */
void zone_sm_heal(ZoneSM *sm, uint32_t z, bool empty, bool full);

#endif
