/* snap.c - snapshot building and the publisher thread. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cs.h"
#include "err.h"
#include "log.h"
#include "snap.h"
#include "store.h"
#include "wire.h"

/* Largest frame a proxy may send us (stats of thousands of targets fit). */
#define SNAP_MAX_IN_FRAME (4u * 1024u * 1024u)
/* A proxy that leaves this much unread is dropped. */
#define SNAP_MAX_OUTQ (256u * 1024u * 1024u)
/* Disconnected proxies remembered for /v1/status. */
#define SNAP_MAX_GONE 64
/* Health reports kept (one per target). */
#define SNAP_MAX_HEALTH 65536
#define SNAP_MAX_PEERS 4096

/* ---- building ---- */

static void snap_strip_times(cJSON *doc)
{
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "created_at");
    cJSON_DeleteItemFromObjectCaseSensitive(doc, "updated_at");
}

/* Every certificate of the store, looked up by id while a snapshot is
 * built; 'used' marks those already listed. One query per snapshot instead
 * of one per reference, and a bsearch instead of a scan of the list: the
 * scan made a snapshot of C references cost O(C^2). */
struct snap_refs {
    struct store_cert_ref *v;
    unsigned char *used;
    size_t n;
};

static int snap_ref_cmp(const void *key, const void *e)
{
    return strcmp(key, ((const struct store_cert_ref *)e)->id);
}

/* Add certificate 'id' to the snapshot's list unless it is there already. */
static int snap_add_cert(struct snap_refs *r, cJSON *certs, const char *id, struct err *err)
{
    const struct store_cert_ref *c =
        r->n ? bsearch(id, r->v, r->n, sizeof(*r->v), snap_ref_cmp) : NULL;
    cJSON *o;

    if (c == NULL)
        return err_set(err, ERR_INTERNAL, "store_error", NULL,
                       "snapshot refers to missing certificate %s", id);
    if (r->used[c - r->v])
        return 0;
    r->used[c - r->v] = 1;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", c->id);
    cJSON_AddNumberToObject(o, "version", (double)c->version);
    cJSON_AddStringToObject(o, "sha256", c->sha256);
    cJSON_AddItemToArray(certs, o);
    return 0;
}

int snap_build(struct store *st, int64_t version, cJSON **out, struct err *err)
{
    cJSON *snap = NULL, *tgs = NULL, *lsns = NULL, *certs, *x, *y, *tls;
    struct snap_refs refs = {0};
    int rc = -1;

    *out = NULL;
    if (store_tg_list(st, &tgs, err) < 0 || store_lsn_list(st, &lsns, err) < 0 ||
        store_cert_refs(st, &refs.v, &refs.n, err) < 0)
        goto out;
    refs.used = calloc(refs.n + 1, 1);
    if (refs.used == NULL) {
        err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
        goto out;
    }
    snap = cJSON_CreateObject();
    cJSON_AddStringToObject(snap, "type", "snapshot");
    cJSON_AddNumberToObject(snap, "version", (double)version);
    certs = cJSON_AddArrayToObject(snap, "certificates");
    cJSON_ArrayForEach(x, tgs)
    {
        snap_strip_times(x);
        tls = cJSON_GetObjectItem(x, "tls");
        y = cJSON_IsObject(tls) ? cJSON_GetObjectItem(tls, "ca_certificate_id") : NULL;
        if (cJSON_IsString(y) && snap_add_cert(&refs, certs, y->valuestring, err) < 0)
            goto out;
    }
    cJSON_ArrayForEach(x, lsns)
    {
        snap_strip_times(x);
        cJSON_ArrayForEach(y, cJSON_GetObjectItem(x, "certificate_ids"))
        {
            if (cJSON_IsString(y) && snap_add_cert(&refs, certs, y->valuestring, err) < 0)
                goto out;
        }
    }
    cJSON_AddItemToObject(snap, "target_groups", tgs);
    cJSON_AddItemToObject(snap, "listeners", lsns);
    tgs = lsns = NULL;
    *out = snap;
    snap = NULL;
    rc = 0;
out:
    free(refs.v);
    free(refs.used);
    cJSON_Delete(tgs);
    cJSON_Delete(lsns);
    cJSON_Delete(snap);
    return rc;
}

int snap_build_delta(struct store *st, int64_t version, int64_t base_version, const char *cert_id,
                     cJSON **out, struct err *err)
{
    struct store_cert c;
    cJSON *d, *certs, *lsns = cJSON_CreateArray(), *tgs = cJSON_CreateArray(), *o;
    int rc;

    *out = NULL;
    rc = store_cert_get(st, cert_id, 0, &c, err);
    if (rc == 0)
        err_set(err, ERR_INTERNAL, "store_error", NULL, "no certificate %s", cert_id);
    if (rc <= 0 || store_cert_users(st, cert_id, lsns, tgs, err) < 0) {
        if (rc > 0)
            store_cert_clear(&c);
        cJSON_Delete(lsns);
        cJSON_Delete(tgs);
        return -1;
    }
    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "type", "snapshot_delta");
    cJSON_AddNumberToObject(d, "version", (double)version);
    cJSON_AddNumberToObject(d, "base_version", (double)base_version);
    certs = cJSON_AddArrayToObject(d, "certificates");
    /* An unreferenced certificate is not in any snapshot: nothing changes
     * but the version. */
    if (cJSON_GetArraySize(lsns) > 0 || cJSON_GetArraySize(tgs) > 0) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", c.id);
        cJSON_AddNumberToObject(o, "version", (double)c.version);
        cJSON_AddStringToObject(o, "sha256", c.sha256);
        cJSON_AddItemToArray(certs, o);
    }
    store_cert_clear(&c);
    cJSON_Delete(lsns);
    cJSON_Delete(tgs);
    *out = d;
    return 0;
}

int snap_cert_frame(struct store *st, const struct cs_master *mk, const char *id, char **frame,
                    size_t *len, struct err *err)
{
    struct store_cert c;
    char *key = NULL;
    size_t key_len = 0;
    cJSON *o = NULL, *k;
    int rc = -1;

    *frame = NULL;
    rc = store_cert_get(st, id, 1, &c, err);
    if (rc <= 0)
        return rc < 0 ? -1
                      : err_set(err, ERR_INTERNAL, "store_error", NULL, "no certificate %s", id);
    rc = -1;
    if (c.key_ct != NULL && cs_open(mk, c.id, c.key_ct, c.key_ct_len, &key, &key_len, err) < 0)
        goto out;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "certificate");
    cJSON_AddStringToObject(o, "id", c.id);
    cJSON_AddNumberToObject(o, "version", (double)c.version);
    cJSON_AddStringToObject(o, "sha256", c.sha256);
    cJSON_AddStringToObject(o, "certificate", c.cert_pem);
    cJSON_AddStringToObject(o, "chain", c.chain_pem);
    if (key != NULL)
        cJSON_AddStringToObject(o, "private_key", key);
    rc = wire_encode(o, 0, frame, len, err);
