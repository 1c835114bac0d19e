/* api_res.h - what the REST handlers share (internal to api.c and
 * api_res.c). Only these two files know HTTP. */
#ifndef PC_API_RES_H
#define PC_API_RES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "api_json.h"
#include "cs-t.h"
#include "err-t.h"
#include "snap.h"
#include "store-t.h"

/* HTTP worker threads, and reader connections: more readers than threads,
 * so a reader is always free. */
#define API_THREADS 8u
#define API_READERS 12
/* Mutations waiting for (or in) the mutation thread; one more is 503 busy. */
#define API_MUT_QUEUE 64

/* Where a mutation is: parsed, queued for the mutation thread, answered. */
enum api_job {
    API_JOB_NONE = 0,
    API_JOB_QUEUED,
    API_JOB_DONE,
};

struct api {
    struct MHD_Daemon *mhd;
    char db_path[4096];
    pthread_mutex_t mu;   /* serialises configuration changes */
    struct store *w;      /* the writer connection, under mu */
    int64_t last_version; /* highest version ever sent, under mu */
    atomic_llong config_version;
    pthread_mutex_t rmu; /* the pool of reader connections */
    struct store *readers[API_READERS];
    int reader_busy[API_READERS];
    struct snap_pub *pub;
    struct cs_master *mk;
    unsigned char token_hash[32];
    atomic_ullong req_by_status[600];
    atomic_ullong mutations_refused;
    /* The mutation thread and its queue of suspended requests (api.c). */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    struct api_req *qhead, *qtail;
    int qlen;
    int qstop;
    int mut_started;
    pthread_t mut_thr;
    int busy_wait_ms; /* longest wait in the queue before 503 busy */
};

/* What a handler answers. */
struct api_out {
    int status;  /* 200, 201 or 204 */
    cJSON *body; /* owned; NULL for 204 */
};

/* One HTTP request, from its first call to its completion. */
struct api_req {
    const char *method;
    int route;
    char p1[80], p2[80]; /* path parameters */
    char *body;
    size_t len, cap;
    int too_large;
    struct MHD_Connection *conn;
    struct api_vctx vc;
    /* A mutation, handed to the mutation thread (api.c). */
    enum api_job job;
    cJSON *in;          /* the parsed body, owned */
    struct api_out out; /* the answer (body owned) */
    struct err err;
    int rc;
    struct timespec queued_at; /* CLOCK_MONOTONIC */
    /* If-Match, read on the HTTP thread: the mutation thread does not
     * touch the connection. 'if_match_set' 2: longer than the buffer. */
    char if_match[64];
    int if_match_set;
    struct api_req *qnext;
};

/* A reader connection from the pool, and back. */
struct store *api_reader(struct api *a, struct err *err);
void api_reader_put(struct api *a, struct store *st);

/* RFC 3339 UTC text of unix time 't' into 'buf' (>= 21 bytes). */
char *api_time(int64_t t, char *buf, size_t n);

/* Mutating handlers run inside the write transaction on 'st'. */
int api_cert_create(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                    struct api_out *o, struct err *err);
int api_cert_replace(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                     struct api_out *o, struct err *err);
int api_cert_remove(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                    struct api_out *o, struct err *err);
int api_tg_create(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                  struct api_out *o, struct err *err);
int api_tg_replace(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                   struct api_out *o, struct err *err);
int api_tg_remove(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                  struct api_out *o, struct err *err);
int api_tg_add_targets(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                       struct api_out *o, struct err *err);
int api_tg_remove_target(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                         struct api_out *o, struct err *err);
int api_lsn_create(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                   struct api_out *o, struct err *err);
int api_lsn_replace(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                    struct api_out *o, struct err *err);
int api_lsn_remove(struct api *a, struct store *st, struct api_req *r, const cJSON *in,
                   struct api_out *o, struct err *err);

/* Reading handlers, on a reader connection. */
int api_cert_list(struct api *a, struct store *st, struct api_req *r, struct api_out *o,
                  struct err *err);
int api_cert_show(struct api *a, struct store *st, struct api_req *r, struct api_out *o,
                  struct err *err);
int api_tg_list(struct api *a, struct store *st, struct api_req *r, struct api_out *o,
                struct err *err);
int api_tg_show(struct api *a, struct store *st, struct api_req *r, struct api_out *o,
                struct err *err);
int api_tg_health(struct api *a, struct store *st, struct api_req *r, struct api_out *o,
                  struct err *err);
int api_lsn_list(struct api *a, struct store *st, struct api_req *r, struct api_out *o,
                 struct err *err);
int api_lsn_show(struct api *a, struct store *st, struct api_req *r, struct api_out *o,
                 struct err *err);

#endif
