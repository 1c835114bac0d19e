/* store-t.h - configuration store types. */
#ifndef PC_STORE_T_H
#define PC_STORE_T_H

#include <stddef.h>
#include <stdint.h>

/* One connection to the store. Opaque. Not shared between threads. */
struct store;

/* Flags of store_open(). */
#define STORE_F_READER 0x1 /* read-only connection: no migrations, query_only */

/* Longest id: "cert-" + 16 hex + NUL, with room to spare. */
#define STORE_ID_MAX 32

enum store_kind {
    STORE_CERT = 0,
    STORE_TG,
    STORE_LSN,
};

/* A migration embedded at build time from schema/NNN_name.sql. */
struct store_migration {
    const char *name;
    const char *sql;
};

/* One certificate row. Strings are malloc'd and owned by the struct
 * (store_cert_clear()); key_ct is ciphertext, never a plain key. */
struct store_cert {
    char id[STORE_ID_MAX];
    char *name;
    int64_t version;
    int64_t not_before, not_after; /* unix seconds */
    int is_ca, has_key;
    char *meta;     /* JSON object text: subject, issuer, serial, sans, ... */
    char *cert_pem; /* bodies: only filled when asked for */
    char *chain_pem;
    uint8_t *key_ct;
    size_t key_ct_len;
    char sha256[65];
    int64_t created_at, updated_at;
};

/* A certificate's reference as a snapshot lists it (no bodies, no meta). */
struct store_cert_ref {
    char id[STORE_ID_MAX];
    int64_t version;
    char sha256[65];
};

#endif
