/* sni.c - ClientHello peeking for pass-through listeners, and the
 * server-name maps used both for certificate selection and SNI routes. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "sni.h"

#define SNI_REC_HDR 5u
#define SNI_REC_MAX 16384u /* largest TLSPlaintext fragment (RFC 8446 5.1) */

static inline size_t sni_be16(const uint8_t *p)
{
    return ((size_t)p[0] << 8) | p[1];
}

static inline size_t sni_be24(const uint8_t *p)
{
    return ((size_t)p[0] << 16) | ((size_t)p[1] << 8) | p[2];
}

/* A host name as RFC 6066 allows it: LDH labels and dots, no trailing dot
 * games. Underscores are tolerated, as real deployments use them. */
static int sni_name_ok(const uint8_t *p, size_t n)
{
    if (n == 0 || n > SNI_NAME_MAX || p[0] == '.' || p[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = p[i];
        if (!(isalnum(ch) || ch == '-' || ch == '.' || ch == '_'))
            return 0;
        if (ch == '.' && i > 0 && p[i - 1] == '.')
            return 0;
    }
    return 1;
}

/* Walk a complete ClientHello body (after the 4-byte handshake header). */
static enum sni_result sni_parse_hello(const uint8_t *p, size_t n, char *name)
{
    size_t off = 0, l, ext_end;

    if (n < 2 + 32 + 1)
        return SNI_MALFORMED;
    off = 2 + 32; /* legacy_version, random */
    l = p[off];
    if (l > 32 || off + 1 + l > n)
        return SNI_MALFORMED;
    off += 1 + l; /* session id */
    if (off + 2 > n)
        return SNI_MALFORMED;
    l = sni_be16(p + off);
    if (l < 2 || (l & 1) || off + 2 + l > n)
        return SNI_MALFORMED;
    off += 2 + l; /* cipher suites */
    if (off + 1 > n)
        return SNI_MALFORMED;
    l = p[off];
    if (l < 1 || off + 1 + l > n)
        return SNI_MALFORMED;
    off += 1 + l; /* compression methods */
    if (off == n)
        return SNI_NONE; /* no extensions at all (SSLv3-style hello) */
    if (off + 2 > n)
        return SNI_MALFORMED;
    l = sni_be16(p + off);
    off += 2;
    if (off + l != n)
        return SNI_MALFORMED;
    ext_end = off + l;
    while (off < ext_end) {
        size_t type, elen;

        if (off + 4 > ext_end)
            return SNI_MALFORMED;
        type = sni_be16(p + off);
        elen = sni_be16(p + off + 2);
        off += 4;
        if (off + elen > ext_end)
            return SNI_MALFORMED;
        if (type == 0) { /* server_name */
            size_t lo = off, list_end;

            if (elen < 2 || sni_be16(p + lo) != elen - 2)
                return SNI_MALFORMED;
            lo += 2;
            list_end = off + elen;
            while (lo < list_end) {
                size_t nlen;
                uint8_t ntype;

                if (lo + 3 > list_end)
                    return SNI_MALFORMED;
                ntype = p[lo];
                nlen = sni_be16(p + lo + 1);
                lo += 3;
                if (lo + nlen > list_end)
                    return SNI_MALFORMED;
                if (ntype == 0) {
                    if (!sni_name_ok(p + lo, nlen))
                        return SNI_NONE;
                    for (size_t i = 0; i < nlen; i++)
                        name[i] = (char)tolower(p[lo + i]);
                    name[nlen] = '\0';
                    return SNI_FOUND;
                }
                lo += nlen;
            }
            return SNI_NONE;
        }
        off += elen;
    }
    return SNI_NONE;
}

enum sni_result sni_parse(const uint8_t *buf, size_t len, char *name, size_t *need)
{
    /* The handshake message reassembled from its records. */
    uint8_t hs[SNI_HELLO_MAX + 4];
    size_t off = 0, hlen = 0, htotal = 0; /* htotal 0: not known yet */
    size_t dummy;

    if (need == NULL)
        need = &dummy;
    *need = len + 1;
    if (len == 0)
        return SNI_NEED_MORE;
    if (buf[0] != 0x16)
        return SNI_NOT_TLS;
    if (len >= 2 && buf[1] != 3)
        return SNI_NOT_TLS;
    for (;;) {
        size_t rlen, avail, pos;

        if (len - off < SNI_REC_HDR) {
            *need = off + SNI_REC_HDR;
            return SNI_NEED_MORE;
        }
        if (buf[off] != 0x16 || buf[off + 1] != 3)
            return off == 0 ? SNI_NOT_TLS : SNI_MALFORMED;
        rlen = sni_be16(buf + off + 3);
        if (rlen == 0 || rlen > SNI_REC_MAX)
            return off == 0 ? SNI_NOT_TLS : SNI_MALFORMED;
        pos = off + SNI_REC_HDR;
        avail = len - pos < rlen ? len - pos : rlen;
        for (size_t used = 0; used < avail;) {
            size_t want = htotal ? htotal - hlen : 4 - hlen;
            size_t take = avail - used < want ? avail - used : want;

            memcpy(hs + hlen, buf + pos + used, take);
            hlen += take;
            used += take;
            if (htotal == 0 && hlen == 4) {
                if (hs[0] != 1) /* client_hello */
                    return off == 0 ? SNI_NOT_TLS : SNI_MALFORMED;
                htotal = 4 + sni_be24(hs + 1);
                if (htotal - 4 > SNI_HELLO_MAX)
                    return SNI_TOO_LARGE;
            }
            if (htotal != 0 && hlen == htotal)
                return sni_parse_hello(hs + 4, htotal - 4, name);
        }
        if (avail < rlen) {
            size_t missing = htotal ? htotal - hlen : 4 - hlen;
            *need = len + (rlen - avail < missing ? rlen - avail : missing);
            return SNI_NEED_MORE;
        }
        off = pos + rlen;
    }
}

const char *sni_result_str(enum sni_result r)
{
    switch (r) {
    case SNI_FOUND:
        return "found";
    case SNI_NEED_MORE:
        return "need_more";
    case SNI_NONE:
        return "no_sni";
    case SNI_NOT_TLS:
        return "not_tls";
    case SNI_MALFORMED:
        return "malformed";
    case SNI_TOO_LARGE:
        return "too_large";
    }
    return "?";
}

/* A block of names; names never move, so entries point into blocks. */
struct sni_blk {
    struct sni_blk *next;
    size_t used, cap;
    char data[];
};

#define SNI_BLK_SIZE 8192u

static char *sni_blk_alloc(struct sni_map *m, size_t len)
{
    struct sni_blk *b = m->blks;

    if (b == NULL || b->cap - b->used < len) {
        /* Small maps (a listener with one certificate) stay small. */
        size_t cap = b == NULL ? 256 : b->cap < SNI_BLK_SIZE ? 2 * b->cap : SNI_BLK_SIZE;

        if (cap < len)
            cap = len;

        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = m->blks;
        m->blks = b;
    }
    b->used += len;
    return b->data + b->used - len;
}

static int sni_push(struct sni_map *m, struct sni_entry **arr, size_t *n, size_t *cap,
                    const char *name, size_t len, void *val)
{
    char *s;

    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 8;
        struct sni_entry *na = realloc(*arr, nc * sizeof(*na));

        if (na == NULL)
            return -1;
        *arr = na;
        *cap = nc;
    }
    s = sni_blk_alloc(m, len + 1);
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < len; i++)
        s[i] = (char)tolower((unsigned char)name[i]);
    s[len] = '\0';
    (*arr)[*n].name = s;
    (*arr)[*n].val = val;
    (*n)++;
    return 0;
}

