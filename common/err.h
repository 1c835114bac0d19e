/* err.h - filling a struct err. */
#ifndef PC_ERR_H
#define PC_ERR_H

#include "err-t.h"

#if defined(__GNUC__)
#define PC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PC_PRINTF(a, b)
#endif

/* Record an error in 'e' (which may be NULL). The first error set wins: a
 * caller that adds context after a callee failed does not overwrite the
 * callee's more precise code. 'code' and 'field' must be string literals or
 * otherwise outlive 'e'. Always returns -1 so callers can `return err_set(...)`. */
int err_set(struct err *e, enum err_kind kind, const char *code, const char *field, const char *fmt,
            ...) PC_PRINTF(5, 6);

/* Forget any recorded error. */
void err_clear(struct err *e);

/* True when an error has been recorded. */
static inline int err_isset(const struct err *e)
{
    return e != 0 && e->kind != ERR_NONE;
}

/* Lower-case name of a kind, for logs. */
const char *err_kind_str(enum err_kind kind);

#endif
