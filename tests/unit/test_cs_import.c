/* test_cs_import.c - certificate import: every validation error code, the
 * metadata of each key type, accepted PEM variants. Certificates are made
 * in memory at test time (testcerts.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cs.h"
#include "err.h"
#include "testcerts.h"

/* Shared across tests: key generation is the slow part. */
static struct {
    struct tc_cert *ca, *inter, *other_ca;
    struct tc_cert *rsa, *p256, *p384, *ed, *rsa3072;
    struct tc_cert *rsa1024, *k1, *p521, *expired, *future;
    char *chain; /* inter + ca */
} f;

static int setup(void **state)
{
    struct tc_opts o = {.cn = "leaf.test"};
    const char *sans = "DNS:leaf.test,DNS:*.wild.test,IP:127.0.0.1,IP:::1";

    (void)state;
    f.ca = tc_ca("Test Root");
    f.inter = tc_intermediate(f.ca, "Test Intermediate");
    f.other_ca = tc_ca("Other Root");
    if (f.ca == NULL || f.inter == NULL || f.other_ca == NULL)
        return -1;
    f.rsa = tc_leaf(f.inter, TC_KEY_RSA, sans);
    f.p256 = tc_leaf(f.inter, TC_KEY_P256, "DNS:p256.test");
    f.p384 = tc_leaf(f.inter, TC_KEY_P384, "DNS:p384.test");
    f.ed = tc_leaf(f.inter, TC_KEY_ED25519, "DNS:ed.test");
    o.key_type = TC_KEY_RSA;
    o.rsa_bits = 3072;
    f.rsa3072 = tc_cert_new(&o, f.inter);
    o.rsa_bits = 1024;
    f.rsa1024 = tc_cert_new(&o, f.inter);
    f.k1 = tc_leaf(f.inter, TC_KEY_SECP256K1, "DNS:k1.test");
    f.p521 = tc_leaf(f.inter, TC_KEY_P521, "DNS:p521.test");
    o = (struct tc_opts){.key = f.p256->key,
                         .cn = "expired.test",
                         .not_before_s = -10 * 86400,
                         .not_after_s = -86400};
    f.expired = tc_cert_new(&o, f.inter);
    o = (struct tc_opts){
        .key = f.p256->key, .cn = "future.test", .not_before_s = 86400, .not_after_s = 10 * 86400};
    f.future = tc_cert_new(&o, f.inter);
    f.chain = tc_concat(f.inter->cert_pem, f.ca->cert_pem, NULL);
    if (!f.rsa || !f.p256 || !f.p384 || !f.ed || !f.rsa3072 || !f.rsa1024 || !f.k1 || !f.p521 ||
        !f.expired || !f.future || !f.chain)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tc_cert_free(f.ca);
    tc_cert_free(f.inter);
    tc_cert_free(f.other_ca);
    tc_cert_free(f.rsa);
    tc_cert_free(f.p256);
    tc_cert_free(f.p384);
    tc_cert_free(f.ed);
    tc_cert_free(f.rsa3072);
    tc_cert_free(f.rsa1024);
    tc_cert_free(f.k1);
    tc_cert_free(f.p521);
    tc_cert_free(f.expired);
    tc_cert_free(f.future);
    free(f.chain);
    return 0;
}

/* A piece of a key's base64 body, to prove messages never echo key bytes. */
static void assert_no_key_bytes(const char *msg, const char *key_pem)
{
    const char *body = strchr(key_pem, '\n');
    const char *eol = body != NULL ? strchr(body + 1, '\n') : NULL;
    char piece[17];

    if (eol == NULL || eol - body < 40)
        return;
    memcpy(piece, body + 1 + 20, 16);
    piece[16] = '\0';
    if (strstr(msg, piece) != NULL)
        fail_msg("message echoes key bytes: %s", msg);
}

/* Import NUL-terminated strings (NULL allowed) and return the error code,
 * or NULL on success (then 'meta' is filled and must be freed). */
static const char *imp(const char *cert, const char *key, const char *chain, struct cs_meta *meta,
                       struct err *e)
{
    struct cs_meta tmp;
    int rc;

