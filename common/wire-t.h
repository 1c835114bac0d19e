/* wire-t.h - control-channel framing types. */
#ifndef PC_WIRE_T_H
#define PC_WIRE_T_H

#include <stddef.h>
#include <stdint.h>

/* Largest frame payload accepted by default. A snapshot of 1,000 listeners
 * and 10,000 certificate references is a few MiB; certificate bodies travel
 * in frames of their own. */
#define WIRE_MAX_FRAME_DEFAULT (32u * 1024u * 1024u)

/* Bytes of the big-endian length prefix. */
#define WIRE_HDR_LEN 4u

/* Incremental frame decoder: bytes in, whole JSON objects out. */
struct wire_dec {
    uint8_t *buf;     /* received, not yet decoded bytes */
    size_t len;       /* bytes in buf */
    size_t cap;       /* allocated size of buf */
    size_t max_frame; /* largest payload accepted */
    int failed;       /* a bad frame was seen: the stream is unusable */
};

#endif
