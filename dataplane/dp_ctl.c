/* dp_ctl.c - the control-channel client (main thread): hello, certificate
 * bodies, snapshots built off the hot path and published to every worker,
 * ACK once all serve it, NACK with the reason otherwise, stats every 5 s,
 * reconnection with capped exponential backoff. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "dp.h"
#include "err.h"
#include "hc.h"
#include "log.h"
#include "wire.h"

#define DP_BACKOFF_MIN 0.1
#define DP_BACKOFF_MAX 5.0
#define DP_STATS_EVERY 5.0
#define DP_READ_CHUNK 65536

static void dp_ctl_connect(struct dp *dp);
static void dp_ctl_apply(struct dp *dp, cJSON *snap);

/* --- certificate bodies --- */

/* 'a' if it is an array, else NULL (cJSON_ArrayForEach walks nothing). */
static const cJSON *dp_arr(const cJSON *a)
{
    return cJSON_IsArray(a) ? a : NULL;
}

static void dp_certbody_free(struct dp_certbody *b)
{
    if (b == NULL)
        return;
    free(b->cert);
    free(b->chain);
    if (b->key != NULL) {
        OPENSSL_cleanse(b->key, b->key_len);
        free(b->key);
    }
    dp_cert_unref(b->served);
    free(b);
}

static size_t dp_cert_pos(const struct dp *dp, const char *sha, int *found)
{
    size_t lo = 0, hi = dp->n_certs;

    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(sha, dp->certs[mid]->sha256);

        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

struct dp_certbody *dp_cert_find(const struct dp *dp, const char *sha256)
{
    int found;
    size_t pos = dp_cert_pos(dp, sha256, &found);

    return found ? dp->certs[pos] : NULL;
}

static char *dp_dup_str(const cJSON *o, const char *k, size_t *len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    *len = 0;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return NULL;
    *len = strlen(v->valuestring);
    return strndup(v->valuestring, *len);
}

static int dp_ctl_cert(struct dp *dp, const cJSON *f, struct err *err)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(f, "id");
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(f, "sha256");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(f, "version");
    struct dp_certbody *b;
    size_t pos;
    int found;

    if (!cJSON_IsString(id) || strlen(id->valuestring) >= DP_ID_MAX || !cJSON_IsString(sha) ||
        strlen(sha->valuestring) == 0 || strlen(sha->valuestring) > 64)
        return err_set(err, ERR_INVALID, "bad_frame", "certificate",
                       "certificate frame without a valid id or sha256");
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    snprintf(b->sha256, sizeof(b->sha256), "%s", sha->valuestring);
    snprintf(b->id, sizeof(b->id), "%s", id->valuestring);
    b->version = cJSON_IsNumber(ver) ? (int)ver->valuedouble : 0;
    b->cert = dp_dup_str(f, "certificate", &b->cert_len);
    b->chain = dp_dup_str(f, "chain", &b->chain_len);
    b->key = dp_dup_str(f, "private_key", &b->key_len);
    if (b->cert == NULL) {
        dp_certbody_free(b);
        return err_set(err, ERR_INVALID, "bad_frame", "certificate",
                       "certificate frame %s without a certificate", id->valuestring);
    }
    pos = dp_cert_pos(dp, b->sha256, &found);
    if (found) {
        dp_certbody_free(dp->certs[pos]);
        dp->certs[pos] = b;
        return 0;
    }
    if (dp->n_certs == dp->cap_certs) {
        size_t nc = dp->cap_certs ? 2 * dp->cap_certs : 64;
        struct dp_certbody **na = realloc(dp->certs, nc * sizeof(*na));
        if (na == NULL) {
            dp_certbody_free(b);
            return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
        }
        dp->certs = na;
        dp->cap_certs = nc;
    }
    memmove(dp->certs + pos + 1, dp->certs + pos, (dp->n_certs - pos) * sizeof(*dp->certs));
    dp->certs[pos] = b;
    dp->n_certs++;
    log_debug("dp", "certificate %s version %d sha256 %.16s... received", b->id, b->version,
              b->sha256);
    return 0;
}

