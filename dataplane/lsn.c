/* lsn.c - listener sockets (one SO_REUSEPORT socket per worker) and the
 * accept path of a worker. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "dp.h"
#include "err.h"
#include "log.h"
#include "lsn.h"
#include "net.h"
#include "sni.h"

#define LSN_BACKLOG 4096
#define LSN_ACCEPT_BATCH 64  /* accepts per callback before yielding */
#define LSN_EMFILE_PAUSE 0.1 /* seconds without accepting after EMFILE */

int lsn_socks_bind(const struct sockaddr *sa, socklen_t len, int n, struct lsn_socks **out,
                   struct err *err)
{
    struct lsn_socks *s = calloc(1, sizeof(*s) + (size_t)n * sizeof(int));

    *out = NULL;
    if (s == NULL)
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    atomic_init(&s->refs, 1);
    memcpy(&s->addr, sa, len);
    s->addrlen = len;
    s->n = n;
    for (int i = 0; i < n; i++)
        s->fds[i] = -1;
    for (int i = 0; i < n; i++) {
        if (net_listen_tcp(sa, len, 1, LSN_BACKLOG, &s->fds[i], err) < 0) {
            lsn_socks_unref(s);
            return -1;
        }
    }
    *out = s;
    return 0;
}

void lsn_socks_close(struct lsn_socks *s)
{
    for (int i = 0; i < s->n; i++) {
        if (s->fds[i] >= 0)
            close(s->fds[i]);
        s->fds[i] = -1;
    }
}

void lsn_socks_unref(struct lsn_socks *s)
{
    if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    lsn_socks_close(s);
    free(s);
}

void lsn_conf_free(struct lsn_conf *lc)
{
    SSL_CTX_free(lc->ctx);
    lc->ctx = NULL;
    sni_map_free(&lc->certs);
    sni_map_free(&lc->routes);
    free(lc->alpn);
    lc->alpn = NULL;
    lsn_socks_unref(lc->socks);
    lc->socks = NULL;
    dp_stats_unref(lc->st);
    lc->st = NULL;
}

/* Accept until the queue is empty or the batch is used up. */
static void lsn_accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct lsn_watch *lw = (struct lsn_watch *)io;
    struct dp_worker *w = lw->w;

    (void)loop;
    (void)revents;
    for (int i = 0; i < LSN_ACCEPT_BATCH && !w->accept_paused; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        int fd = accept4(lw->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The queue stays full and level-triggered readiness would
                 * spin: stop accepting on every listener for a moment. */
                log_warn("dp", "worker %d: accept on %s: %s; pausing accepts %.0f ms", w->idx,
                         lw->lc->addr_str, strerror(errno), LSN_EMFILE_PAUSE * 1000);
                w->accept_paused = 1;
                for (size_t k = 0; k < w->n_lw; k++)
                    ev_io_stop(w->loop, &w->lw[k].io);
                ev_timer_set(&w->accept_pause, LSN_EMFILE_PAUSE, 0.);
                ev_timer_start(w->loop, &w->accept_pause);
            }
            return;
        }
        conn_start(w, lw->lc, fd, (struct sockaddr *)&peer, plen);
    }
}

static void lsn_pause_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct dp_worker *w = t->data;

    (void)loop;
    (void)revents;
    w->accept_paused = 0;
    if (w->stopping)
        return;
    for (size_t k = 0; k < w->n_lw; k++)
        ev_io_start(w->loop, &w->lw[k].io);
}

void lsn_worker_init(struct dp_worker *w)
{
    ev_timer_init(&w->accept_pause, lsn_pause_cb, LSN_EMFILE_PAUSE, 0.);
    w->accept_pause.data = w;
}

int lsn_worker_adopt(struct dp_worker *w, struct dp_config *cfg)
{
    struct lsn_watch *nw = calloc(cfg->n_lsns + 1, sizeof(*nw));
    size_t n = 0;

    if (nw == NULL) {
        /* The old watchers and configuration go on serving; the control
         * plane sees no ACK for this version. */
        log_error("dp", "worker %d: out of memory adopting config %lld", w->idx,
                  (long long)cfg->version);
        return -1;
    }
    for (size_t i = 0; i < cfg->n_lsns; i++) {
        const struct lsn_conf *lc = &cfg->lsns[i];
        int fd = lc->socks->fds[w->idx];
        struct lsn_watch *l = &nw[n++];
        ev_io_init(&l->io, lsn_accept_cb, fd, EV_READ);
        l->w = w;
        l->lc = lc;
        l->fd = fd;
        if (!w->accept_paused && !w->stopping && fd >= 0)
            ev_io_start(w->loop, &l->io);
    }
    for (size_t k = 0; k < w->n_lw; k++)
        if (ev_is_active(&w->lw[k].io))
            ev_io_stop(w->loop, &w->lw[k].io);
    free(w->lw);
    w->lw = nw;
    w->n_lw = n;
    return 0;
}

void lsn_worker_stop(struct dp_worker *w)
{
    for (size_t k = 0; k < w->n_lw; k++) {
        if (ev_is_active(&w->lw[k].io))
            ev_io_stop(w->loop, &w->lw[k].io);
        /* A listening socket shut down refuses new SYNs at once, while the
         * main thread still owns (and later closes) the descriptor. */
        if (w->lw[k].fd >= 0)
            shutdown(w->lw[k].fd, SHUT_RDWR);
    }
    ev_timer_stop(w->loop, &w->accept_pause);
}

void lsn_worker_free(struct dp_worker *w)
{
    free(w->lw);
    w->lw = NULL;
    w->n_lw = 0;
}
