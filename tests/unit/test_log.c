/* test_log.c - levels, line format, and that peer bytes cannot forge lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

/* Run 'fn' with stderr redirected into a pipe and return what it wrote. */
static size_t capture(void (*fn)(void), char *out, size_t cap)
{
    int fds[2], saved;
    ssize_t n;

    assert_int_equal(pipe(fds), 0);
    saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    n = read(fds[0], out, cap - 1);
    close(fds[0]);
    out[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

static void emit_levels(void)
{
    log_set_level(LOG_LVL_WARN);
    log_debug("t", "hidden debug");
    log_info("t", "hidden info");
    log_warn("t", "shown warn %d", 1);
    log_error("t", "shown error");
    log_set_level(LOG_LVL_INFO);
}

static void test_levels(void **state)
{
    char buf[4096];

    (void)state;
    capture(emit_levels, buf, sizeof(buf));
    assert_null(strstr(buf, "hidden"));
    assert_non_null(strstr(buf, "warn  t: shown warn 1\n"));
    assert_non_null(strstr(buf, "error t: shown error\n"));
}

static void emit_forged(void)
{
    log_info("t", "peer sent %s", "abc\ninfo  t: forged\r");
}

static void test_one_line(void **state)
{
    char buf[4096];
    size_t n;
    int lines = 0;

    (void)state;
    n = capture(emit_forged, buf, sizeof(buf));
    for (size_t i = 0; i < n; i++)
        lines += buf[i] == '\n';
    assert_int_equal(lines, 1);
    assert_int_equal(buf[n - 1], '\n');
}

static void emit_long(void)
{
    char big[5000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    log_info("t", "%s", big);
}

static void test_truncates(void **state)
{
    char buf[8192];
    size_t n;

    (void)state;
    n = capture(emit_long, buf, sizeof(buf));
    assert_true(n <= 1024);
    assert_int_equal(buf[n - 1], '\n');
}

static void test_parse(void **state)
{
    enum log_level l;

    (void)state;
    assert_int_equal(log_parse_level("debug", &l), 0);
    assert_int_equal(l, LOG_LVL_DEBUG);
    assert_int_equal(log_parse_level("error", &l), 0);
    assert_int_equal(l, LOG_LVL_ERROR);
    assert_int_equal(log_parse_level("loud", &l), -1);
    assert_int_equal(log_parse_level("", &l), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_one_line),
        cmocka_unit_test(test_truncates),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
