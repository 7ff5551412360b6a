/* TAP tests for src/io: safetensors reader/writer and the CIFAR readers with
 * normalization and augmentation.
 * Environment: SHARED_DIR (else RM_SHARED, else ../shared) for the teacher
 * weights; CIFAR10_DIR for an optional pass over the real binary batches. */
#define _XOPEN_SOURCE 700

#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/cifar.h"
#include "io/safetensors.h"
#include "util/err.h"
#include "util/rng.h"

static char tmpdir[256];
static const char *skip_reason; /* set by a test that skips */

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            printf("# %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);           \
            if (rm_last_error()[0])                                                      \
                printf("#   last error: %s\n", rm_last_error());                        \
            return 1;                                                                    \
        }                                                                                \
    } while (0)

/* rc is -1 and the message names the file and contains phrase. */
static int expect_error(int rc, const char *path, const char *phrase)
{
    const char *msg = rm_last_error();
    printf("#   error: %s\n", msg);
    if (rc != -1) {
        printf("# expected failure, got rc %d\n", rc);
        return 1;
    }
    if (path && !strstr(msg, path)) {
        printf("# message does not name %s\n", path);
        return 1;
    }
    if (phrase && !strstr(msg, phrase)) {
        printf("# message lacks \"%s\"\n", phrase);
        return 1;
    }
    return 0;
}

static void tmp_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", tmpdir, name);
}

static int write_bytes(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = len ? fwrite(buf, 1, len, f) : 0;
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

static unsigned char *read_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        *len = (size_t)n;
    }
    return b;
}

/* A safetensors file with the given JSON header (unpadded) and data bytes. */
static int write_st_raw(const char *path, const char *json, const void *data, size_t dlen)
{
    size_t hl = strlen(json);
    size_t total = 8 + hl + dlen;
    unsigned char *b = malloc(total);
    if (!b)
        return -1;
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, json, hl);
    if (dlen)
        memcpy(b + 8 + hl, data, dlen);
    int rc = write_bytes(path, b, total);
    free(b);
    return rc;
}

/* ---------------------------------------------------------------- safetensors */

static int test_st_roundtrip(void)
{
    char path[512], tmp[600];
    float f32[6] = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, -7.0f};
    double f64[3] = {1.0 / 3.0, -1e300, 2.5};
    uint16_t f16[4] = {0x3c00, 0xc100, 0x0001, 0x7c00}; /* 1, -2.5, 2^-24, inf */
    int64_t i64[2] = {-5, (int64_t)1 << 40};
    int32_t i32[3] = {7, -8, 9};
    uint8_t u8[5] = {0, 1, 2, 254, 255};
    float scalar = 42.0f;
    st_tensor t[] = {
        {"w.f32", ST_F32, 2, {2, 3}, sizeof f32, f32},
        {"b.f64", ST_F64, 1, {3}, sizeof f64, f64},
        {"h.f16", ST_F16, 2, {2, 2}, sizeof f16, f16},
        {"num_batches_tracked", ST_I64, 1, {2}, sizeof i64, i64},
        {"i32", ST_I32, 3, {1, 3, 1}, sizeof i32, i32},
        {"u8", ST_U8, 1, {5}, sizeof u8, u8},
        {"empty", ST_F32, 2, {0, 4}, 0, NULL},
        {"scalar", ST_F32, 0, {0}, sizeof scalar, &scalar},
    };
    int nt = (int)(sizeof t / sizeof t[0]);
    const char *mk[] = {"arch", "note", "empty"};
    const char *mv[] = {"resnet20", "quotes \" and \\ and unicode \xc3\xa9", ""};
    st_file f;

    tmp_path(path, sizeof path, "rt.safetensors");
    CHECK(st_save(path, t, nt, mk, mv, 3) == 0);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0);
    CHECK(st_load(path, &f) == 0);
    CHECK(f.n == nt);
    for (int i = 0; i < nt; i++) {
        CHECK(strcmp(f.t[i].name, t[i].name) == 0); /* file order = given order */
        CHECK(f.t[i].dtype == t[i].dtype);
        CHECK(f.t[i].ndim == t[i].ndim);
        for (int d = 0; d < t[i].ndim; d++)
            CHECK(f.t[i].shape[d] == t[i].shape[d]);
        CHECK(f.t[i].nbytes == t[i].nbytes);
        CHECK(t[i].nbytes == 0 || memcmp(f.t[i].data, t[i].data, t[i].nbytes) == 0);
    }
    CHECK(st_numel(st_find(&f, "scalar")) == 1);
    CHECK(st_numel(st_find(&f, "empty")) == 0);
    CHECK(st_find(&f, "nope") == NULL);
    CHECK(f.nmeta == 3);
    for (int i = 0; i < 3; i++) {
        CHECK(strcmp(f.meta_key[i], mk[i]) == 0);
        CHECK(strcmp(f.meta_val[i], mv[i]) == 0);
    }
    st_free(&f);
    CHECK(f.n == 0 && f.t == NULL);

    /* layout: header padded with spaces to a multiple of 8, data contiguous */
    size_t len;
    unsigned char *raw = read_bytes(path, &len);
    CHECK(raw);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = (hl << 8) | raw[i];
    size_t data = 0;
    for (int i = 0; i < nt; i++)
        data += t[i].nbytes;
    int ok = hl % 8 == 0 && 8 + hl + data == len && raw[8] == '{';
    size_t e = 8 + hl;
    while (ok && raw[e - 1] == ' ')
        e--;
    ok = ok && raw[e - 1] == '}' && 8 + hl - e < 8;
    ok = ok && memcmp(raw + 8 + hl, f32, sizeof f32) == 0 &&
         memcmp(raw + len - sizeof scalar, &scalar, sizeof scalar) == 0;
    free(raw);
    CHECK(ok);
    return 0;
}

