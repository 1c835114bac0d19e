/* dp_config.c - a `snapshot` frame becomes an immutable runtime
 * configuration: every SSL_CTX built or reused, every listener socket bound
 * or reused, every name map sorted, before any worker sees it. */
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "conn.h"
#include "cs.h"
#include "dp.h"
#include "err.h"
#include "log.h"
#include "lsn.h"
#include "net.h"
#include "sni.h"
#include "tg.h"

/* A snapshot's certificate reference. */
struct dp_certref {
    const char *id;
    const char *sha256;
    int version;
};

/* Build state: the new config plus lookup tables that die with the build. */
struct dp_build {
    struct dp *dp;
    struct dp_config *cfg;
    struct dp_config *old;
    struct dp_certref *refs; /* sorted by id; refs[i] is served by cfg->slots[i] */
    size_t n_refs;
    /* The new groups sorted by id, for the listeners' lookups. */
    struct tg **tg_idx;
    /* Open-addressing tables of listener indexes by address (SIZE_MAX:
     * empty): the new listeners so far, and the old configuration's. 1,000
     * listeners must not cost 10^6 address compares per build. */
    size_t *lsn_tab, *old_tab;
    size_t tab_mask, old_mask;
};

/* --- JSON helpers: absent members take the documented defaults --- */

/* 'a' if it is an array, else NULL (cJSON_ArrayForEach walks nothing). */
static const cJSON *dp_arr(const cJSON *a)
{
    return cJSON_IsArray(a) ? a : NULL;
}

static const char *dp_json_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Integer member 'k' in [lo, hi], or 'def' when absent or null. */
static int dp_json_int(const cJSON *o, const char *k, long lo, long hi, long def, long *out,
                       struct err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    if (v == NULL || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long)v->valuedouble ||
        v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return err_set(err, ERR_INVALID, "bad_snapshot", k,
                       "snapshot: '%s' is not an integer in %ld..%ld", k, lo, hi);
    *out = (long)v->valuedouble;
    return 0;
}

