/* test_dp_config.c - snapshot -> runtime configuration: defaults, errors
 * that leave nothing behind, listener sockets reused by (bind, port),
 * counters kept by id, the stats frame, certificates parsed once and served
 * through slots that a rotation swaps in place. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cs.h"
#include "dp.h"
#include "err.h"
#include "lsn.h"
#include "sni.h"
#include "testcerts.h"
#include "tg.h"

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t l = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(s, (struct sockaddr *)&a, sizeof(a));
    getsockname(s, (struct sockaddr *)&a, &l);
    close(s);
    return ntohs(a.sin_port);
}

static cJSON *snap(int version, const char *lsns, const char *tgs)
{
    char buf[8192];
    cJSON *j;

    snprintf(buf, sizeof(buf),
             "{\"type\":\"snapshot\",\"version\":%d,\"certificates\":[],"
             "\"target_groups\":[%s],\"listeners\":[%s]}",
             version, tgs, lsns);
    j = cJSON_Parse(buf);
    assert_non_null(j);
    return j;
}

static const char *TGS =
    "{\"id\":\"tg-a\",\"targets\":[{\"id\":\"t1\",\"host\":\"127.0.0.1\",\"port\":1001},"
    "{\"id\":\"t0\",\"host\":\"127.0.0.1\",\"port\":1002,\"weight\":0},"
    "{\"id\":\"t2\",\"host\":\"::1\",\"port\":1003,\"weight\":5}]},"
    "{\"id\":\"tg-b\",\"protocol\":\"tcp\",\"targets\":[]}";

static struct dp *mkdp(void)
{
    struct dp *dp = calloc(1, sizeof(*dp));

    assert_non_null(dp);
    dp->nworkers = 2;
    return dp;
}

static void freedp(struct dp *dp)
{
    dp_stats_free_all(dp);
    /* What dp_ctl_free() frees in the proxy. */
    SSL_CTX_free(dp->check_ctx);
    for (int i = 0; i < 3; i++)
        SSL_CTX_free(dp->srv_ctx[i]);
    free(dp->retired);
    free(dp);
}

static struct dp_config *build_ok(struct dp *dp, cJSON *s, struct dp_config *old)
{
    struct dp_config *cfg = NULL;
    struct err e = {0};
    int rc = dp_config_build(dp, s, old, &cfg, &e);

    if (rc != 0)
        fail_msg("build failed: %s", e.message);
    cJSON_Delete(s);
    return cfg;
}

static void build_fails(struct dp *dp, cJSON *s, const char *code)
{
    struct dp_config *cfg = NULL;
    struct err e = {0};

    assert_int_equal(dp_config_build(dp, s, NULL, &cfg, &e), -1);
    assert_null(cfg);
    assert_non_null(e.code);
    if (code != NULL)
        assert_string_equal(e.code, code);
    assert_true(strlen(e.message) > 0);
    cJSON_Delete(s);
}

