/* test_wire.c - control-channel framing: encoder and incremental decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "wire.h"

/* Build a frame by hand: length prefix 'n' followed by 'payload'. */
static size_t mkframe(uint8_t *buf, uint32_t n, const char *payload, size_t plen)
{
    buf[0] = (uint8_t)(n >> 24);
    buf[1] = (uint8_t)(n >> 16);
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)n;
    memcpy(buf + 4, payload, plen);
    return 4 + plen;
}

static void test_roundtrip(void **state)
{
    struct wire_dec d;
    struct err e = {0};
    cJSON *obj, *got = NULL;
    char *frame;
    size_t len;

    (void)state;
    obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "type", "hello");
    cJSON_AddNumberToObject(obj, "applied_version", 7);
    assert_int_equal(wire_encode(obj, 0, &frame, &len, &e), 0);
    assert_int_equal(wire_get_len((uint8_t *)frame), len - 4);

    wire_dec_init(&d, 0);
    assert_int_equal(wire_dec_push(&d, frame, len, &e), 0);
    assert_int_equal(wire_dec_next(&d, &got, &e), 1);
    assert_non_null(got);
    assert_string_equal(cJSON_GetObjectItem(got, "type")->valuestring, "hello");
    assert_int_equal(cJSON_GetObjectItem(got, "applied_version")->valueint, 7);
    cJSON_Delete(got);
    assert_int_equal(wire_dec_next(&d, &got, &e), 0);
    assert_null(got);
    wire_dec_free(&d);
    wire_frame_free(frame, len);
    cJSON_Delete(obj);
}

/* Every split of two back-to-back frames, byte by byte, yields both. */
static void test_split_reads(void **state)
{
    const char *p1 = "{\"type\":\"ack\",\"version\":1}";
    const char *p2 = "{\"type\":\"nack\",\"version\":2,\"error\":\"x\"}";
    uint8_t buf[256];
    size_t n1, total;

    (void)state;
    n1 = mkframe(buf, (uint32_t)strlen(p1), p1, strlen(p1));
    total = n1 + mkframe(buf + n1, (uint32_t)strlen(p2), p2, strlen(p2));
    for (size_t cut = 0; cut <= total; cut++) {
        struct wire_dec d;
        struct err e = {0};
        cJSON *got;
        int frames = 0;

        wire_dec_init(&d, 1024);
        /* first chunk, then the rest one byte at a time */
        assert_int_equal(wire_dec_push(&d, buf, cut, &e), 0);
        while (wire_dec_next(&d, &got, &e) == 1) {
            frames++;
            cJSON_Delete(got);
        }
        for (size_t i = cut; i < total; i++) {
            assert_int_equal(wire_dec_push(&d, buf + i, 1, &e), 0);
            while (wire_dec_next(&d, &got, &e) == 1) {
                frames++;
                cJSON_Delete(got);
            }
        }
        assert_false(err_isset(&e));
        assert_int_equal(frames, 2);
        wire_dec_free(&d);
    }
}

static void test_oversized(void **state)
{
    struct wire_dec d;
    struct err e = {0};
    uint8_t hdr[4] = {0x00, 0x10, 0x00, 0x01}; /* 1 MiB + 1 */

    (void)state;
    wire_dec_init(&d, 1024 * 1024);
    /* Rejected as soon as the header is complete, before the body arrives. */
    assert_int_equal(wire_dec_push(&d, hdr, 3, &e), 0);
    assert_int_equal(wire_dec_push(&d, hdr + 3, 1, &e), -1);
    assert_int_equal(e.kind, ERR_TOO_LARGE);
    assert_string_equal(e.code, "frame_too_large");
    /* and the stream stays failed */
    err_clear(&e);
    assert_int_equal(wire_dec_push(&d, "x", 1, &e), -1);
    wire_dec_free(&d);
}

static void test_encode_oversized(void **state)
{
    struct err e = {0};
    cJSON *obj = cJSON_CreateObject();
    char *frame;
    size_t len;

    (void)state;
    cJSON_AddStringToObject(obj, "type", "snapshot");
    cJSON_AddStringToObject(obj, "pad", "0123456789012345678901234567890123456789");
    assert_int_equal(wire_encode(obj, 16, &frame, &len, &e), -1);
    assert_int_equal(e.kind, ERR_TOO_LARGE);
    assert_null(frame);
    cJSON_Delete(obj);
}

