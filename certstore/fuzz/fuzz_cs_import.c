/* fuzz_cs_import.c - libFuzzer target for cs_import() (and cs_ctx_build()
 * on what it accepts). Optional: configure with CC=clang -DPC_FUZZ=ON.
 *
 * Input: byte 0 picks a built-in valid seed (bits 0-2) and the field the
 * rest of the input replaces (bits 3-4: certificate, private_key,
 * certificate_chain, or all three split at NUL bytes). The other fields
 * keep the seed's valid PEM, so the fuzzer works on one field in context.
 * FUZZ_WRITE_CORPUS=<dir> writes a starting corpus of the seeds themselves:
 *     FUZZ_WRITE_CORPUS=corpus ./fuzz_cs_import -runs=0 && ./fuzz_cs_import corpus */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#include "cs.h"
#include "err.h"
#include "testcerts.h"

#define N_SEEDS 4

static struct tc_cert *ca, *inter, *leaves[3];
static const char *seed_cert[N_SEEDS], *seed_key[N_SEEDS], *seed_chain[N_SEEDS];
static time_t now;

static void write_corpus(const char *dir)
{
    char path[4096];

    for (int s = 0; s < N_SEEDS; s++) {
        for (int fld = 0; fld < 3; fld++) {
            const char *v = fld == 0 ? seed_cert[s] : fld == 1 ? seed_key[s] : seed_chain[s];
            FILE *fp;

            snprintf(path, sizeof(path), "%s/seed-%d-%d", dir, s, fld);
            fp = fopen(path, "wb");
            if (fp == NULL)
                continue;
            fputc(s | fld << 3, fp);
            if (v != NULL)
                fputs(v, fp);
            fclose(fp);
        }
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("FUZZ_WRITE_CORPUS");
    static char *chain;

    (void)argc;
    (void)argv;
    ca = tc_ca("Fuzz Root");
    inter = tc_intermediate(ca, "Fuzz Intermediate");
    leaves[0] = tc_leaf(inter, TC_KEY_P256, "DNS:a.test,IP:127.0.0.1");
    leaves[1] = tc_leaf(inter, TC_KEY_RSA, "DNS:b.test");
    leaves[2] = tc_leaf(inter, TC_KEY_ED25519, "DNS:c.test");
    chain = tc_concat(inter->cert_pem, ca->cert_pem, NULL);
    if (!ca || !inter || !leaves[0] || !leaves[1] || !leaves[2] || !chain)
        abort();
    for (int i = 0; i < 3; i++) {
        seed_cert[i] = leaves[i]->cert_pem;
        seed_key[i] = leaves[i]->key_pem;
        seed_chain[i] = chain;
    }
    seed_cert[3] = ca->cert_pem; /* trust anchor */
    now = time(NULL);
    if (dir != NULL)
        write_corpus(dir);
    return 0;
}

/* A heap copy of exactly 'n' bytes: nothing after them to lean on. */
static char *exact(const void *p, size_t n)
{
    char *c = malloc(n > 0 ? n : 1);

    if (c == NULL)
        abort();
    if (n > 0)
        memcpy(c, p, n);
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in[3];
    size_t len[3];
    char *buf[3];
    struct cs_meta m;
    struct err e = {0};
    int s, fld;

    if (size < 1)
        return 0;
    s = (data[0] & 7) % N_SEEDS;
    fld = (data[0] >> 3) & 3;
    data++;
    size--;
    in[0] = seed_cert[s];
    in[1] = seed_key[s];
    in[2] = seed_chain[s];
    for (int i = 0; i < 3; i++)
        len[i] = in[i] != NULL ? strlen(in[i]) : 0;
    if (fld < 3) {
        in[fld] = (const char *)data;
        len[fld] = size;
    } else {
        const uint8_t *p = data, *end = data + size;

        for (int i = 0; i < 3; i++) {
            const uint8_t *z = i < 2 ? memchr(p, 0, (size_t)(end - p)) : NULL;

            in[i] = (const char *)p;
            len[i] = (size_t)((z != NULL ? z : end) - p);
            p = z != NULL ? z + 1 : end;
        }
    }
    for (int i = 0; i < 3; i++)
        buf[i] = exact(in[i], len[i]);
    if (cs_import(buf[0], len[0], buf[1], len[1], buf[2], len[2], now, &m, &e) == 0) {
        SSL_CTX *ctx = NULL;

        if (m.has_key && cs_ctx_build(buf[0], len[0], buf[2], len[2], buf[1], len[1],
                                      CS_POLICY_INTERMEDIATE, &ctx, &e) != 0)
            abort(); /* accepted by import, refused by the SSL_CTX builder */
        SSL_CTX_free(ctx);
        cs_meta_free(&m);
    } else if (e.code == NULL || e.field == NULL ||
               (e.kind != ERR_INVALID && e.kind != ERR_TOO_LARGE && e.kind != ERR_UNPROCESSABLE)) {
        abort(); /* client input must end in a clean client error */
    }
    for (int i = 0; i < 3; i++)
        free(buf[i]);
    return 0;
}
