/*
 * Unit tests of the zoned qcow2 zone state machine
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Every operation from every condition, with and without free resources.
 */

#include "qemu/osdep.h"
#include "block/qcow2-zone-sm.h"

#define NR_ZONES 8
#define CONV 1          /* zone 0 is conventional */

static const BlockZoneState conds[] = {
    BLK_ZS_NOT_WP, BLK_ZS_EMPTY, BLK_ZS_IOPEN, BLK_ZS_EOPEN,
    BLK_ZS_CLOSED, BLK_ZS_FULL,
};

/* Bring zone @z (1 for a sequential zone) into condition @c */
static void put(ZoneSM *sm, uint32_t z, BlockZoneState c)
{
    uint32_t closed;

    switch (c) {
    case BLK_ZS_NOT_WP:
    case BLK_ZS_EMPTY:
        break;
    case BLK_ZS_IOPEN:
        g_assert_cmpint(zone_sm_write(sm, z, &closed), ==, 0);
        zone_sm_set_wp(sm, z, true, false);
        break;
    case BLK_ZS_EOPEN:
        g_assert_cmpint(zone_sm_open(sm, z, &closed), ==, 0);
        break;
    case BLK_ZS_CLOSED:
        put(sm, z, BLK_ZS_IOPEN);
        g_assert_cmpint(zone_sm_close(sm, z), ==, 0);
        break;
    case BLK_ZS_FULL:
        g_assert_cmpint(zone_sm_finish(sm, z), ==, 0);
        break;
    default:
        g_assert_not_reached();
    }
    g_assert_cmpint(zone_sm_cond(sm, z), ==, c);
}

static uint32_t zone_for(BlockZoneState c)
{
    return c == BLK_ZS_NOT_WP ? 0 : 1;
}

/* Counters agree with the conditions of all zones */
static void check_counts(ZoneSM *sm)
{
    uint32_t z, open = 0, active = 0, imp = 0, lru = 0;

    for (z = 0; z < sm->nr_zones; z++) {
        switch (zone_sm_cond(sm, z)) {
        case BLK_ZS_IOPEN:
            imp++;
            /* fall through */
        case BLK_ZS_EOPEN:
            open++;
            /* fall through */
        case BLK_ZS_CLOSED:
            active++;
            break;
        default:
            break;
        }
    }
    for (z = sm->lru_head; z != ZONE_SM_NONE; z = sm->lru[z].next) {
        g_assert_cmpint(zone_sm_cond(sm, z), ==, BLK_ZS_IOPEN);
        lru++;
    }
    g_assert_cmpint(sm->nr_open, ==, open);
    g_assert_cmpint(sm->nr_active, ==, active);
    g_assert_cmpint(sm->nr_imp_open, ==, imp);
    /* Without an open limit there is no LRU */
    g_assert_cmpint(lru, ==, sm->lru ? imp : 0);
}

typedef int (*ZoneOp)(ZoneSM *sm, uint32_t z);

static int op_write(ZoneSM *sm, uint32_t z)
{
    uint32_t closed;
    int ret = zone_sm_write(sm, z, &closed);

    g_assert_cmpint(closed, ==, ZONE_SM_NONE);
    return ret;
}

static int op_open(ZoneSM *sm, uint32_t z)
{
    uint32_t closed;
    int ret = zone_sm_open(sm, z, &closed);

    g_assert_cmpint(closed, ==, ZONE_SM_NONE);
    return ret;
}

/* Expected result (negative errno) or condition of each op from each cond */
typedef struct Expect {
    int ret;
    BlockZoneState after;
} Expect;

static void run_table(const char *name, ZoneOp op, const Expect exp[6])
{
    int i;

    for (i = 0; i < ARRAY_SIZE(conds); i++) {
        ZoneSM sm;
        uint32_t z = zone_for(conds[i]);

        g_assert(zone_sm_init(&sm, NR_ZONES, CONV, 0, 0));
        put(&sm, z, conds[i]);
        g_test_message("%s from %d", name, conds[i]);
        g_assert_cmpint(op(&sm, z), ==, exp[i].ret);
        g_assert_cmpint(zone_sm_cond(&sm, z), ==, exp[i].after);
        check_counts(&sm);
        zone_sm_free(&sm);
    }
}

/* Order of conds[]: NOT_WP, EMPTY, IOPEN, EOPEN, CLOSED, FULL */
static void test_write(void)
{
    static const Expect exp[6] = {
        { -EINVAL, BLK_ZS_NOT_WP }, { 0, BLK_ZS_IOPEN }, { 0, BLK_ZS_IOPEN },
        { 0, BLK_ZS_EOPEN }, { 0, BLK_ZS_IOPEN }, { -EINVAL, BLK_ZS_FULL },
    };
    run_table("write", op_write, exp);
}

