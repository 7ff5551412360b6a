#define _DEFAULT_SOURCE /* madvise */

#include "io/cifar.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"

#define MAX_FILES 5

/* torch builds normalization constants from Python floats: decimal -> double -> float32 */
static const float imagenet_mean[3] = {(float)0.485, (float)0.456, (float)0.406};
static const float imagenet_std[3] = {(float)0.229, (float)0.224, (float)0.225};
/* The released RMI-NAS code's CIFAR-100 loader (pytorch-cifar100's training
 * constants, which its ResNet-101 teacher was trained with) */
static const float c100_mean[3] = {(float)0.5070751592371323, (float)0.48654887331495095,
                                   (float)0.4409178433670343};
static const float c100_std[3] = {(float)0.2673342858792401, (float)0.2564384629170883,
                                  (float)0.27615047132568404};
/* NAS-Bench-201's ImageNet16 constants: [x / 255 for x in [122.68, 116.66, 104.01]] etc. */
static const float im16_mean[3] = {(float)(122.68 / 255), (float)(116.66 / 255),
                                   (float)(104.01 / 255)};
static const float im16_std[3] = {(float)(63.22 / 255), (float)(61.26 / 255),
                                  (float)(65.09 / 255)};

/* One on-disk format: records of label bytes then c*hw*hw planar pixels. */
typedef struct format {
    int label_bytes;        /* the label is the last of them */
    int coarse;             /* the first label byte is a CIFAR-100 coarse label < 20 */
    int nclass, hw, pad;
    const char *const *train, *const *test;
    int ntrain;             /* training files (tests: one) */
    int subset;             /* training files may stop after k of them */
    int rotate;             /* largest random rotation of the augmentation, degrees */
    const float *mean, *std;
    const char *layout;     /* what a directory of this format holds, for errors */
} format;

static const char *const c10_train[] = {"data_batch_1.bin", "data_batch_2.bin",
                                        "data_batch_3.bin", "data_batch_4.bin",
                                        "data_batch_5.bin"};
static const char *const c10_test[] = {"test_batch.bin"};
static const char *const one_train[] = {"train.bin"};
static const char *const one_test[] = {"test.bin"};

static const format fmt_cifar10 = {
    1, 0, 10, 32, 4, c10_train, c10_test, 5, 1, 0, imagenet_mean, imagenet_std,
    "a cifar10 directory holds CIFAR-10's binary version: data_batch_1.bin .. data_batch_5.bin "
    "and test_batch.bin"};
static const format fmt_cifar100 = {
    2, 1, 100, 32, 4, one_train, one_test, 1, 0, 15, c100_mean, c100_std,
    "a cifar100 directory holds CIFAR-100's binary version: train.bin and test.bin"};
static const format fmt_im16 = {
    1, 0, 120, 16, 2, one_train, one_test, 1, 0, 0, im16_mean, im16_std,
    "an imagenet16-120 directory holds train.bin and test.bin written by "
    "examples/imagenet16-to-bin"};

/* After a missing first file: what the directory should hold, and what it
 * seems to be instead when it holds another format's first file. */
static int missing_file(const char *path, const char *dir, const format *f)
{
    static const struct {
        const format *only, *never; /* for this format only / for any but this (NULL: any) */
        const char *name, *seems;
    } other[] = {
        {&fmt_cifar10, NULL, "train.bin",
         "; it holds train.bin: a cifar100 or imagenet16-120 directory?"},
        {NULL, &fmt_cifar10, "data_batch_1.bin", "; it holds data_batch_1.bin: a cifar10 directory?"},
        {NULL, NULL, "data_batch_1", "; it holds data_batch_1: CIFAR-10's python version? rminas "
                                     "reads the binary version (cifar-10-binary.tar.gz)"},
        {&fmt_cifar100, NULL, "train", "; it holds train: CIFAR-100's python version? rminas reads "
                                       "the binary version (cifar-100-binary.tar.gz)"},
    };
    const char *seems = "";
    for (size_t i = 0; i < sizeof other / sizeof other[0] && !*seems; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, other[i].name);
        if ((!other[i].only || other[i].only == f) && other[i].never != f &&
            access(p, F_OK) == 0)
            seems = other[i].seems;
    }
    return rm_error("%s: cannot open: %s (%s%s)", path, strerror(ENOENT), f->layout, seems);
}

