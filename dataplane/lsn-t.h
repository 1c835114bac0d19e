/* lsn-t.h - listeners: configuration and sockets. Types only. */
#ifndef PC_LSN_T_H
#define PC_LSN_T_H

#include <stdatomic.h>
#include <stddef.h>
#include <sys/socket.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "cs-t.h"
#include "sni-t.h"
#include "tg-t.h"

enum lsn_proto {
    LSN_PROTO_TCP = 0, /* pass-through, optionally routed by a peeked SNI */
    LSN_PROTO_TLS,     /* TLS terminated here (offload / re-encryption) */
};

/* The listening sockets of one (bind, port): one SO_REUSEPORT socket per
 * worker. Shared by every configuration that has this address, so an
 * unchanged listener is never re-bound. The main thread closes the sockets
 * (lsn_socks_close) once the serving configuration no longer has them;
 * memory goes with the last configuration. */
struct lsn_socks {
    _Atomic int refs;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int n;
    int fds[]; /* n, -1 once closed */
};

struct dp_slot;

/* One listener of a runtime configuration. Immutable. */
struct lsn_conf {
    char id[DP_ID_MAX];
    char name[DP_ID_MAX];
    char addr_str[64]; /* "bind:port" for logs */
    enum lsn_proto proto;
    struct tg *default_tg;
    /* TLS */
    SSL_CTX *ctx;                 /* the policy's (one ref); no certificate in it */
    struct dp_slot *default_slot; /* no or unknown SNI: the first certificate */
    struct sni_map certs;         /* name -> struct dp_slot *, borrowed */
    unsigned char sid_ctx[32];    /* SHA-256 of the id: sessions stay per listener */
    enum cs_policy policy;
    unsigned char *alpn; /* wire format, or NULL */
    size_t alpn_len;
    /* routing */
    struct sni_map routes; /* name -> struct tg * */
    /* limits, in seconds for libev */
    unsigned max_conns;
    double handshake_timeout, connect_timeout, idle_timeout;
    struct lsn_socks *socks; /* ref held */
    struct dp_stats *st;     /* ref held; survives configurations by id */
};

struct dp_worker;

/* A worker's accept watcher on one listener socket. */
struct lsn_watch {
    ev_io io;
    struct dp_worker *w;
    const struct lsn_conf *lc; /* in the worker's current configuration */
    int fd;
};

#endif