static int dp_str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Keep only the bodies 'snap' references (after it is applied). */
static void dp_certs_keep(struct dp *dp, const cJSON *snap)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(snap, "certificates"), *it;
    size_t n = 0, out = 0;
    const char **keep = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*keep));

    if (keep == NULL)
        return; /* keeping too much is harmless */
    cJSON_ArrayForEach(it, dp_arr(arr))
    {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "sha256");
        if (cJSON_IsString(s))
            keep[n++] = s->valuestring;
    }
    qsort(keep, n, sizeof(*keep), dp_str_cmp);
    for (size_t i = 0; i < dp->n_certs; i++) {
        const char *sha = dp->certs[i]->sha256;

        if (n > 0 && bsearch(&sha, keep, n, sizeof(*keep), dp_str_cmp) != NULL)
            dp->certs[out++] = dp->certs[i];
        else
            dp_certbody_free(dp->certs[i]);
    }
    dp->n_certs = out;
    free(keep);
}

/* After an in-place swap: drop the bodies of the replaced certificates no
 * slot serves any more (dp_config_swap refused certificates that are a
 * group's CA, so no client context needs them either). */
static void dp_certs_drop_retired(struct dp *dp)
{
    const struct dp_config *cfg = dp->cur;

    for (size_t r = 0; r < dp->n_retired; r++) {
        const struct dp_cert *old = dp->retired[r];
        size_t pos;
        int found, used = 0;

        for (size_t i = 0; i < cfg->n_slots && !used; i++)
            used = atomic_load_explicit(&cfg->slots[i].cert, memory_order_relaxed) == old;
        pos = dp_cert_pos(dp, old->sha256, &found);
        if (used || !found || dp->certs[pos]->served != old)
            continue;
        dp_certbody_free(dp->certs[pos]);
        memmove(dp->certs + pos, dp->certs + pos + 1, (dp->n_certs - pos - 1) * sizeof(*dp->certs));
        dp->n_certs--;
    }
}

/* --- the connection --- */

static void dp_ctl_schedule(struct dp *dp)
{
    if (dp->stopping)
        return;
    ev_timer_stop(dp->loop, &dp->retry);
    ev_timer_set(&dp->retry, dp->backoff, 0.);
    ev_timer_start(dp->loop, &dp->retry);
    dp->backoff *= 2;
    if (dp->backoff > DP_BACKOFF_MAX)
        dp->backoff = DP_BACKOFF_MAX;
}

static void dp_ctl_close(struct dp *dp)
{
    ev_io_stop(dp->loop, &dp->rio);
    ev_io_stop(dp->loop, &dp->wio);
    if (dp->fd >= 0)
        close(dp->fd);
    dp->fd = -1;
    wire_dec_free(&dp->dec);
    wire_dec_init(&dp->dec, 0);
    if (dp->out != NULL)
        OPENSSL_cleanse(dp->out, dp->out_cap);
    free(dp->out);
    dp->out = NULL;
    dp->out_len = dp->out_off = dp->out_cap = 0;
}

static void dp_ctl_reset(struct dp *dp, const char *why)
{
    if (dp->fd >= 0)
        log_warn("dp", "control channel %s: %s; reconnecting in %.1f s", dp->sock_path, why,
                 dp->backoff);
    dp_ctl_close(dp);
    dp_ctl_schedule(dp);
}

static void dp_ctl_flush(struct dp *dp)
{
    while (dp->out_off < dp->out_len) {
        ssize_t r = send(dp->fd, dp->out + dp->out_off, dp->out_len - dp->out_off, MSG_NOSIGNAL);

        if (r > 0) {
            dp->out_off += (size_t)r;
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            ev_io_start(dp->loop, &dp->wio);
            return;
        }
        dp_ctl_reset(dp, r < 0 ? strerror(errno) : "write failed");
        return;
    }
    dp->out_off = dp->out_len = 0;
    ev_io_stop(dp->loop, &dp->wio);
}

void dp_ctl_send(struct dp *dp, cJSON *obj)
{
    struct err e = {0};
    char *frame = NULL;
    size_t len = 0;

    if (dp->fd < 0) {
        cJSON_Delete(obj);
        return;
    }
    if (wire_encode(obj, 0, &frame, &len, &e) < 0) {
        log_error("dp", "control channel: cannot encode frame: %s", e.message);
        cJSON_Delete(obj);
        return;
    }
    cJSON_Delete(obj);
    if (dp->out_len + len > dp->out_cap) {
        size_t nc = dp->out_cap ? dp->out_cap : 4096;
        char *nb;

        while (nc < dp->out_len + len)
            nc *= 2;
        nb = malloc(nc);
        if (nb == NULL) {
            wire_frame_free(frame, len);
            dp_ctl_reset(dp, "out of memory");
            return;
        }
        if (dp->out_len > 0)
            memcpy(nb, dp->out, dp->out_len);
        if (dp->out != NULL)
            OPENSSL_cleanse(dp->out, dp->out_cap);
        free(dp->out);
        dp->out = nb;
        dp->out_cap = nc;
    }
    memcpy(dp->out + dp->out_len, frame, len);
    dp->out_len += len;
    wire_frame_free(frame, len);
    dp_ctl_flush(dp);
}

