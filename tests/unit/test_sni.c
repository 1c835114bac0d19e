/* test_sni.c - the ClientHello peek parser (pure) and the server-name maps:
 * fragmentation over records and segments, garbage, truncation, oversize,
 * exact / one-label wildcard lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "sni.h"

/* Build a ClientHello handshake message with 'name' (NULL: no SNI) and a
 * padding extension of 'pad' bytes. Returns its length. */
static size_t mk_hello(uint8_t *out, const char *name, size_t pad)
{
    uint8_t body[40000];
    size_t n = 0, ext_len_at, ext_start;

    body[n++] = 3;
    body[n++] = 3;
    memset(body + n, 0xab, 32);
    n += 32;
    body[n++] = 32;
    memset(body + n, 0xcd, 32);
    n += 32;
    body[n++] = 0;
    body[n++] = 4;
    body[n++] = 0x13;
    body[n++] = 0x01;
    body[n++] = 0x13;
    body[n++] = 0x02;
    body[n++] = 1;
    body[n++] = 0;
    ext_len_at = n;
    n += 2;
    ext_start = n;
    /* supported_groups first, so SNI is not the first extension */
    body[n++] = 0;
    body[n++] = 10;
    body[n++] = 0;
    body[n++] = 4;
    body[n++] = 0;
    body[n++] = 2;
    body[n++] = 0;
    body[n++] = 0x1d;
    if (pad > 0) {
        body[n++] = 0;
        body[n++] = 21;
        body[n++] = (uint8_t)(pad >> 8);
        body[n++] = (uint8_t)pad;
        memset(body + n, 0, pad);
        n += pad;
    }
    if (name != NULL) {
        size_t l = strlen(name);
        body[n++] = 0;
        body[n++] = 0;
        body[n++] = (uint8_t)((l + 5) >> 8);
        body[n++] = (uint8_t)(l + 5);
        body[n++] = (uint8_t)((l + 3) >> 8);
        body[n++] = (uint8_t)(l + 3);
        body[n++] = 0;
        body[n++] = (uint8_t)(l >> 8);
        body[n++] = (uint8_t)l;
        memcpy(body + n, name, l);
        n += l;
    }
    body[ext_len_at] = (uint8_t)((n - ext_start) >> 8);
    body[ext_len_at + 1] = (uint8_t)(n - ext_start);
    out[0] = 1;
    out[1] = (uint8_t)(n >> 16);
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    memcpy(out + 4, body, n);
    return n + 4;
}

/* Wrap a handshake message into records of at most 'rec' bytes. */
static size_t mk_records(uint8_t *out, const uint8_t *hs, size_t len, size_t rec)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i += rec) {
        size_t k = len - i < rec ? len - i : rec;
        out[n++] = 0x16;
        out[n++] = 3;
        out[n++] = 1;
        out[n++] = (uint8_t)(k >> 8);
        out[n++] = (uint8_t)k;
        memcpy(out + n, hs + i, k);
        n += k;
    }
    return n;
}

static uint8_t hs[40000], wire[45000];

static void test_simple(void **state)
{
    char name[SNI_NAME_MAX + 1];
    size_t len = mk_records(wire, hs, mk_hello(hs, "Www.Example.COM", 0), 16384);

    (void)state;
    assert_int_equal(sni_parse(wire, len, name, NULL), SNI_FOUND);
    assert_string_equal(name, "www.example.com");
}

/* Every prefix says NEED_MORE with a growing 'need', and the whole gives the
 * name: the 1-byte-segment case, and many records. */
static void test_every_prefix(void **state)
{
    size_t rec_sizes[] = {16384, 100, 7, 1};
    char name[SNI_NAME_MAX + 1];

    (void)state;
    for (size_t r = 0; r < sizeof(rec_sizes) / sizeof(rec_sizes[0]); r++) {
        size_t len = mk_records(wire, hs, mk_hello(hs, "a.test", 300), rec_sizes[r]);
        size_t need_seen = 0;

        for (size_t i = 0; i < len; i++) {
            size_t need = 0;
            assert_int_equal(sni_parse(wire, i, name, &need), SNI_NEED_MORE);
            assert_true(need > i);
            assert_true(need <= len);
            assert_true(need >= need_seen || need > i);
            need_seen = need;
        }
        assert_int_equal(sni_parse(wire, len, name, NULL), SNI_FOUND);
        assert_string_equal(name, "a.test");
    }
}

static void test_large_multi_record(void **state)
{
    char name[SNI_NAME_MAX + 1];
    size_t hl = mk_hello(hs, "big.example.org", 14000);
    size_t len = mk_records(wire, hs, hl, 4096);

    (void)state;
    assert_true(hl > 14000);
    assert_int_equal(sni_parse(wire, len, name, NULL), SNI_FOUND);
    assert_string_equal(name, "big.example.org");
}

static void test_too_large(void **state)
{
    char name[SNI_NAME_MAX + 1];
    size_t len = mk_records(wire, hs, mk_hello(hs, "a.test", 17000), 16384);

    (void)state;
    /* Known from the handshake header alone, before the body arrives. */
    assert_int_equal(sni_parse(wire, 9, name, NULL), SNI_TOO_LARGE);
    assert_int_equal(sni_parse(wire, len, name, NULL), SNI_TOO_LARGE);
}

static void test_no_sni(void **state)
{
    char name[SNI_NAME_MAX + 1];
    size_t len = mk_records(wire, hs, mk_hello(hs, NULL, 0), 16384);

    (void)state;
    assert_int_equal(sni_parse(wire, len, name, NULL), SNI_NONE);
}

