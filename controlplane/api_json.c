/* api_json.c - strict JSON input and the syntactic rules of resources. */
#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_json.h"
#include "err.h"

/* Largest integer a double holds exactly. */
#define API_MAX_SAFE_INT 9007199254740992.0

#define MAX_TARGETS 1000
#define MAX_ROUTES 1000
#define MAX_ALPN 8
#define MAX_LSN_CERTS 1000
#define MAX_DNS_NAME 253

/* Refuse what cJSON would accept but we must not: nesting deeper than
 * API_JSON_MAX_DEPTH, and \u0000 escapes (cJSON would cut the string there,
 * so "a\u0000b" would silently become "a"). */
static int api_json_prescan(const char *s, size_t n, struct err *err)
{
    int depth = 0, in_str = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (in_str) {
            if (c == '\\' && i + 1 < n) {
                if (s[i + 1] == 'u' && i + 5 < n && s[i + 2] == '0' && s[i + 3] == '0' &&
                    s[i + 4] == '0' && s[i + 5] == '0')
                    return err_set(err, ERR_INVALID, "invalid_json", NULL,
                                   "strings must not contain NUL characters");
                i++;
            } else if (c == '"') {
                in_str = 0;
            } else if (c == '\0') {
                return err_set(err, ERR_INVALID, "invalid_json", NULL,
                               "strings must not contain NUL characters");
            }
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > API_JSON_MAX_DEPTH)
                return err_set(err, ERR_INVALID, "invalid_json", NULL,
                               "JSON nested deeper than %d levels", API_JSON_MAX_DEPTH);
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 0;
}

/* cJSON keeps every member of an object, duplicates included: refuse them. */
static int api_json_dups(const cJSON *node, struct err *err)
{
    const cJSON *a, *b;

    if (cJSON_IsObject(node)) {
        for (a = node->child; a != NULL; a = a->next)
            for (b = a->next; b != NULL; b = b->next)
                if (strcmp(a->string, b->string) == 0)
                    return err_set(err, ERR_INVALID, "duplicate_field", NULL,
                                   "member \"%.64s\" appears more than once", a->string);
    }
    if (cJSON_IsObject(node) || cJSON_IsArray(node))
        for (a = node->child; a != NULL; a = a->next)
            if (api_json_dups(a, err) < 0)
                return -1;
    return 0;
}

int api_json_parse(const char *body, size_t len, cJSON **out, struct err *err)
{
    const char *end = NULL;
    cJSON *j;

    *out = NULL;
    if (len == 0)
        return err_set(err, ERR_INVALID, "invalid_json", NULL, "a JSON body is required");
    if (api_json_prescan(body, len, err) < 0)
        return -1;
    j = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (j == NULL)
        return err_set(err, ERR_INVALID, "invalid_json", NULL,
                       "body is not valid JSON (near byte %zu)",
                       end && end >= body ? (size_t)(end - body) : (size_t)0);
    /* Only whitespace may follow the value. */
    for (; end != NULL && end < body + len; end++)
        if (!isspace((unsigned char)*end)) {
            cJSON_Delete(j);
            return err_set(err, ERR_INVALID, "invalid_json", NULL,
                           "trailing data after the JSON value");
        }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return err_set(err, ERR_INVALID, "invalid_json", NULL, "body must be a JSON object");
    }
    if (api_json_dups(j, err) < 0) {
        cJSON_Delete(j);
        return -1;
    }
    *out = j;
    return 0;
}

/* Set vc->field to "path.key" (or "key") and return it. */
static const char *fpath(struct api_vctx *vc, const char *path, const char *key)
{
    char tmp[sizeof(vc->field)];

    if (path != NULL && *path)
        snprintf(tmp, sizeof(tmp), "%s.%s", path, key);
    else
        snprintf(tmp, sizeof(tmp), "%s", key);
    memcpy(vc->field, tmp, sizeof(tmp));
    return vc->field;
}

int api_json_only(const cJSON *obj, const char *const *allowed, const char *path,
                  struct api_vctx *vc, struct err *err)
{
    const cJSON *m;