static void test_defaults_and_targets(void **state)
{
    struct dp *dp = mkdp();
    char l[256];
    struct dp_config *cfg;
    const struct tg *tg;

    (void)state;
    snprintf(l, sizeof(l),
             "{\"id\":\"lsn-1\",\"bind\":\"127.0.0.1\",\"port\":%d,"
             "\"default_target_group_id\":\"tg-a\"}",
             free_port());
    cfg = build_ok(dp, snap(3, l, TGS), NULL);
    assert_int_equal(cfg->version, 3);
    assert_int_equal(cfg->n_lsns, 1);
    assert_int_equal(cfg->lsns[0].proto, LSN_PROTO_TCP);
    assert_int_equal(cfg->lsns[0].max_conns, 10000);
    assert_true(cfg->lsns[0].idle_timeout == 300.0);
    assert_true(cfg->lsns[0].connect_timeout == 5.0);
    assert_int_equal(cfg->lsns[0].socks->n, 2);
    assert_true(cfg->lsns[0].socks->fds[0] >= 0 && cfg->lsns[0].socks->fds[1] >= 0);
    tg = cfg->lsns[0].default_tg;
    assert_string_equal(tg->id, "tg-a");
    /* weight 0 takes no new connections */
    assert_int_equal(tg->n_targets, 3);
    assert_int_equal(tg->n_eligible, 2);
    {
        const struct tg_target *tried[3];
        int refused;
        tried[0] = tg_choose(tg, 0, tried, 0, &refused);
        tried[1] = tg_choose(tg, 0, tried, 1, &refused);
        assert_non_null(tried[0]);
        assert_non_null(tried[1]);
        assert_ptr_not_equal(tried[0], tried[1]);
        assert_null(tg_choose(tg, 0, tried, 2, &refused)); /* every eligible target tried */
        assert_int_equal(refused, 0);
        assert_int_equal(tried[0]->weight > 0 && tried[1]->weight > 0, 1);
    }
    dp_config_unref(cfg);
    freedp(dp);
}

/* A DNS-named target keeps its address across configurations (getaddrinfo
 * blocks the main thread): same group, id, host and port reuse it; another
 * port resolves afresh. */
static void test_resolve_reuse(void **state)
{
    char host[256], tgs1[512], tgs2[768];
    struct dp *dp = mkdp();
    struct dp_config *c1, *c2;
    const struct tg_target *a, *b, *n;

    (void)state;
    /* The machine's own name: resolved through getaddrinfo (/etc/hosts). */
    if (gethostname(host, sizeof(host)) != 0 || strchr(host, '"') != NULL) {
        freedp(dp);
        skip();
    }
    snprintf(tgs1, sizeof(tgs1),
             "{\"id\":\"tg-d\",\"targets\":[{\"id\":\"t1\",\"host\":\"%s\",\"port\":1001}]}", host);
    snprintf(tgs2, sizeof(tgs2),
             "{\"id\":\"tg-d\",\"targets\":[{\"id\":\"t1\",\"host\":\"%s\",\"port\":1001},"
             "{\"id\":\"t2\",\"host\":\"%s\",\"port\":1002}]}",
             host, host);
    c1 = build_ok(dp, snap(1, "", tgs1), NULL);
    a = &c1->tgs[0].targets[0];
    if (!a->resolved || a->resolved_at == 0) { /* the name does not resolve here */
        dp_config_unref(c1);
        freedp(dp);
        skip();
    }
    c2 = build_ok(dp, snap(2, "", tgs2), c1);
    b = &c2->tgs[0].targets[0];
    n = &c2->tgs[0].targets[1];
    assert_true(b->resolved);
    assert_true(b->resolved_at == a->resolved_at); /* reused, not looked up again */
    assert_int_equal(b->addrlen, a->addrlen);
    assert_memory_equal(&b->addr, &a->addr, a->addrlen);
    assert_true(n->resolved);
    assert_true(n->resolved_at >= a->resolved_at); /* a new target is looked up */
    dp_config_unref(c1);
    dp_config_unref(c2);
    freedp(dp);
}