static void test_garbage(void **state)
{
    char name[SNI_NAME_MAX + 1];
    const uint8_t http[] = "GET / HTTP/1.1\r\n";
    const uint8_t ssl2[] = {0x80, 0x2e, 0x01, 0x00, 0x02};
    const uint8_t badver[] = {0x16, 0x09, 0x01, 0x00, 0x10};
    const uint8_t zero_rec[] = {0x16, 0x03, 0x01, 0x00, 0x00};
    const uint8_t huge_rec[] = {0x16, 0x03, 0x01, 0xff, 0xff};
    const uint8_t not_hello[] = {0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00};

    (void)state;
    assert_int_equal(sni_parse(http, sizeof(http) - 1, name, NULL), SNI_NOT_TLS);
    assert_int_equal(sni_parse(ssl2, sizeof(ssl2), name, NULL), SNI_NOT_TLS);
    assert_int_equal(sni_parse(badver, sizeof(badver), name, NULL), SNI_NOT_TLS);
    assert_int_equal(sni_parse(zero_rec, sizeof(zero_rec), name, NULL), SNI_NOT_TLS);
    assert_int_equal(sni_parse(huge_rec, sizeof(huge_rec), name, NULL), SNI_NOT_TLS);
    assert_int_equal(sni_parse(not_hello, sizeof(not_hello), name, NULL), SNI_NOT_TLS);
    assert_int_equal(sni_parse(http, 0, name, NULL), SNI_NEED_MORE);
}

static void test_malformed(void **state)
{
    char name[SNI_NAME_MAX + 1];
    size_t hl = mk_hello(hs, "a.test", 0), len;

    (void)state;
    /* A body shorter than a ClientHello can be. */
    {
        const uint8_t shortb[] = {0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00};
        assert_int_equal(sni_parse(shortb, sizeof(shortb), name, NULL), SNI_MALFORMED);
    }
    /* Extensions length that overruns the message. */
    hs[4 + 2 + 32 + 1 + 32 + 2 + 4 + 2] ^= 0x40;
    len = mk_records(wire, hs, hl, 16384);
    assert_int_equal(sni_parse(wire, len, name, NULL), SNI_MALFORMED);
    /* A second record of another content type in the middle. */
    hl = mk_hello(hs, "a.test", 0);
    len = mk_records(wire, hs, hl, 50);
    wire[55] = 0x17;
    assert_int_equal(sni_parse(wire, len, name, NULL), SNI_MALFORMED);
    /* A server name with a forbidden byte is no name. */
    hl = mk_hello(hs, "bad name", 0);
    len = mk_records(wire, hs, hl, 16384);
    assert_int_equal(sni_parse(wire, len, name, NULL), SNI_NONE);
}

/* Random bytes never crash and never claim more than they got. */
static void test_fuzz(void **state)
{
    char name[SNI_NAME_MAX + 1];
    uint8_t buf[600];
    unsigned seed = 12345;

    (void)state;
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand_r(&seed) % sizeof(buf));
        size_t need = 0;
        enum sni_result r;

        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rand_r(&seed);
        if (round % 2 == 0 && len >= 5) {
            buf[0] = 0x16;
            buf[1] = 3;
        }
        if (round % 4 == 0 && len >= 6)
            buf[5] = 1;
        r = sni_parse(buf, len, name, &need);
        if (r == SNI_NEED_MORE)
            assert_true(need > len);
        if (r == SNI_FOUND)
            assert_true(strlen(name) > 0 && strlen(name) <= SNI_NAME_MAX);
    }
}

static void test_map(void **state)
{
    struct sni_map m = {0};
    struct err e = {0};
    int a, b, w, w2, x;

    (void)state;
    assert_int_equal(sni_map_add(&m, "A.Example.com", &a, &e), 0);
    assert_int_equal(sni_map_add(&m, "b.example.com", &b, &e), 0);
    assert_int_equal(sni_map_add(&m, "*.example.com", &w, &e), 0);
    assert_int_equal(sni_map_add(&m, "*.deep.example.com", &w2, &e), 0);
    assert_int_equal(sni_map_add(&m, "a.example.com", &x, &e), 0); /* later duplicate loses */
    assert_int_equal(sni_map_add(&m, "bad name", &x, &e), -1);
    assert_int_equal(sni_map_add(&m, "*.", &x, NULL), -1);
    sni_map_seal(&m);
    assert_ptr_equal(sni_map_lookup(&m, "a.example.com"), &a);
    assert_ptr_equal(sni_map_lookup(&m, "b.example.com"), &b);
    assert_ptr_equal(sni_map_lookup(&m, "c.example.com"), &w);
    assert_ptr_equal(sni_map_lookup(&m, "x.deep.example.com"), &w2);
    assert_null(sni_map_lookup(&m, "x.y.other.example.com")); /* one label only */
    assert_null(sni_map_lookup(&m, "example.com"));
    assert_null(sni_map_lookup(&m, "other.org"));
    assert_null(sni_map_lookup(&m, ""));
    assert_null(sni_map_lookup(&m, NULL));
    sni_map_free(&m);
}

static void test_map_many(void **state)
{
    struct sni_map m = {0};
    static int vals[5000];
    char name[64];

    (void)state;
    for (int i = 4999; i >= 0; i--) {
        snprintf(name, sizeof(name), "host%d.example.net", i);
        assert_int_equal(sni_map_add(&m, name, &vals[i], NULL), 0);
    }
    sni_map_seal(&m);
    for (int i = 0; i < 5000; i += 7) {
        snprintf(name, sizeof(name), "host%d.example.net", i);
        assert_ptr_equal(sni_map_lookup(&m, name), &vals[i]);
    }
    sni_map_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_every_prefix),
        cmocka_unit_test(test_large_multi_record),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_no_sni),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_map_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
