/* dp_stats.c - counters per listener and per target: one slot per worker
 * (no shared cache line on the hot path), kept across configurations by
 * id, summed by the main thread into `stats` frames. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp.h"

static unsigned dp_stats_hash(const char *key)
{
    unsigned h = 2166136261u; /* FNV-1a */

    for (; *key; key++)
        h = (h ^ (unsigned char)*key) * 16777619u;
    return h % DP_STATS_BUCKETS;
}

struct dp_stats *dp_stats_get(struct dp *dp, const char *tg_id, const char *id)
{
    char key[sizeof(((struct dp_stats *)0)->key)];
    struct dp_stats *st;
    unsigned h;

    snprintf(key, sizeof(key), "%s/%s", tg_id, id);
    h = dp_stats_hash(key);
    for (st = dp->stats[h]; st != NULL; st = st->next) {
        if (strcmp(st->key, key) == 0) {
            atomic_fetch_add_explicit(&st->refs, 1, memory_order_relaxed);
            return st;
        }
    }
    st = calloc(1, sizeof(*st) + (size_t)dp->nworkers * sizeof(st->slot[0]));
    if (st == NULL)
        return NULL;
    atomic_init(&st->refs, 2); /* the registry's and the caller's */
    snprintf(st->key, sizeof(st->key), "%s", key);
    snprintf(st->tg_id, sizeof(st->tg_id), "%s", tg_id);
    snprintf(st->id, sizeof(st->id), "%s", id);
    st->n = dp->nworkers;
    st->next = dp->stats[h];
    dp->stats[h] = st;
    return st;
}

void dp_stats_unref(struct dp_stats *st)
{
    if (st != NULL && atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) == 1)
        free(st);
}

void dp_stats_prune(struct dp *dp)
{
    for (unsigned h = 0; h < DP_STATS_BUCKETS; h++) {
        struct dp_stats **pp = &dp->stats[h];

        while (*pp != NULL) {
            struct dp_stats *st = *pp;
            /* Only the main thread creates configurations, so a count of
             * one (the registry's) cannot grow behind our back. */
            if (atomic_load_explicit(&st->refs, memory_order_acquire) == 1) {
                *pp = st->next;
                free(st);
            } else {
                pp = &st->next;
            }
        }
    }
}

void dp_stats_free_all(struct dp *dp)
{
    for (unsigned h = 0; h < DP_STATS_BUCKETS; h++) {
        struct dp_stats *st = dp->stats[h], *nx;

        for (; st != NULL; st = nx) {
            nx = st->next;
            dp_stats_unref(st);
        }
        dp->stats[h] = NULL;
    }
}

struct dp_sum {
    uint64_t active, total, bytes_in, bytes_out, errors;
};

static void dp_stats_sum(const struct dp_stats *st, struct dp_sum *s)
{
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < st->n; i++) {
        const struct dp_ctr *c = &st->slot[i];
        s->active += atomic_load_explicit(&c->active, memory_order_relaxed);
        s->total += atomic_load_explicit(&c->total, memory_order_relaxed);
        s->bytes_in += atomic_load_explicit(&c->bytes_in, memory_order_relaxed);
        s->bytes_out += atomic_load_explicit(&c->bytes_out, memory_order_relaxed);
        s->errors += atomic_load_explicit(&c->errors, memory_order_relaxed);
    }
}

cJSON *dp_stats_frame(struct dp *dp)
{
    cJSON *f = cJSON_CreateObject(), *ls, *ts;
    struct dp_config *cfg = dp->cur;

    cJSON_AddStringToObject(f, "type", "stats");
    ls = cJSON_AddArrayToObject(f, "listeners");
    ts = cJSON_AddArrayToObject(f, "targets");
    for (size_t i = 0; cfg != NULL && i < cfg->n_lsns; i++) {
        struct dp_sum s;
        cJSON *o = cJSON_CreateObject();

        dp_stats_sum(cfg->lsns[i].st, &s);
        cJSON_AddStringToObject(o, "id", cfg->lsns[i].id);
        cJSON_AddNumberToObject(o, "active", (double)s.active);
        cJSON_AddNumberToObject(o, "total", (double)s.total);
        cJSON_AddNumberToObject(o, "bytes_in", (double)s.bytes_in);
        cJSON_AddNumberToObject(o, "bytes_out", (double)s.bytes_out);
        cJSON_AddNumberToObject(o, "errors", (double)s.errors);
        cJSON_AddItemToArray(ls, o);
    }
    for (size_t g = 0; cfg != NULL && g < cfg->n_tgs; g++) {
        const struct tg *tg = &cfg->tgs[g];
        for (size_t i = 0; i < tg->n_targets; i++) {
            struct dp_sum s;
            cJSON *o = cJSON_CreateObject();

            dp_stats_sum(tg->targets[i].st, &s);
            cJSON_AddStringToObject(o, "target_group_id", tg->id);
            cJSON_AddStringToObject(o, "target_id", tg->targets[i].id);
            cJSON_AddNumberToObject(o, "active", (double)s.active);
            cJSON_AddNumberToObject(o, "total", (double)s.total);
            cJSON_AddNumberToObject(o, "failures", (double)s.errors);
            cJSON_AddItemToArray(ts, o);
        }
    }
    return f;
}