static int dp_copy_id(char *dst, size_t cap, const char *src, const char *what, struct err *err)
{
    if (src == NULL || src[0] == '\0' || strlen(src) >= cap)
        return err_set(err, ERR_INVALID, "bad_snapshot", what, "snapshot: bad or missing %s", what);
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

static int dp_ref_cmp(const void *a, const void *b)
{
    return strcmp(((const struct dp_certref *)a)->id, ((const struct dp_certref *)b)->id);
}

/* The snapshot's reference for certificate 'id' (refs are sorted by id:
 * 10,000 certificates on one listener must not cost 10^8 compares). */
static struct dp_certref *dp_ref_find(const struct dp_build *b, const char *id)
{
    struct dp_certref key = {.id = id};

    if (id == NULL || b->n_refs == 0)
        return NULL;
    return bsearch(&key, b->refs, b->n_refs, sizeof(*b->refs), dp_ref_cmp);
}

/* --- certificates: parsed once per version, served through slots --- */

struct dp_cert *dp_cert_ref(struct dp_cert *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void dp_cert_unref(struct dp_cert *c)
{
    if (c == NULL || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    cs_served_clear(&c->s);
    free(c->names); /* one block: the pointers, then the strings */
    free(c);
}

/* Set c->names to copies of n strings in one block: one malloc per name
 * for 10,000 certificates is too many. */
static int dp_names_set(struct dp_cert *c, const char *const *src, const size_t *lens, size_t n)
{
    size_t total = n * sizeof(char *);
    char **nn, *p;

    for (size_t i = 0; i < n; i++)
        total += lens[i] + 1;
    nn = malloc(total ? total : 1);
    if (nn == NULL)
        return -1;
    p = (char *)(nn + n);
    for (size_t i = 0; i < n; i++) {
        nn[i] = p;
        memcpy(p, src[i], lens[i]);
        p[lens[i]] = '\0';
        p += lens[i] + 1;
    }
    c->names = nn;
    c->n_names = n;
    return 0;
}

/* The DNS names a certificate answers for: its subjectAltName DNS entries,
 * or its CN when it has none (as clients used to). */
static int dp_cert_names(struct dp_cert *c)
{
    X509 *x = c->s.leaf;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int rc = 0;

    if (gens != NULL) {
        int num = sk_GENERAL_NAME_num(gens);
        const char **src = calloc((size_t)num + 1, sizeof(*src));
        size_t *lens = calloc((size_t)num + 1, sizeof(*lens)), n = 0;

        if (src == NULL || lens == NULL) {
            rc = -1;
        } else {
            for (int i = 0; i < num; i++) {
                const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                if (g->type == GEN_DNS) {
                    src[n] = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
                    lens[n++] = (size_t)ASN1_STRING_length(g->d.dNSName);
                }
            }
            rc = dp_names_set(c, src, lens, n);
        }
        free(src);
        free(lens);
        GENERAL_NAMES_free(gens);
        return rc;
    }
    {
        char cn[256];
        int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
        if (n > 0) {
            const char *src[1] = {cn};
            size_t lens[1] = {(size_t)n};

            rc = dp_names_set(c, src, lens, 1);
        }
    }
    return rc;
}

/* True when two versions answer for the same names in the same order. */
static int dp_names_equal(const struct dp_cert *a, const struct dp_cert *b)
{
    if (a->n_names != b->n_names)
        return 0;
    for (size_t i = 0; i < a->n_names; i++)
        if (strcmp(a->names[i], b->names[i]) != 0)
            return 0;
    return 1;
}

/* The parsed certificate (sha256 'sha', certificate 'id'), from the body
 * cache; parsed and checked on first use. Returns a new ref or NULL with
 * 'err' set. */
static struct dp_cert *dp_cert_load(struct dp *dp, const char *id, const char *sha, struct err *err)
{
    struct dp_certbody *body = dp_cert_find(dp, sha);
    struct dp_cert *c;
    struct err ce = {0};

    if (body == NULL) {
        err_set(err, ERR_INVALID, "certificate_missing", "certificates",
                "certificate %s (sha256 %.16s...) was referenced but never sent", id, sha);
        return NULL;
    }
    if (body->served != NULL)
        return dp_cert_ref(body->served);
    if (body->key == NULL) {
        err_set(err, ERR_INVALID, "certificate_without_key", "certificate_ids",
                "certificate %s has no private key (CA only) and cannot serve a listener", id);
        return NULL;
    }
    if (dp->check_ctx == NULL && cs_server_ctx_new(CS_POLICY_COMPAT, &dp->check_ctx, &ce) < 0) {
        err_set(err, ERR_INTERNAL, ce.code, NULL, "%s", ce.message);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
        return NULL;
    }
    atomic_init(&c->refs, 1);
    snprintf(c->sha256, sizeof(c->sha256), "%s", body->sha256);
    snprintf(c->id, sizeof(c->id), "%s", body->id);
    c->version = body->version;
    if (cs_served_load(body->cert, body->cert_len, body->chain, body->chain_len, body->key,
                       body->key_len, dp->check_ctx, &c->s, &ce) < 0) {
        /* Name the certificate: the store's message does not. */
        err_set(err, ERR_INVALID, ce.code ? ce.code : "certificate_invalid", "certificates",
                "certificate %s: %s", id, ce.message);
        dp_cert_unref(c);
        return NULL;
    }
    if (dp_cert_names(c) < 0) {
        dp_cert_unref(c);
        err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
        return NULL;
    }
    /* The key now lives in the EVP_PKEY only, and 10,000 certificates
     * need not keep their text twice (about 1 KiB each). */
    cs_secret_free(body->key, body->key_len);
    body->key = NULL;
    body->key_len = 0;
    free(body->cert);
    free(body->chain);
    body->cert = body->chain = NULL;
    body->cert_len = body->chain_len = 0;
    body->served = c;
    log_info("dp", "certificate %s version %d sha256 %.16s... loaded", c->id, c->version,
             c->sha256);
    return dp_cert_ref(c);
}

/* The server SSL_CTX of a policy, created on first use (one ref for the
 * caller). Certificates are set per handshake by conn_client_hello_cb(). */
static SSL_CTX *dp_srv_ctx(struct dp *dp, enum cs_policy pol, struct err *err)
{
    struct err ce = {0};

    if ((unsigned)pol >= 3) {
        err_set(err, ERR_INVALID, "bad_snapshot", "ssl_policy", "unknown TLS policy %d", (int)pol);
        return NULL;
    }
    if (dp->srv_ctx[pol] == NULL) {
        if (cs_server_ctx_new(pol, &dp->srv_ctx[pol], &ce) < 0) {
            err_set(err, ERR_INTERNAL, ce.code, NULL, "%s", ce.message);
            return NULL;
        }
        SSL_CTX_set_client_hello_cb(dp->srv_ctx[pol], conn_client_hello_cb, NULL);
    }
    SSL_CTX_up_ref(dp->srv_ctx[pol]);
    return dp->srv_ctx[pol];
}

/* The slot serving reference 'ref' in the new configuration, its
 * certificate loaded. */
static struct dp_slot *dp_slot_get(struct dp_build *b, const struct dp_certref *ref,
                                   struct err *err)
{
    struct dp_slot *slot = &b->cfg->slots[ref - b->refs];
    struct dp_cert *c;

    if (atomic_load_explicit(&slot->cert, memory_order_relaxed) != NULL)
        return slot;
    c = dp_cert_load(b->dp, ref->id, ref->sha256, err);
    if (c == NULL)
        return NULL;
    atomic_store_explicit(&slot->cert, c, memory_order_relaxed);
    b->cfg->n_served++;
    return slot;
}

static int dp_slot_cmp(const void *key, const void *e)
{
    return strcmp(key, ((const struct dp_slot *)e)->id);
}

int dp_config_swap(struct dp *dp, struct dp_config *cfg, const struct dp_swap *sw, size_t n,
                   int64_t version, struct err *err)
{
    struct dp_cert **nc = NULL;
    struct dp_slot **slots = NULL;
    int rc = 0;
    size_t i, got = 0;

    if (n == 0) {
        /* A certificate no listener references: only the version moves. */
        atomic_store_explicit(&cfg->version, version, memory_order_release);
        return 1;
    }
    nc = calloc(n, sizeof(*nc));
    slots = calloc(n, sizeof(*slots));
    if (nc == NULL || slots == NULL)
        goto done; /* the rebuild will report it */
    for (i = 0; i < n; i++) {
        struct dp_cert *old;

        slots[i] = bsearch(sw[i].id, cfg->slots, cfg->n_slots, sizeof(*cfg->slots), dp_slot_cmp);
        old = slots[i] ? atomic_load_explicit(&slots[i]->cert, memory_order_relaxed) : NULL;
        /* Not served by a listener (a CA for re-encryption, say): the
         * groups' client contexts must be rebuilt. */
        if (old == NULL)
            goto done;
        for (size_t g = 0; g < cfg->n_tgs; g++)
            if (strcmp(cfg->tgs[g].ca_sha256, old->sha256) == 0)
                goto done;
        nc[i] = dp_cert_load(dp, sw[i].id, sw[i].sha256, err);
        if (nc[i] == NULL) {
            rc = -1;
            goto done;
        }
        got = i + 1;
        /* New names change the listeners' maps. */
        if (!dp_names_equal(old, nc[i]))
            goto done;
    }
    if (dp->cap_retired < dp->n_retired + n) {
        size_t cap = dp->n_retired + n + 16;
        struct dp_cert **na = realloc(dp->retired, cap * sizeof(*na));

        if (na == NULL)
            goto done;
        dp->retired = na;
        dp->cap_retired = cap;
    }
    /* Nothing can fail from here: swap them all. */
    for (i = 0; i < n; i++) {
        dp->retired[dp->n_retired++] =
            atomic_exchange_explicit(&slots[i]->cert, nc[i], memory_order_acq_rel);
        nc[i] = NULL;
    }
    atomic_store_explicit(&cfg->version, version, memory_order_release);
    rc = 1;
done:
    for (i = 0; nc != NULL && i < got; i++)
        dp_cert_unref(nc[i]);
    free(nc);
    free(slots);
    return rc;
}

void dp_config_release_retired(struct dp *dp)
{
    for (size_t i = 0; i < dp->n_retired; i++)
        dp_cert_unref(dp->retired[i]);
    dp->n_retired = 0;
}

/* --- target groups --- */

/* How long a name's address is reused by later configurations. getaddrinfo
 * blocks the main thread (health checks, the control channel), so a
 * rotation or an unrelated change must not pay it for every DNS target. */
#define DP_RESOLVE_REUSE_MS 60000

/* The same target (group, id, host, port) in the previous configuration,
 * resolved recently enough to reuse, or NULL. */
static const struct tg_target *dp_resolved_before(const struct dp_build *b, const char *tg_id,
                                                  const struct tg_target *t)
{
    int64_t now = dp_now_ms();

    for (size_t g = 0; b->old != NULL && g < b->old->n_tgs; g++) {
        const struct tg *o = &b->old->tgs[g];

        if (strcmp(o->id, tg_id) != 0)
            continue;
        for (size_t i = 0; i < o->n_targets; i++) {
            const struct tg_target *ot = &o->targets[i];

            if (ot->resolved && ot->port == t->port && strcmp(ot->id, t->id) == 0 &&
                strcmp(ot->host, t->host) == 0 && now - ot->resolved_at < DP_RESOLVE_REUSE_MS)
                return ot;
        }
        return NULL;
    }
    return NULL;
}

static int dp_resolve(const struct dp_build *b, const char *tg_id, struct tg_target *t)
{
    struct addrinfo hints = {0}, *res = NULL;
    const struct tg_target *prev;
    char port[8];

    if (net_make_addr(t->host, t->port, &t->addr, &t->addrlen, NULL) == 0) {
        t->resolved = 1;
        return 0;
    }
    if ((prev = dp_resolved_before(b, tg_id, t)) != NULL) {
        memcpy(&t->addr, &prev->addr, sizeof(t->addr));
        t->addrlen = prev->addrlen;
        t->resolved_at = prev->resolved_at;
        t->resolved = 1;
        return 0;
    }
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_family = AF_UNSPEC;
    snprintf(port, sizeof(port), "%d", t->port);
    if (getaddrinfo(t->host, port, &hints, &res) != 0 || res == NULL) {
        log_warn("dp", "target %s: cannot resolve '%s'; it takes no connections", t->id, t->host);
        return 0;
    }
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    t->addrlen = res->ai_addrlen;
    t->resolved_at = dp_now_ms();
    t->resolved = 1;
    freeaddrinfo(res);
    return 0;
}

/* The client SSL_CTX for re-encryption: shared with any group, new or old,
 * that has the same verification settings. */
static int dp_cli_ctx(struct dp_build *b, struct tg *tg, const char *ca_id, struct err *err)
{
    char *pem_copy = NULL;
    const char *ca_pem = NULL;
    size_t ca_len = 0;

    for (size_t i = 0; i < b->cfg->n_tgs; i++) {
        struct tg *o = &b->cfg->tgs[i];
        if (o->cli_ctx && o->verify == tg->verify && strcmp(o->ca_sha256, tg->ca_sha256) == 0) {
            SSL_CTX_up_ref(o->cli_ctx);
            tg->cli_ctx = o->cli_ctx;
            return 0;
        }
    }
    for (size_t i = 0; b->old != NULL && i < b->old->n_tgs; i++) {
        struct tg *o = &b->old->tgs[i];
        if (o->cli_ctx && o->verify == tg->verify && strcmp(o->ca_sha256, tg->ca_sha256) == 0) {
            SSL_CTX_up_ref(o->cli_ctx);
            tg->cli_ctx = o->cli_ctx;
            return 0;
        }
    }
    if (tg->ca_sha256[0] != '\0') {
        const struct dp_certbody *body = dp_cert_find(b->dp, tg->ca_sha256);
        if (body == NULL)
            return err_set(err, ERR_INVALID, "certificate_missing", "ca_certificate_id",
                           "target group %s: CA certificate %s was never sent", tg->id, ca_id);
        ca_pem = body->cert;
        ca_len = body->cert_len;
        /* A certificate a listener also serves keeps no text once parsed:
         * write its PEM again (rare: a CA that is also a server
         * certificate). */
        if (ca_pem == NULL && body->served != NULL) {
            BIO *m = BIO_new(BIO_s_mem());
            char *p = NULL;
            long n = 0;

            /* The BIO's bytes are not NUL-terminated: copy exactly n. */
            if (m == NULL || PEM_write_bio_X509(m, body->served->s.leaf) != 1 ||
                (n = BIO_get_mem_data(m, &p)) <= 0 || (pem_copy = malloc((size_t)n + 1)) == NULL) {
                BIO_free(m);
                return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
            }
            memcpy(pem_copy, p, (size_t)n);
            pem_copy[n] = '\0';
            BIO_free(m);
            ca_pem = pem_copy;
            ca_len = (size_t)n;
        }
    }
    {
        struct err ce = {0};
        int rc = cs_client_ctx_build(tg->verify, ca_pem, ca_len, &tg->cli_ctx, &ce);

        free(pem_copy);
        if (rc < 0)
            return err_set(err, ERR_INVALID, ce.code ? ce.code : "tls_context_failed", "tls",
                           "target group %s: %s", tg->id, ce.message);
    }
    return 0;
}

static int dp_build_tg(struct dp_build *b, const cJSON *j, struct tg *tg, struct err *err)
{
    const cJSON *targets, *t, *hc, *tls;
    const char *s;
    long v;
    size_t i = 0;

    if (!cJSON_IsObject(j))
        return err_set(err, ERR_INVALID, "bad_snapshot", "target_groups",
                       "snapshot: a target group is not an object");
    if (dp_copy_id(tg->id, sizeof(tg->id), dp_json_str(j, "id"), "target group id", err) < 0)
        return -1;
    s = dp_json_str(j, "name");
    snprintf(tg->name, sizeof(tg->name), "%s", s ? s : tg->id);
    s = dp_json_str(j, "protocol");
    if (s == NULL || strcmp(s, "tcp") == 0)
        tg->proto = TG_PROTO_TCP;
    else if (strcmp(s, "tls") == 0)
        tg->proto = TG_PROTO_TLS;
    else
        return err_set(err, ERR_INVALID, "bad_snapshot", "protocol",
                       "target group %s: unknown protocol '%.16s'", tg->id, s);
    s = dp_json_str(j, "algorithm");
    tg->algo =
        (s != NULL && strcmp(s, "least_conn") == 0) ? TG_ALGO_LEAST_CONN : TG_ALGO_ROUND_ROBIN;
    if (dp_json_int(j, "deregistration_delay_s", 0, 3600, 300, &v, err) < 0)
        return -1;
    tg->dereg_delay_s = (int)v;
    s = dp_json_str(j, "proxy_protocol");
    tg->proxy_v2 = s != NULL && strcmp(s, "v2") == 0;
    hc = cJSON_GetObjectItemCaseSensitive(j, "health_check");
    if (cJSON_IsObject(hc)) {
        tg->hc.enabled = 1;
        s = dp_json_str(hc, "protocol");
        tg->hc.protocol = s == NULL                ? 0
                          : strcmp(s, "http") == 0 ? 1
                          : strcmp(s, "tls") == 0  ? 2
                                                   : 0;
        s = dp_json_str(hc, "path");
        snprintf(tg->hc.path, sizeof(tg->hc.path), "%s", s ? s : "/");
        if (dp_json_int(hc, "port", 0, 65535, 0, &v, err) < 0)
            return -1;
        tg->hc.port = (int)v;
        if (dp_json_int(hc, "interval_ms", 100, 300000, 5000, &v, err) < 0)
            return -1;
        tg->hc.interval_ms = (int)v;
        if (dp_json_int(hc, "timeout_ms", 50, 60000, 2000, &v, err) < 0)
            return -1;
        tg->hc.timeout_ms = (int)v;
        if (dp_json_int(hc, "healthy_threshold", 1, 10, 3, &v, err) < 0)
            return -1;
        tg->hc.healthy_threshold = (int)v;
        if (dp_json_int(hc, "unhealthy_threshold", 1, 10, 3, &v, err) < 0)
            return -1;
        tg->hc.unhealthy_threshold = (int)v;
        tg->hc.fail_open = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(hc, "fail_open"));
        s = dp_json_str(hc, "proxy_protocol");
        tg->hc.proxy_v2 = s != NULL && strcmp(s, "v2") == 0;
    }
    targets = cJSON_GetObjectItemCaseSensitive(j, "targets");
    if (targets != NULL && !cJSON_IsArray(targets))
        return err_set(err, ERR_INVALID, "bad_snapshot", "targets",
                       "target group %s: targets is not an array", tg->id);
    tg->n_targets = (size_t)cJSON_GetArraySize(targets);
    if (tg->n_targets > 1000)
        return err_set(err, ERR_INVALID, "bad_snapshot", "targets",
                       "target group %s: more than 1000 targets", tg->id);
    tg->targets = calloc(tg->n_targets ? tg->n_targets : 1, sizeof(*tg->targets));
    tg->eligible = calloc(tg->n_targets ? tg->n_targets : 1, sizeof(*tg->eligible));
    if (tg->targets == NULL || tg->eligible == NULL)
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    cJSON_ArrayForEach(t, targets)
    {
        struct tg_target *tt = &tg->targets[i++];

        if (!cJSON_IsObject(t))
            return err_set(err, ERR_INVALID, "bad_snapshot", "targets",
                           "target group %s: a target is not an object", tg->id);
        if (dp_copy_id(tt->id, sizeof(tt->id), dp_json_str(t, "id"), "target id", err) < 0 ||
            dp_copy_id(tt->host, sizeof(tt->host), dp_json_str(t, "host"), "target host", err) < 0)
            return -1;
        if (dp_json_int(t, "port", 1, 65535, 0, &v, err) < 0)
            return -1;
        if (v == 0)
            return err_set(err, ERR_INVALID, "bad_snapshot", "port", "target %s: missing port",
                           tt->id);
        tt->port = (int)v;
        if (dp_json_int(t, "weight", 0, 1000, 1, &v, err) < 0)
            return -1;
        tt->weight = (int)v;
        tt->st = dp_stats_get(b->dp, tg->id, tt->id);
        if (tt->st == NULL)
            return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
        dp_resolve(b, tg->id, tt);
        if (tt->weight > 0 && tt->resolved)
            tg->eligible[tg->n_eligible++] = (size_t)(tt - tg->targets);
    }
    tls = cJSON_GetObjectItemCaseSensitive(j, "tls");
    if (tg->proto == TG_PROTO_TLS) {
        const cJSON *verify =
            cJSON_IsObject(tls) ? cJSON_GetObjectItemCaseSensitive(tls, "verify") : NULL;
        const char *ca_id = cJSON_IsObject(tls) ? dp_json_str(tls, "ca_certificate_id") : NULL;

        tg->verify = !cJSON_IsFalse(verify);
        s = cJSON_IsObject(tls) ? dp_json_str(tls, "server_name") : NULL;
        if (s != NULL && s[0] != '\0') {
            tg->server_name = strdup(s);
            if (tg->server_name == NULL)
                return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
        }
        if (ca_id != NULL) {
            const struct dp_certref *ref = dp_ref_find(b, ca_id);
            if (ref == NULL)
                return err_set(err, ERR_INVALID, "bad_snapshot", "ca_certificate_id",
                               "target group %s: unknown CA certificate %s", tg->id, ca_id);
            snprintf(tg->ca_sha256, sizeof(tg->ca_sha256), "%s", ref->sha256);
        }
        if (dp_cli_ctx(b, tg, ca_id, err) < 0)
            return -1;
    }
    return tg_prepare(tg, b->cfg->nworkers, err);
}

static int dp_tgp_cmp(const void *a, const void *b)
{
    return strcmp((*(struct tg *const *)a)->id, (*(struct tg *const *)b)->id);
}

static int dp_tg_key_cmp(const void *key, const void *e)
{
    return strcmp(key, (*(struct tg *const *)e)->id);
}

static struct tg *dp_tg_find(const struct dp_build *b, const char *id)
{
    struct tg **p;

    if (id == NULL || b->cfg->n_tgs == 0)
        return NULL;
    p = bsearch(id, b->tg_idx, b->cfg->n_tgs, sizeof(*b->tg_idx), dp_tg_key_cmp);
    return p ? *p : NULL;
}

/* --- listeners --- */

static int dp_same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return 0;
}

static size_t dp_addr_hash(const struct sockaddr_storage *a)
{
    size_t h = a->ss_family;

    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a;
        h = h * 31 + x->sin_port;
        h = h * 31 + x->sin_addr.s_addr;
    } else if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a;
        h = h * 31 + x->sin6_port;
        for (size_t i = 0; i < sizeof(x->sin6_addr); i++)
            h = h * 31 + x->sin6_addr.s6_addr[i];
    }
    return h ^ (h >> 16);
}

