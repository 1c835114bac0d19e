/* hc.c - health checks and draining reports, in the proxy's main thread.
 *
 * One checker per (target group, target) of the current configuration, so
 * a target is checked once per proxy whatever the number of workers. The
 * verdict goes to the target's shared dp_stats (workers read it when they
 * choose) and, on every change, to the control plane in a `health` frame.
 * A checker is kept across configurations while its target's address and
 * the group's check settings stay the same, so a certificate rotation does
 * not reset anyone's state. Every check is non-blocking and bounded by
 * timeout_ms as a whole: a slow, endless or garbage endpoint is cut by it. */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "dp.h"
#include "hc.h"
#include "log.h"
#include "pp2.h"

/* --- pure parts (unit-tested) --- */

int hc_http_feed(struct hc_http *h, const char *data, size_t n)
{
    static const char pfx[] = "HTTP/";
    const char *p, *eol;
    size_t take = n, line;
    int code;

    if (take > HC_HTTP_MAX - h->len)
        take = HC_HTTP_MAX - h->len;
    memcpy(h->buf + h->len, data, take);
    h->len += take;
    /* Garbage shows in the first bytes: no need to wait for the line end. */
    for (size_t i = 0; i < h->len && i < sizeof(pfx) - 1; i++)
        if (h->buf[i] != pfx[i])
            return HC_HTTP_MALFORMED;
    eol = memchr(h->buf, '\n', h->len);
    if (eol == NULL)
        return (h->len == HC_HTTP_MAX || take < n) ? HC_HTTP_MALFORMED : HC_HTTP_AGAIN;
    line = (size_t)(eol - h->buf);
    if (line > 0 && h->buf[line - 1] == '\r')
        line--;
    /* "HTTP/d.d SP ddd" then end of line or SP and a reason phrase. */
    p = h->buf;
    if (line < 12 || p[5] < '0' || p[5] > '9' || p[6] != '.' || p[7] < '0' || p[7] > '9' ||
        p[8] != ' ')
        return HC_HTTP_MALFORMED;
    for (int i = 9; i < 12; i++)
        if (p[i] < '0' || p[i] > '9')
            return HC_HTTP_MALFORMED;
    if (line > 12 && p[12] != ' ')
        return HC_HTTP_MALFORMED;
    for (size_t i = 12; i < line; i++)
        if ((unsigned char)p[i] < 0x20 && p[i] != '\t')
            return HC_HTTP_MALFORMED;
    code = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (code < 100 || code > 599)
        return HC_HTTP_MALFORMED;
    return code;
}

int hc_http_ok(int status)
{
    return status >= 200 && status <= 399;
}

int hc_sm_feed(struct hc_sm *sm, int ok, int healthy_threshold, int unhealthy_threshold)
{
    enum tg_health before = sm->state;

    if (ok) {
        sm->ok_run++;
        sm->fail_run = 0;
    } else {
        sm->fail_run++;
        sm->ok_run = 0;
    }
    switch (sm->state) {
    case TG_H_INITIAL:
        sm->state = ok ? TG_H_HEALTHY : TG_H_UNHEALTHY;
        break;
    case TG_H_HEALTHY:
        if (sm->fail_run >= unhealthy_threshold)
            sm->state = TG_H_UNHEALTHY;
        break;
    case TG_H_UNHEALTHY:
        if (sm->ok_run >= healthy_threshold)
            sm->state = TG_H_HEALTHY;
        break;
    }
    return sm->state != before;
}

void hc_host_header(char *out, size_t cap, const char *host, int port)
{
    /* An IPv6 literal needs brackets; the port goes only when not 80. */
    int v6 = strchr(host, ':') != NULL;

    if (port == 80)
        snprintf(out, cap, v6 ? "[%s]" : "%s", host);
    else
        snprintf(out, cap, v6 ? "[%s]:%d" : "%s:%d", host, port);
}

