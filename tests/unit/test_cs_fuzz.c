/* test_cs_fuzz.c - randomized import fuzzing: mutated PEM (text and DER
 * level) in all three fields, each passed in a buffer of its exact length
 * with no NUL after it, so the sanitizer build catches any read past the
 * end. Every outcome must be success or a clean client error (never
 * ERR_INTERNAL), messages must not echo key bytes, and whatever cs_import()
 * accepts cs_ctx_build() must accept too. Bounded: FUZZ_ITERATIONS
 * iterations or FUZZ_SECONDS seconds, whichever comes first; the seed is
 * fixed (PC_FUZZ_SEED overrides it) so a failure can be replayed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "cs.h"
#include "err.h"
#include "testcerts.h"

#define FUZZ_ITERATIONS 3000
#define FUZZ_SECONDS 20
#define FUZZ_MAX_LEN (CS_MAX_FIELD + 4096)

struct seed {
    const char *cert, *key, *chain;
};

static struct {
    struct tc_cert *ca, *inter, *rsa, *p256, *ed, *expired;
    char *chain, *ec_trad;
    struct seed seeds[6];
    size_t n_seeds;
} f;

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* xorshift64*: reproducible everywhere, unlike rand(). */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static size_t rnd_below(size_t n)
{
    return n == 0 ? 0 : (size_t)(rnd() % n);
}

static int setup(void **state)
{
    struct tc_opts o = {.key_type = TC_KEY_P256,
                        .cn = "expired.test",
                        .not_before_s = -10 * 86400,
                        .not_after_s = -86400};

    (void)state;
    f.ca = tc_ca("Fuzz Root");
    f.inter = tc_intermediate(f.ca, "Fuzz Intermediate");
    if (f.ca == NULL || f.inter == NULL)
        return -1;
    f.rsa = tc_leaf(f.inter, TC_KEY_RSA, "DNS:rsa.test,IP:10.0.0.1");
    f.p256 = tc_leaf(f.inter, TC_KEY_P256, "DNS:p256.test,DNS:*.w.test,IP:::1");
    f.ed = tc_leaf(f.inter, TC_KEY_ED25519, "DNS:ed.test");
    f.expired = tc_cert_new(&o, f.inter);
    f.chain = tc_concat(f.inter->cert_pem, f.ca->cert_pem, NULL);
    if (!f.rsa || !f.p256 || !f.ed || !f.expired || !f.chain)
        return -1;
    f.ec_trad = tc_key_pem(f.p256, TC_PEM_TRADITIONAL);
    f.seeds[0] = (struct seed){f.rsa->cert_pem, f.rsa->key_pem, f.chain};
    f.seeds[1] = (struct seed){f.p256->cert_pem, f.p256->key_pem, f.chain};
    f.seeds[2] = (struct seed){f.ed->cert_pem, f.ed->key_pem, f.inter->cert_pem};
    f.seeds[3] = (struct seed){f.p256->cert_pem, f.ec_trad, NULL};
    f.seeds[4] = (struct seed){f.ca->cert_pem, NULL, NULL};
    f.seeds[5] = (struct seed){f.expired->cert_pem, f.expired->key_pem, f.chain};
    f.n_seeds = 6;
    return f.ec_trad != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tc_cert_free(f.ca);
    tc_cert_free(f.inter);
    tc_cert_free(f.rsa);
    tc_cert_free(f.p256);
    tc_cert_free(f.ed);
    tc_cert_free(f.expired);
    free(f.chain);
    free(f.ec_trad);
    return 0;
}

/* A growable byte buffer, never NUL-terminated on purpose. */
struct buf {
    char *p;
    size_t len;
};

static void buf_set(struct buf *b, const char *s)
{
    b->len = s != NULL ? strlen(s) : 0;
    b->p = malloc(b->len + 1);
    assert_non_null(b->p);
    if (b->len > 0)
        memcpy(b->p, s, b->len);
}

/* 's' may point into 'b' itself (a splice from the same field): copied
 * first, as realloc() may move it. */
static void buf_insert(struct buf *b, size_t at, const char *s, size_t n)
{
    char *copy;

    if (b->len + n > FUZZ_MAX_LEN)
        return;
    copy = malloc(n > 0 ? n : 1);
    assert_non_null(copy);
    memcpy(copy, s, n);
    b->p = realloc(b->p, b->len + n + 1);
    assert_non_null(b->p);
    memmove(b->p + at + n, b->p + at, b->len - at);
    memcpy(b->p + at, copy, n);
    b->len += n;
    free(copy);
}