    err_clear(e);
    rc = cs_import(cert, cert ? strlen(cert) : 0, key, key ? strlen(key) : 0, chain,
                   chain ? strlen(chain) : 0, time(NULL), meta != NULL ? meta : &tmp, e);
    /* Nothing left on the thread's OpenSSL error queue for a later
     * SSL_get_error() to trip on. */
    assert_int_equal(ERR_peek_error(), 0);
    if (rc == 0) {
        assert_false(err_isset(e));
        if (meta == NULL)
            cs_meta_free(&tmp);
        return NULL;
    }
    assert_int_equal(rc, -1);
    assert_true(err_isset(e));
    assert_non_null(e->code);
    assert_true(e->message[0] != '\0');
    if (key != NULL)
        assert_no_key_bytes(e->message, key);
    return e->code;
}

/* Expect 'code', of 'kind', blamed on 'field'. */
static void expect(const char *cert, const char *key, const char *chain, const char *code,
                   enum err_kind kind, const char *field)
{
    struct err e;
    const char *got = imp(cert, key, chain, NULL, &e);

    if (got == NULL)
        fail_msg("expected %s, import succeeded", code);
    if (strcmp(got, code) != 0)
        fail_msg("expected %s, got %s: %s", code, got, e.message);
    assert_int_equal(e.kind, kind);
    assert_non_null(e.field);
    assert_string_equal(e.field, field);
}

static void test_meta_rsa(void **state)
{
    struct cs_meta m;
    struct err e;
    unsigned char md[32];
    unsigned int n = 0;
    char hex[65];

    (void)state;
    assert_null(imp(f.rsa->cert_pem, f.rsa->key_pem, f.chain, &m, &e));
    assert_string_equal(m.subject, "CN=leaf.test");
    assert_string_equal(m.issuer, "CN=Test Intermediate");
    assert_true(strlen(m.serial) > 0 && strspn(m.serial, "0123456789ABCDEF") == strlen(m.serial));
    assert_int_equal(m.n_dns_names, 2);
    assert_string_equal(m.dns_names[0], "leaf.test");
    assert_string_equal(m.dns_names[1], "*.wild.test");
    assert_int_equal(m.n_ip_addresses, 2);
    assert_string_equal(m.ip_addresses[0], "127.0.0.1");
    assert_string_equal(m.ip_addresses[1], "::1");
    assert_string_equal(m.key_algorithm, "RSA");
    assert_int_equal(m.key_bits, 2048);
    assert_string_equal(m.curve, "");
    assert_int_equal(m.is_ca, 0);
    assert_int_equal(m.has_key, 1);
    assert_int_equal(m.chain_length, 2);
    assert_int_equal(m.status, CS_STATUS_ISSUED);
    /* 30 days ahead, give or take the second the test runs in. */
    assert_true(m.days_to_expiry == 29 || m.days_to_expiry == 30);
    assert_true(m.not_after - m.not_before >= 30L * 86400 + 3600 &&
                m.not_after - m.not_before <= 30L * 86400 + 3601);
    X509_digest(f.rsa->x509, EVP_sha256(), md, &n);
    for (unsigned int i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(m.fingerprint_sha256, hex);
    cs_meta_free(&m);
    cs_meta_free(&m); /* idempotent */
}

static void check_key(struct tc_cert *c, const char *alg, int bits, const char *curve)
{
    struct cs_meta m;
    struct err e;

    if (imp(c->cert_pem, c->key_pem, f.chain, &m, &e) != NULL)
        fail_msg("%s: %s", e.code, e.message);
    assert_string_equal(m.key_algorithm, alg);
    assert_int_equal(m.key_bits, bits);
    assert_string_equal(m.curve, curve);
    assert_int_equal(m.status, CS_STATUS_ISSUED);
    cs_meta_free(&m);
}

static void test_meta_key_types(void **state)
{
    (void)state;
    check_key(f.p256, "ECDSA", 256, "P-256");
    check_key(f.p384, "ECDSA", 384, "P-384");
    check_key(f.ed, "Ed25519", 253, "");
    check_key(f.rsa3072, "RSA", 3072, "");
}

/* Each accepted private key encoding, and PEM layout variations. */
static void test_pem_variants(void **state)
{
    struct err e;
    char *k, *s, *crlf;
    size_t n, j = 0;

    (void)state;
    k = tc_key_pem(f.rsa, TC_PEM_TRADITIONAL);
    assert_non_null(strstr(k, "BEGIN RSA PRIVATE KEY"));
    assert_null(imp(f.rsa->cert_pem, k, NULL, NULL, &e));
    free(k);
    k = tc_key_pem(f.p256, TC_PEM_TRADITIONAL);
    assert_non_null(strstr(k, "BEGIN EC PRIVATE KEY"));
    assert_null(imp(f.p256->cert_pem, k, NULL, NULL, &e));
    /* `openssl ecparam -genkey` writes EC PARAMETERS before the key. */
    s = tc_concat("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n",
                  k, NULL);
    assert_null(imp(f.p256->cert_pem, s, NULL, NULL, &e));
    free(s);
    free(k);
    /* Explanatory text before a block (RFC 7468), whitespace after it. */
    s = tc_concat("Bag Attributes\n    friendlyName: leaf\nsubject=CN = leaf.test\n",
                  f.p256->cert_pem, "\n\n  \t\n", NULL);
    k = tc_concat("Key Attributes: <No Attributes>\n", f.p256->key_pem, "\r\n", NULL);
    assert_null(imp(s, k, f.chain, NULL, &e));
    free(s);
    free(k);
    /* CRLF line endings throughout. */
    n = strlen(f.p256->cert_pem);
    crlf = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        if (f.p256->cert_pem[i] == '\n')
            crlf[j++] = '\r';
        crlf[j++] = f.p256->cert_pem[i];
    }
    crlf[j] = '\0';
    assert_null(imp(crlf, f.p256->key_pem, NULL, NULL, &e));
    free(crlf);
    /* Input without a final newline, and not NUL-terminated. */
    s = strdup(f.p256->cert_pem);
    s[strlen(s) - 1] = 'X';
    err_clear(&e);
    {
        struct cs_meta m;

        assert_int_equal(cs_import(s, strlen(s) - 1, f.p256->key_pem, strlen(f.p256->key_pem), NULL,
                                   0, time(NULL), &m, &e),
                         0);
        cs_meta_free(&m);
    }
    free(s);
}