const char *hc_state_name(enum tg_health h)
{
    switch (h) {
    case TG_H_HEALTHY:
        return "healthy";
    case TG_H_UNHEALTHY:
        return "unhealthy";
    case TG_H_INITIAL:
        break;
    }
    return "initial";
}

/* --- reporting --- */

static void hc_send(struct dp *dp, const struct hc_tgt *t, const char *state, const char *reason)
{
    cJSON *f;

    if (dp->fd < 0)
        return; /* reported after the next hello */
    f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "type", "health");
    cJSON_AddStringToObject(f, "target_group_id", t->tg_id);
    cJSON_AddStringToObject(f, "target_id", t->id);
    cJSON_AddStringToObject(f, "state", state);
    cJSON_AddStringToObject(f, "reason", reason);
    dp_ctl_send(dp, f);
}

/* What the control plane should show for 't' now. */
static void hc_report(struct hc_tgt *t)
{
    if (t->draining)
        hc_send(t->hc->dp, t, "draining", t->drain_reason);
    else
        hc_send(t->hc->dp, t, hc_state_name(t->sm.state), t->reason);
}

void hc_report_all(struct dp *dp)
{
    struct hc *hc = dp->hc;

    for (size_t i = 0; hc != NULL && i < hc->n; i++)
        hc_report(hc->v[i]);
}

/* --- one check --- */

static void hc_check_start(struct hc_tgt *t);

static uint64_t hc_rand(struct hc *hc)
{
    uint64_t x = hc->rnd; /* xorshift64: jitter only */

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    hc->rnd = x;
    return x;
}

/* Seconds in [lo, hi) of 'ms', spread so that many targets do not fire
 * together. */
static double hc_jitter(struct hc *hc, int ms, double lo, double hi)
{
    double f = lo + (hi - lo) * (double)(hc_rand(hc) % 10000) / 10000.0;

    return (double)ms * f / 1000.0;
}

/* End the check in flight, if any (the checker stays). */
static void hc_check_stop(struct hc_tgt *t)
{
    struct ev_loop *loop = t->hc->dp->loop;

    if (t->chk == NULL)
        return;
    ev_io_stop(loop, &t->chk->io);
    ev_timer_stop(loop, &t->chk->tmr);
    if (t->chk->ssl != NULL) {
        SSL_free(t->chk->ssl);
        t->chk->ssl = NULL;
    }
    if (t->chk->fd >= 0)
        close(t->chk->fd);
    t->chk->fd = -1;
    t->chk->phase = HC_IDLE;
    free(t->chk->buf);
    t->chk->buf = NULL;
}

/* Stop and free the checker of 't' (no health check any more, or gone). */
static void hc_chk_free(struct hc_tgt *t)
{
    if (t->chk == NULL)
        return;
    hc_check_stop(t);
    SSL_CTX_free(t->chk->ctx);
    free(t->chk);
    t->chk = NULL;
}

/* Idle until the next check: 'delay' seconds from now. */
static void hc_check_schedule(struct hc_tgt *t, double delay)
{
    struct ev_loop *loop = t->hc->dp->loop;

    ev_timer_stop(loop, &t->chk->tmr);
    ev_timer_set(&t->chk->tmr, delay > 0 ? delay : 0., 0.);
    ev_timer_start(loop, &t->chk->tmr);
}

/* A check ended: feed the state machine, publish a change, plan the next
 * check one (jittered) interval after this one started. */
