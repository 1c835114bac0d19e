/* test_cs_ctx.c - server and client SSL_CTXs that really handshake, in
 * memory over a BIO pair: TLS policies (versions, ciphers, server
 * preference), session resumption, ALPN selection (also after an SNI switch
 * to another SSL_CTX), a policy SSL_CTX whose certificate is chosen per
 * handshake (cs_served), peer verification of the client context. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cs.h"
#include "err.h"
#include "testcerts.h"

static struct {
    struct tc_cert *ca, *inter, *other_ca;
    struct tc_cert *rsa, *p256, *ed, *p384;
    char *chain; /* inter only: what a server sends */
} f;

static int setup(void **state)
{
    (void)state;
    f.ca = tc_ca("Ctx Root");
    f.inter = tc_intermediate(f.ca, "Ctx Intermediate");
    f.other_ca = tc_ca("Other Root");
    if (f.ca == NULL || f.inter == NULL || f.other_ca == NULL)
        return -1;
    f.rsa = tc_leaf(f.inter, TC_KEY_RSA, "DNS:leaf.test,IP:127.0.0.1");
    f.p256 = tc_leaf(f.inter, TC_KEY_P256, "DNS:leaf.test");
    f.ed = tc_leaf(f.inter, TC_KEY_ED25519, "DNS:leaf.test");
    f.p384 = tc_leaf(f.inter, TC_KEY_P384, "DNS:other.test");
    f.chain = strdup(f.inter->cert_pem);
    return f.rsa && f.p256 && f.ed && f.p384 && f.chain ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tc_cert_free(f.ca);
    tc_cert_free(f.inter);
    tc_cert_free(f.other_ca);
    tc_cert_free(f.rsa);
    tc_cert_free(f.p256);
    tc_cert_free(f.ed);
    tc_cert_free(f.p384);
    free(f.chain);
    return 0;
}

static SSL_CTX *server_ctx(const struct tc_cert *c, enum cs_policy p)
{
    SSL_CTX *ctx = NULL;
    struct err e = {0};

    if (cs_ctx_build(c->cert_pem, strlen(c->cert_pem), f.chain, strlen(f.chain), c->key_pem,
                     strlen(c->key_pem), p, &ctx, &e) != 0)
        fail_msg("cs_ctx_build: %s: %s", e.code, e.message);
    return ctx;
}

/* A plain test client: no verification; 'max' 0 for the default. */
static SSL_CTX *client_ctx(int max, const char *ciphers)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    assert_non_null(ctx);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (max != 0)
        assert_int_equal(SSL_CTX_set_max_proto_version(ctx, max), 1);
    if (ciphers != NULL)
        assert_int_equal(SSL_CTX_set_cipher_list(ctx, ciphers), 1);
    return ctx;
}

/* Drive both ends over a BIO pair; bounded. Returns 1 when both completed,
 * then exchanges one message each way. */