static int test_st_no_metadata(void)
{
    char path[512];
    int32_t v[2] = {1, 2};
    st_tensor t = {"v", ST_I32, 1, {2}, sizeof v, v};
    st_file f;
    size_t len;

    tmp_path(path, sizeof path, "nometa.safetensors");
    CHECK(st_save(path, &t, 1, NULL, NULL, 0) == 0);
    unsigned char *raw = read_bytes(path, &len);
    CHECK(raw);
    int has_meta = strstr((char *)raw + 8, "__metadata__") != NULL;
    free(raw);
    CHECK(!has_meta);
    CHECK(st_load(path, &f) == 0);
    int ok = f.n == 1 && f.nmeta == 0;
    st_free(&f);
    CHECK(ok);
    /* a header with an explicit empty __metadata__ and no tensors at all */
    CHECK(write_st_raw(path, "{\"__metadata__\":{}}", NULL, 0) == 0);
    CHECK(st_load(path, &f) == 0);
    ok = f.n == 0 && f.nmeta == 0;
    st_free(&f);
    CHECK(ok);
    /* overwrite an existing file */
    CHECK(st_save(path, &t, 1, NULL, NULL, 0) == 0);
    CHECK(st_load(path, &f) == 0);
    ok = f.n == 1;
    st_free(&f);
    CHECK(ok);
    return 0;
}

static int test_st_offset_order(void)
{
    char path[512];
    float d[3] = {1, 2, 3};
    st_file f;
    /* JSON order differs from data order: tensors must come back in data order */
    const char *json = "{\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                       "\"__metadata__\":{},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[4,8]}}";
    tmp_path(path, sizeof path, "order.safetensors");
    CHECK(write_st_raw(path, json, d, sizeof d) == 0);
    CHECK(st_load(path, &f) == 0);
    int ok = f.n == 3 && strcmp(f.t[0].name, "a") == 0 && strcmp(f.t[1].name, "b") == 0 &&
             strcmp(f.t[2].name, "c") == 0 && f.t[0].ndim == 0 && f.t[1].ndim == 2 &&
             ((float *)f.t[2].data)[0] == 3.0f;
    st_free(&f);
    CHECK(ok);
    return 0;
}

static int test_st_read_f32(void)
{
    char path[512];
    uint16_t f16[6] = {0x3c00, 0xc100, 0x0001, 0x7c00, 0x8000, 0x7bff};
    double f64[2] = {0.1, -3.5};
    int64_t i64[2] = {-5, 1 << 20};
    int32_t i32[2] = {123, -7};
    uint8_t u8[2] = {3, 250};
    float f32[2] = {0.25f, -1.0f};
    st_tensor t[] = {
        {"f16", ST_F16, 1, {6}, sizeof f16, f16}, {"f64", ST_F64, 1, {2}, sizeof f64, f64},
        {"i64", ST_I64, 1, {2}, sizeof i64, i64}, {"i32", ST_I32, 1, {2}, sizeof i32, i32},
        {"u8", ST_U8, 1, {2}, sizeof u8, u8},     {"f32", ST_F32, 2, {1, 2}, sizeof f32, f32},
    };
    st_file f;
    float out[6];

    tmp_path(path, sizeof path, "conv.safetensors");
    CHECK(st_save(path, t, 6, NULL, NULL, 0) == 0);
    CHECK(st_load(path, &f) == 0);
    int ok = st_read_f32(&f, "f16", out, 6) == 0 && out[0] == 1.0f && out[1] == -2.5f &&
             out[2] == 0x1p-24f && isinf(out[3]) && out[3] > 0 && out[4] == 0.0f &&
             signbit(out[4]) && out[5] == 65504.0f;
    ok = ok && st_read_f32(&f, "f64", out, 2) == 0 && out[0] == 0.1f && out[1] == -3.5f;
    ok = ok && st_read_f32(&f, "i64", out, 2) == 0 && out[0] == -5.0f && out[1] == 1048576.0f;
    ok = ok && st_read_f32(&f, "i32", out, 2) == 0 && out[0] == 123.0f && out[1] == -7.0f;
    ok = ok && st_read_f32(&f, "u8", out, 2) == 0 && out[0] == 3.0f && out[1] == 250.0f;
    ok = ok && st_read_f32(&f, "f32", out, 2) == 0 && out[0] == 0.25f && out[1] == -1.0f;
    int bad1 = expect_error(st_read_f32(&f, "f32", out, 3), NULL, "'f32'");
    int bad2 = expect_error(st_read_f32(&f, "missing", out, 1), NULL, "'missing'");
    st_free(&f);
    CHECK(ok && !bad1 && !bad2);
    return 0;
}

