/* api.c - HTTP: the server, routing, authentication, limits, the single
 * error-kind-to-status switch, the change protocol (transaction, publish,
 * commit or roll back), /v1/status and /metrics. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "api.h"
#include "api_res.h"
#include "cs.h"
#include "err.h"
#include "log.h"
#include "snap.h"
#include "store.h"

/* Seconds a client told 503 busy should wait before retrying. */
#define API_RETRY_AFTER "1"

enum api_route {
    R_NONE = 0,
    R_HEALTHZ,
    R_METRICS,
    R_STATUS,
    R_CERTS,
    R_CERT,
    R_TGS,
    R_TG,
    R_TG_TARGETS,
    R_TG_TARGET,
    R_TG_HEALTH,
    R_LSNS,
    R_LSN,
};

typedef int (*api_read_fn)(struct api *, struct store *, struct api_req *, struct api_out *,
                           struct err *);
typedef int (*api_write_fn)(struct api *, struct store *, struct api_req *, const cJSON *,
                            struct api_out *, struct err *);

/* What each route accepts. A write handler with 'body' needs a JSON body. */
struct api_op {
    enum api_route route;
    const char *method;
    api_read_fn read;
    api_write_fn write;
    int body;
};

static const struct api_op api_ops[] = {
    {R_CERTS, "GET", api_cert_list, NULL, 0},
    {R_CERTS, "POST", NULL, api_cert_create, 1},
    {R_CERT, "GET", api_cert_show, NULL, 0},
    {R_CERT, "PUT", NULL, api_cert_replace, 1},
    {R_CERT, "DELETE", NULL, api_cert_remove, 0},
    {R_TGS, "GET", api_tg_list, NULL, 0},
    {R_TGS, "POST", NULL, api_tg_create, 1},
    {R_TG, "GET", api_tg_show, NULL, 0},
    {R_TG, "PUT", NULL, api_tg_replace, 1},
    {R_TG, "DELETE", NULL, api_tg_remove, 0},
    {R_TG_TARGETS, "POST", NULL, api_tg_add_targets, 1},
    {R_TG_TARGET, "DELETE", NULL, api_tg_remove_target, 0},
    {R_TG_HEALTH, "GET", api_tg_health, NULL, 0},
    {R_LSNS, "GET", api_lsn_list, NULL, 0},
    {R_LSNS, "POST", NULL, api_lsn_create, 1},
    {R_LSN, "GET", api_lsn_show, NULL, 0},
    {R_LSN, "PUT", NULL, api_lsn_replace, 1},
    {R_LSN, "DELETE", NULL, api_lsn_remove, 0},
    {R_STATUS, "GET", NULL, NULL, 0},
    {R_HEALTHZ, "GET", NULL, NULL, 0},
    {R_METRICS, "GET", NULL, NULL, 0},
};

/* The one place where an error kind becomes an HTTP status. */
static unsigned api_status_of(enum err_kind k)
{
    switch (k) {
    case ERR_NONE:
        return 200;
    case ERR_INVALID:
        return 400;
    case ERR_AUTH:
        return 401;
    case ERR_NOT_FOUND:
        return 404;
    case ERR_METHOD:
        return 405;
    case ERR_CONFLICT:
        return 409;
    case ERR_TOO_LARGE:
        return 413;
    case ERR_MEDIA_TYPE:
        return 415;
    case ERR_UNPROCESSABLE:
        return 422;
    case ERR_UNAVAILABLE:
        return 503;
    case ERR_INTERNAL:
        return 500;
    }
    return 500;
}

/* ---- responses ---- */

static enum MHD_Result api_send(struct api *a, struct MHD_Connection *c, unsigned status,
                                const char *ctype, char *body, const char *allow, int busy)
{
    struct MHD_Response *r;
    enum MHD_Result ret;
    size_t n = body ? strlen(body) : 0;

    r = MHD_create_response_from_buffer(n, body ? body : (void *)"",
                                        body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    if (ctype)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if (status == 401)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"portcullis\"");
    if (busy)
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, API_RETRY_AFTER);
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    if (status < 600)
        atomic_fetch_add(&a->req_by_status[status], 1);
    return ret;
}

static enum MHD_Result api_send_json(struct api *a, struct MHD_Connection *c, unsigned status,
                                     cJSON *body, const char *allow, int busy)
{
    char *txt = body ? cJSON_PrintUnformatted(body) : NULL;

    cJSON_Delete(body);
    if (status == 204)
        return api_send(a, c, 204, NULL, (free(txt), NULL), allow, 0);
    if (txt == NULL)
        return MHD_NO;
    return api_send(a, c, status, "application/json", txt, allow, busy);
}