    for (m = obj->child; m != NULL; m = m->next) {
        int ok = 0;

        for (const char *const *a = allowed; *a; a++)
            if (strcmp(m->string, *a) == 0)
                ok = 1;
        if (!ok) {
            char name[80];

            /* Show the key safely: printable ASCII only. */
            snprintf(name, sizeof(name), "%.64s", m->string);
            for (char *p = name; *p; p++)
                if (!isprint((unsigned char)*p))
                    *p = '?';
            return err_set(err, ERR_INVALID, "unknown_field", fpath(vc, path, name),
                           "unknown field \"%s\"", name);
        }
    }
    return 0;
}

static const cJSON *jget(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

    return cJSON_IsNull(v) ? NULL : v;
}

/* An integer member. Absent or null: 'def', or missing_field when 'def' is
 * REQ. */
#define REQ LLONG_MIN
static int get_int(const cJSON *o, const char *k, long long min, long long max, long long def,
                   long long *out, const char *path, struct api_vctx *vc, struct err *err)
{
    const cJSON *v = jget(o, k);
    double d;

    if (v == NULL) {
        if (def == REQ)
            return err_set(err, ERR_INVALID, "missing_field", fpath(vc, path, k),
                           "field \"%s\" is required", k);
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v))
        return err_set(err, ERR_INVALID, "invalid_type", fpath(vc, path, k),
                       "\"%s\" must be an integer", k);
    d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || fabs(d) > API_MAX_SAFE_INT)
        return err_set(err, ERR_INVALID, "invalid_type", fpath(vc, path, k),
                       "\"%s\" must be an integer", k);
    if (d < (double)min || d > (double)max)
        return err_set(err, ERR_UNPROCESSABLE, "out_of_range", fpath(vc, path, k),
                       "\"%s\" must be between %lld and %lld", k, min, max);
    *out = (long long)d;
    return 0;
}

/* A string member of 'minlen'..'maxlen' bytes. Absent or null: '*out' =
 * NULL, or missing_field when 'required'. */
static int get_str(const cJSON *o, const char *k, int required, size_t minlen, size_t maxlen,
                   const char **out, const char *path, struct api_vctx *vc, struct err *err)
{
    const cJSON *v = jget(o, k);
    size_t n;

    *out = NULL;
    if (v == NULL) {
        if (required)
            return err_set(err, ERR_INVALID, "missing_field", fpath(vc, path, k),
                           "field \"%s\" is required", k);
        return 0;
    }
    if (!cJSON_IsString(v))
        return err_set(err, ERR_INVALID, "invalid_type", fpath(vc, path, k),
                       "\"%s\" must be a string", k);
    n = strlen(v->valuestring);
    if (n < minlen || n > maxlen)
        return err_set(err, ERR_INVALID, "invalid_value", fpath(vc, path, k),
                       "\"%s\" must be %zu to %zu bytes long", k, minlen, maxlen);
    *out = v->valuestring;
    return 0;
}

/* A string member that must be one of 'vals' (NULL-terminated); 'def' when absent. */
static int get_enum(const cJSON *o, const char *k, const char *const *vals, const char *def,
                    const char **out, const char *path, struct api_vctx *vc, struct err *err)
{
    const char *s;

    if (get_str(o, k, def == NULL, 0, 64, &s, path, vc, err) < 0)
        return -1;
    if (s == NULL) {
        *out = def;
        return 0;
    }
    for (const char *const *v = vals; *v; v++)
        if (strcmp(s, *v) == 0) {
            *out = *v;
            return 0;
        }
    return err_set(err, ERR_INVALID, "invalid_value", fpath(vc, path, k),
                   "\"%s\" has an unknown value", k);
}

static int get_bool(const cJSON *o, const char *k, int def, int *out, const char *path,
                    struct api_vctx *vc, struct err *err)
{
    const cJSON *v = jget(o, k);

    if (v == NULL) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v))
        return err_set(err, ERR_INVALID, "invalid_type", fpath(vc, path, k),
                       "\"%s\" must be true or false", k);
    *out = cJSON_IsTrue(v);
    return 0;
}

