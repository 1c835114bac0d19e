/* wire.h - the control-channel framing of DESIGN.md: a 4-byte big-endian
 * payload length, then one JSON object with a string member "type".
 *
 * The decoder is fed whatever read(2) returned, in any split, and hands back
 * one cJSON object per complete frame. A zero-length, oversized, non-JSON or
 * non-object frame, or one without "type", is an error after which the
 * stream must be reset (DESIGN.md: NACK, then reset). Buffers that may have
 * held key material are wiped before they are freed. */
#ifndef PC_WIRE_H
#define PC_WIRE_H

#include <cjson/cJSON.h>

#include "err-t.h"
#include "wire-t.h"

/* Prepare 'd' to accept payloads of at most 'max_frame' bytes (0 means
 * WIRE_MAX_FRAME_DEFAULT). Allocates nothing. */
void wire_dec_init(struct wire_dec *d, size_t max_frame);

/* Wipe and release the decoder's buffer. 'd' may be reused after init. */
void wire_dec_free(struct wire_dec *d);

/* Append 'n' received bytes. Returns 0, or -1 with 'err' set (ERR_TOO_LARGE
 * when the frame being received announces a length over the limit,
 * ERR_INVALID for a zero length, ERR_INTERNAL when out of memory). Never
 * buffers more than one maximal frame beyond what next() can consume. */
int wire_dec_push(struct wire_dec *d, const void *data, size_t n, struct err *err);

/* Take the next complete frame. Returns 1 and sets '*out' (owned by the
 * caller, free with cJSON_Delete), 0 when more bytes are needed, or -1 with
 * 'err' set when the frame is malformed. */
int wire_dec_next(struct wire_dec *d, cJSON **out, struct err *err);

/* Serialise 'obj' as one frame. On success '*out' is a malloc'd buffer of
 * '*outlen' bytes (header included) owned by the caller, who releases it
 * with wire_frame_free(). Fails with ERR_TOO_LARGE when the payload exceeds
 * 'max_frame' (0: the default). */
int wire_encode(const cJSON *obj, size_t max_frame, char **out, size_t *outlen, struct err *err);

/* Wipe and free a frame from wire_encode(). NULL is fine. */
void wire_frame_free(char *frame, size_t len);

/* Read the big-endian 32-bit length at 'p'. */
static inline uint32_t wire_get_len(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

#endif