static void test_socket_reuse(void **state)
{
    struct dp *dp = mkdp();
    int p1 = free_port(), p2 = free_port();
    char l[512];
    struct dp_config *c1, *c2, *c3;

    (void)state;
    snprintf(l, sizeof(l),
             "{\"id\":\"lsn-1\",\"bind\":\"127.0.0.1\",\"port\":%d,"
             "\"default_target_group_id\":\"tg-a\"}",
             p1);
    c1 = build_ok(dp, snap(1, l, TGS), NULL);
    /* Same address, other settings and id: same sockets. */
    snprintf(l, sizeof(l),
             "{\"id\":\"lsn-9\",\"bind\":\"127.0.0.1\",\"port\":%d,"
             "\"default_target_group_id\":\"tg-b\",\"idle_timeout_ms\":1000}",
             p1);
    c2 = build_ok(dp, snap(2, l, TGS), c1);
    assert_ptr_equal(c2->lsns[0].socks, c1->lsns[0].socks);
    assert_true(c2->lsns[0].idle_timeout == 1.0);
    /* Counters follow the id. */
    assert_ptr_not_equal(c2->lsns[0].st, c1->lsns[0].st);
    /* Another port: new sockets; the old ones close when no longer served. */
    snprintf(l, sizeof(l),
             "{\"id\":\"lsn-9\",\"bind\":\"127.0.0.1\",\"port\":%d,"
             "\"default_target_group_id\":\"tg-b\"}",
             p2);
    c3 = build_ok(dp, snap(3, l, TGS), c2);
    assert_ptr_not_equal(c3->lsns[0].socks, c2->lsns[0].socks);
    assert_ptr_equal(c3->lsns[0].st, c2->lsns[0].st);
    dp_config_close_unused(c2, c3);
    assert_int_equal(c2->lsns[0].socks->fds[0], -1);
    assert_true(c3->lsns[0].socks->fds[0] >= 0);
    {
        cJSON *f = dp_stats_frame(dp);
        char *txt;
        dp->cur = c3;
        cJSON_Delete(f);
        f = dp_stats_frame(dp);
        txt = cJSON_PrintUnformatted(f);
        assert_non_null(strstr(txt, "\"id\":\"lsn-9\""));
        assert_non_null(strstr(txt, "\"target_id\":\"t2\""));
        free(txt);
        cJSON_Delete(f);
        dp->cur = NULL;
    }
    dp_config_unref(c1);
    dp_config_unref(c2);
    dp_config_unref(c3);
    dp_stats_prune(dp);
    freedp(dp);
}

