/* sni-t.h - ClientHello peeking and server-name maps: types. */
#ifndef PC_SNI_T_H
#define PC_SNI_T_H

#include <stddef.h>

/* Longest DNS name, without the terminating NUL. */
#define SNI_NAME_MAX 255

/* Largest ClientHello handshake message accepted while peeking. Post-quantum
 * key shares and many extensions make real ones 8-12 KiB. */
#define SNI_HELLO_MAX 16384u

/* Outcome of sni_parse(). */
enum sni_result {
    SNI_FOUND = 0, /* a ClientHello with a valid host_name: the name is filled */
    SNI_NEED_MORE, /* so far a valid prefix: read more bytes */
    SNI_NONE,      /* a complete ClientHello without (usable) server_name */
    SNI_NOT_TLS,   /* the first bytes are not a TLS handshake record */
    SNI_MALFORMED, /* TLS records, but not a well-formed ClientHello */
    SNI_TOO_LARGE, /* the ClientHello announces more than SNI_HELLO_MAX bytes */
};

/* One name of a map: an exact name, or the suffix of a "*.suffix" wildcard. */
struct sni_entry {
    char *name; /* lower case; for a wildcard the part after "*." */
    void *val;  /* not owned */
};

struct sni_blk;

/* Server name -> value, exact names first, then one-label wildcards.
 * Immutable after sni_map_build(); lookups are lock-free. */
struct sni_map {
    struct sni_entry *exact; /* sorted by name */
    size_t n_exact;
    struct sni_entry *wild; /* sorted by suffix */
    size_t n_wild;
    /* Growth room, and the blocks the names live in: a rebuild of 10,000
     * names must not cost a realloc and a malloc per name. */
    size_t cap_exact, cap_wild;
    struct sni_blk *blks;
};

#endif
