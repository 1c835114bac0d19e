/* store.c - SQLite behind the store_ interface. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "err.h"
#include "log.h"
#include "store.h"

struct store {
    sqlite3 *db;
    int reader;
    int in_txn;
};

/* How long a connection waits for another's lock before giving up. */
#define STORE_BUSY_MS 5000

static int store_fail(struct store *st, struct err *err, const char *what)
{
    int rc = sqlite3_extended_errcode(st->db);

    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return err_set(err, ERR_CONFLICT, "constraint_violation", NULL,
                       "%s: refused by a constraint (%s)", what, sqlite3_errmsg(st->db));
    return err_set(err, ERR_INTERNAL, "store_error", NULL, "%s: %s", what, sqlite3_errmsg(st->db));
}

static int store_exec(struct store *st, const char *sql, struct err *err)
{
    char *msg = NULL;

    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        err_set(err, ERR_INTERNAL, "store_error", NULL, "%s", msg ? msg : "sqlite error");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int store_prepare(struct store *st, const char *sql, sqlite3_stmt **stmt, struct err *err)
{
    if (sqlite3_prepare_v2(st->db, sql, -1, stmt, NULL) != SQLITE_OK)
        return store_fail(st, err, "prepare");
    return 0;
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
    if (v == NULL)
        sqlite3_bind_null(s, i);
    else
        sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

static char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);

    return strdup(t ? (const char *)t : "");
}