static int test_st_save_errors(void)
{
    char path[512];
    float v[2] = {1, 2};
    st_tensor dup[2] = {{"x", ST_F32, 1, {2}, sizeof v, v}, {"x", ST_F32, 1, {2}, sizeof v, v}};
    st_tensor wrong = {"y", ST_F32, 1, {3}, sizeof v, v};
    tmp_path(path, sizeof path, "saveerr.safetensors");
    CHECK(expect_error(st_save(path, dup, 2, NULL, NULL, 0), path, "duplicate") == 0);
    CHECK(expect_error(st_save(path, &wrong, 1, NULL, NULL, 0), path, "'y'") == 0);
    CHECK(access(path, F_OK) != 0);
    tmp_path(path, sizeof path, "no/such/dir/x.safetensors");
    CHECK(expect_error(st_save(path, dup, 1, NULL, NULL, 0), path, "cannot create") == 0);
    return 0;
}

static const char *shared_dir(void)
{
    const char *s = getenv("SHARED_DIR");
    if (!s || !*s)
        s = getenv("RM_SHARED");
    return s && *s ? s : "../shared";
}

static int test_st_teacher(void)
{
    char path[1024];
    st_file f;
    snprintf(path, sizeof path, "%s/data/teachers/resnet20-akamaster.safetensors", shared_dir());
    if (access(path, R_OK) != 0) {
        skip_reason = "teacher weights not found (set SHARED_DIR)";
        return 0;
    }
    CHECK(st_load(path, &f) == 0);
    const st_tensor *c = st_find(&f, "conv1.weight");
    const st_tensor *l = st_find(&f, "linear.weight");
    const st_tensor *rv = st_find(&f, "layer3.2.bn2.running_var");
    int ok = f.n == 97 && c && l && rv && f.t == c && c->dtype == ST_F32 && c->ndim == 4 &&
             c->shape[0] == 16 && c->shape[1] == 3 && c->shape[2] == 3 && c->shape[3] == 3 &&
             l->ndim == 2 && l->shape[0] == 10 && l->shape[1] == 64 && rv->ndim == 1 &&
             rv->shape[0] == 64 && st_find(&f, "linear.bias") && st_find(&f, "bn1.running_mean");
    float var[64];
    ok = ok && st_read_f32(&f, "layer3.2.bn2.running_var", var, 64) == 0;
    for (int i = 0; ok && i < 64; i++)
        ok = var[i] > 0 && isfinite(var[i]);
    int has_arch = 0;
    for (int i = 0; i < f.nmeta; i++)
        has_arch |= strcmp(f.meta_key[i], "arch") == 0 && strstr(f.meta_val[i], "resnet20");
    ok = ok && strcmp(f.t[f.n - 1].name, "linear.bias") == 0; /* last in data order */
    st_free(&f);
    CHECK(ok && has_arch);
    return 0;
}

/* Bad files: each must fail with a message naming the file and the problem. */
static int bad_file(const char *name, const void *bytes, size_t len, const char *phrase)
{
    char path[512];
    st_file f;
    tmp_path(path, sizeof path, name);
    CHECK(write_bytes(path, bytes, len) == 0);
    CHECK(expect_error(st_load(path, &f), path, phrase) == 0);
    CHECK(f.n == 0 && f.t == NULL && f.nmeta == 0);
    return 0;
}

static int bad_header(const char *name, const char *json, size_t dlen, const char *phrase)
{
    char path[512];
    static const unsigned char zeros[64];
    st_file f;
    tmp_path(path, sizeof path, name);
    CHECK(dlen <= sizeof zeros);
    CHECK(write_st_raw(path, json, zeros, dlen) == 0);
    CHECK(expect_error(st_load(path, &f), path, phrase) == 0);
    CHECK(f.n == 0 && f.t == NULL);
    return 0;
}

static int test_st_empty_file(void) { return bad_file("empty.st", "", 0, "shorter than"); }

static int test_st_4byte_file(void)
{
    return bad_file("four.st", "\x10\0\0\0", 4, "file is 4 bytes");
}

static int test_st_header_too_long(void)
{
    unsigned char b[20] = {0xe8, 0x03}; /* header length 1000 */
    memcpy(b + 8, "{}          ", 12);
    return bad_file("hdrlen.st", b, sizeof b, "header length 1000");
}

static int test_st_broken_json(void)
{
    /* error at byte 8 + 14 of the file */
    return bad_header("json.st", "{\"a\": {\"dtype\" \"F32\"}}", 0, "invalid JSON header at byte");
}

static int test_st_unknown_dtype(void)
{
    return bad_header("dtype.st",
                      "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
                      "unknown dtype \"BF16\"");
}

static int test_st_offsets_mismatch(void)
{
    return bad_header("offs.st",
                      "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20,
                      "shape [2, 3] of F32 needs 24");
}

static int test_st_truncated(void)
{
    char path[512], msg[300];
    const char *json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                       "\"b\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[16,32]}}";
    static const unsigned char zeros[32];
    st_file f;
    tmp_path(path, sizeof path, "trunc.st");
    CHECK(write_st_raw(path, json, zeros, 29) == 0);
    snprintf(msg, sizeof msg, "truncated: expected 32 bytes of data, file has 29 at offset %zu",
             8 + strlen(json));
    CHECK(expect_error(st_load(path, &f), path, msg) == 0);
    return 0;
}

