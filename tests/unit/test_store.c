/* test_store.c - the SQLite store: migrations, CRUD, uniqueness, references
 * refused by foreign keys, and rollback leaving nothing behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "store.h"

struct fx {
    char dir[256];
    char path[300];
    struct store *st;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *base = getenv("PC_TEST_TMP");
    struct err err = {0};

    if (base == NULL)
        base = "/tmp";
    mkdir(base, 0700);
    snprintf(f->dir, sizeof(f->dir), "%s/store.XXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/portcullis.db", f->dir);
    assert_int_equal(store_open(f->path, 0, &f->st, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[400];

    store_close(f->st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static cJSON *mk_tg(const char *id, const char *name, const char *ca)
{
    char buf[512];

    snprintf(buf, sizeof(buf),
             "{\"id\":\"%s\",\"name\":\"%s\",\"protocol\":\"%s\",\"algorithm\":\"round_robin\","
             "\"targets\":[{\"id\":\"tgt-%s1\",\"host\":\"127.0.0.1\",\"port\":8080,\"weight\":1},"
             "{\"id\":\"tgt-%s2\",\"host\":\"::1\",\"port\":8081,\"weight\":5}],"
             "\"health_check\":null,\"tls\":%s%s%s}",
             id, name, ca ? "tls" : "tcp", id, id, ca ? "{\"ca_certificate_id\":\"" : "null",
             ca ? ca : "", ca ? "\"}" : "");
    return cJSON_Parse(buf);
}

static cJSON *mk_lsn(const char *id, const char *name, int port, const char *tg, const char *cert)
{
    char buf[512];

    snprintf(buf, sizeof(buf),
             "{\"id\":\"%s\",\"name\":\"%s\",\"bind\":\"127.0.0.1\",\"port\":%d,"
             "\"protocol\":\"%s\",\"default_target_group_id\":\"%s\",\"certificate_ids\":[%s%s%s],"
             "\"sni_routes\":[{\"server_name\":\"a.test\",\"target_group_id\":\"%s\"}]}",
             id, name, port, cert ? "tls" : "tcp", tg, cert ? "\"" : "", cert ? cert : "",
             cert ? "\"" : "", tg);
    return cJSON_Parse(buf);
}

static void mk_cert(struct store_cert *c, const char *id, const char *name)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->name = (char *)name;
    c->version = 1;
    c->not_before = 1000;
    c->not_after = 2000;
    c->has_key = 1;
    c->meta = (char *)"{\"subject\":\"CN=x\"}";
    c->cert_pem = (char *)"CERT";
    c->chain_pem = (char *)"";
    c->key_ct = (uint8_t *)"\x01\x02\x00\x03";
    c->key_ct_len = 4;
    snprintf(c->sha256, sizeof(c->sha256), "%064d", 7);
}

static void test_migrations(void **state)
{
    struct fx *f = *state;
    struct store *r = NULL;
    struct err err = {0};
    struct stat sb;
    int64_t cv = -1, lv = -1;

    assert_int_equal(store_schema_version(f->st), store_n_migrations);
    assert_true(store_n_migrations >= 1);
    assert_int_equal(store_versions(f->st, &cv, &lv, &err), 0);
    assert_int_equal(cv, 0);
    assert_int_equal(lv, 0);
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* Reopening applies nothing twice and keeps the data. */
    assert_int_equal(store_set_versions(f->st, 5, 7, &err), 0);
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(store_open(f->path, 0, &f->st, &err), 0);
    assert_int_equal(store_versions(f->st, &cv, &lv, &err), 0);
    assert_int_equal(cv, 5);
    assert_int_equal(lv, 7);
    /* A reader cannot write. */
    assert_int_equal(store_open(f->path, STORE_F_READER, &r, &err), 0);
    err_clear(&err);
    assert_int_equal(store_set_versions(r, 9, 9, &err), -1);
    store_close(r);
}

