/* test_api_json.c - strict JSON parsing and the validation of target
 * groups, targets, listeners and certificate bodies into canonical
 * documents, with the error kind, code and field of each refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api_json.h"
#include "err.h"

typedef int (*parse_fn)(const cJSON *, cJSON **, struct api_vctx *, struct err *);

/* Parse 'txt' with 'fn'; expect failure with kind/code/field, or success
 * (kind ERR_NONE) returning the document. */
static cJSON *run(parse_fn fn, const char *txt, enum err_kind kind, const char *code,
                  const char *field)
{
    struct api_vctx vc = {{0}};
    struct err err = {0};
    cJSON *in = NULL, *out = NULL;
    int rc;

    assert_int_equal(api_json_parse(txt, strlen(txt), &in, &err), 0);
    rc = fn(in, &out, &vc, &err);
    cJSON_Delete(in);
    if (kind == ERR_NONE) {
        if (rc != 0)
            fail_msg("unexpected error %s (%s) on %s", err.code, err.message, txt);
        return out;
    }
    if (rc == 0)
        fail_msg("accepted: %s", txt);
    assert_int_equal(err.kind, kind);
    assert_string_equal(err.code, code);
    if (field)
        assert_string_equal(err.field, field);
    else
        assert_null(err.field);
    assert_null(out);
    return NULL;
}

static void parse_fails(const char *txt, const char *code)
{
    struct err err = {0};
    cJSON *j = NULL;

    assert_int_equal(api_json_parse(txt, strlen(txt), &j, &err), -1);
    assert_null(j);
    assert_int_equal(err.kind, ERR_INVALID);
    assert_string_equal(err.code, code);
}

