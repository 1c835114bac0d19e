#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api.h"
#include "err.h"
#include "log.h"

struct api {
    struct MHD_Daemon *mhd;
};

static enum MHD_Result api_send(struct MHD_Connection *c, unsigned status, const char *body)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result api_handle(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_len, void **req_cls)
{
    (void)cls;
    (void)version;
    (void)data;

    /* First call per request: headers only. */
    if (*req_cls == NULL) {
        *req_cls = (void *)1;
        return MHD_YES;
    }
    if (*data_len != 0) {
        *data_len = 0; /* discard bodies until routes that take one exist */
        return MHD_YES;
    }
    if (strcmp(url, "/healthz") == 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            return api_send(c, 405,
                            "{\"error\":{\"code\":\"method_not_allowed\","
                            "\"message\":\"use GET\",\"field\":null}}");
        return api_send(c, 200, "{\"status\":\"ok\"}");
    }
    return api_send(c, 404,
                    "{\"error\":{\"code\":\"not_found\",\"message\":\"no such route\","
                    "\"field\":null}}");
}

int api_start(const struct cp_opts *opts, int lfd, struct api **out, struct err *err)
{
    struct api *api;

    (void)opts;
    api = calloc(1, sizeof(*api));
    if (api == NULL) {
        close(lfd);
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    }
    api->mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY | MHD_USE_TURBO, 0, NULL, NULL,
        api_handle, api, MHD_OPTION_LISTEN_SOCKET, lfd, MHD_OPTION_THREAD_POOL_SIZE, 4u,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_LIMIT, 1000u, MHD_OPTION_END);
    if (api->mhd == NULL) {
        close(lfd);
        free(api);
        return err_set(err, ERR_INTERNAL, "api_start_failed", NULL,
                       "cannot start the HTTP server");
    }
    *out = api;
    return 0;
}

void api_stop(struct api *api)
{
    if (api == NULL)
        return;
    MHD_stop_daemon(api->mhd);
    free(api);
}