out:
    /* cJSON copied the key: wipe that copy too before it is freed. */
    k = o ? cJSON_GetObjectItem(o, "private_key") : NULL;
    if (cJSON_IsString(k))
        OPENSSL_cleanse(k->valuestring, strlen(k->valuestring));
    cJSON_Delete(o);
    cs_secret_free(key, key_len);
    store_cert_clear(&c);
    return rc;
}

/* ---- sets of sha256 strings ---- */

struct sha_set {
    char (*v)[65];
    size_t n, cap;
    int sorted;
};

static int sha_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void sha_clear(struct sha_set *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static int sha_has(struct sha_set *s, const char *sha)
{
    if (s->n == 0)
        return 0;
    if (!s->sorted) {
        qsort(s->v, s->n, sizeof(*s->v), sha_cmp);
        s->sorted = 1;
    }
    return bsearch(sha, s->v, s->n, sizeof(*s->v), sha_cmp) != NULL;
}

/* Append without the membership test: for a set filled from a list that is
 * already free of duplicates (a snapshot's certificates), so that filling it
 * costs one sort at the first lookup instead of one sort per insert. */
static void sha_push(struct sha_set *s, const char *sha)
{
    if (strlen(sha) != 64)
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        void *nv = realloc(s->v, cap * sizeof(*s->v));

        if (nv == NULL)
            return; /* only costs a resend */
        s->v = nv;
        s->cap = cap;
    }
    memcpy(s->v[s->n++], sha, 65);
    s->sorted = 0;
}

/* ---- the publisher ---- */

enum snap_res {
    SNAP_R_NONE = 0,
    SNAP_R_PENDING,
    SNAP_R_ACK,
    SNAP_R_NACK,
    SNAP_R_GONE,
    SNAP_R_RESYNC, /* needs the full snapshot of the publication (no delta) */
};

struct snap_buf {
    struct snap_buf *next;
    char *data;
    size_t len, off;
};

struct snap_peer {
    int fd;    /* -1 once disconnected */
    int hello; /* hello received */
    int dead;  /* replaced by a newer connection: free at the next turn */
    int drop;  /* close at the next turn (did not answer in time) */
    char node_id[64];
    int64_t applied_version;
    int64_t sent_version;
    int64_t awaiting; /* version whose ack we wait for, 0 none */
    enum snap_res result;
    int in_req; /* part of the publication in flight */
    int needs_sync;
    char last_error[256];
    struct sha_set held;    /* certificate bodies the proxy has */
    struct sha_set sent;    /* bodies sent since its last ack */
    struct sha_set pending; /* certificates of the awaited snapshot */
    /* The references {id, version, sha256} of the applied snapshot, sorted
     * by id (refs_ok once a full snapshot was acked), and those of the
     * awaited one (all of a full snapshot, or the changed ones of a
     * delta). After a delta's ack 'held' is stale: it is rebuilt from
     * 'refs' when a full snapshot needs it (snap_held()). */
    struct store_cert_ref *refs, *prefs;
    size_t n_refs, n_prefs;
    int refs_ok, pend_delta, held_stale;
    int delta_ok; /* gets the delta of the publication in flight */
    int sync_sel; /* chosen by the snap_sync() in progress */
    struct wire_dec dec;
    struct snap_buf *outq, *outq_tail;
    size_t out_bytes;
    cJSON *stats;
    time_t gone_at;
};

struct snap_health {
    char tg[STORE_ID_MAX];
    char target[STORE_ID_MAX];
    char state[16];
    char reason[160];
    char node[64];
    int64_t updated_at;
    uint64_t seq; /* arrival order: updated_at has whole seconds only */
};

struct snap_pub {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* an answer arrived or a proxy left */
    pthread_t thr;
    int started;
    int lfd;
    int wake[2];
    int stop;
    int in_change;
    unsigned long changes; /* snap_pub_begin() calls: snap_sync() notices one */
    struct snap_peer **peers;
    size_t n_peers;
    struct snap_health *health;
    size_t n_health;
    uint64_t health_seq; /* last snap_health.seq given */
    struct store *rd;    /* the thread's own read connection */
    const struct cs_master *mk;
    int ack_timeout_ms;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

void snap_result_clear(struct snap_result *r)
{
    cJSON_Delete(r->not_applied);
    memset(r, 0, sizeof(*r));
}

static void snap_wake(struct snap_pub *p)
{
    char c = 1;
    ssize_t n = write(p->wake[1], &c, 1);

    (void)n; /* a full pipe already means "wake up" */
}

static int snap_enqueue(struct snap_peer *pe, const char *data, size_t len)
{
    struct snap_buf *b = calloc(1, sizeof(*b));

    if (b == NULL || (b->data = malloc(len)) == NULL) {
        free(b);
        return -1;
    }
    memcpy(b->data, data, len);
    b->len = len;
    if (pe->outq_tail)
        pe->outq_tail->next = b;
    else
        pe->outq = b;
    pe->outq_tail = b;
    pe->out_bytes += len;
    return 0;
}

static void snap_refs_clear(struct snap_peer *pe)
{
    free(pe->refs);
    free(pe->prefs);
    pe->refs = pe->prefs = NULL;
    pe->n_refs = pe->n_prefs = 0;
    pe->refs_ok = pe->pend_delta = pe->held_stale = 0;
}

static int snap_ref_sort(const void *a, const void *b)
{
    return strcmp(((const struct store_cert_ref *)a)->id, ((const struct store_cert_ref *)b)->id);
}

/* 'held' up to date with 'refs' (after deltas). */
static void snap_held(struct snap_peer *pe)
{
    if (!pe->held_stale)
        return;
    sha_clear(&pe->held);
    for (size_t i = 0; i < pe->n_refs; i++)
        sha_push(&pe->held, pe->refs[i].sha256);
    pe->held_stale = 0;
}

/* Whether the proxy holds body 'sha', without rebuilding a stale 'held'
 * (a rotation must not pay O(C log C)). */
static int snap_holds(struct snap_peer *pe, const char *sha)
{
    if (!pe->held_stale)
        return sha_has(&pe->held, sha);
    for (size_t i = 0; i < pe->n_refs; i++)
        if (strcmp(pe->refs[i].sha256, sha) == 0)
            return 1;
    return 0;
}

/* 'snap''s references as a sorted array (NULL on failure: no delta then). */
static struct store_cert_ref *snap_refs_of(const cJSON *snap, size_t *n)
{
    const cJSON *arr = cJSON_GetObjectItem(snap, "certificates"), *c;
    struct store_cert_ref *v = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*v));

    *n = 0;
    if (v == NULL)
        return NULL;
    cJSON_ArrayForEach(c, arr)
    {
        struct store_cert_ref *r = &v[(*n)++];

        snprintf(r->id, sizeof(r->id), "%s", cJSON_GetObjectItem(c, "id")->valuestring);
        snprintf(r->sha256, sizeof(r->sha256), "%s", cJSON_GetObjectItem(c, "sha256")->valuestring);
        r->version = (int64_t)cJSON_GetObjectItem(c, "version")->valuedouble;
    }
    qsort(v, *n, sizeof(*v), snap_ref_sort);
    return v;
}