int store_schema_version(struct store *st)
{
    sqlite3_stmt *s = NULL;
    int v = -1;

    if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

/* Apply every embedded migration above the database's user_version, each
 * in its own transaction together with the new user_version. */
static int store_migrate(struct store *st, struct err *err)
{
    int cur = store_schema_version(st);
    char sql[64];

    if (cur < 0)
        return store_fail(st, err, "read user_version");
    if (cur > store_n_migrations)
        return err_set(err, ERR_INTERNAL, "schema_too_new", NULL,
                       "database schema version %d is newer than this program (%d)", cur,
                       store_n_migrations);
    for (int i = cur; i < store_n_migrations; i++) {
        if (store_exec(st, "BEGIN IMMEDIATE", err) < 0)
            return -1;
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", i + 1);
        if (store_exec(st, store_migrations[i].sql, err) < 0 || store_exec(st, sql, err) < 0) {
            store_exec(st, "ROLLBACK", NULL);
            return -1;
        }
        if (store_exec(st, "COMMIT", err) < 0) {
            store_exec(st, "ROLLBACK", NULL);
            return -1;
        }
        log_info("store", "applied migration %s", store_migrations[i].name);
    }
    return 0;
}

int store_open(const char *path, int flags, struct store **out, struct err *err)
{
    struct store *st;
    int fd, oflags;

    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    st->reader = (flags & STORE_F_READER) != 0;
    if (!st->reader) {
        /* Create the file ourselves so it is 0600 whatever the umask. */
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            free(st);
            return err_set(err, ERR_INTERNAL, "store_open_failed", NULL, "cannot open %s", path);
        }
        fchmod(fd, 0600);
        close(fd);
    }
    oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(path, &st->db, oflags, NULL) != SQLITE_OK) {
        err_set(err, ERR_INTERNAL, "store_open_failed", NULL, "cannot open %s: %s", path,
                st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(st->db, STORE_BUSY_MS);
    if (store_exec(st, "PRAGMA foreign_keys = ON", err) < 0)
        goto fail;
    if (!st->reader) {
        if (store_exec(st, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL", err) < 0 ||
            store_migrate(st, err) < 0)
            goto fail;
    } else if (store_exec(st, "PRAGMA query_only = ON", err) < 0) {
        goto fail;
    }
    *out = st;
    return 0;
fail:
    sqlite3_close(st->db);
    free(st);
    return -1;
}

void store_close(struct store *st)
{
    if (st == NULL)
        return;
    if (st->in_txn)
        store_rollback(st);
    sqlite3_close(st->db);
    free(st);
}

int store_begin(struct store *st, struct err *err)
{
    if (store_exec(st, st->reader ? "BEGIN" : "BEGIN IMMEDIATE", err) < 0)
        return -1;
    st->in_txn = 1;
    return 0;
}

int store_commit(struct store *st, struct err *err)
{
    if (store_exec(st, "COMMIT", err) < 0) {
        store_rollback(st);
        return -1;
    }
    st->in_txn = 0;
    return 0;
}

void store_rollback(struct store *st)
{
    if (!sqlite3_get_autocommit(st->db))
        store_exec(st, "ROLLBACK", NULL);
    st->in_txn = 0;
}

/* Run a statement that returns at most one integer. */
static int store_get_int(struct store *st, const char *sql, const char *arg, int64_t *v,
                         struct err *err)
{
    sqlite3_stmt *s = NULL;
    int rc;

    if (store_prepare(st, sql, &s, err) < 0)
        return -1;
    if (arg != NULL)
        bind_text(s, 1, arg);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *v = sqlite3_column_int64(s, 0);
        rc = 1;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = store_fail(st, err, "query");
    }
    sqlite3_finalize(s);
    return rc;
}

/* Run a statement with text parameters, expecting no rows. Returns the
 * number of changed rows, or -1. */
static int store_run(struct store *st, const char *sql, const char *const *args, int nargs,
                     struct err *err)
{
    sqlite3_stmt *s = NULL;
    int rc;

    if (store_prepare(st, sql, &s, err) < 0)
        return -1;
    for (int i = 0; i < nargs; i++)
        bind_text(s, i + 1, args[i]);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        rc = store_fail(st, err, "write");
    else
        rc = sqlite3_changes(st->db);
    sqlite3_finalize(s);
    return rc;
}

int store_versions(struct store *st, int64_t *config_version, int64_t *last_version,
                   struct err *err)
{
    if (store_get_int(st, "SELECT v FROM meta WHERE k = 'config_version'", NULL, config_version,
                      err) != 1 ||
        store_get_int(st, "SELECT v FROM meta WHERE k = 'last_version'", NULL, last_version, err) !=
            1)
        return err_set(err, ERR_INTERNAL, "store_error", NULL, "meta table is damaged");
    return 0;
}

int store_set_versions(struct store *st, int64_t config_version, int64_t last_version,
                       struct err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t vals[2] = {config_version, last_version};
    const char *keys[2] = {"config_version", "last_version"};

    if (store_prepare(st, "UPDATE meta SET v = ?1 WHERE k = ?2", &s, err) < 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        if (vals[i] < 0)
            continue;
        sqlite3_reset(s);
        sqlite3_bind_int64(s, 1, vals[i]);
        bind_text(s, 2, keys[i]);
        if (sqlite3_step(s) != SQLITE_DONE) {
            store_fail(st, err, "set version");
            sqlite3_finalize(s);
            return -1;
        }
    }
    sqlite3_finalize(s);
    return 0;
}

static const char *store_table(enum store_kind kind)
{
    switch (kind) {
    case STORE_CERT:
        return "certificates";
    case STORE_TG:
        return "target_groups";
    case STORE_LSN:
        return "listeners";
    }
    return "certificates";
}

int store_resolve(struct store *st, enum store_kind kind, const char *ref, char id[STORE_ID_MAX],
                  struct err *err)
{
    char sql[128];
    sqlite3_stmt *s = NULL;
    int rc;

    snprintf(sql, sizeof(sql), "SELECT id FROM %s WHERE id = ?1 OR name = ?1 LIMIT 1",
             store_table(kind));
    if (store_prepare(st, sql, &s, err) < 0)
        return -1;
    bind_text(s, 1, ref);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        snprintf(id, STORE_ID_MAX, "%s", (const char *)sqlite3_column_text(s, 0));
        rc = 1;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = store_fail(st, err, "resolve");
    }
    sqlite3_finalize(s);
    return rc;
}

int store_name_taken(struct store *st, enum store_kind kind, const char *name, const char *self_id,
                     struct err *err)
{
    char sql[128];
    sqlite3_stmt *s = NULL;
    int rc;

    snprintf(sql, sizeof(sql), "SELECT 1 FROM %s WHERE name = ?1 AND id IS NOT ?2",
             store_table(kind));
    if (store_prepare(st, sql, &s, err) < 0)
        return -1;
    bind_text(s, 1, name);
    bind_text(s, 2, self_id);
    rc = sqlite3_step(s);
    rc = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : store_fail(st, err, "name lookup");
    sqlite3_finalize(s);
    return rc;
}

int store_count(struct store *st, enum store_kind kind, int64_t *n, struct err *err)
{
    char sql[96];

    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", store_table(kind));
    return store_get_int(st, sql, NULL, n, err) == 1 ? 0 : -1;
}