static void dp_ctl_ack(struct dp *dp, int64_t version)
{
    cJSON *f = cJSON_CreateObject();

    cJSON_AddStringToObject(f, "type", "ack");
    cJSON_AddNumberToObject(f, "version", (double)version);
    dp_ctl_send(dp, f);
}

static void dp_ctl_nack(struct dp *dp, int64_t version, const char *error)
{
    cJSON *f = cJSON_CreateObject();

    cJSON_AddStringToObject(f, "type", "nack");
    cJSON_AddNumberToObject(f, "version", (double)version);
    cJSON_AddStringToObject(f, "error", error);
    dp_ctl_send(dp, f);
}

/* Refuse delta 'version' and ask for the full snapshot of that version. */
static void dp_ctl_resync(struct dp *dp, int64_t version, const char *error)
{
    cJSON *f = cJSON_CreateObject();

    log_info("dp", "snapshot_delta %lld: %s; asking for the full snapshot", (long long)version,
             error);
    cJSON_AddStringToObject(f, "type", "nack");
    cJSON_AddNumberToObject(f, "version", (double)version);
    cJSON_AddStringToObject(f, "error", error);
    cJSON_AddBoolToObject(f, "resync", 1);
    dp_ctl_send(dp, f);
}

static void dp_ctl_hello(struct dp *dp)
{
    cJSON *f = cJSON_CreateObject(), *certs;

    cJSON_AddStringToObject(f, "type", "hello");
    cJSON_AddStringToObject(f, "node_id", dp->node_id);
    cJSON_AddNumberToObject(f, "applied_version", dp->cur ? (double)dp->cur->version : 0);
    certs = cJSON_AddArrayToObject(f, "certificates");
    for (size_t i = 0; i < dp->n_certs; i++)
        cJSON_AddItemToArray(certs, cJSON_CreateString(dp->certs[i]->sha256));
    dp_ctl_send(dp, f);
}

/* A snapshot: ACK at once if already served, queue it while another one is
 * being published, else build and publish. */
static void dp_ctl_snapshot(struct dp *dp, cJSON *snap)
{
    if (dp->publishing != NULL) {
        cJSON_Delete(dp->queued);
        dp->queued = snap;
        return;
    }
    dp_ctl_apply(dp, snap);
}

/* Most certificates one delta may change (the control plane sends one). */
#define DP_DELTA_MAX 1024

/* What a delta changed in the current snapshot, to undo it on failure. */
struct dp_undo {
    cJSON *ref; /* the reference object in dp->cur_snap */
    char sha256[65];
    double version;
};

/* A delta applied in place (dp_config_swap): the current configuration
 * now serves 'version'; publish it to the workers again so the ACK, and the
 * release of the replaced certificates, wait until each has gone through
 * its loop. */
static void dp_ctl_publish_swap(struct dp *dp, int64_t version, int64_t base)
{
    log_info("dp", "snapshot_delta %lld applied in place on %lld (%zu certificates served)",
             (long long)version, (long long)base, dp->cur->n_served);
    dp->publishing = dp_config_ref(dp->cur);
    cJSON_Delete(dp->pub_snap);
    dp->pub_snap = NULL; /* cur_snap is already the new one */
    dp_workers_publish(dp, dp->publishing);
}

/* Set reference 'r''s sha256 and version (members the build checked). */
static int dp_ref_set(cJSON *r, const char *sha, double version)
{
    cJSON *s = cJSON_GetObjectItemCaseSensitive(r, "sha256");
    cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "version");

    if (!cJSON_IsString(s) || cJSON_SetValuestring(s, sha) == NULL)
        return -1;
    if (cJSON_IsNumber(v))
        cJSON_SetNumberValue(v, version);
    else if (cJSON_AddNumberToObject(r, "version", version) == NULL)
        return -1;
    return 0;
}

static void dp_undo(struct dp_undo *u, size_t n)
{
    while (n-- > 0)
        (void)dp_ref_set(u[n].ref, u[n].sha256, u[n].version);
}