static int test_st_missing_fields(void)
{
    int r = bad_header("nodtype.st", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                       "'w': missing dtype");
    r |= bad_header("noshape.st", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
                    "'w': missing shape");
    r |= bad_header("nooffs.st", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
                    "'w': missing data_offsets");
    r |= bad_header("backwards.st",
                    "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8,
                    "out of range");
    r |= bad_header("dupkey.st",
                    "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                    "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                    "duplicate object key");
    r |= bad_header("notobj.st", "[1,2]", 0, "not an object");
    r |= bad_header("badmeta.st", "{\"__metadata__\":{\"k\":3}}", 0, "not a string");
    return r;
}

static int test_st_overlap(void)
{
    return bad_header("overlap.st",
                      "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                      12, "overlap");
}

static int test_st_missing_file(void)
{
    char path[512];
    st_file f;
    tmp_path(path, sizeof path, "does-not-exist.safetensors");
    CHECK(expect_error(st_load(path, &f), path, "cannot open") == 0);
    return 0;
}

/* ---------------------------------------------------------------- CIFAR */

#define REC_PIX 3072

/* Pixel p of record r in a fake file with seed s. */
static uint8_t fake_pixel(int s, int r, int p) { return (uint8_t)(s * 31 + r * 7 + p * 13); }

/* Write a fake batch: nrec records, labels label_of(r) (fine) and fine/5 (coarse). */
static int write_fake_batch(const char *path, int cifar100, int seed, int nrec, int label0)
{
    int lb = cifar100 ? 2 : 1, rec = lb + REC_PIX;
    unsigned char *b = malloc((size_t)nrec * rec);
    if (!b)
        return -1;
    for (int r = 0; r < nrec; r++) {
        unsigned char *p = b + (size_t)r * rec;
        int label = (label0 + r) % (cifar100 ? 100 : 10);
        if (cifar100)
            *p++ = (unsigned char)(label / 5);
        *p++ = (unsigned char)label;
        for (int i = 0; i < REC_PIX; i++)
            p[i] = fake_pixel(seed, r, i);
    }
    int rc = write_bytes(path, b, (size_t)nrec * rec);
    free(b);
    return rc;
}

static int make_dir(char *dir, size_t cap, const char *name)
{
    snprintf(dir, cap, "%s/%s", tmpdir, name);
    return mkdir(dir, 0700);
}

static int test_cifar10_fake(void)
{
    char dir[512], path[600];
    static const int counts[5] = {3, 2, 1, 4, 2};
    dataset d;
    CHECK(make_dir(dir, sizeof dir, "c10") == 0);
    int label0 = 0;
    for (int i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, i + 1);
        CHECK(write_fake_batch(path, 0, i, counts[i], label0) == 0);
        label0 += counts[i];
    }
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    CHECK(write_fake_batch(path, 0, 9, 3, 7) == 0);

    CHECK(cifar_load(dir, 0, 1, &d) == 0);
    int ok = d.n == 12 && d.c == 3 && d.h == 32 && d.w == 32 && d.nclass == 10;
    int k = 0;
    for (int f = 0; ok && f < 5; f++)
        for (int r = 0; ok && r < counts[f]; r++, k++) {
            ok = d.y[k] == k % 10;
            for (int p = 0; ok && p < REC_PIX; p++)
                ok = dataset_image(&d, k)[p] == fake_pixel(f, r, p);
        }
    /* gather images 11, 0, 5 */
    int idx[3] = {11, 0, 5};
    uint8_t g[3 * REC_PIX];
    int32_t gl[3];
    if (ok) {
        dataset_gather_u8(&d, idx, 3, g, gl);
        ok = gl[0] == 1 && gl[1] == 0 && gl[2] == 5 &&
             memcmp(g, dataset_image(&d, 11), REC_PIX) == 0 &&
             memcmp(g + REC_PIX, dataset_image(&d, 0), REC_PIX) == 0 &&
             memcmp(g + 2 * REC_PIX, dataset_image(&d, 5), REC_PIX) == 0;
    }
    dataset_free(&d);
    CHECK(ok);
    CHECK(d.y == NULL && d.n == 0);

    CHECK(cifar_load(dir, 0, 0, &d) == 0);
    ok = d.n == 3 && d.nclass == 10 && d.y[0] == 7 && d.y[1] == 8 && d.y[2] == 9 &&
         dataset_image(&d, 2)[100] == fake_pixel(9, 2, 100);
    dataset_free(&d);
    CHECK(ok);
    return 0;
}