static void test_zero_length(void **state)
{
    struct wire_dec d;
    struct err e = {0};
    uint8_t hdr[4] = {0, 0, 0, 0};
    cJSON *got;

    (void)state;
    wire_dec_init(&d, 0);
    assert_int_equal(wire_dec_push(&d, hdr, 4, &e), -1);
    assert_string_equal(e.code, "frame_empty");
    err_clear(&e);
    assert_int_equal(wire_dec_next(&d, &got, &e), -1);
    wire_dec_free(&d);
}

/* Feed a payload as one frame and expect the given error code. */
static void expect_bad(const char *payload, size_t plen, const char *code)
{
    struct wire_dec d;
    struct err e = {0};
    uint8_t buf[512];
    cJSON *got = (cJSON *)1;
    size_t n;

    n = mkframe(buf, (uint32_t)plen, payload, plen);
    wire_dec_init(&d, 0);
    assert_int_equal(wire_dec_push(&d, buf, n, &e), 0);
    assert_int_equal(wire_dec_next(&d, &got, &e), -1);
    assert_null(got);
    assert_string_equal(e.code, code);
    wire_dec_free(&d);
}

static void test_not_json(void **state)
{
    (void)state;
    expect_bad("hello", 5, "frame_not_json");
    expect_bad("{\"type\":", 8, "frame_not_json");
    expect_bad("\x00\x01\x02\xff", 4, "frame_not_json");
    expect_bad("[1,2]", 5, "frame_not_object");
    expect_bad("\"type\"", 6, "frame_not_object");
    expect_bad("{\"version\":1}", 13, "frame_no_type");
    expect_bad("{\"type\":3}", 10, "frame_no_type");
    expect_bad("{\"type\":\"ack\"} x", 16, "frame_trailing_data");
}

/* A truncated stream yields no frame and no error, and reads nothing past
 * what was pushed (the sanitizer build checks the reads). */
static void test_truncated(void **state)
{
    const char *p = "{\"type\":\"ack\",\"version\":1}";
    uint8_t buf[64];
    size_t n;

    (void)state;
    n = mkframe(buf, (uint32_t)strlen(p), p, strlen(p));
    for (size_t cut = 0; cut < n; cut++) {
        struct wire_dec d;
        struct err e = {0};
        cJSON *got;
        uint8_t *exact = malloc(cut ? cut : 1); /* exactly sized so ASan sees overreads */

        memcpy(exact, buf, cut);
        wire_dec_init(&d, 0);
        assert_int_equal(wire_dec_push(&d, exact, cut, &e), 0);
        assert_int_equal(wire_dec_next(&d, &got, &e), 0);
        assert_false(err_isset(&e));
        wire_dec_free(&d);
        free(exact);
    }
}

/* Random bytes never crash the decoder; each run ends in frames or errors. */
static void test_garbage(void **state)
{
    uint8_t buf[2048];

    (void)state;
    srand(12345);
    for (int round = 0; round < 2000; round++) {
        struct wire_dec d;
        struct err e = {0};
        size_t n = (size_t)(rand() % (int)sizeof(buf));
        cJSON *got;

        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)rand();
        if (n >= 4 && (round & 1)) { /* plausible small lengths half the time */
            buf[0] = buf[1] = 0;
            buf[2] = (uint8_t)((n - 4) >> 8);
        }
        wire_dec_init(&d, 4096);
        if (wire_dec_push(&d, buf, n, &e) == 0) {
            while (wire_dec_next(&d, &got, &e) == 1)
                cJSON_Delete(got);
        }
        wire_dec_free(&d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),   cmocka_unit_test(test_split_reads),
        cmocka_unit_test(test_oversized),   cmocka_unit_test(test_encode_oversized),
        cmocka_unit_test(test_zero_length), cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_truncated),   cmocka_unit_test(test_garbage),
    };
    return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