static void snap_outq_free(struct snap_peer *pe)
{
    struct snap_buf *b, *n;

    for (b = pe->outq; b; b = n) {
        n = b->next;
        wire_frame_free(b->data, b->len);
        free(b);
    }
    pe->outq = pe->outq_tail = NULL;
    pe->out_bytes = 0;
}

/* Forget the health reports of proxy 'node': nobody checks for it any
 * more, so its last verdicts must not stand (a reconnecting proxy sends
 * every target's state again after its hello). */
static void snap_health_forget(struct snap_pub *p, const char *node)
{
    for (size_t i = 0; i < p->n_health;) {
        if (strcmp(p->health[i].node, node) == 0)
            p->health[i] = p->health[--p->n_health];
        else
            i++;
    }
}

/* Close the connection of 'pe' but remember the proxy for the status. */
static void snap_disconnect(struct snap_pub *p, struct snap_peer *pe, const char *why)
{
    if (pe->fd < 0)
        return;
    if (pe->hello)
        snap_health_forget(p, pe->node_id);
    if (pe->hello)
        log_info("snap", "proxy %s disconnected: %s", pe->node_id, why);
    close(pe->fd);
    pe->fd = -1;
    wire_dec_free(&pe->dec);
    snap_outq_free(pe);
    sha_clear(&pe->held);
    sha_clear(&pe->sent);
    sha_clear(&pe->pending);
    snap_refs_clear(pe);
    cJSON_Delete(pe->stats);
    pe->stats = NULL;
    if (pe->result == SNAP_R_PENDING || pe->result == SNAP_R_RESYNC)
        pe->result = SNAP_R_GONE;
    pe->awaiting = 0;
    pe->needs_sync = 0;
    pe->gone_at = time(NULL);
    pthread_cond_broadcast(&p->cv);
}

static void snap_peer_free(struct snap_peer *pe)
{
    if (pe->fd >= 0)
        close(pe->fd);
    wire_dec_free(&pe->dec);
    snap_outq_free(pe);
    sha_clear(&pe->held);
    sha_clear(&pe->sent);
    sha_clear(&pe->pending);
    snap_refs_clear(pe);
    cJSON_Delete(pe->stats);
    free(pe);
}

/* Remove freed or forgotten entries (thread only, under mu). */
static void snap_prune(struct snap_pub *p)
{
    size_t gone = 0, j = 0;

    for (size_t i = 0; i < p->n_peers; i++)
        if (p->peers[i]->fd < 0 && !p->peers[i]->dead)
            gone++;
    for (size_t i = 0; i < p->n_peers; i++) {
        struct snap_peer *pe = p->peers[i];
        int forget = pe->dead || (pe->fd < 0 && (!pe->hello || gone > SNAP_MAX_GONE));

        if (forget && !pe->in_req) {
            if (pe->fd < 0 && !pe->dead)
                gone--;
            snap_peer_free(pe);
            continue;
        }
        p->peers[j++] = pe;
    }
    p->n_peers = j;
}

static void snap_health_put(struct snap_pub *p, const char *node, const cJSON *f)
{
    const cJSON *tg = cJSON_GetObjectItem(f, "target_group_id");
    const cJSON *t = cJSON_GetObjectItem(f, "target_id");
    const cJSON *s = cJSON_GetObjectItem(f, "state");
    const cJSON *r = cJSON_GetObjectItem(f, "reason");
    struct snap_health *h = NULL;

    if (!cJSON_IsString(tg) || !cJSON_IsString(t) || !cJSON_IsString(s) ||
        strlen(tg->valuestring) >= STORE_ID_MAX || strlen(t->valuestring) >= STORE_ID_MAX)
        return;
    if (strcmp(s->valuestring, "initial") && strcmp(s->valuestring, "healthy") &&
        strcmp(s->valuestring, "unhealthy") && strcmp(s->valuestring, "draining") &&
        strcmp(s->valuestring, "removed"))
        return;
    /* One report per (target, proxy): each proxy checks on its own. */
    for (size_t i = 0; i < p->n_health; i++)
        if (!strcmp(p->health[i].tg, tg->valuestring) &&
            !strcmp(p->health[i].target, t->valuestring) && !strcmp(p->health[i].node, node))
            h = &p->health[i];
    if (strcmp(s->valuestring, "removed") == 0) {
        /* The proxy forgot the target (its drain ended): so do we. */
        if (h != NULL)
            *h = p->health[--p->n_health];
        return;
    }
    if (h == NULL) {
        if (p->n_health == SNAP_MAX_HEALTH) {
            /* Forget the oldest report. */
            size_t old = 0;

            for (size_t i = 1; i < p->n_health; i++)
                if (p->health[i].seq < p->health[old].seq)
                    old = i;
            h = &p->health[old];
        } else {
            if (p->health == NULL)
                p->health = calloc(SNAP_MAX_HEALTH, sizeof(*p->health));
            if (p->health == NULL)
                return;
            h = &p->health[p->n_health++];
        }
    }
    snprintf(h->tg, sizeof(h->tg), "%s", tg->valuestring);
    snprintf(h->target, sizeof(h->target), "%s", t->valuestring);
    snprintf(h->state, sizeof(h->state), "%s", s->valuestring);
    snprintf(h->reason, sizeof(h->reason), "%s", cJSON_IsString(r) ? r->valuestring : "");
    snprintf(h->node, sizeof(h->node), "%s", node);
    h->updated_at = time(NULL);
    h->seq = ++p->health_seq;
}