static void test_errors(void **state)
{
    struct dp *dp = mkdp();
    int p = free_port();
    char l[512];

    (void)state;
    snprintf(l, sizeof(l), "{\"id\":\"lsn-1\",\"port\":%d,\"default_target_group_id\":\"tg-x\"}",
             p);
    build_fails(dp, snap(1, l, TGS), "bad_snapshot");
    snprintf(l, sizeof(l),
             "{\"id\":\"lsn-1\",\"bind\":\"127.0.0.1\",\"port\":%d,\"default_target_group_id\":"
             "\"tg-a\"},"
             "{\"id\":\"lsn-2\",\"bind\":\"127.0.0.1\",\"port\":%d,\"default_target_group_id\":"
             "\"tg-a\"}",
             p, p);
    build_fails(dp, snap(1, l, TGS), "port_in_use");
    snprintf(l, sizeof(l),
             "{\"id\":\"lsn-1\",\"port\":\"443\",\"default_target_group_id\":\"tg-a\"}");
    build_fails(dp, snap(1, l, TGS), "bad_snapshot");
    snprintf(l, sizeof(l),
             "{\"id\":\"lsn-1\",\"bind\":\"example.com\",\"port\":%d,"
             "\"default_target_group_id\":\"tg-a\"}",
             p);
    build_fails(dp, snap(1, l, TGS), NULL);
    snprintf(l, sizeof(l),
             "{\"id\":\"lsn-1\",\"bind\":\"127.0.0.1\",\"port\":%d,\"protocol\":\"tls\","
             "\"default_target_group_id\":\"tg-a\"}",
             p);
    build_fails(dp, snap(1, l, TGS), "bad_snapshot");
    snprintf(l, sizeof(l),
             "{\"id\":\"lsn-1\",\"bind\":\"127.0.0.1\",\"port\":%d,\"protocol\":\"tls\","
             "\"default_target_group_id\":\"tg-a\",\"certificate_ids\":[\"cert-nope\"]}",
             p);
    build_fails(dp, snap(1, l, TGS), "bad_snapshot");
    snprintf(l, sizeof(l),
             "{\"id\":\"lsn-1\",\"bind\":\"127.0.0.1\",\"port\":%d,"
             "\"default_target_group_id\":\"tg-a\",\"sni_routes\":[{\"server_name\":\"a b\","
             "\"target_group_id\":\"tg-a\"}]}",
             p);
    build_fails(dp, snap(1, l, TGS), "invalid_server_name");
    build_fails(dp, snap(1, "", "{\"id\":\"tg-a\",\"targets\":{}}"), "bad_snapshot");
    build_fails(dp,
                snap(1, "",
                     "{\"id\":\"tg-a\",\"targets\":[{\"id\":\"t\",\"host\":\"h\","
                     "\"port\":1,\"weight\":5000}]}"),
                "bad_snapshot");
    build_fails(dp, snap(1, "", "{\"id\":\"tg-a\"},{\"id\":\"tg-a\"}"), "bad_snapshot");
    build_fails(dp, snap(-1, "", ""), "bad_snapshot");
    /* Version 0 is a fresh control plane's empty configuration. */
    dp_config_unref(build_ok(dp, snap(0, "", ""), NULL));
    {
        /* A certificate referenced but never sent. */
        cJSON *s = cJSON_Parse("{\"version\":1,\"certificates\":[{\"id\":\"cert-a\",\"version\":1,"
                               "\"sha256\":\"00\"}],\"target_groups\":[{\"id\":\"tg\"}],"
                               "\"listeners\":[{\"id\":\"l\",\"bind\":\"127.0.0.1\",\"port\":1,"
                               "\"protocol\":\"tls\",\"default_target_group_id\":\"tg\","
                               "\"certificate_ids\":[\"cert-a\"]}]}");
        build_fails(dp, s, "certificate_missing");
    }
    /* The port is still free: nothing half-built stayed bound. */
    {
        struct dp_config *cfg;
        snprintf(l, sizeof(l),
                 "{\"id\":\"lsn-1\",\"bind\":\"127.0.0.1\",\"port\":%d,"
                 "\"default_target_group_id\":\"tg-a\"}",
                 p);
        cfg = build_ok(dp, snap(1, l, TGS), NULL);
        dp_config_unref(cfg);
    }
    dp_stats_prune(dp);
    freedp(dp);
}

/* Many listeners and groups (the scale bench's shape without certificates):
 * a rebuild keeps every listener's sockets and finds every group by id.
 * PC_DPC_N raises the count for instruction-count measurements. */