static enum MHD_Result api_send_err(struct api *a, struct MHD_Connection *c, const struct err *e,
                                    const char *allow)
{
    unsigned status = api_status_of(e->kind);
    cJSON *o = cJSON_CreateObject(), *x;

    x = cJSON_AddObjectToObject(o, "error");
    if (status == 500) {
        /* Details of our own failures go to the log, not to the client. */
        log_error("api", "internal error %s: %s", e->code ? e->code : "?", e->message);
        cJSON_AddStringToObject(x, "code", "internal_error");
        cJSON_AddStringToObject(x, "message", "internal error; see the server log");
        cJSON_AddNullToObject(x, "field");
    } else {
        cJSON_AddStringToObject(x, "code", e->code ? e->code : "error");
        cJSON_AddStringToObject(x, "message", e->message);
        if (e->field)
            cJSON_AddStringToObject(x, "field", e->field);
        else
            cJSON_AddNullToObject(x, "field");
    }
    return api_send_json(a, c, status, o, allow,
                         status == 503 && e->code != NULL && strcmp(e->code, "busy") == 0);
}

/* ---- routing ---- */

/* Split 'url' into segments; fill the route and its parameters. */
static enum api_route api_route_of(const char *url, struct api_req *r)
{
    char seg[6][80];
    int n = 0;
    const char *p = url;

    if (*p != '/')
        return R_NONE;
    while (*p == '/' && n < 6) {
        const char *e = strchr(p + 1, '/');
        size_t len = e ? (size_t)(e - p - 1) : strlen(p + 1);

        if (len == 0 || len >= sizeof(seg[0]))
            return R_NONE;
        memcpy(seg[n], p + 1, len);
        seg[n++][len] = '\0';
        p += len + 1;
    }
    if (*p != '\0')
        return R_NONE;
    if (n == 1 && !strcmp(seg[0], "healthz"))
        return R_HEALTHZ;
    if (n == 1 && !strcmp(seg[0], "metrics"))
        return R_METRICS;
    if (n < 2 || strcmp(seg[0], "v1") != 0)
        return R_NONE;
    if (n >= 3)
        memcpy(r->p1, seg[2], sizeof(r->p1));
    if (n >= 5)
        memcpy(r->p2, seg[4], sizeof(r->p2));
    if (!strcmp(seg[1], "status"))
        return n == 2 ? R_STATUS : R_NONE;
    if (!strcmp(seg[1], "certificates"))
        return n == 2 ? R_CERTS : n == 3 ? R_CERT : R_NONE;
    if (!strcmp(seg[1], "listeners"))
        return n == 2 ? R_LSNS : n == 3 ? R_LSN : R_NONE;
    if (!strcmp(seg[1], "target-groups")) {
        if (n == 2)
            return R_TGS;
        if (n == 3)
            return R_TG;
        if (n == 4 && !strcmp(seg[3], "targets"))
            return R_TG_TARGETS;
        if (n == 4 && !strcmp(seg[3], "health"))
            return R_TG_HEALTH;
        if (n == 5 && !strcmp(seg[3], "targets"))
            return R_TG_TARGET;
    }
    return R_NONE;
}

static const struct api_op *api_op_of(enum api_route route, const char *method, char *allow,
                                      size_t n)
{
    const struct api_op *found = NULL;

    allow[0] = '\0';
    for (size_t i = 0; i < sizeof(api_ops) / sizeof(api_ops[0]); i++) {
        if (api_ops[i].route != route)
            continue;
        snprintf(allow + strlen(allow), n - strlen(allow), "%s%s", allow[0] ? ", " : "",
                 api_ops[i].method);
        if (!strcmp(api_ops[i].method, method) ||
            (!strcmp(method, "HEAD") && !strcmp(api_ops[i].method, "GET")))
            found = &api_ops[i];
    }
    if (strncmp(allow, "GET", 3) == 0 || strstr(allow, ", GET"))
        snprintf(allow + strlen(allow), n - strlen(allow), ", HEAD");
    return found;
}

/* Bearer token check in constant time: compare digests, never the raw
 * strings, so neither length nor content leaks through timing. */
static int api_auth_ok(struct api *a, struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    unsigned char md[32];
    unsigned int len = 0;

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    while (*h == ' ')
        h++;
    if (EVP_Digest(h, strlen(h), md, &len, EVP_sha256(), NULL) != 1 || len != 32)
        return 0;
    return CRYPTO_memcmp(md, a->token_hash, 32) == 0;
}

static int api_json_ctype(const char *ct)
{
    size_t n = strlen("application/json");

    if (ct == NULL)
        return 0;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, "application/json", n) != 0)
        return 0;
    ct += n;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* ---- readers ---- */

struct store *api_reader(struct api *a, struct err *err)
{
    struct store *st = NULL;