/* An array member ('*out' NULL when absent or null). */
static int get_arr(const cJSON *o, const char *k, int required, int maxn, const cJSON **out,
                   const char *path, struct api_vctx *vc, struct err *err)
{
    const cJSON *v = jget(o, k);

    *out = NULL;
    if (v == NULL) {
        if (required)
            return err_set(err, ERR_INVALID, "missing_field", fpath(vc, path, k),
                           "field \"%s\" is required", k);
        return 0;
    }
    if (!cJSON_IsArray(v))
        return err_set(err, ERR_INVALID, "invalid_type", fpath(vc, path, k),
                       "\"%s\" must be an array", k);
    if (cJSON_GetArraySize(v) > maxn)
        return err_set(err, ERR_INVALID, "invalid_value", fpath(vc, path, k),
                       "\"%s\" has more than %d items", k, maxn);
    *out = v;
    return 0;
}

static int get_obj(const cJSON *o, const char *k, const cJSON **out, const char *path,
                   struct api_vctx *vc, struct err *err)
{
    const cJSON *v = jget(o, k);

    *out = v;
    if (v != NULL && !cJSON_IsObject(v))
        return err_set(err, ERR_INVALID, "invalid_type", fpath(vc, path, k),
                       "\"%s\" must be an object or null", k);
    return 0;
}

int api_name_valid(const char *name, const char *prefix)
{
    size_t n = strlen(name);

    if (n < 1 || n > 64 || !isalnum((unsigned char)name[0]))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];

        if (!(isalnum(c) || c == '.' || c == '_' || c == '-') || c > 0x7f)
            return 0;
    }
    return strncmp(name, prefix, strlen(prefix)) != 0;
}

static int get_name(const cJSON *o, const char *prefix, const char **out, struct api_vctx *vc,
                    struct err *err)
{
    if (get_str(o, "name", 1, 1, 64, out, NULL, vc, err) < 0)
        return -1;
    if (!api_name_valid(*out, prefix))
        return err_set(err, ERR_INVALID, "invalid_value", fpath(vc, NULL, "name"),
                       "name must be 1 to 64 characters of A-Z a-z 0-9 . _ -, start with a "
                       "letter or digit, and not start with \"%s\"",
                       prefix);
    return 0;
}

/* Lower-case DNS name check: labels of 1..63 [a-z0-9-], not starting or
 * ending with '-'; 'wild' allows one leading "*." label. Writes the
 * lower-cased form into 'buf'. */
static int dns_name_ok(const char *s, int wild, char *buf, size_t bufsz)
{
    size_t n = strlen(s), lab = 0;
    const char *p = s;

    if (n == 0 || n > MAX_DNS_NAME || n >= bufsz)
        return 0;
    for (size_t i = 0; i <= n; i++)
        buf[i] = (char)tolower((unsigned char)s[i]);
    p = buf;
    if (wild && p[0] == '*') {
        if (p[1] != '.' || p[2] == '\0')
            return 0;
        p += 2;
    }
    for (const char *q = p;; q++) {
        if (*q == '.' || *q == '\0') {
            if (lab == 0 || lab > 63 || q[-1] == '-' || q[-lab] == '-')
                return 0;
            lab = 0;
            if (*q == '\0')
                break;
            continue;
        }
        if (!(isalnum((unsigned char)*q) || *q == '-') || (unsigned char)*q > 0x7f)
            return 0;
        lab++;
    }
    return 1;
}

/* Canonical text of a numeric address, or 0 when 's' is not one. */
static int ip_canon(const char *s, char *buf, size_t n)
{
    unsigned char a[16];

    if (inet_pton(AF_INET, s, a) == 1)
        return inet_ntop(AF_INET, a, buf, (socklen_t)n) != NULL;
    if (inet_pton(AF_INET6, s, a) == 1)
        return inet_ntop(AF_INET6, a, buf, (socklen_t)n) != NULL;
    return 0;
}

