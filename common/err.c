#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

int err_set(struct err *e, enum err_kind kind, const char *code, const char *field, const char *fmt,
            ...)
{
    va_list ap;

    if (e == NULL || e->kind != ERR_NONE)
        return -1;
    e->kind = kind;
    e->code = code;
    e->field = field;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -1;
}

void err_clear(struct err *e)
{
    if (e == NULL)
        return;
    memset(e, 0, sizeof(*e));
}

const char *err_kind_str(enum err_kind kind)
{
    switch (kind) {
    case ERR_NONE:
        return "none";
    case ERR_INVALID:
        return "invalid";
    case ERR_AUTH:
        return "auth";
    case ERR_NOT_FOUND:
        return "not_found";
    case ERR_METHOD:
        return "method";
    case ERR_CONFLICT:
        return "conflict";
    case ERR_TOO_LARGE:
        return "too_large";
    case ERR_MEDIA_TYPE:
        return "media_type";
    case ERR_UNPROCESSABLE:
        return "unprocessable";
    case ERR_UNAVAILABLE:
        return "unavailable";
    case ERR_INTERNAL:
        return "internal";
    }
    return "unknown";
}