/* ---- certificates ---- */

void store_cert_clear(struct store_cert *c)
{
    free(c->name);
    free(c->meta);
    free(c->cert_pem);
    free(c->chain_pem);
    free(c->key_ct);
    memset(c, 0, sizeof(*c));
}

static int store_cert_write(struct store *st, const char *sql, const struct store_cert *c,
                            struct err *err)
{
    sqlite3_stmt *s = NULL;
    int rc;

    if (store_prepare(st, sql, &s, err) < 0)
        return -1;
    bind_text(s, 1, c->id);
    bind_text(s, 2, c->name);
    sqlite3_bind_int64(s, 3, c->version);
    sqlite3_bind_int64(s, 4, c->not_before);
    sqlite3_bind_int64(s, 5, c->not_after);
    sqlite3_bind_int(s, 6, c->is_ca);
    sqlite3_bind_int(s, 7, c->has_key);
    bind_text(s, 8, c->meta);
    bind_text(s, 9, c->cert_pem);
    bind_text(s, 10, c->chain_pem ? c->chain_pem : "");
    if (c->key_ct != NULL)
        sqlite3_bind_blob(s, 11, c->key_ct, (int)c->key_ct_len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, 11);
    bind_text(s, 12, c->sha256);
    sqlite3_bind_int64(s, 13, c->created_at);
    sqlite3_bind_int64(s, 14, c->updated_at);
    rc = sqlite3_step(s);
    if (rc != SQLITE_DONE)
        rc = store_fail(st, err, "write certificate");
    else
        rc = sqlite3_changes(st->db) == 1
                 ? 0
                 : err_set(err, ERR_NOT_FOUND, "not_found", NULL, "no certificate %s", c->id);
    sqlite3_finalize(s);
    return rc;
}

int store_cert_insert(struct store *st, const struct store_cert *c, struct err *err)
{
    return store_cert_write(st,
                            "INSERT INTO certificates (id, name, version, not_before, not_after, "
                            "is_ca, has_key, meta, cert_pem, chain_pem, key_ct, sha256, "
                            "created_at, updated_at) VALUES "
                            "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                            c, err);
}

int store_cert_update(struct store *st, const struct store_cert *c, struct err *err)
{
    return store_cert_write(st,
                            "UPDATE certificates SET name = ?2, version = ?3, not_before = ?4, "
                            "not_after = ?5, is_ca = ?6, has_key = ?7, meta = ?8, cert_pem = ?9, "
                            "chain_pem = ?10, key_ct = ?11, sha256 = ?12, created_at = ?13, "
                            "updated_at = ?14 WHERE id = ?1",
                            c, err);
}

#define CERT_COLS                                                                                  \
    "id, name, version, not_before, not_after, is_ca, has_key, meta, sha256, created_at, "         \
    "updated_at, cert_pem, chain_pem, key_ct"

static int store_cert_row(sqlite3_stmt *s, int bodies, struct store_cert *c, struct err *err)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->id, sizeof(c->id), "%s", (const char *)sqlite3_column_text(s, 0));
    c->name = col_dup(s, 1);
    c->version = sqlite3_column_int64(s, 2);
    c->not_before = sqlite3_column_int64(s, 3);
    c->not_after = sqlite3_column_int64(s, 4);
    c->is_ca = sqlite3_column_int(s, 5);
    c->has_key = sqlite3_column_int(s, 6);
    c->meta = col_dup(s, 7);
    snprintf(c->sha256, sizeof(c->sha256), "%s", (const char *)sqlite3_column_text(s, 8));
    c->created_at = sqlite3_column_int64(s, 9);
    c->updated_at = sqlite3_column_int64(s, 10);
    if (bodies) {
        c->cert_pem = col_dup(s, 11);
        c->chain_pem = col_dup(s, 12);
        if (sqlite3_column_type(s, 13) == SQLITE_BLOB) {
            c->key_ct_len = (size_t)sqlite3_column_bytes(s, 13);
            c->key_ct = malloc(c->key_ct_len ? c->key_ct_len : 1);
            if (c->key_ct != NULL)
                memcpy(c->key_ct, sqlite3_column_blob(s, 13), c->key_ct_len);
        }
    }
    if (c->name == NULL || c->meta == NULL ||
        (bodies && (c->cert_pem == NULL || c->chain_pem == NULL)) ||
        (bodies && c->key_ct_len && c->key_ct == NULL)) {
        store_cert_clear(c);
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    }
    return 0;
}