static int target_parse(const cJSON *t, const char *path, cJSON **out, struct api_vctx *vc,
                        struct err *err)
{
    static const char *const allowed[] = {"host", "port", "weight", NULL};
    const char *host;
    char buf[MAX_DNS_NAME + 2];
    long long port, weight;
    cJSON *o;

    if (!cJSON_IsObject(t))
        return err_set(err, ERR_INVALID, "invalid_type", fpath(vc, NULL, path),
                       "a target must be an object");
    if (api_json_only(t, allowed, path, vc, err) < 0 ||
        get_str(t, "host", 1, 1, MAX_DNS_NAME, &host, path, vc, err) < 0 ||
        get_int(t, "port", 1, 65535, REQ, &port, path, vc, err) < 0 ||
        get_int(t, "weight", 0, 1000, 1, &weight, path, vc, err) < 0)
        return -1;
    if (!ip_canon(host, buf, sizeof(buf)) && !dns_name_ok(host, 0, buf, sizeof(buf)))
        return err_set(err, ERR_INVALID, "invalid_value", fpath(vc, path, "host"),
                       "host must be a numeric IPv4/IPv6 address or a DNS name");
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "host", buf);
    cJSON_AddNumberToObject(o, "port", (double)port);
    cJSON_AddNumberToObject(o, "weight", (double)weight);
    *out = o;
    return 0;
}

/* Parse an array of targets into 'arr', refusing duplicates (host, port). */
static int targets_into(const cJSON *in, const char *name, cJSON *arr, struct api_vctx *vc,
                        struct err *err)
{
    const cJSON *t;
    char path[48];
    int i = 0;

    cJSON_ArrayForEach(t, in)
    {
        cJSON *o = NULL, *x;

        snprintf(path, sizeof(path), "%s[%d]", name, i++);
        if (target_parse(t, path, &o, vc, err) < 0)
            return -1;
        cJSON_ArrayForEach(x, arr)
        {
            if (strcmp(cJSON_GetObjectItem(x, "host")->valuestring,
                       cJSON_GetObjectItem(o, "host")->valuestring) == 0 &&
                cJSON_GetObjectItem(x, "port")->valuedouble ==
                    cJSON_GetObjectItem(o, "port")->valuedouble) {
                cJSON_Delete(o);
                return err_set(err, ERR_UNPROCESSABLE, "duplicate_value", fpath(vc, NULL, path),
                               "the same host and port appear twice");
            }
        }
        cJSON_AddItemToArray(arr, o);
    }
    return 0;
}

