/* sni.h - ClientHello peeking (a pure parser) and server-name maps. */
#ifndef PC_SNI_H
#define PC_SNI_H

#include <stdint.h>

#include "err-t.h"
#include "sni-t.h"

/* Parse the first 'len' bytes a client sent, looking for a TLS ClientHello
 * spread over one or more handshake records, and extract its server name.
 * On SNI_FOUND 'name' (at least SNI_NAME_MAX + 1 bytes) holds the host name
 * in lower case. On SNI_NEED_MORE '*need' (may be NULL) is the smallest total
 * length worth parsing again. Pure: no allocation, no state. */
enum sni_result sni_parse(const uint8_t *buf, size_t len, char *name, size_t *need);

/* Name of a result, for logs. */
const char *sni_result_str(enum sni_result r);

/* Add 'name' ("host.example.com" or "*.example.com", any case) mapping to
 * 'val' to a map under construction. The first mapping of a name wins. */
int sni_map_add(struct sni_map *m, const char *name, void *val, struct err *err);

/* Sort a map after the last sni_map_add(). */
void sni_map_seal(struct sni_map *m);

/* Look up a lower-case host name: exact, then the wildcard one label up.
 * Returns the value or NULL. */
void *sni_map_lookup(const struct sni_map *m, const char *name);

/* Free what the map owns (not the values). */
void sni_map_free(struct sni_map *m);

#endif
