/* testcerts.h - test certificates made in memory with the OpenSSL API, for
 * unit tests of any component: CA, intermediate and leaf certificates with a
 * chosen key type, validity window and DNS/IP SANs, as PEM strings. Nothing
 * is written to disk; nothing here is for production use.
 *
 *     struct tc_cert *ca = tc_ca("Test CA");
 *     struct tc_cert *leaf = tc_leaf(ca, TC_KEY_P256, "DNS:a.test,IP:127.0.0.1");
 *     cs_import(leaf->cert_pem, strlen(leaf->cert_pem), leaf->key_pem, ...);
 *     tc_cert_free(leaf);
 *     tc_cert_free(ca);
 *
 * Functions return NULL on failure (tests assert_non_null on them). */
#ifndef PC_TESTCERTS_H
#define PC_TESTCERTS_H

#include <openssl/evp.h>
#include <openssl/x509.h>

enum tc_key_type {
    TC_KEY_RSA = 0, /* tc_opts.rsa_bits, default 2048 */
    TC_KEY_P256,
    TC_KEY_P384,
    TC_KEY_P521,
    TC_KEY_SECP256K1,
    TC_KEY_ED25519,
};

/* How tc_key_pem() writes a private key. */
enum tc_pem_format {
    TC_PEM_PKCS8 = 0,             /* BEGIN PRIVATE KEY */
    TC_PEM_TRADITIONAL,           /* BEGIN RSA PRIVATE KEY / BEGIN EC PRIVATE KEY */
    TC_PEM_PKCS8_ENCRYPTED,       /* BEGIN ENCRYPTED PRIVATE KEY (passphrase "test") */
    TC_PEM_TRADITIONAL_ENCRYPTED, /* Proc-Type: 4,ENCRYPTED header (passphrase "test") */
};

struct tc_opts {
    enum tc_key_type key_type;
    int rsa_bits;       /* TC_KEY_RSA only; 0 means 2048 */
    EVP_PKEY *key;      /* use this key instead of generating one (not consumed) */
    const char *cn;     /* subject commonName; NULL means "tc" */
    const char *sans;   /* subjectAltName in openssl config syntax, e.g.
                         * "DNS:a.test,DNS:*.b.test,IP:127.0.0.1,IP:::1"; NULL for none */
    long not_before_s;  /* validity start, seconds relative to now */
    long not_after_s;   /* validity end, seconds relative to now; when both are 0:
                         * one hour ago to 30 days ahead */
    int is_ca;          /* basicConstraints CA:TRUE, keyUsage keyCertSign */
    const char *digest; /* signature digest, e.g. "SHA1"; NULL means SHA-256
                         * (ignored when the issuer's key is Ed25519) */
};

struct tc_cert {
    X509 *x509;
    EVP_PKEY *key;
    char *cert_pem; /* NUL-terminated "BEGIN CERTIFICATE" block */
    char *key_pem;  /* NUL-terminated PKCS#8 "BEGIN PRIVATE KEY" block */
};

/* Generate a key. Caller frees with EVP_PKEY_free(). 'rsa_bits' 0 = 2048. */
EVP_PKEY *tc_key_new(enum tc_key_type type, int rsa_bits);

/* Issue a certificate described by 'o', signed by 'issuer' (NULL: self-signed).
 * Caller frees with tc_cert_free(). */
struct tc_cert *tc_cert_new(const struct tc_opts *o, const struct tc_cert *issuer);

/* Shorthands: a self-signed P-256 root CA; a P-256 intermediate CA under
 * 'issuer'; a leaf of 'type' (RSA-2048 for TC_KEY_RSA) with 'sans', valid
 * from one hour ago for 30 days. */
struct tc_cert *tc_ca(const char *cn);
struct tc_cert *tc_intermediate(const struct tc_cert *issuer, const char *cn);
struct tc_cert *tc_leaf(const struct tc_cert *issuer, enum tc_key_type type, const char *sans);

void tc_cert_free(struct tc_cert *c);

/* PEM of 'c''s private key in format 'f'. Caller frees with free(). */
char *tc_key_pem(const struct tc_cert *c, enum tc_pem_format f);

/* Concatenate NUL-terminated strings up to a NULL, e.g. a chain:
 * tc_concat(inter->cert_pem, ca->cert_pem, NULL). Caller frees with free(). */
char *tc_concat(const char *first, ...);

#endif
