/* cs_keywrap.c - private keys at rest: the master key file and AES-256-GCM
 * sealing. Sealed format: 1 version byte (1), 12-byte random nonce,
 * ciphertext, 16-byte GCM tag; AAD is the certificate id, so a ciphertext
 * copied to another row does not open. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cs.h"
#include "cs_pem.h"
#include "err.h"

#define SEAL_VERSION 1
#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN 16
#define SEAL_OVERHEAD (1 + SEAL_NONCE_LEN + SEAL_TAG_LEN)

struct cs_master {
    unsigned char key[CS_MASTER_KEY_LEN];
};

void cs_secret_free(void *p, size_t len)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, len);
    free(p);
}

void cs_master_free(struct cs_master *mk)
{
    cs_secret_free(mk, sizeof(*mk));
}

static int read_full(int fd, unsigned char *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

static int write_full(int fd, const unsigned char *buf, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

/* Read an existing key file. Returns 0, -1 with 'err' set, or 1 when the
 * file does not exist. */
static int master_read(const char *path, struct cs_master *mk, struct err *err)
{
    struct stat st;
    int fd, rc = -1;

    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 1;
    if (fd < 0)
        return err_set(err, ERR_INTERNAL, "master_key_io", NULL, "cannot open %s: %s", path,
                       strerror(errno));
    if (fstat(fd, &st) < 0) {
        err_set(err, ERR_INTERNAL, "master_key_io", NULL, "cannot stat %s: %s", path,
                strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        err_set(err, ERR_INTERNAL, "master_key_invalid", NULL, "%s is not a regular file", path);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        err_set(err, ERR_INTERNAL, "master_key_invalid", NULL,
                "%s is readable by group or others (mode %03o); run chmod 600 on it", path,
                (unsigned)(st.st_mode & 0777));
        goto out;
    }
    if (st.st_size != CS_MASTER_KEY_LEN) {
        err_set(err, ERR_INTERNAL, "master_key_invalid", NULL,
                "%s has %lld bytes; a master key is exactly %d bytes", path, (long long)st.st_size,
                CS_MASTER_KEY_LEN);
        goto out;
    }
    if (read_full(fd, mk->key, sizeof(mk->key)) < 0) {
        err_set(err, ERR_INTERNAL, "master_key_io", NULL, "cannot read %s", path);
        goto out;
    }
    rc = 0;
out:
    close(fd);
    return rc;
}

/* Create the key file atomically: write a temporary file, then link() it
 * into place, which fails if another process created one meanwhile (that
 * one is then read instead). Returns 0, 1 (lost the race), or -1. */
static int master_create(const char *dir, const char *path, struct cs_master *mk, struct err *err)
{
    char tmp[PATH_MAX];
    int fd = -1, rc = -1;

    if (snprintf(tmp, sizeof(tmp), "%s/.master.key.%ld.tmp", dir, (long)getpid()) >=
        (int)sizeof(tmp))
        return err_set(err, ERR_INTERNAL, "master_key_io", NULL, "data directory path too long");
    ERR_clear_error();
    if (RAND_priv_bytes(mk->key, sizeof(mk->key)) != 1)
        return err_set(err, ERR_INTERNAL, "master_key_io", NULL, "cannot generate a master key: %s",
                       cs_ossl_reason());
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return err_set(err, ERR_INTERNAL, "master_key_io", NULL, "cannot create %s: %s", tmp,
                       strerror(errno));
    /* The umask may not remove enough bits; set them explicitly. */
    if (fchmod(fd, 0600) < 0 || write_full(fd, mk->key, sizeof(mk->key)) < 0 || fsync(fd) < 0) {
        err_set(err, ERR_INTERNAL, "master_key_io", NULL, "cannot write %s: %s", tmp,
                strerror(errno));
        goto out;
    }
    if (link(tmp, path) < 0) {
        if (errno == EEXIST)
            rc = 1;
        else
            err_set(err, ERR_INTERNAL, "master_key_io", NULL, "cannot create %s: %s", path,
                    strerror(errno));
        goto out;
    }
    rc = 0;
out:
    close(fd);
    unlink(tmp);
    return rc;
}

int cs_master_load(const char *data_dir, struct cs_master **out, struct err *err)
{
    char path[PATH_MAX];
    struct cs_master *mk;
    int r;

    *out = NULL;
    if (snprintf(path, sizeof(path), "%s/master.key", data_dir) >= (int)sizeof(path))
        return err_set(err, ERR_INTERNAL, "master_key_io", NULL, "data directory path too long");
    mk = calloc(1, sizeof(*mk));
    if (mk == NULL)
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    r = master_read(path, mk, err);
    if (r == 1) {
        r = master_create(data_dir, path, mk, err);
        if (r == 1)
            r = master_read(path, mk, err);
        if (r == 1)
            r = err_set(err, ERR_INTERNAL, "master_key_io", NULL, "%s vanished", path);
    }
    if (r < 0) {
        cs_master_free(mk);
        return -1;
    }
    *out = mk;
    return 0;
}

int cs_seal(const struct cs_master *mk, const char *aad, const void *pt, size_t pt_len,
            uint8_t **ct, size_t *ct_len, struct err *err)
{
    EVP_CIPHER_CTX *c = NULL;
    uint8_t *buf = NULL;
    size_t aad_len = aad != NULL ? strlen(aad) : 0;
    int n, rc = -1;

    *ct = NULL;
    *ct_len = 0;
    if (pt_len > INT_MAX - SEAL_OVERHEAD || aad_len > INT_MAX)
        return err_set(err, ERR_INTERNAL, "seal_failed", NULL, "plaintext too large");
    buf = malloc(pt_len + SEAL_OVERHEAD);
    if (buf == NULL)
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    buf[0] = SEAL_VERSION;
    ERR_clear_error();
    if (RAND_bytes(buf + 1, SEAL_NONCE_LEN) != 1 || (c = EVP_CIPHER_CTX_new()) == NULL ||
        EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(c, NULL, NULL, mk->key, buf + 1) != 1 ||
        (aad_len > 0 &&
         EVP_EncryptUpdate(c, NULL, &n, (const unsigned char *)aad, (int)aad_len) != 1) ||
        (pt_len > 0 && EVP_EncryptUpdate(c, buf + 1 + SEAL_NONCE_LEN, &n, pt, (int)pt_len) != 1) ||
        EVP_EncryptFinal_ex(c, buf + 1 + SEAL_NONCE_LEN + pt_len, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN,
                            buf + 1 + SEAL_NONCE_LEN + pt_len) != 1) {
        err_set(err, ERR_INTERNAL, "seal_failed", NULL, "AES-256-GCM encryption failed: %s",
                cs_ossl_reason());
        goto out;
    }
    *ct = buf;
    *ct_len = pt_len + SEAL_OVERHEAD;
    buf = NULL; /* caller owns it */
    rc = 0;
out:
    /* Leave no stale errors for the caller's next SSL_get_error(). */
    ERR_clear_error();
    EVP_CIPHER_CTX_free(c);
    free(buf);
    return rc;
}

int cs_open(const struct cs_master *mk, const char *aad, const uint8_t *ct, size_t ct_len,
            char **pt, size_t *pt_len, struct err *err)
{
    EVP_CIPHER_CTX *c = NULL;
    char *buf = NULL;
    size_t aad_len = aad != NULL ? strlen(aad) : 0;
    size_t len;
    unsigned char tag[SEAL_TAG_LEN];
    int n, rc = -1;

    *pt = NULL;
    *pt_len = 0;
    if (ct == NULL || ct_len < SEAL_OVERHEAD || ct_len > INT_MAX || aad_len > INT_MAX)
        return err_set(err, ERR_INTERNAL, "key_decrypt_failed", NULL,
                       "sealed key is truncated (%zu bytes)", ct_len);
    if (ct[0] != SEAL_VERSION)
        return err_set(err, ERR_INTERNAL, "key_decrypt_failed", NULL,
                       "sealed key has unknown format version %u", ct[0]);
    len = ct_len - SEAL_OVERHEAD;
    buf = malloc(len + 1);
    if (buf == NULL)
        return err_set(err, ERR_INTERNAL, "out_of_memory", NULL, "out of memory");
    memcpy(tag, ct + 1 + SEAL_NONCE_LEN + len, SEAL_TAG_LEN);
    ERR_clear_error();
    if ((c = EVP_CIPHER_CTX_new()) == NULL ||
        EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(c, NULL, NULL, mk->key, ct + 1) != 1 ||
        (aad_len > 0 &&
         EVP_DecryptUpdate(c, NULL, &n, (const unsigned char *)aad, (int)aad_len) != 1) ||
        (len > 0 &&
         EVP_DecryptUpdate(c, (unsigned char *)buf, &n, ct + 1 + SEAL_NONCE_LEN, (int)len) != 1) ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, tag) != 1 ||
        EVP_DecryptFinal_ex(c, (unsigned char *)buf + len, &n) != 1) {
        err_set(err, ERR_INTERNAL, "key_decrypt_failed", NULL,
                "sealed key does not decrypt: wrong master key, wrong certificate id, or "
                "tampered data");
        goto out;
    }
    buf[len] = '\0';
    *pt = buf;
    *pt_len = len;
    buf = NULL; /* caller owns it */
    rc = 0;
out:
    /* Leave no stale errors for the caller's next SSL_get_error(). */
    ERR_clear_error();
    EVP_CIPHER_CTX_free(c);
    cs_secret_free(buf, len + 1);
    return rc;
}