/* A table of at least twice 'n' slots, all empty. */
static size_t *dp_tab_new(size_t n, size_t *mask)
{
    size_t cap = 16, *t;

    while (cap < 2 * n)
        cap *= 2;
    t = malloc(cap * sizeof(*t));
    if (t == NULL)
        return NULL;
    memset(t, 0xff, cap * sizeof(*t));
    *mask = cap - 1;
    return t;
}

/* The first listener of 'lsns' in 'tab' with address 'ss', or SIZE_MAX;
 * '*slot' is where it would go. */
static size_t dp_tab_find(const size_t *tab, size_t mask, const struct lsn_conf *lsns,
                          const struct sockaddr_storage *ss, size_t *slot)
{
    size_t i = dp_addr_hash(ss) & mask;

    for (; tab[i] != SIZE_MAX; i = (i + 1) & mask)
        if (dp_same_addr(&lsns[tab[i]].socks->addr, ss))
            break;
    if (slot != NULL)
        *slot = i;
    return tab[i];
}

static int dp_build_lsn(struct dp_build *b, const cJSON *j, struct lsn_conf *lc, size_t idx,
                        struct err *err)
{
    struct dp_config *cfg = b->cfg;
    struct sockaddr_storage ss;
    socklen_t sslen;
    const cJSON *arr, *it;
    const char *s, *bind;
    size_t lsn_slot;
    long v;