static int handshake(SSL *s, SSL *c)
{
    BIO *sb = NULL, *cb = NULL;
    int sdone = 0, cdone = 0;
    char buf[8];

    assert_int_equal(BIO_new_bio_pair(&sb, 0, &cb, 0), 1);
    SSL_set_bio(s, sb, sb);
    SSL_set_bio(c, cb, cb);
    SSL_set_accept_state(s);
    SSL_set_connect_state(c);
    for (int i = 0; i < 100 && !(sdone && cdone); i++) {
        int r;

        if (!cdone) {
            r = SSL_do_handshake(c);
            if (r == 1)
                cdone = 1;
            else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ &&
                     SSL_get_error(c, r) != SSL_ERROR_WANT_WRITE)
                return 0;
        }
        if (!sdone) {
            r = SSL_do_handshake(s);
            if (r == 1)
                sdone = 1;
            else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ &&
                     SSL_get_error(s, r) != SSL_ERROR_WANT_WRITE)
                return 0;
        }
    }
    if (!(sdone && cdone))
        return 0;
    assert_int_equal(SSL_write(c, "ping", 4), 4);
    assert_int_equal(SSL_read(s, buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(SSL_write(s, "pong", 4), 4);
    assert_int_equal(SSL_read(c, buf, sizeof(buf)), 4); /* also takes TLS 1.3 tickets */
    assert_memory_equal(buf, "pong", 4);
    return 1;
}

/* One connection between fresh SSLs of 'sctx' and 'cctx'; '*version' and
 * '*cipher' (optional) report what was negotiated. */
static int connect_once(SSL_CTX *sctx, SSL_CTX *cctx, int *version, char *cipher, size_t n)
{
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    int ok;

    assert_non_null(s);
    assert_non_null(c);
    ok = handshake(s, c);
    if (ok && version != NULL)
        *version = SSL_version(s);
    if (ok && cipher != NULL)
        snprintf(cipher, n, "%s", SSL_get_cipher_name(s));
    SSL_free(s);
    SSL_free(c);
    ERR_clear_error();
    return ok;
}

static void test_policy_versions(void **state)
{
    const struct tc_cert *certs[] = {f.rsa, f.p256, f.ed, f.p384};
    SSL_CTX *dflt = client_ctx(0, NULL), *tls12 = client_ctx(TLS1_2_VERSION, NULL);
    SSL_CTX *tls11 = client_ctx(TLS1_1_VERSION, NULL);
    char cipher[64];
    int v;

    (void)state;
    SSL_CTX_set_security_level(tls11, 0);
    SSL_CTX_set_min_proto_version(tls11, TLS1_VERSION);
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++) {
        SSL_CTX *modern = server_ctx(certs[i], CS_POLICY_MODERN);
        SSL_CTX *inter = server_ctx(certs[i], CS_POLICY_INTERMEDIATE);
        SSL_CTX *compat = server_ctx(certs[i], CS_POLICY_COMPAT);

        assert_true(connect_once(modern, dflt, &v, NULL, 0));
        assert_int_equal(v, TLS1_3_VERSION);
        assert_false(connect_once(modern, tls12, NULL, NULL, 0)); /* TLS 1.3 only */

        assert_true(connect_once(inter, dflt, &v, NULL, 0));
        assert_int_equal(v, TLS1_3_VERSION);
        assert_true(connect_once(inter, tls12, &v, cipher, sizeof(cipher)));
        assert_int_equal(v, TLS1_2_VERSION);
        assert_non_null(strstr(cipher, "ECDHE-"));
        assert_true(strstr(cipher, "GCM") != NULL || strstr(cipher, "CHACHA20") != NULL);

        assert_true(connect_once(compat, tls12, &v, NULL, 0));
        assert_int_equal(v, TLS1_2_VERSION);

        assert_false(connect_once(modern, tls11, NULL, NULL, 0));
        assert_false(connect_once(inter, tls11, NULL, NULL, 0));
        assert_false(connect_once(compat, tls11, NULL, NULL, 0));
        SSL_CTX_free(modern);
        SSL_CTX_free(inter);
        SSL_CTX_free(compat);
    }
    SSL_CTX_free(dflt);
    SSL_CTX_free(tls12);
    SSL_CTX_free(tls11);
}