/* A snapshot_delta: the current snapshot with some certificate references
 * replaced. The snapshot is patched; the configuration either swaps the
 * certificates in place (the usual rotation: same names) or is rebuilt from
 * the patched snapshot (sockets and parsed certificates reused); a failure
 * restores the snapshot and NACKs. Applies only on top of base_version, else the control plane is
 * asked for the full snapshot (nack with resync). */
static void dp_ctl_apply_delta(struct dp *dp, cJSON *d)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, "version");
    const cJSON *bv = cJSON_GetObjectItemCaseSensitive(d, "base_version");
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(d, "certificates"), *it;
    int64_t version = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
    int64_t base = cJSON_IsNumber(bv) ? (int64_t)bv->valuedouble : -1;
    cJSON *snap = dp->cur_snap, *refs;
    struct dp_undo *u = NULL;
    struct dp_swap *sw = NULL;
    struct dp_config *cfg = NULL;
    struct err e = {0};
    size_t n = 0;
    char why[160];

    if (version <= 0 || !cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > DP_DELTA_MAX) {
        dp_ctl_nack(dp, version, "snapshot_delta: bad version or certificates");
        goto out;
    }
    if (dp->cur != NULL && version == dp->cur->version) {
        dp_ctl_ack(dp, version);
        goto out;
    }
    if (dp->cur == NULL || snap == NULL || dp->cur->version != base) {
        snprintf(why, sizeof(why), "base version %lld is not the served version %lld",
                 (long long)base, dp->cur ? (long long)dp->cur->version : 0LL);
        dp_ctl_resync(dp, version, why);
        goto out;
    }
    refs = cJSON_GetObjectItemCaseSensitive(snap, "certificates");
    u = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*u));
    sw = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*sw));
    if (u == NULL || sw == NULL) {
        dp_ctl_nack(dp, version, "out of memory");
        goto out;
    }
    cJSON_ArrayForEach(it, arr)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "id"));
        const char *sha = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "sha256"));
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(it, "version");
        const char *osha;
        cJSON *r;

        if (id == NULL || sha == NULL || sha[0] == '\0' || strlen(sha) > 64 ||
            !cJSON_IsNumber(ver)) {
            dp_undo(u, n);
            dp_ctl_nack(dp, version, "snapshot_delta: bad certificate reference");
            goto out;
        }
        cJSON_ArrayForEach(r, dp_arr(refs))
        {
            const char *rid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "id"));
            if (rid != NULL && strcmp(rid, id) == 0)
                break;
        }
        osha = r ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "sha256")) : NULL;
        if (osha == NULL) {
            /* Our snapshot is not the one the delta was made from. */
            dp_undo(u, n);
            snprintf(why, sizeof(why), "certificate %.32s is not in snapshot %lld", id,
                     (long long)base);
            dp_ctl_resync(dp, version, why);
            goto out;
        }
        u[n].ref = r;
        snprintf(u[n].sha256, sizeof(u[n].sha256), "%s", osha);
        v = cJSON_GetObjectItemCaseSensitive(r, "version");
        u[n].version = cJSON_IsNumber(v) ? v->valuedouble : 0;
        sw[n].id = id;
        sw[n].sha256 = sha;
        n++;
        if (dp_ref_set(r, sha, ver->valuedouble) < 0) {
            dp_undo(u, n);
            dp_ctl_nack(dp, version, "out of memory");
            goto out;
        }
    }
    cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(snap, "version"), (double)version);
    switch (dp_config_swap(dp, dp->cur, sw, n, version, &e)) {
    case 1:
        dp_ctl_publish_swap(dp, version, base);
        goto out;
    case 0:
        break;
    default:
        cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(snap, "version"), (double)base);
        dp_undo(u, n);
        log_warn("dp", "snapshot_delta %lld refused: %s", (long long)version, e.message);
        dp_ctl_nack(dp, version, e.message);
        goto out;
    }
    if (dp_config_build(dp, snap, dp->cur, &cfg, &e) < 0) {
        cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(snap, "version"), (double)base);
        dp_undo(u, n);
        log_warn("dp", "snapshot_delta %lld refused: %s", (long long)version, e.message);
        dp_ctl_nack(dp, version, e.message);
        goto out;
    }
    log_info("dp", "snapshot_delta %lld built on %lld: %zu listeners, %zu certificates served",
             (long long)version, (long long)base, cfg->n_lsns, cfg->n_served);
    dp->publishing = cfg;
    cJSON_Delete(dp->pub_snap);
    dp->pub_snap = NULL; /* cur_snap is already the new one */
    dp_workers_publish(dp, cfg);
