/* hc-t.h - health checks of the proxy's main thread: types only. */
#ifndef PC_HC_T_H
#define PC_HC_T_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "tg-t.h"

/* The longest HTTP status line a check accepts, with its line end. */
#define HC_HTTP_MAX 4096u
#define HC_REASON_MAX 160
/* PROXY v2 LOCAL header (16) + the HTTP request (path up to 1024, host up to 255). */
#define HC_OUT_MAX 1536u

/* The threshold state machine of one target (pure: hc_sm_feed). */
struct hc_sm {
    enum tg_health state;
    int ok_run, fail_run; /* consecutive results */
};

/* An HTTP status line being read (pure: hc_http_feed). */
struct hc_http {
    char buf[HC_HTTP_MAX];
    size_t len;
};

enum hc_phase {
    HC_IDLE = 0,    /* waiting for the next check */
    HC_CONNECTING,  /* non-blocking connect in flight */
    HC_SENDING,     /* PROXY v2 header and/or HTTP request */
    HC_HANDSHAKING, /* TLS handshake */
    HC_READING,     /* HTTP status line */
};

/* The buffers of a check in flight (allocated for HTTP or PROXY v2 only). */
struct hc_buf {
    char out[HC_OUT_MAX];
    size_t out_len, out_off;
    struct hc_http http;
};

/* The checker of a target whose group has a health check, and what it was
 * built from (a change resets it). */
struct hc_chk {
    struct tg_hc set;
    char host[DP_HOST_MAX];
    int tport; /* the target's port */
    int resolved;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int tls_verify; /* verify with ctx (the group's client context) */
    SSL_CTX *ctx;   /* ref held when tls_verify */
    char sni[DP_HOST_MAX];
    /* the check in flight */
    enum hc_phase phase;
    int fd;
    SSL *ssl;
    ev_io io;
    ev_timer tmr; /* next check (idle) or the check's deadline */
    ev_tstamp started;
    struct hc_buf *buf; /* NULL when idle */
};

/* One target the main thread knows: of the current configuration, or
 * removed and still draining. Small: a storm of removals keeps one per
 * removed target for deregistration_delay_s. */
struct hc_tgt {
    struct hc *hc;
    char tg_id[DP_ID_MAX], id[DP_ID_MAX];
    struct dp_stats *st; /* ref held */
    int seen;            /* in the configuration being applied */
    int removed;         /* not in the current configuration: draining only */
    int weight;
    int dereg_delay_s;
    struct hc_chk *chk; /* NULL: no health check (or removed) */
    /* verdict */
    struct hc_sm sm;
    char reason[HC_REASON_MAX];
    /* draining (reports "draining" meanwhile) */
    int draining;
    char drain_reason[32];
    ev_timer drain_tmr;
};

struct hc {
    struct dp *dp;
    struct hc_tgt **v; /* sorted by (tg_id, id) */
    size_t n, cap;
    SSL_CTX *noverify; /* TLS checks without verification; created on first use */
    uint64_t rnd;
};

#endif