static void test_many(void **state)
{
    const char *env = getenv("PC_DPC_N");
    size_t n = env != NULL ? (size_t)atoi(env) : 200, cap = n * 400 + 256, len;
    struct dp *dp = mkdp();
    char *l = malloc(cap), *t = malloc(cap), *doc = malloc(2 * cap + 256);
    struct dp_config *c1 = NULL, *c2 = NULL;
    int p = free_port();

    (void)state;
    assert_true(n > 0 && n < 60000);
    assert_non_null(l);
    assert_non_null(t);
    assert_non_null(doc);
    for (int pass = 0; pass < 2; pass++) {
        char *lp = l, *tp = t;

        for (size_t i = 0; i < n; i++) {
            /* Every listener its own loopback address, one port for all. */
            lp += sprintf(
                lp,
                "%s{\"id\":\"lsn-%05zu\",\"bind\":\"127.%zu.%zu.1\",\"port\":%d,"
                "\"default_target_group_id\":\"tg-%05zu\",\"sni_routes\":["
                "{\"server_name\":\"a%zu.example.com\",\"target_group_id\":\"tg-%05zu\"},"
                "{\"server_name\":\"*.w%zu.example.com\",\"target_group_id\":\"tg-%05zu\"}]}",
                i ? "," : "", i, 1 + i / 250, i % 250, p, n - 1 - i, i, i, i, (i + 1) % n);
            tp += sprintf(tp,
                          "%s{\"id\":\"tg-%05zu\",\"targets\":[{\"id\":\"t1\",\"host\":"
                          "\"127.0.0.1\",\"port\":%zu}]}",
                          i ? "," : "", i, 1000 + i);
        }
        len = (size_t)sprintf(doc,
                              "{\"type\":\"snapshot\",\"version\":%d,\"certificates\":[],"
                              "\"target_groups\":[%s],\"listeners\":[%s]}",
                              pass + 1, t, l);
        assert_true(len < 2 * cap + 256);
        if (pass == 0) {
            c1 = build_ok(dp, cJSON_Parse(doc), NULL);
        } else {
            c2 = build_ok(dp, cJSON_Parse(doc), c1);
        }
    }
    assert_int_equal(c2->n_lsns, n);
    for (size_t i = 0; i < n; i++) {
        char name[64];

        assert_ptr_equal(c2->lsns[i].socks, c1->lsns[i].socks);
        assert_string_equal(c2->lsns[i].default_tg->id, c2->tgs[n - 1 - i].id);
        snprintf(name, sizeof(name), "a%zu.example.com", i);
        assert_ptr_equal(sni_map_lookup(&c2->lsns[i].routes, name), &c2->tgs[i]);
        snprintf(name, sizeof(name), "x.w%zu.example.com", i);
        assert_ptr_equal(sni_map_lookup(&c2->lsns[i].routes, name), &c2->tgs[(i + 1) % n]);
    }
    /* Two listeners on one address: refused before any socket is bound. */
    {
        char two[512];
        struct dp_config *c3 = NULL;
        struct err e = {0};
        cJSON *j;

        snprintf(two, sizeof(two),
                 "{\"id\":\"lsn-x\",\"bind\":\"127.1.0.1\",\"port\":%d,"
                 "\"default_target_group_id\":\"tg-a\"},"
                 "{\"id\":\"lsn-y\",\"bind\":\"127.1.0.1\",\"port\":%d,"
                 "\"default_target_group_id\":\"tg-b\"}",
                 p, p);
        j = snap(3, two, TGS);
        assert_int_equal(dp_config_build(dp, j, c2, &c3, &e), -1);
        assert_null(c3);
        assert_string_equal(e.code, "port_in_use");
        assert_non_null(strstr(e.message, "lsn-x and lsn-y"));
        cJSON_Delete(j);
    }
    dp_config_close_unused(c1, c2);
    assert_true(c2->lsns[0].socks->fds[0] >= 0);
    dp_config_unref(c1);
    dp_config_unref(c2);
    dp_stats_prune(dp);
    free(l);
    free(t);
    free(doc);
    freedp(dp);
}

/* --- certificates: parsed once, served through slots, swapped in place --- */

/* A body in dp's cache as a `certificate` frame leaves it; 'sha' is any
 * unique string (dp->certs must stay sorted by it: callers add in order). */
static void add_body(struct dp *dp, const char *id, const char *sha, const struct tc_cert *c)
{
    struct dp_certbody *b = calloc(1, sizeof(*b));

    assert_non_null(b);
    snprintf(b->id, sizeof(b->id), "%s", id);
    snprintf(b->sha256, sizeof(b->sha256), "%s", sha);
    b->version = 1;
    b->cert = strdup(c->cert_pem);
    b->cert_len = strlen(b->cert);
    b->key = strdup(c->key_pem);
    b->key_len = strlen(b->key);
    dp->certs = realloc(dp->certs, (dp->n_certs + 1) * sizeof(*dp->certs));
    assert_non_null(dp->certs);
    dp->certs[dp->n_certs++] = b;
}

static void free_bodies(struct dp *dp)
{
    for (size_t i = 0; i < dp->n_certs; i++) {
        free(dp->certs[i]->cert);
        free(dp->certs[i]->key);
        dp_cert_unref(dp->certs[i]->served);
        free(dp->certs[i]);
    }
    free(dp->certs);
}