void dataset_free(dataset *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->nfiles; i++)
        if (d->map[i])
            munmap((void *)d->map[i], d->maplen[i]);
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

/* Map path (nrec records) read-only and check its labels into y (nrec). */
static int batch_map(const char *path, const format *f, size_t nrec, const uint8_t **map,
                     int32_t *y)
{
    size_t lb = (size_t)f->label_bytes, rec = lb + 3 * (size_t)f->hw * f->hw, len = nrec * rec;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return rm_error("%s: cannot open: %s", path, strerror(errno));
    void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (m == MAP_FAILED)
        return rm_error("%s: cannot map %zu bytes: %s", path, len, strerror(err));
    const uint8_t *b = m;
    for (size_t i = 0; i < nrec; i++) {
        const uint8_t *lab = b + i * rec;
        size_t at = i * rec;
        if (f->coarse && lab[0] >= 20) {
            munmap(m, len);
            return rm_error("%s: record %zu (byte %zu): coarse label %d out of range [0, 20)",
                            path, i, at, lab[0]);
        }
        int label = lab[lb - 1];
        if (label >= f->nclass) {
            munmap(m, len);
            return rm_error("%s: record %zu (byte %zu): label %d out of range [0, %d)", path, i,
                            at + lb - 1, label, f->nclass);
        }
        y[i] = label;
    }
    /* reading the labels paged the file in: drop it from the resident set
     * (it stays in the page cache); images are paged in again when used */
    madvise(m, len, MADV_DONTNEED);
    *map = b;
    return 0;
}