    if (!cJSON_IsObject(j))
        return err_set(err, ERR_INVALID, "bad_snapshot", "listeners",
                       "snapshot: a listener is not an object");
    if (dp_copy_id(lc->id, sizeof(lc->id), dp_json_str(j, "id"), "listener id", err) < 0)
        return -1;
    s = dp_json_str(j, "name");
    snprintf(lc->name, sizeof(lc->name), "%s", s ? s : lc->id);
    bind = dp_json_str(j, "bind");
    if (bind == NULL)
        bind = "0.0.0.0";
    if (dp_json_int(j, "port", 1, 65535, 0, &v, err) < 0)
        return -1;
    if (v == 0)
        return err_set(err, ERR_INVALID, "bad_snapshot", "port", "listener %s: missing port",
                       lc->id);
    if (net_make_addr(bind, (int)v, &ss, &sslen, err) < 0)
        return -1;
    net_addr_str((struct sockaddr *)&ss, lc->addr_str, sizeof(lc->addr_str));
    s = dp_json_str(j, "protocol");
    if (s == NULL || strcmp(s, "tcp") == 0)
        lc->proto = LSN_PROTO_TCP;
    else if (strcmp(s, "tls") == 0)
        lc->proto = LSN_PROTO_TLS;
    else
        return err_set(err, ERR_INVALID, "bad_snapshot", "protocol",
                       "listener %s: unknown protocol '%.16s'", lc->id, s);
    lc->default_tg = dp_tg_find(b, dp_json_str(j, "default_target_group_id"));
    if (lc->default_tg == NULL)
        return err_set(err, ERR_INVALID, "bad_snapshot", "default_target_group_id",
                       "listener %s: unknown default target group", lc->id);
    if (dp_json_int(j, "max_connections", 1, 1000000, 10000, &v, err) < 0)
        return -1;
    lc->max_conns = (unsigned)v;
    if (dp_json_int(j, "handshake_timeout_ms", 1, 300000, 10000, &v, err) < 0)
        return -1;
    lc->handshake_timeout = (double)v / 1000.0;
    if (dp_json_int(j, "connect_timeout_ms", 1, 60000, 5000, &v, err) < 0)
        return -1;
    lc->connect_timeout = (double)v / 1000.0;
    if (dp_json_int(j, "idle_timeout_ms", 1, 86400000, 300000, &v, err) < 0)
        return -1;
    lc->idle_timeout = (double)v / 1000.0;
    s = dp_json_str(j, "ssl_policy");
    lc->policy = CS_POLICY_INTERMEDIATE;
    if (s != NULL && cs_policy_parse(s, &lc->policy) < 0)
        return err_set(err, ERR_INVALID, "bad_snapshot", "ssl_policy",
                       "listener %s: unknown ssl_policy '%.32s'", lc->id, s);

