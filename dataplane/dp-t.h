/* dp-t.h - the proxy process: runtime configuration, workers, counters,
 * control channel. Types only. */
#ifndef PC_DP_T_H
#define PC_DP_T_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "conn-t.h"
#include "cs-t.h"
#include "lsn-t.h"
#include "tg-t.h"
#include "wire-t.h"

/* Counters of one worker for one listener or target. Written only by that
 * worker (plain relaxed stores), summed by the main thread. */
struct dp_ctr {
    _Atomic uint64_t active, total, bytes_in, bytes_out, errors;
    char pad[64 - 5 * sizeof(uint64_t)];
};

/* Counters of one listener ("lsn-...") or target ("tg-.../tgt-..."), kept
 * across configurations by key; refcounted (the registry holds one ref,
 * each configuration one). */
struct dp_stats {
    _Atomic int refs;
    _Atomic int conns; /* open connections over all workers (max_connections, least_conn) */
    /* Targets only. Written by the main thread, read by workers. */
    _Atomic int health;          /* enum tg_health */
    _Atomic int64_t drain_until; /* draining: close its connections at this dp_now_ms(); 0: not */
    struct dp_stats *next;       /* registry bucket chain, main thread only */
    char key[2 * DP_ID_MAX + 2];
    char tg_id[DP_ID_MAX], id[DP_ID_MAX];
    int n;
    struct dp_ctr slot[]; /* one per worker */
};

/* One certificate version parsed for serving, with the DNS names it answers
 * for. Shared by the body cache and every configuration slot that serves
 * it; atomically refcounted (the last configuration may die on a worker). */
struct dp_cert {
    _Atomic int refs;
    char sha256[65];
    char id[DP_ID_MAX];
    int version;
    struct cs_served s;
    char **names; /* DNS subjectAltNames (or CN), "*." kept; one block */
    size_t n_names;
};

/* The certificate 'id' as a configuration serves it. Listener name maps
 * point at slots, not at certificates, so a rotation that keeps the names
 * swaps 'cert' in place (main thread, dp_config_swap) instead of rebuilding
 * 1,000 listeners; workers read it once per ClientHello. A replaced
 * certificate is released only after every worker has gone through its
 * loop since the swap (struct dp.retired). */
struct dp_slot {
    _Atomic(struct dp_cert *) cert; /* one ref; NULL: no TLS listener serves it */
    char id[DP_ID_MAX];
};

/* A runtime configuration: everything a worker needs, immutable once
 * published, atomically refcounted (main thread, every worker, every
 * connection that started under it). */
struct dp_config {
    _Atomic int refs;
    /* Written by the main thread only for an in-place rotation, before the
     * configuration is handed to the workers again. */
    _Atomic int64_t version;
    int nworkers;
    struct dp_slot *slots; /* one per referenced certificate, sorted by id */
    size_t n_slots;
    size_t n_served; /* slots with a certificate */
    struct tg *tgs;
    size_t n_tgs;
    struct lsn_conf *lsns;
    size_t n_lsns;
};

/* A certificate body received in a `certificate` frame, by sha256. Main
 * thread only. Key bytes are wiped when freed. */
struct dp_certbody {
    char sha256[65];
    char id[DP_ID_MAX];
    int version;
    char *cert, *chain,
        *key; /* NUL-terminated; chain and key may be NULL; all NULL once 'served' */
    size_t cert_len, chain_len, key_len;
    /* Parsed on first use by a TLS listener (one ref); the texts go then
     * (the key wiped): they live on only as parsed objects. */
    struct dp_cert *served;
};

struct dp;
struct hc;

struct dp_worker {
    struct dp *dp;
    int idx;
    pthread_t thr;
    struct ev_loop *loop;
    ev_async wake;                       /* a new configuration, or stop */
    ev_prepare reap;                     /* frees connections closed during the last iteration */
    ev_timer accept_pause;               /* EMFILE: accepting resumes when it fires */
    ev_timer grace;                      /* shutdown: open connections get this long */
    ev_timer drain;                      /* closes connections whose target's drain ended */
    _Atomic(struct dp_config *) pending; /* set by the main thread, taken by the worker */
    _Atomic int64_t served;              /* version this worker serves (read by the main thread) */
    _Atomic int stop;
    struct dp_config *cfg; /* current; ref held */
    struct lsn_watch *lw;
    size_t n_lw;
    int accept_paused, stopping;
    struct conn *conns; /* live connections */
    size_t n_conns;
    struct conn *reap_list;
    struct conn *free_conns;
    struct conn_buf *free_bufs;
    size_t n_free_conns, n_free_bufs;
    struct conn_pipe *free_pipes;
    size_t n_free_pipes;
    uint64_t next_id;
};

#define DP_STATS_BUCKETS 1024u

struct dp {
    struct ev_loop *loop; /* main thread: control channel */
    int nworkers;
    struct dp_worker *workers;
    const char *sock_path;
    char node_id[256];
    double grace; /* seconds */
    /* control channel */
    int fd;
    ev_io rio, wio;
    ev_timer retry, stats_tmr, stop_tmr;
    ev_async back; /* a worker switched configuration or stopped */
    double backoff;
    struct wire_dec dec;
    char *out;
    size_t out_len, out_off, out_cap;
    /* TLS: one server SSL_CTX per policy (certificates are set per
     * handshake), and a scratch one certificates are checked in. */
    SSL_CTX *srv_ctx[3];
    SSL_CTX *check_ctx;
    /* certificates replaced in place, released once every worker serves
     * the configuration version of the swap */
    struct dp_cert **retired;
    size_t n_retired, cap_retired;
    /* certificate bodies, sorted by sha256 */
    struct dp_certbody **certs;
    size_t n_certs, cap_certs;
    /* configurations */
    struct dp_config *cur;        /* serving (every worker has it); ref held */
    struct dp_config *publishing; /* published, not every worker switched yet; ref held */
    struct cJSON *pub_snap;       /* the snapshot being published (NULL for a delta) */
    struct cJSON *cur_snap;       /* the snapshot 'cur' was built from (deltas patch it) */
    struct cJSON *queued;         /* a snapshot received while publishing */
    struct dp_stats *stats[DP_STATS_BUCKETS];
    struct hc *hc; /* health checks and draining reports (hc.c); main thread */
    int stopping;
};

#endif
