/* tg.h - target choice: round robin or least connections, by weight, over
 * the healthy targets that are not draining; the connection code asks for
 * one target per attempt and says which it already tried. */
#ifndef PC_TG_H
#define PC_TG_H

#include "err-t.h"
#include "tg-t.h"

/* Allocate what choosing needs per worker (smooth weighted round-robin
 * state) once the group's targets are built. Main thread, before the
 * configuration is published. Returns 0 or -1. */
int tg_prepare(struct tg *tg, int nworkers, struct err *err);

/* The target for the next connect attempt of a connection on worker
 * 'widx', never one of the 'n_tried' targets in 'tried'. NULL when none is
 * left; then '*refused' is 1 if that is because the group has a health
 * check, no healthy target and fail_open false. Worker thread: touches only
 * its own slot of the choice state. O(targets). */
const struct tg_target *tg_choose(const struct tg *tg, int widx,
                                  const struct tg_target *const *tried, unsigned n_tried,
                                  int *refused);

/* Release what a target group owns (not the struct itself). */
void tg_free(struct tg *tg);

#endif