/* Re-encode the first PEM block of 'b' with its DER mutated, so the
 * decoders (and the metadata code after them) see near-valid structures. */
static void mutate_der(struct buf *b)
{
    BIO *in = BIO_new_mem_buf(b->p, (int)b->len), *out = NULL;
    char *name = NULL, *header = NULL, *data;
    unsigned char *der = NULL;
    long der_len = 0, n;

    if (in == NULL)
        return;
    if (PEM_read_bio(in, &name, &header, &der, &der_len) != 1 || der_len <= 0)
        goto out;
    switch (rnd_below(3)) {
    case 0:
        der[rnd_below((size_t)der_len)] ^= (unsigned char)(1u << rnd_below(8));
        break;
    case 1:
        der[rnd_below((size_t)der_len)] = (unsigned char)rnd();
        break;
    default:
        der_len = (long)rnd_below((size_t)der_len);
        break;
    }
    out = BIO_new(BIO_s_mem());
    if (out == NULL || PEM_write_bio(out, name, header, der, der_len) <= 0)
        goto out;
    n = BIO_get_mem_data(out, &data);
    if (n > 0) {
        free(b->p);
        b->p = malloc((size_t)n + 1);
        assert_non_null(b->p);
        memcpy(b->p, data, (size_t)n);
        b->len = (size_t)n;
    }
out:
    BIO_free(in);
    BIO_free(out);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
}

static const char *const tokens[] = {
    "-----BEGIN CERTIFICATE-----\n",
    "-----END CERTIFICATE-----\n",
    "-----BEGIN PRIVATE KEY-----\n",
    "-----END PRIVATE KEY-----\n",
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\n",
    "-----BEGIN EC PARAMETERS-----\n",
    "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\n",
    "-----BEGIN ",
    "-----END ",
    "-----",
    "\n",
    "\r\n",
    "=",
    "====",
    "garbage",
};

static void mutate(struct buf *b, const struct buf *donor)
{
    size_t at = rnd_below(b->len + 1), n;
    char c;

    switch (rnd_below(9)) {
    case 0: /* flip a bit */
        if (b->len > 0)
            b->p[rnd_below(b->len)] ^= (char)(1u << rnd_below(8));
        break;
    case 1: /* an interesting byte */
        if (b->len > 0) {
            static const char bytes[] = {'-', '\n', '\r', '=', 'A', '\0', ' ', '+', '/'};

            c = rnd_below(4) == 0 ? (char)rnd() : bytes[rnd_below(sizeof(bytes))];
            b->p[rnd_below(b->len)] = c;
        }
        break;
    case 2: /* delete a range */
        n = rnd_below(b->len - (at < b->len ? at : b->len) + 1);
        memmove(b->p + at, b->p + at + n, b->len - at - n);
        b->len -= n;
        break;
    case 3: /* duplicate a range */
        if (at < b->len) {
            char *copy;

            n = 1 + rnd_below(b->len - at);
            copy = malloc(n);
            assert_non_null(copy);
            memcpy(copy, b->p + at, n);
            buf_insert(b, rnd_below(b->len + 1), copy, n);
            free(copy);
        }
        break;
    case 4: /* truncate */
        b->len = at;
        break;
    case 5: /* a PEM token */
    {
        const char *t = tokens[rnd_below(sizeof(tokens) / sizeof(tokens[0]))];

        buf_insert(b, at, t, strlen(t));
        break;
    }
    case 6: /* splice from another field */
        if (donor->len > 0) {
            size_t from = rnd_below(donor->len);

            buf_insert(b, at, donor->p + from, 1 + rnd_below(donor->len - from));
        }
        break;
    case 7: /* pad it just past the limit */
        if (rnd_below(4) == 0) {
            size_t need = CS_MAX_FIELD + 1 - (b->len < CS_MAX_FIELD ? b->len : CS_MAX_FIELD);
            char *pad = malloc(need);

            assert_non_null(pad);
            memset(pad, rnd_below(2) ? ' ' : 'A', need);
            buf_insert(b, at, pad, need);
            free(pad);
        }
        break;
    default:
        mutate_der(b);
        break;
    }
}

static int kind_ok(enum err_kind k)
{
    return k == ERR_INVALID || k == ERR_TOO_LARGE || k == ERR_UNPROCESSABLE;
}