int store_cert_get(struct store *st, const char *id, int bodies, struct store_cert *out,
                   struct err *err)
{
    sqlite3_stmt *s = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if (store_prepare(st, "SELECT " CERT_COLS " FROM certificates WHERE id = ?1", &s, err) < 0)
        return -1;
    bind_text(s, 1, id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        rc = store_cert_row(s, bodies, out, err) < 0 ? -1 : 1;
    else if (rc == SQLITE_DONE)
        rc = 0;
    else
        rc = store_fail(st, err, "read certificate");
    sqlite3_finalize(s);
    return rc;
}

int store_cert_refs(struct store *st, struct store_cert_ref **out, size_t *n, struct err *err)
{
    sqlite3_stmt *s = NULL;
    struct store_cert_ref *v = NULL;
    size_t cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    /* BINARY collation is memcmp order: the caller's strcmp bsearch agrees. */
    /* Only referenced ones: 10,000 imported but unused certificates must
     * not make every snapshot cost a scan of them. */
    if (store_prepare(st,
                      "SELECT id, version, sha256 FROM certificates WHERE id IN "
                      "(SELECT certificate_id FROM listener_certificates UNION "
                      "SELECT ca_certificate_id FROM target_groups) ORDER BY id COLLATE BINARY",
                      &s, err) < 0)
        return -1;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 256;
            struct store_cert_ref *nv = realloc(v, nc * sizeof(*nv));

            if (nv == NULL) {
                rc = err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
                goto out;
            }
            v = nv;
            cap = nc;
        }
        snprintf(v[*n].id, sizeof(v[*n].id), "%s", (const char *)sqlite3_column_text(s, 0));
        v[*n].version = sqlite3_column_int64(s, 1);
        snprintf(v[*n].sha256, sizeof(v[*n].sha256), "%s", (const char *)sqlite3_column_text(s, 2));
        (*n)++;
    }
    rc = rc == SQLITE_DONE ? 0 : store_fail(st, err, "list certificates");
out:
    sqlite3_finalize(s);
    if (rc < 0) {
        free(v);
        v = NULL;
        *n = 0;
    }
    *out = v;
    return rc;
}

int store_cert_each(struct store *st, int (*fn)(void *arg, const struct store_cert *c), void *arg,
                    struct err *err)
{
    sqlite3_stmt *s = NULL;
    struct store_cert c;
    int rc;

    if (store_prepare(st, "SELECT " CERT_COLS " FROM certificates ORDER BY name", &s, err) < 0)
        return -1;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (store_cert_row(s, 0, &c, err) < 0) {
            rc = -1;
            goto out;
        }
        rc = fn(arg, &c);
        store_cert_clear(&c);
        if (rc != 0)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : store_fail(st, err, "list certificates");
out:
    sqlite3_finalize(s);
    return rc;
}

/* Append the first column of every row of 'sql' (one text parameter) to 'arr'. */
static int store_ids(struct store *st, const char *sql, const char *arg, cJSON *arr,
                     struct err *err)
{
    sqlite3_stmt *s = NULL;
    int rc;

    if (arr == NULL)
        return 0;
    if (store_prepare(st, sql, &s, err) < 0)
        return -1;
    bind_text(s, 1, arg);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        cJSON_AddItemToArray(arr, cJSON_CreateString((const char *)sqlite3_column_text(s, 0)));
    rc = rc == SQLITE_DONE ? 0 : store_fail(st, err, "list users");
    sqlite3_finalize(s);
    return rc;
}

int store_cert_users(struct store *st, const char *id, cJSON *listeners, cJSON *groups,
                     struct err *err)
{
    if (store_ids(
            st,
            "SELECT DISTINCT listener_id FROM listener_certificates WHERE certificate_id = ?1 "
            "ORDER BY listener_id",
            id, listeners, err) < 0)
        return -1;
    return store_ids(st, "SELECT id FROM target_groups WHERE ca_certificate_id = ?1 ORDER BY id",
                     id, groups, err);
}

int store_cert_delete(struct store *st, const char *id, struct err *err)
{
    const char *args[1] = {id};

    return store_run(st, "DELETE FROM certificates WHERE id = ?1", args, 1, err);
}

