/* tg.c - target choice: round robin over targets that take connections. */
#include <stdlib.h>

#include "dp.h"
#include "tg.h"

unsigned tg_pick_start(const struct tg *tg, int widx)
{
    /* The cursor slot belongs to this worker alone (see struct tg_cursor). */
    struct tg_cursor *c = &tg->cursor[widx];

    return c->next++;
}

const struct tg_target *tg_pick(const struct tg *tg, unsigned start, unsigned attempt)
{
    if (tg->n_eligible == 0 || attempt >= tg->n_eligible)
        return NULL;
    return &tg->targets[tg->eligible[(start + attempt) % tg->n_eligible]];
}

void tg_free(struct tg *tg)
{
    for (size_t i = 0; i < tg->n_targets; i++)
        dp_stats_unref(tg->targets[i].st);
    free(tg->targets);
    free(tg->eligible);
    free(tg->cursor);
    free(tg->server_name);
    SSL_CTX_free(tg->cli_ctx);
    tg->targets = NULL;
    tg->eligible = NULL;
    tg->cursor = NULL;
    tg->server_name = NULL;
    tg->cli_ctx = NULL;
}
