/* cs-t.h - certificate store types. */
#ifndef PC_CS_T_H
#define PC_CS_T_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CS_MAX_FIELD (64u * 1024u) /* bytes per PEM field (certificate, key, chain) */
#define CS_MAX_CHAIN 8             /* certificates in certificate_chain */
#define CS_MASTER_KEY_LEN 32       /* AES-256 */

enum cs_status {
    CS_STATUS_ISSUED = 0,
    CS_STATUS_EXPIRED,
    CS_STATUS_NOT_YET_VALID,
};

/* Named TLS policies for listeners. */
enum cs_policy {
    CS_POLICY_INTERMEDIATE = 0, /* TLS 1.2 + 1.3, forward-secret AEAD only (default) */
    CS_POLICY_MODERN,           /* TLS 1.3 only */
    CS_POLICY_COMPAT,           /* TLS 1.2 + 1.3, adds CBC suites for old clients */
};

/* What an import learned about a certificate. Strings are owned by the
 * struct; release with cs_meta_free(). */
struct cs_meta {
    char *subject;    /* RFC 2253 one-line form */
    char *issuer;     /* RFC 2253 one-line form */
    char *serial;     /* upper-case hex */
    char **dns_names; /* subjectAltName DNS entries */
    size_t n_dns_names;
    char **ip_addresses; /* subjectAltName IP entries, textual */
    size_t n_ip_addresses;
    time_t not_before;
    time_t not_after;
    long days_to_expiry;         /* floor((not_after - now) / 86400); negative once expired */
    char key_algorithm[16];      /* "RSA", "ECDSA", "Ed25519" */
    int key_bits;                /* 2048, 256, 384, 253 (Ed25519) */
    char curve[16];              /* "P-256", "P-384", or "" */
    char fingerprint_sha256[65]; /* lower-case hex of SHA-256(leaf DER) */
    int is_ca;                   /* basicConstraints CA:TRUE */
    int has_key;                 /* a private key was imported with it */
    size_t chain_length;         /* certificates in the chain field */
    enum cs_status status;
};

/* A certificate version ready to serve, chosen per handshake: parsed once,
 * shared by every listener and TLS policy. OpenSSL objects (X509, STACK_OF(X509),
 * EVP_PKEY) named by their struct tags so this header needs no OpenSSL. */
struct cs_served {
    struct x509_st *leaf;
    struct stack_st_X509 *chain; /* NULL when there is none */
    struct evp_pkey_st *key;
};

/* The master key that wraps private keys at rest. Opaque. */
struct cs_master;

#endif