static void hc_check_done(struct hc_tgt *t, int ok, const char *reason)
{
    struct ev_loop *loop = t->hc->dp->loop;
    double next;

    hc_check_stop(t);
    if (hc_sm_feed(&t->sm, ok, t->chk->set.healthy_threshold, t->chk->set.unhealthy_threshold)) {
        snprintf(t->reason, sizeof(t->reason), "%s", ok ? "" : reason);
        atomic_store_explicit(&t->st->health, (int)t->sm.state, memory_order_release);
        log_info("hc", "target %s/%s (%s:%d) is %s%s%s", t->tg_id, t->id, t->chk->host,
                 t->chk->set.port ? t->chk->set.port
                                  : (int)ntohs(((struct sockaddr_in *)&t->chk->addr)->sin_port),
                 hc_state_name(t->sm.state), ok ? "" : ": ", ok ? "" : reason);
        if (!t->draining)
            hc_report(t);
    } else if (!ok) {
        log_debug("hc", "target %s/%s check failed: %s", t->tg_id, t->id, reason);
        /* Still unhealthy, for another reason (refused, then 503): show it. */
        if (t->sm.state == TG_H_UNHEALTHY && strcmp(t->reason, reason) != 0) {
            snprintf(t->reason, sizeof(t->reason), "%s", reason);
            if (!t->draining)
                hc_report(t);
        }
    }
    next = t->chk->started + hc_jitter(t->hc, t->chk->set.interval_ms, 0.95, 1.05) - ev_now(loop);
    hc_check_schedule(t, next);
}

static void hc_tls_fail(struct hc_tgt *t)
{
    char why[HC_REASON_MAX];
    long vr = SSL_get_verify_result(t->chk->ssl);
    unsigned long e = ERR_peek_last_error();

    if (t->chk->tls_verify && vr != X509_V_OK)
        snprintf(why, sizeof(why), "tls: certificate verify failed (%s)",
                 X509_verify_cert_error_string(vr));
    else if (e != 0)
        snprintf(why, sizeof(why), "tls: handshake failed (%s)", ERR_reason_error_string(e));
    else
        snprintf(why, sizeof(why), "tls: handshake failed");
    ERR_clear_error();
    hc_check_done(t, 0, why);
}

static void hc_io_want(struct hc_tgt *t, int events)
{
    struct ev_loop *loop = t->hc->dp->loop;

    ev_io_stop(loop, &t->chk->io);
    ev_io_set(&t->chk->io, t->chk->fd, events);
    ev_io_start(loop, &t->chk->io);
}

static void hc_tls_step(struct hc_tgt *t)
{
    int r, e;

    ERR_clear_error();
    r = SSL_do_handshake(t->chk->ssl);
    if (r == 1) {
        hc_check_done(t, 1, "");
        return;
    }
    e = SSL_get_error(t->chk->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        hc_io_want(t, EV_READ);
    else if (e == SSL_ERROR_WANT_WRITE)
        hc_io_want(t, EV_WRITE);
    else
        hc_tls_fail(t);
}

static int hc_is_ip(const char *s)
{
    struct in6_addr a;

    return inet_pton(AF_INET, s, &a) == 1 || inet_pton(AF_INET6, s, &a) == 1;
}

static void hc_tls_start(struct hc_tgt *t)
{
    struct hc *hc = t->hc;
    SSL_CTX *ctx = t->chk->tls_verify ? t->chk->ctx : hc->noverify;

    if (ctx == NULL) {
        hc->noverify = SSL_CTX_new(TLS_client_method());
        if (hc->noverify == NULL) {
            hc_check_done(t, 0, "tls: out of memory");
            return;
        }
        SSL_CTX_set_verify(hc->noverify, SSL_VERIFY_NONE, NULL);
        ctx = hc->noverify;
    }
    t->chk->ssl = SSL_new(ctx);
    if (t->chk->ssl == NULL || SSL_set_fd(t->chk->ssl, t->chk->fd) != 1) {
        hc_check_done(t, 0, "tls: out of memory");
        return;
    }
    SSL_set_connect_state(t->chk->ssl);
    if (hc_is_ip(t->chk->sni)) {
        if (t->chk->tls_verify)
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->chk->ssl), t->chk->sni);
    } else {
        SSL_set_tlsext_host_name(t->chk->ssl, t->chk->sni);
        if (t->chk->tls_verify)
            SSL_set1_host(t->chk->ssl, t->chk->sni);
    }
    t->chk->phase = HC_HANDSHAKING;
    hc_tls_step(t);
}