static int test_cifar100_fake(void)
{
    char dir[512], path[600];
    dataset d;
    CHECK(make_dir(dir, sizeof dir, "c100") == 0);
    snprintf(path, sizeof path, "%s/train.bin", dir);
    CHECK(write_fake_batch(path, 1, 1, 5, 97) == 0);
    snprintf(path, sizeof path, "%s/test.bin", dir);
    CHECK(write_fake_batch(path, 1, 2, 2, 50) == 0);

    CHECK(cifar_load(dir, 1, 1, &d) == 0);
    int ok = d.n == 5 && d.nclass == 100 && d.y[0] == 97 && d.y[2] == 99 && d.y[3] == 0 &&
             d.y[4] == 1;
    for (int r = 0; ok && r < 5; r++)
        for (int p = 0; ok && p < REC_PIX; p++)
            ok = dataset_image(&d, r)[p] == fake_pixel(1, r, p);
    dataset_free(&d);
    CHECK(ok);
    CHECK(cifar_load(dir, 1, 0, &d) == 0);
    ok = d.n == 2 && d.y[0] == 50 && d.y[1] == 51 && dataset_image(&d, 1)[5] == fake_pixel(2, 1, 5);
    dataset_free(&d);
    CHECK(ok);
    /* the CIFAR-10 names are not there */
    CHECK(expect_error(cifar_load(dir, 0, 0, &d), "test_batch.bin", "cannot open") == 0);
    /* the released code's CIFAR-100 loader: its mean and std (pixel 128 of
     * channel 0: (128/255 - 0.50707516) / 0.26733429, as torch in float32),
     * and a rotation of up to 15 degrees in the augmentation */
    CHECK(cifar_load(dir, 1, 1, &d) == 0);
    static uint8_t px[REC_PIX];
    static float v[REC_PIX];
    memset(px, 128, sizeof px);
    dataset_normalize(&d, px, 1, v);
    const int rot = d.rotate, pad = d.pad;
    dataset_free(&d);
    CHECK(fabsf(v[0] - ((float)(128 / 255.0) - 0.50707516f) / 0.26733429f) < 1e-6f);
    CHECK(fabsf(v[2 * 1024] - ((float)(128 / 255.0) - 0.44091785f) / 0.27615047f) < 1e-6f);
    CHECK(rot == 15 && pad == 4);
    return 0;
}

static int test_cifar_truncated(void)
{
    char dir[512], path[600];
    dataset d;
    CHECK(make_dir(dir, sizeof dir, "c10trunc") == 0);
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    CHECK(write_fake_batch(path, 0, 0, 3, 0) == 0);
    CHECK(truncate(path, 3 * 3073 - 100) == 0);
    CHECK(expect_error(cifar_load(dir, 0, 0, &d), path, "truncated record at byte 6146") == 0);
    CHECK(d.y == NULL && d.n == 0);
    /* CIFAR-100 records are 3074 bytes: a CIFAR-10 file is not a whole number of them */
    snprintf(path, sizeof path, "%s/test.bin", dir);
    CHECK(write_fake_batch(path, 0, 0, 2, 0) == 0);
    CHECK(expect_error(cifar_load(dir, 1, 0, &d), path, "truncated record at byte 3074") == 0);
    return 0;
}

static int test_cifar_label_range(void)
{
    char dir[512], path[600];
    dataset d;
    unsigned char bad = 10;
    CHECK(make_dir(dir, sizeof dir, "c10label") == 0);
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    CHECK(write_fake_batch(path, 0, 0, 4, 0) == 0);
    FILE *f = fopen(path, "r+b");
    CHECK(f);
    fseek(f, 2 * 3073, SEEK_SET);
    fwrite(&bad, 1, 1, f);
    fclose(f);
    CHECK(expect_error(cifar_load(dir, 0, 0, &d), path,
                       "record 2 (byte 6146): label 10 out of range [0, 10)") == 0);
    CHECK(d.y == NULL);

    /* CIFAR-100: fine label 100 in record 1 (fine byte at 3074 + 1) */
    snprintf(path, sizeof path, "%s/test.bin", dir);
    CHECK(write_fake_batch(path, 1, 0, 3, 0) == 0);
    f = fopen(path, "r+b");
    CHECK(f);
    bad = 100;
    fseek(f, 3074 + 1, SEEK_SET);
    fwrite(&bad, 1, 1, f);
    fclose(f);
    CHECK(expect_error(cifar_load(dir, 1, 0, &d), path,
                       "record 1 (byte 3075): label 100 out of range [0, 100)") == 0);
    return 0;
}

/* ImageNet16-120: records of 1 label byte (0..119) + 768 pixel bytes */
#define IM16_PIX 768

static int write_im16(const char *path, int seed, int nrec, int label0)
{
    unsigned char *b = malloc((size_t)nrec * (1 + IM16_PIX));
    if (!b)
        return -1;
    for (int r = 0; r < nrec; r++) {
        unsigned char *p = b + (size_t)r * (1 + IM16_PIX);
        *p++ = (unsigned char)((label0 + 37 * r) % 120);
        for (int i = 0; i < IM16_PIX; i++)
            p[i] = fake_pixel(seed, r, i);
    }
    int rc = write_bytes(path, b, (size_t)nrec * (1 + IM16_PIX));
    free(b);
    return rc;
}