    arr = cJSON_GetObjectItemCaseSensitive(j, "sni_routes");
    cJSON_ArrayForEach(it, dp_arr(arr))
    {
        const char *name = dp_json_str(it, "server_name");
        struct tg *tg = dp_tg_find(b, dp_json_str(it, "target_group_id"));

        if (name == NULL || tg == NULL)
            return err_set(err, ERR_INVALID, "bad_snapshot", "sni_routes",
                           "listener %s: bad SNI route", lc->id);
        if (sni_map_add(&lc->routes, name, tg, err) < 0)
            return -1;
    }
    sni_map_seal(&lc->routes);

    if (lc->proto == LSN_PROTO_TLS) {
        size_t n = 0;

        lc->ctx = dp_srv_ctx(b->dp, lc->policy, err);
        if (lc->ctx == NULL)
            return -1;
        SHA256((const unsigned char *)lc->id, strlen(lc->id), lc->sid_ctx);
        arr = cJSON_GetObjectItemCaseSensitive(j, "certificate_ids");
        cJSON_ArrayForEach(it, dp_arr(arr))
        {
            struct dp_certref *ref;
            struct dp_slot *slot;
            struct dp_cert *c;

            if (!cJSON_IsString(it) || (ref = dp_ref_find(b, it->valuestring)) == NULL)
                return err_set(err, ERR_INVALID, "bad_snapshot", "certificate_ids",
                               "listener %s: unknown certificate", lc->id);
            slot = dp_slot_get(b, ref, err);
            if (slot == NULL)
                return -1;
            if (n++ == 0)
                lc->default_slot = slot;
            c = atomic_load_explicit(&slot->cert, memory_order_relaxed);
            for (size_t k = 0; k < c->n_names; k++) {
                struct err ign = {0};
                /* A certificate name we cannot map (odd characters) still
                 * serves as default or via another name. */
                (void)sni_map_add(&lc->certs, c->names[k], slot, &ign);
            }
        }
        if (n == 0)
            return err_set(err, ERR_INVALID, "bad_snapshot", "certificate_ids",
                           "tls listener %s has no certificate", lc->id);
        sni_map_seal(&lc->certs);
        arr = cJSON_GetObjectItemCaseSensitive(j, "alpn");
        if (cJSON_IsArray(arr) && cJSON_GetArraySize(arr) > 0) {
            const char *protos[8];
            size_t np = 0;

            cJSON_ArrayForEach(it, arr)
            {
                if (!cJSON_IsString(it) || np == 8)
                    return err_set(err, ERR_INVALID, "bad_snapshot", "alpn",
                                   "listener %s: bad alpn list", lc->id);
                protos[np++] = it->valuestring;
            }
            if (cs_alpn_encode(protos, np, &lc->alpn, &lc->alpn_len, err) < 0)
                return -1;
        }
    }

