/* tg.h - target choice. Health, least_conn and draining (issue 8) plug in
 * here; the connection code only asks for "the k-th choice". */
#ifndef PC_TG_H
#define PC_TG_H

#include "tg-t.h"

/* Start a choice for a new connection on worker 'widx': returns an opaque
 * start index (advances the worker's cursor). */
unsigned tg_pick_start(const struct tg *tg, int widx);

/* The target for attempt 'attempt' (0, 1, ...) of a choice that started at
 * 'start', or NULL when every eligible target was tried. */
const struct tg_target *tg_pick(const struct tg *tg, unsigned start, unsigned attempt);

/* Release what a target group owns (not the struct itself). */
void tg_free(struct tg *tg);

#endif
