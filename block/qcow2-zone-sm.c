/*
 * Zone state machine of zoned qcow2 images
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Conditions and what moves a sequential zone between them:
 *
 *   EMPTY  --write-->  IMPLICIT OPEN  --write to capacity-->  FULL
 *   EMPTY/CLOSED/IMPLICIT OPEN  --open-->  EXPLICIT OPEN
 *   IMPLICIT/EXPLICIT OPEN  --close-->  CLOSED (EMPTY if nothing written)
 *   any  --finish-->  FULL,  any  --reset-->  EMPTY
 *   any  --fail-->  READ ONLY or OFFLINE  --heal-->  as its write pointer says
 *
 * Resources: open zones (implicit + explicit) count against max_open,
 * open and closed zones against max_active.  When a zone must be opened at
 * the open limit, the least recently written implicitly open zone is closed
 * to make room; explicitly open zones are never closed behind the user's
 * back.  Operations that change nothing (open an open zone, close a closed
 * or empty one, finish a full one, reset an empty one) succeed.
 */

#include "qemu/osdep.h"
#include "qcow2-zone-sm.h"

static uint8_t state(const ZoneSM *sm, uint32_t z)
{
    return sm->cond[z] & ~ZONE_SM_WRITTEN;
}

static void set_state(ZoneSM *sm, uint32_t z, BlockZoneState st)
{
    sm->cond[z] = (sm->cond[z] & ZONE_SM_WRITTEN) | st;
}

static bool written(const ZoneSM *sm, uint32_t z)
{
    return sm->cond[z] & ZONE_SM_WRITTEN;
}

/*
 * LRU of implicitly open zones: O(1) insert, remove and touch.  It picks
 * the zone to close when the open limit is reached, so there is none
 * without a limit.
 */
static void lru_remove(ZoneSM *sm, uint32_t z)
{
    ZoneSMLink *l;

    if (!sm->lru) {
        return;
    }
    l = &sm->lru[z];

    if (l->prev != ZONE_SM_NONE) {
        sm->lru[l->prev].next = l->next;
    } else {
        sm->lru_head = l->next;
    }
    if (l->next != ZONE_SM_NONE) {
        sm->lru[l->next].prev = l->prev;
    } else {
        sm->lru_tail = l->prev;
    }
    l->prev = l->next = ZONE_SM_NONE;
}

static void lru_append(ZoneSM *sm, uint32_t z)
{
    ZoneSMLink *l;

    if (!sm->lru) {
        return;
    }
    l = &sm->lru[z];

    l->prev = sm->lru_tail;
    l->next = ZONE_SM_NONE;
    if (sm->lru_tail != ZONE_SM_NONE) {
        sm->lru[sm->lru_tail].next = z;
    } else {
        sm->lru_head = z;
    }
    sm->lru_tail = z;
}

bool zone_sm_init(ZoneSM *sm, uint32_t nr_zones, uint32_t nr_conv,
                  uint32_t max_open, uint32_t max_active)
{
    uint32_t z;

    *sm = (ZoneSM) {
        .nr_zones = nr_zones,
        .max_open = max_open,
        .max_active = max_active,
        .lru_head = ZONE_SM_NONE,
        .lru_tail = ZONE_SM_NONE,
        .cond = g_try_new(uint8_t, nr_zones),
        .lru = max_open ? g_try_new(ZoneSMLink, nr_zones) : NULL,
    };
    if (!sm->cond || (max_open && !sm->lru)) {
        zone_sm_free(sm);
        return false;
    }
    for (z = 0; z < nr_zones; z++) {
        sm->cond[z] = z < nr_conv ? BLK_ZS_NOT_WP : BLK_ZS_EMPTY;
        if (sm->lru) {
            sm->lru[z] = (ZoneSMLink) { ZONE_SM_NONE, ZONE_SM_NONE };
        }
    }
    return true;
}

void zone_sm_free(ZoneSM *sm)
{
    g_free(sm->cond);
    g_free(sm->lru);
    memset(sm, 0, sizeof(*sm));
}

BlockZoneState zone_sm_cond(const ZoneSM *sm, uint32_t z)
{
    return state(sm, z);
}

void zone_sm_load(ZoneSM *sm, uint32_t z, bool empty, bool full)
{
    if (state(sm, z) == BLK_ZS_NOT_WP) {
        return;
    }
    if (full) {
        sm->cond[z] = ZONE_SM_WRITTEN | BLK_ZS_FULL;
    } else if (empty) {
        sm->cond[z] = BLK_ZS_EMPTY;
    } else {
        /* Counts as active even beyond the limit: it holds data */
        sm->cond[z] = ZONE_SM_WRITTEN | BLK_ZS_CLOSED;
        sm->nr_active++;
    }
}

/* Leave an open state: drop the open resource, and the LRU link */
static void leave_open(ZoneSM *sm, uint32_t z)
{
    if (state(sm, z) == BLK_ZS_IOPEN) {
        lru_remove(sm, z);
        sm->nr_imp_open--;
    }
    sm->nr_open--;
}

/* An open zone becomes CLOSED, or EMPTY if nothing was written to it */
static void close_zone(ZoneSM *sm, uint32_t z)
{
    leave_open(sm, z);
    if (written(sm, z)) {
        set_state(sm, z, BLK_ZS_CLOSED);
    } else {
        set_state(sm, z, BLK_ZS_EMPTY);
        sm->nr_active--;
    }
}

/*
 * Resources to open zone @z, which is EMPTY or CLOSED: an active one if it
 * is EMPTY, an open one in any case, closing the least recently written
 * implicitly open zone if that is what it takes.
 */