    /* Sockets: an unchanged (bind, port) keeps its sockets. */
    {
        size_t slot, i = dp_tab_find(b->lsn_tab, b->tab_mask, cfg->lsns, &ss, &slot);

        if (i != SIZE_MAX)
            return err_set(err, ERR_CONFLICT, "port_in_use", "port",
                           "listeners %s and %s both use %s", cfg->lsns[i].id, lc->id,
                           lc->addr_str);
        /* Registered once its sockets exist (the table reads them). */
        lsn_slot = slot;
    }
    if (b->old_tab != NULL) {
        /* The old table holds only listeners whose sockets are open. */
        size_t i = dp_tab_find(b->old_tab, b->old_mask, b->old->lsns, &ss, NULL);

        if (i != SIZE_MAX)
            lc->socks = lsn_socks_ref(b->old->lsns[i].socks);
    }
    if (lc->socks == NULL) {
        if (lsn_socks_bind((struct sockaddr *)&ss, sslen, cfg->nworkers, &lc->socks, err) < 0)
            return -1;
        log_info("dp", "listener %s (%s) bound on %s", lc->id, lc->name, lc->addr_str);
    }
    b->lsn_tab[lsn_slot] = idx;
    lc->st = dp_stats_get(b->dp, "", lc->id);
    if (lc->st == NULL)
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    return 0;
}