    pthread_mutex_lock(&a->rmu);
    for (int i = 0; i < API_READERS; i++)
        if (!a->reader_busy[i]) {
            a->reader_busy[i] = 1;
            st = a->readers[i];
            break;
        }
    pthread_mutex_unlock(&a->rmu);
    if (st == NULL)
        err_set(err, ERR_INTERNAL, "no_reader", NULL, "no free database connection");
    return st;
}

void api_reader_put(struct api *a, struct store *st)
{
    pthread_mutex_lock(&a->rmu);
    for (int i = 0; i < API_READERS; i++)
        if (a->readers[i] == st)
            a->reader_busy[i] = 0;
    pthread_mutex_unlock(&a->rmu);
}

/* ---- the change protocol ---- */

static const char *api_route_name(enum api_route r)
{
    switch (r) {
    case R_CERTS:
    case R_CERT:
        return "certificate";
    case R_TGS:
    case R_TG:
        return "target group";
    case R_TG_TARGETS:
    case R_TG_TARGET:
        return "targets of";
    case R_LSNS:
    case R_LSN:
        return "listener";
    default:
        return "resource";
    }
}

/* The snapshot of version 'v'. Replacing a certificate's contents (PUT)
 * changes nothing but its reference: proxies serving 'base' get a delta
 * (api-docs/control-channel.md "snapshot_delta"), not 10,000 references. */
static int api_snap(struct api *a, const struct api_req *r, const struct api_out *o, int64_t v,
                    int64_t base, cJSON **snap, struct err *err)
{
    const cJSON *id = o->body ? cJSON_GetObjectItem(o->body, "id") : NULL;

    if (r->route == R_CERT && strcmp(r->method, "PUT") == 0 && cJSON_IsString(id) && base > 0)
        return snap_build_delta(a->w, v, base, id->valuestring, snap, err);
    return snap_build(a->w, v, snap, err);
}

/* Run one configuration change: BEGIN; handler; bump the version; build
 * the snapshot from the transaction's view; publish; COMMIT, or ROLLBACK
 * on a NACK (and resend the previous configuration under a new version to
 * the proxies that had applied the refused one). Serialised by a->mu. */
static int api_change(struct api *a, struct api_req *r, api_write_fn fn, const cJSON *in,
                      struct api_out *o, struct err *err)
{
    struct snap_result res = {0};
    cJSON *snap = NULL;
    int64_t v, committed;
    int rc = -1;

    pthread_mutex_lock(&a->mu);
    committed = atomic_load(&a->config_version);
    snap_pub_begin(a->pub);
    if (store_begin(a->w, err) < 0)
        goto out;
    if (fn(a, a->w, r, in, o, err) < 0)
        goto rollback;
    v = a->last_version + 1;
    if (store_set_versions(a->w, v, v, err) < 0 ||
        api_snap(a, r, o, v, committed, &snap, err) < 0 ||
        snap_pub_publish(a->pub, a->w, snap, v, &res, err) < 0)
        goto rollback;
    a->last_version = v;
    if (res.nacked) {
        struct err e2 = {0};

        store_rollback(a->w);
        atomic_fetch_add(&a->mutations_refused, 1);
        log_warn("api", "version %lld refused by proxy %s: %s; rolled back", (long long)v,
                 res.nack_node, res.nack_error);
        /* Versions only grow, even across a restart. */
        if (store_begin(a->w, &e2) == 0 && store_set_versions(a->w, -1, v, &e2) == 0)
            store_commit(a->w, &e2);
        else
            store_rollback(a->w);
        if (res.n_acked > 0) {
            struct snap_result res2 = {0};
            cJSON *snap2 = NULL;
            int64_t v2 = v + 1;

            if (store_begin(a->w, &e2) == 0 && store_set_versions(a->w, v2, v2, &e2) == 0 &&
                snap_build(a->w, v2, &snap2, &e2) == 0 &&
                snap_pub_publish(a->pub, a->w, snap2, v2, &res2, &e2) == 0 &&
                store_commit(a->w, &e2) == 0) {
                a->last_version = v2;
                committed = v2;
                log_info("api", "previous configuration re-sent as version %lld", (long long)v2);
            } else {
                store_rollback(a->w);
                log_error("api", "cannot re-send the previous configuration: %s", e2.message);
            }
            cJSON_Delete(snap2);
            snap_result_clear(&res2);
        }
        cJSON_Delete(o->body);
        o->body = NULL;
        err_set(err, ERR_UNAVAILABLE, "dataplane_rejected", NULL, "%.240s", res.nack_error);
        goto out;
    }
    if (store_commit(a->w, err) < 0)
        goto out;
    committed = v;
    if (o->body != NULL) {
        cJSON_AddNumberToObject(o->body, "config_version", (double)v);
        cJSON_AddBoolToObject(o->body, "applied",
                              res.n_proxies > 0 && cJSON_GetArraySize(res.not_applied) == 0);
        cJSON_AddItemToObject(o->body, "not_applied", res.not_applied);
        res.not_applied = NULL;
    }
    log_info("api", "%s %s%s%s committed as version %lld (%d/%d proxies acked)", r->method,
             api_route_name((enum api_route)r->route), r->p1[0] ? " " : "", r->p1, (long long)v,
             res.n_acked, res.n_proxies);
    rc = 0;
    goto out;
rollback:
    store_rollback(a->w);
out:
    if (rc < 0) {
        cJSON_Delete(o->body);
        o->body = NULL;
    }
    atomic_store(&a->config_version, committed);
    snap_pub_end(a->pub, committed);
    pthread_mutex_unlock(&a->mu);
    cJSON_Delete(snap);
    snap_result_clear(&res);
    return rc;
}

