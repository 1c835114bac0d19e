/* conn.c - a proxied connection: accept -> (TLS handshake | ClientHello
 * peek) -> choose a target -> non-blocking connect -> (target TLS
 * handshake); a failed connect or target handshake is retried on the next
 * target -> relay both ways with bounded buffers and back-pressure ->
 * half-close -> close. One conn_enter_<state>() per
 * step arms that state's timer and watchers (nginx stream proxy). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "conn.h"
#include "cs.h"
#include "dp.h"
#include "log.h"
#include "net.h"
#include "pp2.h"
#include "sni.h"
#include "tg.h"

#define CONN_POOL_MAX 512 /* idle conns kept per worker */
/* Idle buffers and pipes kept per worker: connections give theirs back
 * whenever a direction is empty, so a few cover every busy connection of
 * one loop iteration; more would only be RSS. */
#define CONN_BUF_POOL_MAX 64
#define CONN_PIPE_POOL_MAX 32
/* Pipe capacity (fs.pipe-max-size's default): 256 page slots, twice what
 * CONN_PIPE_BYTES needs, so the byte bound is reached before the slots run
 * out on small segments. 512 KiB per splice(2) took W4's proxy CPU per GiB
 * from about 860 to 530 ms against 64 KiB (bench/PERF-NOTES.md). */
#define CONN_PIPE_SIZE (1024 * 1024)

_Static_assert(sizeof(((struct conn *)0)->pp2) >= PP2_MAX_LEN, "conn pp2 buffer too small");

static const char *const conn_term_names[] = {
    [CONN_TERM_NONE] = "none",
    [CONN_TERM_DONE] = "done",
    [CONN_TERM_CLIENT_ERROR] = "client_error",
    [CONN_TERM_TARGET_ERROR] = "target_error",
    [CONN_TERM_HANDSHAKE_FAILED] = "handshake_failed",
    [CONN_TERM_HANDSHAKE_TIMEOUT] = "handshake_timeout",
    [CONN_TERM_HELLO_TOO_LARGE] = "client_hello_too_large",
    [CONN_TERM_HELLO_MALFORMED] = "client_hello_malformed",
    [CONN_TERM_CLIENT_CLOSED] = "client_closed_early",
    [CONN_TERM_NO_TARGET] = "no_target",
    [CONN_TERM_CONNECT_FAILED] = "connect_failed",
    [CONN_TERM_CONNECT_TIMEOUT] = "connect_timeout",
    [CONN_TERM_UP_HANDSHAKE_FAILED] = "target_handshake_failed",
    [CONN_TERM_UP_VERIFY_FAILED] = "target_verify_failed",
    [CONN_TERM_IDLE_TIMEOUT] = "idle_timeout",
    [CONN_TERM_LIMIT] = "max_connections",
    [CONN_TERM_SHUTDOWN] = "shutdown",
    [CONN_TERM_INTERNAL] = "internal_error",
    [CONN_TERM_DRAINED] = "drained",
};

const char *conn_term_str(enum conn_term t)
{
    if ((size_t)t < sizeof(conn_term_names) / sizeof(conn_term_names[0]) && conn_term_names[t])
        return conn_term_names[t];
    return "?";
}

int conn_term_is_error(enum conn_term t)
{
    return t != CONN_TERM_DONE && t != CONN_TERM_NONE && t != CONN_TERM_SHUTDOWN &&
           t != CONN_TERM_DRAINED;
}

/* --- pools: no malloc churn per connection --- */

static struct conn_buf *conn_buf_get(struct dp_worker *w)
{
    struct conn_buf *b = w->free_bufs;

    if (b != NULL) {
        w->free_bufs = b->next;
        w->n_free_bufs--;
    } else {
        b = malloc(sizeof(*b));
        if (b == NULL)
            return NULL;
    }
    b->next = NULL;
    b->off = b->len = 0;
    return b;
}

static void conn_buf_put(struct dp_worker *w, struct conn_buf *b)
{
    if (b == NULL)
        return;
    if (w->n_free_bufs >= CONN_BUF_POOL_MAX) {
        free(b);
        return;
    }
    b->next = w->free_bufs;
    w->free_bufs = b;
    w->n_free_bufs++;
}

static struct conn_pipe *conn_pipe_get(struct dp_worker *w)
{
    struct conn_pipe *p = w->free_pipes;
    int fds[2];

    if (p != NULL) {
        w->free_pipes = p->next;
        w->n_free_pipes--;
        p->next = NULL;
        return p;
    }
    p = malloc(sizeof(*p));
    if (p == NULL)
        return NULL;
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0) {
        free(p);
        return NULL;
    }
    /* Best effort: without it the default 16 slots still work (a full
     * pipe reads as EAGAIN and waits for the destination). */
    (void)fcntl(fds[0], F_SETPIPE_SZ, CONN_PIPE_SIZE);
    p->next = NULL;
    p->rd = fds[0];
    p->wr = fds[1];
    p->len = 0;
    return p;
}

static void conn_pipe_close(struct conn_pipe *p)
{
    close(p->rd);
    close(p->wr);
    free(p);
}

static void conn_pipe_put(struct dp_worker *w, struct conn_pipe *p)
{
    if (p == NULL)
        return;
    /* A pipe still holding bytes of a closed connection is never reused. */
    if (p->len != 0 || w->n_free_pipes >= CONN_PIPE_POOL_MAX) {
        conn_pipe_close(p);
        return;
    }
    p->next = w->free_pipes;
    w->free_pipes = p;
    w->n_free_pipes++;
}

void conn_pools_free(struct dp_worker *w)
{
    while (w->free_pipes != NULL) {
        struct conn_pipe *p = w->free_pipes;
        w->free_pipes = p->next;
        conn_pipe_close(p);
    }
    w->n_free_pipes = 0;
    while (w->free_bufs != NULL) {
        struct conn_buf *b = w->free_bufs;
        w->free_bufs = b->next;
        free(b);
    }
    while (w->free_conns != NULL) {
        struct conn *c = w->free_conns;
        w->free_conns = c->next;
        free(c);
    }
    w->n_free_bufs = w->n_free_conns = 0;
}

