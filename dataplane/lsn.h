/* lsn.h - listener sockets and accepting. */
#ifndef PC_LSN_H
#define PC_LSN_H

#include "err-t.h"
#include "lsn-t.h"

struct dp_config;
struct dp_worker;

/* Bind 'n' SO_REUSEPORT listening sockets on 'sa'. '*out' has one ref,
 * owned by the caller. A failure closes whatever was bound. */
int lsn_socks_bind(const struct sockaddr *sa, socklen_t len, int n, struct lsn_socks **out,
                   struct err *err);

static inline struct lsn_socks *lsn_socks_ref(struct lsn_socks *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

/* Drop a ref; the last closes any socket still open and frees. NULL is fine. */
void lsn_socks_unref(struct lsn_socks *s);

/* Close the sockets now (main thread, when no worker watches them). */
void lsn_socks_close(struct lsn_socks *s);

/* Release what a listener configuration owns (not the struct). */
void lsn_conf_free(struct lsn_conf *lc);

/* Prepare the worker's accept watchers (before its thread starts). */
void lsn_worker_init(struct dp_worker *w);

/* Worker: switch the accept watchers to 'cfg'; a socket shared with the
 * previous configuration stays bound (only its watcher is re-armed).
 * Returns -1 (old watchers untouched) when out of memory. */
int lsn_worker_adopt(struct dp_worker *w, struct dp_config *cfg);

/* Worker: stop accepting for good (shutdown), refusing new connections at
 * the kernel level. */
void lsn_worker_stop(struct dp_worker *w);

/* Worker: free the watchers. */
void lsn_worker_free(struct dp_worker *w);

#endif
