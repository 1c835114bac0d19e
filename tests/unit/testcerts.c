/* testcerts.c - in-memory test certificates (see testcerts.h). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "testcerts.h"

EVP_PKEY *tc_key_new(enum tc_key_type type, int rsa_bits)
{
    switch (type) {
    case TC_KEY_RSA:
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)(rsa_bits > 0 ? rsa_bits : 2048));
    case TC_KEY_P256:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    case TC_KEY_P384:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    case TC_KEY_P521:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
    case TC_KEY_SECP256K1:
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
    case TC_KEY_ED25519:
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    }
    return NULL;
}

static char *bio_str(BIO *bio)
{
    char *data, *s;
    long n = BIO_get_mem_data(bio, &data);

    if (n < 0)
        return NULL;
    s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, data, (size_t)n);
    s[n] = '\0';
    return s;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok;

    if (ext == NULL)
        return 0;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

struct tc_cert *tc_cert_new(const struct tc_opts *o, const struct tc_cert *issuer)
{
    struct tc_cert *c = calloc(1, sizeof(*c));
    EVP_PKEY *sign_key;
    X509V3_CTX v3;
    BIO *bio = NULL;
    unsigned char serial[8];
    BIGNUM *bn = NULL;
    long nb = o->not_before_s, na = o->not_after_s;
    const EVP_MD *md;
    int ok = 0;

    if (c == NULL)
        return NULL;
    if (o->key != NULL) {
        if (EVP_PKEY_up_ref(o->key) != 1)
            goto out;
        c->key = o->key;
    } else {
        c->key = tc_key_new(o->key_type, o->rsa_bits);
    }
    c->x509 = X509_new();
    if (c->key == NULL || c->x509 == NULL)
        goto out;
    if (nb == 0 && na == 0) {
        nb = -3600;
        na = 30L * 86400;
    }
    if (RAND_bytes(serial, sizeof(serial)) != 1)
        goto out;
    serial[0] &= 0x7f; /* positive */
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c->x509)) == NULL)
        goto out;
    if (X509_set_version(c->x509, 2) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(c->x509), nb) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(c->x509), na) == NULL ||
        X509_set_pubkey(c->x509, c->key) != 1 ||
        X509_NAME_add_entry_by_txt(X509_get_subject_name(c->x509), "CN", MBSTRING_UTF8,
                                   (const unsigned char *)(o->cn != NULL ? o->cn : "tc"), -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(c->x509,
                             X509_get_subject_name(issuer != NULL ? issuer->x509 : c->x509)) != 1)
        goto out;
    X509V3_set_ctx(&v3, issuer != NULL ? issuer->x509 : c->x509, c->x509, NULL, NULL, 0);
    if (!add_ext(c->x509, &v3, NID_basic_constraints,
                 o->is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
        !add_ext(c->x509, &v3, NID_key_usage,
                 o->is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") ||
        !add_ext(c->x509, &v3, NID_subject_key_identifier, "hash") ||
        (issuer != NULL && !add_ext(c->x509, &v3, NID_authority_key_identifier, "keyid")) ||
        (o->sans != NULL && !add_ext(c->x509, &v3, NID_subject_alt_name, o->sans)))
        goto out;
    sign_key = issuer != NULL ? issuer->key : c->key;
    md = EVP_sha256();
    if (o->digest != NULL && (md = EVP_get_digestbyname(o->digest)) == NULL)
        goto out;
    if (EVP_PKEY_get_base_id(sign_key) == EVP_PKEY_ED25519)
        md = NULL;
    if (X509_sign(c->x509, sign_key, md) <= 0)
        goto out;
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_X509(bio, c->x509) != 1 ||
        (c->cert_pem = bio_str(bio)) == NULL)
        goto out;
    c->key_pem = tc_key_pem(c, TC_PEM_PKCS8);
    ok = c->key_pem != NULL;
out:
    BN_free(bn);
    BIO_free(bio);
    if (!ok) {
        tc_cert_free(c);
        c = NULL;
    }
    return c;
}

struct tc_cert *tc_ca(const char *cn)
{
    struct tc_opts o = {.key_type = TC_KEY_P256,
                        .cn = cn,
                        .is_ca = 1,
                        .not_before_s = -86400,
                        .not_after_s = 3650L * 86400};

    return tc_cert_new(&o, NULL);
}

struct tc_cert *tc_intermediate(const struct tc_cert *issuer, const char *cn)
{
    struct tc_opts o = {.key_type = TC_KEY_P256,
                        .cn = cn,
                        .is_ca = 1,
                        .not_before_s = -86400,
                        .not_after_s = 365L * 86400};

    return tc_cert_new(&o, issuer);
}

struct tc_cert *tc_leaf(const struct tc_cert *issuer, enum tc_key_type type, const char *sans)
{
    struct tc_opts o = {.key_type = type, .cn = "leaf.test", .sans = sans};

    return tc_cert_new(&o, issuer);
}

void tc_cert_free(struct tc_cert *c)
{
    if (c == NULL)
        return;
    X509_free(c->x509);
    EVP_PKEY_free(c->key);
    free(c->cert_pem);
    if (c->key_pem != NULL)
        OPENSSL_cleanse(c->key_pem, strlen(c->key_pem));
    free(c->key_pem);
    free(c);
}

char *tc_key_pem(const struct tc_cert *c, enum tc_pem_format f)
{
    static const char pass[] = "test";
    BIO *bio = BIO_new(BIO_s_mem());
    char *s = NULL;
    int ok = 0;

    if (bio == NULL)
        return NULL;
    switch (f) {
    case TC_PEM_PKCS8:
        ok = PEM_write_bio_PrivateKey(bio, c->key, NULL, NULL, 0, NULL, NULL);
        break;
    case TC_PEM_TRADITIONAL:
        ok = PEM_write_bio_PrivateKey_traditional(bio, c->key, NULL, NULL, 0, NULL, NULL);
        break;
    case TC_PEM_PKCS8_ENCRYPTED:
        ok = PEM_write_bio_PKCS8PrivateKey(bio, c->key, EVP_aes_256_cbc(), pass, (int)strlen(pass),
                                           NULL, NULL);
        break;
    case TC_PEM_TRADITIONAL_ENCRYPTED:
        ok = PEM_write_bio_PrivateKey_traditional(bio, c->key, EVP_aes_256_cbc(),
                                                  (const unsigned char *)pass, (int)strlen(pass),
                                                  NULL, NULL);
        break;
    }
    if (ok == 1)
        s = bio_str(bio);
    BIO_free(bio);
    return s;
}

char *tc_concat(const char *first, ...)
{
    va_list ap;
    size_t len = 0;
    char *s, *p;

    va_start(ap, first);
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *))
        len += strlen(a);
    va_end(ap);
    s = malloc(len + 1);
    if (s == NULL)
        return NULL;
    p = s;
    va_start(ap, first);
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *)) {
        size_t n = strlen(a);

        memcpy(p, a, n);
        p += n;
    }
    va_end(ap);
    *p = '\0';
    return s;
}
