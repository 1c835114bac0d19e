/* test_tg.c - target choice: weighted round robin in exact proportion,
 * least_conn by connections per weight with weighted ties, health, fail
 * open or refuse, draining targets skipped, tried targets skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dp.h"
#include "err.h"
#include "tg.h"

#define NT 4

struct fix {
    struct tg tg;
    struct tg_target t[NT];
    struct dp_stats *st[NT];
    size_t elig[NT];
};

/* A group of 'n' targets with the given weights (0: not eligible, as the
 * configuration builder leaves it out). */
static struct fix *mk(enum tg_algo algo, int n, const int *w)
{
    struct fix *f = calloc(1, sizeof(*f));
    struct err e = {0};

    assert_non_null(f);
    f->tg.algo = algo;
    f->tg.targets = f->t;
    f->tg.n_targets = (size_t)n;
    f->tg.eligible = f->elig;
    for (int i = 0; i < n; i++) {
        snprintf(f->t[i].id, sizeof(f->t[i].id), "t%d", i);
        f->t[i].weight = w[i];
        f->st[i] = calloc(1, sizeof(*f->st[i]));
        assert_non_null(f->st[i]);
        f->t[i].st = f->st[i];
        if (w[i] > 0)
            f->elig[f->tg.n_eligible++] = (size_t)i;
    }
    assert_int_equal(tg_prepare(&f->tg, 2, &e), 0);
    return f;
}

static void rm(struct fix *f)
{
    for (int i = 0; i < NT; i++)
        free(f->st[i]);
    free(f->tg.wrr);
    free(f);
}

static int pick(struct fix *f, int widx)
{
    int refused = 0;
    const struct tg_target *t = tg_choose(&f->tg, widx, NULL, 0, &refused);

    if (t == NULL)
        return refused ? -2 : -1;
    return (int)(t - f->t);
}

static void test_rr_weights(void **state)
{
    static const int w[] = {1, 3, 0};
    struct fix *f = mk(TG_ALGO_ROUND_ROBIN, 3, w);
    int n[3] = {0}, seq[4];

    (void)state;
    for (int i = 0; i < 400; i++)
        n[pick(f, 0)]++;
    assert_int_equal(n[0], 100);
    assert_int_equal(n[1], 300);
    assert_int_equal(n[2], 0);
    /* Smooth: the light target is not starved for 3 picks in a row of the
     * same cycle, and worker 1 has its own state. */
    for (int i = 0; i < 4; i++)
        seq[i] = pick(f, 1);
    assert_int_equal(seq[0] + seq[1] + seq[2] + seq[3], 3);
    rm(f);
}

static void test_least_conn(void **state)
{
    static const int w[] = {1, 3};
    struct fix *f = mk(TG_ALGO_LEAST_CONN, 2, w);
    int n[2] = {0};

    (void)state;
    /* Idle: ties split by weight. */
    for (int i = 0; i < 400; i++)
        n[pick(f, 0)]++;
    assert_int_equal(n[0], 100);
    assert_int_equal(n[1], 300);
    /* Busy target 0: every pick goes to 1 until 1 has 3x as many. */
    atomic_store(&f->st[0]->conns, 5);
    for (int i = 0; i < 15; i++) {
        assert_int_equal(pick(f, 0), 1);
        atomic_fetch_add(&f->st[1]->conns, 1);
    }
    /* 5/1 vs 15/3: tied again, both get picks. */
    n[0] = n[1] = 0;
    for (int i = 0; i < 8; i++)
        n[pick(f, 0)]++;
    assert_true(n[0] > 0 && n[1] > 0);
    rm(f);
}

static void test_health_and_fail_open(void **state)
{
    static const int w[] = {1, 1, 1};
    struct fix *f = mk(TG_ALGO_ROUND_ROBIN, 3, w);

    (void)state;
    /* Without a health check the state is ignored. */
    atomic_store(&f->st[0]->health, TG_H_UNHEALTHY);
    atomic_store(&f->st[1]->health, TG_H_UNHEALTHY);
    for (int i = 0; i < 6; i++)
        assert_true(pick(f, 0) >= 0);
    f->tg.hc.enabled = 1;
    f->tg.hc.fail_open = 1;
    for (int i = 0; i < 6; i++)
        assert_int_equal(pick(f, 0), 2); /* initial takes traffic */
    atomic_store(&f->st[2]->health, TG_H_UNHEALTHY);
    {
        int seen[3] = {0};
        for (int i = 0; i < 6; i++)
            seen[pick(f, 0)]++;
        assert_int_equal(seen[0] + seen[1] + seen[2], 6); /* fail open: all */
        assert_true(seen[0] && seen[1] && seen[2]);
    }
    f->tg.hc.fail_open = 0;
    assert_int_equal(pick(f, 0), -2); /* refused */
    atomic_store(&f->st[1]->health, TG_H_HEALTHY);
    assert_int_equal(pick(f, 0), 1);
    rm(f);
}

static void test_draining_and_tried(void **state)
{
    static const int w[] = {1, 1, 1};
    struct fix *f = mk(TG_ALGO_ROUND_ROBIN, 3, w);
    const struct tg_target *tried[3];
    int refused;

    (void)state;
    atomic_store(&f->st[0]->drain_until, 12345);
    for (int i = 0; i < 6; i++)
        assert_int_not_equal(pick(f, 0), 0);
    tried[0] = tg_choose(&f->tg, 0, tried, 0, &refused);
    tried[1] = tg_choose(&f->tg, 0, tried, 1, &refused);
    assert_non_null(tried[0]);
    assert_non_null(tried[1]);
    assert_ptr_not_equal(tried[0], tried[1]);
    assert_null(tg_choose(&f->tg, 0, tried, 2, &refused));
    assert_int_equal(refused, 0);
    rm(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rr_weights),
        cmocka_unit_test(test_least_conn),
        cmocka_unit_test(test_health_and_fail_open),
        cmocka_unit_test(test_draining_and_tried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
