/* dp.h - the proxy process: runtime configuration, counters, workers and
 * the control-channel client. */
#ifndef PC_DP_H
#define PC_DP_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "dp-t.h"
#include "err-t.h"

/* Add to a counter of the calling worker's own slot: a plain load and store,
 * no locked instruction; only the main thread reads it concurrently. */
#define DP_CTR_ADD(field, n)                                                                       \
    atomic_store_explicit(&(field),                                                                \
                          atomic_load_explicit(&(field), memory_order_relaxed) + (uint64_t)(n),    \
                          memory_order_relaxed)
#define DP_CTR_SUB(field, n)                                                                       \
    atomic_store_explicit(&(field),                                                                \
                          atomic_load_explicit(&(field), memory_order_relaxed) - (uint64_t)(n),    \
                          memory_order_relaxed)

/* Milliseconds on CLOCK_MONOTONIC: the one clock the main thread and the
 * workers share (ev_now() is per loop). */
static inline int64_t dp_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- counters (dp_stats.c) --- */

/* The counters of listener 'id' ('tg_id' "") or of target 'id' of group
 * 'tg_id', created on first use. Main thread only. Returns a new ref (the
 * caller owns it: dp_stats_unref), or NULL when out of memory. */
struct dp_stats *dp_stats_get(struct dp *dp, const char *tg_id, const char *id);

/* Drop a ref; any thread. NULL is fine. */
void dp_stats_unref(struct dp_stats *st);

/* Forget registry entries no configuration references any more. Main thread. */
void dp_stats_prune(struct dp *dp);

/* Free the whole registry at exit. Main thread, workers stopped. */
void dp_stats_free_all(struct dp *dp);

/* Build the `stats` frame of the control channel from every counter of the
 * current configuration. Returns a new cJSON object (caller owns it). */
cJSON *dp_stats_frame(struct dp *dp);

/* --- runtime configuration (dp_config.c) --- */

/* Build a runtime configuration from a `snapshot` frame, reusing the
 * listening sockets of every unchanged (bind, port) of 'old' (may be NULL)
 * and binding the others. Certificates come from dp's body cache, parsed
 * once per version whatever the number of configurations, listeners and
 * policies serving them. Main thread.
 * On success '*out' holds one ref owned by the caller. On failure nothing
 * is left behind ('old' untouched) and 'err' says why (for the NACK). */
int dp_config_build(struct dp *dp, const cJSON *snap, struct dp_config *old, struct dp_config **out,
                    struct err *err);

static inline struct dp_config *dp_config_ref(struct dp_config *cfg)
{
    atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
    return cfg;
}

/* Drop a ref; the last one frees (any thread). NULL is fine. */
void dp_config_unref(struct dp_config *cfg);

/* One certificate of a snapshot_delta: certificate 'id' is now 'sha256'. */
struct dp_swap {
    const char *id;
    const char *sha256;
};

/* Rotate certificates in place: each slot of 'cfg' serving a certificate
 * of 'sw' gets its new version, and 'cfg' becomes 'version', without a
 * rebuild. Applies only when every changed certificate is served by a TLS
 * listener, is no group's CA, and keeps its names. Returns 1 when swapped
 * (the replaced certificates wait in dp->retired until every worker has
 * adopted 'version' again: dp_config_release_retired), 0 when a rebuild is
 * needed (nothing changed), -1 when a new certificate is unusable ('err'
 * set, nothing changed). Main thread. */
int dp_config_swap(struct dp *dp, struct dp_config *cfg, const struct dp_swap *sw, size_t n,
                   int64_t version, struct err *err);

/* Release the certificates dp_config_swap() replaced. Main thread, once
 * every worker serves the swapped configuration's version. */
void dp_config_release_retired(struct dp *dp);

struct dp_cert *dp_cert_ref(struct dp_cert *c);

/* Drop a ref (any thread). NULL is fine. */
void dp_cert_unref(struct dp_cert *c);

/* Close the listening sockets 'old' has and 'cur' does not (main thread,
 * once no worker watches them any more). 'cur' may be NULL: close all. */
void dp_config_close_unused(struct dp_config *old, struct dp_config *cur);

/* --- certificate bodies (dp_ctl.c) --- */

/* The body with content hash 'sha256', or NULL. Main thread. */
struct dp_certbody *dp_cert_find(const struct dp *dp, const char *sha256);

/* --- workers (dp_worker.c) --- */

/* Start worker threads; each owns an ev_loop. Returns 0 or -1. */
int dp_workers_start(struct dp *dp, struct err *err);

/* Hand 'cfg' to every worker (each gets its own ref) and wake them. */
void dp_workers_publish(struct dp *dp, struct dp_config *cfg);

/* True when every worker serves version 'v'. */
int dp_workers_serve(struct dp *dp, int64_t v);

/* Ask every worker to stop accepting, let connections finish for dp->grace
 * seconds, then exit its loop. */
void dp_workers_stop(struct dp *dp);

/* Wait for every worker thread and free what workers own. */
void dp_workers_join(struct dp *dp);

/* --- control channel (dp_ctl.c) --- */

/* Begin connecting to dp->sock_path; reconnects with capped exponential
 * backoff for as long as the process runs. */
void dp_ctl_start(struct dp *dp);

/* Queue one frame to the control plane (takes ownership of 'obj'); dropped
 * when not connected. Main thread. */
void dp_ctl_send(struct dp *dp, cJSON *obj);

/* Close the control connection and free the certificate cache. */
void dp_ctl_free(struct dp *dp);

#endif
