/* api_res.c - the resource handlers: certificates, target groups,
 * listeners. They validate against the store and write through it; api.c
 * wraps the writes in the transaction and the publication. */
#include <ctype.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "api_res.h"
#include "cs.h"
#include "err.h"
#include "log.h"
#include "store.h"

#define MAX_TARGETS 1000

char *api_time(int64_t t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;

    gmtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

/* A fresh id "PREFIX" + 16 lower-case hex characters. */
static int api_new_id(const char *prefix, char id[STORE_ID_MAX], struct err *err)
{
    unsigned char rnd[8];

    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return err_set(err, ERR_INTERNAL, "random_failed", NULL, "no randomness");
    snprintf(id, STORE_ID_MAX, "%s%02x%02x%02x%02x%02x%02x%02x%02x", prefix, rnd[0], rnd[1], rnd[2],
             rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    return 0;
}

/* Resolve the path parameter (id or name) of 'kind' or fail with 404. */
static int api_path_id(struct store *st, enum store_kind kind, const char *ref,
                       char id[STORE_ID_MAX], struct err *err)
{
    static const char *const what[] = {"certificate", "target group", "listener"};
    int rc = store_resolve(st, kind, ref, id, err);

    if (rc == 0)
        return err_set(err, ERR_NOT_FOUND, "not_found", NULL, "no %s \"%.64s\"", what[kind], ref);
    return rc < 0 ? -1 : 0;
}

/* Resolve a reference from a request body, or fail with 422. */
static int api_ref_id(struct store *st, enum store_kind kind, const char *ref, const char *field,
                      struct api_vctx *vc, char id[STORE_ID_MAX], struct err *err)
{
    static const char *const what[] = {"certificate", "target group", "listener"};
    int rc = store_resolve(st, kind, ref, id, err);

    if (rc == 0) {
        snprintf(vc->field, sizeof(vc->field), "%s", field);
        return err_set(err, ERR_UNPROCESSABLE, "reference_not_found", vc->field, "no %s \"%.64s\"",
                       what[kind], ref);
    }
    return rc < 0 ? -1 : 0;
}

static int api_check_name(struct store *st, enum store_kind kind, const char *name,
                          const char *self, struct err *err)
{
    int rc = store_name_taken(st, kind, name, self, err);

    if (rc == 1)
        return err_set(err, ERR_CONFLICT, "name_taken", "name", "the name \"%s\" is already used",
                       name);
    return rc;
}

/* Ready a stored document for a response: "id" first (people read these),
 * created_at/updated_at as RFC 3339 text. */
static void api_doc_times(cJSON *doc)
{
    static const char *const keys[] = {"created_at", "updated_at"};
    cJSON *id = cJSON_DetachItemFromObjectCaseSensitive(doc, "id");
    char buf[32];

    if (id != NULL)
        cJSON_InsertItemInArray(doc, 0, id);

    for (int i = 0; i < 2; i++) {
        cJSON *v = cJSON_GetObjectItem(doc, keys[i]);

        if (cJSON_IsNumber(v))
            cJSON_ReplaceItemInObject(
                doc, keys[i],
                cJSON_CreateString(api_time((int64_t)v->valuedouble, buf, sizeof(buf))));
    }
}

/* ---- certificates ---- */

static cJSON *api_cert_json(struct store *st, const struct store_cert *c, struct err *err)
{
    cJSON *o = cJSON_CreateObject(), *meta, *users, *x;
    static const char *const copy[] = {"subject", "sans", "issuer", "serial"};
    char buf[32];
    time_t now = time(NULL);
    int64_t left = c->not_after - (int64_t)now;

    meta = cJSON_Parse(c->meta);
    cJSON_AddStringToObject(o, "id", c->id);
    cJSON_AddStringToObject(o, "name", c->name);
    cJSON_AddNumberToObject(o, "version", (double)c->version);
    for (int i = 0; i < 4; i++) {
        x = cJSON_GetObjectItem(meta, copy[i]);
        cJSON_AddItemToObject(o, copy[i], x ? cJSON_Duplicate(x, 1) : cJSON_CreateNull());
    }
    cJSON_AddStringToObject(o, "not_before", api_time(c->not_before, buf, sizeof(buf)));
    cJSON_AddStringToObject(o, "not_after", api_time(c->not_after, buf, sizeof(buf)));
    /* floor division, as certstore does */
    cJSON_AddNumberToObject(o, "days_to_expiry",
                            (double)(left >= 0 ? left / 86400 : -((-left + 86399) / 86400)));
    x = cJSON_GetObjectItem(meta, "key_algorithm");
    cJSON_AddItemToObject(o, "key_algorithm", x ? cJSON_Duplicate(x, 1) : cJSON_CreateNull());
    x = cJSON_GetObjectItem(meta, "key_bits");
    cJSON_AddItemToObject(o, "key_bits", x ? cJSON_Duplicate(x, 1) : cJSON_CreateNull());
    x = cJSON_GetObjectItem(meta, "fingerprint_sha256");
    cJSON_AddItemToObject(o, "fingerprint_sha256", x ? cJSON_Duplicate(x, 1) : cJSON_CreateNull());
    cJSON_AddStringToObject(o, "status",
                            (int64_t)now < c->not_before  ? "not_yet_valid"
                            : (int64_t)now > c->not_after ? "expired"
                                                          : "issued");
    users = cJSON_AddArrayToObject(o, "in_use_by");
    cJSON_AddBoolToObject(o, "is_ca", c->is_ca);
    cJSON_AddBoolToObject(o, "has_private_key", c->has_key);
    cJSON_AddStringToObject(o, "created_at", api_time(c->created_at, buf, sizeof(buf)));
    cJSON_AddStringToObject(o, "updated_at", api_time(c->updated_at, buf, sizeof(buf)));
    cJSON_Delete(meta);
    if (store_cert_users(st, c->id, users, NULL, err) < 0) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static char *api_meta_text(const struct cs_meta *m)
{
    cJSON *o = cJSON_CreateObject(), *sans;
    char *txt;

    cJSON_AddStringToObject(o, "subject", m->subject ? m->subject : "");
    cJSON_AddStringToObject(o, "issuer", m->issuer ? m->issuer : "");
    cJSON_AddStringToObject(o, "serial", m->serial ? m->serial : "");
    sans = cJSON_AddArrayToObject(o, "sans");
    for (size_t i = 0; i < m->n_dns_names; i++)
        cJSON_AddItemToArray(sans, cJSON_CreateString(m->dns_names[i]));
    for (size_t i = 0; i < m->n_ip_addresses; i++)
        cJSON_AddItemToArray(sans, cJSON_CreateString(m->ip_addresses[i]));
    cJSON_AddStringToObject(o, "key_algorithm", m->key_algorithm);
    cJSON_AddNumberToObject(o, "key_bits", m->key_bits);
    if (m->curve[0])
        cJSON_AddStringToObject(o, "curve", m->curve);
    cJSON_AddStringToObject(o, "fingerprint_sha256", m->fingerprint_sha256);
    cJSON_AddNumberToObject(o, "chain_length", (double)m->chain_length);
    txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return txt;
}

/* Validate the PEM of 'in' with certstore and fill 'c' (id set by the
 * caller): metadata, bodies, sealed key and content hash. */
static int api_cert_import(struct api *a, const struct api_cert_in *in, struct store_cert *c,
                           struct err *err)
{
    struct cs_meta m = {0};
    const char *chain = in->certificate_chain ? in->certificate_chain : "";
    size_t klen = in->private_key ? strlen(in->private_key) : 0;
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *h = NULL;
    int rc = -1;

    if (cs_import(in->certificate, strlen(in->certificate), in->private_key, klen, chain,
                  strlen(chain), time(NULL), &m, err) < 0)
        return -1;
    c->not_before = (int64_t)m.not_before;
    c->not_after = (int64_t)m.not_after;
    c->is_ca = m.is_ca;
    c->has_key = m.has_key;
    c->meta = api_meta_text(&m);
    c->cert_pem = strdup(in->certificate);
    c->chain_pem = strdup(chain);
    if (c->meta == NULL || c->cert_pem == NULL || c->chain_pem == NULL) {
        err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
        goto out;
    }
    /* The content hash is the proxies' cache key: it changes with any byte
     * of certificate, chain or key. */
    h = EVP_MD_CTX_new();
    if (h == NULL || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(h, in->certificate, strlen(in->certificate)) != 1 ||
        EVP_DigestUpdate(h, "\n--\n", 4) != 1 || EVP_DigestUpdate(h, chain, strlen(chain)) != 1 ||
        EVP_DigestUpdate(h, "\n--\n", 4) != 1 ||
        (klen && EVP_DigestUpdate(h, in->private_key, klen) != 1) ||
        EVP_DigestFinal_ex(h, md, &mdlen) != 1) {
        err_set(err, ERR_INTERNAL, "digest_failed", NULL, "cannot hash the certificate");
        goto out;
    }
    for (unsigned i = 0; i < 32; i++)
        snprintf(c->sha256 + 2 * i, 3, "%02x", md[i]);
    if (m.has_key &&
        cs_seal(a->mk, c->id, in->private_key, klen, &c->key_ct, &c->key_ct_len, err) < 0)
        goto out;
    rc = 0;
out:
    EVP_MD_CTX_free(h);
    cs_meta_free(&m);
    return rc;
}

int api_cert_create(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                    struct api_out *o, struct err *err)
{
    struct api_cert_in ci;
    struct store_cert c = {0};
    int64_t now = (int64_t)time(NULL);
    int rc = -1;

    if (api_cert_parse(in, 1, &ci, &r->vc, err) < 0 ||
        api_check_name(st, STORE_CERT, ci.name, NULL, err) != 0 ||
        api_new_id("cert-", c.id, err) < 0)
        return -1;
    if (api_cert_import(a, &ci, &c, err) < 0)
        goto out;
    c.name = strdup(ci.name);
    c.version = 1;
    c.created_at = c.updated_at = now;
    if (c.name == NULL || store_cert_insert(st, &c, err) < 0)
        goto out;
    o->status = 201;
    o->body = api_cert_json(st, &c, err);
    rc = o->body ? 0 : -1;
    log_info("api", "certificate %s (%s) imported, version 1, content sha256 %s", c.id, c.name,
             c.sha256);
out:
    store_cert_clear(&c);
    return rc;
}

/* Parse If-Match: a version number, optionally quoted (an ETag). */
static int api_if_match(struct api_req *r, int64_t *want, struct err *err)
{
    const char *h = r->if_match_set ? r->if_match : NULL;
    char buf[32], *end;
    size_t n;
    long long v;

    *want = -1;
    if (r->if_match_set == 2)
        goto bad;
    if (h == NULL || strcmp(h, "*") == 0)
        return 0;
    n = strlen(h);
    if (n >= 2 && h[0] == '"' && h[n - 1] == '"') {
        h++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(buf))
        goto bad;
    memcpy(buf, h, n);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)buf[i]))
            goto bad;
    v = strtoll(buf, &end, 10);
    if (v <= 0 || v == LLONG_MAX)
        goto bad;
    *want = v;
    return 0;
bad:
    return err_set(err, ERR_INVALID, "invalid_value", "If-Match",
                   "If-Match must be a certificate version number");
}