static void test_policy_ciphers(void **state)
{
    SSL_CTX *inter = server_ctx(f.rsa, CS_POLICY_INTERMEDIATE);
    SSL_CTX *compat = server_ctx(f.rsa, CS_POLICY_COMPAT);
    SSL_CTX *cbc = client_ctx(TLS1_2_VERSION, "ECDHE-RSA-AES128-SHA");
    SSL_CTX *plain_rsa = client_ctx(TLS1_2_VERSION, "AES128-GCM-SHA256");
    SSL_CTX *pref =
        client_ctx(TLS1_2_VERSION, "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256");
    SSL_CTX *chacha =
        client_ctx(TLS1_2_VERSION, "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256");
    char cipher[64];

    (void)state;
    /* CBC only in compat; no static-RSA key exchange anywhere. */
    assert_false(connect_once(inter, cbc, NULL, NULL, 0));
    assert_true(connect_once(compat, cbc, NULL, cipher, sizeof(cipher)));
    assert_string_equal(cipher, "ECDHE-RSA-AES128-SHA");
    assert_false(connect_once(inter, plain_rsa, NULL, NULL, 0));
    assert_false(connect_once(compat, plain_rsa, NULL, NULL, 0));
    /* The server's order wins over the client's. */
    assert_true(connect_once(inter, pref, NULL, cipher, sizeof(cipher)));
    assert_string_equal(cipher, "ECDHE-RSA-AES128-GCM-SHA256");
    /* ...except for a client that puts ChaCha20 first. */
    assert_true(connect_once(inter, chacha, NULL, cipher, sizeof(cipher)));
    assert_string_equal(cipher, "ECDHE-RSA-CHACHA20-POLY1305");

    assert_true(SSL_CTX_get_options(inter) & SSL_OP_CIPHER_SERVER_PREFERENCE);
    assert_false(SSL_CTX_get_options(inter) & SSL_OP_NO_TICKET);
    assert_true(SSL_CTX_get_mode(inter) & SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_free(inter);
    SSL_CTX_free(compat);
    SSL_CTX_free(cbc);
    SSL_CTX_free(plain_rsa);
    SSL_CTX_free(pref);
    SSL_CTX_free(chacha);
}

/* Session tickets are on: a second connection resumes. */
static void test_resumption(void **state)
{
    SSL_CTX *sctx = server_ctx(f.p256, CS_POLICY_INTERMEDIATE);
    SSL_CTX *cctx = client_ctx(0, NULL);
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    SSL_SESSION *sess;

    (void)state;
    assert_true(handshake(s, c));
    assert_false(SSL_session_reused(c));
    sess = SSL_get1_session(c);
    assert_non_null(sess);
    assert_true(SSL_SESSION_is_resumable(sess));
    /* An SSL freed without close_notify marks its session not resumable. */
    SSL_shutdown(c);
    SSL_shutdown(s);
    SSL_free(s);
    SSL_free(c);
    s = SSL_new(sctx);
    c = SSL_new(cctx);
    assert_int_equal(SSL_set_session(c, sess), 1);
    assert_true(handshake(s, c));
    assert_true(SSL_session_reused(c));
    assert_true(SSL_session_reused(s));
    SSL_SESSION_free(sess);
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
}

static unsigned char *alpn(const char *const *protos, size_t n, size_t *len)
{
    unsigned char *w = NULL;
    struct err e = {0};

    assert_int_equal(cs_alpn_encode(protos, n, &w, len, &e), 0);
    return w;
}

/* Handshake with ALPN: 'server' set per SSL (NULL: not set), 'client' the
 * client's offer (NULL: none). Returns the selected protocol ("" for none). */
static const char *alpn_select(SSL_CTX *sctx, const unsigned char *server, size_t slen,
                               const char *client_csv, char *out, size_t n)
{
    SSL_CTX *cctx = client_ctx(0, NULL);
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    const unsigned char *sel = NULL;
    unsigned int sel_len = 0;

    if (server != NULL)
        cs_ssl_set_alpn(s, server, slen);
    if (client_csv != NULL) {
        const char *protos[8];
        char tmp[128], *save = NULL;
        size_t np = 0;
        unsigned char *w;
        size_t wl;

        snprintf(tmp, sizeof(tmp), "%s", client_csv);
        for (char *t = strtok_r(tmp, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
            protos[np++] = t;
        w = alpn(protos, np, &wl);
        assert_int_equal(SSL_set_alpn_protos(c, w, (unsigned int)wl), 0);
        free(w);
    }
    assert_true(handshake(s, c));
    SSL_get0_alpn_selected(s, &sel, &sel_len);
    snprintf(out, n, "%.*s", (int)sel_len, sel != NULL ? (const char *)sel : "");
    SSL_get0_alpn_selected(c, &sel, &sel_len);
    assert_int_equal(strlen(out), sel_len);
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(cctx);
    return out;
}

static void test_alpn(void **state)
{
    const char *const lst[] = {"h2", "http/1.1"};
    size_t len;
    unsigned char *w = alpn(lst, 2, &len);
    SSL_CTX *sctx = server_ctx(f.p256, CS_POLICY_INTERMEDIATE);
    char got[64];

    (void)state;
    assert_int_equal(len, 12);
    assert_memory_equal(w, "\x02h2\x08http/1.1", 12);
    /* Server preference, whatever the client's order. */
    assert_string_equal(alpn_select(sctx, w, len, "http/1.1,h2", got, sizeof(got)), "h2");
    assert_string_equal(alpn_select(sctx, w, len, "http/1.1", got, sizeof(got)), "http/1.1");
    /* No overlap: the handshake goes on without ALPN. */
    assert_string_equal(alpn_select(sctx, w, len, "spdy/3,acme-tls/1", got, sizeof(got)), "");
    /* Client offers none; listener has none. */
    assert_string_equal(alpn_select(sctx, w, len, NULL, got, sizeof(got)), "");
    assert_string_equal(alpn_select(sctx, NULL, 0, "h2", got, sizeof(got)), "");
    SSL_CTX_free(sctx);
    free(w);
}

static SSL_CTX *switch_to;

static int sni_switch(SSL *ssl, int *al, void *arg)
{
    (void)al;
    (void)arg;
    return SSL_set_SSL_CTX(ssl, switch_to) != NULL ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* The per-connection ALPN list holds after SSL_set_SSL_CTX() to another
 * certificate's context, as the data plane does on SNI. */
static void test_alpn_after_sni_switch(void **state)
{
    const char *const lst[] = {"http/1.1"};
    size_t len;
    unsigned char *w = alpn(lst, 1, &len);
    SSL_CTX *a = server_ctx(f.p256, CS_POLICY_INTERMEDIATE);
    SSL_CTX *b = server_ctx(f.p384, CS_POLICY_INTERMEDIATE);
    SSL_CTX *cctx = client_ctx(0, NULL);
    SSL *s = SSL_new(a), *c = SSL_new(cctx);
    const unsigned char *sel = NULL;
    unsigned int sel_len = 0;
    X509 *peer;

    (void)state;
    switch_to = b;
    SSL_CTX_set_tlsext_servername_callback(a, sni_switch);
    cs_ssl_set_alpn(s, w, len);
    assert_int_equal(SSL_set_alpn_protos(c, w, (unsigned int)len), 0);
    SSL_set_tlsext_host_name(c, "other.test");
    assert_true(handshake(s, c));
    SSL_get0_alpn_selected(c, &sel, &sel_len);
    assert_int_equal(sel_len, 8);
    assert_memory_equal(sel, "http/1.1", 8);
    peer = SSL_get1_peer_certificate(c);
    assert_int_equal(X509_cmp(peer, f.p384->x509), 0);
    X509_free(peer);
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(cctx);
    free(w);
}

static void test_alpn_encode_errors(void **state)
{
    char big[257];
    const char *const empty[] = {"h2", ""};
    const char *const toolong[] = {big};
    unsigned char *w = (unsigned char *)"x";
    size_t len = 1;
    struct err e = {0};

    (void)state;
    memset(big, 'a', 256);
    big[256] = '\0';
    assert_int_equal(cs_alpn_encode(empty, 2, &w, &len, &e), -1);
    assert_null(w);
    assert_string_equal(e.code, "alpn_invalid");
    assert_int_equal(e.kind, ERR_INVALID);
    err_clear(&e);
    assert_int_equal(cs_alpn_encode(toolong, 1, &w, &len, &e), -1);
    assert_string_equal(e.code, "alpn_invalid");
    big[255] = '\0'; /* 255 bytes is the maximum */
    assert_int_equal(cs_alpn_encode(toolong, 1, &w, &len, NULL), 0);
    assert_int_equal(len, 256);
    free(w);
    assert_int_equal(cs_alpn_encode(NULL, 0, &w, &len, NULL), 0);
    assert_null(w);
    assert_int_equal(len, 0);
}

static void test_ctx_build_errors(void **state)
{
    SSL_CTX *ctx = NULL;
    struct err e = {0};
    const char *c = f.p256->cert_pem, *k = f.p384->key_pem;

    (void)state;
    assert_int_equal(cs_ctx_build(c, strlen(c), NULL, 0, k, strlen(k), CS_POLICY_MODERN, &ctx, &e),
                     -1);
    assert_null(ctx);
    assert_string_equal(e.code, "certificate_key_mismatch");
    err_clear(&e);
    assert_int_equal(cs_ctx_build(c, strlen(c), NULL, 0, NULL, 0, CS_POLICY_MODERN, &ctx, &e), -1);
    assert_string_equal(e.code, "private_key_missing");
    err_clear(&e);
    assert_int_equal(cs_ctx_build("junk", 4, NULL, 0, k, strlen(k), CS_POLICY_MODERN, &ctx, &e),
                     -1);
    assert_string_equal(e.code, "certificate_not_pem");
    err_clear(&e);
    assert_int_equal(cs_ctx_build(c, strlen(c), "junk", 4, f.p256->key_pem, strlen(f.p256->key_pem),
                                  CS_POLICY_MODERN, &ctx, &e),
                     -1);
    assert_string_equal(e.code, "chain_not_pem");
    err_clear(&e);
    assert_int_equal(cs_ctx_build(c, strlen(c), NULL, 0, f.p256->key_pem, strlen(f.p256->key_pem),
                                  (enum cs_policy)42, &ctx, &e),
                     -1);
    assert_string_equal(e.code, "ssl_policy_invalid");
}

/* The caller's reference can go while a connection keeps its own. */
static void test_refcount(void **state)
{
    SSL_CTX *sctx = server_ctx(f.p256, CS_POLICY_INTERMEDIATE), *cctx = client_ctx(0, NULL);
    SSL *s, *c;

    (void)state;
    assert_int_equal(SSL_CTX_up_ref(sctx), 1); /* a second holder, e.g. the next config */
    SSL_CTX_free(sctx);
    s = SSL_new(sctx);
    c = SSL_new(cctx);
    SSL_CTX_free(sctx); /* the last config lets go: the SSL still holds it */
    assert_true(handshake(s, c));
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(cctx);
}

/* --- one SSL_CTX per policy, the certificate chosen per handshake --- */

static struct cs_served served_rsa, served_p384;
static int
    served_twice; /* set P-384 first, then the choice, as a HelloRetryRequest after a rotation */

static int served_pick(SSL *ssl, int *al, void *arg)
{
    const char *name = NULL;
    const unsigned char *p;
    size_t len;

    (void)arg;
    /* server_name_list: length(2), type(1), name length(2), name */
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) && len > 5)
        name = (const char *)p + 5;
    if (served_twice && cs_ssl_use_served(ssl, &served_p384) < 0)
        return SSL_CLIENT_HELLO_ERROR;
    if (cs_ssl_use_served(ssl, name != NULL && strncmp(name, "other.test", 10) == 0
                                   ? &served_p384
                                   : &served_rsa) < 0) {
        *al = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

static X509 *served_connect(SSL_CTX *sctx, SSL_CTX *cctx, const char *sni, const char *sid,
                            SSL_SESSION **sess, int *reused)
{
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    X509 *peer;

    assert_non_null(s);
    assert_non_null(c);
    assert_int_equal(SSL_set_session_id_context(s, (const unsigned char *)sid, strlen(sid)), 1);
    if (sni != NULL)
        SSL_set_tlsext_host_name(c, sni);
    if (sess != NULL && *sess != NULL)
        assert_int_equal(SSL_set_session(c, *sess), 1);
    assert_true(handshake(s, c));
    *reused = SSL_session_reused(s);
    peer = SSL_get1_peer_certificate(c);
    if (sess != NULL) {
        SSL_SESSION_free(*sess);
        *sess = SSL_get1_session(c);
    }
    SSL_shutdown(c);
    SSL_shutdown(s);
    SSL_free(s);
    SSL_free(c);
    return peer;
}

/* A policy SSL_CTX without a certificate serves whichever one the
 * ClientHello callback sets, with its chain; keys of different types share
 * it; sessions resume only within the same session id context. */
static void test_served_per_handshake(void **state)
{
    SSL_CTX *sctx = NULL, *cctx = client_ctx(0, NULL), *check = NULL;
    SSL_SESSION *sess = NULL;
    struct err e = {0};
    STACK_OF(X509) * peer_chain;
    X509 *peer;
    int reused;

    (void)state;
    assert_int_equal(cs_server_ctx_new(CS_POLICY_INTERMEDIATE, &sctx, &e), 0);
    assert_int_equal(cs_server_ctx_new(CS_POLICY_COMPAT, &check, &e), 0);
    assert_int_equal(cs_served_load(f.rsa->cert_pem, strlen(f.rsa->cert_pem), f.chain,
                                    strlen(f.chain), f.rsa->key_pem, strlen(f.rsa->key_pem), check,
                                    &served_rsa, &e),
                     0);
    assert_non_null(served_rsa.chain);
    assert_int_equal(cs_served_load(f.p384->cert_pem, strlen(f.p384->cert_pem), NULL, 0,
                                    f.p384->key_pem, strlen(f.p384->key_pem), check, &served_p384,
                                    &e),
                     0);
    assert_null(served_p384.chain);
    SSL_CTX_set_client_hello_cb(sctx, served_pick, NULL);

    peer = served_connect(sctx, cctx, "other.test", "lsn-a", NULL, &reused);
    assert_int_equal(X509_cmp(peer, f.p384->x509), 0);
    X509_free(peer);
    /* No SNI: the default; the chain goes with it. */
    {
        SSL *s = SSL_new(sctx), *c = SSL_new(cctx);

        assert_true(handshake(s, c));
        peer_chain = SSL_get_peer_cert_chain(c);
        assert_int_equal(sk_X509_num(peer_chain), 2);
        assert_int_equal(X509_cmp(sk_X509_value(peer_chain, 0), f.rsa->x509), 0);
        assert_int_equal(X509_cmp(sk_X509_value(peer_chain, 1), f.inter->x509), 0);
        SSL_free(s);
        SSL_free(c);
    }
    /* Set twice on one SSL: only the last one is offered, although the
     * server prefers ECDSA signatures and the first was ECDSA. */
    served_twice = 1;
    for (int i = 0; i < 4; i++) {
        peer = served_connect(sctx, cctx, "leaf.test", "lsn-a", NULL, &reused);
        assert_int_equal(X509_cmp(peer, f.rsa->x509), 0);
        X509_free(peer);
    }
    served_twice = 0;
    /* Sessions: resumed under the same context, not under another one. */
    X509_free(served_connect(sctx, cctx, "leaf.test", "lsn-a", &sess, &reused));
    assert_false(reused);
    X509_free(served_connect(sctx, cctx, "leaf.test", "lsn-a", &sess, &reused));
    assert_true(reused);
    X509_free(served_connect(sctx, cctx, "leaf.test", "lsn-b", &sess, &reused));
    assert_false(reused);

    /* The served objects can go while the SSL_CTX lives on. */
    cs_served_clear(&served_rsa);
    cs_served_clear(&served_p384);
    cs_served_clear(&served_p384); /* twice is fine */
    SSL_SESSION_free(sess);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    SSL_CTX_free(check);
}

static void test_served_load_errors(void **state)
{
    SSL_CTX *check = NULL;
    struct cs_served sv;
    struct err e = {0};
    struct tc_opts o = {.key_type = TC_KEY_P256, .sans = "DNS:weak.test", .digest = "SHA1"};
    struct tc_cert *weak = tc_cert_new(&o, f.ca);
    const char *c = f.p256->cert_pem;
    char *trad = tc_key_pem(f.p256, TC_PEM_TRADITIONAL);

    (void)state;
    assert_non_null(weak);
    assert_non_null(trad);
    assert_int_equal(cs_server_ctx_new(CS_POLICY_COMPAT, &check, &e), 0);
    assert_int_equal(cs_served_load(c, strlen(c), NULL, 0, f.p384->key_pem, strlen(f.p384->key_pem),
                                    check, &sv, &e),
                     -1);
    assert_string_equal(e.code, "certificate_key_mismatch");
    assert_null(sv.leaf);
    assert_null(sv.key);
    err_clear(&e);
    assert_int_equal(cs_served_load(weak->cert_pem, strlen(weak->cert_pem), NULL, 0, weak->key_pem,
                                    strlen(weak->key_pem), check, &sv, &e),
                     -1);
    assert_string_equal(e.code, "certificate_insecure");
    err_clear(&e);
    {
        /* A chain certificate signed with SHA-1: the chain is named. */
        struct tc_opts io = {
            .key_type = TC_KEY_P256, .cn = "Weak Inter", .is_ca = 1, .digest = "SHA1"};
        struct tc_cert *wi = tc_cert_new(&io, f.ca);
        struct tc_cert *leaf = wi ? tc_leaf(wi, TC_KEY_P256, "DNS:ok.test") : NULL;

        assert_non_null(leaf);
        assert_int_equal(cs_served_load(leaf->cert_pem, strlen(leaf->cert_pem), wi->cert_pem,
                                        strlen(wi->cert_pem), leaf->key_pem, strlen(leaf->key_pem),
                                        check, &sv, &e),
                         -1);
        assert_string_equal(e.code, "chain_insecure");
        err_clear(&e);
        tc_cert_free(leaf);
        tc_cert_free(wi);
    }
    assert_int_equal(cs_served_load(c, strlen(c), "junk", 4, f.p256->key_pem,
                                    strlen(f.p256->key_pem), NULL, &sv, &e),
                     -1);
    assert_string_equal(e.code, "chain_not_pem");
    err_clear(&e);
    /* A traditional EC key decodes as well as PKCS#8, twice on one thread
     * (the decoder is cached and reused). */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(cs_served_load(c, strlen(c), NULL, 0, trad, strlen(trad), check, &sv, &e),
                         0);
        cs_served_clear(&sv);
    }
    free(trad);
    tc_cert_free(weak);
    SSL_CTX_free(check);
}

/* Client to 'leaf' served with the intermediate; 'host' checked when set. */
static int client_connect(SSL_CTX *cctx, const struct tc_cert *leaf, const char *host)
{
    SSL_CTX *sctx = server_ctx(leaf, CS_POLICY_INTERMEDIATE);
    SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
    int ok;

    assert_int_equal(cs_ssl_set_peer_name(c, host, NULL), 0);
    ok = handshake(s, c);
    if (ok && SSL_CTX_get_verify_mode(cctx) != SSL_VERIFY_NONE)
        assert_int_equal(SSL_get_verify_result(c), X509_V_OK);
    if (ok) {
        const char *sni = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);

        if (host == NULL || strchr(host, '.') == NULL || (host[0] >= '0' && host[0] <= '9'))
            assert_null(sni); /* none sent for an address */
        else
            assert_string_equal(sni, host);
    }
    SSL_free(s);
    SSL_free(c);
    SSL_CTX_free(sctx);
    ERR_clear_error();
    return ok;
}

static void test_client_ctx(void **state)
{
    SSL_CTX *ctx = NULL;
    struct err e = {0};

    (void)state;
    assert_int_equal(cs_client_ctx_build(1, f.ca->cert_pem, strlen(f.ca->cert_pem), &ctx, &e), 0);
    assert_true(client_connect(ctx, f.p256, "leaf.test"));
    assert_true(client_connect(ctx, f.rsa, "leaf.test"));
    assert_false(client_connect(ctx, f.p256, "wrong.test"));
    assert_false(client_connect(ctx, f.p256, "test"));
    /* An address matches an IP SAN (f.rsa has 127.0.0.1), never a DNS one. */
    assert_true(client_connect(ctx, f.rsa, "127.0.0.1"));
    assert_false(client_connect(ctx, f.rsa, "127.0.0.2"));
    assert_false(client_connect(ctx, f.p256, "127.0.0.1"));
    SSL_CTX_free(ctx);

    /* The intermediate alone is enough as the trust anchor. */
    assert_int_equal(cs_client_ctx_build(1, f.inter->cert_pem, strlen(f.inter->cert_pem), &ctx, &e),
                     0);
    assert_true(client_connect(ctx, f.p256, "leaf.test"));
    SSL_CTX_free(ctx);

    assert_int_equal(
        cs_client_ctx_build(1, f.other_ca->cert_pem, strlen(f.other_ca->cert_pem), &ctx, &e), 0);
    assert_false(client_connect(ctx, f.p256, "leaf.test"));
    SSL_CTX_free(ctx);

    assert_int_equal(cs_client_ctx_build(0, NULL, 0, &ctx, &e), 0);
    assert_true(client_connect(ctx, f.p256, NULL));
    SSL_CTX_free(ctx);

    /* The system store: our private CA is not in it. */
    assert_int_equal(cs_client_ctx_build(1, NULL, 0, &ctx, &e), 0);
    assert_false(client_connect(ctx, f.p256, "leaf.test"));
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    SSL_CTX_free(ctx);

    /* A name longer than SNI allows. */
    {
        char longname[300];
        SSL *c;

        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        assert_int_equal(cs_client_ctx_build(1, f.ca->cert_pem, strlen(f.ca->cert_pem), &ctx, &e),
                         0);
        c = SSL_new(ctx);
        assert_int_equal(cs_ssl_set_peer_name(c, longname, &e), -1);
        assert_string_equal(e.code, "server_name_invalid");
        assert_int_equal(e.kind, ERR_INVALID);
        assert_int_equal(cs_ssl_set_peer_name(c, "", NULL), 0);
        SSL_free(c);
        SSL_CTX_free(ctx);
        err_clear(&e);
    }

    assert_int_equal(cs_client_ctx_build(1, "junk", 4, &ctx, &e), -1);
    assert_null(ctx);
    assert_string_equal(e.code, "chain_not_pem");
    assert_string_equal(e.field, "ca_certificate");
}

static void test_policy_names(void **state)
{
    enum cs_policy p;

    (void)state;
    assert_int_equal(cs_policy_parse("modern", &p), 0);
    assert_int_equal(p, CS_POLICY_MODERN);
    assert_int_equal(cs_policy_parse("intermediate", &p), 0);
    assert_int_equal(p, CS_POLICY_INTERMEDIATE);
    assert_int_equal(cs_policy_parse("compat", &p), 0);
    assert_int_equal(p, CS_POLICY_COMPAT);
    assert_int_equal(cs_policy_parse("Modern", &p), -1);
    assert_string_equal(cs_policy_name(CS_POLICY_COMPAT), "compat");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_versions),
        cmocka_unit_test(test_policy_ciphers),
        cmocka_unit_test(test_resumption),
        cmocka_unit_test(test_alpn),
        cmocka_unit_test(test_alpn_after_sni_switch),
        cmocka_unit_test(test_alpn_encode_errors),
        cmocka_unit_test(test_ctx_build_errors),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_served_per_handshake),
        cmocka_unit_test(test_served_load_errors),
        cmocka_unit_test(test_client_ctx),
        cmocka_unit_test(test_policy_names),
    };

    int rc = cmocka_run_group_tests(tests, setup, teardown);

    cs_thread_cleanup();
    return rc;
}
