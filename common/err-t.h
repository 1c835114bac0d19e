/* err-t.h - the error carried from where a failure happens to where it is
 * reported. Types only. */
#ifndef PC_ERR_T_H
#define PC_ERR_T_H

enum err_kind {
    ERR_NONE = 0,
    ERR_INVALID,       /* malformed input: HTTP 400 */
    ERR_AUTH,          /* missing or bad credentials: 401 */
    ERR_NOT_FOUND,     /* 404 */
    ERR_METHOD,        /* 405 */
    ERR_CONFLICT,      /* in use, taken, version mismatch: 409 */
    ERR_TOO_LARGE,     /* over a size limit: 413 */
    ERR_MEDIA_TYPE,    /* unsupported content type: 415 */
    ERR_UNPROCESSABLE, /* well-formed but refused (expired, weak key): 422 */
    ERR_UNAVAILABLE,   /* a data plane refused or could not apply: 503 */
    ERR_INTERNAL,      /* our bug or the system's (disk, memory); never client input */
};

struct err {
    enum err_kind kind;
    const char *code;  /* stable, machine-readable: "certificate_key_mismatch" */
    const char *field; /* offending input field, or NULL */
    char message[256]; /* for people; never secrets */
};

#endif