int api_cert_replace(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                     struct api_out *o, struct err *err)
{
    struct api_cert_in ci;
    struct store_cert old = {0}, c = {0};
    cJSON *users = NULL;
    int64_t want;
    int rc = -1;

    if (api_path_id(st, STORE_CERT, r->p1, c.id, err) < 0 || api_if_match(r, &want, err) < 0 ||
        api_cert_parse(in, 0, &ci, &r->vc, err) < 0)
        return -1;
    if (store_cert_get(st, c.id, 0, &old, err) != 1)
        return err_set(err, ERR_INTERNAL, "store_error", NULL, "certificate vanished");
    if (want >= 0 && want != old.version) {
        err_set(err, ERR_CONFLICT, "version_mismatch", "If-Match",
                "certificate %s is at version %lld, not %lld", old.id, (long long)old.version,
                (long long)want);
        goto out;
    }
    if (ci.name != NULL && api_check_name(st, STORE_CERT, ci.name, c.id, err) != 0)
        goto out;
    if (api_cert_import(a, &ci, &c, err) < 0)
        goto out;
    users = cJSON_CreateArray();
    if (store_cert_users(st, c.id, users, NULL, err) < 0)
        goto out;
    if (!c.has_key && cJSON_GetArraySize(users) > 0) {
        err_set(err, ERR_UNPROCESSABLE, "invalid_combination", "private_key",
                "listeners use this certificate: it needs a private key");
        goto out;
    }
    c.name = strdup(ci.name ? ci.name : old.name);
    c.version = old.version + 1;
    c.created_at = old.created_at;
    c.updated_at = (int64_t)time(NULL);
    if (c.name == NULL || store_cert_update(st, &c, err) < 0)
        goto out;
    o->status = 200;
    o->body = api_cert_json(st, &c, err);
    rc = o->body ? 0 : -1;
    log_info("api", "certificate %s re-imported, version %lld, content sha256 %s", c.id,
             (long long)c.version, c.sha256);
out:
    cJSON_Delete(users);
    store_cert_clear(&old);
    store_cert_clear(&c);
    return rc;
}