/* ---- the mutation thread ----
 *
 * libmicrohttpd runs every request on one of API_THREADS threads, and a
 * thread that waits inside a request serves none of its other connections.
 * A mutation may wait up to the ack timeout for a hung proxy, and
 * mutations are serialised: with the waits on the HTTP threads, eight
 * mutations took every thread and GET /v1/status, /healthz... waited
 * behind them. So the HTTP threads never wait for a mutation: they parse
 * it, queue it and suspend its connection (MHD_suspend_connection); one
 * mutation thread runs the queue (they would be serialised anyway) and
 * resumes each connection, whose handler then sends the answer. Reads
 * stay on the HTTP threads. The queue is bounded in length (API_MUT_QUEUE)
 * and in waiting time (busy_wait_ms, the ack timeout): a mutation beyond
 * either is answered 503 "busy" with Retry-After, so no request waits
 * more than about twice the ack timeout. */

static void api_busy(struct err *err)
{
    err_set(err, ERR_UNAVAILABLE, "busy", NULL,
            "too many configuration changes in progress; retry later");
}

static int64_t api_ms_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Run (or refuse, when it waited too long or we stop) the mutation 'r'
 * and resume its connection. */
static void api_job_run(struct api *a, struct api_req *r, int refuse)
{
    char allow[64];
    const struct api_op *op = api_op_of((enum api_route)r->route, r->method, allow, sizeof(allow));

    if (refuse || api_ms_since(&r->queued_at) > a->busy_wait_ms) {
        api_busy(&r->err);
        r->rc = -1;
    } else {
        r->rc = api_change(a, r, op->write, r->in, &r->out, &r->err);
    }
    cJSON_Delete(r->in);
    r->in = NULL;
    r->job = API_JOB_DONE;
    MHD_resume_connection(r->conn);
}

static void *api_mut_thread(void *arg)
{
    struct api *a = arg;
    struct api_req *r;
    int stop;

    pthread_mutex_lock(&a->qmu);
    for (;;) {
        while (a->qhead == NULL && !a->qstop)
            pthread_cond_wait(&a->qcv, &a->qmu);
        r = a->qhead;
        if (r == NULL)
            break;
        a->qhead = r->qnext;
        if (a->qhead == NULL)
            a->qtail = NULL;
        a->qlen--;
        stop = a->qstop;
        pthread_mutex_unlock(&a->qmu);
        api_job_run(a, r, stop);
        pthread_mutex_lock(&a->qmu);
    }
    pthread_mutex_unlock(&a->qmu);
    return NULL;
}

/* Queue mutation 'r' (body parsed into 'in', taken) and suspend its
 * connection; -1 with 'err' set when the queue is full or we stop. */
static int api_job_queue(struct api *a, struct MHD_Connection *c, struct api_req *r, cJSON *in,
                         struct err *err)
{
    pthread_mutex_lock(&a->qmu);
    if (a->qstop || !a->mut_started || a->qlen >= API_MUT_QUEUE) {
        pthread_mutex_unlock(&a->qmu);
        cJSON_Delete(in);
        api_busy(err);
        return -1;
    }
    {
        const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Match");

        r->if_match_set = h == NULL ? 0 : strlen(h) < sizeof(r->if_match) ? 1 : 2;
        if (r->if_match_set == 1)
            memcpy(r->if_match, h, strlen(h) + 1);
    }
    r->in = in;
    r->job = API_JOB_QUEUED;
    clock_gettime(CLOCK_MONOTONIC, &r->queued_at);
    /* Suspended before the mutation thread can see it (it takes qmu), so
     * it is never resumed before being suspended. */
    MHD_suspend_connection(c);
    r->qnext = NULL;
    if (a->qtail)
        a->qtail->qnext = r;
    else
        a->qhead = r;
    a->qtail = r;
    a->qlen++;
    pthread_cond_signal(&a->qcv);
    pthread_mutex_unlock(&a->qmu);
    return 0;
}

/* ---- status and metrics ---- */

