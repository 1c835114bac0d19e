/* cs_ctx.c - SSL_CTX building: server contexts for listeners (TLS policy,
 * certificate, ALPN) and client contexts for re-encryption to backends.
 *
 * ALPN: the server's protocol list lives on each SSL (ex_data, set by
 * cs_ssl_set_alpn()), not on the SSL_CTX, because SNI may move a connection
 * to another certificate's SSL_CTX and the listener's ALPN must hold for
 * every certificate. The server's preference order wins. When the client
 * offers no protocol the listener accepts, no ALPN is selected and the
 * handshake goes on (SSL_TLSEXT_ERR_NOACK, as HAProxy does) instead of a
 * fatal no_application_protocol alert: a client that cannot work without
 * one of its protocols sees none selected and closes itself, while clients
 * that merely advertise (curl offering h2 and http/1.1 to an "h2"-only
 * listener) keep working. */
#include <arpa/inet.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cs.h"
#include "cs_pem.h"
#include "err.h"

/* Mozilla "intermediate" without DHE: ECDHE and AEAD only. */
#define CIPHERS_INTERMEDIATE                                                                       \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* Adds the ECDHE-CBC suites that pre-2013 TLS 1.2 clients need. */
#define CIPHERS_COMPAT                                                                             \
    CIPHERS_INTERMEDIATE ":"                                                                       \
                         "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:"                      \
                         "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"                            \
                         "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:"                      \
                         "ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA"
#define GROUPS "X25519:P-256:P-384"
/* Bound on the certificates of a trust-anchor bundle for backends. */
#define CA_BUNDLE_MAX 1000

static CRYPTO_ONCE alpn_once = CRYPTO_ONCE_STATIC_INIT;
static int alpn_idx_wire = -1; /* const unsigned char *: the wire-format list */
static int alpn_idx_len = -1;  /* its length, stored as a pointer-sized integer */

static void alpn_init(void)
{
    alpn_idx_wire = SSL_get_ex_new_index(0, (void *)"pc alpn list", NULL, NULL, NULL);
    alpn_idx_len = SSL_get_ex_new_index(0, (void *)"pc alpn length", NULL, NULL, NULL);
}

static int alpn_ready(void)
{
    return CRYPTO_THREAD_run_once(&alpn_once, alpn_init) == 1 && alpn_idx_wire >= 0 &&
           alpn_idx_len >= 0;
}

