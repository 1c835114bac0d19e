/* cs.h - the certificate store: PEM import and validation, private-key
 * encryption at rest, SSL_CTX building. Used by the control plane (import,
 * seal) and the data plane (SSL_CTX). Thread-safe: no global mutable state
 * beyond OpenSSL's own.
 *
 * Error codes (struct err.code) are stable strings, part of the REST API;
 * the field is "certificate", "private_key" or "certificate_chain".
 *
 * cs_import() code                 field              kind (HTTP)
 *   certificate_missing             certificate        ERR_INVALID (400)
 *   certificate_not_pem             certificate        ERR_INVALID (400)
 *       no PEM block, unterminated block, bad base64, not X.509, wrong label
 *   certificate_multiple            certificate        ERR_INVALID (400)
 *       more than one certificate (intermediates go in certificate_chain)
 *   certificate_trailing_data       certificate        ERR_INVALID (400)
 *   certificate_contains_private_key certificate       ERR_INVALID (400)
 *   certificate_too_large           certificate        ERR_TOO_LARGE (413)
 *   certificate_expired             certificate        ERR_UNPROCESSABLE (422)
 *   private_key_missing             private_key        ERR_INVALID (400)
 *       absent/blank for a certificate that is not a CA (CA:TRUE)
 *   private_key_not_pem             private_key        ERR_INVALID (400)
 *   private_key_multiple            private_key        ERR_INVALID (400)
 *   private_key_trailing_data       private_key        ERR_INVALID (400)
 *   private_key_too_large           private_key        ERR_TOO_LARGE (413)
 *   private_key_encrypted           private_key        ERR_UNPROCESSABLE (422)
 *       ENCRYPTED PRIVATE KEY or Proc-Type: 4,ENCRYPTED; the message says
 *       how to decrypt it (openssl pkey -in key.pem -out plain.pem)
 *   private_key_invalid             private_key        ERR_UNPROCESSABLE (422)
 *       matches the certificate but cannot sign (corrupt private part)
 *   key_too_weak                    private_key (*)    ERR_UNPROCESSABLE (422)
 *       RSA below 2048 bits
 *   key_unsupported                 private_key (*)    ERR_UNPROCESSABLE (422)
 *       not RSA 2048..8192, ECDSA P-256/P-384 or Ed25519 (e.g. secp256k1,
 *       P-521, DSA, RSA-PSS)
 *   certificate_key_mismatch        private_key        ERR_UNPROCESSABLE (422)
 *   chain_not_pem                   certificate_chain  ERR_INVALID (400)
 *   chain_trailing_data             certificate_chain  ERR_INVALID (400)
 *   chain_contains_private_key      certificate_chain  ERR_INVALID (400)
 *   chain_too_large                 certificate_chain  ERR_TOO_LARGE (413)
 *   chain_too_long                  certificate_chain  ERR_TOO_LARGE (413)
 *       more than CS_MAX_CHAIN certificates
 *   chain_contains_leaf             certificate_chain  ERR_UNPROCESSABLE (422)
 *   chain_broken                    certificate_chain  ERR_UNPROCESSABLE (422)
 *       chain[0] must issue and sign the certificate, chain[i+1] chain[i]
 *   certificate_insecure            certificate        ERR_UNPROCESSABLE (422)
 *   chain_insecure                  certificate_chain  ERR_UNPROCESSABLE (422)
 *       refused by the TLS library's security level, as cs_ctx_build()
 *       would: a signature digest such as SHA-1 or MD5, a too small key
 *   key_unsupported also covers a certificate public key OpenSSL cannot decode.
 *   (*) "certificate" when no private key was given (trust anchor).
 *   out_of_memory                   NULL               ERR_INTERNAL (500)
 * Checks run in this order: sizes; parsing of certificate, private_key,
 * certificate_chain; key type; key match; expiry; chain links; a trial
 * SSL_CTX load (whatever cs_import() accepts with a key, cs_ctx_build()
 * accepts too; the fuzz test checks it). Text before a PEM block is
 * ignored (RFC 7468); after the last block only whitespace may follow.
 * A certificate not yet valid is accepted with CS_STATUS_NOT_YET_VALID.
 *
 * Other codes: master_key_invalid, master_key_io (cs_master_load),
 * seal_failed, key_decrypt_failed (cs_seal/cs_open), tls_context_failed
 * (cs_ctx_build/cs_client_ctx_build; they also return the parse codes
 * above, and "ca_certificate" as the field of the client CA bundle),
 * all ERR_INTERNAL: none of them comes from client input; and
 * ssl_policy_invalid (field "ssl_policy"), alpn_invalid (field "alpn"),
 * server_name_invalid (field "server_name", cs_ssl_set_peer_name), all
 * three ERR_INVALID. */
#ifndef PC_CS_H
#define PC_CS_H

#include <openssl/ssl.h>

#include "cs-t.h"
#include "err-t.h"

/* Validate a certificate, its private key and optional chain, all PEM.
 * 'key_pem' may be NULL only for a CA certificate imported as a trust
 * anchor (meta->has_key = 0); 'chain_pem' may be NULL or empty. Lengths
 * exclude any NUL. 'now' is the time validity is judged against.
 * On success fills 'meta' (caller frees with cs_meta_free) and returns 0;
 * on failure returns -1 with 'err' set (ERR_INVALID for unparseable input,
 * ERR_TOO_LARGE for oversize, ERR_UNPROCESSABLE for well-formed but refused:
 * expired, weak key, mismatch, bad chain). */