static void snap_hello(struct snap_pub *p, struct snap_peer *pe, const cJSON *f)
{
    const cJSON *id = cJSON_GetObjectItem(f, "node_id");
    const cJSON *av = cJSON_GetObjectItem(f, "applied_version");
    const cJSON *certs = cJSON_GetObjectItem(f, "certificates"), *x;

    if (pe->hello)
        return;
    if (!cJSON_IsString(id) || id->valuestring[0] == '\0' ||
        strlen(id->valuestring) >= sizeof(pe->node_id)) {
        snap_disconnect(p, pe, "bad hello");
        return;
    }
    /* A proxy that reconnects replaces its previous connection. */
    for (size_t i = 0; i < p->n_peers; i++) {
        struct snap_peer *o = p->peers[i];

        if (o != pe && o->hello && !o->dead && strcmp(o->node_id, id->valuestring) == 0) {
            snap_disconnect(p, o, "replaced by a new connection");
            o->dead = 1;
        }
    }
    snprintf(pe->node_id, sizeof(pe->node_id), "%s", id->valuestring);
    pe->applied_version = cJSON_IsNumber(av) ? (int64_t)av->valuedouble : 0;
    cJSON_ArrayForEach(x, certs)
    {
        if (cJSON_IsString(x))
            sha_push(&pe->held, x->valuestring); /* a duplicate only costs a slot */
    }
    pe->hello = 1;
    pe->last_error[0] = '\0';
    pe->needs_sync = 1;
    log_info("snap", "proxy %s connected (applied version %lld, %zu certificates)", pe->node_id,
             (long long)pe->applied_version, pe->held.n);
}

static void snap_frame(struct snap_pub *p, struct snap_peer *pe, const cJSON *f)
{
    const char *type = cJSON_GetObjectItem(f, "type")->valuestring;
    const cJSON *v = cJSON_GetObjectItem(f, "version");
    int64_t ver = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;

    if (strcmp(type, "hello") == 0) {
        snap_hello(p, pe, f);
        return;
    }
    if (!pe->hello) {
        snap_disconnect(p, pe, "frame before hello");
        return;
    }
    if (strcmp(type, "ack") == 0) {
        if (ver != pe->awaiting || ver <= 0)
            return;
        pe->applied_version = ver;
        if (pe->pend_delta) {
            /* Patch the references in place; 'held' follows lazily. */
            for (size_t i = 0; i < pe->n_prefs; i++) {
                struct store_cert_ref *r = pe->n_refs ? bsearch(&pe->prefs[i], pe->refs, pe->n_refs,
                                                                sizeof(*r), snap_ref_sort)
                                                      : NULL;
                if (r != NULL)
                    *r = pe->prefs[i];
            }
            free(pe->prefs);
            pe->held_stale = 1;
            if (!pe->refs_ok) {
                free(pe->refs);
                pe->refs = NULL;
                pe->n_refs = 0;
                pe->held_stale = 0;
                sha_clear(&pe->held); /* unknown: assume nothing, resend all */
            }
        } else {
            sha_clear(&pe->held);
            pe->held = pe->pending;
            memset(&pe->pending, 0, sizeof(pe->pending));
            free(pe->refs);
            pe->refs = pe->prefs;
            pe->n_refs = pe->n_prefs;
            pe->refs_ok = pe->refs != NULL;
            pe->held_stale = 0;
        }
        pe->prefs = NULL;
        pe->n_prefs = 0;
        pe->pend_delta = 0;
        sha_clear(&pe->sent);
        pe->awaiting = 0;
        pe->last_error[0] = '\0';
        if (pe->result == SNAP_R_PENDING)
            pe->result = SNAP_R_ACK;
        log_debug("snap", "proxy %s acked version %lld", pe->node_id, (long long)ver);
        pthread_cond_broadcast(&p->cv);
    } else if (strcmp(type, "nack") == 0) {
        const cJSON *e = cJSON_GetObjectItem(f, "error");
        /* A delta the proxy cannot apply to what it serves: it wants the
         * full snapshot of the same version, which is not a refusal. */
        int resync = pe->pend_delta && cJSON_IsTrue(cJSON_GetObjectItem(f, "resync"));

        if (resync) {
            log_info("snap", "proxy %s asks for the full snapshot %lld: %s", pe->node_id,
                     (long long)ver, cJSON_IsString(e) ? e->valuestring : "");
        } else {
            snprintf(pe->last_error, sizeof(pe->last_error), "%s",
                     cJSON_IsString(e) ? e->valuestring : "refused");
            log_warn("snap", "proxy %s refused version %lld: %s", pe->node_id, (long long)ver,
                     pe->last_error);
        }
        if (ver != pe->awaiting || ver <= 0)
            return;
        snap_held(pe);
        for (size_t i = 0; i < pe->sent.n; i++)
            sha_push(&pe->held, pe->sent.v[i]);
        sha_clear(&pe->sent);
        sha_clear(&pe->pending);
        free(pe->prefs);
        pe->prefs = NULL;
        pe->n_prefs = 0;
        pe->pend_delta = 0;
        if (resync)
            pe->refs_ok = 0; /* its state is not what we thought: no more deltas */
        pe->awaiting = 0;
        if (pe->result == SNAP_R_PENDING)
            pe->result = resync ? SNAP_R_RESYNC : SNAP_R_NACK;
        pthread_cond_broadcast(&p->cv);
    } else if (strcmp(type, "health") == 0) {
        snap_health_put(p, pe->node_id, f);
    } else if (strcmp(type, "stats") == 0) {
        cJSON *s = cJSON_CreateObject();

        cJSON_AddItemToObject(s, "listeners",
                              cJSON_Duplicate(cJSON_GetObjectItem(f, "listeners"), 1));
        cJSON_AddItemToObject(s, "targets", cJSON_Duplicate(cJSON_GetObjectItem(f, "targets"), 1));
        cJSON_Delete(pe->stats);
        pe->stats = s;
    }
    /* Unknown types are ignored (forward compatibility). */
}

static void snap_read(struct snap_pub *p, struct snap_peer *pe)
{
    char buf[65536];
    struct err err = {0};
    cJSON *f = NULL;
    ssize_t n;
    int rc = 0;

    for (int rounds = 0; rounds < 64 && pe->fd >= 0; rounds++) {
        n = read(pe->fd, buf, sizeof(buf));
        if (n == 0) {
            snap_disconnect(p, pe, "closed by the proxy");
            return;
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                snap_disconnect(p, pe, strerror(errno));
            return;
        }
        if (wire_dec_push(&pe->dec, buf, (size_t)n, &err) < 0) {
            snap_disconnect(p, pe, err.message);
            return;
        }
        while (pe->fd >= 0 && (rc = wire_dec_next(&pe->dec, &f, &err)) == 1) {
            snap_frame(p, pe, f);
            cJSON_Delete(f);
        }
        if (pe->fd >= 0 && rc < 0) {
            snap_disconnect(p, pe, err.message);
            return;
        }
    }
}