static int load(const char *dir, const format *f, int train, dataset *out)
{
    const char *const *names = train ? f->train : f->test;
    int nfiles = train ? f->ntrain : 1;
    char *paths[MAX_FILES] = {0};
    size_t nrec[MAX_FILES] = {0}, total = 0;
    size_t rec = (size_t)f->label_bytes + 3 * (size_t)f->hw * f->hw;
    dataset d = {0};

    memset(out, 0, sizeof *out);
    for (int i = 0; i < nfiles; i++) {
        size_t len = strlen(dir) + 1 + strlen(names[i]) + 1;
        paths[i] = malloc(len);
        if (!paths[i]) {
            rm_error("%s: out of memory", dir);
            goto fail;
        }
        snprintf(paths[i], len, "%s/%s", dir, names[i]);
        /* a subset (like the bundled one) holds data_batch_1..k, k < 5 */
        if (f->subset && train && i > 0 && access(paths[i], F_OK) != 0) {
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
        if (batch_records(paths[i], rec, &nrec[i]) != 0) {
            if (i == 0 && access(paths[i], F_OK) != 0 && errno == ENOENT)
                missing_file(paths[i], dir, f);
            goto fail;
        }
        total += nrec[i];
    }
    if (total > (size_t)INT32_MAX) {
        rm_error("%s: too many records (%zu)", dir, total);
        goto fail;
    }
    d.n = (int)total;
    d.c = 3;
    d.h = d.w = f->hw;
    d.nclass = f->nclass;
    d.rec = rec;
    d.skip = (size_t)f->label_bytes;
    d.pad = f->pad;
    d.rotate = f->rotate;
    d.mean = f->mean;
    d.std = f->std;
    d.y = malloc(total * sizeof *d.y);
    if (!d.y) {
        rm_error("%s: out of memory for %zu labels", dir, total);
        goto fail;
    }
    size_t at = 0;
    for (int i = 0; i < nfiles; i++) {
        d.first[i] = (int)at;
        if (batch_map(paths[i], f, nrec[i], &d.map[i], d.y + at) != 0)
            goto fail;
        d.maplen[i] = nrec[i] * rec;
        d.nfiles = i + 1;
        at += nrec[i];
    }
    d.first[nfiles] = (int)at;
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

int cifar_load(const char *dir, int cifar100, int train, dataset *out)
{
    return load(dir, cifar100 ? &fmt_cifar100 : &fmt_cifar10, train, out);
}

int imagenet16_load(const char *dir, int train, dataset *out)
{
    return load(dir, &fmt_im16, train, out);
}

const uint8_t *dataset_image(const dataset *d, int i)
{
    int f = 0;
    while (f + 1 < d->nfiles && i >= d->first[f + 1])
        f++;
    return d->map[f] + (size_t)(i - d->first[f]) * d->rec + d->skip;
}

void dataset_gather_u8(const dataset *d, const int *idx, int k, uint8_t *out, int32_t *labels)
{
    size_t img = (size_t)d->c * d->h * d->w;
    for (int i = 0; i < k; i++) {
        memcpy(out + (size_t)i * img, dataset_image(d, idx[i]), img);
        if (labels)
            labels[i] = d->y[idx[i]];
    }
}

void dataset_range_u8(const dataset *d, int first, int k, uint8_t *out)
{
    size_t img = (size_t)d->c * d->h * d->w;
    for (int i = 0; i < k; i++)
        memcpy(out + (size_t)i * img, dataset_image(d, first + i), img);
}

static void normalize(const uint8_t *x, int k, int c, int hw, const float *mean,
                      const float *std, float *out)
{
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

void data_normalize(const uint8_t *x, int k, int c, int hw, float *out)
{
    normalize(x, k, c, hw, imagenet_mean, imagenet_std, out);
}

void dataset_normalize(const dataset *d, const uint8_t *x, int k, float *out)
{
    normalize(x, k, d->c, d->h * d->w, d->mean ? d->mean : imagenet_mean,
              d->std ? d->std : imagenet_std, out);
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

void data_rotate_by(const uint8_t *x, int c, int h, int w, double degrees, uint8_t *out)
{
    const double a = degrees * 3.14159265358979323846 / 180, ca = cos(a), sa = sin(a);
    const size_t plane = (size_t)h * w;
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++) {
            /* the source of this pixel's centre, rotated about the image's
             * (rows downwards: counter-clockwise on the screen, as PIL) */
            const double dx = xx + 0.5 - w / 2.0, dy = y + 0.5 - h / 2.0;
            const double fx = floor(ca * dx - sa * dy + w / 2.0);
            const double fy = floor(sa * dx + ca * dy + h / 2.0);
            const int in = fx >= 0 && fx < w && fy >= 0 && fy < h;
            const size_t o = (size_t)y * w + xx, src = in ? (size_t)fy * w + (size_t)fx : 0;
            for (int ch = 0; ch < c; ch++)
                out[ch * plane + o] = in ? x[ch * plane + src] : 0;
        }
}

void data_rotate(const uint8_t *x, int k, int c, int h, int w, int deg, rng *r, uint8_t *out)
{
    const size_t img = (size_t)c * h * w;
    for (int n = 0; n < k; n++)
        data_rotate_by(x + n * img, c, h, w, (2 * rng_uniform(r) - 1) * deg, out + n * img);
}

void dataset_augment(const dataset *d, uint8_t *x, int k, rng *r, uint8_t *out)
{
    data_augment(x, k, d->c, d->h, d->w, d->pad, r, out);
    if (d->rotate) {
        data_rotate(out, k, d->c, d->h, d->w, d->rotate, r, x);
        memcpy(out, x, (size_t)k * d->c * d->h * d->w);
    }
}