/* Connected and every byte we had to send is out: what proves health. */
static void hc_after_send(struct hc_tgt *t)
{
    switch (t->chk->set.protocol) {
    case 1: /* http */
        t->chk->phase = HC_READING;
        hc_io_want(t, EV_READ);
        break;
    case 2: /* tls */
        hc_tls_start(t);
        break;
    default: /* tcp: the connect (and the header, if any) went through */
        hc_check_done(t, 1, "");
        break;
    }
}

static void hc_send_step(struct hc_tgt *t)
{
    while (t->chk->buf != NULL && t->chk->buf->out_off < t->chk->buf->out_len) {
        ssize_t r = send(t->chk->fd, t->chk->buf->out + t->chk->buf->out_off,
                         t->chk->buf->out_len - t->chk->buf->out_off, MSG_NOSIGNAL);

        if (r > 0) {
            t->chk->buf->out_off += (size_t)r;
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            hc_io_want(t, EV_WRITE);
            return;
        }
        hc_check_done(t, 0, errno == ECONNRESET ? "connection reset" : "send failed");
        return;
    }
    hc_after_send(t);
}

static void hc_connected(struct hc_tgt *t)
{
    if (t->chk->set.proxy_v2 || t->chk->set.protocol == 1) {
        t->chk->buf = calloc(1, sizeof(*t->chk->buf));
        if (t->chk->buf == NULL) {
            hc_check_done(t, 0, "out of memory");
            return;
        }
    } else {
        hc_after_send(t); /* nothing to send */
        return;
    }
    if (t->chk->set.proxy_v2)
        t->chk->buf->out_len =
            pp2_build_local((uint8_t *)t->chk->buf->out, sizeof(t->chk->buf->out));
    if (t->chk->set.protocol == 1) {
        char hosthdr[DP_HOST_MAX + 16];
        int n;

        hc_host_header(hosthdr, sizeof(hosthdr), t->chk->host,
                       t->chk->set.port ? t->chk->set.port : t->chk->tport);
        n = snprintf(t->chk->buf->out + t->chk->buf->out_len,
                     sizeof(t->chk->buf->out) - t->chk->buf->out_len,
                     "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n"
                     "User-Agent: portcullis-hc\r\n\r\n",
                     t->chk->set.path[0] ? t->chk->set.path : "/", hosthdr);

        if (n < 0 || (size_t)n >= sizeof(t->chk->buf->out) - t->chk->buf->out_len) {
            hc_check_done(t, 0, "http: request too long");
            return;
        }
        t->chk->buf->out_len += (size_t)n;
    }
    t->chk->phase = HC_SENDING;
    hc_send_step(t);
}

static void hc_read_step(struct hc_tgt *t)
{
    char buf[2048], why[32];
    /* Bounded per callback: an endless sender cannot hold the loop. */
    for (int round = 0; round < 4; round++) {
        ssize_t r = recv(t->chk->fd, buf, sizeof(buf), 0);
        int code;

        if (r == 0) {
            hc_check_done(t, 0, "http: closed before a status line");
            return;
        }
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            hc_check_done(t, 0, errno == ECONNRESET ? "connection reset" : "http: read failed");
            return;
        }
        code = hc_http_feed(&t->chk->buf->http, buf, (size_t)r);
        if (code == HC_HTTP_MALFORMED) {
            hc_check_done(t, 0, "http: malformed response");
            return;
        }
        if (code > 0) {
            snprintf(why, sizeof(why), "http %d", code);
            hc_check_done(t, hc_http_ok(code), why);
            return;
        }
    }
}

static const char *hc_connect_reason(int e)
{
    switch (e) {
    case ECONNREFUSED:
        return "connect refused";
    case ETIMEDOUT:
        return "timeout";
    case EHOSTUNREACH:
    case ENETUNREACH:
        return "connect: unreachable";
    default:
        return "connect failed";
    }
}

