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

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/crc32c/vectors", test_vectors);
    g_test_add_func("/crc32c/reference", test_reference);
    g_test_add_func("/crc32c/long", test_long);
    return g_test_run();
}