/* A buffer of 'n' bytes holding 'pem' padded with spaces (valid trailing
 * whitespace), NUL-terminated. */
static char *padded(const char *pem, size_t n)
{
    char *b = malloc(n + 1);

    memset(b, ' ', n);
    memcpy(b, pem, strlen(pem));
    b[n] = '\0';
    return b;
}

/* 'pem' with its first base64 line's byte at 'off' replaced by 'c'. */
static char *mangle_body(const char *pem, size_t off, char c)
{
    char *s = strdup(pem);

    s[strchr(s, '\n') - s + 1 + off] = c;
    return s;
}

static void test_size_errors(void **state)
{
    struct err e;
    char *b;

    (void)state;
    b = padded(f.p256->cert_pem, CS_MAX_FIELD + 1);
    expect(b, f.p256->key_pem, NULL, "certificate_too_large", ERR_TOO_LARGE, "certificate");
    b[CS_MAX_FIELD] = '\0'; /* exactly the limit is fine */
    assert_null(imp(b, f.p256->key_pem, NULL, NULL, &e));
    free(b);
    b = padded(f.p256->key_pem, CS_MAX_FIELD + 1);
    expect(f.p256->cert_pem, b, NULL, "private_key_too_large", ERR_TOO_LARGE, "private_key");
    free(b);
    b = padded(f.chain, CS_MAX_FIELD + 1);
    expect(f.p256->cert_pem, f.p256->key_pem, b, "chain_too_large", ERR_TOO_LARGE,
           "certificate_chain");
    free(b);
}