static void test_parse_strict(void **state)
{
    char deep[64];
    struct err err = {0};
    cJSON *j = NULL;

    (void)state;
    parse_fails("", "invalid_json");
    parse_fails("{", "invalid_json");
    parse_fails("[]", "invalid_json");
    parse_fails("{} {}", "invalid_json");
    parse_fails("{\"a\":1,\"a\":2}", "duplicate_field");
    parse_fails("{\"a\":{\"b\":1,\"b\":1}}", "duplicate_field");
    parse_fails("{\"a\":\"x\\u0000y\"}", "invalid_json");
    /* 16 levels are fine, 17 are not. */
    memset(deep, 0, sizeof(deep));
    strcpy(deep, "{\"a\":");
    for (int i = 0; i < 15; i++)
        strcat(deep, "[");
    for (int i = 0; i < 15; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    assert_int_equal(api_json_parse(deep, strlen(deep), &j, &err), 0);
    cJSON_Delete(j);
    strcpy(deep, "{\"a\":");
    for (int i = 0; i < 16; i++)
        strcat(deep, "[");
    for (int i = 0; i < 16; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    parse_fails(deep, "invalid_json");
    /* Brackets inside strings do not count. */
    strcpy(deep, "{\"a\":\"[[[[[[[[[[[[[[[[[[[[\"} \n");
    assert_int_equal(api_json_parse(deep, strlen(deep), &j, &err), 0);
    cJSON_Delete(j);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(api_name_valid("web-1.prod_x", "tg-"));
    assert_true(api_name_valid("9lives", "tg-"));
    assert_false(api_name_valid("", "tg-"));
    assert_false(api_name_valid("-web", "tg-"));
    assert_false(api_name_valid("tg-web", "tg-"));
    assert_true(api_name_valid("tg-web", "lsn-"));
    assert_false(api_name_valid("w\xc3\xa9"
                                "b",
                                "tg-"));
    assert_false(api_name_valid("a b", "tg-"));
    assert_false(
        api_name_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "tg-"));
}

static void test_tg(void **state)
{
    cJSON *d;
    const cJSON *t;

    (void)state;
    d = run(api_tg_parse,
            "{\"name\":\"web\",\"protocol\":\"tcp\",\"targets\":[{\"host\":\"Web.EXAMPLE.com\","
            "\"port\":80},{\"host\":\"::0001\",\"port\":81,\"weight\":0}]}",
            ERR_NONE, NULL, NULL);
    assert_string_equal(cJSON_GetObjectItem(d, "algorithm")->valuestring, "round_robin");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(d, "health_check")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(d, "tls")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(d, "proxy_protocol")));
    assert_int_equal(cJSON_GetObjectItem(d, "deregistration_delay_s")->valueint, 300);
    t = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "targets"), 0);
    assert_string_equal(cJSON_GetObjectItem(t, "host")->valuestring, "web.example.com");
    assert_int_equal(cJSON_GetObjectItem(t, "weight")->valueint, 1);
    t = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "targets"), 1);
    assert_string_equal(cJSON_GetObjectItem(t, "host")->valuestring, "::1");
    assert_int_equal(cJSON_GetObjectItem(t, "weight")->valueint, 0);
    cJSON_Delete(d);

    d = run(api_tg_parse,
            "{\"name\":\"b\",\"protocol\":\"tls\",\"health_check\":{\"protocol\":\"http\"},"
            "\"proxy_protocol\":\"v2\"}",
            ERR_NONE, NULL, NULL);
    t = cJSON_GetObjectItem(d, "health_check");
    assert_string_equal(cJSON_GetObjectItem(t, "path")->valuestring, "/");
    assert_int_equal(cJSON_GetObjectItem(t, "port")->valueint, 0);
    assert_int_equal(cJSON_GetObjectItem(t, "timeout_ms")->valueint, 2000);
    t = cJSON_GetObjectItem(d, "tls");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(t, "verify")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(t, "ca_certificate_id")));
    cJSON_Delete(d);

    run(api_tg_parse, "{\"protocol\":\"tcp\"}", ERR_INVALID, "missing_field", "name");
    run(api_tg_parse, "{\"name\":\"a\"}", ERR_INVALID, "missing_field", "protocol");
    run(api_tg_parse, "{\"name\":\"a\",\"protocol\":\"tcp\",\"x\":1}", ERR_INVALID, "unknown_field",
        "x");
    run(api_tg_parse, "{\"name\":5,\"protocol\":\"tcp\"}", ERR_INVALID, "invalid_type", "name");
    run(api_tg_parse, "{\"name\":\"a\",\"protocol\":\"udp\"}", ERR_INVALID, "invalid_value",
        "protocol");
    run(api_tg_parse, "{\"name\":\"a\",\"protocol\":\"tcp\",\"targets\":[{\"host\":\"h\"}]}",
        ERR_INVALID, "missing_field", "targets[0].port");
    run(api_tg_parse,
        "{\"name\":\"a\",\"protocol\":\"tcp\",\"targets\":[{\"host\":\"h\",\"port\":0}]}",
        ERR_UNPROCESSABLE, "out_of_range", "targets[0].port");
    run(api_tg_parse,
        "{\"name\":\"a\",\"protocol\":\"tcp\",\"targets\":[{\"host\":\"h\",\"port\":8.5}]}",
        ERR_INVALID, "invalid_type", "targets[0].port");
    run(api_tg_parse,
        "{\"name\":\"a\",\"protocol\":\"tcp\",\"targets\":[{\"host\":\"h\",\"port\":1e300}]}",
        ERR_INVALID, "invalid_type", "targets[0].port");
    run(api_tg_parse,
        "{\"name\":\"a\",\"protocol\":\"tcp\",\"targets\":[{\"host\":\"-h\",\"port\":1}]}",
        ERR_INVALID, "invalid_value", "targets[0].host");
    run(api_tg_parse,
        "{\"name\":\"a\",\"protocol\":\"tcp\",\"targets\":[{\"host\":\"h\",\"port\":1,\"x\":1}]}",
        ERR_INVALID, "unknown_field", "targets[0].x");
    run(api_tg_parse, "{\"name\":\"a\",\"protocol\":\"tcp\",\"targets\":[5]}", ERR_INVALID,
        "invalid_type", "targets[0]");
    run(api_tg_parse, "{\"name\":\"a\",\"protocol\":\"tcp\",\"tls\":{}}", ERR_UNPROCESSABLE,
        "invalid_combination", "tls");
    run(api_tg_parse, "{\"name\":\"a\",\"protocol\":\"tls\",\"tls\":{\"verify\":1}}", ERR_INVALID,
        "invalid_type", "tls.verify");
    run(api_tg_parse,
        "{\"name\":\"a\",\"protocol\":\"tcp\",\"health_check\":{\"protocol\":\"http\","
        "\"path\":\"x\"}}",
        ERR_INVALID, "invalid_value", "health_check.path");
    run(api_tg_parse,
        "{\"name\":\"a\",\"protocol\":\"tcp\",\"health_check\":{\"protocol\":\"tcp\","
        "\"healthy_threshold\":11}}",
        ERR_UNPROCESSABLE, "out_of_range", "health_check.healthy_threshold");
    /* timeout_ms not sent: 2000 or the interval, whichever is smaller. */
    d = run(api_tg_parse,
            "{\"name\":\"a\",\"protocol\":\"tcp\",\"health_check\":{\"protocol\":\"tcp\","
            "\"interval_ms\":1000}}",
            ERR_NONE, NULL, NULL);
    t = cJSON_GetObjectItem(d, "health_check");
    assert_int_equal(cJSON_GetObjectItem(t, "timeout_ms")->valueint, 1000);
    cJSON_Delete(d);
    run(api_tg_parse,
        "{\"name\":\"a\",\"protocol\":\"tcp\",\"health_check\":{\"protocol\":\"tcp\","
        "\"interval_ms\":1000,\"timeout_ms\":1001}}",
        ERR_UNPROCESSABLE, "invalid_combination", "health_check.timeout_ms");
    /* What GET shows for a tcp check goes back in a PUT: port 0, path "/". */
    d = run(api_tg_parse,
            "{\"name\":\"a\",\"protocol\":\"tcp\",\"health_check\":{\"protocol\":\"tcp\","
            "\"port\":0,\"path\":\"/\",\"interval_ms\":5000,\"timeout_ms\":2000,"
            "\"healthy_threshold\":3,\"unhealthy_threshold\":3,\"fail_open\":true,"
            "\"proxy_protocol\":null}}",
            ERR_NONE, NULL, NULL);
    t = cJSON_GetObjectItem(d, "health_check");
    assert_int_equal(cJSON_GetObjectItem(t, "port")->valueint, 0);
    assert_string_equal(cJSON_GetObjectItem(t, "path")->valuestring, "/");
    cJSON_Delete(d);
    run(api_tg_parse,
        "{\"name\":\"a\",\"protocol\":\"tcp\",\"health_check\":{\"protocol\":\"tcp\","
        "\"path\":\"/x\"}}",
        ERR_UNPROCESSABLE, "invalid_combination", "health_check.path");
    run(api_tg_parse,
        "{\"name\":\"a\",\"protocol\":\"tcp\",\"health_check\":{\"protocol\":\"tcp\","
        "\"port\":-1}}",
        ERR_UNPROCESSABLE, "out_of_range", "health_check.port");
    run(api_tg_parse, "{\"name\":\"a\",\"protocol\":\"tcp\",\"proxy_protocol\":\"v1\"}",
        ERR_INVALID, "invalid_value", "proxy_protocol");
    run(api_tg_parse, "{\"name\":\"a\",\"protocol\":\"tcp\",\"deregistration_delay_s\":3601}",
        ERR_UNPROCESSABLE, "out_of_range", "deregistration_delay_s");
}