static cJSON *api_status(struct api *a)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "config_version", (double)atomic_load(&a->config_version));
    cJSON_AddItemToObject(o, "dataplanes", snap_pub_status(a->pub));
    return o;
}

/* Growing text buffer for the exposition format. */
struct api_buf {
    char *s;
    size_t n, cap;
};

static void PC_PRINTF(2, 3) bprintf(struct api_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (int tries = 0; tries < 2; tries++) {
        va_start(ap, fmt);
        n = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->s && b->n + (size_t)n < b->cap) {
            b->n += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap <= b->n + (size_t)n)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (ns == NULL)
            return;
        b->s = ns;
        b->cap = cap;
    }
}

/* A label value escaped as the exposition format wants. */
static const char *lbl(const char *s, char *buf, size_t n)
{
    size_t j = 0;

    for (; s && *s && j + 3 < n; s++) {
        if (*s == '\\' || *s == '"') {
            buf[j++] = '\\';
            buf[j++] = *s;
        } else if (*s == '\n') {
            buf[j++] = '\\';
            buf[j++] = 'n';
        } else {
            buf[j++] = *s;
        }
    }
    buf[j] = '\0';
    return buf;
}

static int api_metrics_cert(void *arg, const struct store_cert *c)
{
    struct api_buf *b = arg;
    char l1[96], l2[160];

    bprintf(b, "portcullis_certificate_not_after_seconds{id=\"%s\",name=\"%s\"} %lld\n",
            lbl(c->id, l1, sizeof(l1)), lbl(c->name, l2, sizeof(l2)), (long long)c->not_after);
    return 0;
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);

    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void api_metrics_stats(struct api_buf *b, const cJSON *stats)
{
    static const struct {
        const char *key, *name, *type, *help;
    } lm[] =
        {
            {"active", "portcullis_listener_connections_active", "gauge",
             "Open client connections"},
            {"total", "portcullis_listener_connections_total", "counter", "Accepted connections"},
            {"bytes_in", "portcullis_listener_bytes_in_total", "counter", "Bytes from clients"},
            {"bytes_out", "portcullis_listener_bytes_out_total", "counter", "Bytes to clients"},
            {"errors", "portcullis_listener_errors_total", "counter",
             "Connections closed on error"},
        },
      tm[] = {
          {"active", "portcullis_target_connections_active", "gauge", "Open backend connections"},
          {"total", "portcullis_target_connections_total", "counter", "Backend connections"},
          {"failures", "portcullis_target_failures_total", "counter", "Failed backend connects"},
      };
    const cJSON *n, *x;
    char l1[96], l2[96], l3[96];

    for (size_t m = 0; m < sizeof(lm) / sizeof(lm[0]); m++) {
        bprintf(b, "# HELP %s %s.\n# TYPE %s %s\n", lm[m].name, lm[m].help, lm[m].name, lm[m].type);
        cJSON_ArrayForEach(n, stats)
        {
            const cJSON *node = cJSON_GetObjectItem(n, "node_id");

            cJSON_ArrayForEach(x, cJSON_GetObjectItem(n, "listeners"))
            {
                const cJSON *id = cJSON_GetObjectItem(x, "id");

                if (!cJSON_IsString(id))
                    continue;
                bprintf(b, "%s{listener_id=\"%s\",node_id=\"%s\"} %.0f\n", lm[m].name,
                        lbl(id->valuestring, l1, sizeof(l1)),
                        lbl(node->valuestring, l2, sizeof(l2)), jnum(x, lm[m].key));
            }
        }
    }
    for (size_t m = 0; m < sizeof(tm) / sizeof(tm[0]); m++) {
        bprintf(b, "# HELP %s %s.\n# TYPE %s %s\n", tm[m].name, tm[m].help, tm[m].name, tm[m].type);
        cJSON_ArrayForEach(n, stats)
        {
            const cJSON *node = cJSON_GetObjectItem(n, "node_id");

            cJSON_ArrayForEach(x, cJSON_GetObjectItem(n, "targets"))
            {
                const cJSON *tg = cJSON_GetObjectItem(x, "target_group_id");
                const cJSON *t = cJSON_GetObjectItem(x, "target_id");

                if (!cJSON_IsString(tg) || !cJSON_IsString(t))
                    continue;
                bprintf(b, "%s{target_group_id=\"%s\",target_id=\"%s\",node_id=\"%s\"} %.0f\n",
                        tm[m].name, lbl(tg->valuestring, l1, sizeof(l1)),
                        lbl(t->valuestring, l2, sizeof(l2)), lbl(node->valuestring, l3, sizeof(l3)),
                        jnum(x, tm[m].key));
            }
        }
    }
}