/* ---- target groups ---- */

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t jint(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

/* Serialise 'doc' minus the member 'skip' (may be NULL). Caller frees. */
static char *store_doc_text(const cJSON *doc, const char *skip)
{
    cJSON *copy = cJSON_Duplicate(doc, 1);
    char *txt;

    if (copy == NULL)
        return NULL;
    if (skip != NULL)
        cJSON_DeleteItemFromObjectCaseSensitive(copy, skip);
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "created_at");
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "updated_at");
    txt = cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);
    return txt;
}

int store_tg_save(struct store *st, const cJSON *tg, int create, int64_t now, struct err *err)
{
    const char *id = jstr(tg, "id");
    const cJSON *tls = cJSON_GetObjectItemCaseSensitive(tg, "tls");
    const cJSON *targets = cJSON_GetObjectItemCaseSensitive(tg, "targets"), *t;
    const char *ca = cJSON_IsObject(tls) ? jstr(tls, "ca_certificate_id") : NULL;
    sqlite3_stmt *s = NULL;
    char *doc = NULL;
    int rc = -1, pos = 0;
    const char *del[1] = {id};

    doc = store_doc_text(tg, "targets");
    if (doc == NULL || id == NULL)
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    if (create) {
        if (store_prepare(st,
                          "INSERT INTO target_groups (id, name, protocol, ca_certificate_id, doc, "
                          "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                          &s, err) < 0)
            goto out;
    } else if (store_prepare(st,
                             "UPDATE target_groups SET name = ?2, protocol = ?3, "
                             "ca_certificate_id = ?4, doc = ?5, updated_at = ?6 WHERE id = ?1",
                             &s, err) < 0) {
        goto out;
    }
    bind_text(s, 1, id);
    bind_text(s, 2, jstr(tg, "name"));
    bind_text(s, 3, jstr(tg, "protocol"));
    bind_text(s, 4, ca);
    bind_text(s, 5, doc);
    sqlite3_bind_int64(s, 6, now);
    if (sqlite3_step(s) != SQLITE_DONE) {
        store_fail(st, err, "write target group");
        goto out;
    }
    if (sqlite3_changes(st->db) != 1) {
        err_set(err, ERR_NOT_FOUND, "not_found", NULL, "no target group %s", id);
        goto out;
    }
    sqlite3_finalize(s);
    s = NULL;
    if (store_run(st, "DELETE FROM targets WHERE target_group_id = ?1", del, 1, err) < 0)
        goto out;
    if (store_prepare(st,
                      "INSERT INTO targets (id, target_group_id, position, host, port, weight) "
                      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                      &s, err) < 0)
        goto out;
    cJSON_ArrayForEach(t, targets)
    {
        sqlite3_reset(s);
        bind_text(s, 1, jstr(t, "id"));
        bind_text(s, 2, id);
        sqlite3_bind_int(s, 3, pos++);
        bind_text(s, 4, jstr(t, "host"));
        sqlite3_bind_int64(s, 5, jint(t, "port"));
        sqlite3_bind_int64(s, 6, jint(t, "weight"));
        if (sqlite3_step(s) != SQLITE_DONE) {
            store_fail(st, err, "write target");
            goto out;
        }
    }
    rc = 0;
out:
    sqlite3_finalize(s);
    free(doc);
    return rc;
}

/* Build the document of the target group at the current row of 's'
 * (columns: id, doc, created_at, updated_at). */
static cJSON *store_tg_doc(struct store *st, sqlite3_stmt *s, struct err *err)
{
    sqlite3_stmt *t = NULL;
    cJSON *doc, *arr, *o;
    int rc;

    doc = cJSON_Parse((const char *)sqlite3_column_text(s, 1));
    if (doc == NULL) {
        err_set(err, ERR_INTERNAL, "store_error", NULL, "damaged target group document");
        return NULL;
    }
    arr = cJSON_AddArrayToObject(doc, "targets");
    cJSON_AddNumberToObject(doc, "created_at", (double)sqlite3_column_int64(s, 2));
    cJSON_AddNumberToObject(doc, "updated_at", (double)sqlite3_column_int64(s, 3));
    if (store_prepare(st,
                      "SELECT id, host, port, weight FROM targets WHERE target_group_id = ?1 "
                      "ORDER BY position",
                      &t, err) < 0)
        goto fail;
    bind_text(t, 1, (const char *)sqlite3_column_text(s, 0));
    while ((rc = sqlite3_step(t)) == SQLITE_ROW) {
        o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "id", (const char *)sqlite3_column_text(t, 0));
        cJSON_AddStringToObject(o, "host", (const char *)sqlite3_column_text(t, 1));
        cJSON_AddNumberToObject(o, "port", sqlite3_column_int(t, 2));
        cJSON_AddNumberToObject(o, "weight", sqlite3_column_int(t, 3));
    }
    if (rc != SQLITE_DONE) {
        store_fail(st, err, "read targets");
        goto fail;
    }
    sqlite3_finalize(t);
    return doc;
fail:
    sqlite3_finalize(t);
    cJSON_Delete(doc);
    return NULL;
}

/* Shared by get and list of both documented kinds. 'one' is an id or NULL. */
static int store_docs(struct store *st, enum store_kind kind, const char *one, cJSON **out,
                      struct err *err)
{
    char sql[160];
    sqlite3_stmt *s = NULL;
    cJSON *arr = NULL, *doc;
    int rc = -1, n = 0;

    snprintf(sql, sizeof(sql), "SELECT id, doc, created_at, updated_at FROM %s %s ORDER BY name",
             store_table(kind), one ? "WHERE id = ?1" : "");
    if (store_prepare(st, sql, &s, err) < 0)
        return -1;
    if (one)
        bind_text(s, 1, one);
    arr = cJSON_CreateArray();
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (kind == STORE_TG) {
            doc = store_tg_doc(st, s, err);
        } else {
            doc = cJSON_Parse((const char *)sqlite3_column_text(s, 1));
            if (doc != NULL) {
                cJSON_AddNumberToObject(doc, "created_at", (double)sqlite3_column_int64(s, 2));
                cJSON_AddNumberToObject(doc, "updated_at", (double)sqlite3_column_int64(s, 3));
            } else {
                err_set(err, ERR_INTERNAL, "store_error", NULL, "damaged listener document");
            }
        }
        if (doc == NULL) {
            rc = -1;
            goto out;
        }
        cJSON_AddItemToArray(arr, doc);
        n++;
    }
    if (rc != SQLITE_DONE) {
        rc = store_fail(st, err, "read");
        goto out;
    }
    if (one) {
        *out = n ? cJSON_DetachItemFromArray(arr, 0) : NULL;
        rc = n ? 1 : 0;
    } else {
        *out = arr;
        arr = NULL;
        rc = 0;
    }
out:
    cJSON_Delete(arr);
    sqlite3_finalize(s);
    return rc;
}

