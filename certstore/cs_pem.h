/* cs_pem.h - internal to certstore: strict PEM parsing of the three import
 * fields, shared by import validation (cs_import.c) and SSL_CTX building
 * (cs_ctx.c), the trial SSL_CTX load, and the OpenSSL error helper. Not for
 * other components. */
#ifndef PC_CS_PEM_H
#define PC_CS_PEM_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err-t.h"

/* struct err.field values, part of the REST API. */
#define CS_F_CERT "certificate"
#define CS_F_KEY "private_key"
#define CS_F_CHAIN "certificate_chain"

/* True when 'p' is NULL, empty or only whitespace. */
int cs_pem_blank(const char *p, size_t len);

/* Parse the certificate field: exactly one CERTIFICATE block, optional
 * text before it (RFC 7468 section 2), only whitespace after it. '*out' is
 * owned by the caller (X509_free). */
int cs_pem_cert(const char *pem, size_t len, X509 **out, struct err *err);

/* Parse the private_key field: exactly one unencrypted PRIVATE KEY, RSA
 * PRIVATE KEY or EC PRIVATE KEY block (an EC PARAMETERS block, as written by
 * `openssl ecparam -genkey`, is skipped). Never prompts for a passphrase.
 * '*out' is owned by the caller (EVP_PKEY_free). */
int cs_pem_key(const char *pem, size_t len, EVP_PKEY **out, struct err *err);

/* Parse a list of CERTIFICATE blocks (at most 'max', more is chain_too_long).
 * A blank input yields an empty stack. Errors use the chain_* codes with
 * 'field' as struct err.field (CS_F_CHAIN for imports). '*out' is owned by
 * the caller (sk_X509_pop_free(sk, X509_free)). */
int cs_pem_certs(const char *pem, size_t len, size_t max, const char *field, STACK_OF(X509) * *out,
                 struct err *err);

/* Load leaf, chain and key into a throw-away server SSL_CTX, so an import
 * refuses what cs_ctx_build() would (the library's security level: weak
 * signature digests, small issuer keys). Codes certificate_insecure,
 * chain_insecure, certificate_key_mismatch. (cs_ctx.c) */
int cs_ctx_trial(X509 *leaf, STACK_OF(X509) * chain, EVP_PKEY *key, struct err *err);

/* The reason of the most recent OpenSSL error, or "no OpenSSL detail";
 * a static string, safe to put in messages (never key material). */
const char *cs_ossl_reason(void);

#endif
