/*
 * crc32c() against the test vectors of RFC 3720 and a bitwise reference
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/crc32c.h"

/* One bit at a time, reflected, polynomial 0x1EDC6F41 */
static uint32_t crc32c_ref(uint32_t crc, const uint8_t *data, size_t len)
{
    int i;

    while (len--) {
        crc ^= *data++;
        for (i = 0; i < 8; i++) {
            crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78 : crc >> 1;
        }
    }
    return crc ^ 0xffffffff;
}

static uint32_t std_crc(const void *data, size_t len)
{
    return crc32c(0xffffffff, data, len);
}

/* RFC 3720, B.4, and the usual check value of "123456789" */
static void test_vectors(void)
{
    uint8_t buf[32];
    int i;

    g_assert_cmphex(std_crc("123456789", 9), ==, 0xe3069283);
    memset(buf, 0, sizeof(buf));
    g_assert_cmphex(std_crc(buf, 32), ==, 0x8a9136aa);
    memset(buf, 0xff, sizeof(buf));
    g_assert_cmphex(std_crc(buf, 32), ==, 0x62a8ab43);
    for (i = 0; i < 32; i++) {
        buf[i] = i;
    }
    g_assert_cmphex(std_crc(buf, 32), ==, 0x46dd794e);
    for (i = 0; i < 32; i++) {
        buf[i] = 31 - i;
    }
    g_assert_cmphex(std_crc(buf, 32), ==, 0x113fdb5c);
    g_assert_cmphex(std_crc(buf, 0), ==, 0);
}

/* Every start alignment and length up to 300 bytes, and chaining */
static void test_reference(void)
{
    g_autofree uint8_t *buf = g_malloc(320);
    size_t start, len, cut;
    uint32_t crc;

    for (start = 0; start < 320; start++) {
        buf[start] = start * 37 + 11;
    }
    for (start = 0; start < 16; start++) {
        for (len = 0; len <= 300; len++) {
            g_assert_cmphex(crc32c(0xffffffff, buf + start, len), ==,
                            crc32c_ref(0xffffffff, buf + start, len));
            g_assert_cmphex(crc32c(0x12345678, buf + start, len), ==,
                            crc32c_ref(0x12345678, buf + start, len));
        }
    }
    for (cut = 0; cut <= 300; cut += 7) {
        crc = crc32c(0xffffffff, buf, cut) ^ 0xffffffff;
        g_assert_cmphex(crc32c(crc, buf + cut, 300 - cut), ==,
                        std_crc(buf, 300));
    }
}

/* Long buffers, in pieces of every size around the accelerated block */
static void test_long(void)
{
    size_t len = 64 * 1024 + 77, i, step;
    g_autofree uint8_t *buf = g_malloc(len);
    uint32_t whole, crc;

    for (i = 0; i < len; i++) {
        buf[i] = i * 131 + (i >> 9);
    }
    whole = crc32c_ref(0xffffffff, buf, len);
    g_assert_cmphex(crc32c(0xffffffff, buf, len), ==, whole);
    for (step = 4000; step < 4100; step += 3) {
        crc = 0xffffffff;
        for (i = 0; i < len; i += step) {
            crc = crc32c(crc, buf + i, MIN(step, len - i)) ^ 0xffffffff;
        }
        g_assert_cmphex(crc ^ 0xffffffff, ==, whole);
    }
}

/*
 * crc32c_shift(): the raw register (from 0, not inverted) of A || B is
 * crc32c_shift(raw(A), |B|) ^ raw(B), for lengths of B across the powers
 * of two, zeros included
 */
static uint32_t raw(const uint8_t *data, size_t len)
{
    return crc32c(0, data, len) ^ 0xffffffff;
}

static void test_shift(void)
{
    static const size_t lens[] = {
        0, 1, 2, 3, 7, 8, 64, 511, 512, 4096, 65535, 65536, 1 << 20,
        (1 << 20) + 3,
    };
    g_autofree uint8_t *buf = g_malloc((2 << 20) + 8);
    uint8_t a[] = "a prefix";
    size_t i, j;

    for (i = 0; i < (2 << 20) + 8; i++) {
        buf[i] = i * 131 + (i >> 9);
    }
    for (i = 0; i < ARRAY_SIZE(lens); i++) {
        size_t n = lens[i];
        uint8_t *ab = g_malloc(sizeof(a) + n);
        g_autofree uint8_t *zeros = g_malloc0(n + 1);

        memcpy(ab, a, sizeof(a));
        memcpy(ab + sizeof(a), buf, n);
        g_assert_cmphex(crc32c_shift(raw(a, sizeof(a)), n) ^ raw(buf, n), ==,
                        raw(ab, sizeof(a) + n));
        /* zeros: raw 0, so the shift alone */
        memset(ab + sizeof(a), 0, n);
        g_assert_cmphex(crc32c_shift(raw(a, sizeof(a)), n), ==,
                        raw(ab, sizeof(a) + n));
        g_assert_cmphex(raw(zeros, n), ==, 0);
        g_free(ab);
    }
    /* shifting by m then n is shifting by m + n */
    for (i = 0; i < ARRAY_SIZE(lens); i++) {
        for (j = 0; j < ARRAY_SIZE(lens); j++) {
            g_assert_cmphex(crc32c_shift(crc32c_shift(0x9e3779b9, lens[i]),
                                         lens[j]), ==,
                            crc32c_shift(0x9e3779b9, lens[i] + lens[j]));
        }
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/crc32c/vectors", test_vectors);
    g_test_add_func("/crc32c/reference", test_reference);
    g_test_add_func("/crc32c/long", test_long);
    g_test_add_func("/crc32c/shift", test_shift);
    return g_test_run();
}