static void test_open(void)
{
    static const Expect exp[6] = {
        { -EINVAL, BLK_ZS_NOT_WP }, { 0, BLK_ZS_EOPEN }, { 0, BLK_ZS_EOPEN },
        { 0, BLK_ZS_EOPEN }, { 0, BLK_ZS_EOPEN }, { -EINVAL, BLK_ZS_FULL },
    };
    run_table("open", op_open, exp);
}

static void test_close(void)
{
    /* An explicitly opened zone with nothing written closes to EMPTY */
    static const Expect exp[6] = {
        { -EINVAL, BLK_ZS_NOT_WP }, { 0, BLK_ZS_EMPTY }, { 0, BLK_ZS_CLOSED },
        { 0, BLK_ZS_EMPTY }, { 0, BLK_ZS_CLOSED }, { 0, BLK_ZS_FULL },
    };
    run_table("close", zone_sm_close, exp);
}

static void test_finish(void)
{
    static const Expect exp[6] = {
        { -EINVAL, BLK_ZS_NOT_WP }, { 0, BLK_ZS_FULL }, { 0, BLK_ZS_FULL },
        { 0, BLK_ZS_FULL }, { 0, BLK_ZS_FULL }, { 0, BLK_ZS_FULL },
    };
    run_table("finish", zone_sm_finish, exp);
}

static void test_reset(void)
{
    static const Expect exp[6] = {
        { -EINVAL, BLK_ZS_NOT_WP }, { 0, BLK_ZS_EMPTY }, { 0, BLK_ZS_EMPTY },
        { 0, BLK_ZS_EMPTY }, { 0, BLK_ZS_EMPTY }, { 0, BLK_ZS_EMPTY },
    };
    run_table("reset", zone_sm_reset, exp);
}

/* Writing to capacity makes a zone FULL and frees what it held */
static void test_fill(void)
{
    ZoneSM sm;
    int i;

    for (i = 1; i < ARRAY_SIZE(conds) - 1; i++) {
        g_assert(zone_sm_init(&sm, NR_ZONES, CONV, 2, 3));
        put(&sm, 1, conds[i]);
        zone_sm_set_wp(&sm, 1, true, true);
        g_assert_cmpint(zone_sm_cond(&sm, 1), ==, BLK_ZS_FULL);
        check_counts(&sm);
        g_assert_cmpint(sm.nr_active, ==, 0);
        zone_sm_free(&sm);
    }
}

/* At the open limit the least recently written implicit zone closes */
static void test_open_limit_lru(void)
{
    ZoneSM sm;
    uint32_t closed;

    g_assert(zone_sm_init(&sm, NR_ZONES, CONV, 3, 0));
    put(&sm, 1, BLK_ZS_IOPEN);
    put(&sm, 2, BLK_ZS_IOPEN);
    put(&sm, 3, BLK_ZS_IOPEN);
    /* zone 1 is written again: zone 2 is now the least recent */
    g_assert_cmpint(zone_sm_write(&sm, 1, &closed), ==, 0);
    g_assert_cmpint(closed, ==, ZONE_SM_NONE);
    g_assert_cmpint(zone_sm_write(&sm, 4, &closed), ==, 0);
    g_assert_cmpint(closed, ==, 2);
    g_assert_cmpint(zone_sm_cond(&sm, 2), ==, BLK_ZS_CLOSED);
    check_counts(&sm);
    /* An explicit open also makes room; zone 3 goes next */
    g_assert_cmpint(zone_sm_open(&sm, 5, &closed), ==, 0);
    g_assert_cmpint(closed, ==, 3);
    /* Reopening a closed zone needs no active resource, only room */
    g_assert_cmpint(zone_sm_write(&sm, 2, &closed), ==, 0);
    g_assert_cmpint(closed, ==, 1);
    check_counts(&sm);
    g_assert_cmpint(sm.nr_open, ==, 3);
    zone_sm_free(&sm);
}