static int get_open_resources(ZoneSM *sm, uint32_t z, uint32_t *closed)
{
    bool needs_active = state(sm, z) == BLK_ZS_EMPTY;

    *closed = ZONE_SM_NONE;
    if (needs_active && sm->max_active && sm->nr_active >= sm->max_active) {
        return -EOVERFLOW;
    }
    if (sm->max_open && sm->nr_open >= sm->max_open) {
        uint32_t victim = sm->lru_head;

        if (victim == ZONE_SM_NONE) {
            return -ETOOMANYREFS;
        }
        close_zone(sm, victim);
        *closed = victim;
    }
    sm->nr_open++;
    if (needs_active) {
        sm->nr_active++;
    }
    return 0;
}

/* EMPTY or CLOSED zone @z opens, implicitly or explicitly (@target) */
static int open_zone(ZoneSM *sm, uint32_t z, BlockZoneState target,
                     uint32_t *closed)
{
    int ret = get_open_resources(sm, z, closed);

    if (ret < 0) {
        return ret;
    }
    set_state(sm, z, target);
    if (target == BLK_ZS_IOPEN) {
        sm->nr_imp_open++;
        lru_append(sm, z);
    }
    return 0;
}

int zone_sm_write(ZoneSM *sm, uint32_t z, uint32_t *closed)
{
    *closed = ZONE_SM_NONE;
    switch (state(sm, z)) {
    case BLK_ZS_IOPEN:
        /* Most recently written now */
        lru_remove(sm, z);
        lru_append(sm, z);
        return 0;
    case BLK_ZS_EOPEN:
        return 0;
    case BLK_ZS_EMPTY:
    case BLK_ZS_CLOSED:
        return open_zone(sm, z, BLK_ZS_IOPEN, closed);
    default:
        /* FULL, or a conventional zone */
        return -EINVAL;
    }
}

void zone_sm_set_wp(ZoneSM *sm, uint32_t z, bool written, bool full)
{
    uint8_t st = state(sm, z);

    if (st == BLK_ZS_NOT_WP) {
        return;
    }
    sm->cond[z] = written ? (st | ZONE_SM_WRITTEN) : st;
    if (!written && st == BLK_ZS_CLOSED) {
        /* Back at its start: a closed zone holds nothing any more */
        set_state(sm, z, BLK_ZS_EMPTY);
        sm->nr_active--;
        return;
    }
    if (full && st != BLK_ZS_FULL) {
        if (st == BLK_ZS_IOPEN || st == BLK_ZS_EOPEN) {
            leave_open(sm, z);
        }
        if (st != BLK_ZS_EMPTY) {
            sm->nr_active--;
        }
        set_state(sm, z, BLK_ZS_FULL);
    }
}

int zone_sm_open(ZoneSM *sm, uint32_t z, uint32_t *closed)
{
    *closed = ZONE_SM_NONE;
    switch (state(sm, z)) {
    case BLK_ZS_EOPEN:
        return 0;
    case BLK_ZS_IOPEN:
        lru_remove(sm, z);
        sm->nr_imp_open--;
        set_state(sm, z, BLK_ZS_EOPEN);
        return 0;
    case BLK_ZS_EMPTY:
    case BLK_ZS_CLOSED:
        return open_zone(sm, z, BLK_ZS_EOPEN, closed);
    default:
        return -EINVAL;
    }
}

int zone_sm_close(ZoneSM *sm, uint32_t z)
{
    switch (state(sm, z)) {
    case BLK_ZS_IOPEN:
    case BLK_ZS_EOPEN:
        close_zone(sm, z);
        return 0;
    case BLK_ZS_EMPTY:
    case BLK_ZS_CLOSED:
    case BLK_ZS_FULL:
        return 0;
    default:
        return -EINVAL;
    }
}

int zone_sm_finish(ZoneSM *sm, uint32_t z)
{
    if (state(sm, z) == BLK_ZS_NOT_WP) {
        return -EINVAL;
    }
    zone_sm_set_wp(sm, z, true, true);
    return 0;
}

int zone_sm_reset(ZoneSM *sm, uint32_t z)
{
    switch (state(sm, z)) {
    case BLK_ZS_IOPEN:
    case BLK_ZS_EOPEN:
        leave_open(sm, z);
        /* fall through */
    case BLK_ZS_CLOSED:
        sm->nr_active--;
        /* fall through */
    case BLK_ZS_FULL:
    case BLK_ZS_EMPTY:
        sm->cond[z] = BLK_ZS_EMPTY;
        return 0;
    default:
        return -EINVAL;
    }
}

int zone_sm_fail(ZoneSM *sm, uint32_t z, BlockZoneState cond)
{
    assert(cond == BLK_ZS_RDONLY || cond == BLK_ZS_OFFLINE);
    switch (state(sm, z)) {
    case BLK_ZS_NOT_WP:
        return -EINVAL;
    case BLK_ZS_IOPEN:
    case BLK_ZS_EOPEN:
        leave_open(sm, z);
        /* fall through */
    case BLK_ZS_CLOSED:
        sm->nr_active--;
        break;
    default:
        break;
    }
    sm->cond[z] = cond;
    return 0;
}

void zone_sm_heal(ZoneSM *sm, uint32_t z, bool empty, bool full)
{
    uint8_t st = state(sm, z);

    if (st == BLK_ZS_RDONLY || st == BLK_ZS_OFFLINE) {
        sm->cond[z] = BLK_ZS_EMPTY;
        zone_sm_load(sm, z, empty, full);
    }
}