static struct dp_cert *served(const struct dp_slot *s)
{
    return atomic_load(&((struct dp_slot *)s)->cert);
}

static void test_certs_swap(void **state)
{
    struct tc_cert *ca = tc_ca("Swap CA");
    struct tc_cert *a1 = tc_leaf(ca, TC_KEY_P256, "DNS:a.test");
    struct tc_cert *a2 = tc_leaf(ca, TC_KEY_RSA, "DNS:a.test");
    struct tc_cert *a3 = tc_leaf(ca, TC_KEY_P256, "DNS:a.test,DNS:www.a.test");
    struct tc_cert *b1 = tc_leaf(ca, TC_KEY_P256, "DNS:b.test");
    struct dp *dp = mkdp();
    struct dp_config *cfg, *cfg2;
    struct err e = {0};
    char doc[2048];
    int p = free_port();
    const struct lsn_conf *lc;

    (void)state;
    assert_non_null(a1);
    assert_non_null(a2);
    assert_non_null(a3);
    assert_non_null(b1);
    add_body(dp, "cert-a", "sha-a1", a1);
    add_body(dp, "cert-a", "sha-a2", a2);
    add_body(dp, "cert-a", "sha-a3", a3);
    add_body(dp, "cert-b", "sha-b1", b1);
    snprintf(doc, sizeof(doc),
             "{\"version\":3,\"certificates\":[{\"id\":\"cert-b\",\"version\":1,"
             "\"sha256\":\"sha-b1\"},{\"id\":\"cert-a\",\"version\":1,\"sha256\":\"sha-a1\"}],"
             "\"target_groups\":[{\"id\":\"tg\"}],"
             "\"listeners\":[{\"id\":\"l1\",\"bind\":\"127.0.0.1\",\"port\":%d,"
             "\"protocol\":\"tls\",\"default_target_group_id\":\"tg\","
             "\"certificate_ids\":[\"cert-a\",\"cert-b\"]},"
             "{\"id\":\"l2\",\"bind\":\"127.0.0.1\",\"port\":%d,\"ssl_policy\":\"modern\","
             "\"protocol\":\"tls\",\"default_target_group_id\":\"tg\","
             "\"certificate_ids\":[\"cert-b\"]}]}",
             p, free_port());
    cfg = build_ok(dp, cJSON_Parse(doc), NULL);
    /* Two listeners, two policies, two certificates parsed once each. */
    assert_int_equal(cfg->n_slots, 2);
    assert_int_equal(cfg->n_served, 2);
    assert_string_equal(cfg->slots[0].id, "cert-a");
    lc = &cfg->lsns[0];
    assert_ptr_equal(lc->default_slot, &cfg->slots[0]);
    assert_ptr_equal(sni_map_lookup(&lc->certs, "b.test"), &cfg->slots[1]);
    assert_ptr_equal(cfg->lsns[1].default_slot, &cfg->slots[1]);
    assert_ptr_not_equal(lc->ctx, cfg->lsns[1].ctx);
    assert_ptr_equal(served(&cfg->slots[0]), dp->certs[0]->served);
    assert_null(dp->certs[0]->key); /* wiped once parsed */
    assert_null(dp->certs[0]->cert);
    assert_non_null(dp->certs[1]->key);
    assert_int_equal(served(&cfg->slots[1])->n_names, 1);
    assert_string_equal(served(&cfg->slots[1])->names[0], "b.test");

    /* A rebuild shares the parsed certificates (and the policy contexts). */
    cfg2 = build_ok(dp, cJSON_Parse(doc), cfg);
    assert_ptr_equal(served(&cfg2->slots[0]), served(&cfg->slots[0]));
    assert_ptr_equal(cfg2->lsns[0].ctx, lc->ctx);
    dp_config_close_unused(cfg, cfg2);
    dp_config_unref(cfg);
    cfg = cfg2;
    lc = &cfg->lsns[0];

    {
        /* Same names: swapped in place, the old one retired. */
        struct dp_swap sw = {"cert-a", "sha-a2"};
        struct dp_cert *before = served(&cfg->slots[0]);

        assert_int_equal(dp_config_swap(dp, cfg, &sw, 1, 4, &e), 1);
        assert_int_equal(cfg->version, 4);
        assert_ptr_equal(served(&cfg->slots[0]), dp->certs[1]->served);
        assert_int_equal(dp->n_retired, 1);
        assert_ptr_equal(dp->retired[0], before);
        dp_config_release_retired(dp);
        assert_int_equal(dp->n_retired, 0);
        /* The body cache still holds version 1. */
        assert_ptr_equal(dp->certs[0]->served, before);
    }
    {
        /* New names: a rebuild is needed, nothing changed. */
        struct dp_swap sw = {"cert-a", "sha-a3"};

        assert_int_equal(dp_config_swap(dp, cfg, &sw, 1, 5, &e), 0);
        assert_int_equal(cfg->version, 4);
        assert_ptr_equal(served(&cfg->slots[0]), dp->certs[1]->served);
        assert_int_equal(dp->n_retired, 0);
    }
    {
        /* Several at once: all or nothing. cert-b's body was never sent. */
        struct dp_swap sw[2] = {{"cert-a", "sha-a1"}, {"cert-b", "sha-nope"}};

        assert_int_equal(dp_config_swap(dp, cfg, sw, 2, 5, &e), -1);
        assert_string_equal(e.code, "certificate_missing");
        assert_int_equal(cfg->version, 4);
        assert_ptr_equal(served(&cfg->slots[0]), dp->certs[1]->served);
        err_clear(&e);
        /* An id no listener serves: rebuild. No change: only the version. */
        sw[0].id = "cert-zzz";
        assert_int_equal(dp_config_swap(dp, cfg, sw, 1, 5, &e), 0);
        assert_int_equal(dp_config_swap(dp, cfg, sw, 0, 5, &e), 1);
        assert_int_equal(cfg->version, 5);
    }
    dp_config_close_unused(cfg, NULL);
    dp_config_unref(cfg);

    {
        /* A certificate that is also a group's CA: its client context must
         * be rebuilt, so no swap. Its text went when a listener parsed it
         * (above): the client context is built from the parsed one. */
        snprintf(doc, sizeof(doc),
                 "{\"version\":6,\"certificates\":[{\"id\":\"cert-a\",\"version\":1,"
                 "\"sha256\":\"sha-a1\"}],\"target_groups\":[{\"id\":\"tg\",\"protocol\":\"tls\","
                 "\"tls\":{\"ca_certificate_id\":\"cert-a\"}}],"
                 "\"listeners\":[{\"id\":\"l1\",\"bind\":\"127.0.0.1\",\"port\":%d,"
                 "\"protocol\":\"tls\",\"default_target_group_id\":\"tg\","
                 "\"certificate_ids\":[\"cert-a\"]}]}",
                 free_port());
        struct dp_swap sw = {"cert-a", "sha-a2"};

        assert_null(dp->certs[0]->cert);
        cfg = build_ok(dp, cJSON_Parse(doc), NULL);
        assert_non_null(cfg->tgs[0].cli_ctx);
        assert_int_equal(dp_config_swap(dp, cfg, &sw, 1, 7, &e), 0);
        dp_config_close_unused(cfg, NULL);
        dp_config_unref(cfg);
    }
    dp_stats_prune(dp);
    free_bodies(dp);
    freedp(dp);
    tc_cert_free(ca);
    tc_cert_free(a1);
    tc_cert_free(a2);
    tc_cert_free(a3);
    tc_cert_free(b1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_targets),
        cmocka_unit_test(test_socket_reuse),
        cmocka_unit_test(test_resolve_reuse),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_certs_swap),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    cs_thread_cleanup();
    return rc;
}