int cs_import(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
              const char *chain_pem, size_t chain_len, time_t now, struct cs_meta *meta,
              struct err *err);

/* Release what cs_import() put in 'meta'. */
void cs_meta_free(struct cs_meta *meta);

/* Load '<data_dir>/master.key', creating it (32 random bytes, mode 0600)
 * when absent. Refuses a key file of the wrong size or with group/other
 * permissions. '*out' is owned by the caller: cs_master_free(). */
int cs_master_load(const char *data_dir, struct cs_master **out, struct err *err);

/* Wipe and free. NULL is fine. */
void cs_master_free(struct cs_master *mk);

/* Encrypt 'pt' with AES-256-GCM under 'mk', a fresh random nonce, and 'aad'
 * (the certificate id) as additional authenticated data. '*ct' is malloc'd,
 * owned by the caller (plain free()). */
int cs_seal(const struct cs_master *mk, const char *aad, const void *pt, size_t pt_len,
            uint8_t **ct, size_t *ct_len, struct err *err);

/* Decrypt what cs_seal() produced. Fails cleanly on a wrong key, a wrong
 * 'aad' or tampering. '*pt' is NUL-terminated, owned by the caller, and
 * must be released with cs_secret_free(*pt, *pt_len). */
int cs_open(const struct cs_master *mk, const char *aad, const uint8_t *ct, size_t ct_len,
            char **pt, size_t *pt_len, struct err *err);

/* OPENSSL_cleanse() then free(). NULL is fine. */
void cs_secret_free(void *p, size_t len);

/* Parse "modern", "intermediate" or "compat". */
int cs_policy_parse(const char *name, enum cs_policy *out);
const char *cs_policy_name(enum cs_policy p);

/* A server SSL_CTX of 'policy' (cs_server_ctx_new()) with one certificate
 * version loaded: leaf, chain and key (PEM), through cs_served_load(), the
 * proxy's own parsing and checks. The result has one reference, owned by the
 * caller. The proxy itself shares one SSL_CTX per policy and sets the
 * certificate per handshake; this is for tools and tests (and the fuzz
 * test's invariant: whatever cs_import() accepts with a key, this accepts). */
int cs_ctx_build(const char *cert_pem, size_t cert_len, const char *chain_pem, size_t chain_len,
                 const char *key_pem, size_t key_len, enum cs_policy policy, SSL_CTX **out,
                 struct err *err);

/* One server SSL_CTX for a TLS policy, without a certificate: protocol
 * versions, ciphers, groups, session tickets, ALPN through
 * cs_ssl_set_alpn(). The certificate is chosen per handshake
 * (cs_ssl_use_served() from a ClientHello callback), so one SSL_CTX serves
 * any number of certificates: 10,000 certificates cost 10,000 parsed
 * certificates and keys, not 10,000 SSL_CTXs of 13 KiB and 0.7 ms each.
 * The caller owns the one reference. */
int cs_server_ctx_new(enum cs_policy policy, SSL_CTX **out, struct err *err);

/* Parse a certificate version for serving: leaf, chain and key (PEM, as
 * cs_import() accepts them with a key). When 'check' is not NULL the three
 * are loaded into it (a scratch server SSL_CTX whose certificate is
 * replaced) so the TLS library's security level and the key match are
 * judged now, as a handshake would, instead of failing every handshake
 * later (codes certificate_insecure, chain_insecure,
 * certificate_key_mismatch). On success the caller owns '*out'
 * (cs_served_clear()). */
int cs_served_load(const char *cert_pem, size_t cert_len, const char *chain_pem, size_t chain_len,
                   const char *key_pem, size_t key_len, SSL_CTX *check, struct cs_served *out,
                   struct err *err);

/* Release what cs_served_load() filled in; 's' may be zeroed or half-filled. */
void cs_served_clear(struct cs_served *s);

/* Serve 's' on 'ssl' (a server SSL between ClientHello and certificate
 * selection). The SSL takes its own references. Returns 0, or -1. */
int cs_ssl_use_served(SSL *ssl, const struct cs_served *s);

/* Free the calling thread's cached key decoders (threads that exit free
 * theirs; the main thread calls this before exit). */
void cs_thread_cleanup(void);

/* Set the ALPN protocols the server accepts on 'ssl', in preference order,
 * in wire format (length-prefixed). 'wire' must outlive the handshake (the
 * listener's runtime configuration holds it). NULL disables ALPN. */
void cs_ssl_set_alpn(SSL *ssl, const unsigned char *wire, size_t wire_len);

/* Encode an ALPN list into wire format. '*out' is malloc'd (caller frees).
 * Each protocol is 1..255 bytes. */
int cs_alpn_encode(const char *const *protos, size_t n, unsigned char **out, size_t *out_len,
                   struct err *err);

/* Build a client SSL_CTX for re-encryption to backends: TLS 1.2+, peer
 * verification when 'verify' (against 'ca_pem' when given, else the system
 * trust store). Host name checking is per connection (SSL_set1_host). */
int cs_client_ctx_build(int verify, const char *ca_pem, size_t ca_len, SSL_CTX **out,
                        struct err *err);

/* Prepare a client SSL (from cs_client_ctx_build()) for one backend:
 * 'name' is sent as SNI when it is a DNS name (never for an IP literal,
 * RFC 6066) and, when the SSL_CTX verifies peers, the certificate must
 * match it (DNS SAN, or IP SAN for an address literal). NULL or "" sets
 * nothing. Returns 0, or -1 with 'err' set (server_name_invalid). */
int cs_ssl_set_peer_name(SSL *ssl, const char *name, struct err *err);

#endif
