/* tg.c - target choice. Candidates are the targets with weight > 0 (the
 * configuration's eligible list) that are not draining and, when the group
 * has a health check, healthy or not yet checked; if none is, fail_open
 * decides between all of them and none. Among candidates:
 * - round_robin: smooth weighted round robin (nginx), exact proportions;
 * - least_conn: fewest open connections per weight (nginx least_conn),
 *   ties by smooth weighted round robin, so idle targets share by weight. */
#include <stdatomic.h>
#include <stdlib.h>

#include "dp.h"
#include "err.h"
#include "tg.h"

int tg_prepare(struct tg *tg, int nworkers, struct err *err)
{
    /* Whole cache lines per worker: rows are written by different threads. */
    size_t per_line = 64 / sizeof(int);
    size_t stride = (tg->n_targets + per_line - 1) / per_line * per_line;

    if (stride == 0)
        stride = per_line;
    free(tg->wrr);
    tg->wrr = aligned_alloc(64, (size_t)nworkers * stride * sizeof(int));
    if (tg->wrr == NULL)
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    for (size_t i = 0; i < (size_t)nworkers * stride; i++)
        tg->wrr[i] = 0;
    tg->wrr_stride = stride;
    return 0;
}

static int tg_tried(const struct tg_target *t, const struct tg_target *const *tried, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (tried[i] == t)
            return 1;
    return 0;
}

static int tg_draining(const struct tg_target *t)
{
    return atomic_load_explicit(&t->st->drain_until, memory_order_relaxed) != 0;
}

static int tg_healthy(const struct tg_target *t)
{
    int h = atomic_load_explicit(&t->st->health, memory_order_relaxed);

    return h == TG_H_HEALTHY || h == TG_H_INITIAL;
}

/* Is target 't' a candidate of this choice? */
static int tg_candidate(const struct tg_target *t, int by_health,
                        const struct tg_target *const *tried, unsigned n_tried)
{
    return !tg_draining(t) && (!by_health || tg_healthy(t)) && !tg_tried(t, tried, n_tried);
}

const struct tg_target *tg_choose(const struct tg *tg, int widx,
                                  const struct tg_target *const *tried, unsigned n_tried,
                                  int *refused)
{
    int *cw = tg->wrr + (size_t)widx * tg->wrr_stride;
    int by_health = tg->hc.enabled, total = 0;
    long min_conns = 0, min_weight = 1;
    size_t best = SIZE_MAX, first = SIZE_MAX;

    *refused = 0;
    if (by_health) {
        size_t k;

        for (k = 0; k < tg->n_eligible; k++) {
            const struct tg_target *t = &tg->targets[tg->eligible[k]];
            if (!tg_draining(t) && tg_healthy(t))
                break;
        }
        if (k == tg->n_eligible) {
            if (!tg->hc.fail_open) {
                *refused = 1;
                return NULL;
            }
            by_health = 0; /* fail open: every target that takes connections */
        }
    }
    if (tg->algo == TG_ALGO_LEAST_CONN) {
        /* The lowest conns/weight, compared by cross-multiplying. */
        int any = 0;

        for (size_t k = 0; k < tg->n_eligible; k++) {
            const struct tg_target *t = &tg->targets[tg->eligible[k]];
            long n;

            if (!tg_candidate(t, by_health, tried, n_tried))
                continue;
            n = atomic_load_explicit(&t->st->conns, memory_order_relaxed);
            if (!any || n * min_weight < min_conns * t->weight) {
                min_conns = n;
                min_weight = t->weight;
                any = 1;
            }
        }
        if (!any)
            return NULL;
    }
    for (size_t k = 0; k < tg->n_eligible; k++) {
        size_t i = tg->eligible[k];
        const struct tg_target *t = &tg->targets[i];

        if (!tg_candidate(t, by_health, tried, n_tried))
            continue;
        if (first == SIZE_MAX)
            first = i;
        if (tg->algo == TG_ALGO_LEAST_CONN) {
            long n = atomic_load_explicit(&t->st->conns, memory_order_relaxed);
            /* Other workers may have moved the counts since the first
             * pass: a target counts as tied if it is no worse now. */
            if (n * min_weight > min_conns * t->weight)
                continue;
        }
        cw[i] += t->weight;
        total += t->weight;
        if (best == SIZE_MAX || cw[i] > cw[best])
            best = i;
    }
    if (best == SIZE_MAX) /* every least-loaded one got busier meanwhile */
        return first == SIZE_MAX ? NULL : &tg->targets[first];
    cw[best] -= total;
    return &tg->targets[best];
}

void tg_free(struct tg *tg)
{
    for (size_t i = 0; i < tg->n_targets; i++)
        dp_stats_unref(tg->targets[i].st);
    free(tg->targets);
    free(tg->eligible);
    free(tg->wrr);
    free(tg->server_name);
    SSL_CTX_free(tg->cli_ctx);
    tg->targets = NULL;
    tg->eligible = NULL;
    tg->wrr = NULL;
    tg->server_name = NULL;
    tg->cli_ctx = NULL;
}