static void test_targets(void **state)
{
    cJSON *d;

    (void)state;
    d = run(api_targets_parse, "{\"host\":\"10.0.0.1\",\"port\":80}", ERR_NONE, NULL, NULL);
    assert_int_equal(cJSON_GetArraySize(d), 1);
    cJSON_Delete(d);
    d = run(
        api_targets_parse,
        "{\"targets\":[{\"host\":\"10.0.0.1\",\"port\":80},{\"host\":\"10.0.0.2\",\"port\":80}]}",
        ERR_NONE, NULL, NULL);
    assert_int_equal(cJSON_GetArraySize(d), 2);
    cJSON_Delete(d);
    run(api_targets_parse, "{\"targets\":[]}", ERR_INVALID, "invalid_value", "targets");
    run(api_targets_parse, "{\"host\":\"10.0.0.1\"}", ERR_INVALID, "missing_field", "port");
}

static void test_lsn(void **state)
{
    cJSON *d;
    const cJSON *r;

    (void)state;
    d = run(api_lsn_parse,
            "{\"name\":\"l\",\"port\":443,\"protocol\":\"tls\",\"default_target_group_id\":\"web\","
            "\"certificate_ids\":[\"a\",\"b\"],\"alpn\":[\"h2\"],\"bind\":\"::FFFF:127.0.0.1\","
            "\"sni_routes\":[{\"server_name\":\"*.EXAMPLE.com\",\"target_group_id\":\"api\"}]}",
            ERR_NONE, NULL, NULL);
    assert_string_equal(cJSON_GetObjectItem(d, "bind")->valuestring, "::ffff:127.0.0.1");
    assert_string_equal(cJSON_GetObjectItem(d, "ssl_policy")->valuestring, "intermediate");
    assert_int_equal(cJSON_GetObjectItem(d, "max_connections")->valueint, 10000);
    assert_int_equal(cJSON_GetObjectItem(d, "handshake_timeout_ms")->valueint, 10000);
    assert_int_equal(cJSON_GetObjectItem(d, "connect_timeout_ms")->valueint, 5000);
    assert_int_equal(cJSON_GetObjectItem(d, "idle_timeout_ms")->valueint, 300000);
    r = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "sni_routes"), 0);
    assert_string_equal(cJSON_GetObjectItem(r, "server_name")->valuestring, "*.example.com");
    cJSON_Delete(d);
    d = run(api_lsn_parse,
            "{\"name\":\"l\",\"port\":80,\"protocol\":\"tcp\",\"default_target_group_id\":\"w\"}",
            ERR_NONE, NULL, NULL);
    assert_string_equal(cJSON_GetObjectItem(d, "bind")->valuestring, "0.0.0.0");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "certificate_ids")), 0);
    cJSON_Delete(d);

    run(api_lsn_parse,
        "{\"name\":\"l\",\"port\":80,\"protocol\":\"tcp\",\"default_target_group_id\":\"w\","
        "\"certificate_ids\":[\"c\"]}",
        ERR_UNPROCESSABLE, "invalid_combination", "certificate_ids");
    run(api_lsn_parse,
        "{\"name\":\"l\",\"port\":80,\"protocol\":\"tls\",\"default_target_group_id\":\"w\"}",
        ERR_UNPROCESSABLE, "invalid_combination", "certificate_ids");
    run(api_lsn_parse,
        "{\"name\":\"l\",\"port\":65536,\"protocol\":\"tcp\",\"default_target_group_id\":\"w\"}",
        ERR_UNPROCESSABLE, "out_of_range", "port");
    run(api_lsn_parse,
        "{\"name\":\"l\",\"port\":80,\"protocol\":\"tcp\",\"default_target_group_id\":\"w\","
        "\"bind\":\"example.com\"}",
        ERR_INVALID, "invalid_value", "bind");
    run(api_lsn_parse,
        "{\"name\":\"l\",\"port\":80,\"protocol\":\"tcp\",\"default_target_group_id\":\"w\","
        "\"sni_routes\":[{\"server_name\":\"a.test\",\"target_group_id\":\"w\"},"
        "{\"server_name\":\"A.TEST\",\"target_group_id\":\"w\"}]}",
        ERR_UNPROCESSABLE, "duplicate_value", "sni_routes[1].server_name");
    run(api_lsn_parse,
        "{\"name\":\"l\",\"port\":80,\"protocol\":\"tcp\",\"default_target_group_id\":\"w\","
        "\"sni_routes\":[{\"server_name\":\"**.test\",\"target_group_id\":\"w\"}]}",
        ERR_INVALID, "invalid_value", "sni_routes[0].server_name");
    run(api_lsn_parse,
        "{\"name\":\"l\",\"port\":80,\"protocol\":\"tls\",\"default_target_group_id\":\"w\","
        "\"certificate_ids\":[\"c\"],\"alpn\":[\"\"]}",
        ERR_INVALID, "invalid_value", "alpn[0]");
    run(api_lsn_parse,
        "{\"name\":\"l\",\"port\":80,\"protocol\":\"tcp\",\"default_target_group_id\":\"w\","
        "\"max_connections\":0}",
        ERR_UNPROCESSABLE, "out_of_range", "max_connections");
}

