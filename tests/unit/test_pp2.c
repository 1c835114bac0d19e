/* test_pp2.c - PROXY v2 headers against bytes written out by hand from the
 * specification: TCP4, TCP6, IPv4-mapped, mixed families, LOCAL, short
 * buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "pp2.h"

static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

static struct sockaddr_in v4(const char *a, uint16_t port)
{
    struct sockaddr_in s;

    memset(&s, 0, sizeof(s));
    s.sin_family = AF_INET;
    s.sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, a, &s.sin_addr), 1);
    return s;
}

static struct sockaddr_in6 v6(const char *a, uint16_t port)
{
    struct sockaddr_in6 s;

    memset(&s, 0, sizeof(s));
    s.sin6_family = AF_INET6;
    s.sin6_port = htons(port);
    assert_int_equal(inet_pton(AF_INET6, a, &s.sin6_addr), 1);
    return s;
}

static void test_tcp4(void **state)
{
    struct sockaddr_in s = v4("192.0.2.1", 51000), d = v4("127.0.0.1", 443);
    static const uint8_t want[] = {0x21, 0x11, 0x00, 0x0c, 192,  0,    2,    1,
                                   127,  0,    0,    1,    0xc7, 0x38, 0x01, 0xbb};
    uint8_t buf[PP2_MAX_LEN];
    size_t n;

    (void)state;
    n = pp2_build(buf, sizeof(buf), (struct sockaddr *)&s, (struct sockaddr *)&d);
    assert_int_equal(n, 28);
    assert_memory_equal(buf, sig, 12);
    assert_memory_equal(buf + 12, want, sizeof(want));
}

static void test_tcp6(void **state)
{
    struct sockaddr_in6 s = v6("2001:db8::1", 1), d = v6("::1", 65535);
    uint8_t buf[PP2_MAX_LEN];
    size_t n;

    (void)state;
    n = pp2_build(buf, sizeof(buf), (struct sockaddr *)&s, (struct sockaddr *)&d);
    assert_int_equal(n, 52);
    assert_memory_equal(buf, sig, 12);
    assert_int_equal(buf[12], 0x21);
    assert_int_equal(buf[13], 0x21);
    assert_int_equal(buf[14], 0);
    assert_int_equal(buf[15], 36);
    assert_memory_equal(buf + 16, &s.sin6_addr, 16);
    assert_memory_equal(buf + 32, &d.sin6_addr, 16);
    assert_int_equal(buf[48], 0);
    assert_int_equal(buf[49], 1);
    assert_int_equal(buf[50], 0xff);
    assert_int_equal(buf[51], 0xff);
}

static void test_mapped(void **state)
{
    struct sockaddr_in6 s = v6("::ffff:10.1.2.3", 4000), d = v6("::ffff:127.0.0.2", 8443);
    static const uint8_t want[] = {0x21, 0x11, 0, 12, 10,   1,    2,    3,
                                   127,  0,    0, 2,  0x0f, 0xa0, 0x20, 0xfb};
    uint8_t buf[PP2_MAX_LEN];

    (void)state;
    assert_int_equal(pp2_build(buf, sizeof(buf), (struct sockaddr *)&s, (struct sockaddr *)&d), 28);
    assert_memory_equal(buf + 12, want, sizeof(want));
}

static void test_mixed_and_local(void **state)
{
    struct sockaddr_in s = v4("192.0.2.1", 1);
    struct sockaddr_in6 d = v6("::1", 2);
    uint8_t buf[PP2_MAX_LEN];

    (void)state;
    assert_int_equal(pp2_build(buf, sizeof(buf), (struct sockaddr *)&s, (struct sockaddr *)&d), 16);
    assert_memory_equal(buf, sig, 12);
    assert_int_equal(buf[12], 0x21);
    assert_int_equal(buf[13], 0x00);
    assert_int_equal(buf[14] | buf[15], 0);
    assert_int_equal(pp2_build_local(buf, sizeof(buf)), 16);
    assert_memory_equal(buf, sig, 12);
    assert_int_equal(buf[12], 0x20);
    assert_int_equal(buf[13], 0x00);
    assert_int_equal(buf[14] | buf[15], 0);
}

static void test_short_buffer(void **state)
{
    struct sockaddr_in s = v4("192.0.2.1", 1), d = v4("127.0.0.1", 2);
    uint8_t buf[PP2_MAX_LEN];

    (void)state;
    assert_int_equal(pp2_build(buf, PP2_MAX_LEN - 1, (struct sockaddr *)&s, (struct sockaddr *)&d),
                     0);
    assert_int_equal(pp2_build_local(buf, 15), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp4),         cmocka_unit_test(test_tcp6),
        cmocka_unit_test(test_mapped),       cmocka_unit_test(test_mixed_and_local),
        cmocka_unit_test(test_short_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