static int test_imagenet16_fake(void)
{
    char dir[512], path[600];
    dataset d;
    CHECK(make_dir(dir, sizeof dir, "im16") == 0);
    snprintf(path, sizeof path, "%s/train.bin", dir);
    CHECK(write_im16(path, 3, 7, 5) == 0);
    snprintf(path, sizeof path, "%s/test.bin", dir);
    CHECK(write_im16(path, 4, 3, 119) == 0);
    CHECK(imagenet16_load(dir, 1, &d) == 0);
    int ok = d.n == 7 && d.c == 3 && d.h == 16 && d.w == 16 && d.nclass == 120 && d.pad == 2;
    for (int r = 0; ok && r < 7; r++) {
        ok = d.y[r] == (5 + 37 * r) % 120;
        for (int p = 0; ok && p < IM16_PIX; p++)
            ok = dataset_image(&d, r)[p] == fake_pixel(3, r, p);
    }
    /* NAS-Bench-201's ImageNet16 normalization: (x/255 - 122.68/255) / (63.22/255) on R */
    uint8_t px[IM16_PIX] = {0};
    px[0] = 200;
    px[256] = 10;
    float out[IM16_PIX];
    dataset_normalize(&d, px, 1, out);
    ok = ok && fabs(out[0] - (200 / 255. - 122.68 / 255) / (63.22 / 255)) < 1e-5 &&
         fabs(out[256] - (10 / 255. - 116.66 / 255) / (61.26 / 255)) < 1e-5;
    dataset_free(&d);
    CHECK(ok);
    CHECK(imagenet16_load(dir, 0, &d) == 0);
    ok = d.n == 3 && d.y[0] == 119 && d.y[1] == (119 + 37) % 120 &&
         dataset_image(&d, 2)[700] == fake_pixel(4, 2, 700);
    dataset_free(&d);
    CHECK(ok);
    return 0;
}

static int test_imagenet16_bad(void)
{
    char dir[512], path[600];
    dataset d;
    CHECK(make_dir(dir, sizeof dir, "im16bad") == 0);
    snprintf(path, sizeof path, "%s/test.bin", dir);
    /* a CIFAR-10 record is not a whole number of 769-byte records */
    CHECK(write_fake_batch(path, 0, 0, 1, 0) == 0);
    CHECK(expect_error(imagenet16_load(dir, 0, &d), path, "truncated record at byte 2307") == 0);
    CHECK(d.y == NULL && d.n == 0);
    /* label 120 (of the 1000 ImageNet classes, the 121st) in record 2 */
    CHECK(write_im16(path, 0, 4, 0) == 0);
    FILE *f = fopen(path, "r+b");
    CHECK(f);
    unsigned char bad = 120;
    fseek(f, 2 * 769, SEEK_SET);
    fwrite(&bad, 1, 1, f);
    fclose(f);
    CHECK(expect_error(imagenet16_load(dir, 0, &d), path,
                       "record 2 (byte 1538): label 120 out of range [0, 120)") == 0);
    CHECK(expect_error(imagenet16_load(dir, 1, &d), "train.bin", "cannot open") == 0);
    snprintf(path, sizeof path, "%s/train.bin", dir);
    CHECK(write_bytes(path, "", 0) == 0);
    CHECK(expect_error(imagenet16_load(dir, 1, &d), path, "empty file") == 0);
    return 0;
}

static int test_cifar_missing_dir(void)
{
    char dir[512];
    dataset d;
    snprintf(dir, sizeof dir, "%s/no-such-dir", tmpdir);
    CHECK(expect_error(cifar_load(dir, 0, 1, &d), dir, "data_batch_1.bin: cannot open") == 0);
    CHECK(expect_error(cifar_load(dir, 1, 0, &d), dir, "test.bin: cannot open") == 0);
    return 0;
}

static int test_normalize(void)
{
    /* one image, 3 channels of 2 pixels */
    uint8_t x[6] = {0, 255, 128, 77, 255, 1};
    float out[6];
    const double want[6] = {-2.117903930, 2.248908297, 0.205182073,
                            -0.687675070, 2.640000000, -1.787015251};
    data_normalize(x, 1, 3, 2, out);
    for (int i = 0; i < 6; i++) {
        if (fabs(out[i] - want[i]) > 2e-6) {
            printf("# pixel %d: got %.9f want %.9f\n", i, out[i], want[i]);
            return 1;
        }
    }
    /* the float32 recipe itself, bit for bit, on the second image of a batch */
    uint8_t x2[12] = {0};
    x2[6 + 4] = 200;
    float out2[12];
    data_normalize(x2, 2, 3, 2, out2);
    volatile float v = 200.0f / 255.0f, m = (float)0.406, s = (float)0.225;
    CHECK(out2[10] == (v - m) / s);
    CHECK(out2[0] == out[0]);
    return 0;
}

/* The (flip, i, j) that data_augment draws first from seed. */
static void first_draws(uint64_t seed, int pad, int *flip, int *i, int *j)
{
    rng r;
    rng_seed(&r, seed);
    *flip = rng_uniform(&r) < 0.5;
    *i = (int)rng_below(&r, (uint64_t)(2 * pad + 1));
    *j = (int)rng_below(&r, (uint64_t)(2 * pad + 1));
}

static uint64_t find_seed(int pad, int flip, int i, int j)
{
    for (uint64_t s = 1; s < 1000000; s++) {
        int f, a, b;
        first_draws(s, pad, &f, &a, &b);
        if (f == flip && a == i && b == j)
            return s;
    }
    return 0;
}

static void fill_image(uint8_t *x, int n)
{
    for (int i = 0; i < n; i++)
        x[i] = (uint8_t)(1 + i % 251); /* never zero */
}