int store_tg_get(struct store *st, const char *id, cJSON **out, struct err *err)
{
    return store_docs(st, STORE_TG, id, out, err);
}

int store_tg_list(struct store *st, cJSON **out, struct err *err)
{
    return store_docs(st, STORE_TG, NULL, out, err);
}

int store_tg_delete(struct store *st, const char *id, struct err *err)
{
    const char *args[1] = {id};

    return store_run(st, "DELETE FROM target_groups WHERE id = ?1", args, 1, err);
}

int store_tg_users(struct store *st, const char *id, cJSON *listeners, struct err *err)
{
    return store_ids(
        st,
        "SELECT id FROM listeners WHERE default_target_group_id = ?1 UNION "
        "SELECT listener_id FROM listener_routes WHERE target_group_id = ?1 ORDER BY 1",
        id, listeners, err);
}

/* ---- listeners ---- */

int store_lsn_save(struct store *st, const cJSON *lsn, int create, int64_t now, struct err *err)
{
    const char *id = jstr(lsn, "id");
    const cJSON *certs = cJSON_GetObjectItemCaseSensitive(lsn, "certificate_ids");
    const cJSON *routes = cJSON_GetObjectItemCaseSensitive(lsn, "sni_routes"), *x;
    const char *del[1] = {id};
    sqlite3_stmt *s = NULL;
    char *doc;
    int rc = -1, pos;

    doc = store_doc_text(lsn, NULL);
    if (doc == NULL || id == NULL)
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    if (store_prepare(st,
                      create
                          ? "INSERT INTO listeners (id, name, bind, port, protocol, "
                            "default_target_group_id, doc, created_at, updated_at) VALUES "
                            "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)"
                          : "UPDATE listeners SET name = ?2, bind = ?3, port = ?4, protocol = ?5, "
                            "default_target_group_id = ?6, doc = ?7, updated_at = ?8 WHERE id = ?1",
                      &s, err) < 0)
        goto out;
    bind_text(s, 1, id);
    bind_text(s, 2, jstr(lsn, "name"));
    bind_text(s, 3, jstr(lsn, "bind"));
    sqlite3_bind_int64(s, 4, jint(lsn, "port"));
    bind_text(s, 5, jstr(lsn, "protocol"));
    bind_text(s, 6, jstr(lsn, "default_target_group_id"));
    bind_text(s, 7, doc);
    sqlite3_bind_int64(s, 8, now);
    if (sqlite3_step(s) != SQLITE_DONE) {
        store_fail(st, err, "write listener");
        goto out;
    }
    if (sqlite3_changes(st->db) != 1) {
        err_set(err, ERR_NOT_FOUND, "not_found", NULL, "no listener %s", id);
        goto out;
    }
    sqlite3_finalize(s);
    s = NULL;
    if (store_run(st, "DELETE FROM listener_certificates WHERE listener_id = ?1", del, 1, err) <
            0 ||
        store_run(st, "DELETE FROM listener_routes WHERE listener_id = ?1", del, 1, err) < 0)
        goto out;
    if (store_prepare(st,
                      "INSERT INTO listener_certificates (listener_id, position, certificate_id) "
                      "VALUES (?1, ?2, ?3)",
                      &s, err) < 0)
        goto out;
    pos = 0;
    cJSON_ArrayForEach(x, certs)
    {
        sqlite3_reset(s);
        bind_text(s, 1, id);
        sqlite3_bind_int(s, 2, pos++);
        bind_text(s, 3, cJSON_IsString(x) ? x->valuestring : NULL);
        if (sqlite3_step(s) != SQLITE_DONE) {
            store_fail(st, err, "write listener certificate");
            goto out;
        }
    }
    sqlite3_finalize(s);
    s = NULL;
    if (store_prepare(st,
                      "INSERT INTO listener_routes (listener_id, position, server_name, "
                      "target_group_id) VALUES (?1, ?2, ?3, ?4)",
                      &s, err) < 0)
        goto out;
    pos = 0;
    cJSON_ArrayForEach(x, routes)
    {
        sqlite3_reset(s);
        bind_text(s, 1, id);
        sqlite3_bind_int(s, 2, pos++);
        bind_text(s, 3, jstr(x, "server_name"));
        bind_text(s, 4, jstr(x, "target_group_id"));
        if (sqlite3_step(s) != SQLITE_DONE) {
            store_fail(st, err, "write listener route");
            goto out;
        }
    }
    rc = 0;
out:
    sqlite3_finalize(s);
    free(doc);
    return rc;
}

