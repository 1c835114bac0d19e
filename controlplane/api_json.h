/* api_json.h - JSON input of the REST API: strict parsing (depth, duplicate
 * keys, NUL characters) and the syntactic validation of target groups and
 * listeners into their canonical documents (every default filled in).
 *
 * Error policy, the same for every field:
 *   400 invalid_json      not JSON, not an object, too deep, NUL in a string
 *   400 duplicate_field   a key twice in one object
 *   400 unknown_field     a key the resource does not have
 *   400 missing_field     a required key is absent (or null)
 *   400 invalid_type      wrong JSON type; a number that is not an integer or
 *                         beyond +-2^53 (so 1.5 and 1e308 are type errors)
 *   400 invalid_value     right type, bad syntax: name, host, address, enum
 *                         value, string or array length
 *   422 out_of_range      an integer outside the field's range (port -1)
 *   422 invalid_combination  fields that contradict each other
 *   422 duplicate_value   the same target, server name or certificate twice
 * References to other resources are checked later, against the store. */
#ifndef PC_API_JSON_H
#define PC_API_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "err-t.h"

/* Deepest nesting of arrays and objects accepted in a request body. */
#define API_JSON_MAX_DEPTH 16

/* Where validation keeps the path of the offending field; err->field points
 * into it, so it must outlive the err. */
struct api_vctx {
    char field[160];
};

/* Parse 'len' bytes of 'body' as one JSON object. '*out' is owned by the
 * caller (cJSON_Delete). */
int api_json_parse(const char *body, size_t len, cJSON **out, struct err *err);

/* 1 when 'name' is a valid resource name for a kind whose id prefix is
 * 'prefix' ("tg-"): 1..64 of [A-Za-z0-9._-], first alphanumeric, not
 * starting with the prefix. */
int api_name_valid(const char *name, const char *prefix);

/* Canonical target group from a POST/PUT body. References (ca_certificate_id)
 * are left as given. Targets carry no id. '*out' owned by the caller. */
int api_tg_parse(const cJSON *in, cJSON **out, struct api_vctx *vc, struct err *err);

/* The targets of POST /v1/target-groups/{id}/targets: either one target
 * object or {"targets": [...]}. '*out' is an array, owned by the caller. */
int api_targets_parse(const cJSON *in, cJSON **out, struct api_vctx *vc, struct err *err);

/* Canonical listener from a POST/PUT body; references left as given. */
int api_lsn_parse(const cJSON *in, cJSON **out, struct api_vctx *vc, struct err *err);

/* The body of POST/PUT /v1/certificates. Pointers borrow from 'in'. */
struct api_cert_in {
    const char *name; /* NULL on PUT when absent */
    const char *certificate;
    const char *private_key; /* NULL when absent */
    const char *certificate_chain;
};
int api_cert_parse(const cJSON *in, int need_name, struct api_cert_in *out, struct api_vctx *vc,
                   struct err *err);

/* Check that 'obj' has only the 'allowed' keys (NULL-terminated). */
int api_json_only(const cJSON *obj, const char *const *allowed, const char *path,
                  struct api_vctx *vc, struct err *err);

#endif