int api_cert_remove(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                    struct api_out *o, struct err *err)
{
    char id[STORE_ID_MAX];
    cJSON *users = cJSON_CreateArray();
    int rc = -1;

    (void)a;
    (void)in;
    if (api_path_id(st, STORE_CERT, r->p1, id, err) < 0 ||
        store_cert_users(st, id, users, users, err) < 0)
        goto out;
    if (cJSON_GetArraySize(users) > 0) {
        char *list = cJSON_PrintUnformatted(users);

        err_set(err, ERR_CONFLICT, "certificate_in_use", NULL, "certificate %s is used by %.180s",
                id, list ? list : "others");
        free(list);
        goto out;
    }
    if (store_cert_delete(st, id, err) < 0)
        goto out;
    o->status = 204;
    rc = 0;
out:
    cJSON_Delete(users);
    return rc;
}

struct api_cert_list_ctx {
    struct store *st;
    cJSON *arr;
    long long within; /* -1: all */
    struct err *err;
};

static int api_cert_list_one(void *arg, const struct store_cert *c)
{
    struct api_cert_list_ctx *x = arg;
    cJSON *o;

    if (x->within >= 0 && c->not_after - (int64_t)time(NULL) > (int64_t)x->within * 86400)
        return 0;
    o = api_cert_json(x->st, c, x->err);
    if (o == NULL)
        return -1;
    cJSON_AddItemToArray(x->arr, o);
    return 0;
}