static int hc_parse(const cJSON *h, cJSON **out, struct api_vctx *vc, struct err *err)
{
    static const char *const allowed[] = {"protocol",
                                          "port",
                                          "path",
                                          "interval_ms",
                                          "timeout_ms",
                                          "healthy_threshold",
                                          "unhealthy_threshold",
                                          "fail_open",
                                          "proxy_protocol",
                                          NULL};
    static const char *const protos[] = {"tcp", "http", "tls", NULL};
    static const char *const pp[] = {"v2", NULL};
    const char *proto, *path, *ppv;
    long long port, interval, timeout, ht, ut;
    int fail_open;
    cJSON *o;

    if (api_json_only(h, allowed, "health_check", vc, err) < 0 ||
        get_enum(h, "protocol", protos, NULL, &proto, "health_check", vc, err) < 0 ||
        get_int(h, "port", 0, 65535, 0, &port, "health_check", vc, err) < 0 ||
        get_str(h, "path", 0, 1, 1024, &path, "health_check", vc, err) < 0 ||
        get_int(h, "interval_ms", 100, 300000, 5000, &interval, "health_check", vc, err) < 0 ||
        get_int(h, "timeout_ms", 50, 60000, -1, &timeout, "health_check", vc, err) < 0 ||
        get_int(h, "healthy_threshold", 1, 10, 3, &ht, "health_check", vc, err) < 0 ||
        get_int(h, "unhealthy_threshold", 1, 10, 3, &ut, "health_check", vc, err) < 0 ||
        get_bool(h, "fail_open", 1, &fail_open, "health_check", vc, err) < 0 ||
        get_enum(h, "proxy_protocol", pp, "", &ppv, "health_check", vc, err) < 0)
        return -1;
    /* Not sent: 2 s, within the interval (the caller set no timeout to clash). */
    if (timeout < 0)
        timeout = interval < 2000 ? interval : 2000;
    /* GET shows "/" for every check: sending it back is no error. */
    if (path != NULL && strcmp(proto, "http") != 0 && strcmp(path, "/") == 0)
        path = NULL;
    if (path != NULL) {
        if (strcmp(proto, "http") != 0)
            return err_set(err, ERR_UNPROCESSABLE, "invalid_combination",
                           fpath(vc, "health_check", "path"),
                           "path is only for http health checks");
        if (path[0] != '/')
            return err_set(err, ERR_INVALID, "invalid_value", fpath(vc, "health_check", "path"),
                           "path must start with /");
        for (const char *p = path; *p; p++)
            if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
                return err_set(err, ERR_INVALID, "invalid_value", fpath(vc, "health_check", "path"),
                               "path must be printable ASCII without spaces");
    }
    if (timeout > interval)
        return err_set(err, ERR_UNPROCESSABLE, "invalid_combination",
                       fpath(vc, "health_check", "timeout_ms"),
                       "timeout_ms must not exceed interval_ms");
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "protocol", proto);
    cJSON_AddNumberToObject(o, "port", (double)port);
    cJSON_AddStringToObject(o, "path", path ? path : "/");
    cJSON_AddNumberToObject(o, "interval_ms", (double)interval);
    cJSON_AddNumberToObject(o, "timeout_ms", (double)timeout);
    cJSON_AddNumberToObject(o, "healthy_threshold", (double)ht);
    cJSON_AddNumberToObject(o, "unhealthy_threshold", (double)ut);
    cJSON_AddBoolToObject(o, "fail_open", fail_open);
    if (*ppv)
        cJSON_AddStringToObject(o, "proxy_protocol", ppv);
    else
        cJSON_AddNullToObject(o, "proxy_protocol");
    *out = o;
    return 0;
}

