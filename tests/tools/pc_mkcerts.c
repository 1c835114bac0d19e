/* pc_mkcerts.c - mint many TLS server certificates fast, for bench/scale.sh.
 *
 * One throw-away CA (ECDSA P-256) signs one leaf per name
 * h<first>.<domain> ... h<first+n-1>.<domain> (CN and DNS SAN), each with its
 * own ECDSA P-256 key (or, with -s, one key shared by every leaf: the way to
 * tell key generation from signing and PEM encoding in the timing). Every leaf
 * is written as one JSON line ready for POST /v1/certificates:
 *     {"name":"h1.scale.test","certificate":"-----BEGIN...","private_key":"..."}
 * With -r M -i K it also writes M more certificates for the single name
 * h<K>.<domain> (fresh key each, distinct serials) to the -R file: the bodies
 * of M rotations of that certificate. The CA certificate goes to -c.
 *
 * Usage: pc_mkcerts -n N -o OUT.jsonl [-f FIRST] [-d DOMAIN] [-s] [-c CA.pem]
 *                   [-r M -i K -R ROT.jsonl]
 * Prints the time spent in key generation, signing and encoding to stderr.
 * Test keys only: they are written in clear to the output files on purpose. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define MK_MAX_CERTS 1000000L

struct mk_times {
    double keygen, sign, encode;
};

static double mk_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void mk_die(const char *what)
{
    fprintf(stderr, "pc_mkcerts: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static EVP_PKEY *mk_key(struct mk_times *t)
{
    double t0 = mk_now();
    EVP_PKEY *k = EVP_EC_gen("P-256");

    if (k == NULL)
        mk_die("EC key generation failed");
    t->keygen += mk_now() - t0;
    return k;
}

static void mk_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *e;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (e == NULL || !X509_add_ext(x, e, -1))
        mk_die("cannot add an extension");
    X509_EXTENSION_free(e);
}

/* A certificate for 'cn' with public key 'key', signed by (ca, ca_key); a
 * self-signed CA when ca is NULL. Serials are random (64 bits): rotations of
 * one name must differ. */
static X509 *mk_cert(const char *cn, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key, struct mk_times *t)
{
    double t0 = mk_now();
    X509 *x = X509_new();
    X509_NAME *n;
    unsigned char serial[8];
    BIGNUM *bn;
    char san[300];

    if (x == NULL || RAND_bytes(serial, sizeof(serial)) != 1)
        mk_die("out of memory");
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
        mk_die("serial");
    BN_free(bn);
    X509_set_version(x, 2);
    /* An hour of slack either way for clocks that disagree. */
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 30L * 24 * 3600);
    X509_set_pubkey(x, key);
    n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : n);
    if (ca == NULL) {
        mk_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
        mk_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        snprintf(san, sizeof(san), "DNS:%s", cn);
        mk_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE");
        mk_ext(x, ca, NID_key_usage, "critical,digitalSignature");
        mk_ext(x, ca, NID_ext_key_usage, "serverAuth");
        mk_ext(x, ca, NID_subject_alt_name, san);
    }
    if (X509_sign(x, ca_key ? ca_key : key, EVP_sha256()) <= 0)
        mk_die("signing failed");
    t->sign += mk_now() - t0;
    return x;
}

