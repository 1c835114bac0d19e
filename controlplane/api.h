/* api.h - the REST API on libmicrohttpd, with the store, the certificate
 * master key and the snapshot publisher it drives. Only this module knows
 * HTTP. */
#ifndef PC_API_H
#define PC_API_H

#include "cp-t.h"
#include "err-t.h"

struct api;

/* Largest request body accepted (413 beyond). */
#define API_MAX_BODY (1024u * 1024u)

/* Open '<data_dir>/portcullis.db', load the master key and the admin token
 * (PORTCULLIS_ADMIN_TOKEN, '<data_dir>/admin.token', or a new one saved
 * there and printed once on stderr), start the publisher on the control
 * socket, and serve HTTP on the already listening socket 'lfd' (ownership
 * passes to the API, also on failure). '*out' is owned by the caller:
 * api_stop(). */
int api_start(const struct cp_opts *opts, int lfd, struct api **out, struct err *err);

/* Stop serving, wait for in-flight requests and free. NULL is fine. */
void api_stop(struct api *api);

#endif
