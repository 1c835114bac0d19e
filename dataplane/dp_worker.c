/* dp_worker.c - worker threads: one ev_loop each, adopting published
 * configurations by pointer swap and answering the main thread. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "dp.h"
#include "err.h"
#include "log.h"
#include "lsn.h"

static void dp_worker_grace_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct dp_worker *w = t->data;

    (void)loop;
    (void)revents;
    if (w->n_conns > 0)
        log_info("dp", "worker %d: grace period over, closing %zu connections", w->idx, w->n_conns);
    conn_close_all(w, CONN_TERM_SHUTDOWN);
    ev_break(w->loop, EVBREAK_ALL);
}

/* How often a worker looks for connections to targets whose deregistration
 * delay ended: the close comes at most this late. */
#define DP_DRAIN_PERIOD 0.25

/* Close the connections whose target is draining and past its deadline
 * (struct dp_stats.drain_until, set by the main thread). One relaxed load
 * per connection per period. */
static void dp_worker_drain_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct dp_worker *w = t->data;
    int64_t now = 0;

    (void)loop;
    (void)revents;
    for (struct conn *c = w->conns; c != NULL; c = c->next) {
        int64_t until;

        if (c->tgt == NULL || c->up.fd < 0 || c->state == CONN_CLOSING)
            continue;
        until = atomic_load_explicit(&c->tgt->st->drain_until, memory_order_relaxed);
        if (until == 0)
            continue;
        if (now == 0)
            now = dp_now_ms();
        if (now < until)
            continue;
        snprintf(c->detail, sizeof(c->detail), "target %s deregistration delay over", c->tgt->id);
        conn_close(c, CONN_TERM_DRAINED);
    }
}

static void dp_worker_wake_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    struct dp_worker *w = a->data;
    struct dp_config *cfg;

    (void)loop;
    (void)revents;
    cfg = atomic_exchange_explicit(&w->pending, NULL, memory_order_acq_rel);
    if (cfg != NULL && cfg == w->cfg) {
        /* The same configuration at a new version (certificates swapped
         * in place): nothing to adopt, but this worker is now past any
         * use of the replaced ones. */
        atomic_store_explicit(&w->served, cfg->version, memory_order_release);
        dp_config_unref(cfg);
        ev_async_send(w->dp->loop, &w->dp->back);
    } else if (cfg != NULL) {
        if (lsn_worker_adopt(w, cfg) == 0) {
            struct dp_config *old = w->cfg;

            /* Connections keep their own refs: the old configuration
             * lives until the last of them closes. */
            w->cfg = cfg;
            dp_config_unref(old);
            atomic_store_explicit(&w->served, cfg->version, memory_order_release);
            ev_async_send(w->dp->loop, &w->dp->back);
        } else {
            dp_config_unref(cfg);
        }
    }
    if (atomic_load_explicit(&w->stop, memory_order_acquire) && !w->stopping) {
        w->stopping = 1;
        lsn_worker_stop(w);
        if (w->n_conns == 0) {
            ev_break(w->loop, EVBREAK_ALL);
            return;
        }
        log_info("dp", "worker %d: draining %zu connections (grace %.1f s)", w->idx, w->n_conns,
                 w->dp->grace);
        ev_timer_init(&w->grace, dp_worker_grace_cb, w->dp->grace, 0.);
        w->grace.data = w;
        ev_timer_start(w->loop, &w->grace);
    }
}

static void dp_worker_reap_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
    (void)loop;
    (void)revents;
    conn_reap(p->data);
}