static int field_ok(const char *f)
{
    return f != NULL && (strcmp(f, "certificate") == 0 || strcmp(f, "private_key") == 0 ||
                         strcmp(f, "certificate_chain") == 0);
}

/* 16 base64 characters from inside every key seed, never to be echoed. */
static void assert_no_key_bytes(const char *msg)
{
    for (size_t i = 0; i < f.n_seeds; i++) {
        const char *k = f.seeds[i].key;
        const char *line = k != NULL ? strchr(k, '\n') : NULL;
        char piece[17];

        if (line == NULL || strlen(line) < 40)
            continue;
        memcpy(piece, line + 20, 16);
        piece[16] = '\0';
        if (strstr(msg, piece) != NULL)
            fail_msg("error message echoes key bytes: %s", msg);
    }
}

static void test_import_fuzz(void **state)
{
    const char *env = getenv("PC_FUZZ_SEED");
    uint64_t seed = env != NULL ? strtoull(env, NULL, 0) : 0x5eed0fce575ULL;
    time_t start = time(NULL), now = start;
    size_t iters = 0, ok = 0, ctx_built = 0, codes_seen = 0;
    const char *codes[64];

    (void)state;
    rng_state = seed != 0 ? seed : 1;
    for (; iters < FUZZ_ITERATIONS && time(NULL) - start < FUZZ_SECONDS; iters++) {
        const struct seed *s = &f.seeds[rnd_below(f.n_seeds)];
        struct buf in[3];
        struct cs_meta m;
        struct err e = {0};
        size_t rounds = 1 + rnd_below(3);
        int rc;

        buf_set(&in[0], s->cert);
        buf_set(&in[1], s->key);
        buf_set(&in[2], s->chain);
        for (size_t r = 0; r < rounds; r++) {
            size_t which = rnd_below(3);

            mutate(&in[which], &in[rnd_below(3)]);
        }
        /* Exact-size copies: nothing after the last byte to lean on. */
        for (int i = 0; i < 3; i++) {
            char *exact = malloc(in[i].len > 0 ? in[i].len : 1);

            assert_non_null(exact);
            if (in[i].len > 0)
                memcpy(exact, in[i].p, in[i].len);
            free(in[i].p);
            in[i].p = exact;
        }
        rc = cs_import(in[0].p, in[0].len, in[1].p, in[1].len, in[2].p, in[2].len, now, &m, &e);
        if (rc == 0) {
            ok++;
            assert_false(err_isset(&e));
            assert_non_null(m.subject);
            assert_int_equal(strlen(m.fingerprint_sha256), 64);
            if (m.has_key) {
                SSL_CTX *ctx = NULL;

                if (cs_ctx_build(in[0].p, in[0].len, in[2].p, in[2].len, in[1].p, in[1].len,
                                 CS_POLICY_INTERMEDIATE, &ctx, &e) != 0)
                    fail_msg("seed %#llx iteration %zu: import accepted, ctx_build refused: %s: "
                             "%s",
                             (unsigned long long)seed, iters, e.code, e.message);
                SSL_CTX_free(ctx);
                ctx_built++;
            }
            cs_meta_free(&m);
        } else {
            size_t j;

            assert_int_equal(rc, -1);
            if (!kind_ok(e.kind) || e.code == NULL || !field_ok(e.field))
                fail_msg("seed %#llx iteration %zu: unclean error kind=%d code=%s field=%s: %s",
                         (unsigned long long)seed, iters, (int)e.kind, e.code ? e.code : "(null)",
                         e.field ? e.field : "(null)", e.message);
            assert_true(e.message[0] != '\0');
            assert_true(memchr(e.message, '\0', sizeof(e.message)) != NULL);
            assert_no_key_bytes(e.message);
            for (j = 0; j < codes_seen && strcmp(codes[j], e.code) != 0; j++)
                ;
            if (j == codes_seen && codes_seen < 64)
                codes[codes_seen++] = e.code;
        }
        for (int i = 0; i < 3; i++)
            free(in[i].p);
    }
    print_message("import fuzz: seed %#llx, %zu iterations in %lds, %zu accepted (%zu SSL_CTX "
                  "built), %zu distinct error codes\n",
                  (unsigned long long)seed, iters, (long)(time(NULL) - start), ok, ctx_built,
                  codes_seen);
    assert_true(iters >= 100);
    /* Not vacuous: mutations reach both outcomes and many rules. */
    if (iters == FUZZ_ITERATIONS) {
        assert_true(ok > 0);
        assert_true(codes_seen >= 8);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import_fuzz),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
