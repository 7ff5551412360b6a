/* Times the CPU backend's convolutions, im2col + sgemm (cpu_conv.c),
 * oneDNN (cpu_conv_dnnl.c) and our Winograd F(2x2, 3x3) and F(4x4, 3x3) (cpu_wino.c, on the
 * shapes it takes), at the shapes of our networks (batch 32): the
 * forward alone and forward + backward (dx, dw), interleaved so that a
 * busy machine slows both alike. Prints one row per shape with the median
 * and the fastest (min) milliseconds of each, as median/min (on a busy
 * machine the min is the steadier), and the implementation the table's
 * entries pick (backend_cpu_set_conv / RMINAS_CONV, and the per-shape rule
 * of cpu.c; "dnnl+im": the forward on oneDNN, the backward on our own).
 * Usage: bench_conv [REPS [THREADS [MATCH]]]: 20 reps, all threads, every
 * shape (MATCH: only shapes whose name contains it). Not part of make check. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tensor/backend.h"
#include "tensor/cpu_ops.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/rng.h"

#include "../wino_tile.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* "median/min" in ms of n times (sorted in place) */
static void stats(char *buf, size_t len, double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp);
    double med = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    snprintf(buf, len, "%.2f/%.2f", 1e3 * med, 1e3 * t[0]);
}

typedef struct shape {
    const char *name;
    int n, cin, hw, cout, k, stride, groups, relu_in;
    int fwd_only, no_dx; /* the teacher's pool; the stem (its input is data) */
    int dil;             /* dilation */
} shape;

static const shape shapes[] = {
    {"16ch 32x32 3x3 relu_in", 32, 16, 32, 16, 3, 1, 1, 1, 0, 0, 1},
    {"32ch 16x16 3x3 relu_in", 32, 32, 16, 32, 3, 1, 1, 1, 0, 0, 1},
    {"64ch 8x8 3x3 relu_in", 32, 64, 8, 64, 3, 1, 1, 1, 0, 0, 1},
    {"16ch 32x32 1x1 relu_in", 32, 16, 32, 16, 1, 1, 1, 1, 0, 0, 1},
    {"stem 3->16 32x32 3x3", 32, 3, 32, 16, 3, 1, 1, 0, 0, 1, 1},
    {"16->32 32x32 3x3 s2", 32, 16, 32, 32, 3, 2, 1, 0, 0, 0, 1},
    {"dw 32ch 16x16 3x3", 32, 32, 16, 32, 3, 1, 32, 0, 0, 0, 1},
    {"n512 16ch 32x32 3x3", 512, 16, 32, 16, 3, 1, 1, 0, 1, 0, 1},
    /* the chain space's inverted residuals (expansion 3 and 6) */
    {"dw 96ch 32x32 5x5 relu", 32, 96, 32, 96, 5, 1, 96, 1, 0, 0, 1},
    {"dw 48ch 32x32 7x7 relu", 32, 48, 32, 48, 7, 1, 48, 1, 0, 0, 1},
    {"dw 96ch 16x16 3x3 relu", 32, 96, 16, 96, 3, 1, 96, 1, 0, 0, 1},
    {"dw 192ch 16x16 5x5 relu", 32, 192, 16, 192, 5, 1, 192, 1, 0, 0, 1},
    {"dw 96ch 16x16 7x7 relu", 32, 96, 16, 96, 7, 1, 96, 1, 0, 0, 1},
    {"dw 192ch 8x8 3x3 relu", 32, 192, 8, 192, 3, 1, 192, 1, 0, 0, 1},
    {"dw 192ch 8x8 5x5 relu", 32, 192, 8, 192, 5, 1, 192, 1, 0, 0, 1},
    {"dw 384ch 8x8 7x7 relu", 32, 384, 8, 384, 7, 1, 384, 1, 0, 0, 1},
    {"dw 96ch 32x32 3x3 s2 relu", 32, 96, 32, 96, 3, 2, 96, 1, 0, 0, 1},
    /* DARTS's sep_conv and dil_conv at C = 16, batch 128 */
    {"n128 dw 16ch 32x32 5x5 relu", 128, 16, 32, 16, 5, 1, 16, 1, 0, 0, 1},
    {"n128 dw 16ch 32x32 3x3 d2 relu", 128, 16, 32, 16, 3, 1, 16, 1, 0, 0, 2},
    {"n128 dw 16ch 32x32 5x5 d2 relu", 128, 16, 32, 16, 5, 1, 16, 1, 0, 0, 2},
    /* DARTS's reduction cells: the same at stride 2 */
    {"n128 dw 16ch 32x32 5x5 s2 relu", 128, 16, 32, 16, 5, 2, 16, 1, 0, 0, 1},
    {"n128 dw 16ch 32x32 3x3 s2 d2 relu", 128, 16, 32, 16, 3, 2, 16, 1, 0, 0, 2},
    {"n128 dw 32ch 16x16 5x5 s2 d2 relu", 128, 32, 16, 32, 5, 2, 32, 1, 0, 0, 2},
    {"n128 dw 32ch 16x16 5x5 relu", 128, 32, 16, 32, 5, 1, 32, 1, 0, 0, 1},
    {"n128 dw 64ch 8x8 3x3 relu", 128, 64, 8, 64, 3, 1, 64, 1, 0, 0, 1},
    {"n128 dw 64ch 8x8 5x5 d2 relu", 128, 64, 8, 64, 5, 1, 64, 1, 0, 0, 2},
};

