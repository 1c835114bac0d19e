/* conn-t.h - a proxied connection. Types only. */
#ifndef PC_CONN_T_H
#define PC_CONN_T_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>
#include <openssl/ssl.h>

/* One fixed buffer per direction (STYLE.md 7). */
#define CONN_BUF_SIZE 16384u
/* Bytes moved per direction and callback before yielding to other
 * connections of the worker. */
#define CONN_CB_BUDGET (256u * 1024u)
/* Connect attempts per connection (each on another target). */
#define CONN_MAX_ATTEMPTS 4u

enum conn_state {
    CONN_ACCEPTED = 0,
    CONN_HANDSHAKE,    /* TLS handshake with the client */
    CONN_PEEK,         /* reading the ClientHello without terminating it */
    CONN_CONNECTING,   /* non-blocking connect to a target */
    CONN_PROXY_HDR,    /* sending the PROXY v2 header to the target */
    CONN_UP_HANDSHAKE, /* TLS handshake with the target (re-encryption) */
    CONN_RELAY,
    CONN_CLOSING,
};

/* Why a connection ended; one per connection, the first one set wins. */
enum conn_term {
    CONN_TERM_NONE = 0,
    CONN_TERM_DONE,              /* both sides finished normally */
    CONN_TERM_CLIENT_ERROR,      /* reset or I/O error on the client side */
    CONN_TERM_TARGET_ERROR,      /* reset or I/O error on the target side */
    CONN_TERM_HANDSHAKE_FAILED,  /* client TLS handshake failed */
    CONN_TERM_HANDSHAKE_TIMEOUT, /* client did not finish the handshake / ClientHello */
    CONN_TERM_HELLO_TOO_LARGE,   /* peeked ClientHello over the bound */
    CONN_TERM_HELLO_MALFORMED,   /* peeked TLS records that are no ClientHello */
    CONN_TERM_CLIENT_CLOSED,     /* client left before a target was chosen */
    CONN_TERM_NO_TARGET,         /* the target group has no usable target */
    CONN_TERM_CONNECT_FAILED,    /* every attempt was refused or failed */
    CONN_TERM_CONNECT_TIMEOUT,   /* the last attempt timed out */
    CONN_TERM_UP_HANDSHAKE_FAILED,
    CONN_TERM_UP_VERIFY_FAILED, /* the target's certificate did not verify */
    CONN_TERM_IDLE_TIMEOUT,
    CONN_TERM_LIMIT,    /* listener max_connections reached */
    CONN_TERM_SHUTDOWN, /* proxy shutting down, grace expired */
    CONN_TERM_INTERNAL, /* out of memory, socket() failed */
    CONN_TERM_DRAINED,  /* the target's deregistration delay ended */
};

struct conn_buf {
    struct conn_buf *next; /* free list */
    uint32_t off, len;     /* unsent bytes are data[off, off + len) */
    uint8_t data[CONN_BUF_SIZE];
};

/* A pipe pair for splice(2) relaying of one direction when neither side
 * is TLS: bytes go socket -> pipe -> socket inside the kernel. Taken from
 * the worker's pool while the direction has bytes in flight. */
#define CONN_PIPE_BYTES (512u * 1024u) /* bytes held per pipe at most */
struct conn_pipe {
    struct conn_pipe *next; /* free list */
    int rd, wr;
    uint32_t len; /* bytes in the pipe */
};

struct conn;
struct conn_side;

/* I/O on one side, plain or TLS (redis ConnectionType). recv/send return
 * bytes (> 0), or one of CONN_IO_*. */
enum {
    CONN_IO_AGAIN = -1,
    CONN_IO_EOF = -2,
    CONN_IO_ERROR = -3,
};
struct conn_ops {
    long (*recv)(struct conn_side *s, void *buf, size_t n);
    long (*send)(struct conn_side *s, const void *buf, size_t n);
    int (*shut_wr)(struct conn_side *s); /* 0 done, CONN_IO_AGAIN, CONN_IO_ERROR */
};

#define CONN_S_EOF 0x01u        /* read side saw EOF */
#define CONN_S_SHUT 0x02u       /* we finished the write side (FIN / close_notify sent) */
#define CONN_S_RD_WANTS_W 0x04u /* SSL_read needs the socket writable */
#define CONN_S_WR_WANTS_R 0x08u /* SSL_write/SSL_shutdown needs it readable */
#define CONN_S_SHUT_PEND 0x10u  /* SSL_shutdown must be retried */
#define CONN_S_RD_SHORT 0x20u   /* TLS: the last read(2) did not fill OpenSSL's request */

struct conn_side {
    struct conn *c;
    int fd;
    SSL *ssl;
    const struct conn_ops *ops;
    ev_io io;
    int events;     /* what io is armed for */
    unsigned flags; /* CONN_S_* */
};

struct dp_worker;
struct dp_config;
struct lsn_conf;
struct tg;
struct tg_target;

struct conn {
    struct conn *prev, *next; /* worker's list of live connections; next also free list */
    struct conn *reap_next;   /* closed in this loop iteration, freed at its end */
    struct dp_worker *w;
    struct dp_config *cfg; /* ref held: the configuration it started with */
    const struct lsn_conf *lc;
    const struct tg *tg;
    const struct tg_target *tgt;
    uint64_t id;
    enum conn_state state;
    enum conn_term term;
    struct conn_side cli, up;
    /* Bytes in flight per direction: a buffer (TLS on either side, peeked
     * bytes) or a pipe (plain both ways). NULL while empty: an idle
     * connection holds neither (given back to the worker's pools). */
    struct conn_buf *c2s, *s2c;
    struct conn_pipe *c2s_p, *s2c_p;
    ev_timer tmr;
    ev_tstamp start, last_io, idle;
    const struct tg_target *tried[CONN_MAX_ATTEMPTS]; /* targets of attempts so far */
    unsigned attempts;
    uint8_t pp2_len, pp2_off; /* PROXY v2 header: its length, bytes sent */
    size_t peek_need;
    uint64_t bytes_in, bytes_out; /* from the client, to the client */
    int tgt_counted;              /* the target's active gauge includes this connection */
    int spliced;                  /* some bytes went through splice(2) */
    char sni[256];
    char detail[160]; /* why, in words, for the close log line (never secrets) */
    struct sockaddr_storage peer;
    socklen_t peerlen;
    uint8_t pp2[52]; /* PP2_MAX_LEN (pp2.h) */
};

#endif