/* Explicitly open zones are never closed to make room */
static void test_open_limit_explicit(void)
{
    ZoneSM sm;
    uint32_t closed;

    g_assert(zone_sm_init(&sm, NR_ZONES, CONV, 2, 0));
    put(&sm, 1, BLK_ZS_EOPEN);
    put(&sm, 2, BLK_ZS_EOPEN);
    g_assert_cmpint(zone_sm_write(&sm, 3, &closed), ==, -ETOOMANYREFS);
    g_assert_cmpint(zone_sm_open(&sm, 3, &closed), ==, -ETOOMANYREFS);
    g_assert_cmpint(zone_sm_cond(&sm, 3), ==, BLK_ZS_EMPTY);
    /* Writes to the open zones go on */
    g_assert_cmpint(zone_sm_write(&sm, 1, &closed), ==, 0);
    check_counts(&sm);
    g_assert_cmpint(zone_sm_close(&sm, 2), ==, 0);
    g_assert_cmpint(zone_sm_write(&sm, 3, &closed), ==, 0);
    g_assert_cmpint(closed, ==, ZONE_SM_NONE);
    check_counts(&sm);
    zone_sm_free(&sm);
}

static void test_active_limit(void)
{
    ZoneSM sm;
    uint32_t closed;

    g_assert(zone_sm_init(&sm, NR_ZONES, CONV, 0, 2));
    put(&sm, 1, BLK_ZS_CLOSED);
    put(&sm, 2, BLK_ZS_IOPEN);
    g_assert_cmpint(zone_sm_write(&sm, 3, &closed), ==, -EOVERFLOW);
    g_assert_cmpint(zone_sm_open(&sm, 3, &closed), ==, -EOVERFLOW);
    g_assert_cmpint(zone_sm_cond(&sm, 3), ==, BLK_ZS_EMPTY);
    /* A closed zone reopens: it is active already */
    g_assert_cmpint(zone_sm_write(&sm, 1, &closed), ==, 0);
    check_counts(&sm);
    /* Finishing frees an active resource */
    g_assert_cmpint(zone_sm_finish(&sm, 2), ==, 0);
    g_assert_cmpint(zone_sm_write(&sm, 3, &closed), ==, 0);
    check_counts(&sm);
    /* Resetting too */
    g_assert_cmpint(zone_sm_write(&sm, 4, &closed), ==, -EOVERFLOW);
    g_assert_cmpint(zone_sm_reset(&sm, 1), ==, 0);
    g_assert_cmpint(zone_sm_write(&sm, 4, &closed), ==, 0);
    check_counts(&sm);
    zone_sm_free(&sm);
}

/* An implicitly open zone whose write failed closes to EMPTY */
static void test_close_unwritten_victim(void)
{
    ZoneSM sm;
    uint32_t closed;

    g_assert(zone_sm_init(&sm, NR_ZONES, CONV, 1, 2));
    g_assert_cmpint(zone_sm_write(&sm, 1, &closed), ==, 0);
    zone_sm_set_wp(&sm, 1, false, false);
    g_assert_cmpint(zone_sm_write(&sm, 2, &closed), ==, 0);
    g_assert_cmpint(closed, ==, 1);
    g_assert_cmpint(zone_sm_cond(&sm, 1), ==, BLK_ZS_EMPTY);
    check_counts(&sm);
    g_assert_cmpint(sm.nr_active, ==, 1);
    zone_sm_free(&sm);
}

/* A closed zone whose only write failed goes back to EMPTY */
static void test_closed_rollback(void)
{
    ZoneSM sm;
    uint32_t closed;

    g_assert(zone_sm_init(&sm, NR_ZONES, CONV, 1, 0));
    g_assert_cmpint(zone_sm_write(&sm, 1, &closed), ==, 0);
    zone_sm_set_wp(&sm, 1, true, false);
    /* Its write is in flight when another zone needs the open resource */
    g_assert_cmpint(zone_sm_write(&sm, 2, &closed), ==, 0);
    g_assert_cmpint(closed, ==, 1);
    g_assert_cmpint(zone_sm_cond(&sm, 1), ==, BLK_ZS_CLOSED);
    zone_sm_set_wp(&sm, 1, false, false);
    g_assert_cmpint(zone_sm_cond(&sm, 1), ==, BLK_ZS_EMPTY);
    check_counts(&sm);
    g_assert_cmpint(sm.nr_active, ==, 1);
    zone_sm_free(&sm);
}