void cs_ssl_set_alpn(SSL *ssl, const unsigned char *wire, size_t wire_len)
{
    if (!alpn_ready())
        return;
    if (wire == NULL)
        wire_len = 0;
    SSL_set_ex_data(ssl, alpn_idx_wire, (void *)wire);
    SSL_set_ex_data(ssl, alpn_idx_len, (void *)(uintptr_t)wire_len);
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    const unsigned char *wire;
    size_t len;
    unsigned char *sel = NULL;

    (void)arg;
    if (!alpn_ready())
        return SSL_TLSEXT_ERR_NOACK;
    wire = SSL_get_ex_data(ssl, alpn_idx_wire);
    len = (size_t)(uintptr_t)SSL_get_ex_data(ssl, alpn_idx_len);
    if (wire == NULL || len == 0 || len > UINT_MAX || inlen == 0)
        return SSL_TLSEXT_ERR_NOACK;
    /* The server list goes first: SSL_select_next_proto() walks its first
     * argument in order, so the listener's preference wins. */
    if (SSL_select_next_proto(&sel, outlen, wire, (unsigned int)len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

int cs_alpn_encode(const char *const *protos, size_t n, unsigned char **out, size_t *out_len,
                   struct err *err)
{
    unsigned char *buf, *p;
    size_t total = 0;

    *out = NULL;
    *out_len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = protos[i] != NULL ? strlen(protos[i]) : 0;

        if (l < 1 || l > 255)
            return err_set(err, ERR_INVALID, "alpn_invalid", "alpn",
                           "alpn[%zu] must be 1 to 255 bytes", i);
        total += 1 + l;
    }
    /* The ALPN extension's list has a 16-bit length. */
    if (total > 65535)
        return err_set(err, ERR_INVALID, "alpn_invalid", "alpn", "alpn list is too long");
    if (n == 0)
        return 0;
    buf = malloc(total);
    if (buf == NULL)
        return err_set(err, ERR_INTERNAL, "out_of_memory", "alpn", "out of memory");
    p = buf;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(protos[i]);

        *p++ = (unsigned char)l;
        memcpy(p, protos[i], l);
        p += l;
    }
    *out = buf;
    *out_len = total;
    return 0;
}

static int ctx_fail(struct err *err, const char *what)
{
    return err_set(err, ERR_INTERNAL, "tls_context_failed", NULL, "%s failed: %s", what,
                   cs_ossl_reason());
}

/* Versions and ciphers of a named policy. */
static int policy_apply(SSL_CTX *ctx, enum cs_policy policy, struct err *err)
{
    const char *ciphers = NULL;
    int min = TLS1_2_VERSION;

    switch (policy) {
    case CS_POLICY_MODERN:
        min = TLS1_3_VERSION;
        break;
    case CS_POLICY_INTERMEDIATE:
        ciphers = CIPHERS_INTERMEDIATE;
        break;
    case CS_POLICY_COMPAT:
        ciphers = CIPHERS_COMPAT;
        break;
    default:
        return err_set(err, ERR_INVALID, "ssl_policy_invalid", "ssl_policy",
                       "unknown TLS policy %d", (int)policy);
    }
    if (SSL_CTX_set_min_proto_version(ctx, min) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
        return ctx_fail(err, "setting protocol versions");
    /* TLS 1.2 suites are moot for modern but kept strict all the same. */
    if (SSL_CTX_set_cipher_list(ctx, ciphers != NULL ? ciphers : CIPHERS_INTERMEDIATE) != 1)
        return ctx_fail(err, "setting ciphers");
    if (SSL_CTX_set1_groups_list(ctx, GROUPS) != 1)
        return ctx_fail(err, "setting groups");
    return 0;
}

/* Why OpenSSL's security level refuses a certificate, in operator terms. */
static const char *security_hint(void)
{
    const char *r = cs_ossl_reason();

    if (strstr(r, "md too weak") != NULL)
        return "its signature uses a digest TLS clients refuse (MD5, SHA-1); reissue it with "
               "SHA-256 or better";
    if (strstr(r, "key too small") != NULL)
        return "its key is too small for TLS clients";
    return r;
}

/* Put the certificate, chain and key in 'ctx', which judges them by the
 * library's security level (signature digests, key sizes) as it will at
 * handshake time. */
static int ctx_load(SSL_CTX *ctx, X509 *leaf, STACK_OF(X509) * chain, EVP_PKEY *key,
                    struct err *err)
{
    ERR_clear_error();
    if (SSL_CTX_use_certificate(ctx, leaf) != 1)
        return err_set(err, ERR_UNPROCESSABLE, "certificate_insecure", CS_F_CERT,
                       "certificate is refused by the TLS library: %s", security_hint());
    if (SSL_CTX_set1_chain(ctx, chain) != 1)
        return err_set(err, ERR_UNPROCESSABLE, "chain_insecure", CS_F_CHAIN,
                       "certificate_chain is refused by the TLS library: %s", security_hint());
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        return err_set(err, ERR_UNPROCESSABLE, "certificate_key_mismatch", CS_F_KEY,
                       "private_key does not match the certificate: %s", cs_ossl_reason());
    return 0;
}

int cs_ctx_trial(X509 *leaf, STACK_OF(X509) * chain, EVP_PKEY *key, struct err *err)
{
    SSL_CTX *ctx;
    int rc;

    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return ctx_fail(err, "SSL_CTX_new");
    rc = ctx_load(ctx, leaf, chain, key, err);
    SSL_CTX_free(ctx);
    return rc;
}

int cs_server_ctx_new(enum cs_policy policy, SSL_CTX **out, struct err *err)
{
    static const unsigned char sid_ctx[] = "portcullis";
    SSL_CTX *ctx;

    *out = NULL;
    if (!alpn_ready())
        return err_set(err, ERR_INTERNAL, "tls_context_failed", NULL,
                       "allocating the ALPN index failed");
    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return ctx_fail(err, "SSL_CTX_new");
    if (policy_apply(ctx, policy, err) < 0)
        goto fail;
    /* Session tickets stay on (OpenSSL's default, as HAProxy and nginx):
     * resumption halves handshake cost for returning clients. One TLS 1.3
     * ticket per full handshake instead of OpenSSL's two: each costs an
     * encryption and a record, and a client resumes with one. */
    SSL_CTX_set_num_tickets(ctx, 1);
    /* Server order, except that a client listing ChaCha20 first (phones
     * without AES instructions) gets it. */
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA |
                                 SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* Idle connections give their 34 KiB of buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* Callers sharing one SSL_CTX between listeners set a context per SSL. */
    if (SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
        ctx_fail(err, "setting the session id context");
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    ERR_clear_error();
    *out = ctx;
    return 0;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return -1;
}

int cs_ctx_build(const char *cert_pem, size_t cert_len, const char *chain_pem, size_t chain_len,
                 const char *key_pem, size_t key_len, enum cs_policy policy, SSL_CTX **out,
                 struct err *err)
{
    struct cs_served s;
    SSL_CTX *ctx = NULL;

    *out = NULL;
    if (cs_server_ctx_new(policy, &ctx, err) < 0)
        return -1;
    /* The proxy's own path: parse and check once, loading into 'ctx'. */
    if (cs_served_load(cert_pem, cert_len, chain_pem, chain_len, key_pem, key_len, ctx, &s, err) <
        0) {
        SSL_CTX_free(ctx);
        return -1;
    }
    cs_served_clear(&s); /* 'ctx' holds its own references */
    *out = ctx;
    return 0;
}

void cs_served_clear(struct cs_served *s)
{
    X509_free(s->leaf);
    sk_X509_pop_free(s->chain, X509_free);
    EVP_PKEY_free(s->key);
    s->leaf = NULL;
    s->chain = NULL;
    s->key = NULL;
}

int cs_served_load(const char *cert_pem, size_t cert_len, const char *chain_pem, size_t chain_len,
                   const char *key_pem, size_t key_len, SSL_CTX *check, struct cs_served *out,
                   struct err *err)
{
    struct cs_served s = {0};

    memset(out, 0, sizeof(*out));
    if (cs_pem_cert(cert_pem, cert_len, &s.leaf, err) < 0 ||
        cs_pem_key(key_pem, key_len, &s.key, err) < 0 ||
        cs_pem_certs(chain_pem, chain_len, CS_MAX_CHAIN, CS_F_CHAIN, &s.chain, err) < 0)
        goto fail;
    if (sk_X509_num(s.chain) <= 0) {
        /* No chain: nothing to copy per handshake. */
        sk_X509_free(s.chain);
        s.chain = NULL;
    }
    ERR_clear_error();
    if (check != NULL) {
        /* Judged as a handshake would; precise codes for each part. */
        if (ctx_load(check, s.leaf, s.chain, s.key, err) < 0)
            goto fail;
    } else if (X509_check_private_key(s.leaf, s.key) != 1) {
        err_set(err, ERR_UNPROCESSABLE, "certificate_key_mismatch", CS_F_KEY,
                "private_key does not match the certificate: %s", cs_ossl_reason());
        goto fail;
    }
    ERR_clear_error();
    *out = s;
    return 0;
fail:
    ERR_clear_error();
    cs_served_clear(&s);
    return -1;
}

int cs_ssl_use_served(SSL *ssl, const struct cs_served *s)
{
    /* A second ClientHello (after HelloRetryRequest) may come after a
     * rotation to another key type: only the certificate set now may be
     * offered, not one left in another key type's entry. */
    SSL_certs_clear(ssl);
    if (SSL_use_cert_and_key(ssl, s->leaf, s->key, s->chain, 1) != 1) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

int cs_client_ctx_build(int verify, const char *ca_pem, size_t ca_len, SSL_CTX **out,
                        struct err *err)
{
    SSL_CTX *ctx = NULL;
    STACK_OF(X509) *cas = NULL;
    X509_STORE *store;
    int rc = -1;

    *out = NULL;
    if (verify && !cs_pem_blank(ca_pem, ca_len) &&
        cs_pem_certs(ca_pem, ca_len, CA_BUNDLE_MAX, "ca_certificate", &cas, err) < 0)
        goto out;
    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        ctx_fail(err, "SSL_CTX_new");
        goto out;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, CIPHERS_COMPAT) != 1) {
        ctx_fail(err, "setting protocol versions and ciphers");
        goto out;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (cas == NULL) {
            if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
                ctx_fail(err, "loading the system trust store");
                goto out;
            }
        } else {
            store = SSL_CTX_get_cert_store(ctx);
            for (int i = 0; i < sk_X509_num(cas); i++) {
                if (X509_STORE_add_cert(store, sk_X509_value(cas, i)) != 1) {
                    ctx_fail(err, "adding a trust anchor");
                    goto out;
                }
            }
            /* An intermediate given as the trust anchor is enough. */
            X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
        }
    }
    *out = ctx;
    ctx = NULL; /* caller owns it */
    rc = 0;
out:
    /* Leave no stale errors for the caller's next SSL_get_error(). */
    ERR_clear_error();
    SSL_CTX_free(ctx);
    sk_X509_pop_free(cas, X509_free);
    return rc;
}

int cs_ssl_set_peer_name(SSL *ssl, const char *name, struct err *err)
{
    unsigned char addr[16];
    int rc = 0;

    if (name == NULL || name[0] == '\0')
        return 0;
    ERR_clear_error();
    if (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1) {
        /* No SNI for an address (RFC 6066 section 3); match an IP SAN. */
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1)
            rc = err_set(err, ERR_INTERNAL, "tls_context_failed", NULL,
                         "setting the expected peer address failed: %s", cs_ossl_reason());
    } else {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set_tlsext_host_name(ssl, name) != 1 || SSL_set1_host(ssl, name) != 1)
            rc =
                err_set(err, ERR_INVALID, "server_name_invalid", "server_name",
                        "server_name \"%.64s\" cannot be used for TLS: %s", name, cs_ossl_reason());
    }
    /* This SSL's next SSL_get_error() must not see a stale error. */
    ERR_clear_error();
    return rc;
}