typedef struct impl {
    size_t (*work_size)(const conv_desc *d);
    void (*fwd)(const conv_desc *d, const float *x, const float *w, const float *b,
                float *y, int acc, float *work);
    void (*bwd)(const conv_desc *d, const float *x, const float *w, const float *dy,
                float *dx, float *dw, float *db, float *work);
} impl;

static float *fnew(size_t n, rng *r)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "bench_conv: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)(2. * rng_uniform(r) - 1.);
    return p;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 20;
    if (reps < 1)
        reps = 1;
    if (argc > 2)
        backend_cpu_set_threads(atoi(argv[2]));
#ifndef HAVE_DNNL
    printf("bench_conv: this rminas was built without oneDNN; only im2col\n");
#endif
    enum { NI = 4 };
    const impl impls[NI] = {
        {cpu_conv_work_size, cpu_conv2d_forward, cpu_conv2d_backward},
#ifdef HAVE_DNNL
        {cpu_dnnl_conv_work_size, cpu_dnnl_conv2d_forward, cpu_dnnl_conv2d_backward},
#else
        {cpu_conv_work_size, cpu_conv2d_forward, cpu_conv2d_backward},
#endif
        {cpu_wino_work_size, wino_fwd, wino_bwd}, /* F(2x2, 3x3) */
        {cpu_wino_work_size, wino_fwd, wino_bwd}, /* F(4x4, 3x3) */
    };
    rng r;
    rng_seed(&r, 1);
    printf("threads %d, %d reps, ms median/min; table's choice: %s\n",
           backend_cpu_threads(), reps, backend_cpu_conv());
    printf("%-30s %12s %12s %12s %12s %12s %12s %12s %12s  %-7s %s\n",
           "shape (n=32 unless said)", "im2col fwd", "dnnl fwd", "wino2 fwd", "wino4 fwd",
           "im2col f+b", "dnnl f+b", "wino2 f+b", "wino4 f+b", "picks",
           "work MiB im2col/dnnl");
    double *t = malloc((size_t)2 * NI * reps * sizeof *t);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const shape *sh = &shapes[s];
        if (argc > 3 && !strstr(sh->name, argv[3]))
            continue;
        conv_desc d = {.n = sh->n, .cin = sh->cin, .h = sh->hw, .w = sh->hw,
                       .cout = sh->cout, .kh = sh->k, .kw = sh->k, .stride = sh->stride,
                       .pad = sh->k / 2 * sh->dil,
                       .dil = sh->dil, .groups = sh->groups,
                       .relu_in = sh->relu_in};
        if (conv_desc_init(&d) < 0) {
            printf("%s: %s\n", sh->name, rm_last_error());
            continue;
        }
        size_t nx = (size_t)d.n * d.cin * d.h * d.w, ny = (size_t)d.n * d.cout * d.oh * d.ow;
        size_t nw = (size_t)d.cout * (d.cin / d.groups) * d.kh * d.kw, nwork = 0, ws[NI];
        const int ni = cpu_wino_ok(&d) ? NI : NI - 2;
        for (int i = 0; i < ni; i++) {
            ws[i] = impls[i].work_size(&d);
            nwork = ws[i] > nwork ? ws[i] : nwork;
        }
        float *x = fnew(nx, &r), *w = fnew(nw, &r), *y = fnew(ny, &r), *dy = fnew(ny, &r);
        float *dx = fnew(nx, &r), *dw = fnew(nw, &r), *work = fnew(nwork, &r);
        for (int i = 0; i < ni; i++) { /* warm up: primitives, caches */
            wino_m = i == NI - 1 ? 4 : 2;
            impls[i].fwd(&d, x, w, NULL, y, 0, work);
            if (!sh->fwd_only)
                impls[i].bwd(&d, x, w, dy, sh->no_dx ? NULL : dx, dw, NULL, work);
        }
        for (int k = 0; k < reps; k++)
            for (int i = 0; i < ni; i++) {
                wino_m = i == NI - 1 ? 4 : 2;
                double t0 = rm_seconds();
                impls[i].fwd(&d, x, w, NULL, y, 0, work);
                double t1 = rm_seconds();
                t[i * reps + k] = t1 - t0;
                if (sh->fwd_only)
                    continue;
                t0 = rm_seconds();
                impls[i].fwd(&d, x, w, NULL, y, 0, work);
                impls[i].bwd(&d, x, w, dy, sh->no_dx ? NULL : dx, dw, NULL, work);
                t[(NI + i) * reps + k] = rm_seconds() - t0;
            }
        char m[2 * NI][32];
        for (int i = 0; i < 2 * NI; i++) {
            if ((i >= NI && sh->fwd_only) || i % NI >= ni)
                snprintf(m[i], sizeof m[i], "-");
            else
                stats(m[i], sizeof m[i], t + (size_t)i * reps, reps);
        }
        const int wm = cpu_conv_uses_wino(&d);
        printf("%-30s %12s %12s %12s %12s %12s %12s %12s %12s  %-7s %.1f/%.1f\n", sh->name,
               m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7],
               wm == 4 ? "wino4" : wm                                     ? "wino2"
               : cpu_conv_uses_dnnl(&d) && !cpu_conv_uses_dnnl_backward(&d) ? "dnnl+im"
               : cpu_conv_uses_dnnl(&d)                                   ? "dnnl"
                                                                          : "im2col",
               ws[0] * sizeof(float) / 1048576., ws[1] * sizeof(float) / 1048576.);
        free(x), free(w), free(y), free(dy), free(dx), free(dw), free(work);
    }
    free(t);
    return 0;
}