int api_tg_parse(const cJSON *in, cJSON **out, struct api_vctx *vc, struct err *err)
{
    static const char *const allowed[] = {
        "name",           "protocol",     "targets",
        "algorithm",      "health_check", "deregistration_delay_s",
        "proxy_protocol", "tls",          NULL};
    static const char *const protos[] = {"tcp", "tls", NULL};
    static const char *const algos[] = {"round_robin", "least_conn", NULL};
    static const char *const pp[] = {"v2", NULL};
    static const char *const tls_allowed[] = {"verify", "server_name", "ca_certificate_id", NULL};
    const char *name, *proto, *algo, *ppv, *sn = NULL, *ca = NULL;
    const cJSON *targets, *hc, *tls;
    long long dereg;
    int verify = 1;
    char snbuf[MAX_DNS_NAME + 2];
    cJSON *o = NULL, *arr, *h = NULL, *t;

    *out = NULL;
    if (api_json_only(in, allowed, NULL, vc, err) < 0 || get_name(in, "tg-", &name, vc, err) < 0 ||
        get_enum(in, "protocol", protos, NULL, &proto, NULL, vc, err) < 0 ||
        get_arr(in, "targets", 0, MAX_TARGETS, &targets, NULL, vc, err) < 0 ||
        get_enum(in, "algorithm", algos, "round_robin", &algo, NULL, vc, err) < 0 ||
        get_obj(in, "health_check", &hc, NULL, vc, err) < 0 ||
        get_int(in, "deregistration_delay_s", 0, 3600, 300, &dereg, NULL, vc, err) < 0 ||
        get_enum(in, "proxy_protocol", pp, "", &ppv, NULL, vc, err) < 0 ||
        get_obj(in, "tls", &tls, NULL, vc, err) < 0)
        return -1;
    if (tls != NULL) {
        if (strcmp(proto, "tls") != 0)
            return err_set(err, ERR_UNPROCESSABLE, "invalid_combination", fpath(vc, NULL, "tls"),
                           "tls settings need protocol \"tls\"");
        if (api_json_only(tls, tls_allowed, "tls", vc, err) < 0 ||
            get_bool(tls, "verify", 1, &verify, "tls", vc, err) < 0 ||
            get_str(tls, "server_name", 0, 1, MAX_DNS_NAME, &sn, "tls", vc, err) < 0 ||
            get_str(tls, "ca_certificate_id", 0, 1, 64, &ca, "tls", vc, err) < 0)
            return -1;
        if (sn != NULL && !dns_name_ok(sn, 0, snbuf, sizeof(snbuf)))
            return err_set(err, ERR_INVALID, "invalid_value", fpath(vc, "tls", "server_name"),
                           "server_name must be a DNS name");
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "protocol", proto);
    cJSON_AddStringToObject(o, "algorithm", algo);
    arr = cJSON_AddArrayToObject(o, "targets");
    if (targets != NULL && targets_into(targets, "targets", arr, vc, err) < 0)
        goto fail;
    if (hc != NULL) {
        if (hc_parse(hc, &h, vc, err) < 0)
            goto fail;
        cJSON_AddItemToObject(o, "health_check", h);
    } else {
        cJSON_AddNullToObject(o, "health_check");
    }
    cJSON_AddNumberToObject(o, "deregistration_delay_s", (double)dereg);
    if (*ppv)
        cJSON_AddStringToObject(o, "proxy_protocol", ppv);
    else
        cJSON_AddNullToObject(o, "proxy_protocol");
    if (strcmp(proto, "tls") == 0) {
        t = cJSON_AddObjectToObject(o, "tls");
        cJSON_AddBoolToObject(t, "verify", verify);
        if (sn)
            cJSON_AddStringToObject(t, "server_name", snbuf);
        else
            cJSON_AddNullToObject(t, "server_name");
        if (ca)
            cJSON_AddStringToObject(t, "ca_certificate_id", ca);
        else
            cJSON_AddNullToObject(t, "ca_certificate_id");
    } else {
        cJSON_AddNullToObject(o, "tls");
    }
    *out = o;
    return 0;
fail:
    cJSON_Delete(o);
    return -1;
}

int api_targets_parse(const cJSON *in, cJSON **out, struct api_vctx *vc, struct err *err)
{
    static const char *const allowed[] = {"targets", NULL};
    const cJSON *targets;
    cJSON *arr = cJSON_CreateArray(), *o = NULL;

    *out = NULL;
    if (cJSON_GetObjectItemCaseSensitive(in, "targets") != NULL) {
        if (api_json_only(in, allowed, NULL, vc, err) < 0 ||
            get_arr(in, "targets", 1, MAX_TARGETS, &targets, NULL, vc, err) < 0 ||
            targets_into(targets, "targets", arr, vc, err) < 0)
            goto fail;
        if (cJSON_GetArraySize(arr) == 0) {
            err_set(err, ERR_INVALID, "invalid_value", fpath(vc, NULL, "targets"),
                    "targets must not be empty");
            goto fail;
        }
    } else {
        if (target_parse(in, "", &o, vc, err) < 0)
            goto fail;
        cJSON_AddItemToArray(arr, o);
    }
    *out = arr;
    return 0;
fail:
    cJSON_Delete(arr);
    return -1;
}