int sni_map_add(struct sni_map *m, const char *name, void *val, struct err *err)
{
    size_t len = strlen(name);

    if (len > 2 && name[0] == '*' && name[1] == '.') {
        if (!sni_name_ok((const uint8_t *)name + 2, len - 2))
            return err_set(err, ERR_INVALID, "invalid_server_name", "server_name",
                           "bad wildcard server name '%.64s'", name);
        if (sni_push(m, &m->wild, &m->n_wild, &m->cap_wild, name + 2, len - 2, val) < 0)
            return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
        return 0;
    }
    if (!sni_name_ok((const uint8_t *)name, len))
        return err_set(err, ERR_INVALID, "invalid_server_name", "server_name",
                       "bad server name '%.64s'", name);
    if (sni_push(m, &m->exact, &m->n_exact, &m->cap_exact, name, len, val) < 0)
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    return 0;
}

/* An entry tagged with its insertion order, to sort stably with qsort. */
struct sni_tag {
    struct sni_entry e;
    size_t idx;
};

static int sni_tag_cmp(const void *a, const void *b)
{
    const struct sni_tag *x = a, *y = b;
    int c = strcmp(x->e.name, y->e.name);

    if (c != 0)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int sni_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct sni_entry *)a)->name, ((const struct sni_entry *)b)->name);
}

/* Sort by name and drop later duplicates, so the first mapping wins. */
static void sni_sort_dedup(struct sni_entry *arr, size_t *n)
{
    struct sni_tag *tmp;
    size_t out = 0;

    if (*n < 2)
        return;
    tmp = malloc(*n * sizeof(*tmp));
    if (tmp == NULL) {
        /* Out of memory: still sorted, only the winner among duplicates
         * is unspecified. */
        qsort(arr, *n, sizeof(*arr), sni_entry_cmp);
        return;
    }
    for (size_t i = 0; i < *n; i++) {
        tmp[i].e = arr[i];
        tmp[i].idx = i;
    }
    qsort(tmp, *n, sizeof(*tmp), sni_tag_cmp);
    for (size_t i = 0; i < *n; i++) {
        if (out > 0 && strcmp(arr[out - 1].name, tmp[i].e.name) == 0)
            continue; /* its name stays in the map's blocks */
        arr[out++] = tmp[i].e;
    }
    free(tmp);
    *n = out;
}

void sni_map_seal(struct sni_map *m)
{
    sni_sort_dedup(m->exact, &m->n_exact);
    sni_sort_dedup(m->wild, &m->n_wild);
}

static void *sni_find(const struct sni_entry *arr, size_t n, const char *name)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, arr[mid].name);

        if (c == 0)
            return arr[mid].val;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

void *sni_map_lookup(const struct sni_map *m, const char *name)
{
    const char *dot;
    void *v;

    if (name == NULL || name[0] == '\0')
        return NULL;
    v = sni_find(m->exact, m->n_exact, name);
    if (v != NULL)
        return v;
    /* "*.example.com" covers exactly one label: "a.example.com". */
    dot = strchr(name, '.');
    if (dot == NULL || dot == name || dot[1] == '\0')
        return NULL;
    return sni_find(m->wild, m->n_wild, dot + 1);
}

void sni_map_free(struct sni_map *m)
{
    while (m->blks != NULL) {
        struct sni_blk *next = m->blks->next;

        free(m->blks);
        m->blks = next;
    }
    free(m->exact);
    free(m->wild);
    memset(m, 0, sizeof(*m));
}
