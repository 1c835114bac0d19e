/* store.h - the configuration store: SQLite, and the only module with SQL.
 *
 * Everything the control plane keeps goes through this interface so that a
 * replicated engine could replace SQLite without touching the API. Listeners
 * and target groups travel as canonical cJSON documents (validated by the
 * API); the store keeps the references in relational tables so that SQLite
 * itself refuses a dangling reference.
 *
 * Functions that look something up return 1 (found), 0 (not found) or -1
 * (error, 'err' set). Others return 0 or -1. A connection is used by one
 * thread at a time. */
#ifndef PC_STORE_H
#define PC_STORE_H

#include <cjson/cJSON.h>

#include "err-t.h"
#include "store-t.h"

extern const struct store_migration store_migrations[];
extern const int store_n_migrations;

/* Open (creating, mode 0600) the database at 'path'. A writer connection
 * applies pending migrations; STORE_F_READER opens a query-only connection
 * to an existing database. '*out' is owned by the caller: store_close(). */
int store_open(const char *path, int flags, struct store **out, struct err *err);

/* Close; NULL is fine. Rolls back an open transaction. */
void store_close(struct store *st);

/* The schema version (PRAGMA user_version). */
int store_schema_version(struct store *st);

/* Transactions. A writer's store_begin() takes the write lock at once
 * (BEGIN IMMEDIATE); a reader's gives a consistent read view. */
int store_begin(struct store *st, struct err *err);
int store_commit(struct store *st, struct err *err);
void store_rollback(struct store *st);

/* Versions of the configuration (see schema/001_initial.sql). */
int store_versions(struct store *st, int64_t *config_version, int64_t *last_version,
                   struct err *err);
/* Set them; a negative value leaves that one unchanged. */
int store_set_versions(struct store *st, int64_t config_version, int64_t last_version,
                       struct err *err);

/* Find the id of the resource of 'kind' whose id or name is 'ref'. */
int store_resolve(struct store *st, enum store_kind kind, const char *ref, char id[STORE_ID_MAX],
                  struct err *err);

/* 1 when another resource of 'kind' than 'self_id' (may be NULL) is named 'name'. */
int store_name_taken(struct store *st, enum store_kind kind, const char *name, const char *self_id,
                     struct err *err);

/* Certificates. */
int store_cert_insert(struct store *st, const struct store_cert *c, struct err *err);
/* Replace every column of the row with c->id. */
int store_cert_update(struct store *st, const struct store_cert *c, struct err *err);
/* Fill '*out' (cleared first) with row 'id'; bodies and key ciphertext only
 * when 'bodies'. */
int store_cert_get(struct store *st, const char *id, int bodies, struct store_cert *out,
                   struct err *err);
/* Call 'fn' for every certificate (no bodies), in name order; a non-zero
 * return from 'fn' stops and is returned. */
/* The (id, version, sha256) of every certificate a listener or a target
 * group refers to, sorted by id (strcmp order), in one query: building a
 * snapshot looks references up in it. '*out' is
 * malloc'd (free()); '*n' may be 0 with '*out' NULL. */
int store_cert_refs(struct store *st, struct store_cert_ref **out, size_t *n, struct err *err);
int store_cert_each(struct store *st, int (*fn)(void *arg, const struct store_cert *c), void *arg,
                    struct err *err);
int store_cert_delete(struct store *st, const char *id, struct err *err);
/* Append to 'listeners' (a cJSON array) the ids of listeners using
 * certificate 'id', and to 'groups' (may be NULL) the target groups using it
 * as their CA. */
int store_cert_users(struct store *st, const char *id, cJSON *listeners, cJSON *groups,
                     struct err *err);
void store_cert_clear(struct store_cert *c);

/* Target groups: 'tg' is the canonical document (id, name, protocol,
 * targets[{id, host, port, weight}], ..., tls{ca_certificate_id}) without
 * timestamps. 'create' inserts, else replaces row tg.id. */
int store_tg_save(struct store *st, const cJSON *tg, int create, int64_t now, struct err *err);
/* '*out': the document with targets and created_at/updated_at (unix
 * seconds, numbers). Owned by the caller. */
int store_tg_get(struct store *st, const char *id, cJSON **out, struct err *err);
/* '*out': array of documents, in name order. */
int store_tg_list(struct store *st, cJSON **out, struct err *err);
int store_tg_delete(struct store *st, const char *id, struct err *err);
/* Append to 'listeners' the ids of listeners that refer to group 'id'. */
int store_tg_users(struct store *st, const char *id, cJSON *listeners, struct err *err);

/* Listeners: the canonical document (id, name, bind, port, protocol,
 * default_target_group_id, certificate_ids, sni_routes, ...). */
int store_lsn_save(struct store *st, const cJSON *lsn, int create, int64_t now, struct err *err);
int store_lsn_get(struct store *st, const char *id, cJSON **out, struct err *err);
int store_lsn_list(struct store *st, cJSON **out, struct err *err);
int store_lsn_delete(struct store *st, const char *id, struct err *err);
/* The id of a listener other than 'self_id' whose address collides with
 * bind:port (same address, or a wildcard of either side), into 'id'. */
int store_lsn_addr_taken(struct store *st, const char *bind, int port, const char *self_id,
                         char id[STORE_ID_MAX], struct err *err);

/* Counts of rows, for metrics. */
int store_count(struct store *st, enum store_kind kind, int64_t *n, struct err *err);

#endif