int api_cert_list(struct api *a, struct store *st, struct api_req *r, struct api_out *o,
                  struct err *err)
{
    const char *q =
        MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "expiring_within_days");
    struct api_cert_list_ctx x = {.st = st, .within = -1, .err = err};
    cJSON *body;

    (void)a;
    if (q != NULL) {
        size_t n = strlen(q);

        x.within = 0;
        if (n == 0 || n > 5)
            goto bad;
        for (size_t i = 0; i < n; i++) {
            if (!isdigit((unsigned char)q[i]))
                goto bad;
            x.within = x.within * 10 + (q[i] - '0');
        }
        if (x.within > 36500)
            goto bad;
    }
    body = cJSON_CreateObject();
    x.arr = cJSON_AddArrayToObject(body, "certificates");
    if (store_cert_each(st, api_cert_list_one, &x, err) != 0) {
        cJSON_Delete(body);
        return -1;
    }
    o->status = 200;
    o->body = body;
    return 0;
bad:
    return err_set(err, ERR_INVALID, "invalid_value", "expiring_within_days",
                   "expiring_within_days must be an integer from 0 to 36500");
}

int api_cert_show(struct api *a, struct store *st, struct api_req *r, struct api_out *o,
                  struct err *err)
{
    struct store_cert c;
    char id[STORE_ID_MAX];

    (void)a;
    if (api_path_id(st, STORE_CERT, r->p1, id, err) < 0)
        return -1;
    if (store_cert_get(st, id, 0, &c, err) != 1)
        return err_set(err, ERR_NOT_FOUND, "not_found", NULL, "no certificate \"%.64s\"", r->p1);
    o->status = 200;
    o->body = api_cert_json(st, &c, err);
    store_cert_clear(&c);
    return o->body ? 0 : -1;
}

/* ---- target groups ---- */

static int api_tg_out(struct store *st, const char *id, int status, struct api_out *o,
                      struct err *err)
{
    cJSON *doc = NULL;

    if (store_tg_get(st, id, &doc, err) != 1)
        return err_set(err, ERR_NOT_FOUND, "not_found", NULL, "no target group %s", id);
    api_doc_times(doc);
    o->status = status;
    o->body = doc;
    return 0;
}

/* Give every target of 'tg' an id: the id of the same host:port in 'old'
 * (so health history follows it), else a new one. */
static int api_target_ids(cJSON *targets, const cJSON *old, struct err *err)
{
    cJSON *t;
    const cJSON *u;
    char id[STORE_ID_MAX];

    cJSON_ArrayForEach(t, targets)
    {
        const char *keep = NULL;

        if (cJSON_GetObjectItem(t, "id"))
            continue;
        cJSON_ArrayForEach(u, cJSON_GetObjectItem(old, "targets"))
        {
            if (!strcmp(cJSON_GetObjectItem(u, "host")->valuestring,
                        cJSON_GetObjectItem(t, "host")->valuestring) &&
                cJSON_GetObjectItem(u, "port")->valuedouble ==
                    cJSON_GetObjectItem(t, "port")->valuedouble)
                keep = cJSON_GetObjectItem(u, "id")->valuestring;
        }
        if (keep == NULL) {
            if (api_new_id("tgt-", id, err) < 0)
                return -1;
            keep = id;
        }
        cJSON_AddItemToObject(t, "id", cJSON_CreateString(keep));
    }
    return 0;
}

/* Check and resolve the references of a parsed target group. */
static int api_tg_refs(struct store *st, cJSON *tg, struct api_vctx *vc, struct err *err)
{
    cJSON *tls = cJSON_GetObjectItem(tg, "tls"), *ca;
    char id[STORE_ID_MAX];

    ca = cJSON_IsObject(tls) ? cJSON_GetObjectItem(tls, "ca_certificate_id") : NULL;
    if (!cJSON_IsString(ca))
        return 0;
    if (api_ref_id(st, STORE_CERT, ca->valuestring, "tls.ca_certificate_id", vc, id, err) < 0)
        return -1;
    cJSON_ReplaceItemInObject(tls, "ca_certificate_id", cJSON_CreateString(id));
    return 0;
}