out:
    free(u);
    free(sw);
    cJSON_Delete(d);
}

static void dp_ctl_apply(struct dp *dp, cJSON *snap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(snap, "version");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(snap, "type");
    int64_t version = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
    struct dp_config *cfg = NULL;
    struct err e = {0};

    if (cJSON_IsString(t) && strcmp(t->valuestring, "snapshot_delta") == 0) {
        dp_ctl_apply_delta(dp, snap);
        return;
    }
    if (dp->cur != NULL && version == dp->cur->version) {
        log_info("dp", "snapshot %lld already served", (long long)version);
        dp_ctl_ack(dp, version);
        cJSON_Delete(snap);
        return;
    }
    if (dp_config_build(dp, snap, dp->cur, &cfg, &e) < 0) {
        log_warn("dp", "snapshot %lld refused: %s", (long long)version, e.message);
        dp_ctl_nack(dp, version, e.message);
        cJSON_Delete(snap);
        return;
    }
    log_info("dp", "snapshot %lld built: %zu listeners, %zu target groups, %zu certificates served",
             (long long)version, cfg->n_lsns, cfg->n_tgs, cfg->n_served);
    dp->publishing = cfg;
    cJSON_Delete(dp->pub_snap);
    dp->pub_snap = snap;
    dp_workers_publish(dp, cfg);
}

/* Every worker serves the published configuration: make it current. */
static void dp_ctl_published(struct dp *dp)
{
    struct dp_config *old = dp->cur;
    cJSON *q;

    dp->cur = dp->publishing;
    dp->publishing = NULL;
    if (old == dp->cur) {
        /* Certificates swapped in place: every worker has run its loop
         * since, so the replaced ones can go, and only their bodies are
         * stale (a rotation must not pay O(C log C) for dp_certs_keep). */
        dp_config_unref(old);
        dp_certs_drop_retired(dp);
        dp_config_release_retired(dp);
    } else {
        dp_config_close_unused(old, dp->cur);
        dp_config_unref(old);
        dp_config_release_retired(dp);
        if (dp->pub_snap != NULL) {
            cJSON_Delete(dp->cur_snap);
            dp->cur_snap = dp->pub_snap;
            dp->pub_snap = NULL;
        }
        dp_certs_keep(dp, dp->cur_snap);
        hc_apply(dp); /* before pruning: draining targets keep their counters */
        dp_stats_prune(dp);
    }
    log_info("dp", "snapshot %lld applied by %d workers", (long long)dp->cur->version,
             dp->nworkers);
    dp_ctl_ack(dp, dp->cur->version);
    q = dp->queued;
    dp->queued = NULL;
    if (q != NULL)
        dp_ctl_apply(dp, q);
}

static void dp_ctl_back_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    struct dp *dp = a->data;

    (void)revents;
    if (dp->stopping) {
        if (dp_workers_serve(dp, -1))
            ev_break(loop, EVBREAK_ALL);
        return;
    }
    if (dp->publishing != NULL && dp_workers_serve(dp, dp->publishing->version))
        dp_ctl_published(dp);
}

static void dp_ctl_frame(struct dp *dp, cJSON *f)
{
    const char *type = cJSON_GetObjectItemCaseSensitive(f, "type")->valuestring;
    struct err e = {0};

    if (strcmp(type, "certificate") == 0) {
        if (dp_ctl_cert(dp, f, &e) < 0) {
            log_warn("dp", "control channel: %s", e.message);
            dp_ctl_nack(dp, 0, e.message);
            dp_ctl_flush(dp);
            dp_ctl_reset(dp, "bad certificate frame");
        }
        cJSON_Delete(f);
        return;
    }
    if (strcmp(type, "snapshot") == 0 || strcmp(type, "snapshot_delta") == 0) {
        dp_ctl_snapshot(dp, f); /* takes f */
        return;
    }
    cJSON_Delete(f); /* unknown types are ignored (forward compatibility) */
}