int api_lsn_parse(const cJSON *in, cJSON **out, struct api_vctx *vc, struct err *err)
{
    static const char *const allowed[] = {"name",
                                          "bind",
                                          "port",
                                          "protocol",
                                          "default_target_group_id",
                                          "certificate_ids",
                                          "ssl_policy",
                                          "alpn",
                                          "sni_routes",
                                          "max_connections",
                                          "handshake_timeout_ms",
                                          "connect_timeout_ms",
                                          "idle_timeout_ms",
                                          NULL};
    static const char *const protos[] = {"tls", "tcp", NULL};
    static const char *const policies[] = {"modern", "intermediate", "compat", NULL};
    static const char *const route_allowed[] = {"server_name", "target_group_id", NULL};
    const char *name, *bind, *proto, *dtg, *policy;
    const cJSON *certs, *alpn, *routes, *x;
    long long port, maxc, hto, cto, ito;
    char bindbuf[64], path[48], snbuf[MAX_DNS_NAME + 2];
    cJSON *o = NULL, *arr, *y;
    int i;

    *out = NULL;
    if (api_json_only(in, allowed, NULL, vc, err) < 0 || get_name(in, "lsn-", &name, vc, err) < 0 ||
        get_str(in, "bind", 0, 1, 63, &bind, NULL, vc, err) < 0 ||
        get_int(in, "port", 1, 65535, REQ, &port, NULL, vc, err) < 0 ||
        get_enum(in, "protocol", protos, NULL, &proto, NULL, vc, err) < 0 ||
        get_str(in, "default_target_group_id", 1, 1, 64, &dtg, NULL, vc, err) < 0 ||
        get_arr(in, "certificate_ids", 0, MAX_LSN_CERTS, &certs, NULL, vc, err) < 0 ||
        get_enum(in, "ssl_policy", policies, "intermediate", &policy, NULL, vc, err) < 0 ||
        get_arr(in, "alpn", 0, MAX_ALPN, &alpn, NULL, vc, err) < 0 ||
        get_arr(in, "sni_routes", 0, MAX_ROUTES, &routes, NULL, vc, err) < 0 ||
        get_int(in, "max_connections", 1, 1000000, 10000, &maxc, NULL, vc, err) < 0 ||
        get_int(in, "handshake_timeout_ms", 100, 300000, 10000, &hto, NULL, vc, err) < 0 ||
        get_int(in, "connect_timeout_ms", 100, 60000, 5000, &cto, NULL, vc, err) < 0 ||
        get_int(in, "idle_timeout_ms", 1000, 86400000, 300000, &ito, NULL, vc, err) < 0)
        return -1;
    if (!ip_canon(bind ? bind : "0.0.0.0", bindbuf, sizeof(bindbuf)))
        return err_set(err, ERR_INVALID, "invalid_value", fpath(vc, NULL, "bind"),
                       "bind must be a numeric IPv4 or IPv6 address");
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "bind", bindbuf);
    cJSON_AddNumberToObject(o, "port", (double)port);
    cJSON_AddStringToObject(o, "protocol", proto);
    cJSON_AddStringToObject(o, "default_target_group_id", dtg);
    arr = cJSON_AddArrayToObject(o, "certificate_ids");
    i = 0;
    cJSON_ArrayForEach(x, certs)
    {
        snprintf(path, sizeof(path), "certificate_ids[%d]", i++);
        if (!cJSON_IsString(x)) {
            err_set(err, ERR_INVALID, "invalid_type", fpath(vc, NULL, path),
                    "certificate ids are strings");
            goto fail;
        }
        if (strlen(x->valuestring) < 1 || strlen(x->valuestring) > 64) {
            err_set(err, ERR_INVALID, "invalid_value", fpath(vc, NULL, path),
                    "certificate ids are 1 to 64 bytes");
            goto fail;
        }
        cJSON_AddItemToArray(arr, cJSON_CreateString(x->valuestring));
    }
    if (strcmp(proto, "tcp") == 0 && cJSON_GetArraySize(arr) > 0) {
        err_set(err, ERR_UNPROCESSABLE, "invalid_combination", fpath(vc, NULL, "certificate_ids"),
                "a tcp listener does not terminate TLS and cannot carry certificates");
        goto fail;
    }
    if (strcmp(proto, "tls") == 0 && cJSON_GetArraySize(arr) == 0) {
        err_set(err, ERR_UNPROCESSABLE, "invalid_combination", fpath(vc, NULL, "certificate_ids"),
                "a tls listener needs at least one certificate");
        goto fail;
    }
    cJSON_AddStringToObject(o, "ssl_policy", policy);
    arr = cJSON_AddArrayToObject(o, "alpn");
    i = 0;
    cJSON_ArrayForEach(x, alpn)
    {
        snprintf(path, sizeof(path), "alpn[%d]", i++);
        if (!cJSON_IsString(x)) {
            err_set(err, ERR_INVALID, "invalid_type", fpath(vc, NULL, path),
                    "ALPN protocols are strings");
            goto fail;
        }
        if (strlen(x->valuestring) < 1 || strlen(x->valuestring) > 255) {
            err_set(err, ERR_INVALID, "invalid_value", fpath(vc, NULL, path),
                    "ALPN protocols are 1 to 255 bytes");
            goto fail;
        }
        cJSON_AddItemToArray(arr, cJSON_CreateString(x->valuestring));
    }
    if (strcmp(proto, "tcp") == 0 && cJSON_GetArraySize(arr) > 0) {
        err_set(err, ERR_UNPROCESSABLE, "invalid_combination", fpath(vc, NULL, "alpn"),
                "ALPN needs a tls listener");
        goto fail;
    }
    arr = cJSON_AddArrayToObject(o, "sni_routes");
    i = 0;
    cJSON_ArrayForEach(x, routes)
    {
        const char *sn, *tg;

        snprintf(path, sizeof(path), "sni_routes[%d]", i++);
        if (!cJSON_IsObject(x)) {
            err_set(err, ERR_INVALID, "invalid_type", fpath(vc, NULL, path),
                    "a route is an object");
            goto fail;
        }
        if (api_json_only(x, route_allowed, path, vc, err) < 0 ||
            get_str(x, "server_name", 1, 1, MAX_DNS_NAME, &sn, path, vc, err) < 0 ||
            get_str(x, "target_group_id", 1, 1, 64, &tg, path, vc, err) < 0)
            goto fail;
        if (!dns_name_ok(sn, 1, snbuf, sizeof(snbuf))) {
            err_set(err, ERR_INVALID, "invalid_value", fpath(vc, path, "server_name"),
                    "server_name must be a DNS name or *.domain");
            goto fail;
        }
        cJSON_ArrayForEach(y, arr)
        {
            if (strcmp(cJSON_GetObjectItem(y, "server_name")->valuestring, snbuf) == 0) {
                err_set(err, ERR_UNPROCESSABLE, "duplicate_value", fpath(vc, path, "server_name"),
                        "server_name %s appears twice", snbuf);
                goto fail;
            }
        }
        y = cJSON_CreateObject();
        cJSON_AddStringToObject(y, "server_name", snbuf);
        cJSON_AddStringToObject(y, "target_group_id", tg);
        cJSON_AddItemToArray(arr, y);
    }
    cJSON_AddNumberToObject(o, "max_connections", (double)maxc);
    cJSON_AddNumberToObject(o, "handshake_timeout_ms", (double)hto);
    cJSON_AddNumberToObject(o, "connect_timeout_ms", (double)cto);
    cJSON_AddNumberToObject(o, "idle_timeout_ms", (double)ito);
    *out = o;
    return 0;
fail:
    cJSON_Delete(o);
    return -1;
}

int api_cert_parse(const cJSON *in, int need_name, struct api_cert_in *out, struct api_vctx *vc,
                   struct err *err)
{
    static const char *const allowed[] = {"name", "certificate", "private_key", "certificate_chain",
                                          NULL};
    /* certstore refuses each field over its own limit with a precise code. */
    const size_t max = 1024 * 1024;

    memset(out, 0, sizeof(*out));
    if (api_json_only(in, allowed, NULL, vc, err) < 0)
        return -1;
    if (need_name || jget(in, "name") != NULL) {
        if (get_name(in, "cert-", &out->name, vc, err) < 0)
            return -1;
    }
    if (get_str(in, "certificate", 1, 1, max, &out->certificate, NULL, vc, err) < 0 ||
        get_str(in, "private_key", 0, 1, max, &out->private_key, NULL, vc, err) < 0 ||
        get_str(in, "certificate_chain", 0, 0, max, &out->certificate_chain, NULL, vc, err) < 0)
        return -1;
    return 0;
}