static int api_tg_write(struct store *st, struct api_req *r, const cJSON *in, int create,
                        struct api_out *o, struct err *err)
{
    char id[STORE_ID_MAX];
    cJSON *tg = NULL, *old = NULL;
    int rc = -1;

    if (!create && api_path_id(st, STORE_TG, r->p1, id, err) < 0)
        return -1;
    if (api_tg_parse(in, &tg, &r->vc, err) < 0)
        return -1;
    if (create && api_new_id("tg-", id, err) < 0)
        goto out;
    if (api_check_name(st, STORE_TG, cJSON_GetObjectItem(tg, "name")->valuestring,
                       create ? NULL : id, err) != 0 ||
        api_tg_refs(st, tg, &r->vc, err) < 0)
        goto out;
    if (!create && store_tg_get(st, id, &old, err) < 0)
        goto out;
    if (api_target_ids(cJSON_GetObjectItem(tg, "targets"), old, err) < 0)
        goto out;
    cJSON_AddItemToObject(tg, "id", cJSON_CreateString(id));
    if (store_tg_save(st, tg, create, (int64_t)time(NULL), err) < 0)
        goto out;
    rc = api_tg_out(st, id, create ? 201 : 200, o, err);
out:
    cJSON_Delete(tg);
    cJSON_Delete(old);
    return rc;
}

int api_tg_create(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                  struct api_out *o, struct err *err)
{
    (void)a;
    return api_tg_write(st, r, in, 1, o, err);
}

int api_tg_replace(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                   struct api_out *o, struct err *err)
{
    (void)a;
    return api_tg_write(st, r, in, 0, o, err);
}

int api_tg_remove(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                  struct api_out *o, struct err *err)
{
    char id[STORE_ID_MAX];
    cJSON *users = cJSON_CreateArray();
    int rc = -1;

    (void)a;
    (void)in;
    if (api_path_id(st, STORE_TG, r->p1, id, err) < 0 || store_tg_users(st, id, users, err) < 0)
        goto out;
    if (cJSON_GetArraySize(users) > 0) {
        char *list = cJSON_PrintUnformatted(users);

        err_set(err, ERR_CONFLICT, "target_group_in_use", NULL,
                "target group %s is used by listeners %.180s", id, list ? list : "");
        free(list);
        goto out;
    }
    if (store_tg_delete(st, id, err) < 0)
        goto out;
    o->status = 204;
    rc = 0;
out:
    cJSON_Delete(users);
    return rc;
}

/* Load group p1 for a change of its targets. */
static int api_tg_load(struct store *st, struct api_req *r, char id[STORE_ID_MAX], cJSON **doc,
                       struct err *err)
{
    if (api_path_id(st, STORE_TG, r->p1, id, err) < 0)
        return -1;
    if (store_tg_get(st, id, doc, err) != 1)
        return err_set(err, ERR_INTERNAL, "store_error", NULL, "target group vanished");
    return 0;
}

int api_tg_add_targets(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                       struct api_out *o, struct err *err)
{
    char id[STORE_ID_MAX];
    cJSON *doc = NULL, *add = NULL, *targets, *t, *u;
    int rc = -1;

    (void)a;
    if (api_tg_load(st, r, id, &doc, err) < 0 || api_targets_parse(in, &add, &r->vc, err) < 0)
        goto out;
    targets = cJSON_GetObjectItem(doc, "targets");
    if (cJSON_GetArraySize(targets) + cJSON_GetArraySize(add) > MAX_TARGETS) {
        err_set(err, ERR_UNPROCESSABLE, "too_many_targets", "targets",
                "a target group has at most %d targets", MAX_TARGETS);
        goto out;
    }
    cJSON_ArrayForEach(t, add)
    {
        cJSON_ArrayForEach(u, targets)
        {
            if (!strcmp(cJSON_GetObjectItem(u, "host")->valuestring,
                        cJSON_GetObjectItem(t, "host")->valuestring) &&
                cJSON_GetObjectItem(u, "port")->valuedouble ==
                    cJSON_GetObjectItem(t, "port")->valuedouble) {
                err_set(err, ERR_CONFLICT, "target_exists", NULL,
                        "target %s:%d is already in the group",
                        cJSON_GetObjectItem(t, "host")->valuestring,
                        (int)cJSON_GetObjectItem(t, "port")->valuedouble);
                goto out;
            }
        }
    }
    if (api_target_ids(add, NULL, err) < 0)
        goto out;
    while (cJSON_GetArraySize(add) > 0)
        cJSON_AddItemToArray(targets, cJSON_DetachItemFromArray(add, 0));
    if (store_tg_save(st, doc, 0, (int64_t)time(NULL), err) < 0)
        goto out;
    rc = api_tg_out(st, id, 201, o, err);
out:
    cJSON_Delete(doc);
    cJSON_Delete(add);
    return rc;
}

