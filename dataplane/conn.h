/* conn.h - the proxied connection's state machine. */
#ifndef PC_CONN_H
#define PC_CONN_H

#include "conn-t.h"

struct dp_worker;
struct lsn_conf;

/* Take over an accepted socket 'fd' (the connection owns it from now on,
 * even on failure) and start its state machine. Worker thread. */
void conn_start(struct dp_worker *w, const struct lsn_conf *lc, int fd, const struct sockaddr *peer,
                socklen_t peerlen);

/* End a connection with reason 'term' (the first reason wins). Frees it at
 * the end of the loop iteration, so callers up the stack may still look at
 * it (state CONN_CLOSING). */
void conn_close(struct conn *c, enum conn_term term);

/* Free connections closed in this iteration (worker's ev_prepare). */
void conn_reap(struct dp_worker *w);

/* Close every connection of the worker now (shutdown). */
void conn_close_all(struct dp_worker *w, enum conn_term term);

/* Release the worker's free lists. */
void conn_pools_free(struct dp_worker *w);

/* Name of a reason, for logs. */
const char *conn_term_str(enum conn_term t);

/* True for reasons counted as errors. */
int conn_term_is_error(enum conn_term t);

/* The ClientHello callback installed on every server SSL_CTX: picks the
 * certificate by SNI from the connection's configuration. */
int conn_client_hello_cb(SSL *ssl, int *alert, void *arg);

#endif
