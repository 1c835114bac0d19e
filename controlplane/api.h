/* api.h - the REST API on libmicrohttpd. Only this module knows HTTP. */
#ifndef PC_API_H
#define PC_API_H

#include "cp-t.h"
#include "err-t.h"

struct api;

/* Start serving on an already listening socket 'lfd' (ownership passes to
 * the API, also on failure). '*out' is owned by the caller: api_stop(). */
int api_start(const struct cp_opts *opts, int lfd, struct api **out, struct err *err);

/* Stop serving, wait for in-flight requests and free. NULL is fine. */
void api_stop(struct api *api);

#endif
