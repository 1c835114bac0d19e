/* tg-t.h - target groups of the runtime configuration: types. */
#ifndef PC_TG_T_H
#define PC_TG_T_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#define DP_ID_MAX 80 /* "tgt-" + 16 hex, with room for longer ids */
#define DP_HOST_MAX 256

struct dp_stats;

enum tg_proto {
    TG_PROTO_TCP = 0, /* plain bytes to the target */
    TG_PROTO_TLS,     /* a fresh TLS connection to the target (re-encryption) */
};

enum tg_algo {
    TG_ALGO_ROUND_ROBIN = 0,
    TG_ALGO_LEAST_CONN,
};

/* Health-check settings (hc.c runs them). */
struct tg_hc {
    int enabled;
    int protocol; /* 0 tcp, 1 http, 2 tls */
    int port;     /* 0: the target's port */
    char path[1025];
    int interval_ms, timeout_ms, healthy_threshold, unhealthy_threshold;
    int fail_open; /* no healthy target: 1 use every target with weight > 0, 0 refuse */
    int proxy_v2;  /* send a PROXY v2 LOCAL header before each check */
};

/* Health of a target as the checker last decided it (struct dp_stats.health).
 * A group without health checks keeps every target TG_H_HEALTHY. */
enum tg_health {
    TG_H_INITIAL = 0, /* no verdict yet: takes connections */
    TG_H_HEALTHY,
    TG_H_UNHEALTHY,
};

struct tg_target {
    char id[DP_ID_MAX];
    char host[DP_HOST_MAX];
    int port;
    int weight;
    int resolved;        /* addr is valid */
    int64_t resolved_at; /* dp_now_ms() of the getaddrinfo that filled addr (DNS names only) */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct dp_stats *st; /* counters, shared across configurations (ref held) */
};

struct tg {
    char id[DP_ID_MAX];
    char name[DP_ID_MAX];
    enum tg_proto proto;
    enum tg_algo algo;
    struct tg_target *targets;
    size_t n_targets;
    size_t *eligible; /* indexes of targets that take new connections (weight > 0, resolved) */
    size_t n_eligible;
    /* Smooth weighted round robin (nginx ngx_http_upstream_round_robin):
     * worker i's current weight of target j is wrr[i * wrr_stride + j].
     * Each worker writes only its own row (rows start on cache lines). */
    int *wrr;
    size_t wrr_stride;
    struct tg_hc hc;
    int dereg_delay_s;
    int proxy_v2;
    /* re-encryption (proto TLS) */
    SSL_CTX *cli_ctx; /* one ref; reused across configs with the same key */
    int verify;
    char *server_name;  /* SNI and verified name, or NULL */
    char ca_sha256[65]; /* the trust anchor's content hash, "" for the system store */
};

#endif
