/* cs_import.c - certificate import: validation rules and metadata.
 *
 * Checks run in a fixed order so one input always yields the same error:
 * sizes, then parsing of certificate, private_key and certificate_chain,
 * then key type, key/certificate match, validity period, chain links, and
 * last a trial SSL_CTX load, so what is accepted here also loads there. */
#include <arpa/inet.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cs.h"
#include "cs_pem.h"
#include "err.h"

#define RSA_MIN_BITS 2048
/* Larger RSA keys make every handshake a CPU sink for the proxy. */
#define RSA_MAX_BITS 8192

static int oom(struct err *err)
{
    return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
}

void cs_meta_free(struct cs_meta *meta)
{
    if (meta == NULL)
        return;
    free(meta->subject);
    free(meta->issuer);
    free(meta->serial);
    for (size_t i = 0; i < meta->n_dns_names; i++)
        free(meta->dns_names[i]);
    free(meta->dns_names);
    for (size_t i = 0; i < meta->n_ip_addresses; i++)
        free(meta->ip_addresses[i]);
    free(meta->ip_addresses);
    memset(meta, 0, sizeof(*meta));
}

/* RFC 2253 one-line form of a name, malloc'd. */
static char *name_str(const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *s = NULL;
    long n;

    if (bio == NULL)
        return NULL;
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
        n = BIO_get_mem_data(bio, &data);
        s = malloc((size_t)(n > 0 ? n : 0) + 1);
        if (s != NULL) {
            if (n > 0)
                memcpy(s, data, (size_t)n);
            s[n > 0 ? n : 0] = '\0';
        }
    }
    BIO_free(bio);
    return s;
}

static char *serial_str(const X509 *x)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex, *s = NULL;

    if (bn == NULL)
        return NULL;
    hex = BN_bn2hex(bn);
    if (hex != NULL)
        s = strdup(hex);
    OPENSSL_free(hex);
    BN_free(bn);
    return s;
}

/* A SAN string is attacker-chosen bytes: keep printable ASCII only, so an
 * embedded NUL cannot truncate a name into another one in the API. */
static char *san_str(const ASN1_IA5STRING *s)
{
    const unsigned char *d = ASN1_STRING_get0_data(s);
    int n = ASN1_STRING_length(s);
    char *out = malloc((size_t)(n > 0 ? n : 0) + 1);

    if (out == NULL)
        return NULL;
    for (int i = 0; i < n; i++)
        out[i] = (d[i] >= 0x20 && d[i] < 0x7f) ? (char)d[i] : '?';
    out[n > 0 ? n : 0] = '\0';
    return out;
}

static int push_str(char ***arr, size_t *n, char *s)
{
    char **a;

    if (s == NULL)
        return -1;
    a = realloc(*arr, (*n + 1) * sizeof(*a));
    if (a == NULL) {
        free(s);
        return -1;
    }
    a[(*n)++] = s;
    *arr = a;
    return 0;
}

static int sans_fill(const X509 *x, struct cs_meta *m)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    char ip[INET6_ADDRSTRLEN];
    int rc = 0;

    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

        if (g->type == GEN_DNS) {
            rc = push_str(&m->dns_names, &m->n_dns_names, san_str(g->d.dNSName));
        } else if (g->type == GEN_IPADD) {
            int n = ASN1_STRING_length(g->d.iPAddress);
            const unsigned char *d = ASN1_STRING_get0_data(g->d.iPAddress);

            if ((n != 4 && n != 16) ||
                inet_ntop(n == 4 ? AF_INET : AF_INET6, d, ip, sizeof(ip)) == NULL)
                continue; /* not an address: a name constraint, ignored */
            rc = push_str(&m->ip_addresses, &m->n_ip_addresses, strdup(ip));
        }
    }
    GENERAL_NAMES_free(gens);
    return rc;
}

static int asn1_time_to_time_t(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    *out = timegm(&tm);
    return 0;
}

/* Judge a key's type and size: RSA 2048..8192, ECDSA P-256/P-384, Ed25519.
 * Fills the key fields of 'm'. */
