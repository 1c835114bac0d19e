/* pc_load.c - a bounded load client for the e2e tests and benchmarks.
 *
 * T threads each loop: connect, full TLS handshake (no session reuse, no
 * tickets), optional request, read to EOF, close. Stops after -n
 * connections or -d seconds, whichever comes first. Prints a summary, and
 * with -l one line per connection:
 *     <start unix ms> <end unix ms> <ok|fail> <fingerprint16|-> <bytes read> <reason>
 * (start is taken before connect(), so "no handshake started after T saw
 * the old certificate" can be checked exactly)
 * where fingerprint16 is the first 16 hex digits of the SHA-256 of the
 * certificate the server presented. Exit status 0 when it ran (failures are
 * reported, not fatal), 2 on bad usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define LOAD_MAX_FPS 16

struct load_fp {
    char hex[17];
    long count;
    long long first_ms, last_ms;
};

struct load {
    struct sockaddr_in addr;
    const char *sni;
    const char *request;
    int plain;
    long max_conns;
    long long deadline_ms;
    int timeout_s;
    SSL_CTX *ctx;
    FILE *log;
    atomic_long started, ok, failed;
    pthread_mutex_t lock; /* fps and log */
    struct load_fp fps[LOAD_MAX_FPS];
    int nfps;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void load_record(struct load *l, long long t0, int ok, const char *fp, long bytes,
                        const char *why)
{
    long long t = now_ms();

    pthread_mutex_lock(&l->lock);
    if (ok && fp[0] != '-') {
        int i;
        for (i = 0; i < l->nfps; i++)
            if (strcmp(l->fps[i].hex, fp) == 0)
                break;
        if (i == l->nfps && l->nfps < LOAD_MAX_FPS) {
            snprintf(l->fps[i].hex, sizeof(l->fps[i].hex), "%s", fp);
            l->fps[i].first_ms = t;
            l->nfps++;
        }
        if (i < l->nfps) {
            l->fps[i].count++;
            l->fps[i].last_ms = t;
        }
    }
    if (l->log != NULL)
        fprintf(l->log, "%lld %lld %s %s %ld %s\n", t0, t, ok ? "ok" : "fail", fp, bytes, why);
    pthread_mutex_unlock(&l->lock);
    if (ok)
        atomic_fetch_add(&l->ok, 1);
    else
        atomic_fetch_add(&l->failed, 1);
}

/* One connection; returns after recording its outcome. */
static void load_one(struct load *l)
{
    char fp[17] = "-", buf[16384];
    const char *why = "ok";
    struct timeval tv = {.tv_sec = l->timeout_s};
    unsigned char md[32];
    unsigned int mdlen;
    X509 *peer = NULL;
    SSL *ssl = NULL;
    long bytes = 0;
    int fd, ok = 0, n, one = 1;
    long long t0 = now_ms();

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        load_record(l, t0, 0, fp, 0, "socket");
        return;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&l->addr, sizeof(l->addr)) < 0) {
        why = errno == ECONNREFUSED ? "connect_refused" : "connect_failed";
        goto out;
    }
    if (!l->plain) {
        ssl = SSL_new(l->ctx);
        if (ssl == NULL) {
            why = "ssl_new";
            goto out;
        }
        SSL_set_fd(ssl, fd);
        if (l->sni != NULL)
            SSL_set_tlsext_host_name(ssl, l->sni);
        if (SSL_connect(ssl) != 1) {
            why = "handshake_failed";
            goto out;
        }
        peer = SSL_get1_peer_certificate(ssl);
        if (peer != NULL && X509_digest(peer, EVP_sha256(), md, &mdlen) == 1) {
            for (int i = 0; i < 8; i++)
                snprintf(fp + 2 * i, 3, "%02x", md[i]);
        }
    }
    if (l->request != NULL) {
        size_t len = strlen(l->request);
        n = l->plain ? (int)write(fd, l->request, len) : SSL_write(ssl, l->request, (int)len);
        if (n != (int)len) {
            why = "write_failed";
            goto out;
        }
        for (;;) {
            n = l->plain ? (int)read(fd, buf, sizeof(buf)) : SSL_read(ssl, buf, sizeof(buf));
            if (n <= 0)
                break;
            bytes += n;
        }
        if (!l->plain) {
            int e = SSL_get_error(ssl, n);
            /* A TCP close without close_notify is how many backends end. */
            if (e != SSL_ERROR_ZERO_RETURN && e != SSL_ERROR_SYSCALL) {
                why = "read_failed";
                goto out;
            }
        } else if (n < 0) {
            why = "read_failed";
            goto out;
        }
        if (bytes == 0) {
            why = "empty_response";
            goto out;
        }
    }
    ok = 1;
