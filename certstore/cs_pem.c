/* cs_pem.c - strict PEM parsing of the certificate, private_key and
 * certificate_chain fields.
 *
 * OpenSSL's PEM readers are lenient in ways an API must not be: they skip
 * anything after the first block, take the first of several certificates,
 * read past a missing END line into the next block, and call a passphrase
 * callback that defaults to prompting on the terminal. So blocks are located
 * here first, each block is handed to PEM_read_bio() on its exact bytes
 * (BIO_new_mem_buf with a length, never relying on a NUL), and the DER is
 * decoded with d2i_* that must consume every byte. */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cs_pem.h"
#include "err.h"

#define PEM_BEGIN "-----BEGIN "
#define PEM_DASHES "-----"
#define PEM_MAX_LABEL 64

/* One located PEM block: 'start' points at "-----BEGIN ", 'len' runs to
 * the end of the END marker plus the rest of its line when that rest is
 * blank. */
struct pem_block {
    const char *start;
    size_t len;
    char label[PEM_MAX_LABEL + 1];
};

/* What a block decoded to. 'data' may hold key material: pem_decoded_free
 * wipes it. */
struct pem_decoded {
    char *name;
    char *header;
    unsigned char *data;
    long data_len;
};

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

int cs_pem_blank(const char *p, size_t len)
{
    if (p == NULL)
        return 1;
    for (size_t i = 0; i < len; i++)
        if (!is_space(p[i]))
            return 0;
    return 1;
}

const char *cs_ossl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    return r != NULL ? r : "no OpenSSL detail";
}

/* Find the next block at or after '*pos'. Returns 1 with 'b' filled and
 * '*pos' moved past it, 0 when no BEGIN marker is left (the rest is text),
 * -1 when a BEGIN marker is malformed or has no matching END. */
static int pem_next(const char *buf, size_t len, size_t *pos, struct pem_block *b)
{
    const char *begin, *label, *dashes, *end, *p, *lim = buf + len;
    char endmark[sizeof("-----END -----") + PEM_MAX_LABEL];
    size_t label_len, n;

    if (*pos >= len)
        return 0;
    begin = memmem(buf + *pos, len - *pos, PEM_BEGIN, strlen(PEM_BEGIN));
    if (begin == NULL)
        return 0;
    label = begin + strlen(PEM_BEGIN);
    dashes = memmem(label, (size_t)(lim - label), PEM_DASHES, strlen(PEM_DASHES));
    if (dashes == NULL)
        return -1;
    label_len = (size_t)(dashes - label);
    if (label_len == 0 || label_len > PEM_MAX_LABEL)
        return -1;
    for (size_t i = 0; i < label_len; i++)
        if (label[i] < 0x20 || label[i] > 0x7e)
            return -1;
    memcpy(b->label, label, label_len);
    b->label[label_len] = '\0';

    n = (size_t)snprintf(endmark, sizeof(endmark), "-----END %s-----", b->label);
    p = dashes + strlen(PEM_DASHES);
    end = memmem(p, (size_t)(lim - p), endmark, n);
    if (end == NULL)
        return -1;
    end += n;
    /* Keep the rest of the END line when blank, so what follows is judged
     * as text between or after blocks. */
    p = end;
    while (p < lim && *p != '\n' && is_space(*p))
        p++;
    if (p < lim && *p == '\n')
        end = p + 1;
    else if (p == lim)
        end = lim;
    b->start = begin;
    b->len = (size_t)(end - begin);
    *pos = (size_t)(end - buf);
    return 1;
}

static void pem_decoded_free(struct pem_decoded *d)
{
    OPENSSL_free(d->name);
    OPENSSL_free(d->header);
    if (d->data != NULL)
        OPENSSL_clear_free(d->data, d->data_len > 0 ? (size_t)d->data_len : 0);
    memset(d, 0, sizeof(*d));
}

/* Base64-decode one located block. Returns 0 or -1 (bad armour/base64). */
static int pem_decode(const struct pem_block *b, struct pem_decoded *d)
{
    BIO *bio;
    int ok;

    memset(d, 0, sizeof(*d));
    if (b->len > INT_MAX)
        return -1;
    bio = BIO_new_mem_buf(b->start, (int)b->len);
    if (bio == NULL)
        return -1;
    ERR_clear_error();
    ok = PEM_read_bio(bio, &d->name, &d->header, &d->data, &d->data_len);
    BIO_free(bio);
    if (ok != 1 || d->data_len <= 0) {
        pem_decoded_free(d);
        return -1;
    }
    return 0;
}

static int is_key_label(const char *label)
{
    size_t n = strlen(label);

    return n >= strlen("PRIVATE KEY") &&
           strcmp(label + n - strlen("PRIVATE KEY"), "PRIVATE KEY") == 0;
}

