/* log.h - one line per event on stderr.
 *
 * Lines look like
 *   2026-11-23T09:10:11.123Z info  dp: listener lsn-1 conn 42 closed ...
 * Callers name the component; messages must never contain key material,
 * tokens or PEM bodies. Safe to call from any thread: each line is one
 * write(2). */
#ifndef PC_LOG_H
#define PC_LOG_H

#include "err.h"

enum log_level {
    LOG_LVL_DEBUG = 0,
    LOG_LVL_INFO,
    LOG_LVL_WARN,
    LOG_LVL_ERROR,
};

/* Parse "debug", "info", "warn" or "error". Returns 0, or -1 if unknown. */
int log_parse_level(const char *s, enum log_level *out);

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);

/* Write one line when 'lvl' is at or above the current level. 'comp' is a
 * short component tag such as "api" or "dp". */
void log_msg(enum log_level lvl, const char *comp, const char *fmt, ...) PC_PRINTF(3, 4);

#define log_debug(comp, ...)                                                                       \
    do {                                                                                           \
        if (log_get_level() <= LOG_LVL_DEBUG)                                                      \
            log_msg(LOG_LVL_DEBUG, comp, __VA_ARGS__);                                             \
    } while (0)
#define log_info(comp, ...) log_msg(LOG_LVL_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...) log_msg(LOG_LVL_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) log_msg(LOG_LVL_ERROR, comp, __VA_ARGS__)

#endif