int api_tg_remove_target(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                         struct api_out *o, struct err *err)
{
    char id[STORE_ID_MAX];
    cJSON *doc = NULL, *targets;
    int rc = -1, i = 0, found = -1;
    const cJSON *t;

    (void)a;
    (void)in;
    if (api_tg_load(st, r, id, &doc, err) < 0)
        goto out;
    targets = cJSON_GetObjectItem(doc, "targets");
    cJSON_ArrayForEach(t, targets)
    {
        if (strcmp(cJSON_GetObjectItem(t, "id")->valuestring, r->p2) == 0)
            found = i;
        i++;
    }
    if (found < 0) {
        err_set(err, ERR_NOT_FOUND, "not_found", NULL, "no target \"%.64s\" in %s", r->p2, id);
        goto out;
    }
    cJSON_DeleteItemFromArray(targets, found);
    if (store_tg_save(st, doc, 0, (int64_t)time(NULL), err) < 0)
        goto out;
    o->status = 204;
    rc = 0;
out:
    cJSON_Delete(doc);
    return rc;
}

int api_tg_list(struct api *a, struct store *st, struct api_req *r, struct api_out *o,
                struct err *err)
{
    cJSON *arr = NULL, *x;

    (void)a;
    (void)r;
    if (store_tg_list(st, &arr, err) < 0)
        return -1;
    cJSON_ArrayForEach(x, arr) api_doc_times(x);
    o->status = 200;
    o->body = cJSON_CreateObject();
    cJSON_AddItemToObject(o->body, "target_groups", arr);
    return 0;
}

int api_tg_show(struct api *a, struct store *st, struct api_req *r, struct api_out *o,
                struct err *err)
{
    char id[STORE_ID_MAX];

    (void)a;
    if (api_path_id(st, STORE_TG, r->p1, id, err) < 0)
        return -1;
    return api_tg_out(st, id, 200, o, err);
}

/* Severity of a reported state: the worst report of any proxy is the
 * target's state, so a target one proxy cannot reach never looks healthy
 * because another proxy reported later. */
static int api_health_rank(const char *state)
{
    if (strcmp(state, "unhealthy") == 0)
        return 3;
    if (strcmp(state, "draining") == 0)
        return 2;
    if (strcmp(state, "initial") == 0)
        return 1;
    return 0; /* healthy */
}

static int api_report_cmp(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;

    return strcmp(cJSON_GetObjectItem(x, "node_id")->valuestring,
                  cJSON_GetObjectItem(y, "node_id")->valuestring);
}

/* Fill 'e' (state, reason, updated_at, reports) from the reports of the
 * connected proxies on target 'tid' ('rep', from snap_pub_health): the
 * worst state (unhealthy > draining > initial > healthy; the latest of
 * equally bad ones) with its reason and time, and every proxy's report
 * by node id. Returns 0 when no proxy reported on 'tid' (nothing added). */
static int api_health_agg(const cJSON *rep, const char *tid, cJSON *e)
{
    const cJSON *x, *worst = NULL, **v;
    size_t n = 0, cap = (size_t)cJSON_GetArraySize(rep);
    cJSON *arr;
    char buf[32];

    if (cap == 0)
        return 0;
    v = calloc(cap, sizeof(*v));
    if (v == NULL)
        return 0;
    cJSON_ArrayForEach(x, rep)
    {
        int r, wr;

        if (strcmp(cJSON_GetObjectItem(x, "target_id")->valuestring, tid) != 0)
            continue;
        v[n++] = x;
        if (worst == NULL) {
            worst = x;
            continue;
        }
        r = api_health_rank(cJSON_GetObjectItem(x, "state")->valuestring);
        wr = api_health_rank(cJSON_GetObjectItem(worst, "state")->valuestring);
        /* seq grows with every report (updated_at has whole seconds). */
        if (r > wr || (r == wr && cJSON_GetObjectItem(x, "seq")->valuedouble >
                                      cJSON_GetObjectItem(worst, "seq")->valuedouble))
            worst = x;
    }
    if (worst == NULL) {
        free(v);
        return 0;
    }
    cJSON_AddItemToObject(e, "state", cJSON_Duplicate(cJSON_GetObjectItem(worst, "state"), 1));
    cJSON_AddItemToObject(e, "reason", cJSON_Duplicate(cJSON_GetObjectItem(worst, "reason"), 1));
    cJSON_AddStringToObject(
        e, "updated_at",
        api_time((int64_t)cJSON_GetObjectItem(worst, "updated_at")->valuedouble, buf, sizeof(buf)));
    qsort(v, n, sizeof(*v), api_report_cmp);
    arr = cJSON_AddArrayToObject(e, "reports");
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();

        cJSON_AddItemToObject(o, "node_id",
                              cJSON_Duplicate(cJSON_GetObjectItem(v[i], "node_id"), 1));
        cJSON_AddItemToObject(o, "state", cJSON_Duplicate(cJSON_GetObjectItem(v[i], "state"), 1));
        cJSON_AddItemToObject(o, "reason", cJSON_Duplicate(cJSON_GetObjectItem(v[i], "reason"), 1));
        cJSON_AddStringToObject(
            o, "updated_at",
            api_time((int64_t)cJSON_GetObjectItem(v[i], "updated_at")->valuedouble, buf,
                     sizeof(buf)));
        cJSON_AddItemToArray(arr, o);
    }
    free(v);
    return 1;
}