static void test_certificate_errors(void **state)
{
    const char *c = f.p256->cert_pem, *k = f.p256->key_pem;
    char *s;

    (void)state;
    expect(NULL, k, NULL, "certificate_missing", ERR_INVALID, "certificate");
    expect("", k, NULL, "certificate_missing", ERR_INVALID, "certificate");
    expect(" \r\n\t", k, NULL, "certificate_missing", ERR_INVALID, "certificate");

    expect("hello world", k, NULL, "certificate_not_pem", ERR_INVALID, "certificate");
    expect("-----BEGIN CERTIFICATE-----\nMIIB\n", k, NULL, "certificate_not_pem", ERR_INVALID,
           "certificate");
    expect("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", k, NULL,
           "certificate_not_pem", ERR_INVALID, "certificate");
    expect("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", k, NULL,
           "certificate_not_pem", ERR_INVALID, "certificate");
    /* Valid base64, not a certificate. */
    expect("-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n", k, NULL,
           "certificate_not_pem", ERR_INVALID, "certificate");
    expect("-----BEGIN PUBLIC KEY-----\naGVsbG8gd29ybGQ=\n-----END PUBLIC KEY-----\n", k, NULL,
           "certificate_not_pem", ERR_INVALID, "certificate");
    s = mangle_body(c, 5, '*');
    expect(s, k, NULL, "certificate_not_pem", ERR_INVALID, "certificate");
    free(s);
    /* A BEGIN without its END that runs into another block. */
    s = tc_concat("-----BEGIN CERTIFICATE-----\nMIIB\n", c, NULL);
    expect(s, k, NULL, "certificate_not_pem", ERR_INVALID, "certificate");
    free(s);

    s = tc_concat(c, f.inter->cert_pem, NULL); /* a fullchain.pem */
    expect(s, k, NULL, "certificate_multiple", ERR_INVALID, "certificate");
    free(s);

    s = tc_concat(c, "garbage\n", NULL);
    expect(s, k, NULL, "certificate_trailing_data", ERR_INVALID, "certificate");
    free(s);
    s = tc_concat(c, "-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n", NULL);
    expect(s, k, NULL, "certificate_trailing_data", ERR_INVALID, "certificate");
    free(s);
    s = tc_concat(c, "-----BEGIN CERTIFICATE-----\nMIIB\n", NULL); /* unterminated 2nd */
    expect(s, k, NULL, "certificate_trailing_data", ERR_INVALID, "certificate");
    free(s);

    expect(k, k, NULL, "certificate_contains_private_key", ERR_INVALID, "certificate");
    s = tc_concat(c, k, NULL);
    expect(s, k, NULL, "certificate_contains_private_key", ERR_INVALID, "certificate");
    free(s);
}

/* An EC key whose public half is the certificate's but whose private
 * scalar is another key's: it "matches" but cannot sign for the cert. */
static char *corrupt_ec_key_pem(void)
{
    unsigned char pub[200];
    size_t pub_len = 0;
    BIGNUM *priv = NULL;
    EVP_PKEY *other = tc_key_new(TC_KEY_P256, 0), *bad = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    struct tc_cert tmp = {0};
    char *pem;

    assert_int_equal(EVP_PKEY_get_octet_string_param(f.p256->key, OSSL_PKEY_PARAM_PUB_KEY, pub,
                                                     sizeof(pub), &pub_len),
                     1);
    assert_int_equal(EVP_PKEY_get_bn_param(other, OSSL_PKEY_PARAM_PRIV_KEY, &priv), 1);
    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0);
    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, pub_len);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv);
    params = OSSL_PARAM_BLD_to_param(bld);
    assert_int_equal(EVP_PKEY_fromdata_init(pctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(pctx, &bad, EVP_PKEY_KEYPAIR, params), 1);
    tmp.key = bad;
    pem = tc_key_pem(&tmp, TC_PEM_PKCS8);
    assert_non_null(pem);
    EVP_PKEY_free(bad);
    EVP_PKEY_free(other);
    BN_free(priv);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(pctx);
    return pem;
}