static int key_check(EVP_PKEY *k, const char *field, struct cs_meta *m, struct err *err)
{
    char group[64] = "";
    size_t glen = 0;
    int bits;

    /* X509_get0_pubkey() gives NULL for an algorithm OpenSSL cannot decode. */
    if (k == NULL)
        return err_set(err, ERR_UNPROCESSABLE, "key_unsupported", field,
                       "the certificate's public key cannot be decoded (unknown algorithm or "
                       "malformed key)");
    bits = EVP_PKEY_get_bits(k);
    switch (EVP_PKEY_get_base_id(k)) {
    case EVP_PKEY_RSA:
        if (bits < RSA_MIN_BITS)
            return err_set(err, ERR_UNPROCESSABLE, "key_too_weak", field,
                           "RSA key of %d bits is too weak; at least %d bits are required", bits,
                           RSA_MIN_BITS);
        if (bits > RSA_MAX_BITS)
            return err_set(err, ERR_UNPROCESSABLE, "key_unsupported", field,
                           "RSA key of %d bits is not supported; at most %d bits", bits,
                           RSA_MAX_BITS);
        strcpy(m->key_algorithm, "RSA");
        m->curve[0] = '\0';
        break;
    case EVP_PKEY_EC:
        ERR_clear_error();
        if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           &glen) != 1)
            group[0] = '\0';
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
            strcpy(m->curve, "P-256");
        } else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
            strcpy(m->curve, "P-384");
        } else {
            return err_set(err, ERR_UNPROCESSABLE, "key_unsupported", field,
                           "ECDSA curve %s is not supported; use P-256 or P-384",
                           group[0] != '\0' ? group : "(explicit parameters)");
        }
        strcpy(m->key_algorithm, "ECDSA");
        break;
    case EVP_PKEY_ED25519:
        strcpy(m->key_algorithm, "Ed25519");
        m->curve[0] = '\0';
        bits = 253; /* as cs-t.h documents; OpenSSL 3.0 reports 256 */
        break;
    default:
        return err_set(err, ERR_UNPROCESSABLE, "key_unsupported", field,
                       "%s keys are not supported; use RSA >= 2048 bits, ECDSA P-256/P-384 or "
                       "Ed25519",
                       OBJ_nid2sn(EVP_PKEY_get_base_id(k)));
    }
    m->key_bits = bits;
    return 0;
}

/* A private key whose public half matches can still be corrupt (RSA CRT
 * values): sign with it and verify with the certificate's key, as a client
 * would. */
static int key_sign_test(EVP_PKEY *key, EVP_PKEY *pub, struct err *err)
{
    static const unsigned char msg[] = "portcullis certificate store key check";
    unsigned char sig[2048];
    size_t sig_len = sizeof(sig);
    const EVP_MD *md = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = 0;

    ERR_clear_error();
    if (ctx != NULL && EVP_DigestSignInit(ctx, NULL, md, NULL, key) == 1 &&
        EVP_DigestSign(ctx, sig, &sig_len, msg, sizeof(msg)) == 1) {
        EVP_MD_CTX_free(ctx);
        ctx = EVP_MD_CTX_new();
        ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pub) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, msg, sizeof(msg)) == 1;
    }
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return err_set(err, ERR_UNPROCESSABLE, "private_key_invalid", CS_F_KEY,
                       "private_key matches the certificate but cannot produce a valid "
                       "signature: %s",
                       cs_ossl_reason());
    return 0;
}

/* 'issuer' must have issued and signed 'x'. */
static int links(X509 *issuer, X509 *x)
{
    EVP_PKEY *pk;

    if (X509_check_issued(issuer, x) != X509_V_OK)
        return 0;
    pk = X509_get0_pubkey(issuer);
    ERR_clear_error();
    return pk != NULL && X509_verify(x, pk) == 1;
}

static int chain_check(X509 *leaf, STACK_OF(X509) * chain, struct err *err)
{
    int n = sk_X509_num(chain);

    for (int i = 0; i < n; i++)
        if (X509_cmp(sk_X509_value(chain, i), leaf) == 0)
            return err_set(err, ERR_UNPROCESSABLE, "chain_contains_leaf", CS_F_CHAIN,
                           "certificate_chain[%d] is the certificate itself; the chain must "
                           "hold only its issuers",
                           i);
    for (int i = 0; i < n; i++) {
        X509 *child = i == 0 ? leaf : sk_X509_value(chain, i - 1);

        if (!links(sk_X509_value(chain, i), child)) {
            if (i == 0)
                return err_set(err, ERR_UNPROCESSABLE, "chain_broken", CS_F_CHAIN,
                               "certificate_chain[0] did not issue the certificate; the chain "
                               "must start with the certificate's issuer and go up in order");
            return err_set(err, ERR_UNPROCESSABLE, "chain_broken", CS_F_CHAIN,
                           "certificate_chain[%d] did not issue certificate_chain[%d]; each "
                           "certificate must be followed by its issuer",
                           i, i - 1);
        }
    }
    return 0;
}