/* After a restart, zones with data are CLOSED and count as active */
static void test_load(void)
{
    ZoneSM sm;
    uint32_t closed;

    g_assert(zone_sm_init(&sm, NR_ZONES, CONV, 2, 2));
    zone_sm_load(&sm, 0, false, false);
    zone_sm_load(&sm, 1, true, false);
    zone_sm_load(&sm, 2, false, false);
    zone_sm_load(&sm, 3, false, true);
    zone_sm_load(&sm, 4, false, false);
    zone_sm_load(&sm, 5, false, false);
    g_assert_cmpint(zone_sm_cond(&sm, 0), ==, BLK_ZS_NOT_WP);
    g_assert_cmpint(zone_sm_cond(&sm, 1), ==, BLK_ZS_EMPTY);
    g_assert_cmpint(zone_sm_cond(&sm, 2), ==, BLK_ZS_CLOSED);
    g_assert_cmpint(zone_sm_cond(&sm, 3), ==, BLK_ZS_FULL);
    check_counts(&sm);
    /* Three closed zones on a limit of two: no new zone may activate */
    g_assert_cmpint(sm.nr_active, ==, 3);
    g_assert_cmpint(zone_sm_write(&sm, 1, &closed), ==, -EOVERFLOW);
    g_assert_cmpint(zone_sm_write(&sm, 2, &closed), ==, 0);
    zone_sm_free(&sm);
}

/*
 * A zone fails from every condition: it gives back its resources, refuses
 * every operation, and heals into what its write pointer says
 */
static void test_fail(void)
{
    static const BlockZoneState failed[] = { BLK_ZS_RDONLY, BLK_ZS_OFFLINE };
    uint32_t closed;
    size_t i, j;

    for (i = 0; i < ARRAY_SIZE(conds); i++) {
        for (j = 0; j < ARRAY_SIZE(failed); j++) {
            uint32_t z = zone_for(conds[i]);
            ZoneSM sm;

            g_assert(zone_sm_init(&sm, NR_ZONES, CONV, 1, 1));
            put(&sm, z, conds[i]);
            if (conds[i] == BLK_ZS_NOT_WP) {
                g_assert_cmpint(zone_sm_fail(&sm, z, failed[j]), ==, -EINVAL);
                zone_sm_free(&sm);
                continue;
            }
            g_assert_cmpint(zone_sm_fail(&sm, z, failed[j]), ==, 0);
            g_assert_cmpint(zone_sm_cond(&sm, z), ==, failed[j]);
            g_assert_cmpint(sm.nr_open, ==, 0);
            g_assert_cmpint(sm.nr_active, ==, 0);
            g_assert_cmpint(zone_sm_write(&sm, z, &closed), ==, -EINVAL);
            g_assert_cmpint(zone_sm_open(&sm, z, &closed), ==, -EINVAL);
            g_assert_cmpint(zone_sm_close(&sm, z), ==, -EINVAL);
            g_assert_cmpint(zone_sm_reset(&sm, z), ==, -EINVAL);
            /* Its resources serve another zone */
            g_assert_cmpint(zone_sm_write(&sm, 2, &closed), ==, 0);
            g_assert_cmpint(closed, ==, ZONE_SM_NONE);
            g_assert_cmpint(zone_sm_reset(&sm, 2), ==, 0);
            /* Failing again changes nothing but the condition */
            g_assert_cmpint(zone_sm_fail(&sm, z, failed[1 - j]), ==, 0);
            g_assert_cmpint(zone_sm_cond(&sm, z), ==, failed[1 - j]);
            check_counts(&sm);
            zone_sm_heal(&sm, z, false, false);
            g_assert_cmpint(zone_sm_cond(&sm, z), ==, BLK_ZS_CLOSED);
            g_assert_cmpint(sm.nr_active, ==, 1);
            check_counts(&sm);
            /* A sound zone does not heal */
            zone_sm_heal(&sm, z, true, false);
            g_assert_cmpint(zone_sm_cond(&sm, z), ==, BLK_ZS_CLOSED);
            zone_sm_free(&sm);
        }
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qcow2-zone-sm/write", test_write);
    g_test_add_func("/qcow2-zone-sm/open", test_open);
    g_test_add_func("/qcow2-zone-sm/close", test_close);
    g_test_add_func("/qcow2-zone-sm/finish", test_finish);
    g_test_add_func("/qcow2-zone-sm/reset", test_reset);
    g_test_add_func("/qcow2-zone-sm/fill", test_fill);
    g_test_add_func("/qcow2-zone-sm/open-limit-lru", test_open_limit_lru);
    g_test_add_func("/qcow2-zone-sm/open-limit-explicit",
                    test_open_limit_explicit);
    g_test_add_func("/qcow2-zone-sm/active-limit", test_active_limit);
    g_test_add_func("/qcow2-zone-sm/close-unwritten-victim",
                    test_close_unwritten_victim);
    g_test_add_func("/qcow2-zone-sm/closed-rollback", test_closed_rollback);
    g_test_add_func("/qcow2-zone-sm/load", test_load);
    g_test_add_func("/qcow2-zone-sm/fail", test_fail);
    return g_test_run();
}