static void test_crud_and_refs(void **state)
{
    struct fx *f = *state;
    struct err err = {0};
    struct store_cert c, got;
    cJSON *tg, *lsn, *out = NULL, *users;
    char id[STORE_ID_MAX];

    mk_cert(&c, "cert-0000000000000001", "web");
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_cert_insert(f->st, &c, &err), 0);
    /* Unique name: refused by the constraint. */
    mk_cert(&c, "cert-0000000000000002", "web");
    assert_int_equal(store_cert_insert(f->st, &c, &err), -1);
    assert_int_equal(err.kind, ERR_CONFLICT);
    err_clear(&err);
    assert_int_equal(store_name_taken(f->st, STORE_CERT, "web", NULL, &err), 1);
    assert_int_equal(store_name_taken(f->st, STORE_CERT, "web", "cert-0000000000000001", &err), 0);
    assert_int_equal(store_resolve(f->st, STORE_CERT, "web", id, &err), 1);
    assert_string_equal(id, "cert-0000000000000001");
    assert_int_equal(store_resolve(f->st, STORE_CERT, "nope", id, &err), 0);

    /* A group whose CA is a missing certificate is refused. */
    tg = mk_tg("tg-1", "pool", "cert-missing");
    assert_int_equal(store_tg_save(f->st, tg, 1, 10, &err), -1);
    assert_int_equal(err.kind, ERR_CONFLICT);
    err_clear(&err);
    cJSON_Delete(tg);
    tg = mk_tg("tg-1", "pool", "cert-0000000000000001");
    assert_int_equal(store_tg_save(f->st, tg, 1, 10, &err), 0);
    cJSON_Delete(tg);
    assert_int_equal(store_tg_get(f->st, "tg-1", &out, &err), 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(out, "targets")), 2);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(out, "targets"), 1), "host")
            ->valuestring,
        "::1");
    assert_int_equal((int)cJSON_GetObjectItem(out, "created_at")->valuedouble, 10);
    cJSON_Delete(out);

    /* A listener to a missing group is refused; to a real one accepted. */
    lsn = mk_lsn("lsn-1", "l1", 8443, "tg-missing", NULL);
    assert_int_equal(store_lsn_save(f->st, lsn, 1, 20, &err), -1);
    err_clear(&err);
    cJSON_Delete(lsn);
    lsn = mk_lsn("lsn-1", "l1", 8443, "tg-1", "cert-0000000000000001");
    assert_int_equal(store_lsn_save(f->st, lsn, 1, 20, &err), 0);
    cJSON_Delete(lsn);
    assert_int_equal(store_lsn_addr_taken(f->st, "127.0.0.1", 8443, NULL, id, &err), 1);
    assert_int_equal(store_lsn_addr_taken(f->st, "0.0.0.0", 8443, NULL, id, &err), 1);
    assert_int_equal(store_lsn_addr_taken(f->st, "127.0.0.1", 8443, "lsn-1", id, &err), 0);
    assert_int_equal(store_lsn_addr_taken(f->st, "127.0.0.2", 8443, NULL, id, &err), 0);

    users = cJSON_CreateArray();
    assert_int_equal(store_cert_users(f->st, "cert-0000000000000001", users, users, &err), 0);
    assert_int_equal(cJSON_GetArraySize(users), 2);
    cJSON_Delete(users);
    users = cJSON_CreateArray();
    assert_int_equal(store_tg_users(f->st, "tg-1", users, &err), 0);
    assert_int_equal(cJSON_GetArraySize(users), 1);
    cJSON_Delete(users);

    /* In use: foreign keys refuse the deletes. */
    assert_int_equal(store_cert_delete(f->st, "cert-0000000000000001", &err), -1);
    err_clear(&err);
    assert_int_equal(store_tg_delete(f->st, "tg-1", &err), -1);
    err_clear(&err);
    assert_int_equal(store_commit(f->st, &err), 0);

    /* Bodies come back only when asked for. */
    assert_int_equal(store_cert_get(f->st, "cert-0000000000000001", 0, &got, &err), 1);
    assert_null(got.key_ct);
    assert_string_equal(got.name, "web");
    store_cert_clear(&got);
    assert_int_equal(store_cert_get(f->st, "cert-0000000000000001", 1, &got, &err), 1);
    assert_int_equal(got.key_ct_len, 4);
    assert_memory_equal(got.key_ct, "\x01\x02\x00\x03", 4);
    assert_string_equal(got.cert_pem, "CERT");
    store_cert_clear(&got);

    /* Delete in order. */
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_lsn_delete(f->st, "lsn-1", &err), 1);
    assert_int_equal(store_tg_delete(f->st, "tg-1", &err), 1);
    assert_int_equal(store_cert_delete(f->st, "cert-0000000000000001", &err), 1);
    assert_int_equal(store_cert_delete(f->st, "cert-0000000000000001", &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);
}