/* Write 's' as the inside of a JSON string (PEM: only newlines need it). */
static void mk_json_str(FILE *f, const char *s, long len)
{
    for (long i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '\n')
            fputs("\\n", f);
        else if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

static void mk_write(FILE *f, const char *name, X509 *x, EVP_PKEY *key, struct mk_times *t)
{
    double t0 = mk_now();
    BIO *bc = BIO_new(BIO_s_mem()), *bk = BIO_new(BIO_s_mem());
    char *pc, *pk;
    long lc, lk;

    if (bc == NULL || bk == NULL || !PEM_write_bio_X509(bc, x) ||
        !PEM_write_bio_PrivateKey(bk, key, NULL, NULL, 0, NULL, NULL))
        mk_die("PEM encoding failed");
    lc = BIO_get_mem_data(bc, &pc);
    lk = BIO_get_mem_data(bk, &pk);
    fprintf(f, "{\"name\":\"%s\",\"certificate\":\"", name);
    mk_json_str(f, pc, lc);
    fputs("\",\"private_key\":\"", f);
    mk_json_str(f, pk, lk);
    fputs("\"}\n", f);
    BIO_free(bc);
    BIO_free(bk);
    t->encode += mk_now() - t0;
}

/* Mint 'n' leaves; a NULL 'fixed' names them h<first+i>.<domain>, otherwise
 * every one is for the name 'fixed'. */
static void mk_batch(FILE *f, long first, long n, const char *domain, const char *fixed,
                     EVP_PKEY *shared, X509 *ca, EVP_PKEY *ca_key, struct mk_times *t)
{
    char name[256];

    for (long i = 0; i < n; i++) {
        EVP_PKEY *k = shared ? shared : mk_key(t);
        X509 *x;

        if (fixed)
            snprintf(name, sizeof(name), "%s", fixed);
        else
            snprintf(name, sizeof(name), "h%ld.%s", first + i, domain);
        x = mk_cert(name, k, ca, ca_key, t);
        mk_write(f, name, x, k, t);
        X509_free(x);
        if (k != shared)
            EVP_PKEY_free(k);
    }
}

static FILE *mk_open(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");

    if (f == NULL) {
        perror(path);
        exit(1);
    }
    return f;
}

static void mk_close(FILE *f, const char *path)
{
    if (fflush(f) != 0 || ferror(f) || (f != stdout && fclose(f) != 0)) {
        perror(path);
        exit(1);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: pc_mkcerts -n N -o OUT.jsonl [-f FIRST] [-d DOMAIN] [-s] "
                    "[-c CA.pem] [-r M -i K -R ROT.jsonl]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *out = NULL, *ca_out = NULL, *rot_out = NULL, *domain = "scale.test";
    long n = -1, first = 1, rot = 0, rot_idx = 1;
    int shared_key = 0, c;
    struct mk_times t = {0};
    EVP_PKEY *ca_key, *shared = NULL;
    X509 *ca;
    FILE *f;
    double t0 = mk_now();

    while ((c = getopt(argc, argv, "n:o:f:d:sc:r:i:R:")) != -1) {
        switch (c) {
        case 'n':
            n = strtol(optarg, NULL, 10);
            break;
        case 'o':
            out = optarg;
            break;
        case 'f':
            first = strtol(optarg, NULL, 10);
            break;
        case 'd':
            domain = optarg;
            break;
        case 's':
            shared_key = 1;
            break;
        case 'c':
            ca_out = optarg;
            break;
        case 'r':
            rot = strtol(optarg, NULL, 10);
            break;
        case 'i':
            rot_idx = strtol(optarg, NULL, 10);
            break;
        case 'R':
            rot_out = optarg;
            break;
        default:
            usage();
        }
    }
    if (n < 0 || n > MK_MAX_CERTS || out == NULL || first < 0 || rot < 0 || rot > MK_MAX_CERTS ||
        (rot > 0 && rot_out == NULL) || strlen(domain) > 200)
        usage();
    ca_key = mk_key(&t);
    ca = mk_cert("Portcullis scale-test CA", ca_key, NULL, NULL, &t);
    if (ca_out) {
        f = mk_open(ca_out);
        if (!PEM_write_X509(f, ca))
            mk_die("cannot write the CA");
        mk_close(f, ca_out);
    }
    if (shared_key)
        shared = mk_key(&t);
    f = mk_open(out);
    mk_batch(f, first, n, domain, NULL, shared, ca, ca_key, &t);
    mk_close(f, out);
    if (rot > 0) {
        char name[256];

        snprintf(name, sizeof(name), "h%ld.%s", rot_idx, domain);
        f = mk_open(rot_out);
        mk_batch(f, 0, rot, domain, name, shared, ca, ca_key, &t);
        mk_close(f, rot_out);
    }
    fprintf(stderr,
            "pc_mkcerts: %ld certificates (+%ld rotations, %s key) in %.2f s: keygen %.2f s, "
            "sign %.2f s, encode+write %.2f s\n",
            n, rot, shared_key ? "one shared" : "one per certificate", mk_now() - t0, t.keygen,
            t.sign, t.encode);
    EVP_PKEY_free(shared);
    EVP_PKEY_free(ca_key);
    X509_free(ca);
    return 0;
}
