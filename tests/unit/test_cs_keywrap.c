/* test_cs_keywrap.c - master key file and AES-256-GCM sealing of private
 * keys: round trip, tampering, wrong AAD, wrong key, truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cs.h"
#include "err.h"

#define OVERHEAD (1 + 12 + 16)

static char tmpdir[512];

static int setup(void **state)
{
    const char *base = getenv("PC_TEST_TMP");

    (void)state;
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    mkdir(base, 0700);
    snprintf(tmpdir, sizeof(tmpdir), "%s/cs_keywrap.XXXXXX", base);
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static void path_of(char *buf, size_t n, const char *dir)
{
    snprintf(buf, n, "%s/master.key", dir);
}

static int teardown(void **state)
{
    char p[600];

    (void)state;
    path_of(p, sizeof(p), tmpdir);
    unlink(p);
    rmdir(tmpdir);
    return 0;
}

/* A fresh empty sub-directory of tmpdir. */
static void fresh_dir(char *buf, size_t n, const char *name)
{
    char p[700];

    snprintf(buf, n, "%s/%s", tmpdir, name);
    path_of(p, sizeof(p), buf);
    unlink(p);
    mkdir(buf, 0700);
}

static void cleanup_dir(const char *dir)
{
    char p[700];

    path_of(p, sizeof(p), dir);
    unlink(p);
    rmdir(dir);
}

static void test_master_create_and_reload(void **state)
{
    char dir[600], p[700];
    struct cs_master *a = NULL, *b = NULL;
    struct err e = {0};
    struct stat st;
    uint8_t *ct = NULL;
    size_t ct_len = 0, pt_len = 0;
    char *pt = NULL;

    (void)state;
    fresh_dir(dir, sizeof(dir), "create");
    umask(022);
    assert_int_equal(cs_master_load(dir, &a, &e), 0);
    path_of(p, sizeof(p), dir);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, CS_MASTER_KEY_LEN);
    assert_true(S_ISREG(st.st_mode));

    /* Reloading yields the same key: what a opens, b opens. */
    assert_int_equal(cs_master_load(dir, &b, &e), 0);
    assert_int_equal(cs_seal(a, "cert-0123456789abcdef", "secret", 6, &ct, &ct_len, &e), 0);
    assert_int_equal(cs_open(b, "cert-0123456789abcdef", ct, ct_len, &pt, &pt_len, &e), 0);
    assert_int_equal(pt_len, 6);
    assert_string_equal(pt, "secret");
    cs_secret_free(pt, pt_len);
    free(ct);
    cs_master_free(a);
    cs_master_free(b);
    cs_master_free(NULL);
    cleanup_dir(dir);
}