static void snap_flush(struct snap_pub *p, struct snap_peer *pe)
{
    while (pe->fd >= 0 && pe->outq != NULL) {
        struct snap_buf *b = pe->outq;
        ssize_t n = send(pe->fd, b->data + b->off, b->len - b->off, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                snap_disconnect(p, pe, strerror(errno));
            return;
        }
        b->off += (size_t)n;
        if (b->off < b->len)
            return;
        pe->out_bytes -= b->len;
        pe->outq = b->next;
        if (pe->outq == NULL)
            pe->outq_tail = NULL;
        wire_frame_free(b->data, b->len);
        free(b);
    }
}

/* The certificate frames of one publication, loaded once and shared. */
struct snap_frames {
    char **data;
    size_t *len;
    char (*sha)[65];
    const char **by_sha; /* sha[] sorted, for the lookups of snap_send() */
    size_t n;
};

static int snap_pstr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void snap_frames_free(struct snap_frames *fr)
{
    for (size_t i = 0; i < fr->n; i++)
        wire_frame_free(fr->data[i], fr->len[i]);
    free(fr->data);
    free(fr->len);
    free(fr->sha);
    free(fr->by_sha);
    memset(fr, 0, sizeof(*fr));
}

/* Which peers snap_missing() looks at. */
enum snap_want {
    SNAP_W_SYNC,   /* needs_sync: the committed snapshot */
    SNAP_W_FULL,   /* in the publication, full snapshot (no delta) */
    SNAP_W_DELTA,  /* in the publication, the delta */
    SNAP_W_RESYNC, /* in the publication, asked for the full snapshot */
};

static int snap_wanted(const struct snap_peer *pe, enum snap_want want)
{
    if (pe->fd < 0 || !pe->hello)
        return 0;
    switch (want) {
    case SNAP_W_SYNC:
        return pe->needs_sync && pe->sync_sel;
    case SNAP_W_FULL:
        return pe->in_req && !pe->delta_ok;
    case SNAP_W_DELTA:
        return pe->in_req && pe->delta_ok;
    case SNAP_W_RESYNC:
        return pe->in_req && pe->result == SNAP_R_RESYNC;
    }
    return 0;
}

/* Collect in 'ids' the certificates of 'snap' (a snapshot or a delta) that
 * some peer selected by 'want' lacks. Under mu. */
static void snap_missing(struct snap_pub *p, const cJSON *snap, enum snap_want want, cJSON *ids)
{
    const cJSON *c;

    for (size_t i = 0; want != SNAP_W_DELTA && i < p->n_peers; i++)
        if (snap_wanted(p->peers[i], want))
            snap_held(p->peers[i]);
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(snap, "certificates"))
    {
        const char *sha = cJSON_GetObjectItem(c, "sha256")->valuestring;

        for (size_t i = 0; i < p->n_peers; i++) {
            struct snap_peer *pe = p->peers[i];

            if (!snap_wanted(pe, want))
                continue;
            if (!snap_holds(pe, sha)) {
                cJSON *o = cJSON_CreateObject();

                cJSON_AddStringToObject(o, "id", cJSON_GetObjectItem(c, "id")->valuestring);
                cJSON_AddStringToObject(o, "sha256", sha);
                cJSON_AddItemToArray(ids, o);
                break;
            }
        }
    }
}

static int snap_frames_load(struct store *st, const struct cs_master *mk, const cJSON *ids,
                            struct snap_frames *fr, struct err *err)
{
    size_t n = (size_t)cJSON_GetArraySize(ids);
    const cJSON *x;

    memset(fr, 0, sizeof(*fr));
    if (n == 0)
        return 0;
    fr->data = calloc(n, sizeof(*fr->data));
    fr->len = calloc(n, sizeof(*fr->len));
    fr->sha = calloc(n, sizeof(*fr->sha));
    fr->by_sha = calloc(n, sizeof(*fr->by_sha));
    if (!fr->data || !fr->len || !fr->sha || !fr->by_sha) {
        snap_frames_free(fr);
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    }
    cJSON_ArrayForEach(x, ids)
    {
        if (snap_cert_frame(st, mk, cJSON_GetObjectItem(x, "id")->valuestring, &fr->data[fr->n],
                            &fr->len[fr->n], err) < 0) {
            snap_frames_free(fr);
            return -1;
        }
        snprintf(fr->sha[fr->n], 65, "%s", cJSON_GetObjectItem(x, "sha256")->valuestring);
        fr->by_sha[fr->n] = fr->sha[fr->n];
        fr->n++;
    }
    qsort(fr->by_sha, fr->n, sizeof(*fr->by_sha), snap_pstr_cmp);
    return 0;
}

static int snap_fr_cmp(const void *key, const void *e)
{
    return strcmp(key, *(const char *const *)e);
}

/* Queue the certificate frame with content hash 'sha' to 'pe', if the
 * change built one, and remember it as sent. Under mu. */
static void snap_send_body(struct snap_peer *pe, const struct snap_frames *fr, const char *sha)
{
    const char *const *hit =
        fr->n ? bsearch(sha, fr->by_sha, fr->n, sizeof(*fr->by_sha), snap_fr_cmp) : NULL;

    if (hit != NULL) {
        size_t i = (size_t)(*hit - fr->sha[0]) / sizeof(fr->sha[0]);

        if (snap_enqueue(pe, fr->data[i], fr->len[i]) == 0)
            sha_push(&pe->sent, sha);
    }
}

/* Queue the missing certificate frames and the snapshot to 'pe'. Under mu.
 * 'fr' is sorted by sha256 (snap_frames_load()). */
static void snap_send(struct snap_peer *pe, const cJSON *snap, int64_t version,
                      const struct snap_frames *fr, const char *frame, size_t frame_len)
{
    const cJSON *c;
    size_t n_sent;

    snap_held(pe);
    n_sent = pe->sent.n;
    sha_clear(&pe->pending);
    (void)sha_has(&pe->sent, ""); /* sort it once, before the loop appends */
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(snap, "certificates"))
    {
        const char *sha = cJSON_GetObjectItem(c, "sha256")->valuestring;

        /* snap_add_cert() made the snapshot's references unique. */
        sha_push(&pe->pending, sha);
        if (sha_has(&pe->held, sha) ||
            (n_sent && bsearch(sha, pe->sent.v, n_sent, sizeof(*pe->sent.v), sha_cmp)))
            continue;
        snap_send_body(pe, fr, sha);
    }
    snap_enqueue(pe, frame, frame_len);
    free(pe->prefs);
    pe->prefs = snap_refs_of(snap, &pe->n_prefs);
    pe->pend_delta = 0;
    pe->sent_version = version;
    pe->awaiting = version;
    pe->needs_sync = 0;
}