static void *dp_worker_main(void *arg)
{
    struct dp_worker *w = arg;

    ev_run(w->loop, 0);
    /* Stopped: whatever is still open goes now. */
    conn_close_all(w, CONN_TERM_SHUTDOWN);
    ev_timer_stop(w->loop, &w->grace);
    ev_timer_stop(w->loop, &w->drain);
    ev_timer_stop(w->loop, &w->accept_pause);
    ev_prepare_stop(w->loop, &w->reap);
    ev_async_stop(w->loop, &w->wake);
    lsn_worker_free(w);
    conn_pools_free(w);
    dp_config_unref(w->cfg);
    w->cfg = NULL;
    dp_config_unref(atomic_exchange(&w->pending, NULL));
    /* served = -1 tells the main thread this worker is gone. */
    atomic_store_explicit(&w->served, -1, memory_order_release);
    ev_async_send(w->dp->loop, &w->dp->back);
    return NULL;
}

int dp_workers_start(struct dp *dp, struct err *err)
{
    sigset_t all, old;
    int rc = 0;

    dp->workers = calloc((size_t)dp->nworkers, sizeof(*dp->workers));
    if (dp->workers == NULL)
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    for (int i = 0; i < dp->nworkers; i++) {
        struct dp_worker *w = &dp->workers[i];

        w->dp = dp;
        w->idx = i;
        w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
        if (w->loop == NULL)
            return err_set(err, ERR_INTERNAL, "ev_loop_failed", NULL, "cannot create event loop");
        atomic_init(&w->pending, NULL);
        atomic_init(&w->served, 0);
        atomic_init(&w->stop, 0);
        ev_async_init(&w->wake, dp_worker_wake_cb);
        w->wake.data = w;
        ev_async_start(w->loop, &w->wake);
        ev_prepare_init(&w->reap, dp_worker_reap_cb);
        w->reap.data = w;
        ev_prepare_start(w->loop, &w->reap);
        /* Watchers of a loop must not be touched by two threads: the
         * accept-pause timer is initialised here, before the thread runs. */
        lsn_worker_init(w);
        ev_init(&w->grace, NULL);
        ev_timer_init(&w->drain, dp_worker_drain_cb, DP_DRAIN_PERIOD, DP_DRAIN_PERIOD);
        w->drain.data = w;
        ev_timer_start(w->loop, &w->drain);
        /* Workers run with every signal blocked: SIGTERM is the main
         * thread's business. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        rc = pthread_create(&w->thr, NULL, dp_worker_main, w);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0) {
            ev_loop_destroy(w->loop);
            w->loop = NULL;
            return err_set(err, ERR_INTERNAL, "thread_failed", NULL, "cannot start worker %d", i);
        }
    }
    return 0;
}

void dp_workers_publish(struct dp *dp, struct dp_config *cfg)
{
    for (int i = 0; i < dp->nworkers; i++) {
        struct dp_worker *w = &dp->workers[i];
        struct dp_config *prev;

        prev = atomic_exchange_explicit(&w->pending, dp_config_ref(cfg), memory_order_acq_rel);
        /* A configuration the worker never took is simply superseded. */
        dp_config_unref(prev);
        ev_async_send(w->loop, &w->wake);
    }
}

int dp_workers_serve(struct dp *dp, int64_t v)
{
    for (int i = 0; i < dp->nworkers; i++)
        if (atomic_load_explicit(&dp->workers[i].served, memory_order_acquire) != v)
            return 0;
    return 1;
}

void dp_workers_stop(struct dp *dp)
{
    for (int i = 0; i < dp->nworkers; i++) {
        atomic_store_explicit(&dp->workers[i].stop, 1, memory_order_release);
        if (dp->workers[i].loop != NULL)
            ev_async_send(dp->workers[i].loop, &dp->workers[i].wake);
    }
}

void dp_workers_join(struct dp *dp)
{
    for (int i = 0; dp->workers != NULL && i < dp->nworkers; i++) {
        struct dp_worker *w = &dp->workers[i];

        if (w->loop == NULL)
            continue;
        pthread_join(w->thr, NULL);
        ev_loop_destroy(w->loop);
        w->loop = NULL;
    }
    free(dp->workers);
    dp->workers = NULL;
}
