/* ctxmem.c - where the proxy's memory per certificate goes (bench/SCALE.md).
 *
 * Reads pc_mkcerts JSON lines and, for the first N, either
 *   ctx:    builds one SSL_CTX per certificate with cs_ctx_build(), as the
 *           proxy does (dataplane/dp_config.c dp_ctx_get), or
 *   parsed: only parses the certificate and key into X509 + EVP_PKEY (what a
 *           design with one SSL_CTX per listener/policy, choosing the
 *           certificate per handshake, would keep).
 * Prints µs and KiB of RSS per certificate. Not part of the build:
 *   cc -O2 -I certstore -I common bench/scale/ctxmem.c \
 *      build-scale/certstore/libcertstore.a build-scale/common/libpc_common.a \
 *      -lssl -lcrypto -lcjson -o /tmp/ctxmem
 *   /tmp/ctxmem certs.jsonl 5000 ctx|parsed */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "cs.h"
#include "err.h"

static long rss_kib(void)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");

    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static char line[1 << 16];
    FILE *f;
    long n, i = 0, r0;
    int parsed;
    void **keep;
    double t0, t = 0;

    if (argc != 4)
        return 2;
    f = fopen(argv[1], "r");
    n = strtol(argv[2], NULL, 10);
    parsed = strcmp(argv[3], "parsed") == 0;
    keep = calloc((size_t)n * 2, sizeof(*keep));
    if (f == NULL || keep == NULL || n <= 0)
        return 1;
    r0 = rss_kib();
    while (i < n && fgets(line, sizeof(line), f)) {
        cJSON *o = cJSON_Parse(line);
        const char *c = cJSON_GetObjectItem(o, "certificate")->valuestring;
        const char *k = cJSON_GetObjectItem(o, "private_key")->valuestring;
        struct err e = {0};

        t0 = now();
        if (parsed) {
            BIO *bc = BIO_new_mem_buf(c, -1), *bk = BIO_new_mem_buf(k, -1);

            keep[2 * i] = PEM_read_bio_X509(bc, NULL, NULL, NULL);
            keep[2 * i + 1] = PEM_read_bio_PrivateKey(bk, NULL, NULL, NULL);
            BIO_free(bc);
            BIO_free(bk);
        } else if (cs_ctx_build(c, strlen(c), NULL, 0, k, strlen(k), CS_POLICY_INTERMEDIATE,
                                (SSL_CTX **)&keep[2 * i], &e) < 0) {
            fprintf(stderr, "cs_ctx_build: %s\n", e.message);
            return 1;
        }
        t += now() - t0;
        cJSON_Delete(o);
        i++;
    }
    printf("%s: %ld certificates, %.0f us and %.1f KiB RSS each\n", argv[3], i, t * 1e6 / (double)i,
           (double)(rss_kib() - r0) / (double)i);
    return 0;
}
