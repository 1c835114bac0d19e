/* test_hc.c - the pure parts of the health checker: the HTTP status-line
 * reader (split reads, garbage, oversize lines, versions, status classes)
 * and the threshold state machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hc.h"

static int feed_all(const char *s)
{
    struct hc_http h = {.len = 0};

    return hc_http_feed(&h, s, strlen(s));
}

static void test_http_whole(void **state)
{
    (void)state;
    assert_int_equal(feed_all("HTTP/1.1 200 OK\r\n"), 200);
    assert_int_equal(feed_all("HTTP/1.0 204 No Content\r\nX: y\r\n\r\n"), 204);
    assert_int_equal(feed_all("HTTP/1.0 301\r\n"), 301);
    assert_int_equal(feed_all("HTTP/1.1 503 Service Unavailable\n"), 503);
    assert_int_equal(feed_all("HTTP/1.1 404 Not Found\r\n"), 404);
    assert_int_equal(feed_all("HTTP/1.1 100 Continue\r\n"), 100);
    assert_int_equal(feed_all("HTTP/2.0 200 OK\r\n"), 200);
}

static void test_http_classes(void **state)
{
    (void)state;
    assert_false(hc_http_ok(100));
    assert_false(hc_http_ok(199));
    assert_true(hc_http_ok(200));
    assert_true(hc_http_ok(299));
    assert_true(hc_http_ok(302));
    assert_true(hc_http_ok(399));
    assert_false(hc_http_ok(400));
    assert_false(hc_http_ok(404));
    assert_false(hc_http_ok(500));
    assert_false(hc_http_ok(503));
}

static void test_http_split(void **state)
{
    static const char resp[] = "HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n";
    struct hc_http h;

    (void)state;
    /* One byte at a time: undecided until the line ends. */
    memset(&h, 0, sizeof(h));
    for (size_t i = 0; i < strlen("HTTP/1.1 302 Found"); i++)
        assert_int_equal(hc_http_feed(&h, resp + i, 1), HC_HTTP_AGAIN);
    assert_int_equal(hc_http_feed(&h, "\r", 1), HC_HTTP_AGAIN);
    assert_int_equal(hc_http_feed(&h, "\n", 1), 302);
    /* Every split point of the whole response. */
    for (size_t cut = 1; cut < sizeof(resp) - 1; cut++) {
        int r;

        memset(&h, 0, sizeof(h));
        r = hc_http_feed(&h, resp, cut);
        if (r == HC_HTTP_AGAIN)
            r = hc_http_feed(&h, resp + cut, sizeof(resp) - 1 - cut);
        assert_int_equal(r, 302);
    }
}

static void test_http_garbage(void **state)
{
    struct hc_http h;

    (void)state;
    assert_int_equal(feed_all("garbage"), HC_HTTP_MALFORMED);
    assert_int_equal(feed_all("\x16\x03\x01\x02\x00"), HC_HTTP_MALFORMED); /* a TLS record */
    assert_int_equal(feed_all("HTTP/1.1 2OO OK\r\n"), HC_HTTP_MALFORMED);
    assert_int_equal(feed_all("HTTP/1.1 20\r\n"), HC_HTTP_MALFORMED);
    assert_int_equal(feed_all("HTTP/1.1 2000 OK\r\n"), HC_HTTP_MALFORMED);
    assert_int_equal(feed_all("HTTP/1.1 099 X\r\n"), HC_HTTP_MALFORMED);
    assert_int_equal(feed_all("HTTP/1.1 600 X\r\n"), HC_HTTP_MALFORMED);
    assert_int_equal(feed_all("HTTP/x.1 200 OK\r\n"), HC_HTTP_MALFORMED);
    assert_int_equal(feed_all("HTTP/1.1200 OK\r\n"), HC_HTTP_MALFORMED);
    assert_int_equal(feed_all("HTTP/1.1 200 O\001K\r\n"), HC_HTTP_MALFORMED);
    assert_int_equal(feed_all("\r\n"), HC_HTTP_MALFORMED);
    /* Garbage is seen before a line end arrives. */
    memset(&h, 0, sizeof(h));
    assert_int_equal(hc_http_feed(&h, "HTT", 3), HC_HTTP_AGAIN);
    assert_int_equal(hc_http_feed(&h, "X", 1), HC_HTTP_MALFORMED);
}

