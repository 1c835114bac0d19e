#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "err.h"
#include "wire.h"

void wire_dec_init(struct wire_dec *d, size_t max_frame)
{
    memset(d, 0, sizeof(*d));
    d->max_frame = max_frame ? max_frame : WIRE_MAX_FRAME_DEFAULT;
}

void wire_dec_free(struct wire_dec *d)
{
    if (d->buf != NULL) {
        OPENSSL_cleanse(d->buf, d->cap);
        free(d->buf);
    }
    d->buf = NULL;
    d->len = d->cap = 0;
}

/* Check the header of the frame at the start of the buffer, if complete. */
static int wire_check_hdr(struct wire_dec *d, struct err *err)
{
    uint32_t n;

    if (d->len < WIRE_HDR_LEN)
        return 0;
    n = wire_get_len(d->buf);
    if (n == 0) {
        d->failed = 1;
        return err_set(err, ERR_INVALID, "frame_empty", NULL, "zero-length frame");
    }
    if (n > d->max_frame) {
        d->failed = 1;
        return err_set(err, ERR_TOO_LARGE, "frame_too_large", NULL,
                       "frame of %u bytes exceeds the limit of %zu", n, d->max_frame);
    }
    return 0;
}

int wire_dec_push(struct wire_dec *d, const void *data, size_t n, struct err *err)
{
    if (d->failed)
        return err_set(err, ERR_INVALID, "frame_stream_failed", NULL,
                       "stream already failed; reset it");
    if (wire_check_hdr(d, err) < 0)
        return -1;
    if (n == 0)
        return 0;
    if (d->len + n > d->cap) {
        size_t want = d->cap ? d->cap : 4096;
        uint8_t *nb;

        while (want < d->len + n)
            want *= 2;
        /* realloc would leave key bytes behind in the old block. */
        nb = malloc(want);
        if (nb == NULL)
            return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
        if (d->buf != NULL) {
            memcpy(nb, d->buf, d->len);
            OPENSSL_cleanse(d->buf, d->cap);
            free(d->buf);
        }
        d->buf = nb;
        d->cap = want;
    }
    memcpy(d->buf + d->len, data, n);
    d->len += n;
    return wire_check_hdr(d, err);
}

/* Drop the first 'n' buffered bytes. */
static void wire_consume(struct wire_dec *d, size_t n)
{
    memmove(d->buf, d->buf + n, d->len - n);
    d->len -= n;
    OPENSSL_cleanse(d->buf + d->len, n);
}

int wire_dec_next(struct wire_dec *d, cJSON **out, struct err *err)
{
    const char *end = NULL;
    const cJSON *type;
    cJSON *obj;
    uint32_t n;
    size_t i;

    *out = NULL;
    if (d->failed)
        return err_set(err, ERR_INVALID, "frame_stream_failed", NULL,
                       "stream already failed; reset it");
    if (wire_check_hdr(d, err) < 0)
        return -1;
    if (d->len < WIRE_HDR_LEN)
        return 0;
    n = wire_get_len(d->buf);
    if (d->len - WIRE_HDR_LEN < n)
        return 0;

    obj = cJSON_ParseWithLengthOpts((const char *)d->buf + WIRE_HDR_LEN, n, &end, 0);
    if (obj == NULL) {
        d->failed = 1;
        return err_set(err, ERR_INVALID, "frame_not_json", NULL, "frame is not valid JSON");
    }
    /* Only whitespace may follow the object inside the frame. */
    for (i = (size_t)(end - (const char *)d->buf) - WIRE_HDR_LEN; i < n; i++) {
        char c = (char)d->buf[WIRE_HDR_LEN + i];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
            cJSON_Delete(obj);
            d->failed = 1;
            return err_set(err, ERR_INVALID, "frame_trailing_data", NULL,
                           "frame has data after the JSON object");
        }
    }
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        d->failed = 1;
        return err_set(err, ERR_INVALID, "frame_not_object", NULL, "frame is not a JSON object");
    }
    type = cJSON_GetObjectItemCaseSensitive(obj, "type");
    if (!cJSON_IsString(type) || type->valuestring[0] == '\0') {
        cJSON_Delete(obj);
        d->failed = 1;
        return err_set(err, ERR_INVALID, "frame_no_type", NULL,
                       "frame has no string member \"type\"");
    }
    wire_consume(d, WIRE_HDR_LEN + n);
    *out = obj;
    return 1;
}

int wire_encode(const cJSON *obj, size_t max_frame, char **out, size_t *outlen, struct err *err)
{
    char *json = NULL, *frame = NULL;
    size_t n;
    int rc = -1;

    *out = NULL;
    *outlen = 0;
    if (max_frame == 0)
        max_frame = WIRE_MAX_FRAME_DEFAULT;
    json = cJSON_PrintUnformatted(obj);
    if (json == NULL) {
        err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "cannot serialise frame");
        goto out;
    }
    n = strlen(json);
    if (n == 0 || n > max_frame) {
        err_set(err, ERR_TOO_LARGE, "frame_too_large", NULL,
                "frame of %zu bytes exceeds the limit of %zu", n, max_frame);
        goto out;
    }
    frame = malloc(WIRE_HDR_LEN + n);
    if (frame == NULL) {
        err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
        goto out;
    }
    frame[0] = (char)((n >> 24) & 0xff);
    frame[1] = (char)((n >> 16) & 0xff);
    frame[2] = (char)((n >> 8) & 0xff);
    frame[3] = (char)(n & 0xff);
    memcpy(frame + WIRE_HDR_LEN, json, n);
    *out = frame;
    *outlen = WIRE_HDR_LEN + n;
    frame = NULL;
    rc = 0;
out:
    if (json != NULL) {
        OPENSSL_cleanse(json, strlen(json));
        cJSON_free(json);
    }
    free(frame);
    return rc;
}

void wire_frame_free(char *frame, size_t len)
{
    if (frame == NULL)
        return;
    OPENSSL_cleanse(frame, len);
    free(frame);
}