/* Per target: the worst report of the connected proxies (reports of a
 * proxy that disconnected are forgotten), each proxy's report under
 * "reports"; without one, "initial" - except for a group without health
 * checks, whose targets are "healthy" as soon as a proxy serves the
 * configuration (the proxy sends every target to them). Targets a proxy
 * still reports as draining after their removal are listed too. */
int api_tg_health(struct api *a, struct store *st, struct api_req *r, struct api_out *o,
                  struct err *err)
{
    char id[STORE_ID_MAX];
    cJSON *doc = NULL, *rep, *arr, *t, *x;
    int no_hc, connected;

    if (api_path_id(st, STORE_TG, r->p1, id, err) < 0)
        return -1;
    if (store_tg_get(st, id, &doc, err) != 1)
        return err_set(err, ERR_NOT_FOUND, "not_found", NULL, "no target group %s", id);
    no_hc = cJSON_IsNull(cJSON_GetObjectItem(doc, "health_check"));
    connected = snap_pub_connected(a->pub);
    rep = snap_pub_health(a->pub, id);
    o->body = cJSON_CreateObject();
    cJSON_AddStringToObject(o->body, "target_group_id", id);
    arr = cJSON_AddArrayToObject(o->body, "targets");
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(doc, "targets"))
    {
        const char *tid = cJSON_GetObjectItem(t, "id")->valuestring;
        cJSON *e = cJSON_CreateObject();

        cJSON_AddStringToObject(e, "target_id", tid);
        cJSON_AddItemToObject(e, "host", cJSON_Duplicate(cJSON_GetObjectItem(t, "host"), 1));
        cJSON_AddItemToObject(e, "port", cJSON_Duplicate(cJSON_GetObjectItem(t, "port"), 1));
        if (!api_health_agg(rep, tid, e)) {
            cJSON_AddStringToObject(e, "state", no_hc && connected ? "healthy" : "initial");
            cJSON_AddStringToObject(e, "reason",
                                    no_hc && connected ? "no health check"
                                    : connected        ? "no report yet"
                                                       : "no data plane connected");
            cJSON_AddNullToObject(e, "updated_at");
            cJSON_AddArrayToObject(e, "reports");
        }
        cJSON_AddItemToArray(arr, e);
    }
    /* Removed targets some proxy still drains (one whose drain ended
     * reported "removed" and its report is gone; the others' stay). */
    cJSON_ArrayForEach(x, rep)
    {
        const char *tid = cJSON_GetObjectItem(x, "target_id")->valuestring;
        int listed = 0;
        cJSON *e;

        if (strcmp(cJSON_GetObjectItem(x, "state")->valuestring, "draining") != 0)
            continue;
        cJSON_ArrayForEach(t, arr)
        {
            if (!strcmp(cJSON_GetObjectItem(t, "target_id")->valuestring, tid))
                listed = 1;
        }
        if (listed)
            continue;
        e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "target_id", tid);
        cJSON_AddNullToObject(e, "host");
        cJSON_AddNullToObject(e, "port");
        api_health_agg(rep, tid, e);
        cJSON_AddItemToArray(arr, e);
    }
    cJSON_Delete(rep);
    cJSON_Delete(doc);
    o->status = 200;
    return 0;
}

/* ---- listeners ---- */