static void test_private_key_errors(void **state)
{
    const char *c = f.p256->cert_pem, *k = f.p256->key_pem;
    char *s;

    (void)state;
    expect(c, NULL, NULL, "private_key_missing", ERR_INVALID, "private_key");
    expect(c, "  \n", NULL, "private_key_missing", ERR_INVALID, "private_key");

    expect(c, "not a key", NULL, "private_key_not_pem", ERR_INVALID, "private_key");
    expect(c, c, NULL, "private_key_not_pem", ERR_INVALID, "private_key");
    expect(c, "-----BEGIN OPENSSH PRIVATE KEY-----\naGVsbG8=\n-----END OPENSSH PRIVATE KEY-----\n",
           NULL, "private_key_not_pem", ERR_INVALID, "private_key");
    expect(c, "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n", NULL,
           "private_key_not_pem", ERR_INVALID, "private_key");
    expect(c, "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n", NULL, "private_key_not_pem",
           ERR_INVALID, "private_key");
    s = mangle_body(k, 3, '#');
    expect(c, s, NULL, "private_key_not_pem", ERR_INVALID, "private_key");
    free(s);

    s = tc_concat(k, k, NULL);
    expect(c, s, NULL, "private_key_multiple", ERR_INVALID, "private_key");
    free(s);

    s = tc_concat(k, "trailing\n", NULL);
    expect(c, s, NULL, "private_key_trailing_data", ERR_INVALID, "private_key");
    free(s);

    {
        struct err e;

        s = tc_key_pem(f.p256, TC_PEM_PKCS8_ENCRYPTED);
        assert_non_null(strstr(s, "BEGIN ENCRYPTED PRIVATE KEY"));
        expect(c, s, NULL, "private_key_encrypted", ERR_UNPROCESSABLE, "private_key");
        imp(c, s, NULL, NULL, &e);
        assert_non_null(strstr(e.message, "openssl pkey -in"));
        free(s);
        s = tc_key_pem(f.p256, TC_PEM_TRADITIONAL_ENCRYPTED);
        assert_non_null(strstr(s, "Proc-Type: 4,ENCRYPTED"));
        expect(c, s, NULL, "private_key_encrypted", ERR_UNPROCESSABLE, "private_key");
        imp(c, s, NULL, NULL, &e);
        assert_non_null(strstr(e.message, "openssl pkey -in"));
        free(s);
    }

    s = corrupt_ec_key_pem();
    expect(c, s, NULL, "private_key_invalid", ERR_UNPROCESSABLE, "private_key");
    free(s);
}

static void test_key_policy_errors(void **state)
{
    (void)state;
    expect(f.rsa1024->cert_pem, f.rsa1024->key_pem, f.chain, "key_too_weak", ERR_UNPROCESSABLE,
           "private_key");
    expect(f.k1->cert_pem, f.k1->key_pem, f.chain, "key_unsupported", ERR_UNPROCESSABLE,
           "private_key");
    expect(f.p521->cert_pem, f.p521->key_pem, f.chain, "key_unsupported", ERR_UNPROCESSABLE,
           "private_key");
    expect(f.p256->cert_pem,
           "-----BEGIN DSA PRIVATE KEY-----\naGVsbG8=\n-----END DSA PRIVATE KEY-----\n", NULL,
           "key_unsupported", ERR_UNPROCESSABLE, "private_key");

    expect(f.p256->cert_pem, f.p384->key_pem, f.chain, "certificate_key_mismatch",
           ERR_UNPROCESSABLE, "private_key");
    expect(f.rsa->cert_pem, f.rsa3072->key_pem, f.chain, "certificate_key_mismatch",
           ERR_UNPROCESSABLE, "private_key");
    expect(f.ed->cert_pem, f.rsa->key_pem, f.chain, "certificate_key_mismatch", ERR_UNPROCESSABLE,
           "private_key");
}

static void test_validity(void **state)
{
    struct cs_meta m;
    struct err e;

    (void)state;
    expect(f.expired->cert_pem, f.expired->key_pem, f.chain, "certificate_expired",
           ERR_UNPROCESSABLE, "certificate");
    assert_null(imp(f.future->cert_pem, f.future->key_pem, f.chain, &m, &e));
    assert_int_equal(m.status, CS_STATUS_NOT_YET_VALID);
    assert_true(m.not_before > time(NULL));
    cs_meta_free(&m);
    /* 'now' is the caller's: the expired one was valid five days ago. */
    err_clear(&e);
    assert_int_equal(cs_import(f.expired->cert_pem, strlen(f.expired->cert_pem), f.expired->key_pem,
                               strlen(f.expired->key_pem), NULL, 0, time(NULL) - 5 * 86400, &m, &e),
                     0);
    assert_int_equal(m.status, CS_STATUS_ISSUED);
    /* Four days, less the seconds since the certificate was made. */
    assert_true(m.days_to_expiry == 3 || m.days_to_expiry == 4);
    cs_meta_free(&m);
}