static void test_http_oversize(void **state)
{
    size_t n = 3 * HC_HTTP_MAX;
    char *big = malloc(n);
    struct hc_http h;
    int r = HC_HTTP_AGAIN;

    (void)state;
    assert_non_null(big);
    memcpy(big, "HTTP/1.1 200 ", 13);
    memset(big + 13, 'A', n - 13);
    /* Whole: longer than the buffer, no line end in it. */
    memset(&h, 0, sizeof(h));
    assert_int_equal(hc_http_feed(&h, big, n), HC_HTTP_MALFORMED);
    /* In chunks: malformed once the buffer is full, never a status. */
    memset(&h, 0, sizeof(h));
    for (size_t off = 0; off < n && r == HC_HTTP_AGAIN; off += 1000)
        r = hc_http_feed(&h, big + off, n - off < 1000 ? n - off : 1000);
    assert_int_equal(r, HC_HTTP_MALFORMED);
    assert_true(h.len <= HC_HTTP_MAX);
    /* A line that just fits is fine. */
    memset(&h, 0, sizeof(h));
    big[HC_HTTP_MAX - 2] = '\r';
    big[HC_HTTP_MAX - 1] = '\n';
    assert_int_equal(hc_http_feed(&h, big, HC_HTTP_MAX), 200);
    free(big);
}

static void test_sm_initial(void **state)
{
    struct hc_sm sm = {.state = TG_H_INITIAL};

    (void)state;
    /* The first result decides at once, whatever the thresholds. */
    assert_int_equal(hc_sm_feed(&sm, 1, 3, 3), 1);
    assert_int_equal(sm.state, TG_H_HEALTHY);
    memset(&sm, 0, sizeof(sm));
    assert_int_equal(hc_sm_feed(&sm, 0, 3, 3), 1);
    assert_int_equal(sm.state, TG_H_UNHEALTHY);
}

static void test_sm_thresholds(void **state)
{
    struct hc_sm sm = {.state = TG_H_INITIAL};

    (void)state;
    hc_sm_feed(&sm, 1, 2, 3);
    assert_int_equal(sm.state, TG_H_HEALTHY);
    /* Two failures, a success: the run starts over. */
    assert_int_equal(hc_sm_feed(&sm, 0, 2, 3), 0);
    assert_int_equal(hc_sm_feed(&sm, 0, 2, 3), 0);
    assert_int_equal(hc_sm_feed(&sm, 1, 2, 3), 0);
    assert_int_equal(hc_sm_feed(&sm, 0, 2, 3), 0);
    assert_int_equal(hc_sm_feed(&sm, 0, 2, 3), 0);
    assert_int_equal(sm.state, TG_H_HEALTHY);
    assert_int_equal(hc_sm_feed(&sm, 0, 2, 3), 1);
    assert_int_equal(sm.state, TG_H_UNHEALTHY);
    assert_int_equal(hc_sm_feed(&sm, 0, 2, 3), 0);
    /* Back after healthy_threshold (2) successes in a row. */
    assert_int_equal(hc_sm_feed(&sm, 1, 2, 3), 0);
    assert_int_equal(hc_sm_feed(&sm, 0, 2, 3), 0);
    assert_int_equal(hc_sm_feed(&sm, 1, 2, 3), 0);
    assert_int_equal(hc_sm_feed(&sm, 1, 2, 3), 1);
    assert_int_equal(sm.state, TG_H_HEALTHY);
}

static void test_sm_threshold_one(void **state)
{
    struct hc_sm sm = {.state = TG_H_HEALTHY};

    (void)state;
    assert_int_equal(hc_sm_feed(&sm, 0, 1, 1), 1);
    assert_int_equal(sm.state, TG_H_UNHEALTHY);
    assert_int_equal(hc_sm_feed(&sm, 1, 1, 1), 1);
    assert_int_equal(sm.state, TG_H_HEALTHY);
    assert_int_equal(hc_sm_feed(&sm, 1, 1, 1), 0);
    assert_string_equal(hc_state_name(TG_H_INITIAL), "initial");
    assert_string_equal(hc_state_name(TG_H_HEALTHY), "healthy");
    assert_string_equal(hc_state_name(TG_H_UNHEALTHY), "unhealthy");
}

static void test_host_header(void **state)
{
    char b[300];

    (void)state;
    hc_host_header(b, sizeof(b), "::1", 8080);
    assert_string_equal(b, "[::1]:8080");
    hc_host_header(b, sizeof(b), "::1", 80);
    assert_string_equal(b, "[::1]");
    hc_host_header(b, sizeof(b), "10.0.0.1", 8443);
    assert_string_equal(b, "10.0.0.1:8443");
    hc_host_header(b, sizeof(b), "example.com", 80);
    assert_string_equal(b, "example.com");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_whole),    cmocka_unit_test(test_http_classes),
        cmocka_unit_test(test_http_split),    cmocka_unit_test(test_http_garbage),
        cmocka_unit_test(test_http_oversize), cmocka_unit_test(test_sm_initial),
        cmocka_unit_test(test_sm_thresholds), cmocka_unit_test(test_sm_threshold_one),
        cmocka_unit_test(test_host_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