static int count_cb(void *arg, const struct store_cert *c)
{
    (void)c;
    (*(int *)arg)++;
    return 0;
}

static void test_rollback_leaves_nothing(void **state)
{
    struct fx *f = *state;
    struct err err = {0};
    struct store_cert c;
    struct store *r = NULL;
    cJSON *tg, *list = NULL;
    int n = 0;
    int64_t cv, lv, cnt;

    assert_int_equal(store_open(f->path, STORE_F_READER, &r, &err), 0);
    mk_cert(&c, "cert-0000000000000009", "tmp");
    tg = mk_tg("tg-9", "tmp", NULL);
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_cert_insert(f->st, &c, &err), 0);
    assert_int_equal(store_tg_save(f->st, tg, 1, 1, &err), 0);
    assert_int_equal(store_set_versions(f->st, 3, 3, &err), 0);
    /* A reader does not see uncommitted rows. */
    assert_int_equal(store_count(r, STORE_TG, &cnt, &err), 0);
    assert_int_equal(cnt, 0);
    store_rollback(f->st);
    cJSON_Delete(tg);
    assert_int_equal(store_cert_each(f->st, count_cb, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_tg_list(f->st, &list, &err), 0);
    assert_int_equal(cJSON_GetArraySize(list), 0);
    cJSON_Delete(list);
    assert_int_equal(store_count(f->st, STORE_TG, &cnt, &err), 0);
    assert_int_equal(cnt, 0);
    assert_int_equal(store_versions(f->st, &cv, &lv, &err), 0);
    assert_int_equal(cv, 0);
    store_close(r);
}

static void test_update_and_replace_targets(void **state)
{
    struct fx *f = *state;
    struct err err = {0};
    cJSON *tg, *out = NULL;

    tg = mk_tg("tg-2", "two", NULL);
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_tg_save(f->st, tg, 1, 1, &err), 0);
    cJSON_DeleteItemFromArray(cJSON_GetObjectItem(tg, "targets"), 0);
    cJSON_ReplaceItemInObject(tg, "name", cJSON_CreateString("renamed"));
    assert_int_equal(store_tg_save(f->st, tg, 0, 2, &err), 0);
    /* Updating a missing row is not found. */
    cJSON_ReplaceItemInObject(tg, "id", cJSON_CreateString("tg-nope"));
    assert_int_equal(store_tg_save(f->st, tg, 0, 2, &err), -1);
    assert_int_equal(err.kind, ERR_NOT_FOUND);
    err_clear(&err);
    assert_int_equal(store_commit(f->st, &err), 0);
    cJSON_Delete(tg);
    assert_int_equal(store_tg_get(f->st, "tg-2", &out, &err), 1);
    assert_string_equal(cJSON_GetObjectItem(out, "name")->valuestring, "renamed");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(out, "targets")), 1);
    assert_int_equal((int)cJSON_GetObjectItem(out, "updated_at")->valuedouble, 2);
    cJSON_Delete(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crud_and_refs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_and_replace_targets, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