/* Queue the delta 'delta' (and the bodies 'pe' lacks) to 'pe', which serves
 * the delta's base version. Under mu. */
static void snap_send_delta(struct snap_peer *pe, const cJSON *delta, int64_t version,
                            const struct snap_frames *fr, const char *frame, size_t frame_len)
{
    const cJSON *c;
    size_t n = (size_t)cJSON_GetArraySize(cJSON_GetObjectItem(delta, "certificates"));

    free(pe->prefs);
    pe->prefs = calloc(n + 1, sizeof(*pe->prefs));
    pe->n_prefs = 0;
    if (pe->prefs == NULL)
        pe->refs_ok = 0; /* cannot follow this delta: forget what it holds at the ack */
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(delta, "certificates"))
    {
        const char *sha = cJSON_GetObjectItem(c, "sha256")->valuestring;

        if (pe->prefs != NULL) {
            struct store_cert_ref *r = &pe->prefs[pe->n_prefs++];

            snprintf(r->id, sizeof(r->id), "%s", cJSON_GetObjectItem(c, "id")->valuestring);
            snprintf(r->sha256, sizeof(r->sha256), "%s", sha);
            r->version = (int64_t)cJSON_GetObjectItem(c, "version")->valuedouble;
        }
        if (snap_holds(pe, sha))
            continue;
        snap_send_body(pe, fr, sha);
    }
    snap_enqueue(pe, frame, frame_len);
    pe->pend_delta = 1;
    pe->sent_version = version;
    pe->awaiting = version;
    pe->needs_sync = 0;
}

/* Send the committed configuration to every proxy that asked for it
 * (needs_sync). Thread only, under mu. */
static void snap_sync(struct snap_pub *p)
{
    struct snap_frames fr = {0};
    struct err err = {0};
    cJSON *snap = NULL, *ids = NULL;
    char *frame = NULL;
    size_t frame_len = 0;
    int64_t cv, lv;
    unsigned long gen = p->changes;
    int any = 0, rc;

    for (size_t i = 0; i < p->n_peers; i++) {
        struct snap_peer *pe = p->peers[i];

        pe->sync_sel = pe->fd >= 0 && pe->hello && pe->needs_sync;
        any |= pe->sync_sel;
    }
    if (!any || p->in_change)
        return;
    ids = cJSON_CreateArray();
    /* Building the snapshot and decrypting what a fresh proxy lacks (10,000
     * keys) happen outside the lock, as in snap_pub_publish(): /v1/status
     * and the API go on meanwhile. Only this thread adds or removes peers,
     * so the array stays; a change begun meanwhile voids the work. */
    pthread_mutex_unlock(&p->mu);
    rc = store_begin(p->rd, &err) < 0 || store_versions(p->rd, &cv, &lv, &err) < 0 ||
                 snap_build(p->rd, cv, &snap, &err) < 0
             ? -1
             : 0;
    pthread_mutex_lock(&p->mu);
    if (rc < 0 || p->in_change || p->changes != gen)
        goto out;
    snap_missing(p, snap, SNAP_W_SYNC, ids);
    pthread_mutex_unlock(&p->mu);
    rc = snap_frames_load(p->rd, p->mk, ids, &fr, &err) < 0 ||
                 wire_encode(snap, 0, &frame, &frame_len, &err) < 0
             ? -1
             : 0;
    pthread_mutex_lock(&p->mu);
    if (rc < 0 || p->in_change || p->changes != gen)
        goto out;
    for (size_t i = 0; i < p->n_peers; i++) {
        struct snap_peer *pe = p->peers[i];

        if (pe->fd < 0 || !pe->needs_sync || !pe->sync_sel)
            continue;
        snap_send(pe, snap, cv, &fr, frame, frame_len);
        log_debug("snap", "sent version %lld to proxy %s", (long long)cv, pe->node_id);
    }
out:
    for (size_t i = 0; i < p->n_peers; i++)
        p->peers[i]->sync_sel = 0;
    if (err_isset(&err))
        log_error("snap", "cannot send the configuration: %s", err.message);
    store_rollback(p->rd);
    wire_frame_free(frame, frame_len);
    snap_frames_free(&fr);
    cJSON_Delete(snap);
    cJSON_Delete(ids);
}

static void snap_accept(struct snap_pub *p)
{
    struct snap_peer *pe;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int fd;

    for (int i = 0; i < 16; i++) {
        fd = accept4(p->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
            (cred.uid != geteuid() && cred.uid != 0)) {
            log_warn("snap", "refused a control connection from uid %ld", (long)cred.uid);
            close(fd);
            continue;
        }
        if (p->n_peers >= SNAP_MAX_PEERS || (pe = calloc(1, sizeof(*pe))) == NULL) {
            close(fd);
            continue;
        }
        pe->fd = fd;
        wire_dec_init(&pe->dec, SNAP_MAX_IN_FRAME);
        p->peers[p->n_peers++] = pe;
    }
}

static void *snap_thread(void *arg)
{
    struct snap_pub *p = arg;
    struct pollfd *pfd = calloc(SNAP_MAX_PEERS + 2, sizeof(*pfd));
    struct snap_peer **pp = calloc(SNAP_MAX_PEERS + 2, sizeof(*pp));
    char drain[64];

    if (pfd == NULL || pp == NULL) {
        log_error("snap", "out of memory: publisher not running");
        goto out;
    }
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        nfds_t n = 2;

        for (size_t i = 0; i < p->n_peers; i++) {
            struct snap_peer *pe = p->peers[i];

            if (pe->fd >= 0 && pe->drop)
                snap_disconnect(p, pe, "no answer in time");
            if (pe->fd >= 0 && pe->out_bytes > SNAP_MAX_OUTQ)
                snap_disconnect(p, pe, "not reading its frames");
        }
        snap_prune(p);
        pfd[0] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
        for (size_t i = 0; i < p->n_peers; i++) {
            struct snap_peer *pe = p->peers[i];

            if (pe->fd < 0)
                continue;
            pp[n] = pe;
            pfd[n++] =
                (struct pollfd){.fd = pe->fd, .events = (short)(POLLIN | (pe->outq ? POLLOUT : 0))};
        }
        pthread_mutex_unlock(&p->mu);
        poll(pfd, n, 1000);
        pthread_mutex_lock(&p->mu);
        if (pfd[0].revents & POLLIN)
            while (read(p->wake[0], drain, sizeof(drain)) > 0)
                ;
        for (nfds_t i = 2; i < n; i++) {
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
                snap_read(p, pp[i]);
            if (pp[i]->fd >= 0)
                snap_flush(p, pp[i]);
        }
        if (pfd[1].revents & POLLIN)
            snap_accept(p);
        snap_sync(p);
        /* Frames queued by sync or by an API thread go out at once. */
        for (size_t i = 0; i < p->n_peers; i++)
            if (p->peers[i]->fd >= 0 && p->peers[i]->outq)
                snap_flush(p, p->peers[i]);
    }
    pthread_mutex_unlock(&p->mu);