static void write_file(const char *path, const void *data, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void test_master_refused(void **state)
{
    char dir[600], p[700];
    unsigned char bytes[64] = {1, 2, 3};
    struct cs_master *mk = NULL;
    struct err e = {0};

    (void)state;
    fresh_dir(dir, sizeof(dir), "refused");
    path_of(p, sizeof(p), dir);

    write_file(p, bytes, 31, 0600);
    assert_int_equal(cs_master_load(dir, &mk, &e), -1);
    assert_null(mk);
    assert_string_equal(e.code, "master_key_invalid");
    assert_int_equal(e.kind, ERR_INTERNAL);
    assert_non_null(strstr(e.message, "31 bytes"));

    err_clear(&e);
    write_file(p, bytes, 33, 0600);
    assert_int_equal(cs_master_load(dir, &mk, &e), -1);
    assert_string_equal(e.code, "master_key_invalid");

    err_clear(&e);
    write_file(p, bytes, 0, 0600);
    assert_int_equal(cs_master_load(dir, &mk, &e), -1);
    assert_string_equal(e.code, "master_key_invalid");

    err_clear(&e);
    write_file(p, bytes, 32, 0644);
    assert_int_equal(cs_master_load(dir, &mk, &e), -1);
    assert_string_equal(e.code, "master_key_invalid");
    assert_non_null(strstr(e.message, "chmod 600"));

    /* A directory where the file should be. */
    unlink(p);
    mkdir(p, 0700);
    err_clear(&e);
    assert_int_equal(cs_master_load(dir, &mk, &e), -1);
    assert_string_equal(e.code, "master_key_invalid");
    rmdir(p);

    /* A data directory that does not exist. */
    err_clear(&e);
    snprintf(p, sizeof(p), "%s/does/not/exist", dir);
    assert_int_equal(cs_master_load(p, &mk, &e), -1);
    assert_string_equal(e.code, "master_key_io");

    /* A valid file written by someone else is used as is. */
    path_of(p, sizeof(p), dir);
    write_file(p, bytes, 32, 0600);
    err_clear(&e);
    assert_int_equal(cs_master_load(dir, &mk, &e), 0);
    cs_master_free(mk);
    cleanup_dir(dir);
}

static struct cs_master *load_new(const char *name)
{
    char dir[600];
    struct cs_master *mk = NULL;
    struct err e = {0};

    fresh_dir(dir, sizeof(dir), name);
    assert_int_equal(cs_master_load(dir, &mk, &e), 0);
    cleanup_dir(dir);
    return mk;
}

static void test_seal_roundtrip(void **state)
{
    struct cs_master *mk = load_new("rt");
    const char *key = "-----BEGIN PRIVATE KEY-----\nMIGH...\n-----END PRIVATE KEY-----\n";
    uint8_t *c1 = NULL, *c2 = NULL;
    size_t l1 = 0, l2 = 0, pt_len = 0;
    char *pt = NULL;
    struct err e = {0};

    (void)state;
    assert_int_equal(cs_seal(mk, "cert-a", key, strlen(key), &c1, &l1, &e), 0);
    assert_int_equal(l1, strlen(key) + OVERHEAD);
    assert_int_equal(c1[0], 1);
    assert_null(memmem(c1, l1, "PRIVATE", 7));
    /* A fresh nonce each time: same input, different output. */
    assert_int_equal(cs_seal(mk, "cert-a", key, strlen(key), &c2, &l2, &e), 0);
    assert_int_equal(l1, l2);
    assert_memory_not_equal(c1 + 1, c2 + 1, 12);
    assert_int_equal(cs_open(mk, "cert-a", c2, l2, &pt, &pt_len, &e), 0);
    assert_int_equal(pt_len, strlen(key));
    assert_string_equal(pt, key);
    cs_secret_free(pt, pt_len);
    free(c1);
    free(c2);

    /* Empty plaintext. */
    assert_int_equal(cs_seal(mk, "cert-a", "", 0, &c1, &l1, &e), 0);
    assert_int_equal(l1, OVERHEAD);
    assert_int_equal(cs_open(mk, "cert-a", c1, l1, &pt, &pt_len, &e), 0);
    assert_int_equal(pt_len, 0);
    assert_string_equal(pt, "");
    cs_secret_free(pt, pt_len);
    free(c1);
    cs_secret_free(NULL, 0);
    cs_master_free(mk);
}

static void expect_open_fails(const struct cs_master *mk, const char *aad, const uint8_t *ct,
                              size_t len)
{
    char *pt = (char *)"untouched";
    size_t pt_len = 99;
    struct err e = {0};

    assert_int_equal(cs_open(mk, aad, ct, len, &pt, &pt_len, &e), -1);
    assert_null(pt);
    assert_int_equal(pt_len, 0);
    assert_string_equal(e.code, "key_decrypt_failed");
}

static void test_open_failures(void **state)
{
    struct cs_master *mk = load_new("fail"), *other = load_new("other");
    const char *key = "-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n";
    uint8_t *ct = NULL, *t;
    size_t len = 0;
    struct err e = {0};

    (void)state;
    assert_int_equal(cs_seal(mk, "cert-1111111111111111", key, strlen(key), &ct, &len, &e), 0);
    /* Wrong AAD: the ciphertext moved to another certificate's row. */
    expect_open_fails(mk, "cert-2222222222222222", ct, len);
    expect_open_fails(mk, "", ct, len);
    expect_open_fails(mk, NULL, ct, len);
    /* Wrong master key. */
    expect_open_fails(other, "cert-1111111111111111", ct, len);
    /* Every single-bit flip anywhere (version, nonce, ciphertext, tag). */
    t = malloc(len);
    for (size_t i = 0; i < len; i++) {
        memcpy(t, ct, len);
        t[i] ^= (uint8_t)(1u << (i % 8));
        expect_open_fails(mk, "cert-1111111111111111", t, len);
    }
    free(t);
    /* Every truncation, and an extension. */
    for (size_t n = 0; n < len; n++)
        expect_open_fails(mk, "cert-1111111111111111", ct, n);
    t = malloc(len + 1);
    memcpy(t, ct, len);
    t[len] = 0;
    expect_open_fails(mk, "cert-1111111111111111", t, len + 1);
    free(t);
    expect_open_fails(mk, "cert-1111111111111111", NULL, 0);
    free(ct);
    cs_master_free(mk);
    cs_master_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_master_create_and_reload),
        cmocka_unit_test(test_master_refused),
        cmocka_unit_test(test_seal_roundtrip),
        cmocka_unit_test(test_open_failures),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
