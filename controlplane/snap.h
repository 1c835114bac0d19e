/* snap.h - the snapshot: building it from the store, and the publisher that
 * serves it to every connected proxy over the control socket
 * (api-docs/control-channel.md).
 *
 * The publisher runs one thread (poll) that accepts proxies, reads their
 * frames and writes queued frames. An API thread that changes the
 * configuration hands it a snapshot with snap_pub_publish() and waits, at
 * most the ack timeout, for every proxy's ack or nack. Proxies that connect
 * while a change is in flight are synchronised when it ends
 * (snap_pub_end()), so they never miss the committed state. */
#ifndef PC_SNAP_H
#define PC_SNAP_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "cs-t.h"
#include "err-t.h"
#include "store-t.h"

/* Default bound on the wait for acks; PORTCULLIS_ACK_TIMEOUT_MS overrides. */
#define SNAP_ACK_TIMEOUT_MS 5000

struct snap_pub;

struct snap_pub_opts {
    const char *socket_path;    /* where to listen (mode 0600) */
    const char *db_path;        /* the publisher opens its own reader connection */
    const struct cs_master *mk; /* to decrypt keys for certificate frames; borrowed */
    int ack_timeout_ms;
};

/* The outcome of one publication. */
struct snap_result {
    int n_proxies; /* proxies the snapshot was sent to */
    int n_acked;
    int nacked;         /* at least one nack */
    char nack_node[64]; /* the first proxy that refused, and why */
    char nack_error[256];
    cJSON *not_applied; /* array of node ids that did not answer (owned; snap_result_clear) */
};

void snap_result_clear(struct snap_result *r);

/* Build the snapshot of 'version' from what 'st' sees (inside a write
 * transaction: the transaction's view). '*out' is owned by the caller. */
int snap_build(struct store *st, int64_t version, cJSON **out, struct err *err);

/* Build the "snapshot_delta" of 'version' for a change that only replaced
 * the contents of certificate 'cert_id' (PUT): the proxies serving
 * 'base_version' get it instead of the whole snapshot
 * (api-docs/control-channel.md). snap_pub_publish() takes it like a
 * snapshot and sends the full one, built through the same 'st', to the
 * proxies that cannot apply it. '*out' is owned by the caller. */
int snap_build_delta(struct store *st, int64_t version, int64_t base_version, const char *cert_id,
                     cJSON **out, struct err *err);

/* The encoded "certificate" frame of certificate 'id', key decrypted with
 * 'mk'. '*frame' holds key material: release it with wire_frame_free(). */
int snap_cert_frame(struct store *st, const struct cs_master *mk, const char *id, char **frame,
                    size_t *len, struct err *err);

/* Start listening and the publisher thread. '*out' owned by the caller. */
int snap_pub_start(const struct snap_pub_opts *o, struct snap_pub **out, struct err *err);
/* Stop the thread, close every connection, remove the socket. NULL is fine. */
void snap_pub_stop(struct snap_pub *p);

/* Bracket a configuration change (the caller serialises changes). Between
 * them, newly connected proxies wait; snap_pub_end() synchronises every
 * proxy that did not take part with 'committed_version'. */
void snap_pub_begin(struct snap_pub *p);
void snap_pub_end(struct snap_pub *p, int64_t committed_version);

/* Send 'snapshot' (version 'version'), preceded by the certificate frames
 * each proxy lacks (read through 'st'), to every connected proxy and wait
 * for the answers. Proxies that do not answer in time are disconnected and
 * listed in res->not_applied. Returns -1 only on an internal failure. */
int snap_pub_publish(struct snap_pub *p, struct store *st, const cJSON *snapshot, int64_t version,
                     struct snap_result *res, struct err *err);

/* Read-side views (never wait for a change in flight). Results are owned by
 * the caller. */
/* [{id, connected, applied_version, last_error}] */
cJSON *snap_pub_status(struct snap_pub *p);
int snap_pub_connected(struct snap_pub *p);
/* Health reports of group 'tg_id': [{target_id, state, reason, updated_at, seq, node_id}]
 * (seq: arrival order, growing) */
cJSON *snap_pub_health(struct snap_pub *p, const char *tg_id);
/* The last stats frame of each connected proxy: [{node_id, listeners, targets}] */
cJSON *snap_pub_stats(struct snap_pub *p);

#endif