out:
    ERR_clear_error();
    X509_free(peer);
    if (ssl != NULL) {
        if (ok)
            SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    close(fd);
    load_record(l, t0, ok, fp, bytes, why);
}

static void *load_thread(void *arg)
{
    struct load *l = arg;

    while (now_ms() < l->deadline_ms) {
        if (atomic_fetch_add(&l->started, 1) >= l->max_conns)
            break;
        load_one(l);
    }
    return NULL;
}

static void usage(void)
{
    fputs("usage: pc_load -c HOST:PORT [-t threads] [-n conns] [-d seconds] [-s sni]\n"
          "               [-r request] [-l logfile] [-T timeout_s] [-p (plain TCP)]\n",
          stderr);
}

int main(int argc, char **argv)
{
    static struct load l;
    const char *target = NULL, *logpath = NULL;
    pthread_t th[256];
    int c, nthreads = 4;
    double secs = 10;
    long long t0;

    l.max_conns = 1000;
    l.timeout_s = 10;
    pthread_mutex_init(&l.lock, NULL);
    while ((c = getopt(argc, argv, "c:t:n:d:s:r:l:T:p")) != -1) {
        switch (c) {
        case 'c':
            target = optarg;
            break;
        case 't':
            nthreads = atoi(optarg);
            break;
        case 'n':
            l.max_conns = atol(optarg);
            break;
        case 'd':
            secs = atof(optarg);
            break;
        case 's':
            l.sni = optarg;
            break;
        case 'r':
            l.request = optarg;
            break;
        case 'l':
            logpath = optarg;
            break;
        case 'T':
            l.timeout_s = atoi(optarg);
            break;
        case 'p':
            l.plain = 1;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (target == NULL || nthreads < 1 || nthreads > 256 || l.max_conns < 1 || secs <= 0 ||
        secs > 3600 || l.timeout_s < 1) {
        usage();
        return 2;
    }
    {
        char host[64];
        const char *colon = strrchr(target, ':');
        size_t hl = colon ? (size_t)(colon - target) : 0;
        if (colon == NULL || hl == 0 || hl >= sizeof(host)) {
            usage();
            return 2;
        }
        memcpy(host, target, hl);
        host[hl] = '\0';
        l.addr.sin_family = AF_INET;
        l.addr.sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &l.addr.sin_addr) != 1) {
            usage();
            return 2;
        }
    }
    if (logpath != NULL) {
        l.log = fopen(logpath, "w");
        if (l.log == NULL) {
            perror(logpath);
            return 2;
        }
        setvbuf(l.log, NULL, _IOLBF, 0);
    }
    l.ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(l.ctx, SSL_VERIFY_NONE, NULL);
    /* Every connection a full handshake, as the benchmark anchors measure. */
    SSL_CTX_set_session_cache_mode(l.ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(l.ctx, SSL_OP_NO_TICKET);
    t0 = now_ms();
    l.deadline_ms = t0 + (long long)(secs * 1000);
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, load_thread, &l);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    printf("connections=%ld ok=%ld failed=%ld elapsed_ms=%lld\n",
           atomic_load(&l.ok) + atomic_load(&l.failed), atomic_load(&l.ok), atomic_load(&l.failed),
           now_ms() - t0);
    for (int i = 0; i < l.nfps; i++)
        printf("fingerprint=%s count=%ld first_ms=%lld last_ms=%lld\n", l.fps[i].hex,
               l.fps[i].count, l.fps[i].first_ms, l.fps[i].last_ms);
    if (l.log != NULL)
        fclose(l.log);
    SSL_CTX_free(l.ctx);
    return 0;
}