static int api_metrics(struct api *a, struct api_buf *b, struct err *err)
{
    struct store *st = api_reader(a, err);
    int64_t ncert = 0, ntg = 0, nlsn = 0;
    cJSON *stats;
    int rc = -1;

    if (st == NULL)
        return -1;
    if (store_begin(st, err) < 0)
        goto out;
    if (store_count(st, STORE_CERT, &ncert, err) < 0 || store_count(st, STORE_TG, &ntg, err) < 0 ||
        store_count(st, STORE_LSN, &nlsn, err) < 0)
        goto out;
    bprintf(b,
            "# HELP portcullis_config_version Version of the committed configuration.\n"
            "# TYPE portcullis_config_version gauge\nportcullis_config_version %lld\n",
            (long long)atomic_load(&a->config_version));
    bprintf(b,
            "# HELP portcullis_certificates Certificates in the store.\n"
            "# TYPE portcullis_certificates gauge\nportcullis_certificates %lld\n",
            (long long)ncert);
    bprintf(b,
            "# HELP portcullis_target_groups Target groups in the store.\n"
            "# TYPE portcullis_target_groups gauge\nportcullis_target_groups %lld\n",
            (long long)ntg);
    bprintf(b,
            "# HELP portcullis_listeners Listeners in the store.\n"
            "# TYPE portcullis_listeners gauge\nportcullis_listeners %lld\n",
            (long long)nlsn);
    bprintf(b, "# HELP portcullis_certificate_not_after_seconds End of validity, unix time.\n"
               "# TYPE portcullis_certificate_not_after_seconds gauge\n");
    if (store_cert_each(st, api_metrics_cert, b, err) != 0)
        goto out;
    bprintf(b,
            "# HELP portcullis_dataplanes_connected Proxies connected to the control socket.\n"
            "# TYPE portcullis_dataplanes_connected gauge\nportcullis_dataplanes_connected %d\n",
            snap_pub_connected(a->pub));
    bprintf(b,
            "# HELP portcullis_config_changes_refused_total Changes rolled back after a NACK.\n"
            "# TYPE portcullis_config_changes_refused_total counter\n"
            "portcullis_config_changes_refused_total %llu\n",
            (unsigned long long)atomic_load(&a->mutations_refused));
    bprintf(b, "# HELP portcullis_api_requests_total API responses by HTTP status.\n"
               "# TYPE portcullis_api_requests_total counter\n");
    for (int s = 100; s < 600; s++) {
        unsigned long long n = atomic_load(&a->req_by_status[s]);

        if (n)
            bprintf(b, "portcullis_api_requests_total{code=\"%d\"} %llu\n", s, n);
    }
    stats = snap_pub_stats(a->pub);
    api_metrics_stats(b, stats);
    cJSON_Delete(stats);
    rc = b->s ? 0 : err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
out:
    store_rollback(st);
    api_reader_put(a, st);
    return rc;
}

/* ---- the MHD callbacks ---- */

static enum MHD_Result api_dispatch(struct api *a, struct MHD_Connection *c, struct api_req *r)
{
    char allow[64];
    const struct api_op *op = api_op_of((enum api_route)r->route, r->method, allow, sizeof(allow));
    struct api_out o = {0};
    struct err err = {0};
    struct store *st;
    cJSON *in = NULL;
    int rc;

    if (r->route == R_HEALTHZ) {
        cJSON *b = cJSON_CreateObject();

        cJSON_AddStringToObject(b, "status", "ok");
        return api_send_json(a, c, 200, b, NULL, 0);
    }
    if (r->route == R_METRICS) {
        struct api_buf b = {0};

        if (api_metrics(a, &b, &err) < 0) {
            free(b.s);
            return api_send_err(a, c, &err, NULL);
        }
        return api_send(a, c, 200, "text/plain; version=0.0.4; charset=utf-8", b.s, NULL, 0);
    }
    if (r->route == R_STATUS)
        return api_send_json(a, c, 200, api_status(a), NULL, 0);
    if (op->write) {
        if (r->job == API_JOB_DONE) {
            /* Resumed by the mutation thread: send its answer. */
            if (r->rc < 0) {
                cJSON_Delete(r->out.body);
                r->out.body = NULL;
                return api_send_err(a, c, &r->err, NULL);
            }
            o = r->out;
            r->out.body = NULL;
            return api_send_json(a, c, (unsigned)o.status, o.body, NULL, 0);
        }
        if (r->job == API_JOB_QUEUED)
            return MHD_YES; /* not ours to answer yet */
        if (op->body && api_json_parse(r->body, r->len, &in, &err) < 0)
            return api_send_err(a, c, &err, NULL);
        if (api_job_queue(a, c, r, in, &err) < 0)
            return api_send_err(a, c, &err, NULL);
        return MHD_YES;
    } else {
        st = api_reader(a, &err);
        if (st == NULL)
            return api_send_err(a, c, &err, NULL);
        rc = store_begin(st, &err);
        if (rc == 0)
            rc = op->read(a, st, r, &o, &err);
        store_rollback(st);
        api_reader_put(a, st);
    }
    if (rc < 0) {
        cJSON_Delete(o.body);
        return api_send_err(a, c, &err, NULL);
    }
    return api_send_json(a, c, (unsigned)o.status, o.body, NULL, 0);
}