static void hc_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct hc_tgt *t = w->data;
    int e = 0;
    socklen_t len = sizeof(e);

    (void)loop;
    (void)revents;
    switch (t->chk->phase) {
    case HC_CONNECTING:
        if (getsockopt(t->chk->fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
            e = errno;
        if (e != 0) {
            hc_check_done(t, 0, hc_connect_reason(e));
            return;
        }
        ev_io_stop(loop, &t->chk->io);
        hc_connected(t);
        break;
    case HC_SENDING:
        hc_send_step(t);
        break;
    case HC_HANDSHAKING:
        hc_tls_step(t);
        break;
    case HC_READING:
        hc_read_step(t);
        break;
    case HC_IDLE:
        ev_io_stop(loop, &t->chk->io);
        break;
    }
}

/* Idle: time for a check. Checking: the deadline passed. */
static void hc_tmr_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct hc_tgt *t = w->data;

    (void)loop;
    (void)revents;
    if (t->chk->phase == HC_IDLE)
        hc_check_start(t);
    else
        hc_check_done(t, 0, "timeout");
}

static void hc_check_start(struct hc_tgt *t)
{
    struct ev_loop *loop = t->hc->dp->loop;
    struct sockaddr_storage sa;
    int fd;

    ev_now_update(loop);
    t->chk->started = ev_now(loop);
    t->chk->phase = HC_CONNECTING;
    ev_timer_stop(loop, &t->chk->tmr);
    ev_timer_set(&t->chk->tmr, (double)t->chk->set.timeout_ms / 1000.0, 0.);
    ev_timer_start(loop, &t->chk->tmr);
    if (!t->chk->resolved) {
        hc_check_done(t, 0, "no address");
        return;
    }
    sa = t->chk->addr;
    if (t->chk->set.port != 0) {
        if (sa.ss_family == AF_INET)
            ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)t->chk->set.port);
        else
            ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)t->chk->set.port);
    }
    fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        hc_check_done(t, 0, "no socket");
        return;
    }
    t->chk->fd = fd;
    ev_io_set(&t->chk->io, fd, EV_WRITE);
    if (connect(fd, (struct sockaddr *)&sa, t->chk->addrlen) == 0) {
        hc_connected(t);
        return;
    }
    if (errno != EINPROGRESS) {
        hc_check_done(t, 0, hc_connect_reason(errno));
        return;
    }
    ev_io_start(loop, &t->chk->io);
}

/* --- the set of targets --- */

static int hc_key_cmp(const char *tg_a, const char *id_a, const char *tg_b, const char *id_b)
{
    int c = strcmp(tg_a, tg_b);

    return c != 0 ? c : strcmp(id_a, id_b);
}