/* --- I/O ops: plain and TLS share one table (redis ConnectionType) --- */

static long conn_plain_recv(struct conn_side *s, void *buf, size_t n)
{
    ssize_t r = recv(s->fd, buf, n, 0);

    if (r > 0)
        return (long)r;
    if (r == 0)
        return CONN_IO_EOF;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return CONN_IO_AGAIN;
    return CONN_IO_ERROR;
}

static long conn_plain_send(struct conn_side *s, const void *buf, size_t n)
{
    ssize_t r = send(s->fd, buf, n, MSG_NOSIGNAL);

    if (r >= 0)
        return r > 0 ? (long)r : CONN_IO_AGAIN;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return CONN_IO_AGAIN;
    return CONN_IO_ERROR;
}

static int conn_plain_shut(struct conn_side *s)
{
    if (shutdown(s->fd, SHUT_WR) < 0 && errno != ENOTCONN)
        return CONN_IO_ERROR;
    return 0;
}

static long conn_tls_recv(struct conn_side *s, void *buf, size_t n)
{
    int r, e;

    ERR_clear_error();
    r = SSL_read(s->ssl, buf, (int)(n > INT32_MAX ? INT32_MAX : n));
    if (r > 0) {
        s->flags &= ~CONN_S_RD_WANTS_W;
        return r;
    }
    e = SSL_get_error(s->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        s->flags &= ~CONN_S_RD_WANTS_W;
        return CONN_IO_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        s->flags |= CONN_S_RD_WANTS_W;
        return CONN_IO_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return CONN_IO_EOF;
    default:
        return CONN_IO_ERROR;
    }
}

static long conn_tls_send(struct conn_side *s, const void *buf, size_t n)
{
    int r, e;

    ERR_clear_error();
    r = SSL_write(s->ssl, buf, (int)(n > INT32_MAX ? INT32_MAX : n));
    if (r > 0) {
        s->flags &= ~CONN_S_WR_WANTS_R;
        return r;
    }
    e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_WRITE) {
        s->flags &= ~CONN_S_WR_WANTS_R;
        return CONN_IO_AGAIN;
    }
    if (e == SSL_ERROR_WANT_READ) {
        s->flags |= CONN_S_WR_WANTS_R;
        return CONN_IO_AGAIN;
    }
    return CONN_IO_ERROR;
}

static int conn_tls_shut(struct conn_side *s)
{
    int r, e;

    ERR_clear_error();
    r = SSL_shutdown(s->ssl);
    if (r < 0) {
        e = SSL_get_error(s->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE) {
            s->flags |= CONN_S_SHUT_PEND;
            return CONN_IO_AGAIN;
        }
        if (e == SSL_ERROR_WANT_READ) {
            s->flags |= CONN_S_SHUT_PEND | CONN_S_WR_WANTS_R;
            return CONN_IO_AGAIN;
        }
        /* close_notify could not be sent: the FIN still tells the peer. */
    }
    s->flags &= ~(CONN_S_SHUT_PEND | CONN_S_WR_WANTS_R);
    if (shutdown(s->fd, SHUT_WR) < 0 && errno != ENOTCONN)
        return CONN_IO_ERROR;
    return 0;
}

/* Notes whether OpenSSL's last read(2) on a side came back short: then the
 * socket is empty and, once OpenSSL holds nothing either, the relay waits
 * for readiness instead of paying a read(2) for EAGAIN. */
static long conn_tls_bio_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
                            int ret, size_t *processed)
{
    struct conn_side *s = (struct conn_side *)BIO_get_callback_arg(b);

    (void)argp;
    (void)argi;
    (void)argl;
    if (oper == (BIO_CB_READ | BIO_CB_RETURN) && s != NULL) {
        if (ret > 0 && processed != NULL && *processed >= len)
            s->flags &= ~CONN_S_RD_SHORT;
        else
            s->flags |= CONN_S_RD_SHORT;
    }
    return oper & BIO_CB_RETURN ? ret : 1;
}

static void conn_tls_watch_reads(struct conn_side *s)
{
    BIO *b = SSL_get_rbio(s->ssl);

    if (b == NULL)
        return;
    BIO_set_callback_arg(b, (char *)s);
    BIO_set_callback_ex(b, conn_tls_bio_cb);
}

static const struct conn_ops conn_plain_ops = {conn_plain_recv, conn_plain_send, conn_plain_shut};
static const struct conn_ops conn_tls_ops = {conn_tls_recv, conn_tls_send, conn_tls_shut};

/* --- watchers and timers --- */

static void conn_io_cb(struct ev_loop *loop, ev_io *io, int revents);
static void conn_timer_cb(struct ev_loop *loop, ev_timer *t, int revents);

static void conn_arm(struct conn *c, struct conn_side *s, int events)
{
    if (s->fd < 0)
        return;
    if (s->events == events && (events == 0 || ev_is_active(&s->io)))
        return;
    if (ev_is_active(&s->io))
        ev_io_stop(c->w->loop, &s->io);
    s->events = events;
    if (events != 0) {
        ev_io_set(&s->io, s->fd, events);
        ev_io_start(c->w->loop, &s->io);
    }
}

static void conn_timer(struct conn *c, double secs)
{
    ev_timer_stop(c->w->loop, &c->tmr);
    ev_timer_set(&c->tmr, secs, 0.);
    ev_timer_start(c->w->loop, &c->tmr);
}

/* Append the OpenSSL error queue's last entry to the close detail. */
static void conn_ssl_detail(struct conn *c, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char buf[120] = "";

    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    else if (errno != 0)
        snprintf(buf, sizeof(buf), "%s", strerror(errno));
    snprintf(c->detail, sizeof(c->detail), "%s: %s", what, buf[0] ? buf : "peer closed");
    ERR_clear_error();
}

