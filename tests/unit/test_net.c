/* test_net.c - address parsing and listening sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "net.h"

static void test_parse_ok(void **state)
{
    struct sockaddr_storage ss;
    char buf[NET_ADDRSTRLEN];
    struct err e = {0};
    socklen_t len;

    (void)state;
    assert_int_equal(net_parse_hostport("127.0.0.1:9000", &ss, &len, &e), 0);
    assert_string_equal(net_addr_str((struct sockaddr *)&ss, buf, sizeof(buf)), "127.0.0.1:9000");
    assert_int_equal(net_parse_hostport("[::1]:0", &ss, &len, &e), 0);
    assert_string_equal(net_addr_str((struct sockaddr *)&ss, buf, sizeof(buf)), "[::1]:0");
    assert_int_equal(net_parse_hostport("localhost:65535", &ss, &len, &e), 0);
    assert_string_equal(net_addr_str((struct sockaddr *)&ss, buf, sizeof(buf)), "127.0.0.1:65535");
}

static void test_parse_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "127.0.0.1",
        "127.0.0.1:",
        ":80",
        "127.0.0.1:65536",
        "1.2.3.4:-1",
        "1.2.3.4:8x",
        "[::1:80",
        "example.com:80",
        "999.1.1.1:80",
        "1.2.3.4:99999999999999999999",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sockaddr_storage ss;
        struct err e = {0};
        socklen_t len;

        assert_int_equal(net_parse_hostport(bad[i], &ss, &len, &e), -1);
        assert_int_equal(e.kind, ERR_INVALID);
    }
}

static void test_port_in_use(void **state)
{
    struct sockaddr_storage ss;
    struct err e = {0};
    socklen_t len = sizeof(ss);
    int a, b;

    (void)state;
    assert_int_equal(net_parse_hostport("127.0.0.1:0", &ss, &len, &e), 0);
    assert_int_equal(net_listen_tcp((struct sockaddr *)&ss, len, 0, 16, &a, &e), 0);
    len = sizeof(ss);
    assert_int_equal(getsockname(a, (struct sockaddr *)&ss, &len), 0);
    assert_int_equal(net_listen_tcp((struct sockaddr *)&ss, len, 0, 16, &b, &e), -1);
    assert_int_equal(e.kind, ERR_CONFLICT);
    assert_string_equal(e.code, "port_in_use");
    assert_int_equal(b, -1);
    close(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_port_in_use),
    };
    return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