/* --- build, free --- */

int dp_config_build(struct dp *dp, const cJSON *snap, struct dp_config *old, struct dp_config **out,
                    struct err *err)
{
    struct dp_build b = {.dp = dp, .old = old};
    const cJSON *arr, *it;
    long v;
    int rc = -1;
    size_t i;

    *out = NULL;
    b.cfg = calloc(1, sizeof(*b.cfg));
    if (b.cfg == NULL)
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    atomic_init(&b.cfg->refs, 1);
    b.cfg->nworkers = dp->nworkers;
    /* Version 0 is a fresh control plane's empty configuration: valid. */
    if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(snap, "version"))) {
        err_set(err, ERR_INVALID, "bad_snapshot", "version", "snapshot without a version");
        goto out;
    }
    if (dp_json_int(snap, "version", 0, INT64_MAX / 2, 0, &v, err) < 0)
        goto out;
    atomic_init(&b.cfg->version, v);

    arr = cJSON_GetObjectItemCaseSensitive(snap, "certificates");
    b.refs = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*b.refs));
    if (b.refs == NULL) {
        err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
        goto out;
    }
    cJSON_ArrayForEach(it, dp_arr(arr))
    {
        struct dp_certref *r = &b.refs[b.n_refs];

        r->id = dp_json_str(it, "id");
        r->sha256 = dp_json_str(it, "sha256");
        if (r->id == NULL || r->sha256 == NULL || strlen(r->sha256) > 64) {
            err_set(err, ERR_INVALID, "bad_snapshot", "certificates",
                    "snapshot: bad certificate reference");
            goto out;
        }
        if (dp_json_int(it, "version", 0, INT32_MAX, 0, &v, err) < 0)
            goto out;
        r->version = (int)v;
        b.n_refs++;
    }
    if (b.n_refs > 1)
        qsort(b.refs, b.n_refs, sizeof(*b.refs), dp_ref_cmp);
    b.cfg->slots = calloc(b.n_refs + 1, sizeof(*b.cfg->slots));
    if (b.cfg->slots == NULL)
        goto oom;
    b.cfg->n_slots = b.n_refs;
    for (i = 0; i < b.n_refs; i++) {
        if (i > 0 && strcmp(b.refs[i - 1].id, b.refs[i].id) == 0) {
            err_set(err, ERR_INVALID, "bad_snapshot", "certificates",
                    "snapshot: duplicate certificate %s", b.refs[i].id);
            goto out;
        }
        if (dp_copy_id(b.cfg->slots[i].id, sizeof(b.cfg->slots[i].id), b.refs[i].id,
                       "certificate id", err) < 0)
            goto out;
        atomic_init(&b.cfg->slots[i].cert, NULL);
    }

    arr = cJSON_GetObjectItemCaseSensitive(snap, "target_groups");
    b.cfg->tgs = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*b.cfg->tgs));
    if (b.cfg->tgs == NULL) {
        err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
        goto out;
    }
    cJSON_ArrayForEach(it, dp_arr(arr))
    {
        /* Counted before building so a failure frees what was half-built. */
        struct tg *tg = &b.cfg->tgs[b.cfg->n_tgs++];
        if (dp_build_tg(&b, it, tg, err) < 0)
            goto out;
    }
    b.tg_idx = malloc((b.cfg->n_tgs + 1) * sizeof(*b.tg_idx));
    if (b.tg_idx == NULL) {
        err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
        goto out;
    }
    for (i = 0; i < b.cfg->n_tgs; i++)
        b.tg_idx[i] = &b.cfg->tgs[i];
    if (b.cfg->n_tgs > 1)
        qsort(b.tg_idx, b.cfg->n_tgs, sizeof(*b.tg_idx), dp_tgp_cmp);
    for (i = 1; i < b.cfg->n_tgs; i++)
        if (strcmp(b.tg_idx[i - 1]->id, b.tg_idx[i]->id) == 0) {
            err_set(err, ERR_INVALID, "bad_snapshot", "target_groups",
                    "snapshot: duplicate target group %s", b.tg_idx[i]->id);
            goto out;
        }

    arr = cJSON_GetObjectItemCaseSensitive(snap, "listeners");
    b.cfg->lsns = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*b.cfg->lsns));
    if (b.cfg->lsns == NULL) {
        err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
        goto out;
    }
    b.lsn_tab = dp_tab_new((size_t)cJSON_GetArraySize(arr), &b.tab_mask);
    if (b.lsn_tab == NULL)
        goto oom;
    if (old != NULL && old->n_lsns > 0) {
        b.old_tab = dp_tab_new(old->n_lsns, &b.old_mask);
        if (b.old_tab == NULL)
            goto oom;
        for (i = 0; i < old->n_lsns; i++) {
            size_t slot;

            /* The first open one of an address wins, as the scan did. */
            if (old->lsns[i].socks->fds[0] >= 0 &&
                dp_tab_find(b.old_tab, b.old_mask, old->lsns, &old->lsns[i].socks->addr, &slot) ==
                    SIZE_MAX)
                b.old_tab[slot] = i;
        }
    }
    cJSON_ArrayForEach(it, dp_arr(arr))
    {
        struct lsn_conf *lc = &b.cfg->lsns[b.cfg->n_lsns++];
        if (dp_build_lsn(&b, it, lc, b.cfg->n_lsns - 1, err) < 0)
            goto out;
    }
    *out = b.cfg;
    b.cfg = NULL;
    rc = 0;
    goto out;