/* --- close --- */

/* The target socket goes: the target's open-connection count (least_conn)
 * drops with it. */
static void conn_up_release(struct conn *c)
{
    if (c->up.fd < 0)
        return;
    atomic_fetch_sub_explicit(&c->tgt->st->conns, 1, memory_order_relaxed);
    close(c->up.fd);
    c->up.fd = -1;
}

void conn_close(struct conn *c, enum conn_term term)
{
    if (c->state == CONN_CLOSING)
        return;
    c->term = term;
    c->state = CONN_CLOSING;
    if (ev_is_active(&c->cli.io))
        ev_io_stop(c->w->loop, &c->cli.io);
    if (ev_is_active(&c->up.io))
        ev_io_stop(c->w->loop, &c->up.io);
    ev_timer_stop(c->w->loop, &c->tmr);
    c->reap_next = c->w->reap_list;
    c->w->reap_list = c;
}

static void conn_free(struct conn *c)
{
    struct dp_worker *w = c->w;
    struct dp_ctr *lctr = &c->lc->st->slot[w->idx];
    char peer[NET_ADDRSTRLEN], tgt[DP_HOST_MAX + DP_ID_MAX + 16] = "-";
    double ms = (ev_now(w->loop) - c->start) * 1000.0;

    if (c->tgt != NULL)
        snprintf(tgt, sizeof(tgt), "%s(%s:%d)", c->tgt->id, c->tgt->host, c->tgt->port);
    net_addr_str((struct sockaddr *)&c->peer, peer, sizeof(peer));
    log_info("dp",
             "listener %s conn %llu client %s sni %s target %s in %llu out %llu ms %.0f "
             "closed: %s%s%s",
             c->lc->id, (unsigned long long)c->id, peer, c->sni[0] ? c->sni : "-", tgt,
             (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out, ms,
             conn_term_str(c->term), c->detail[0] ? " - " : "", c->detail);
    if (c->spliced)
        log_debug("dp", "conn %llu: relayed with splice(2)", (unsigned long long)c->id);
    DP_CTR_SUB(lctr->active, 1);
    DP_CTR_ADD(lctr->bytes_in, c->bytes_in);
    DP_CTR_ADD(lctr->bytes_out, c->bytes_out);
    if (conn_term_is_error(c->term))
        DP_CTR_ADD(lctr->errors, 1);
    if (c->tgt_counted) {
        struct dp_ctr *tctr = &c->tgt->st->slot[w->idx];
        DP_CTR_SUB(tctr->active, 1);
        DP_CTR_ADD(tctr->bytes_in, c->bytes_in);
        DP_CTR_ADD(tctr->bytes_out, c->bytes_out);
    }
    atomic_fetch_sub_explicit(&c->lc->st->conns, 1, memory_order_relaxed);
    SSL_free(c->cli.ssl);
    SSL_free(c->up.ssl);
    if (c->cli.fd >= 0)
        close(c->cli.fd);
    conn_up_release(c);
    conn_buf_put(w, c->c2s);
    conn_buf_put(w, c->s2c);
    conn_pipe_put(w, c->c2s_p);
    conn_pipe_put(w, c->s2c_p);
    dp_config_unref(c->cfg);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    w->n_conns--;
    if (w->n_free_conns < CONN_POOL_MAX) {
        c->next = w->free_conns;
        w->free_conns = c;
        w->n_free_conns++;
    } else {
        free(c);
    }
}

void conn_reap(struct dp_worker *w)
{
    while (w->reap_list != NULL) {
        struct conn *c = w->reap_list;
        w->reap_list = c->reap_next;
        conn_free(c);
    }
    if (w->stopping && w->n_conns == 0)
        ev_break(w->loop, EVBREAK_ALL);
}

void conn_close_all(struct dp_worker *w, enum conn_term term)
{
    for (struct conn *c = w->conns; c != NULL; c = c->next)
        conn_close(c, term);
    conn_reap(w);
}

/* --- relay --- */

static inline size_t conn_room(const struct conn_buf *b)
{
    return b != NULL ? CONN_BUF_SIZE - (b->off + b->len) : CONN_BUF_SIZE;
}

static inline struct conn_side *conn_peer(struct conn *c, const struct conn_side *s)
{
    return s == &c->cli ? &c->up : &c->cli;
}

/* The buffer and pipe of the direction read from 'src'. */
static inline struct conn_buf **conn_bufp(struct conn *c, const struct conn_side *src)
{
    return src == &c->cli ? &c->c2s : &c->s2c;
}

static inline struct conn_pipe **conn_pipep(struct conn *c, const struct conn_side *src)
{
    return src == &c->cli ? &c->c2s_p : &c->s2c_p;
}

/* Bytes read from 'src' and not yet sent on. */
static size_t conn_queued(struct conn *c, const struct conn_side *src)
{
    const struct conn_buf *b = *conn_bufp(c, src);
    const struct conn_pipe *p = *conn_pipep(c, src);

    return (b != NULL ? b->len : 0) + (p != NULL ? p->len : 0);
}

/* splice(2) needs both ends plain; bytes already in the buffer (peeked)
 * go out first, in order. */
static inline int conn_can_splice(struct conn *c, const struct conn_side *src)
{
    return c->cli.ssl == NULL && c->up.ssl == NULL && *conn_bufp(c, src) == NULL;
}

static int conn_io_failed(struct conn *c, struct conn_side *s, const char *what)
{
    if (s == &c->cli)
        conn_ssl_detail(c, what[0] == 's' ? "send to client" : "recv from client");
    else
        conn_ssl_detail(c, what[0] == 's' ? "send to target" : "recv from target");
    conn_close(c, s == &c->cli ? CONN_TERM_CLIENT_ERROR : CONN_TERM_TARGET_ERROR);
    return -1;
}

/* Send what the direction read from 'src' holds to the other side; an
 * emptied buffer or pipe goes back to the pool; once nothing is left and
 * 'src' has seen EOF, half-close the destination. Returns -1 when the
 * connection was closed. */
static int conn_drain(struct conn *c, struct conn_side *src)
{
    struct conn_side *dst = conn_peer(c, src);
    struct conn_buf **bp = conn_bufp(c, src);
    struct conn_pipe **pp = conn_pipep(c, src);
    struct conn_buf *b = *bp;
    struct conn_pipe *p = *pp;

    while (b != NULL && b->len > 0) {
        long r = dst->ops->send(dst, b->data + b->off, b->len);

        if (r > 0) {
            b->off += (uint32_t)r;
            b->len -= (uint32_t)r;
            if (dst == &c->cli)
                c->bytes_out += (uint64_t)r;
            continue;
        }
        if (r == CONN_IO_AGAIN)
            return 0;
        return conn_io_failed(c, dst, "send");
    }
    if (b != NULL) {
        conn_buf_put(c->w, b);
        *bp = NULL;
    }
    while (p != NULL && p->len > 0) {
        ssize_t r = splice(p->rd, NULL, dst->fd, NULL, p->len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

        if (r > 0) {
            p->len -= (uint32_t)r;
            if (dst == &c->cli)
                c->bytes_out += (uint64_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return 0;
        return conn_io_failed(c, dst, "send");
    }
    if (p != NULL) {
        conn_pipe_put(c->w, p);
        *pp = NULL;
    }
    if ((src->flags & CONN_S_EOF) && !(dst->flags & CONN_S_SHUT)) {
        int r = dst->ops->shut_wr(dst);
        if (r == 0) {
            dst->flags |= CONN_S_SHUT;
        } else if (r != CONN_IO_AGAIN) {
            conn_close(c, dst == &c->cli ? CONN_TERM_CLIENT_ERROR : CONN_TERM_TARGET_ERROR);
            return -1;
        }
    }
    return 0;
}

/* Move bytes from 'src' into a pipe and on to the destination without
 * copying them through user space. Returns 1 to read again, 0 to wait for
 * readiness, -1 when the connection was closed. */
static int conn_splice_in(struct conn *c, struct conn_side *src, size_t *budget)
{
    struct conn_pipe **pp = conn_pipep(c, src);
    size_t room;
    ssize_t r;

    if (*pp == NULL && (*pp = conn_pipe_get(c->w)) == NULL)
        return 2; /* no pipe (descriptors or memory short): copy instead */
    room = CONN_PIPE_BYTES - (*pp)->len;
    if (room == 0)
        return 0;
    r = splice(src->fd, NULL, (*pp)->wr, NULL, room, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (r > 0) {
        (*pp)->len += (uint32_t)r;
        c->spliced = 1;
        *budget -= (size_t)r < *budget ? (size_t)r : *budget;
        if (src == &c->cli)
            c->bytes_in += (uint64_t)r;
        if (conn_drain(c, src) < 0)
            return -1;
        /* A short read emptied the socket: wait for readiness rather than
         * paying a syscall for EAGAIN. Bytes left in the pipe wait for the
         * destination. */
        return (size_t)r == room && *pp == NULL;
    }
    if (r == 0) {
        src->flags |= CONN_S_EOF;
        return 0;
    }
    if (errno == EINTR)
        return 1;
    if (errno == EAGAIN)
        return 0;
    return conn_io_failed(c, src, "recv");
}

/* Read from 'src' while there is room, sending as we go, up to a budget
 * per callback. Returns -1 when the connection was closed. */
static int conn_pump(struct conn *c, struct conn_side *src)
{
    struct conn_buf **bp = conn_bufp(c, src);
    size_t budget = CONN_CB_BUDGET;

    while (budget > 0 && !(src->flags & CONN_S_EOF)) {
        struct conn_buf *b;
        size_t room;
        long r;

        if (conn_can_splice(c, src)) {
            int k = conn_splice_in(c, src, &budget);
            if (k < 0)
                return -1;
            if (k == 1)
                continue;
            if (k == 0)
                break;
        }
        if (*bp == NULL && (*bp = conn_buf_get(c->w)) == NULL) {
            conn_close(c, CONN_TERM_INTERNAL);
            return -1;
        }
        b = *bp;
        room = conn_room(b);
        if (room == 0) {
            if (conn_drain(c, src) < 0)
                return -1;
            if (*bp == NULL)
                continue;
            room = conn_room(b);
            if (room == 0)
                break; /* back-pressure: the destination is not draining */
        }
        r = src->ops->recv(src, b->data + b->off + b->len, room);
        if (r > 0) {
            b->len += (uint32_t)r;
            budget -= (size_t)r < budget ? (size_t)r : budget;
            if (src == &c->cli)
                c->bytes_in += (uint64_t)r;
            if (conn_drain(c, src) < 0)
                return -1;
            /* A short read emptied the socket: wait for readiness. With
             * TLS, unless OpenSSL still holds bytes. */
            if (src->ssl == NULL ? (size_t)r < room
                                 : (src->flags & CONN_S_RD_SHORT) && !SSL_has_pending(src->ssl))
                break;
            continue;
        }
        if (r == CONN_IO_EOF) {
            src->flags |= CONN_S_EOF;
            break;
        }
        if (r == CONN_IO_ERROR)
            return conn_io_failed(c, src, "recv");
        break;
    }
    return conn_drain(c, src);
}

/* Arm each side for what it can do now, and notice the end. */
static void conn_relay_update(struct conn *c)
{
    struct conn_side *sides[2] = {&c->cli, &c->up};

    if ((c->cli.flags & CONN_S_EOF) && (c->up.flags & CONN_S_EOF) && conn_queued(c, &c->cli) == 0 &&
        conn_queued(c, &c->up) == 0 && !((c->cli.flags | c->up.flags) & CONN_S_SHUT_PEND)) {
        conn_close(c, CONN_TERM_DONE);
        return;
    }
    for (int i = 0; i < 2; i++) {
        struct conn_side *s = sides[i];
        const struct conn_pipe *p = *conn_pipep(c, s);
        /* A pipe holding bytes waits for its destination before more is
         * read: it may be out of slots, and EAGAIN would not say so. */
        int can_read = !(s->flags & CONN_S_EOF) && conn_room(*conn_bufp(c, s)) > 0 &&
                       (p == NULL || p->len == 0);
        int ev = 0;

        if (can_read || (s->flags & CONN_S_WR_WANTS_R))
            ev |= EV_READ;
        if (conn_queued(c, conn_peer(c, s)) > 0 ||
            (s->flags & (CONN_S_RD_WANTS_W | CONN_S_SHUT_PEND)))
            ev |= EV_WRITE;
        conn_arm(c, s, ev);
        /* Bytes already decrypted inside OpenSSL do not make the socket
         * readable: hand them over now. */
        if (can_read && s->ssl != NULL && SSL_has_pending(s->ssl))
            ev_feed_event(c->w->loop, &s->io, EV_READ);
    }
}

static void conn_relay(struct conn *c, struct conn_side *s, int revents)
{
    c->last_io = ev_now(c->w->loop);
    if ((revents & EV_READ) || s->ssl != NULL)
        if (conn_pump(c, s) < 0)
            return;
    if ((revents & EV_WRITE) || s->ssl != NULL) {
        if (conn_drain(c, conn_peer(c, s)) < 0)
            return;
        /* A retried SSL_shutdown. */
        if ((s->flags & CONN_S_SHUT_PEND) && conn_queued(c, conn_peer(c, s)) == 0) {
            int r = s->ops->shut_wr(s);
            if (r == 0)
                s->flags |= CONN_S_SHUT;
            else if (r != CONN_IO_AGAIN) {
                conn_close(c, s == &c->cli ? CONN_TERM_CLIENT_ERROR : CONN_TERM_TARGET_ERROR);
                return;
            }
        }
    }
    conn_relay_update(c);
}

static void conn_enter_relay(struct conn *c)
{
    c->state = CONN_RELAY;
    c->last_io = ev_now(c->w->loop);
    conn_timer(c, c->idle);
    /* Peeked bytes go first. Buffers are taken when there is something to
     * read: an idle connection holds none. */
    if (c->c2s != NULL && conn_drain(c, &c->cli) < 0)
        return;
    conn_relay_update(c);
}

/* --- target side --- */

static void conn_connect_next(struct conn *c, enum conn_term why);

static void conn_target_failed(struct conn *c)
{
    DP_CTR_ADD(c->tgt->st->slot[c->w->idx].errors, 1);
    if (ev_is_active(&c->up.io))
        ev_io_stop(c->w->loop, &c->up.io);
    c->up.events = 0;
    c->up.flags = 0; /* a TLS attempt's read state must not leak into the next */
    SSL_free(c->up.ssl);
    c->up.ssl = NULL;
    conn_up_release(c);
}

/* The target's TLS handshake failed ('term', c->detail say why). Nothing of
 * this target reached the client and the relay has not started, so the
 * client's bytes (peeked ClientHello, or the first bytes still unread behind
 * the client's TLS) are all still here: try the next target as a failed
 * connect does (nginx proxy_next_upstream); the PROXY header is built again
 * for it. 'term' closes the client when no target is left. */
static void conn_up_failed(struct conn *c, enum conn_term term)
{
    char peer[NET_ADDRSTRLEN];

    net_addr_str((struct sockaddr *)&c->peer, peer, sizeof(peer));
    log_warn("dp", "listener %s conn %llu client %s target %s(%s:%d) attempt %u: %s - %s",
             c->lc->id, (unsigned long long)c->id, peer, c->tgt->id, c->tgt->host, c->tgt->port,
             c->attempts, conn_term_str(term), c->detail);
    if (c->tgt_counted) {
        /* The attempt stays in the target's total and errors; it is no
         * longer one of its active connections. */
        DP_CTR_SUB(c->tgt->st->slot[c->w->idx].active, 1);
        c->tgt_counted = 0;
    }
    conn_arm(c, &c->up, 0);
    conn_connect_next(c, term);
}

static void conn_up_handshake(struct conn *c)
{
    long vr;
    int r, e;

    ERR_clear_error();
    r = SSL_do_handshake(c->up.ssl);
    if (r == 1) {
        (void)SSL_free_buffers(c->up.ssl); /* see conn_handshake() */
        conn_enter_relay(c);
        return;
    }
    e = SSL_get_error(c->up.ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        conn_arm(c, &c->up, EV_READ);
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        conn_arm(c, &c->up, EV_WRITE);
        return;
    }
    /* Without verification the result is computed but decides nothing. */
    vr = c->tg->verify ? SSL_get_verify_result(c->up.ssl) : X509_V_OK;
    if (vr != X509_V_OK) {
        snprintf(c->detail, sizeof(c->detail), "target certificate: %s",
                 X509_verify_cert_error_string(vr));
        ERR_clear_error();
        conn_up_failed(c, CONN_TERM_UP_VERIFY_FAILED);
        return;
    }
    conn_ssl_detail(c, "target handshake");
    conn_up_failed(c, CONN_TERM_UP_HANDSHAKE_FAILED);
}

static void conn_enter_up_handshake(struct conn *c)
{
    const struct tg *tg = c->tg;
    const char *name = tg->server_name ? tg->server_name : c->tgt->host;
    struct err err = {0};
    SSL *ssl;

    c->state = CONN_UP_HANDSHAKE;
    ssl = SSL_new(tg->cli_ctx);
    if (ssl == NULL || SSL_set_fd(ssl, c->up.fd) != 1) {
        SSL_free(ssl);
        conn_close(c, CONN_TERM_INTERNAL);
        return;
    }
    c->up.ssl = ssl;
    c->up.ops = &conn_tls_ops;
    conn_tls_watch_reads(&c->up);
    SSL_set_connect_state(ssl);
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* One read(2) per batch of records instead of two per record (header,
     * then body). */
    SSL_set_read_ahead(ssl, 1);
    conn_timer(c, c->lc->connect_timeout);
    /* SNI, and the name or address the certificate must match when the
     * group verifies; an unusable name fails this target like its handshake. */
    if (cs_ssl_set_peer_name(ssl, name, &err) < 0) {
        snprintf(c->detail, sizeof(c->detail), "%.150s", err.message);
        conn_up_failed(c, CONN_TERM_UP_HANDSHAKE_FAILED);
        return;
    }
    conn_up_handshake(c);
}

/* Connected, PROXY header (if any) sent: TLS or relay. */
static void conn_up_proceed(struct conn *c)
{
    if (c->tg->proto == TG_PROTO_TLS)
        conn_enter_up_handshake(c);
    else
        conn_enter_relay(c);
}

/* Send what is left of the PROXY v2 header, plain, before any other byte
 * (and before the TLS handshake with the target); then go on. */
static void conn_proxy_hdr(struct conn *c)
{
    while (c->pp2_off < c->pp2_len) {
        ssize_t r = send(c->up.fd, c->pp2 + c->pp2_off, c->pp2_len - c->pp2_off, MSG_NOSIGNAL);

        if (r > 0) {
            c->pp2_off += (uint8_t)r;
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            conn_arm(c, &c->up, EV_WRITE);
            return;
        }
        snprintf(c->detail, sizeof(c->detail), "send PROXY header: %s",
                 r < 0 ? strerror(errno) : "nothing sent");
        DP_CTR_ADD(c->tgt->st->slot[c->w->idx].errors, 1);
        conn_close(c, CONN_TERM_TARGET_ERROR);
        return;
    }
    conn_arm(c, &c->up, 0);
    ev_timer_stop(c->w->loop, &c->tmr);
    conn_up_proceed(c);
}

static void conn_enter_proxy_hdr(struct conn *c)
{
    struct sockaddr_storage local;
    socklen_t ll = sizeof(local);
    size_t n;

    c->state = CONN_PROXY_HDR;
    /* The destination is the address the client connected to. */
    if (getsockname(c->cli.fd, (struct sockaddr *)&local, &ll) < 0)
        memset(&local, 0, sizeof(local)); /* AF_UNSPEC: the header says UNSPEC */
    n = pp2_build(c->pp2, sizeof(c->pp2), (const struct sockaddr *)&c->peer,
                  (const struct sockaddr *)&local);
    if (n == 0) {
        conn_close(c, CONN_TERM_INTERNAL);
        return;
    }
    c->pp2_len = (uint8_t)n;
    c->pp2_off = 0;
    conn_timer(c, c->lc->connect_timeout);
    conn_proxy_hdr(c);
}

/* The target accepted: count it, then PROXY header, TLS or relay. */
static void conn_up_ready(struct conn *c)
{
    struct dp_ctr *t = &c->tgt->st->slot[c->w->idx];

    DP_CTR_ADD(t->total, 1);
    DP_CTR_ADD(t->active, 1);
    c->tgt_counted = 1;
    if (c->tg->proxy_v2)
        conn_enter_proxy_hdr(c);
    else
        conn_up_proceed(c);
}

static void conn_connected(struct conn *c)
{
    int e = 0;
    socklen_t l = sizeof(e);

    if (getsockopt(c->up.fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
        e = errno;
    if (e == EINPROGRESS)
        return;
    if (e != 0) {
        log_debug("dp", "conn %llu: connect to %s:%d: %s", (unsigned long long)c->id, c->tgt->host,
                  c->tgt->port, strerror(e));
        snprintf(c->detail, sizeof(c->detail), "last connect: %s", strerror(e));
        conn_connect_next(c, CONN_TERM_CONNECT_FAILED);
        return;
    }
    ev_timer_stop(c->w->loop, &c->tmr);
    conn_up_ready(c);
}

/* Try the next target; 'why' is the reason if none is left. */
static void conn_connect_next(struct conn *c, enum conn_term why)
{
    static const int one = 1;

    for (;;) {
        const struct tg_target *t;
        int fd;

        int refused = 0;

        if (c->up.fd >= 0)
            conn_target_failed(c);
        if (c->attempts >= CONN_MAX_ATTEMPTS ||
            (t = tg_choose(c->tg, c->w->idx, c->tried, c->attempts, &refused)) == NULL) {
            if (refused) {
                snprintf(c->detail, sizeof(c->detail), "no healthy target in target group %s",
                         c->tg->id);
                why = CONN_TERM_NO_TARGET;
            } else if (c->attempts == 0) {
                snprintf(c->detail, sizeof(c->detail), "target group %s has no usable target",
                         c->tg->id);
                why = CONN_TERM_NO_TARGET;
            }
            conn_close(c, why);
            return;
        }
        c->tried[c->attempts++] = t;
        c->tgt = t;
        c->state = CONN_CONNECTING; /* also after a failed target handshake */
        fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(c->detail, sizeof(c->detail), "socket: %s", strerror(errno));
            conn_close(c, CONN_TERM_INTERNAL);
            return;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        /* Counted from connect start: least_conn sees connections in flight. */
        atomic_fetch_add_explicit(&t->st->conns, 1, memory_order_relaxed);
        c->up.fd = fd;
        c->up.ops = &conn_plain_ops;
        if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) == 0) {
            conn_up_ready(c);
            return;
        }
        if (errno == EINPROGRESS) {
            conn_arm(c, &c->up, EV_WRITE);
            conn_timer(c, c->lc->connect_timeout);
            return;
        }
        snprintf(c->detail, sizeof(c->detail), "last connect: %s", strerror(errno));
        why = CONN_TERM_CONNECT_FAILED;
    }
}

static void conn_enter_connect(struct conn *c, const struct tg *tg)
{
    c->state = CONN_CONNECTING;
    c->tg = tg;
    conn_arm(c, &c->cli, 0);
    if (tg->n_eligible == 0) {
        snprintf(c->detail, sizeof(c->detail), "target group %s has no usable target", tg->id);
        conn_close(c, CONN_TERM_NO_TARGET);
        return;
    }
    c->attempts = 0;
    conn_connect_next(c, CONN_TERM_CONNECT_FAILED);
}

/* The route for a server name: SNI routes, then the default group. */
static const struct tg *conn_route(const struct conn *c)
{
    const struct tg *tg = c->sni[0] ? sni_map_lookup(&c->lc->routes, c->sni) : NULL;

    return tg != NULL ? tg : c->lc->default_tg;
}

/* --- client side: TLS handshake, or ClientHello peek --- */

/* c->sni from the ClientHello's server_name, lower-cased; "" when absent
 * or not a host name we could have configured. */
static void conn_hello_sni(struct conn *c, SSL *ssl)
{
    const unsigned char *p;
    size_t len, nlen;

    c->sni[0] = '\0';
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len))
        return;
    /* server_name_list: length, then (type 0, length, host_name). */
    if (len < 5 || (((size_t)p[0] << 8) | p[1]) != len - 2 || p[2] != 0)
        return;
    nlen = ((size_t)p[3] << 8) | p[4];
    if (nlen == 0 || nlen > SNI_NAME_MAX || nlen + 5 > len)
        return;
    for (size_t i = 0; i < nlen; i++) {
        unsigned char ch = p[5 + i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (unsigned char)(ch - 'A' + 'a');
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
              ch == '_')) {
            c->sni[0] = '\0';
            return;
        }
        c->sni[i] = (char)ch;
    }
    c->sni[nlen] = '\0';
}

/* The listener's SSL_CTX holds no certificate: choose it here, by SNI or
 * the listener's default, from the slot a rotation may have swapped. */
int conn_client_hello_cb(SSL *ssl, int *alert, void *arg)
{
    struct conn *c = SSL_get_app_data(ssl);
    struct dp_slot *slot = NULL;
    struct dp_cert *cert;

    (void)arg;
    if (c == NULL) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    conn_hello_sni(c, ssl);
    if (c->sni[0] != '\0')
        slot = sni_map_lookup(&c->lc->certs, c->sni);
    if (slot == NULL)
        slot = c->lc->default_slot;
    cert = slot != NULL ? atomic_load_explicit(&slot->cert, memory_order_acquire) : NULL;
    if (cert == NULL || cs_ssl_use_served(ssl, &cert->s) < 0) {
        snprintf(c->detail, sizeof(c->detail), "certificate %s could not be set",
                 cert != NULL ? cert->id : "-");
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

static void conn_handshake(struct conn *c)
{
    int r, e;

    ERR_clear_error();
    errno = 0;
    r = SSL_do_handshake(c->cli.ssl);
    if (r == 1) {
        /* SSL_MODE_RELEASE_BUFFERS frees the record buffers after
         * application data only: the handshake's stay (about 17 KiB)
         * until the first request, for ever on an idle connection. Fails
         * harmlessly when bytes are pending. */
        (void)SSL_free_buffers(c->cli.ssl);
        ev_timer_stop(c->w->loop, &c->tmr);
        conn_enter_connect(c, conn_route(c));
        return;
    }
    e = SSL_get_error(c->cli.ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        conn_arm(c, &c->cli, EV_READ);
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        conn_arm(c, &c->cli, EV_WRITE);
        return;
    }
    conn_ssl_detail(c, "client handshake");
    conn_close(c, CONN_TERM_HANDSHAKE_FAILED);
}

static void conn_enter_handshake(struct conn *c)
{
    SSL *ssl = SSL_new(c->lc->ctx);

    c->state = CONN_HANDSHAKE;
    if (ssl == NULL || SSL_set_fd(ssl, c->cli.fd) != 1 ||
        SSL_set_session_id_context(ssl, c->lc->sid_ctx, sizeof(c->lc->sid_ctx)) != 1) {
        SSL_free(ssl);
        conn_close(c, CONN_TERM_INTERNAL);
        return;
    }
    c->cli.ssl = ssl;
    c->cli.ops = &conn_tls_ops;
    conn_tls_watch_reads(&c->cli);
    SSL_set_app_data(ssl, c);
    SSL_set_accept_state(ssl);
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* One read(2) per batch of records instead of two per record (header,
     * then body). */
    SSL_set_read_ahead(ssl, 1);
    cs_ssl_set_alpn(ssl, c->lc->alpn, c->lc->alpn_len);
    conn_timer(c, c->lc->handshake_timeout);
    conn_handshake(c);
}

static void conn_peek(struct conn *c)
{
    struct conn_buf *b = c->c2s;

    for (;;) {
        size_t room = conn_room(b), need = 0;
        enum sni_result res;
        ssize_t r;

        if (room == 0) {
            snprintf(c->detail, sizeof(c->detail), "more than %u bytes without a whole ClientHello",
                     CONN_BUF_SIZE);
            conn_close(c, CONN_TERM_HELLO_TOO_LARGE);
            return;
        }
        r = recv(c->cli.fd, b->data + b->len, room, 0);
        if (r == 0) {
            conn_close(c, CONN_TERM_CLIENT_CLOSED);
            return;
        }
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            snprintf(c->detail, sizeof(c->detail), "recv from client: %s", strerror(errno));
            conn_close(c, CONN_TERM_CLIENT_ERROR);
            return;
        }
        b->len += (uint32_t)r;
        c->bytes_in += (uint64_t)r;
        if (b->len < c->peek_need)
            continue;
        res = sni_parse(b->data, b->len, c->sni, &need);
        switch (res) {
        case SNI_NEED_MORE:
            c->peek_need = need;
            if (need > CONN_BUF_SIZE) {
                snprintf(c->detail, sizeof(c->detail), "ClientHello needs %zu bytes", need);
                conn_close(c, CONN_TERM_HELLO_TOO_LARGE);
                return;
            }
            continue;
        case SNI_FOUND:
            break;
        case SNI_NONE:
        case SNI_NOT_TLS:
            c->sni[0] = '\0';
            snprintf(c->detail, sizeof(c->detail), "peek: %s", sni_result_str(res));
            break;
        case SNI_MALFORMED:
            conn_close(c, CONN_TERM_HELLO_MALFORMED);
            return;
        case SNI_TOO_LARGE:
            conn_close(c, CONN_TERM_HELLO_TOO_LARGE);
            return;
        }
        ev_timer_stop(c->w->loop, &c->tmr);
        conn_enter_connect(c, conn_route(c));
        return;
    }
}

static void conn_enter_peek(struct conn *c)
{
    c->state = CONN_PEEK;
    c->c2s = conn_buf_get(c->w);
    if (c->c2s == NULL) {
        conn_close(c, CONN_TERM_INTERNAL);
        return;
    }
    c->peek_need = 1;
    conn_timer(c, c->lc->handshake_timeout);
    conn_arm(c, &c->cli, EV_READ);
}

/* --- dispatch --- */

static void conn_io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct conn_side *s = io->data;
    struct conn *c = s->c;

    (void)loop;
    switch (c->state) {
    case CONN_HANDSHAKE:
        conn_handshake(c);
        break;
    case CONN_PEEK:
        conn_peek(c);
        break;
    case CONN_CONNECTING:
        if (s == &c->up)
            conn_connected(c);
        break;
    case CONN_PROXY_HDR:
        if (s == &c->up)
            conn_proxy_hdr(c);
        break;
    case CONN_UP_HANDSHAKE:
        if (s == &c->up)
            conn_up_handshake(c);
        break;
    case CONN_RELAY:
        conn_relay(c, s, revents);
        break;
    default:
        break;
    }
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct conn *c = t->data;

    (void)revents;
    switch (c->state) {
    case CONN_HANDSHAKE:
    case CONN_PEEK:
        conn_close(c, CONN_TERM_HANDSHAKE_TIMEOUT);
        break;
    case CONN_CONNECTING:
        snprintf(c->detail, sizeof(c->detail), "connect to %.100s:%d timed out", c->tgt->host,
                 c->tgt->port);
        conn_connect_next(c, CONN_TERM_CONNECT_TIMEOUT);
        break;
    case CONN_PROXY_HDR:
        snprintf(c->detail, sizeof(c->detail), "sending the PROXY header timed out");
        DP_CTR_ADD(c->tgt->st->slot[c->w->idx].errors, 1);
        conn_close(c, CONN_TERM_TARGET_ERROR);
        break;
    case CONN_UP_HANDSHAKE:
        snprintf(c->detail, sizeof(c->detail), "target handshake timed out");
        conn_up_failed(c, CONN_TERM_UP_HANDSHAKE_FAILED);
        break;
    case CONN_RELAY: {
        /* Activity only stamps last_io; the timer is re-armed lazily here
         * (libev's recommended idle-timeout pattern). */
        double left = c->last_io + c->idle - ev_now(loop);
        if (left > 0.001) {
            conn_timer(c, left);
            break;
        }
        conn_close(c, CONN_TERM_IDLE_TIMEOUT);
        break;
    }
    default:
        break;
    }
}

void conn_start(struct dp_worker *w, const struct lsn_conf *lc, int fd, const struct sockaddr *peer,
                socklen_t peerlen)
{
    static const int one = 1;
    struct dp_ctr *lctr = &lc->st->slot[w->idx];
    struct conn *c;

    DP_CTR_ADD(lctr->total, 1);
    if ((unsigned)atomic_fetch_add_explicit(&lc->st->conns, 1, memory_order_relaxed) >=
        lc->max_conns) {
        char p[NET_ADDRSTRLEN];

        atomic_fetch_sub_explicit(&lc->st->conns, 1, memory_order_relaxed);
        DP_CTR_ADD(lctr->errors, 1);
        close(fd);
        log_info("dp", "listener %s conn - client %s closed: %s (%u)", lc->id,
                 net_addr_str(peer, p, sizeof(p)), conn_term_str(CONN_TERM_LIMIT), lc->max_conns);
        return;
    }
    c = w->free_conns;
    if (c != NULL) {
        w->free_conns = c->next;
        w->n_free_conns--;
    } else {
        c = malloc(sizeof(*c));
        if (c == NULL) {
            atomic_fetch_sub_explicit(&lc->st->conns, 1, memory_order_relaxed);
            DP_CTR_ADD(lctr->errors, 1);
            close(fd);
            return;
        }
    }
    memset(c, 0, offsetof(struct conn, peer));
    memcpy(&c->peer, peer, peerlen);
    c->peerlen = peerlen;
    c->w = w;
    c->cfg = dp_config_ref(w->cfg);
    c->lc = lc;
    c->id = ++w->next_id * 256u + (uint64_t)w->idx; /* unique per process */
    c->start = ev_now(w->loop);
    c->idle = lc->idle_timeout;
    c->cli.c = c;
    c->cli.fd = fd;
    c->cli.ops = &conn_plain_ops;
    c->up.c = c;
    c->up.fd = -1;
    ev_init(&c->cli.io, conn_io_cb);
    c->cli.io.data = &c->cli;
    ev_init(&c->up.io, conn_io_cb);
    c->up.io.data = &c->up;
    ev_init(&c->tmr, conn_timer_cb);
    c->tmr.data = c;
    c->next = w->conns;
    if (w->conns != NULL)
        w->conns->prev = c;
    w->conns = c;
    w->n_conns++;
    DP_CTR_ADD(lctr->active, 1);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    if (lc->proto == LSN_PROTO_TLS)
        conn_enter_handshake(c);
    else if (lc->routes.n_exact + lc->routes.n_wild > 0)
        conn_enter_peek(c);
    else
        conn_enter_connect(c, lc->default_tg);
}