static int meta_fill(X509 *leaf, time_t now, struct cs_meta *m, struct err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    time_t d;

    m->subject = name_str(X509_get_subject_name(leaf));
    m->issuer = name_str(X509_get_issuer_name(leaf));
    m->serial = serial_str(leaf);
    if (m->subject == NULL || m->issuer == NULL || m->serial == NULL || sans_fill(leaf, m) < 0)
        return oom(err);
    if (asn1_time_to_time_t(X509_get0_notBefore(leaf), &m->not_before) < 0 ||
        asn1_time_to_time_t(X509_get0_notAfter(leaf), &m->not_after) < 0)
        return err_set(err, ERR_INVALID, "certificate_not_pem", CS_F_CERT,
                       "certificate has an unreadable validity period");
    d = m->not_after - now;
    m->days_to_expiry = d >= 0 ? (long)(d / 86400) : -(long)((-d + 86399) / 86400);
    ERR_clear_error();
    if (X509_digest(leaf, EVP_sha256(), md, &md_len) != 1 || md_len != 32)
        return err_set(err, ERR_INTERNAL, "internal_error", NULL,
                       "certificate fingerprint failed: %s", cs_ossl_reason());
    for (unsigned int i = 0; i < md_len; i++)
        snprintf(m->fingerprint_sha256 + 2 * i, 3, "%02x", md[i]);
    m->is_ca = (X509_get_extension_flags(leaf) & EXFLAG_CA) != 0;
    return 0;
}

int cs_import(const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
              const char *chain_pem, size_t chain_len, time_t now, struct cs_meta *meta,
              struct err *err)
{
    struct cs_meta m;
    X509 *leaf = NULL;
    EVP_PKEY *key = NULL;
    STACK_OF(X509) *chain = NULL;
    int has_key = !cs_pem_blank(key_pem, key_len);
    int rc = -1;

    memset(&m, 0, sizeof(m));
    memset(meta, 0, sizeof(*meta));
    if (cert_pem != NULL && cert_len > CS_MAX_FIELD)
        return err_set(err, ERR_TOO_LARGE, "certificate_too_large", CS_F_CERT,
                       "certificate is larger than %u bytes", CS_MAX_FIELD);
    if (key_pem != NULL && key_len > CS_MAX_FIELD)
        return err_set(err, ERR_TOO_LARGE, "private_key_too_large", CS_F_KEY,
                       "private_key is larger than %u bytes", CS_MAX_FIELD);
    if (chain_pem != NULL && chain_len > CS_MAX_FIELD)
        return err_set(err, ERR_TOO_LARGE, "chain_too_large", CS_F_CHAIN,
                       "certificate_chain is larger than %u bytes", CS_MAX_FIELD);

    if (cs_pem_cert(cert_pem, cert_len, &leaf, err) < 0)
        goto out;
    if (has_key && cs_pem_key(key_pem, key_len, &key, err) < 0)
        goto out;
    if (cs_pem_certs(chain_pem, chain_len, CS_MAX_CHAIN, CS_F_CHAIN, &chain, err) < 0)
        goto out;

    if (meta_fill(leaf, now, &m, err) < 0)
        goto out;
    if (!has_key && !m.is_ca) {
        err_set(err, ERR_INVALID, "private_key_missing", CS_F_KEY,
                "private_key is required; it may be omitted only for a CA certificate "
                "(basicConstraints CA:TRUE) imported as a trust anchor");
        goto out;
    }
    if (key_check(has_key ? key : X509_get0_pubkey(leaf), has_key ? CS_F_KEY : CS_F_CERT, &m, err) <
        0)
        goto out;
    if (has_key) {
        EVP_PKEY *pub = X509_get0_pubkey(leaf);

        if (pub == NULL || EVP_PKEY_eq(pub, key) != 1) {
            err_set(err, ERR_UNPROCESSABLE, "certificate_key_mismatch", CS_F_KEY,
                    "private_key does not match the certificate's public key");
            goto out;
        }
        if (key_sign_test(key, pub, err) < 0)
            goto out;
    }
    if (now > m.not_after) {
        err_set(err, ERR_UNPROCESSABLE, "certificate_expired", CS_F_CERT,
                "certificate expired %ld day(s) ago", -m.days_to_expiry);
        goto out;
    }
    if (chain_check(leaf, chain, err) < 0)
        goto out;
    if (has_key && cs_ctx_trial(leaf, chain, key, err) < 0)
        goto out;

    m.status = now < m.not_before ? CS_STATUS_NOT_YET_VALID : CS_STATUS_ISSUED;
    m.has_key = has_key;
    m.chain_length = (size_t)sk_X509_num(chain);
    *meta = m;
    memset(&m, 0, sizeof(m)); /* caller owns the strings */
    rc = 0;
out:
    /* Leave no stale errors for the caller's next SSL_get_error(). */
    ERR_clear_error();
    cs_meta_free(&m);
    X509_free(leaf);
    EVP_PKEY_free(key);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}