oom:
    err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
out:
    free(b.refs);
    free(b.tg_idx);
    free(b.lsn_tab);
    free(b.old_tab);
    dp_config_unref(b.cfg);
    return rc;
}

void dp_config_unref(struct dp_config *cfg)
{
    if (cfg == NULL || atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < cfg->n_lsns; i++)
        lsn_conf_free(&cfg->lsns[i]);
    for (size_t i = 0; i < cfg->n_tgs; i++)
        tg_free(&cfg->tgs[i]);
    for (size_t i = 0; i < cfg->n_slots; i++)
        dp_cert_unref(atomic_load_explicit(&cfg->slots[i].cert, memory_order_relaxed));
    free(cfg->lsns);
    free(cfg->tgs);
    free(cfg->slots);
    free(cfg);
}

void dp_config_close_unused(struct dp_config *old, struct dp_config *cur)
{
    size_t mask = 0, *tab = NULL;

    if (old == NULL)
        return;
    /* The sockets 'cur' serves, by pointer: 1,000 listeners must not cost
     * 10^6 compares. Without memory, the scan below is the fallback. */
    if (cur != NULL && cur->n_lsns > 0 && (tab = dp_tab_new(cur->n_lsns, &mask)) != NULL)
        for (size_t k = 0; k < cur->n_lsns; k++) {
            size_t i = ((uintptr_t)cur->lsns[k].socks >> 4) & mask;

            while (tab[i] != SIZE_MAX && cur->lsns[tab[i]].socks != cur->lsns[k].socks)
                i = (i + 1) & mask;
            tab[i] = k;
        }
    for (size_t i = 0; i < old->n_lsns; i++) {
        struct lsn_socks *s = old->lsns[i].socks;
        int kept = 0;

        if (tab != NULL) {
            size_t h = ((uintptr_t)s >> 4) & mask;

            for (; tab[h] != SIZE_MAX && !kept; h = (h + 1) & mask)
                kept = cur->lsns[tab[h]].socks == s;
        } else {
            for (size_t k = 0; cur != NULL && k < cur->n_lsns && !kept; k++)
                kept = cur->lsns[k].socks == s;
        }
        if (!kept && s->fds[0] >= 0) {
            log_info("dp", "listener %s (%s) closed on %s", old->lsns[i].id, old->lsns[i].name,
                     old->lsns[i].addr_str);
            lsn_socks_close(s);
        }
    }
    free(tab);
}
