#define _POSIX_C_SOURCE 200809L

#include "io/cifar.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"

#define CIFAR_C 3
#define CIFAR_HW 32
#define CIFAR_PIXELS (CIFAR_C * CIFAR_HW * CIFAR_HW)
#define CIFAR_MAX_FILES 5

void dataset_free(dataset *d)
{
    if (!d)
        return;
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

/* Records in one batch file, checking that the size is a whole number of records. */
static int batch_records(const char *path, size_t rec, size_t *nrec)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return rm_error("%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return rm_error("%s: not a regular file", path);
    size_t size = (size_t)st.st_size;
    if (size == 0)
        return rm_error("%s: empty file (no records)", path);
    if (size % rec != 0)
        return rm_error("%s: truncated record at byte %zu: file has %zu bytes, not a multiple of "
                        "the %zu-byte record (%zu whole records)", path, size / rec * rec, size,
                        rec, size / rec);
    *nrec = size / rec;
    return 0;
}

/* Read nrec records of path into x (nrec,3072) and y (nrec). */
static int batch_read(const char *path, int cifar100, size_t nrec, uint8_t *x, int32_t *y)
{
    size_t lb = cifar100 ? 2 : 1, rec = lb + CIFAR_PIXELS;
    int nclass = cifar100 ? 100 : 10;
    FILE *f = fopen(path, "rb");
    if (!f)
        return rm_error("%s: cannot open: %s", path, strerror(errno));
    for (size_t i = 0; i < nrec; i++) {
        uint8_t lab[2];
        size_t at = i * rec;
        if (fread(lab, 1, lb, f) != lb || fread(x + i * CIFAR_PIXELS, 1, CIFAR_PIXELS, f) !=
                                              CIFAR_PIXELS) {
            rm_error("%s: record %zu (byte %zu): %s", path, i, at,
                     ferror(f) ? strerror(errno) : "unexpected end of file");
            goto fail;
        }
        if (cifar100 && lab[0] >= 20) {
            rm_error("%s: record %zu (byte %zu): coarse label %d out of range [0, 20)", path, i,
                     at, lab[0]);
            goto fail;
        }
        int label = lab[lb - 1];
        if (label >= nclass) {
            rm_error("%s: record %zu (byte %zu): label %d out of range [0, %d)", path, i,
                     at + lb - 1, label, nclass);
            goto fail;
        }
        y[i] = label;
    }
    fclose(f);
    return 0;
fail:
    fclose(f);
    return -1;
}

int cifar_load(const char *dir, int cifar100, int train, dataset *out)
{
    static const char *const c10_train[] = {"data_batch_1.bin", "data_batch_2.bin",
                                            "data_batch_3.bin", "data_batch_4.bin",
                                            "data_batch_5.bin"};
    static const char *const c10_test[] = {"test_batch.bin"};
    static const char *const c100_train[] = {"train.bin"};
    static const char *const c100_test[] = {"test.bin"};
    const char *const *names;
    int nfiles;
    char *paths[CIFAR_MAX_FILES] = {0};
    size_t nrec[CIFAR_MAX_FILES] = {0}, total = 0;
    size_t rec = (cifar100 ? 2 : 1) + CIFAR_PIXELS;
    dataset d = {0};

    memset(out, 0, sizeof *out);
    if (cifar100) {
        names = train ? c100_train : c100_test;
        nfiles = 1;
    } else {
        names = train ? c10_train : c10_test;
        nfiles = train ? 5 : 1;
    }
    for (int i = 0; i < nfiles; i++) {
        size_t len = strlen(dir) + 1 + strlen(names[i]) + 1;
        paths[i] = malloc(len);
        if (!paths[i]) {
            rm_error("%s: out of memory", dir);
            goto fail;
        }
        snprintf(paths[i], len, "%s/%s", dir, names[i]);
        /* a subset (like the bundled one) holds data_batch_1..k, k < 5 */
        if (!cifar100 && train && i > 0 && access(paths[i], F_OK) != 0) {
            for (int j = i + 1; j < nfiles; j++) {
                char later[4096];
                snprintf(later, sizeof later, "%s/%s", dir, names[j]);
                if (access(later, F_OK) == 0) {
                    rm_error("%s: missing, but %s exists (training batches must be "
                             "data_batch_1..k without gaps)", paths[i], later);
                    goto fail;
                }
            }
            free(paths[i]);
            paths[i] = NULL;
            nfiles = i;
            break;
        }
        if (batch_records(paths[i], rec, &nrec[i]) != 0)
            goto fail;
        total += nrec[i];
    }
    if (total > (size_t)INT32_MAX) {
        rm_error("%s: too many records (%zu)", dir, total);
        goto fail;
    }
    d.n = (int)total;
    d.c = CIFAR_C;
    d.h = d.w = CIFAR_HW;
    d.nclass = cifar100 ? 100 : 10;
    d.x = malloc(total * CIFAR_PIXELS);
    d.y = malloc(total * sizeof *d.y);
    if (!d.x || !d.y) {
        rm_error("%s: out of memory for %zu images", dir, total);
        goto fail;
    }
    size_t at = 0;
    for (int i = 0; i < nfiles; i++) {
        if (batch_read(paths[i], cifar100, nrec[i], d.x + at * CIFAR_PIXELS, d.y + at) != 0)
            goto fail;
        at += nrec[i];
    }
    for (int i = 0; i < nfiles; i++)
        free(paths[i]);
    *out = d;
    return 0;
fail:
    for (int i = 0; i < nfiles; i++)
        free(paths[i]);
    dataset_free(&d);
    return -1;
}

void dataset_gather_u8(const dataset *d, const int *idx, int k, uint8_t *out, int32_t *labels)
{
    size_t img = (size_t)d->c * d->h * d->w;
    for (int i = 0; i < k; i++) {
        memcpy(out + (size_t)i * img, d->x + (size_t)idx[i] * img, img);
        if (labels)
            labels[i] = d->y[idx[i]];
    }
}

void data_normalize(const uint8_t *x, int k, int c, int hw, float *out)
{
    /* torch builds these from Python floats: decimal -> double -> float32 */
    static const float mean[3] = {(float)0.485, (float)0.456, (float)0.406};
    static const float std[3] = {(float)0.229, (float)0.224, (float)0.225};
    for (int i = 0; i < k; i++)
        for (int ch = 0; ch < c; ch++) {
            const uint8_t *src = x + ((size_t)i * c + ch) * hw;
            float *dst = out + ((size_t)i * c + ch) * hw;
            for (int p = 0; p < hw; p++) {
                float v = (float)src[p] / 255.0f;
                dst[p] = (v - mean[ch]) / std[ch];
            }
        }
}

void data_augment(const uint8_t *x, int k, int c, int h, int w, int pad, rng *r, uint8_t *out)
{
    int wp = w + 2 * pad; /* padded width */
    size_t plane = (size_t)h * w;
    for (int n = 0; n < k; n++) {
        int flip = rng_uniform(r) < 0.5;
        int i = (int)rng_below(r, (uint64_t)(2 * pad + 1));
        int j = (int)rng_below(r, (uint64_t)(2 * pad + 1));
        for (int ch = 0; ch < c; ch++) {
            const uint8_t *src = x + ((size_t)n * c + ch) * plane;
            uint8_t *dst = out + ((size_t)n * c + ch) * plane;
            for (int y = 0; y < h; y++) {
                int sy = i + y - pad;
                for (int xx = 0; xx < w; xx++) {
                    int px = j + xx; /* column in the (flipped) padded image */
                    int sx = (flip ? wp - 1 - px : px) - pad;
                    dst[(size_t)y * w + xx] =
                        (sy >= 0 && sy < h && sx >= 0 && sx < w) ? src[(size_t)sy * w + sx] : 0;
                }
            }
        }
    }
}