static void test_chain_errors(void **state)
{
    const char *c = f.p256->cert_pem, *k = f.p256->key_pem;
    char *s;

    (void)state;
    expect(c, k, "garbage", "chain_not_pem", ERR_INVALID, "certificate_chain");
    expect(c, k, "-----BEGIN PUBLIC KEY-----\naGVsbG8=\n-----END PUBLIC KEY-----\n",
           "chain_not_pem", ERR_INVALID, "certificate_chain");
    expect(c, k, "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
           "chain_not_pem", ERR_INVALID, "certificate_chain");
    s = tc_concat(f.chain, "-----BEGIN CERTIFICATE-----\nMIIB\n", NULL);
    expect(c, k, s, "chain_not_pem", ERR_INVALID, "certificate_chain");
    free(s);

    s = tc_concat(f.chain, "trailing", NULL);
    expect(c, k, s, "chain_trailing_data", ERR_INVALID, "certificate_chain");
    free(s);

    s = tc_concat(f.inter->cert_pem, f.inter->cert_pem, f.inter->cert_pem, f.inter->cert_pem,
                  f.inter->cert_pem, f.inter->cert_pem, f.inter->cert_pem, f.inter->cert_pem,
                  f.ca->cert_pem, NULL);
    expect(c, k, s, "chain_too_long", ERR_TOO_LARGE, "certificate_chain");
    free(s);

    s = tc_concat(f.inter->cert_pem, f.inter->key_pem, NULL);
    expect(c, k, s, "chain_contains_private_key", ERR_INVALID, "certificate_chain");
    free(s);

    s = tc_concat(c, f.inter->cert_pem, NULL);
    expect(c, k, s, "chain_contains_leaf", ERR_UNPROCESSABLE, "certificate_chain");
    free(s);

    /* Out of order, missing the intermediate, from another CA. */
    s = tc_concat(f.ca->cert_pem, f.inter->cert_pem, NULL);
    expect(c, k, s, "chain_broken", ERR_UNPROCESSABLE, "certificate_chain");
    free(s);
    expect(c, k, f.ca->cert_pem, "chain_broken", ERR_UNPROCESSABLE, "certificate_chain");
    s = tc_concat(f.inter->cert_pem, f.other_ca->cert_pem, NULL);
    expect(c, k, s, "chain_broken", ERR_UNPROCESSABLE, "certificate_chain");
    free(s);
}

/* Same subject and key identifier as the intermediate, but another key:
 * X509_check_issued() passes on names, the signature check must refuse. */
static void test_chain_forged_issuer(void **state)
{
    struct tc_opts o = {.key_type = TC_KEY_P256, .cn = "Test Intermediate", .is_ca = 1};
    struct tc_cert *fake = tc_cert_new(&o, f.ca);
    struct err e;
    char *s;

    (void)state;
    assert_non_null(fake);
    s = tc_concat(fake->cert_pem, f.ca->cert_pem, NULL);
    assert_string_equal(imp(f.p256->cert_pem, f.p256->key_pem, s, NULL, &e), "chain_broken");
    free(s);
    tc_cert_free(fake);
}

/* What the TLS library's security level would refuse at SSL_CTX time is
 * refused at import: a SHA-1 signature on the leaf or in the chain. */