static int test_augment_identity(void)
{
    uint8_t x[REC_PIX], out[REC_PIX];
    fill_image(x, REC_PIX);
    uint64_t s = find_seed(4, 0, 4, 4);
    CHECK(s != 0);
    rng r;
    rng_seed(&r, s);
    data_augment(x, 1, 3, 32, 32, 4, &r, out);
    CHECK(memcmp(x, out, REC_PIX) == 0);
    /* flip with centered crop mirrors each row */
    s = find_seed(4, 1, 4, 4);
    CHECK(s != 0);
    rng_seed(&r, s);
    data_augment(x, 1, 3, 32, 32, 4, &r, out);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 32; y++)
            for (int xx = 0; xx < 32; xx++)
                CHECK(out[(c * 32 + y) * 32 + xx] == x[(c * 32 + y) * 32 + 31 - xx]);
    return 0;
}

/* data_rotate: 0 degrees is the identity; 90 degrees a permutation of the
 * pixels (pixel centres map onto pixel centres); at most 15 degrees keeps
 * the centre and a disc of radius 16; one draw per image */
static int test_rotate(void)
{
    uint8_t x[2 * REC_PIX], out[2 * REC_PIX];
    fill_image(x, 2 * REC_PIX);
    rng r, r2;
    rng_seed(&r, 5);
    data_rotate(x, 2, 3, 32, 32, 0, &r, out);
    CHECK(memcmp(x, out, sizeof x) == 0);
    /* 90 degrees counter-clockwise: output (y, x) is input (x, 31 - y) */
    data_rotate_by(x, 3, 32, 32, 90, out);
    int perm = 1;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 32; y++)
            for (int xx = 0; xx < 32; xx++)
                perm &= out[(c * 32 + y) * 32 + xx] == x[(c * 32 + xx) * 32 + 31 - y];
    CHECK(perm);
    rng_seed(&r, 9);
    data_rotate(x, 2, 3, 32, 32, 15, &r, out);
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 3; c++) {
            const uint8_t *o = out + (n * 3 + c) * 1024, *i = x + (n * 3 + c) * 1024;
            CHECK(o[16 * 32 + 16] == i[16 * 32 + 16] || o[16 * 32 + 16] == i[15 * 32 + 15] ||
                  o[16 * 32 + 16] == i[15 * 32 + 16] || o[16 * 32 + 16] == i[16 * 32 + 15]);
            /* a rotation of at most 15 degrees leaves a disc of radius 16 inside */
            CHECK(o[16 * 32 + 2] != 0 && o[2 * 32 + 16] != 0);
        }
    rng_seed(&r, 9);
    rng_seed(&r2, 9);
    rng_uniform(&r2);
    rng_uniform(&r2);
    data_rotate(x, 2, 3, 32, 32, 15, &r, out);
    CHECK(rng_u64(&r) == rng_u64(&r2));
    return 0;
}

static int test_augment_padding(void)
{
    uint8_t x[REC_PIX], out[REC_PIX];
    fill_image(x, REC_PIX);
    rng r;
    /* crop at (0, 0): 4 zero rows on top, 4 zero columns on the left */
    uint64_t s = find_seed(4, 0, 0, 0);
    CHECK(s != 0);
    rng_seed(&r, s);
    data_augment(x, 1, 3, 32, 32, 4, &r, out);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 32; y++)
            for (int xx = 0; xx < 32; xx++) {
                uint8_t o = out[(c * 32 + y) * 32 + xx];
                if (y < 4 || xx < 4)
                    CHECK(o == 0);
                else
                    CHECK(o == x[(c * 32 + y - 4) * 32 + xx - 4]);
            }
    /* flip then crop at (8, 0): zeros at the bottom and on the left (mirrored right pad) */
    s = find_seed(4, 1, 8, 0);
    CHECK(s != 0);
    rng_seed(&r, s);
    data_augment(x, 1, 3, 32, 32, 4, &r, out);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 32; y++)
            for (int xx = 0; xx < 32; xx++) {
                uint8_t o = out[(c * 32 + y) * 32 + xx];
                if (y >= 28 || xx < 4)
                    CHECK(o == 0);
                else
                    CHECK(o == x[(c * 32 + y + 4) * 32 + 31 - (xx - 4)]);
            }
    /* another size and pad: 1 channel 3x5, pad 1, crop at (2, 0) */
    uint8_t small[15], sout[15];
    fill_image(small, 15);
    s = find_seed(1, 0, 2, 0);
    CHECK(s != 0);
    rng_seed(&r, s);
    data_augment(small, 1, 1, 3, 5, 1, &r, sout);
    for (int y = 0; y < 3; y++)
        for (int xx = 0; xx < 5; xx++)
            CHECK(sout[y * 5 + xx] ==
                  ((y == 2 || xx == 0) ? 0 : small[(y + 1) * 5 + xx - 1]));
    return 0;
}