static enum MHD_Result api_handle(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_len, void **req_cls)
{
    struct api *a = cls;
    struct api_req *r = *req_cls;
    struct err err = {0};
    char allow[64];
    const struct api_op *op;
    const char *cl;

    (void)version;
    if (r == NULL) {
        /* First call: headers only. Refuse early what we can. */
        r = calloc(1, sizeof(*r));
        if (r == NULL)
            return MHD_NO;
        *req_cls = r;
        r->method = method;
        r->conn = c;
        r->route = api_route_of(url, r);
        /* Authentication comes before routing so that a client without the
         * token learns nothing about which resources exist. */
        if (strncmp(url, "/v1", 3) == 0 && (url[3] == '/' || url[3] == '\0') &&
            !api_auth_ok(a, c)) {
            err_set(&err, ERR_AUTH, "unauthorized", NULL, "missing or invalid bearer token");
            return api_send_err(a, c, &err, NULL);
        }
        if (r->route == R_NONE) {
            err_set(&err, ERR_NOT_FOUND, "not_found", NULL, "no such route");
            return api_send_err(a, c, &err, NULL);
        }
        op = api_op_of((enum api_route)r->route, method, allow, sizeof(allow));
        if (op == NULL) {
            err_set(&err, ERR_METHOD, "method_not_allowed", NULL, "use %s", allow);
            return api_send_err(a, c, &err, allow);
        }
        cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > API_MAX_BODY) {
            err_set(&err, ERR_TOO_LARGE, "body_too_large", NULL, "request body over %u bytes",
                    API_MAX_BODY);
            return api_send_err(a, c, &err, NULL);
        }
        if (op->body && !api_json_ctype(MHD_lookup_connection_value(
                            c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE))) {
            err_set(&err, ERR_MEDIA_TYPE, "unsupported_media_type", NULL,
                    "Content-Type must be application/json");
            return api_send_err(a, c, &err, NULL);
        }
        return MHD_YES;
    }
    if (*data_len != 0) {
        if (!r->too_large && r->len + *data_len > API_MAX_BODY)
            r->too_large = 1;
        if (!r->too_large) {
            if (r->cap < r->len + *data_len + 1) {
                size_t cap = r->cap ? r->cap : 4096;
                char *nb;

                while (cap < r->len + *data_len + 1)
                    cap *= 2;
                nb = realloc(r->body, cap);
                if (nb == NULL)
                    return MHD_NO;
                r->body = nb;
                r->cap = cap;
            }
            memcpy(r->body + r->len, data, *data_len);
            r->len += *data_len;
            r->body[r->len] = '\0';
        }
        *data_len = 0;
        return MHD_YES;
    }
    if (r->too_large) {
        err_set(&err, ERR_TOO_LARGE, "body_too_large", NULL, "request body over %u bytes",
                API_MAX_BODY);
        return api_send_err(a, c, &err, NULL);
    }
    return api_dispatch(a, c, r);
}

static void api_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                          enum MHD_RequestTerminationCode toe)
{
    struct api_req *r = *req_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (r == NULL)
        return;
    cJSON_Delete(r->in);
    cJSON_Delete(r->out.body);
    if (r->body)
        OPENSSL_cleanse(r->body, r->cap); /* bodies may carry private keys */
    free(r->body);
    free(r);
    *req_cls = NULL;
}

/* ---- start and stop ---- */

/* The admin token: from the environment, the token file, or made up and
 * saved. The one log line that shows a token is the one that announces a
 * new one. */
