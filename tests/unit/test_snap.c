/* test_snap.c - building snapshots from the store: every member present,
 * only referenced certificates listed, timestamps stripped; certificate
 * frames carry the decrypted key, and none for a CA-only certificate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "cs.h"
#include "err.h"
#include "snap.h"
#include "store.h"
#include "wire.h"

struct fx {
    char dir[256];
    struct store *st;
    struct cs_master *mk;
};

static const char *const KEY = "-----BEGIN PRIVATE KEY-----\nfake\n-----END PRIVATE KEY-----\n";

static void add_cert(struct fx *f, const char *id, const char *name, int with_key, char sha)
{
    struct store_cert c = {0};
    struct err err = {0};

    snprintf(c.id, sizeof(c.id), "%s", id);
    c.name = (char *)name;
    c.version = 2;
    c.not_before = 1;
    c.not_after = 2;
    c.has_key = with_key;
    c.meta = (char *)"{}";
    c.cert_pem = (char *)"CERT";
    c.chain_pem = (char *)"CHAIN";
    memset(c.sha256, sha, 64);
    if (with_key)
        assert_int_equal(cs_seal(f->mk, id, KEY, strlen(KEY), &c.key_ct, &c.key_ct_len, &err), 0);
    assert_int_equal(store_cert_insert(f->st, &c, &err), 0);
    free(c.key_ct);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *base = getenv("PC_TEST_TMP");
    char path[320];
    struct err err = {0};
    cJSON *tg, *l;

    if (base == NULL)
        base = "/tmp";
    mkdir(base, 0700);
    snprintf(f->dir, sizeof(f->dir), "%s/snap.XXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
    snprintf(path, sizeof(path), "%s/portcullis.db", f->dir);
    assert_int_equal(store_open(path, 0, &f->st, &err), 0);
    assert_int_equal(cs_master_load(f->dir, &f->mk, &err), 0);
    assert_int_equal(store_begin(f->st, &err), 0);
    add_cert(f, "cert-a", "a", 1, 'a');
    add_cert(f, "cert-ca", "ca", 0, 'c');
    add_cert(f, "cert-unused", "unused", 1, 'u');
    tg = cJSON_Parse("{\"id\":\"tg-1\",\"name\":\"web\",\"protocol\":\"tls\",\"algorithm\":"
                     "\"round_robin\",\"targets\":[{\"id\":\"tgt-1\",\"host\":\"h\",\"port\":1,"
                     "\"weight\":1}],\"health_check\":null,\"deregistration_delay_s\":300,"
                     "\"proxy_protocol\":null,\"tls\":{\"verify\":true,\"server_name\":null,"
                     "\"ca_certificate_id\":\"cert-ca\"}}");
    assert_int_equal(store_tg_save(f->st, tg, 1, 5, &err), 0);
    cJSON_Delete(tg);
    l = cJSON_Parse("{\"id\":\"lsn-1\",\"name\":\"l\",\"bind\":\"0.0.0.0\",\"port\":443,"
                    "\"protocol\":\"tls\",\"default_target_group_id\":\"tg-1\","
                    "\"certificate_ids\":[\"cert-a\"],\"ssl_policy\":\"intermediate\","
                    "\"alpn\":[],\"sni_routes\":[],\"max_connections\":10000,"
                    "\"handshake_timeout_ms\":10000,\"connect_timeout_ms\":5000,"
                    "\"idle_timeout_ms\":300000}");
    assert_int_equal(store_lsn_save(f->st, l, 1, 5, &err), 0);
    cJSON_Delete(l);
    assert_int_equal(store_commit(f->st, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[400];

    store_close(f->st);
    cs_master_free(f->mk);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void test_build(void **state)
{
    struct fx *f = *state;
    struct err err = {0};
    cJSON *s = NULL, *x;

    assert_int_equal(snap_build(f->st, 42, &s, &err), 0);
    assert_string_equal(cJSON_GetObjectItem(s, "type")->valuestring, "snapshot");
    assert_int_equal(cJSON_GetObjectItem(s, "version")->valueint, 42);
    x = cJSON_GetObjectItem(s, "certificates");
    /* Only referenced certificates: the listener's and the CA. */
    assert_int_equal(cJSON_GetArraySize(x), 2);
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(s, "certificates"))
    {
        assert_string_not_equal(cJSON_GetObjectItem(x, "id")->valuestring, "cert-unused");
        assert_int_equal(cJSON_GetObjectItem(x, "version")->valueint, 2);
        assert_int_equal(strlen(cJSON_GetObjectItem(x, "sha256")->valuestring), 64);
    }
    x = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "target_groups"), 0);
    assert_null(cJSON_GetObjectItem(x, "created_at"));
    assert_non_null(cJSON_GetObjectItem(x, "targets"));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(x, "health_check")));
    x = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "listeners"), 0);
    assert_null(cJSON_GetObjectItem(x, "updated_at"));
    assert_string_equal(cJSON_GetObjectItem(x, "id")->valuestring, "lsn-1");
    assert_int_equal(cJSON_GetObjectItem(x, "idle_timeout_ms")->valueint, 300000);
    cJSON_Delete(s);
}