/* DER of one certificate; every byte must belong to it. */
static X509 *der_to_x509(const struct pem_decoded *d)
{
    const unsigned char *p = d->data;
    X509 *x;

    ERR_clear_error();
    x = d2i_X509(NULL, &p, d->data_len);
    if (x != NULL && p != d->data + d->data_len) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

int cs_pem_cert(const char *pem, size_t len, X509 **out, struct err *err)
{
    struct pem_block b;
    struct pem_decoded d = {0};
    X509 *x = NULL;
    size_t pos = 0;
    int r, rc = -1;

    *out = NULL;
    if (cs_pem_blank(pem, len))
        return err_set(err, ERR_INVALID, "certificate_missing", CS_F_CERT,
                       "certificate is required (a PEM \"BEGIN CERTIFICATE\" block)");
    r = pem_next(pem, len, &pos, &b);
    if (r == 0)
        return err_set(err, ERR_INVALID, "certificate_not_pem", CS_F_CERT,
                       "certificate is not PEM: no \"-----BEGIN CERTIFICATE-----\" block found");
    if (r < 0)
        return err_set(err, ERR_INVALID, "certificate_not_pem", CS_F_CERT,
                       "certificate is not PEM: a BEGIN line is malformed or has no matching "
                       "END line");
    if (is_key_label(b.label))
        return err_set(err, ERR_INVALID, "certificate_contains_private_key", CS_F_CERT,
                       "certificate contains a private key block; send the key in private_key");
    if (strcmp(b.label, "CERTIFICATE") != 0)
        return err_set(err, ERR_INVALID, "certificate_not_pem", CS_F_CERT,
                       "certificate holds a \"%s\" block; expected \"CERTIFICATE\"", b.label);
    if (pem_decode(&b, &d) < 0)
        return err_set(err, ERR_INVALID, "certificate_not_pem", CS_F_CERT,
                       "certificate PEM block does not decode (bad base64 or header)");
    x = der_to_x509(&d);
    if (x == NULL) {
        err_set(err, ERR_INVALID, "certificate_not_pem", CS_F_CERT,
                "certificate is not a valid X.509 certificate: %s", cs_ossl_reason());
        goto out;
    }
    r = pem_next(pem, len, &pos, &b);
    if (r > 0 && strcmp(b.label, "CERTIFICATE") == 0) {
        err_set(err, ERR_INVALID, "certificate_multiple", CS_F_CERT,
                "certificate holds more than one certificate; send only the leaf here and the "
                "intermediates in certificate_chain");
        goto out;
    }
    if (r > 0 && is_key_label(b.label)) {
        err_set(err, ERR_INVALID, "certificate_contains_private_key", CS_F_CERT,
                "certificate contains a private key block; send the key in private_key");
        goto out;
    }
    if (r != 0 || !cs_pem_blank(pem + pos, len - pos)) {
        err_set(err, ERR_INVALID, "certificate_trailing_data", CS_F_CERT,
                "certificate has data after its END CERTIFICATE line; only whitespace may "
                "follow");
        goto out;
    }
    *out = x;
    x = NULL; /* caller owns it */
    rc = 0;
out:
    X509_free(x);
    pem_decoded_free(&d);
    return rc;
}

/* Decode the DER of an accepted key label. NULL when it does not decode. */
/* Key decoding. OpenSSL 3.0 builds a decoder chain per key (every
 * decoder of every provider looked up under a lock): 400 us, ten times the
 * decoding itself, for a proxy loading 10,000 certificates or an import. A
 * decoder context is reusable, so each thread keeps one per PEM label. */
enum { KEY_PKCS8 = 0, KEY_RSA, KEY_EC, KEY_KINDS };

struct key_decoders {
    OSSL_DECODER_CTX *ctx[KEY_KINDS];
    EVP_PKEY *out[KEY_KINDS]; /* where ctx[i] puts what it decoded */
};

static pthread_key_t key_dec_tls;
static pthread_once_t key_dec_once = PTHREAD_ONCE_INIT;
static int key_dec_ok;

static void key_decoders_free(void *p)
{
    struct key_decoders *kd = p;

    for (int i = 0; kd != NULL && i < KEY_KINDS; i++)
        OSSL_DECODER_CTX_free(kd->ctx[i]);
    free(kd);
}

static void key_dec_init(void)
{
    key_dec_ok = pthread_key_create(&key_dec_tls, key_decoders_free) == 0;
}

void cs_thread_cleanup(void)
{
    if (pthread_once(&key_dec_once, key_dec_init) != 0 || !key_dec_ok)
        return;
    key_decoders_free(pthread_getspecific(key_dec_tls));
    pthread_setspecific(key_dec_tls, NULL);
}

/* The calling thread's decoder for 'kind', created on first use. */
static OSSL_DECODER_CTX *key_decoder(int kind, EVP_PKEY ***out)
{
    static const char *const structure[KEY_KINDS] = {"PrivateKeyInfo", NULL, NULL};
    static const char *const type[KEY_KINDS] = {NULL, "RSA", "EC"};
    struct key_decoders *kd;

    if (pthread_once(&key_dec_once, key_dec_init) != 0 || !key_dec_ok)
        return NULL;
    kd = pthread_getspecific(key_dec_tls);
    if (kd == NULL) {
        kd = calloc(1, sizeof(*kd));
        if (kd == NULL || pthread_setspecific(key_dec_tls, kd) != 0) {
            free(kd);
            return NULL;
        }
    }
    if (kd->ctx[kind] == NULL)
        kd->ctx[kind] = OSSL_DECODER_CTX_new_for_pkey(&kd->out[kind], "DER", structure[kind],
                                                      type[kind], EVP_PKEY_KEYPAIR, NULL, NULL);
    *out = &kd->out[kind];
    return kd->ctx[kind];
}

static EVP_PKEY *der_to_key(const struct pem_decoded *d)
{
    const unsigned char *p = d->data;
    size_t left = d->data_len;
    OSSL_DECODER_CTX *dctx;
    EVP_PKEY **out, *k;
    int kind;

    ERR_clear_error();
    if (strcmp(d->name, "PRIVATE KEY") == 0)
        kind = KEY_PKCS8;
    else if (strcmp(d->name, "RSA PRIVATE KEY") == 0)
        kind = KEY_RSA;
    else if (strcmp(d->name, "EC PRIVATE KEY") == 0)
        kind = KEY_EC;
    else
        return NULL;
    dctx = key_decoder(kind, &out);
    if (dctx == NULL)
        return NULL;
    *out = NULL;
    if (OSSL_DECODER_from_data(dctx, &p, &left) != 1) {
        EVP_PKEY_free(*out);
        *out = NULL;
        return NULL;
    }
    k = *out;
    *out = NULL; /* the caller owns it */
    /* Every byte must be the key. */
    if (k != NULL && left != 0) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    return k;
}

static const char key_decrypt_hint[] =
    "; decrypt it first, e.g. `openssl pkey -in key.pem -out plain.pem`, and send plain.pem";

/* Check one key-field block's label and header before decoding it.
 * Returns 1 for an acceptable key block, 0 for a block to skip, -1 on error. */
static int key_label_check(const struct pem_block *b, struct err *err)
{
    if (strcmp(b->label, "EC PARAMETERS") == 0)
        return 0;
    if (strcmp(b->label, "ENCRYPTED PRIVATE KEY") == 0)
        return err_set(err, ERR_UNPROCESSABLE, "private_key_encrypted", CS_F_KEY,
                       "private_key is encrypted (ENCRYPTED PRIVATE KEY)%s", key_decrypt_hint);
    if (strcmp(b->label, "PRIVATE KEY") == 0 || strcmp(b->label, "RSA PRIVATE KEY") == 0 ||
        strcmp(b->label, "EC PRIVATE KEY") == 0)
        return 1;
    if (strcmp(b->label, "DSA PRIVATE KEY") == 0)
        return err_set(err, ERR_UNPROCESSABLE, "key_unsupported", CS_F_KEY,
                       "DSA keys are not supported; use RSA >= 2048 bits, ECDSA P-256/P-384 or "
                       "Ed25519");
    if (strcmp(b->label, "CERTIFICATE") == 0)
        return err_set(err, ERR_INVALID, "private_key_not_pem", CS_F_KEY,
                       "private_key holds a certificate; send it in certificate and the "
                       "unencrypted private key here");
    return err_set(err, ERR_INVALID, "private_key_not_pem", CS_F_KEY,
                   "private_key holds a \"%s\" block; expected \"PRIVATE KEY\", \"RSA PRIVATE "
                   "KEY\" or \"EC PRIVATE KEY\"",
                   b->label);
}

int cs_pem_key(const char *pem, size_t len, EVP_PKEY **out, struct err *err)
{
    struct pem_block b;
    struct pem_decoded d = {0};
    EVP_PKEY *k = NULL;
    size_t pos = 0;
    int r, found = 0, rc = -1;

    *out = NULL;
    if (cs_pem_blank(pem, len))
        return err_set(err, ERR_INVALID, "private_key_missing", CS_F_KEY,
                       "private_key is required (it may be omitted only for a CA certificate)");
    /* Every block is judged, so a second key or an encrypted one is
     * reported even after a good first key. */
    while ((r = pem_next(pem, len, &pos, &b)) > 0) {
        r = key_label_check(&b, err);
        if (r < 0)
            goto out;
        if (r == 0)
            continue;
        if (found) {
            err_set(err, ERR_INVALID, "private_key_multiple", CS_F_KEY,
                    "private_key holds more than one private key");
            goto out;
        }
        found = 1;
        if (pem_decode(&b, &d) < 0) {
            err_set(err, ERR_INVALID, "private_key_not_pem", CS_F_KEY,
                    "private_key PEM block does not decode (bad base64 or header)");
            goto out;
        }
        if (d.header != NULL && strstr(d.header, "ENCRYPTED") != NULL) {
            err_set(err, ERR_UNPROCESSABLE, "private_key_encrypted", CS_F_KEY,
                    "private_key is encrypted (Proc-Type: 4,ENCRYPTED)%s", key_decrypt_hint);
            goto out;
        }
        k = der_to_key(&d);
        pem_decoded_free(&d);
        if (k == NULL) {
            err_set(err, ERR_INVALID, "private_key_not_pem", CS_F_KEY,
                    "private_key is not a valid %s: %s", b.label, cs_ossl_reason());
            goto out;
        }
    }
    if (r < 0) {
        err_set(err, ERR_INVALID, "private_key_not_pem", CS_F_KEY,
                "private_key is not PEM: a BEGIN line is malformed or has no matching END line");
        goto out;
    }
    if (!found) {
        err_set(err, ERR_INVALID, "private_key_not_pem", CS_F_KEY,
                "private_key is not PEM: no \"-----BEGIN PRIVATE KEY-----\" block found");
        goto out;
    }
    if (!cs_pem_blank(pem + pos, len - pos)) {
        err_set(err, ERR_INVALID, "private_key_trailing_data", CS_F_KEY,
                "private_key has data after its END line; only whitespace may follow");
        goto out;
    }
    *out = k;
    k = NULL; /* caller owns it */
    rc = 0;
out:
    EVP_PKEY_free(k);
    pem_decoded_free(&d);
    return rc;
}

int cs_pem_certs(const char *pem, size_t len, size_t max, const char *field, STACK_OF(X509) * *out,
                 struct err *err)
{
    STACK_OF(X509) *sk = NULL;
    struct pem_block b;
    struct pem_decoded d = {0};
    X509 *x = NULL;
    size_t pos = 0;
    int r, rc = -1;

    *out = NULL;
    sk = sk_X509_new_null();
    if (sk == NULL)
        return err_set(err, ERR_INTERNAL, "out_of_memory", field, "out of memory");
    if (cs_pem_blank(pem, len))
        goto done;
    while ((r = pem_next(pem, len, &pos, &b)) > 0) {
        if (is_key_label(b.label)) {
            err_set(err, ERR_INVALID, "chain_contains_private_key", field,
                    "%s contains a private key block; send the key in private_key", field);
            goto out;
        }
        if (strcmp(b.label, "CERTIFICATE") != 0) {
            err_set(err, ERR_INVALID, "chain_not_pem", field,
                    "%s holds a \"%s\" block; expected only \"CERTIFICATE\" blocks", field,
                    b.label);
            goto out;
        }
        if ((size_t)sk_X509_num(sk) >= max) {
            err_set(err, ERR_TOO_LARGE, "chain_too_long", field,
                    "%s holds more than %zu certificates", field, max);
            goto out;
        }
        if (pem_decode(&b, &d) < 0) {
            err_set(err, ERR_INVALID, "chain_not_pem", field,
                    "%s[%d] PEM block does not decode (bad base64 or header)", field,
                    sk_X509_num(sk));
            goto out;
        }
        x = der_to_x509(&d);
        pem_decoded_free(&d);
        if (x == NULL) {
            err_set(err, ERR_INVALID, "chain_not_pem", field,
                    "%s[%d] is not a valid X.509 certificate: %s", field, sk_X509_num(sk),
                    cs_ossl_reason());
            goto out;
        }
        if (sk_X509_push(sk, x) <= 0) {
            err_set(err, ERR_INTERNAL, "out_of_memory", field, "out of memory");
            goto out;
        }
        x = NULL; /* the stack owns it */
    }
    if (r < 0) {
        err_set(err, ERR_INVALID, "chain_not_pem", field,
                "%s is not PEM: a BEGIN line is malformed or has no matching END line", field);
        goto out;
    }
    if (sk_X509_num(sk) == 0) {
        err_set(err, ERR_INVALID, "chain_not_pem", field,
                "%s is not PEM: no \"-----BEGIN CERTIFICATE-----\" block found", field);
        goto out;
    }
    if (!cs_pem_blank(pem + pos, len - pos)) {
        err_set(err, ERR_INVALID, "chain_trailing_data", field,
                "%s has data after its last END CERTIFICATE line; only whitespace may follow",
                field);
        goto out;
    }
done:
    *out = sk;
    sk = NULL; /* caller owns it */
    rc = 0;
out:
    X509_free(x);
    sk_X509_pop_free(sk, X509_free);
    pem_decoded_free(&d);
    return rc;
}