int store_lsn_get(struct store *st, const char *id, cJSON **out, struct err *err)
{
    return store_docs(st, STORE_LSN, id, out, err);
}

int store_lsn_list(struct store *st, cJSON **out, struct err *err)
{
    return store_docs(st, STORE_LSN, NULL, out, err);
}

int store_lsn_delete(struct store *st, const char *id, struct err *err)
{
    const char *args[1] = {id};

    return store_run(st, "DELETE FROM listeners WHERE id = ?1", args, 1, err);
}

int store_lsn_addr_taken(struct store *st, const char *bind, int port, const char *self_id,
                         char id[STORE_ID_MAX], struct err *err)
{
    sqlite3_stmt *s = NULL;
    int rc;

    /* A wildcard bind (0.0.0.0 or ::) takes the port on every address. */
    if (store_prepare(st,
                      "SELECT id FROM listeners WHERE port = ?2 AND id IS NOT ?3 AND "
                      "(bind = ?1 OR bind IN ('0.0.0.0', '::') OR ?1 IN ('0.0.0.0', '::')) "
                      "LIMIT 1",
                      &s, err) < 0)
        return -1;
    bind_text(s, 1, bind);
    sqlite3_bind_int(s, 2, port);
    bind_text(s, 3, self_id);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        snprintf(id, STORE_ID_MAX, "%s", (const char *)sqlite3_column_text(s, 0));
        rc = 1;
    } else {
        rc = rc == SQLITE_DONE ? 0 : store_fail(st, err, "address lookup");
    }
    sqlite3_finalize(s);
    return rc;
}