static void dp_ctl_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct dp *dp = io->data;
    uint8_t buf[DP_READ_CHUNK];

    (void)loop;
    (void)revents;
    for (int round = 0; round < 64 && dp->fd >= 0; round++) {
        ssize_t r = recv(dp->fd, buf, sizeof(buf), 0);
        struct err e = {0};
        cJSON *f;
        int got = 0;

        if (r == 0) {
            dp_ctl_reset(dp, "closed by the control plane");
            return;
        }
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;
            dp_ctl_reset(dp, strerror(errno));
            return;
        }
        if (wire_dec_push(&dp->dec, buf, (size_t)r, &e) < 0)
            goto bad;
        while (dp->fd >= 0 && (got = wire_dec_next(&dp->dec, &f, &e)) == 1) {
            dp->backoff = DP_BACKOFF_MIN; /* a sane peer: reconnect fast next time */
            dp_ctl_frame(dp, f);
        }
        if (dp->fd >= 0 && got < 0)
            goto bad;
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return;
bad:
    OPENSSL_cleanse(buf, sizeof(buf));
    log_warn("dp", "control channel: bad frame; sending nack and resetting");
    dp_ctl_nack(dp, 0, "malformed or oversized frame");
    dp_ctl_flush(dp);
    dp_ctl_reset(dp, "bad frame");
}

static void dp_ctl_write_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    dp_ctl_flush(io->data);
}

static void dp_ctl_connect(struct dp *dp)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(dp->sock_path) >= sizeof(sun.sun_path)) {
        log_error("dp", "control socket path too long: %s", dp->sock_path);
        return;
    }
    memcpy(sun.sun_path, dp->sock_path, strlen(dp->sock_path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        dp_ctl_schedule(dp);
        return;
    }
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        log_debug("dp", "control socket %s: %s; retrying in %.1f s", dp->sock_path, strerror(errno),
                  dp->backoff);
        close(fd);
        dp_ctl_schedule(dp);
        return;
    }
    dp->fd = fd;
    log_info("dp", "control channel connected to %s", dp->sock_path);
    ev_io_init(&dp->rio, dp_ctl_read_cb, fd, EV_READ);
    dp->rio.data = dp;
    ev_io_init(&dp->wio, dp_ctl_write_cb, fd, EV_WRITE);
    dp->wio.data = dp;
    ev_io_start(dp->loop, &dp->rio);
    dp_ctl_hello(dp);
    hc_report_all(dp);
}

static void dp_ctl_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    dp_ctl_connect(t->data);
}

static void dp_ctl_stats_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct dp *dp = t->data;

    (void)loop;
    (void)revents;
    if (dp->fd >= 0 && dp->cur != NULL)
        dp_ctl_send(dp, dp_stats_frame(dp));
}

void dp_ctl_start(struct dp *dp)
{
    dp->fd = -1;
    dp->backoff = DP_BACKOFF_MIN;
    wire_dec_init(&dp->dec, 0);
    ev_async_init(&dp->back, dp_ctl_back_cb);
    dp->back.data = dp;
    ev_async_start(dp->loop, &dp->back);
    ev_init(&dp->retry, dp_ctl_retry_cb);
    dp->retry.data = dp;
    ev_timer_init(&dp->stats_tmr, dp_ctl_stats_cb, DP_STATS_EVERY, DP_STATS_EVERY);
    dp->stats_tmr.data = dp;
    ev_timer_start(dp->loop, &dp->stats_tmr);
    dp_ctl_connect(dp);
}

void dp_ctl_free(struct dp *dp)
{
    dp_ctl_close(dp);
    wire_dec_free(&dp->dec);
    ev_timer_stop(dp->loop, &dp->retry);
    ev_timer_stop(dp->loop, &dp->stats_tmr);
    ev_async_stop(dp->loop, &dp->back);
    for (size_t i = 0; i < dp->n_certs; i++)
        dp_certbody_free(dp->certs[i]);
    free(dp->certs);
    dp->certs = NULL;
    dp->n_certs = dp->cap_certs = 0;
    cJSON_Delete(dp->queued);
    dp->queued = NULL;
    cJSON_Delete(dp->pub_snap);
    dp->pub_snap = NULL;
    cJSON_Delete(dp->cur_snap);
    dp->cur_snap = NULL;
    dp_config_release_retired(dp);
    free(dp->retired);
    dp->retired = NULL;
    dp->cap_retired = 0;
    /* Configurations and live SSLs hold their own references. */
    for (int i = 0; i < 3; i++) {
        SSL_CTX_free(dp->srv_ctx[i]);
        dp->srv_ctx[i] = NULL;
    }
    SSL_CTX_free(dp->check_ctx);
    dp->check_ctx = NULL;
}