static void test_cert_body(void **state)
{
    struct api_cert_in ci;
    struct api_vctx vc = {{0}};
    struct err err = {0};
    cJSON *in = cJSON_Parse("{\"name\":\"c\",\"certificate\":\"C\",\"private_key\":\"K\"}");

    (void)state;
    assert_int_equal(api_cert_parse(in, 1, &ci, &vc, &err), 0);
    assert_string_equal(ci.name, "c");
    assert_string_equal(ci.private_key, "K");
    assert_null(ci.certificate_chain);
    cJSON_Delete(in);
    in = cJSON_Parse("{\"certificate\":\"C\"}");
    assert_int_equal(api_cert_parse(in, 0, &ci, &vc, &err), 0);
    assert_null(ci.name);
    assert_int_equal(api_cert_parse(in, 1, &ci, &vc, &err), -1);
    assert_string_equal(err.code, "missing_field");
    cJSON_Delete(in);
    err_clear(&err);
    in = cJSON_Parse("{\"name\":\"c\",\"certificate\":\"C\",\"key\":\"K\"}");
    assert_int_equal(api_cert_parse(in, 1, &ci, &vc, &err), -1);
    assert_string_equal(err.code, "unknown_field");
    assert_string_equal(err.field, "key");
    cJSON_Delete(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_strict), cmocka_unit_test(test_names),
        cmocka_unit_test(test_tg),           cmocka_unit_test(test_targets),
        cmocka_unit_test(test_lsn),          cmocka_unit_test(test_cert_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