out:
    free(pfd);
    free(pp);
    return NULL;
}

int snap_pub_start(const struct snap_pub_opts *o, struct snap_pub **out, struct err *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct snap_pub *p;
    struct stat sb;
    pthread_condattr_t ca;

    if (strlen(o->socket_path) >= sizeof(sa.sun_path))
        return err_set(err, ERR_INVALID, "bad_control_socket", NULL,
                       "control socket path is too long (max %zu bytes)", sizeof(sa.sun_path) - 1);
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    p->lfd = p->wake[0] = p->wake[1] = -1;
    p->mk = o->mk;
    p->ack_timeout_ms = o->ack_timeout_ms > 0 ? o->ack_timeout_ms : SNAP_ACK_TIMEOUT_MS;
    snprintf(p->path, sizeof(p->path), "%s", o->socket_path);
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->peers = calloc(SNAP_MAX_PEERS, sizeof(*p->peers));
    if (p->peers == NULL) {
        err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
        goto fail;
    }
    if (store_open(o->db_path, STORE_F_READER, &p->rd, err) < 0)
        goto fail;
    if (pipe2(p->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        err_set(err, ERR_INTERNAL, "pipe_failed", NULL, "pipe: %s", strerror(errno));
        goto fail;
    }
    /* A stale socket from a previous run is replaced; anything else is not. */
    if (lstat(p->path, &sb) == 0) {
        if (!S_ISSOCK(sb.st_mode)) {
            err_set(err, ERR_INVALID, "bad_control_socket", NULL, "%s exists and is not a socket",
                    p->path);
            goto fail;
        }
        unlink(p->path);
    }
    memcpy(sa.sun_path, p->path, strlen(p->path) + 1);
    p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        chmod(p->path, 0600) < 0 || listen(p->lfd, 64) < 0) {
        err_set(err, ERR_INVALID, "bad_control_socket", NULL, "cannot listen on %s: %s", p->path,
                strerror(errno));
        goto fail;
    }
    if (pthread_create(&p->thr, NULL, snap_thread, p) != 0) {
        err_set(err, ERR_INTERNAL, "thread_failed", NULL, "cannot start the publisher thread");
        goto fail;
    }
    p->started = 1;
    log_info("snap", "control socket listening on %s", p->path);
    *out = p;
    return 0;
fail:
    snap_pub_stop(p);
    return -1;
}

void snap_pub_stop(struct snap_pub *p)
{
    if (p == NULL)
        return;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_mutex_unlock(&p->mu);
        snap_wake(p);
        pthread_join(p->thr, NULL);
    }
    for (size_t i = 0; i < p->n_peers; i++)
        snap_peer_free(p->peers[i]);
    free(p->peers);
    free(p->health);
    if (p->lfd >= 0) {
        close(p->lfd);
        unlink(p->path);
    }
    if (p->wake[0] >= 0)
        close(p->wake[0]);
    if (p->wake[1] >= 0)
        close(p->wake[1]);
    store_close(p->rd);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void snap_pub_begin(struct snap_pub *p)
{
    pthread_mutex_lock(&p->mu);
    p->in_change = 1;
    p->changes++;
    pthread_mutex_unlock(&p->mu);
}

void snap_pub_end(struct snap_pub *p, int64_t committed_version)
{
    pthread_mutex_lock(&p->mu);
    p->in_change = 0;
    for (size_t i = 0; i < p->n_peers; i++) {
        struct snap_peer *pe = p->peers[i];

        pe->in_req = 0;
        if (pe->fd >= 0 && pe->hello && pe->sent_version != committed_version &&
            pe->applied_version != committed_version)
            pe->needs_sync = 1;
    }
    pthread_mutex_unlock(&p->mu);
    snap_wake(p);
}

/* Load the frames of what the peers selected by 'want' lack of 'snap', then
 * queue 'snap' (a delta when 'delta') to them. Frames are read and keys
 * decrypted outside the lock: status reads go on. Called and returns under
 * mu. */
static int snap_pub_queue(struct snap_pub *p, struct store *st, const cJSON *snap, int delta,
                          int64_t version, enum snap_want want, const char *frame, size_t frame_len,
                          struct snap_result *res, struct err *err)
{
    struct snap_frames fr = {0};
    cJSON *ids = cJSON_CreateArray();
    int rc;

    snap_missing(p, snap, want, ids);
    pthread_mutex_unlock(&p->mu);
    rc = snap_frames_load(st, p->mk, ids, &fr, err);
    pthread_mutex_lock(&p->mu);
    cJSON_Delete(ids);
    if (rc < 0)
        return -1;
    for (size_t i = 0; i < p->n_peers; i++) {
        struct snap_peer *pe = p->peers[i];

        if (!pe->in_req || (pe->fd >= 0 && !snap_wanted(pe, want)))
            continue;
        if (pe->fd < 0) {
            if (pe->result == SNAP_R_PENDING || pe->result == SNAP_R_RESYNC)
                pe->result = SNAP_R_GONE;
            continue;
        }
        if (delta)
            snap_send_delta(pe, snap, version, &fr, frame, frame_len);
        else
            snap_send(pe, snap, version, &fr, frame, frame_len);
        if (want != SNAP_W_RESYNC)
            res->n_proxies++;
        pe->result = SNAP_R_PENDING;
    }
    snap_frames_free(&fr);
    snap_wake(p);
    return 0;
}

int snap_pub_publish(struct snap_pub *p, struct store *st, const cJSON *snapshot, int64_t version,
                     struct snap_result *res, struct err *err)
{
    const cJSON *t = cJSON_GetObjectItem(snapshot, "type");
    const cJSON *bv = cJSON_GetObjectItem(snapshot, "base_version");
    int delta = cJSON_IsString(t) && strcmp(t->valuestring, "snapshot_delta") == 0;
    int64_t base = cJSON_IsNumber(bv) ? (int64_t)bv->valuedouble : -1;
    struct timespec dl;
    cJSON *full = NULL;
    char *frame = NULL, *full_frame = NULL;
    size_t frame_len = 0, full_len = 0;
    int rc = -1, waiting, n_full = 0;