static int test_augment_deterministic(void)
{
    enum { K = 16 };
    static uint8_t x[K * REC_PIX], a[K * REC_PIX], b[K * REC_PIX];
    fill_image(x, K * REC_PIX);
    rng r1, r2, r3;
    rng_seed(&r1, 2026);
    rng_seed(&r2, 2026);
    data_augment(x, K, 3, 32, 32, 4, &r1, a);
    data_augment(x, K, 3, 32, 32, 4, &r2, b);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(&r1, &r2, sizeof r1) == 0);
    /* three draws per image, in the order flip, i, j: replay them */
    rng_seed(&r3, 2026);
    int flips = 0;
    for (int n = 0; n < K; n++) {
        int flip = rng_uniform(&r3) < 0.5;
        int i = (int)rng_below(&r3, 9), j = (int)rng_below(&r3, 9);
        flips += flip;
        /* the image's centre pixel comes from source row 16 + i - 4 */
        int y = 16, xx = 16, sy = y + i - 4, px = j + xx;
        int sx = (flip ? 39 - px : px) - 4;
        CHECK(a[(size_t)n * REC_PIX + 32 * 32 + y * 32 + xx] ==
              x[(size_t)n * REC_PIX + 32 * 32 + sy * 32 + sx]);
    }
    CHECK(memcmp(&r1, &r3, sizeof r1) == 0);
    CHECK(flips > 0 && flips < K);
    rng_seed(&r3, 2027);
    data_augment(x, K, 3, 32, 32, 4, &r3, b);
    CHECK(memcmp(a, b, sizeof a) != 0);
    return 0;
}

static int test_cifar10_real(void)
{
    const char *dir = getenv("CIFAR10_DIR");
    dataset d;
    if (!dir || !*dir) {
        skip_reason = "CIFAR10_DIR not set";
        return 0;
    }
    CHECK(cifar_load(dir, 0, 1, &d) == 0);
    int ok = d.n == 50000 && d.nclass == 10;
    for (int k = 0; ok && k < d.n; k++)
        ok = d.y[k] == k % 10;
    dataset_free(&d);
    CHECK(ok);
    CHECK(cifar_load(dir, 0, 0, &d) == 0);
    ok = d.n == 10000;
    for (int k = 0; ok && k < d.n; k++)
        ok = d.y[k] == k % 10;
    dataset_free(&d);
    CHECK(ok);
    return 0;
}

/* ---------------------------------------------------------------- driver */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static const struct {
    const char *name;
    int (*fn)(void);
} tests[] = {
    {"safetensors save/load round trip (6 dtypes, scalar, empty, metadata)", test_st_roundtrip},
    {"safetensors without metadata and with empty __metadata__", test_st_no_metadata},
    {"safetensors tensors kept in data-offset order", test_st_offset_order},
    {"st_read_f32 converts F16/F64/I64/I32/U8 and checks numel", test_st_read_f32},
    {"st_save rejects bad tensors and reports the path", test_st_save_errors},
    {"teacher resnet20-akamaster.safetensors keys and shapes", test_st_teacher},
    {"safetensors error: empty file", test_st_empty_file},
    {"safetensors error: 4-byte file", test_st_4byte_file},
    {"safetensors error: header length past end of file", test_st_header_too_long},
    {"safetensors error: broken JSON", test_st_broken_json},
    {"safetensors error: unknown dtype", test_st_unknown_dtype},
    {"safetensors error: offsets not matching shape", test_st_offsets_mismatch},
    {"safetensors error: truncated data", test_st_truncated},
    {"safetensors error: missing dtype/shape/data_offsets, bad offsets, duplicate keys, "
     "bad header types",
     test_st_missing_fields},
    {"safetensors error: overlapping tensors", test_st_overlap},
    {"safetensors error: missing file", test_st_missing_file},
    {"CIFAR-10 fake batches read back (train 5 files, test) and gather", test_cifar10_fake},
    {"CIFAR-100 fake train/test read back with fine labels; the released code's mean, std and "
     "rotation", test_cifar100_fake},
    {"CIFAR error: truncated record names the byte offset", test_cifar_truncated},
    {"CIFAR error: label out of range names record and byte", test_cifar_label_range},
    {"CIFAR error: missing directory", test_cifar_missing_dir},
    {"ImageNet16-120 fake train/test read back, NAS-Bench-201's normalization",
     test_imagenet16_fake},
    {"ImageNet16-120 errors: truncated record, label 120, missing and empty files",
     test_imagenet16_bad},
    {"normalization matches hand-computed values", test_normalize},
    {"augmentation: no flip + offset 4 is the identity; flip mirrors", test_augment_identity},
    {"augmentation: zero padding appears at the crop edges", test_augment_padding},
    {"rotation: 0 degrees the identity, 90 a permutation, 15 keeps the centre, one draw each",
     test_rotate},
    {"augmentation: deterministic for a seed, 3 draws per image", test_augment_deterministic},
    {"real CIFAR-10 binaries (CIFAR10_DIR)", test_cifar10_real},
};

int main(void)
{
    int n = (int)(sizeof tests / sizeof tests[0]), failed = 0;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/rminas-test-io-XXXXXX", base && *base ? base : "/tmp");
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("1..%d\n", n);
    if (!mkdtemp(tmpdir)) {
        for (int i = 0; i < n; i++)
            printf("not ok %d - %s # cannot create temp dir\n", i + 1, tests[i].name);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        skip_reason = NULL;
        rm_clear_error();
        int r = tests[i].fn();
        if (skip_reason)
            printf("ok %d - %s # SKIP %s\n", i + 1, tests[i].name, skip_reason);
        else
            printf("%s %d - %s\n", r ? "not ok" : "ok", i + 1, tests[i].name);
        failed += r != 0;
    }
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed ? 1 : 0;
}