static int api_lsn_refs(struct store *st, cJSON *l, struct api_vctx *vc, struct err *err)
{
    char id[STORE_ID_MAX], path[64];
    cJSON *x, *certs = cJSON_GetObjectItem(l, "certificate_ids");
    int i = 0;

    if (api_ref_id(st, STORE_TG, cJSON_GetObjectItem(l, "default_target_group_id")->valuestring,
                   "default_target_group_id", vc, id, err) < 0)
        return -1;
    cJSON_ReplaceItemInObject(l, "default_target_group_id", cJSON_CreateString(id));
    cJSON_ArrayForEach(x, cJSON_GetObjectItem(l, "sni_routes"))
    {
        snprintf(path, sizeof(path), "sni_routes[%d].target_group_id", i++);
        if (api_ref_id(st, STORE_TG, cJSON_GetObjectItem(x, "target_group_id")->valuestring, path,
                       vc, id, err) < 0)
            return -1;
        cJSON_ReplaceItemInObject(x, "target_group_id", cJSON_CreateString(id));
    }
    i = 0;
    cJSON_ArrayForEach(x, certs)
    {
        struct store_cert c;
        const cJSON *y;

        snprintf(path, sizeof(path), "certificate_ids[%d]", i++);
        if (api_ref_id(st, STORE_CERT, x->valuestring, path, vc, id, err) < 0)
            return -1;
        for (y = certs->child; y != x; y = y->next)
            if (strcmp(y->valuestring, id) == 0) {
                snprintf(vc->field, sizeof(vc->field), "%s", path);
                return err_set(err, ERR_UNPROCESSABLE, "duplicate_value", vc->field,
                               "certificate %s is listed twice", id);
            }
        if (store_cert_get(st, id, 0, &c, err) != 1)
            return -1;
        if (!c.has_key) {
            store_cert_clear(&c);
            snprintf(vc->field, sizeof(vc->field), "%s", path);
            return err_set(err, ERR_UNPROCESSABLE, "invalid_combination", vc->field,
                           "certificate %s has no private key (a CA trust anchor) and cannot "
                           "be served by a listener",
                           id);
        }
        store_cert_clear(&c);
        cJSON_SetValuestring(x, id);
    }
    return 0;
}

static int api_lsn_write(struct store *st, struct api_req *r, const cJSON *in, int create,
                         struct api_out *o, struct err *err)
{
    char id[STORE_ID_MAX], other[STORE_ID_MAX];
    cJSON *l = NULL, *doc = NULL;
    int rc = -1, taken;

    if (!create && api_path_id(st, STORE_LSN, r->p1, id, err) < 0)
        return -1;
    if (api_lsn_parse(in, &l, &r->vc, err) < 0)
        return -1;
    if (create && api_new_id("lsn-", id, err) < 0)
        goto out;
    if (api_check_name(st, STORE_LSN, cJSON_GetObjectItem(l, "name")->valuestring,
                       create ? NULL : id, err) != 0 ||
        api_lsn_refs(st, l, &r->vc, err) < 0)
        goto out;
    taken = store_lsn_addr_taken(st, cJSON_GetObjectItem(l, "bind")->valuestring,
                                 (int)cJSON_GetObjectItem(l, "port")->valuedouble,
                                 create ? NULL : id, other, err);
    if (taken != 0) {
        if (taken > 0)
            err_set(err, ERR_CONFLICT, "port_in_use", "port",
                    "listener %s already uses this address and port", other);
        goto out;
    }
    cJSON_AddItemToObject(l, "id", cJSON_CreateString(id));
    if (store_lsn_save(st, l, create, (int64_t)time(NULL), err) < 0)
        goto out;
    if (store_lsn_get(st, id, &doc, err) != 1)
        goto out;
    api_doc_times(doc);
    o->status = create ? 201 : 200;
    o->body = doc;
    rc = 0;
out:
    cJSON_Delete(l);
    return rc;
}

int api_lsn_create(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                   struct api_out *o, struct err *err)
{
    (void)a;
    return api_lsn_write(st, r, in, 1, o, err);
}

int api_lsn_replace(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                    struct api_out *o, struct err *err)
{
    (void)a;
    return api_lsn_write(st, r, in, 0, o, err);
}

int api_lsn_remove(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                   struct api_out *o, struct err *err)
{
    char id[STORE_ID_MAX];

    (void)a;
    (void)in;
    if (api_path_id(st, STORE_LSN, r->p1, id, err) < 0 || store_lsn_delete(st, id, err) < 0)
        return -1;
    o->status = 204;
    return 0;
}

int api_lsn_list(struct api *a, struct store *st, struct api_req *r, struct api_out *o,
                 struct err *err)
{
    cJSON *arr = NULL, *x;

    (void)a;
    (void)r;
    if (store_lsn_list(st, &arr, err) < 0)
        return -1;
    cJSON_ArrayForEach(x, arr) api_doc_times(x);
    o->status = 200;
    o->body = cJSON_CreateObject();
    cJSON_AddItemToObject(o->body, "listeners", arr);
    return 0;
}

int api_lsn_show(struct api *a, struct store *st, struct api_req *r, struct api_out *o,
                 struct err *err)
{
    char id[STORE_ID_MAX];
    cJSON *doc = NULL;

    (void)a;
    if (api_path_id(st, STORE_LSN, r->p1, id, err) < 0)
        return -1;
    if (store_lsn_get(st, id, &doc, err) != 1)
        return err_set(err, ERR_NOT_FOUND, "not_found", NULL, "no listener \"%.64s\"", r->p1);
    api_doc_times(doc);
    o->status = 200;
    o->body = doc;
    return 0;
}