static void test_insecure(void **state)
{
    struct tc_opts o = {.key = f.p256->key, .cn = "sha1.test", .digest = "SHA1"};
    struct tc_opts io = {
        .key_type = TC_KEY_P256, .cn = "SHA1 Intermediate", .is_ca = 1, .digest = "SHA1"};
    struct tc_cert *sha1_leaf = tc_cert_new(&o, f.inter);
    struct tc_cert *sha1_inter = tc_cert_new(&io, f.ca), *leaf2;
    struct err e;
    char *s;

    (void)state;
    assert_non_null(sha1_leaf);
    assert_non_null(sha1_inter);
    expect(sha1_leaf->cert_pem, f.p256->key_pem, f.chain, "certificate_insecure", ERR_UNPROCESSABLE,
           "certificate");
    imp(sha1_leaf->cert_pem, f.p256->key_pem, f.chain, NULL, &e);
    assert_non_null(strstr(e.message, "SHA-256"));
    leaf2 = tc_leaf(sha1_inter, TC_KEY_P256, "DNS:x.test");
    assert_non_null(leaf2);
    s = tc_concat(sha1_inter->cert_pem, f.ca->cert_pem, NULL);
    expect(leaf2->cert_pem, leaf2->key_pem, s, "chain_insecure", ERR_UNPROCESSABLE,
           "certificate_chain");
    free(s);
    tc_cert_free(leaf2);
    tc_cert_free(sha1_leaf);
    tc_cert_free(sha1_inter);
}

/* A certificate whose public key algorithm OpenSSL does not know: the
 * id-ecPublicKey OID (1.2.840.10045.2.1) bent to 1.2.840.10045.2.9. */
static void test_unknown_key_algorithm(void **state)
{
    static const unsigned char oid[] = {0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
    unsigned char *der = NULL, *hit;
    int n = i2d_X509(f.ca->x509, &der);
    BIO *bio = BIO_new(BIO_s_mem());
    char *pem, *data;
    long len;

    (void)state;
    assert_true(n > 0);
    hit = memmem(der, (size_t)n, oid, sizeof(oid));
    assert_non_null(hit);
    hit[sizeof(oid) - 1] = 0x09;
    assert_true(PEM_write_bio(bio, "CERTIFICATE", "", der, n) > 0);
    len = BIO_get_mem_data(bio, &data);
    /* BIO memory is not NUL-terminated: copy exactly, then terminate. */
    pem = malloc((size_t)len + 1);
    assert_non_null(pem);
    memcpy(pem, data, (size_t)len);
    pem[len] = '\0';
    /* As a trust anchor the certificate's own key is judged... */
    expect(pem, NULL, NULL, "key_unsupported", ERR_UNPROCESSABLE, "certificate");
    /* ...with a key, that key cannot match it. */
    expect(pem, f.ca->key_pem, NULL, "certificate_key_mismatch", ERR_UNPROCESSABLE, "private_key");
    free(pem);
    BIO_free(bio);
    OPENSSL_free(der);
}

static void test_trust_anchor(void **state)
{
    struct cs_meta m;
    struct err e;

    (void)state;
    assert_null(imp(f.ca->cert_pem, NULL, NULL, &m, &e));
    assert_int_equal(m.is_ca, 1);
    assert_int_equal(m.has_key, 0);
    assert_string_equal(m.key_algorithm, "ECDSA");
    assert_int_equal(m.chain_length, 0);
    cs_meta_free(&m);
    /* An intermediate with its chain up to the root. */
    assert_null(imp(f.inter->cert_pem, "", f.ca->cert_pem, &m, &e));
    assert_int_equal(m.is_ca, 1);
    assert_int_equal(m.chain_length, 1);
    cs_meta_free(&m);
    /* A CA with its key is a normal import too. */
    assert_null(imp(f.ca->cert_pem, f.ca->key_pem, NULL, NULL, &e));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_rsa),           cmocka_unit_test(test_meta_key_types),
        cmocka_unit_test(test_pem_variants),       cmocka_unit_test(test_size_errors),
        cmocka_unit_test(test_certificate_errors), cmocka_unit_test(test_private_key_errors),
        cmocka_unit_test(test_key_policy_errors),  cmocka_unit_test(test_validity),
        cmocka_unit_test(test_chain_errors),       cmocka_unit_test(test_chain_forged_issuer),
        cmocka_unit_test(test_insecure),           cmocka_unit_test(test_unknown_key_algorithm),
        cmocka_unit_test(test_trust_anchor),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