static int api_token_init(struct api *a, const char *dir, struct err *err)
{
    char path[PATH_MAX], buf[256], tok[64];
    const char *env = getenv("PORTCULLIS_ADMIN_TOKEN");
    unsigned char rnd[32];
    unsigned int len;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/admin.token", dir);
    if (env != NULL && *env) {
        snprintf(buf, sizeof(buf), "%s", env);
    } else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n < 0)
            n = 0;
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        if (buf[0] == '\0')
            return err_set(err, ERR_INVALID, "bad_token_file", NULL, "%s is empty", path);
    } else {
        static const char b64u[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        size_t j = 0;

        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            return err_set(err, ERR_INTERNAL, "random_failed", NULL, "no randomness");
        /* base64url without padding: 32 bytes -> 43 characters */
        for (size_t i = 0; i < sizeof(rnd); i += 3) {
            unsigned v = (unsigned)rnd[i] << 16;
            size_t k = sizeof(rnd) - i;

            if (k > 1)
                v |= (unsigned)rnd[i + 1] << 8;
            if (k > 2)
                v |= rnd[i + 2];
            tok[j++] = b64u[(v >> 18) & 63];
            tok[j++] = b64u[(v >> 12) & 63];
            if (k > 1)
                tok[j++] = b64u[(v >> 6) & 63];
            if (k > 2)
                tok[j++] = b64u[v & 63];
        }
        tok[j] = '\0';
        OPENSSL_cleanse(rnd, sizeof(rnd));
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, tok, j) != (ssize_t)j || write(fd, "\n", 1) != 1) {
            if (fd >= 0)
                close(fd);
            return err_set(err, ERR_INTERNAL, "token_save_failed", NULL, "cannot write %s: %s",
                           path, strerror(errno));
        }
        close(fd);
        fprintf(stderr, "admin token: %s (saved to %s)\n", tok, path);
        snprintf(buf, sizeof(buf), "%s", tok);
        OPENSSL_cleanse(tok, sizeof(tok));
    }
    EVP_Digest(buf, strlen(buf), a->token_hash, &len, EVP_sha256(), NULL);
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

int api_start(const struct cp_opts *opts, int lfd, struct api **out, struct err *err)
{
    struct snap_pub_opts po = {0};
    struct api *a;
    int64_t lv = 0, cv = 0;
    const char *env;

    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        close(lfd);
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->rmu, NULL);
    pthread_mutex_init(&a->qmu, NULL);
    pthread_cond_init(&a->qcv, NULL);
    snprintf(a->db_path, sizeof(a->db_path), "%s/portcullis.db", opts->data_dir);
    if (api_token_init(a, opts->data_dir, err) < 0 ||
        cs_master_load(opts->data_dir, &a->mk, err) < 0 ||
        store_open(a->db_path, 0, &a->w, err) < 0 || store_versions(a->w, &cv, &lv, err) < 0)
        goto fail;
    a->last_version = lv > cv ? lv : cv;
    atomic_store(&a->config_version, cv);
    for (int i = 0; i < API_READERS; i++)
        if (store_open(a->db_path, STORE_F_READER, &a->readers[i], err) < 0)
            goto fail;
    po.socket_path = opts->control_socket;
    po.db_path = a->db_path;
    po.mk = a->mk;
    po.ack_timeout_ms = opts->ack_timeout_ms;
    env = getenv("PORTCULLIS_ACK_TIMEOUT_MS");
    if (env != NULL && atoi(env) > 0)
        po.ack_timeout_ms = atoi(env);
    if (snap_pub_start(&po, &a->pub, err) < 0)
        goto fail;
    a->busy_wait_ms = po.ack_timeout_ms > 0 ? po.ack_timeout_ms : SNAP_ACK_TIMEOUT_MS;
    if (pthread_create(&a->mut_thr, NULL, api_mut_thread, a) != 0) {
        err_set(err, ERR_INTERNAL, "api_start_failed", NULL, "cannot start the mutation thread");
        goto fail;
    }
    a->mut_started = 1;
    a->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY |
                                  MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME,
                              0, NULL, NULL, api_handle, a, MHD_OPTION_LISTEN_SOCKET, lfd,
                              MHD_OPTION_THREAD_POOL_SIZE, API_THREADS,
                              MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_LIMIT,
                              1000u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                              MHD_OPTION_NOTIFY_COMPLETED, api_completed, a, MHD_OPTION_END);
    lfd = -1;
    if (a->mhd == NULL) {
        err_set(err, ERR_INTERNAL, "api_start_failed", NULL, "cannot start the HTTP server");
        goto fail;
    }
    log_info("api", "configuration version %lld", (long long)cv);
    *out = a;
    return 0;
fail:
    if (lfd >= 0)
        close(lfd);
    api_stop(a);
    return -1;
}

void api_stop(struct api *a)
{
    if (a == NULL)
        return;
    /* Every suspended connection must be resumed before MHD stops: the
     * mutation thread finishes the change in progress, refuses the queued
     * ones (503 busy) and exits; later mutations are refused at once. */
    pthread_mutex_lock(&a->qmu);
    a->qstop = 1;
    pthread_cond_signal(&a->qcv);
    pthread_mutex_unlock(&a->qmu);
    if (a->mut_started)
        pthread_join(a->mut_thr, NULL);
    if (a->mhd)
        MHD_stop_daemon(a->mhd);
    snap_pub_stop(a->pub);
    for (int i = 0; i < API_READERS; i++)
        store_close(a->readers[i]);
    store_close(a->w);
    cs_master_free(a->mk);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->rmu);
    pthread_mutex_destroy(&a->qmu);
    pthread_cond_destroy(&a->qcv);
    OPENSSL_cleanse(a->token_hash, sizeof(a->token_hash));
    free(a);
}