/* References repeated across listeners and groups are listed once, in
 * the order first met (groups' CAs, then listeners'). */
static void test_build_dedup(void **state)
{
    struct fx *f = *state;
    struct err err = {0};
    cJSON *s = NULL, *l, *x;

    assert_int_equal(store_begin(f->st, &err), 0);
    l = cJSON_Parse("{\"id\":\"lsn-2\",\"name\":\"l2\",\"bind\":\"0.0.0.0\",\"port\":444,"
                    "\"protocol\":\"tls\",\"default_target_group_id\":\"tg-1\","
                    "\"certificate_ids\":[\"cert-unused\",\"cert-a\"],\"ssl_policy\":"
                    "\"intermediate\",\"alpn\":[],\"sni_routes\":[],\"max_connections\":1,"
                    "\"handshake_timeout_ms\":1,\"connect_timeout_ms\":1,\"idle_timeout_ms\":1}");
    assert_int_equal(store_lsn_save(f->st, l, 1, 5, &err), 0);
    cJSON_Delete(l);
    assert_int_equal(snap_build(f->st, 7, &s, &err), 0);
    store_rollback(f->st);
    x = cJSON_GetObjectItem(s, "certificates");
    assert_int_equal(cJSON_GetArraySize(x), 3);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(x, 0), "id")->valuestring,
                        "cert-ca");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(x, 1), "id")->valuestring, "cert-a");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(x, 2), "id")->valuestring,
                        "cert-unused");
    cJSON_Delete(s);
}

/* A rotation's delta names the referenced certificate's new reference; an
 * unreferenced one changes only the version. */
static void test_build_delta(void **state)
{
    struct fx *f = *state;
    struct err err = {0};
    cJSON *d = NULL, *x;

    assert_int_equal(snap_build_delta(f->st, 9, 8, "cert-a", &d, &err), 0);
    assert_string_equal(cJSON_GetObjectItem(d, "type")->valuestring, "snapshot_delta");
    assert_int_equal(cJSON_GetObjectItem(d, "version")->valueint, 9);
    assert_int_equal(cJSON_GetObjectItem(d, "base_version")->valueint, 8);
    x = cJSON_GetObjectItem(d, "certificates");
    assert_int_equal(cJSON_GetArraySize(x), 1);
    x = cJSON_GetArrayItem(x, 0);
    assert_string_equal(cJSON_GetObjectItem(x, "id")->valuestring, "cert-a");
    assert_int_equal(cJSON_GetObjectItem(x, "version")->valueint, 2);
    assert_int_equal(strspn(cJSON_GetObjectItem(x, "sha256")->valuestring, "a"), 64);
    cJSON_Delete(d);

    /* A group's CA is a reference too. */
    assert_int_equal(snap_build_delta(f->st, 9, 8, "cert-ca", &d, &err), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "certificates")), 1);
    cJSON_Delete(d);

    assert_int_equal(snap_build_delta(f->st, 9, 8, "cert-unused", &d, &err), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "certificates")), 0);
    cJSON_Delete(d);

    assert_int_equal(snap_build_delta(f->st, 9, 8, "cert-nope", &d, &err), -1);
    assert_null(d);
}

static cJSON *decode(const char *frame, size_t len)
{
    assert_true(len > 4);
    assert_int_equal(wire_get_len((const uint8_t *)frame), len - 4);
    return cJSON_ParseWithLength(frame + 4, len - 4);
}

static void test_cert_frames(void **state)
{
    struct fx *f = *state;
    struct err err = {0};
    char *fr = NULL;
    size_t len = 0;
    cJSON *o;

    assert_int_equal(snap_cert_frame(f->st, f->mk, "cert-a", &fr, &len, &err), 0);
    o = decode(fr, len);
    wire_frame_free(fr, len);
    assert_string_equal(cJSON_GetObjectItem(o, "type")->valuestring, "certificate");
    assert_string_equal(cJSON_GetObjectItem(o, "private_key")->valuestring, KEY);
    assert_string_equal(cJSON_GetObjectItem(o, "chain")->valuestring, "CHAIN");
    assert_int_equal(cJSON_GetObjectItem(o, "version")->valueint, 2);
    cJSON_Delete(o);

    assert_int_equal(snap_cert_frame(f->st, f->mk, "cert-ca", &fr, &len, &err), 0);
    o = decode(fr, len);
    wire_frame_free(fr, len);
    assert_null(cJSON_GetObjectItem(o, "private_key"));
    cJSON_Delete(o);

    assert_int_equal(snap_cert_frame(f->st, f->mk, "cert-nope", &fr, &len, &err), -1);
    assert_null(fr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_build, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cert_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_build_delta, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