static size_t hc_pos(const struct hc *hc, const char *tg_id, const char *id, int *found)
{
    size_t lo = 0, hi = hc->n;

    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = hc_key_cmp(tg_id, id, hc->v[mid]->tg_id, hc->v[mid]->id);

        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static void hc_tgt_free(struct hc_tgt *t)
{
    hc_chk_free(t);
    ev_timer_stop(t->hc->dp->loop, &t->drain_tmr);
    dp_stats_unref(t->st);
    free(t);
}

static void hc_remove_at(struct hc *hc, size_t pos)
{
    hc_tgt_free(hc->v[pos]);
    memmove(hc->v + pos, hc->v + pos + 1, (hc->n - pos - 1) * sizeof(*hc->v));
    hc->n--;
}

static void hc_drain_cb(struct ev_loop *loop, ev_timer *w, int revents);

static struct hc_tgt *hc_tgt_new(struct hc *hc, const struct tg *tg, const struct tg_target *tt,
                                 size_t pos)
{
    struct hc_tgt *t;

    if (hc->n == hc->cap) {
        size_t nc = hc->cap ? 2 * hc->cap : 64;
        struct hc_tgt **nv = realloc(hc->v, nc * sizeof(*nv));

        if (nv == NULL)
            return NULL;
        hc->v = nv;
        hc->cap = nc;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->hc = hc;
    snprintf(t->tg_id, sizeof(t->tg_id), "%s", tg->id);
    snprintf(t->id, sizeof(t->id), "%s", tt->id);
    atomic_fetch_add_explicit(&tt->st->refs, 1, memory_order_relaxed);
    t->st = tt->st;
    ev_init(&t->drain_tmr, hc_drain_cb);
    t->drain_tmr.data = t;
    memmove(hc->v + pos + 1, hc->v + pos, (hc->n - pos) * sizeof(*hc->v));
    hc->v[pos] = t;
    hc->n++;
    return t;
}

/* Whether the checker of 't' still checks what 'tg'/'tt' now say: same
 * target (host name and port: a DNS name's address order may change from one
 * snapshot to the next), protocol, port, path, PROXY header and TLS settings.
 * Timing and thresholds do not count: hc_update copies them in place and the
 * verdict stays. fail_open changes the choice, not the checks. */
static int hc_same(const struct hc_tgt *t, const struct tg *tg, const struct tg_target *tt)
{
    const struct tg_hc *a, *b = &tg->hc;
    int verify = b->protocol == 2 && tg->proto == TG_PROTO_TLS && tg->verify;

    if ((t->chk != NULL) != b->enabled)
        return 0;
    if (!b->enabled)
        return 1;
    a = &t->chk->set;
    return a->protocol == b->protocol && a->port == b->port && strcmp(a->path, b->path) == 0 &&
           a->proxy_v2 == b->proxy_v2 && strcmp(t->chk->host, tt->host) == 0 &&
           t->chk->tport == tt->port && (t->chk->resolved || !tt->resolved) &&
           t->chk->tls_verify == verify && (!verify || t->chk->ctx == tg->cli_ctx) &&
           strcmp(t->chk->sni, tg->server_name ? tg->server_name : tt->host) == 0;
}

/* Take the new timing, thresholds and address of an unchanged check (see
 * hc_same) without touching the verdict. */
static void hc_update(struct hc_tgt *t, const struct tg *tg, const struct tg_target *tt)
{
    struct hc_chk *c = t->chk;
    int old_interval;

    if (c == NULL)
        return;
    old_interval = c->set.interval_ms;
    c->set.interval_ms = tg->hc.interval_ms;
    c->set.timeout_ms = tg->hc.timeout_ms;
    c->set.healthy_threshold = tg->hc.healthy_threshold;
    c->set.unhealthy_threshold = tg->hc.unhealthy_threshold;
    c->set.fail_open = tg->hc.fail_open;
    if (tt->resolved) {
        c->addr = tt->addr;
        c->addrlen = tt->addrlen;
    }
    /* A run longer than the new threshold decides at the next result anyway. */
    if (t->sm.ok_run > c->set.healthy_threshold)
        t->sm.ok_run = c->set.healthy_threshold;
    if (t->sm.fail_run > c->set.unhealthy_threshold)
        t->sm.fail_run = c->set.unhealthy_threshold;
    /* An idle checker waiting out a longer interval: next check within the
     * new one (a check in flight schedules the next itself). */
    if (c->phase == HC_IDLE && c->set.interval_ms < old_interval &&
        ev_timer_remaining(t->hc->dp->loop, &c->tmr) > c->set.interval_ms / 1000.0)
        hc_check_schedule(t, hc_jitter(t->hc, c->set.interval_ms, 0.9, 1.0));
}

/* (Re)build the checker of 't' from the configuration: state back to
 * initial (or healthy for a group without checks). */
static void hc_reset(struct hc_tgt *t, const struct tg *tg, const struct tg_target *tt)
{
    hc_chk_free(t);
    memset(&t->sm, 0, sizeof(t->sm));
    if (!tg->hc.enabled) {
        t->sm.state = TG_H_HEALTHY;
        snprintf(t->reason, sizeof(t->reason), "no health check");
        atomic_store_explicit(&t->st->health, (int)t->sm.state, memory_order_release);
        return;
    }
    t->chk = calloc(1, sizeof(*t->chk));
    if (t->chk == NULL) {
        /* Without a checker the target keeps taking connections. */
        log_error("hc", "out of memory: target %s/%s not checked", t->tg_id, t->id);
        t->sm.state = TG_H_INITIAL;
        snprintf(t->reason, sizeof(t->reason), "not checked: out of memory");
        atomic_store_explicit(&t->st->health, (int)t->sm.state, memory_order_release);
        return;
    }
    t->chk->fd = -1;
    ev_io_init(&t->chk->io, hc_io_cb, -1, EV_WRITE);
    t->chk->io.data = t;
    ev_init(&t->chk->tmr, hc_tmr_cb);
    t->chk->tmr.data = t;
    t->chk->set = tg->hc;
    snprintf(t->chk->host, sizeof(t->chk->host), "%s", tt->host);
    t->chk->tport = tt->port;
    t->chk->resolved = tt->resolved;
    t->chk->addr = tt->addr;
    t->chk->addrlen = tt->addrlen;
    t->chk->tls_verify = tg->hc.protocol == 2 && tg->proto == TG_PROTO_TLS && tg->verify;
    if (t->chk->tls_verify && tg->cli_ctx != NULL) {
        SSL_CTX_up_ref(tg->cli_ctx);
        t->chk->ctx = tg->cli_ctx;
    } else {
        t->chk->tls_verify = 0;
    }
    snprintf(t->chk->sni, sizeof(t->chk->sni), "%s", tg->server_name ? tg->server_name : tt->host);
    t->sm.state = TG_H_INITIAL;
    t->reason[0] = '\0';
    /* The first check soon, spread over a tenth of the interval. */
    hc_check_schedule(t, hc_jitter(t->hc, t->chk->set.interval_ms, 0., 0.1));
    atomic_store_explicit(&t->st->health, (int)t->sm.state, memory_order_release);
}

static void hc_drain_start(struct hc_tgt *t, const char *why)
{
    struct ev_loop *loop = t->hc->dp->loop;
    int64_t until = dp_now_ms() + (int64_t)t->dereg_delay_s * 1000;

    /* Never 0: that means "not draining" to the workers. */
    atomic_store_explicit(&t->st->drain_until, until > 0 ? until : 1, memory_order_release);
    t->draining = 1;
    snprintf(t->drain_reason, sizeof(t->drain_reason), "%s", why);
    ev_timer_stop(loop, &t->drain_tmr);
    ev_timer_set(&t->drain_tmr, (double)t->dereg_delay_s, 0.);
    ev_timer_start(loop, &t->drain_tmr);
    log_info("hc", "target %s/%s draining (%s) for %d s", t->tg_id, t->id, why, t->dereg_delay_s);
    hc_report(t);
}

static void hc_drain_stop(struct hc_tgt *t)
{
    ev_timer_stop(t->hc->dp->loop, &t->drain_tmr);
    atomic_store_explicit(&t->st->drain_until, 0, memory_order_release);
    t->draining = 0;
}

/* A drain ended: the workers close what is left (drain_until passed). A
 * removed target is forgotten; a weight-0 one shows its health again. */
static void hc_drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct hc_tgt *t = w->data;
    struct hc *hc = t->hc;
    size_t pos;
    int found;

    (void)loop;
    (void)revents;
    t->draining = 0;
    log_info("hc", "target %s/%s drained", t->tg_id, t->id);
    if (t->removed) {
        hc_send(hc->dp, t, "removed", "deregistered");
        pos = hc_pos(hc, t->tg_id, t->id, &found);
        if (found)
            hc_remove_at(hc, pos);
        return;
    }
    /* An unhealthy target keeps showing why. */
    if (t->sm.state != TG_H_UNHEALTHY)
        snprintf(t->reason, sizeof(t->reason), "weight 0");
    hc_report(t);
}

void hc_apply(struct dp *dp)
{
    struct dp_config *cfg = dp->cur;
    struct hc *hc = dp->hc;

    if (hc == NULL) {
        hc = calloc(1, sizeof(*hc));
        if (hc == NULL) {
            log_error("hc", "out of memory: no health checks");
            return;
        }
        hc->dp = dp;
        hc->rnd = (uint64_t)dp_now_ms() * 2654435761u ^ (uint64_t)getpid();
        if (hc->rnd == 0)
            hc->rnd = 1;
        dp->hc = hc;
    }
    for (size_t i = 0; i < hc->n; i++)
        hc->v[i]->seen = 0;
    for (size_t g = 0; cfg != NULL && g < cfg->n_tgs; g++) {
        const struct tg *tg = &cfg->tgs[g];

        for (size_t i = 0; i < tg->n_targets; i++) {
            const struct tg_target *tt = &tg->targets[i];
            struct hc_tgt *t;
            int found, changed = 0, old_weight;
            size_t pos = hc_pos(hc, tg->id, tt->id, &found);

            if (found) {
                t = hc->v[pos];
                if (t->seen)
                    continue; /* a duplicate id: the first one counts */
            } else {
                t = hc_tgt_new(hc, tg, tt, pos);
                if (t == NULL) {
                    log_error("hc", "out of memory: target %s/%s not checked", tg->id, tt->id);
                    continue;
                }
                /* The counters may outlive an earlier removal: start clean. */
                atomic_store_explicit(&t->st->drain_until, 0, memory_order_release);
                changed = 1;
            }
            t->seen = 1;
            old_weight = found ? t->weight : tt->weight;
            t->weight = tt->weight;
            t->dereg_delay_s = tg->dereg_delay_s;
            if (!found || !hc_same(t, tg, tt)) {
                hc_reset(t, tg, tt);
                changed = 1;
            } else {
                hc_update(t, tg, tt);
            }
            if (t->removed) { /* back while draining */
                t->removed = 0;
                if (tt->weight > 0) {
                    hc_drain_stop(t);
                    changed = 1;
                } else {
                    snprintf(t->drain_reason, sizeof(t->drain_reason), "weight 0");
                    changed = 1;
                }
            } else if (old_weight > 0 && tt->weight == 0) {
                hc_drain_start(t, "weight 0");
                changed = 0; /* reported */
            } else if (tt->weight > 0 && t->draining) {
                hc_drain_stop(t);
                changed = 1;
            } else if (tt->weight > 0 && old_weight == 0) {
                /* Its weight-0 drain ended earlier: the deadline is moot. */
                atomic_store_explicit(&t->st->drain_until, 0, memory_order_release);
                if (t->sm.state != TG_H_UNHEALTHY && strcmp(t->reason, "weight 0") == 0) {
                    t->reason[0] = '\0';
                    changed = 1;
                }
            }
            if (changed)
                hc_report(t);
        }
    }
    /* Targets that left: stop checking; drain those that may still have
     * connections (a running drain keeps its deadline), forget the others. */
    for (size_t i = hc->n; i-- > 0;) {
        struct hc_tgt *t = hc->v[i];

        if (t->seen || t->removed)
            continue;
        hc_chk_free(t);
        t->removed = 1;
        if (t->draining) {
            snprintf(t->drain_reason, sizeof(t->drain_reason), "deregistered");
            hc_report(t);
        } else if (t->weight > 0) {
            hc_drain_start(t, "deregistered");
        } else {
            hc_send(dp, t, "removed", "deregistered");
            hc_remove_at(hc, i);
        }
    }
}

void hc_free(struct dp *dp)
{
    struct hc *hc = dp->hc;

    if (hc == NULL)
        return;
    for (size_t i = 0; i < hc->n; i++)
        hc_tgt_free(hc->v[i]);
    free(hc->v);
    SSL_CTX_free(hc->noverify);
    free(hc);
    dp->hc = NULL;
}