    memset(res, 0, sizeof(*res));
    res->not_applied = cJSON_CreateArray();
    if (wire_encode(snapshot, 0, &frame, &frame_len, err) < 0)
        return -1;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n_peers; i++) {
        struct snap_peer *pe = p->peers[i];

        pe->in_req = pe->fd >= 0 && pe->hello;
        pe->result = pe->in_req ? SNAP_R_PENDING : SNAP_R_NONE;
        /* A delta only applies to the base it was made from, on a proxy
         * whose references we know and that awaits nothing else. */
        pe->delta_ok = delta && pe->in_req && pe->refs_ok && pe->awaiting == 0 && !pe->needs_sync &&
                       pe->applied_version == base;
        if (delta && pe->in_req && !pe->delta_ok) {
            pe->result = SNAP_R_RESYNC;
            n_full++;
        }
    }
    if (snap_pub_queue(p, st, snapshot, delta, version, delta ? SNAP_W_DELTA : SNAP_W_FULL, frame,
                       frame_len, res, err) < 0)
        goto unlock;
    res->n_proxies += n_full;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += p->ack_timeout_ms / 1000;
    dl.tv_nsec += (long)(p->ack_timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    for (;;) {
        int resync = 0;

        waiting = 0;
        for (size_t i = 0; i < p->n_peers; i++) {
            if (!p->peers[i]->in_req)
                continue;
            if (p->peers[i]->result == SNAP_R_PENDING)
                waiting = 1;
            if (p->peers[i]->result == SNAP_R_RESYNC)
                resync = 1;
        }
        if (resync) {
            /* The full snapshot of this version, built from the caller's
             * transaction (what a delta would have produced). */
            if (full == NULL) {
                pthread_mutex_unlock(&p->mu);
                rc = snap_build(st, version, &full, err) < 0 ||
                             wire_encode(full, 0, &full_frame, &full_len, err) < 0
                         ? -1
                         : 0;
                pthread_mutex_lock(&p->mu);
                if (rc < 0)
                    goto unlock;
                rc = -1;
            }
            if (snap_pub_queue(p, st, full, 0, version, SNAP_W_RESYNC, full_frame, full_len, res,
                               err) < 0)
                goto unlock;
            continue;
        }
        if (!waiting || pthread_cond_timedwait(&p->cv, &p->mu, &dl) != 0)
            break;
    }
    for (size_t i = 0; i < p->n_peers; i++) {
        struct snap_peer *pe = p->peers[i];

        if (!pe->in_req)
            continue;
        switch (pe->result) {
        case SNAP_R_ACK:
            res->n_acked++;
            break;
        case SNAP_R_NACK:
            if (!res->nacked) {
                snprintf(res->nack_node, sizeof(res->nack_node), "%s", pe->node_id);
                snprintf(res->nack_error, sizeof(res->nack_error), "%s", pe->last_error);
            }
            res->nacked = 1;
            break;
        case SNAP_R_PENDING:
        case SNAP_R_RESYNC:
            /* One hung proxy never blocks the API: drop it; it resynchronises. */
            pe->drop = 1;
            pe->result = SNAP_R_GONE;
            log_warn("snap", "proxy %s did not answer version %lld within %d ms", pe->node_id,
                     (long long)version, p->ack_timeout_ms);
            /* fallthrough */
        default:
            cJSON_AddItemToArray(res->not_applied, cJSON_CreateString(pe->node_id));
            break;
        }
    }
    rc = 0;
unlock:
    if (rc < 0)
        for (size_t i = 0; i < p->n_peers; i++)
            if (p->peers[i]->in_req &&
                (p->peers[i]->result == SNAP_R_PENDING || p->peers[i]->result == SNAP_R_RESYNC))
                p->peers[i]->drop = 1; /* left in an unknown state: resynchronise it */
    pthread_mutex_unlock(&p->mu);
    snap_wake(p);
    wire_frame_free(frame, frame_len);
    wire_frame_free(full_frame, full_len);
    cJSON_Delete(full);
    return rc;
}

cJSON *snap_pub_status(struct snap_pub *p)
{
    cJSON *arr = cJSON_CreateArray(), *o;

    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n_peers; i++) {
        struct snap_peer *pe = p->peers[i];

        if (!pe->hello || pe->dead)
            continue;
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", pe->node_id);
        cJSON_AddBoolToObject(o, "connected", pe->fd >= 0);
        cJSON_AddNumberToObject(o, "applied_version", (double)pe->applied_version);
        if (pe->last_error[0])
            cJSON_AddStringToObject(o, "last_error", pe->last_error);
        else
            cJSON_AddNullToObject(o, "last_error");
        cJSON_AddItemToArray(arr, o);
    }
    pthread_mutex_unlock(&p->mu);
    return arr;
}

int snap_pub_connected(struct snap_pub *p)
{
    int n = 0;

    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n_peers; i++)
        if (p->peers[i]->fd >= 0 && p->peers[i]->hello)
            n++;
    pthread_mutex_unlock(&p->mu);
    return n;
}

cJSON *snap_pub_health(struct snap_pub *p, const char *tg_id)
{
    cJSON *arr = cJSON_CreateArray(), *o;

    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n_health; i++) {
        struct snap_health *h = &p->health[i];

        if (strcmp(h->tg, tg_id) != 0)
            continue;
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "target_id", h->target);
        cJSON_AddStringToObject(o, "state", h->state);
        cJSON_AddStringToObject(o, "reason", h->reason);
        cJSON_AddNumberToObject(o, "updated_at", (double)h->updated_at);
        cJSON_AddNumberToObject(o, "seq", (double)h->seq);
        cJSON_AddStringToObject(o, "node_id", h->node);
        cJSON_AddItemToArray(arr, o);
    }
    pthread_mutex_unlock(&p->mu);
    return arr;
}

cJSON *snap_pub_stats(struct snap_pub *p)
{
    cJSON *arr = cJSON_CreateArray(), *o;

    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->n_peers; i++) {
        struct snap_peer *pe = p->peers[i];

        if (pe->fd < 0 || pe->stats == NULL)
            continue;
        o = cJSON_Duplicate(pe->stats, 1);
        cJSON_AddStringToObject(o, "node_id", pe->node_id);
        cJSON_AddItemToArray(arr, o);
    }
    pthread_mutex_unlock(&p->mu);
    return arr;
}
