/* TAP test of every entry of the CPU backend table.
 *
 * Forward ops are compared with naive double-precision loops written here.
 * Backward ops are checked by central finite differences, in double, of the
 * scalar L = sum(y .* r) for a fixed random r, perturbing one float input at a
 * time. Backward ops must accumulate, so gradient buffers are pre-filled with
 * a constant that is subtracted before the comparison.
 *
 * Tolerances (err = |a - ref| / max(1, |ref|)):
 *  - forward vs double reference: 1e-5 (float sums of at most a few hundred
 *    products of values in [-1, 1]; observed ~1e-7 to 1e-6); convolutions
 *    summing K = cin/groups*kh*kw products allow max(1e-5, 1e-7*K)
 *    (observed 3e-6 at K = 400);
 *  - gradients vs finite differences: 1e-3. Every op but batch norm and
 *    softmax is linear in the perturbed value, so the differences carry no
 *    truncation error, only float rounding of y divided by the step:
 *    ~1e-4 at step 1e-2, so convolutions use steps 0.2 (x, kept at
 *    |x| >= 0.25 so relu_in never flips) and 0.25 (w, b) and observe ~1e-5.
 *    Batch norm (step 1e-2, inputs of standard deviation >= 1) and softmax
 *    (step 1e-3) add an O(step^2) truncation error (observed ~5e-5).
 *    Inputs of max pooling are 0.05 apart, farther than its step 1e-2;
 *    average pooling uses step 0.25.
 *  - elementwise ops with one float rounding (axpy, scale, accumulating
 *    relu backward and shortcut): 1e-7, above the bound 2^-24 = 6e-8;
 *    copies (relu, shortcut, max pool): exact;
 *  - sgd_step vs the same float formula: 1e-6 (FMA contraction may differ).
 */
#ifdef HAVE_CONFIG_H
#include "config.h" /* HAVE_DNNL */
#endif

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tap.h"
#include "tensor/backend.h"
#include "tensor/cpu_ops.h" /* cpu_dnnl_conv_refused */
#include "util/err.h"
#include "util/rng.h"
#include "wino_tile.h"

#define TOL_FWD 1e-5
#define TOL_GRAD 1e-3
#define TOL_SGD 1e-6
/* at most this many coordinates of one tensor are checked by differences */
#define FD_MAX 120

#define ok tap_ok

static rng R;
static const backend *be;

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static float *fnew(size_t n) { return xmalloc(n * sizeof(float)); }
static double *dnew(size_t n) { return xmalloc(n * sizeof(double)); }

static double unif(double lo, double hi) { return lo + (hi - lo) * rng_uniform(&R); }

static void fill_unif(float *v, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)unif(lo, hi);
}

/* values in +-[lo, hi]: farther than any step from the ReLU kink */
static void fill_away(float *v, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(unif(lo, hi) * (rng_uniform(&R) < 0.5 ? -1 : 1));
}

static void fill_const(float *v, size_t n, float c)
{
    for (size_t i = 0; i < n; i++)
        v[i] = c;
}

/* max over i of |a[i] - ref[i]| / max(1, |ref[i]|); NaN counts as infinite */
static double max_err(const float *a, const double *ref, size_t n)
{
    double m = 0.;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - ref[i]) / fmax(1., fabs(ref[i]));
        if (!(e <= m))
            m = isnan(e) ? INFINITY : e;
    }
    return m;
}

static void check_close(const char *name, const float *a, const double *ref,
                        size_t n, double tol)
{
    double e = max_err(a, ref, n);
    ok(e <= tol, "%s (max err %.1e, tol %.0e)", name, e, tol);
}

static double dot_r(const float *y, const float *r, size_t n)
{
    double s = 0.;
    for (size_t i = 0; i < n; i++)
        s += (double)y[i] * r[i];
    return s;
}

/* ---- finite differences ---- */

typedef double (*loss_fn)(void *ctx);

/* The analytic gradient is acc[i] - base (the backward accumulated into a
 * buffer pre-filled with base). Checks up to FD_MAX coordinates of v.
 * The loss runs on one thread: its value does not depend on the thread
 * count, and thousands of forks on a busy machine (threads spinning at each
 * barrier for a sibling that waits for a core) took tens of seconds. Work
 * buffers planned for more threads are large enough for one. */
static void check_fd(const char *name, loss_fn f, void *ctx, float *v, size_t n,
                     const float *acc, float base, double step, double tol)
{
    size_t m = n < FD_MAX ? n : FD_MAX;
    double worst = 0.;
    int threads = backend_cpu_threads();
    backend_cpu_set_threads(1);
    for (size_t t = 0; t < m; t++) {
        size_t i = n <= FD_MAX ? t : (size_t)rng_below(&R, n);
        float v0 = v[i], vp = (float)(v0 + step), vm = (float)(v0 - step);
        v[i] = vp;
        double lp = f(ctx);
        v[i] = vm;
        double lm = f(ctx);
        v[i] = v0;
        double num = (lp - lm) / ((double)vp - vm);
        double ana = (double)acc[i] - base;
        double e = fabs(ana - num) / fmax(1., fabs(num));
        if (!(e <= worst)) {
            worst = isnan(e) ? INFINITY : e;
            if (worst > tol)
                tap_diag("%s: [%zu] analytic %.7g, numeric %.7g", name, i, ana, num);
        }
    }
    backend_cpu_set_threads(threads);
    ok(worst <= tol, "%s (max err %.1e, tol %.0e)", name, worst, tol);
}

/* ---- convolution ---- */

static void naive_conv(const conv_desc *d, const float *x, const float *w,
                       const float *b, double *y)
{
    int cin_g = d->cin / d->groups, cout_g = d->cout / d->groups;
    for (int i = 0; i < d->n; i++)
        for (int co = 0; co < d->cout; co++)
            for (int oy = 0; oy < d->oh; oy++)
                for (int ox = 0; ox < d->ow; ox++) {
                    int g = co / cout_g;
                    double s = b ? b[co] : 0.;
                    for (int ci = 0; ci < cin_g; ci++)
                        for (int ki = 0; ki < d->kh; ki++)
                            for (int kj = 0; kj < d->kw; kj++) {
                                int iy = oy * d->stride - d->pad + ki * d->dil;
                                int ix = ox * d->stride - d->pad + kj * d->dil;
                                if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w)
                                    continue;
                                double v = x[(((size_t)i * d->cin + g * cin_g + ci) *
                                                  d->h + iy) * d->w + ix];
                                if (d->relu_in && v < 0)
                                    v = 0;
                                s += v * w[(((size_t)co * cin_g + ci) * d->kh + ki) *
                                               d->kw + kj];
                            }
                    y[(((size_t)i * d->cout + co) * d->oh + oy) * d->ow + ox] = s;
                }
}

typedef struct conv_ctx {
    const conv_desc *d;
    float *x, *w, *b, *y, *r, *work;
    size_t ny;
} conv_ctx;

/* The convolution under test: the table's entries (under
 * backend_cpu_set_conv), or oneDNN's functions called directly, since the
 * table keeps some shapes (1x1) on im2col even when oneDNN is selected. */
typedef struct conv_impl {
    const char *name;
    size_t (*work_size)(const conv_desc *d);
    void (*fwd)(const conv_desc *d, const float *x, const float *w, const float *b,
                float *y, int acc, float *work);
    void (*bwd)(const conv_desc *d, const float *x, const float *w, const float *dy,
                float *dx, float *dw, float *db, float *work);
} conv_impl;

static size_t table_work_size(const conv_desc *d) { return be->conv_work_size(d); }

static void table_fwd(const conv_desc *d, const float *x, const float *w, const float *b,
                      float *y, int acc, float *work)
{
    be->conv2d_forward(d, x, w, b, y, acc, work);
}

static void table_bwd(const conv_desc *d, const float *x, const float *w, const float *dy,
                      float *dx, float *dw, float *db, float *work)
{
    be->conv2d_backward(d, x, w, dy, dx, dw, db, work, 1);
}

static const conv_impl conv_table = {"table", table_work_size, table_fwd, table_bwd};
#ifdef HAVE_DNNL
static const conv_impl conv_im2col = {"im2col", cpu_conv_work_size, cpu_conv2d_forward,
                                      cpu_conv2d_backward};
static const conv_impl conv_dnnl = {"dnnl", cpu_dnnl_conv_work_size,
                                    cpu_dnnl_conv2d_forward, cpu_dnnl_conv2d_backward};
static const conv_impl conv_wino2 = {"winograd2", cpu_wino_work_size, wino_fwd, wino_bwd};
static const conv_impl conv_wino4 = {"winograd4", cpu_wino_work_size, wino_fwd, wino_bwd};
static int conv_refused; /* cases oneDNN refused (then im2col ran) */
static int conv_wino;    /* cases that ran on Winograd */
#endif
static const conv_impl *ci = &conv_table;
static const char *conv_variant = ""; /* for the tags */
/* the forward's tolerance, times this: 5 under F(4x4, 3x3), whose transforms
 * (A's 8, G's 1/24) round more than the others' sums (1.3-2.5x the usual
 * tolerance measured on these cases); gradients keep theirs */
static double conv_tol_mul = 1.;

static double conv_loss(void *p)
{
    conv_ctx *c = p;
    ci->fwd(c->d, c->x, c->w, c->b, c->y, 0, c->work);
    return dot_r(c->y, c->r, c->ny);
}

static void test_conv(int n, int cin, int h, int w, int cout, int kh, int kw,
                      int stride, int pad, int dil, int groups, int relu_in,
                      int bias)
{
    conv_desc d = {.n = n, .cin = cin, .h = h, .w = w, .cout = cout, .kh = kh,
                   .kw = kw, .stride = stride, .pad = pad, .dil = dil,
                   .groups = groups, .relu_in = relu_in};
    char tag[160], name[256];
    snprintf(tag, sizeof tag, "conv %s%s n%d %dx%dx%d->%d k%dx%d s%d p%d d%d g%d%s%s",
             ci == &conv_table ? backend_cpu_conv() : ci->name, conv_variant, n, cin, h, w, cout, kh, kw, stride, pad, dil, groups,
             relu_in ? " relu_in" : "", bias ? " bias" : "");
    if (conv_desc_init(&d) != 0) {
        ok(0, "%s: conv_desc_init: %s", tag, rm_last_error());
        return;
    }
    size_t nx = (size_t)n * cin * h * w, ny = (size_t)n * cout * d.oh * d.ow;
    size_t nw = (size_t)cout * (cin / groups) * kh * kw;
    size_t nwork = ci->work_size(&d);
    float *x = fnew(nx), *wt = fnew(nw), *b = bias ? fnew(cout) : NULL;
    float *y = fnew(ny), *y0 = fnew(ny), *r = fnew(ny), *work = fnew(nwork);
    float *dx = fnew(nx), *dw = fnew(nw), *db = fnew(cout);
    float *dx1 = fnew(nx), *dw1 = fnew(nw), *db1 = fnew(cout);
    double *ref = dnew(ny);
    fill_away(x, nx, 0.25, 1.);
    fill_unif(wt, nw, -1., 1.);
    if (b)
        fill_unif(b, cout, -1., 1.);
    fill_unif(r, ny, -1., 1.);

    const double tol_fwd = conv_tol_mul * fmax(TOL_FWD, 1e-7 * (cin / groups) * kh * kw);
    naive_conv(&d, x, wt, b, ref);
    fill_const(y, ny, NAN);
    ci->fwd(&d, x, wt, b, y, 0, work);
    snprintf(name, sizeof name, "%s: forward", tag);
    check_close(name, y, ref, ny, tol_fwd);

    fill_unif(y0, ny, -1., 1.);
    memcpy(y, y0, ny * sizeof *y);
    ci->fwd(&d, x, wt, b, y, 1, work);
    for (size_t i = 0; i < ny; i++)
        ref[i] += y0[i];
    snprintf(name, sizeof name, "%s: forward acc=1", tag);
    check_close(name, y, ref, ny, tol_fwd);

    const float bx = 0.25f, bw = -0.5f, bb = 0.125f;
    fill_const(dx, nx, bx);
    fill_const(dw, nw, bw);
    fill_const(db, cout, bb);
    ci->bwd(&d, x, wt, r, dx, dw, bias ? db : NULL, work);
    memcpy(dx1, dx, nx * sizeof *dx);
    memcpy(dw1, dw, nw * sizeof *dw);
    memcpy(db1, db, cout * sizeof *db);

    conv_ctx c = {&d, x, wt, b, y, r, work, ny};
    snprintf(name, sizeof name, "%s: dx by FD", tag);
    check_fd(name, conv_loss, &c, x, nx, dx, bx, 0.2, TOL_GRAD);
    snprintf(name, sizeof name, "%s: dw by FD", tag);
    check_fd(name, conv_loss, &c, wt, nw, dw, bw, 0.25, TOL_GRAD);
    if (bias) {
        snprintf(name, sizeof name, "%s: db by FD", tag);
        check_fd(name, conv_loss, &c, b, cout, db, bb, 0.25, TOL_GRAD);
    }

    /* a second backward adds the same gradient again (work reused, per-thread
     * accumulators reset) */
    ci->bwd(&d, x, wt, r, dx, dw, bias ? db : NULL, work);
    double e = 0.;
    for (size_t i = 0; i < nx; i++)
        e = fmax(e, fabs((dx[i] - bx) - 2. * (dx1[i] - bx)) / fmax(1., fabs(dx1[i] - bx)));
    for (size_t i = 0; i < nw; i++)
        e = fmax(e, fabs((dw[i] - bw) - 2. * (dw1[i] - bw)) / fmax(1., fabs(dw1[i] - bw)));
    if (bias)
        for (int i = 0; i < cout; i++)
            e = fmax(e, fabs((db[i] - bb) - 2. * (db1[i] - bb)) / fmax(1., fabs(db1[i] - bb)));
    ok(e <= TOL_FWD, "%s: backward accumulates (max err %.1e, tol %.0e)", tag, e, TOL_FWD);

    /* gradients asked for one at a time match the joint call */
    fill_const(dx, nx, bx);
    ci->bwd(&d, x, wt, r, dx, NULL, NULL, work);
    fill_const(dw, nw, bw);
    ci->bwd(&d, x, wt, r, NULL, dw, NULL, work);
    e = 0.;
    for (size_t i = 0; i < nx; i++)
        e = fmax(e, fabs(dx[i] - dx1[i]));
    for (size_t i = 0; i < nw; i++)
        e = fmax(e, fabs(dw[i] - dw1[i]));
    ok(e <= TOL_FWD, "%s: dx alone, dw alone (max diff %.1e)", tag, e);

    if (ci == &conv_table) {
        /* dx_acc = 0 overwrites: what accumulating into zeros gives */
        fill_const(dx1, nx, 0.f);
        be->conv2d_backward(&d, x, wt, r, dx1, NULL, NULL, work, 1);
        fill_const(dx, nx, NAN);
        be->conv2d_backward(&d, x, wt, r, dx, NULL, NULL, work, 0);
        size_t bad = 0;
        for (size_t i = 0; i < nx; i++)
            bad += dx[i] != dx1[i];
        ok(bad == 0, "%s: dx_acc=0 overwrites dx (NaN before): accumulated into zeros, every "
                     "value (%zu differ)", tag, bad);
    }

#ifdef HAVE_DNNL
    if (ci == &conv_dnnl && !*conv_variant && cpu_dnnl_conv_refused(&d)) {
        tap_diag("%s: oneDNN refused it, im2col ran", tag);
        conv_refused++;
    }
    conv_wino += cpu_conv_uses_dnnl(&d) && cpu_dnnl_conv_winograd(&d);
#endif
    free(x), free(wt), free(b), free(y), free(y0), free(r), free(work);
    free(dx), free(dw), free(db), free(dx1), free(dw1), free(db1), free(ref);
}

/* Every convolution case, under the implementation selected. */
static void test_conv_cases(void)
{
    /* two threads (more than the samples of some cases, fewer than others) */
    backend_cpu_set_threads(2);
    /*        n cin  h  w cout kh kw s  p  d  g relu bias */
    test_conv(3, 4, 7, 7, 6, 3, 3, 1, 1, 1, 1, 0, 1);
    test_conv(3, 4, 8, 8, 6, 3, 3, 2, 1, 1, 1, 0, 0);
    test_conv(2, 3, 9, 8, 4, 5, 5, 1, 2, 1, 1, 0, 1);
    test_conv(2, 3, 9, 9, 4, 5, 5, 2, 2, 1, 1, 1, 0);
    test_conv(3, 5, 6, 6, 7, 1, 1, 1, 0, 1, 1, 0, 1); /* pointwise: no im2col */
    test_conv(3, 5, 6, 6, 7, 1, 1, 1, 0, 1, 1, 1, 0); /* 1x1 with relu_in */
    test_conv(2, 4, 7, 7, 4, 1, 1, 2, 0, 1, 1, 0, 0); /* 1x1 stride 2 */
    test_conv(2, 4, 8, 8, 4, 3, 3, 1, 2, 2, 1, 0, 1); /* dilation 2 */
    test_conv(2, 4, 9, 9, 4, 3, 3, 2, 2, 2, 1, 1, 0);
    test_conv(3, 6, 7, 7, 6, 3, 3, 1, 1, 1, 6, 0, 1); /* depthwise */
    test_conv(3, 6, 8, 8, 6, 3, 3, 2, 1, 1, 6, 1, 0);
    test_conv(2, 5, 9, 9, 5, 5, 5, 1, 4, 2, 5, 1, 1); /* depthwise 5x5 dil 2 */
    /* depthwise on padded planes (cpu_dw.c): 7x7, not square, rectangular
     * kernels, pad 0 and pads below the kernel's half, more than a block
     * of 64 outputs per plane */
    test_conv(2, 3, 8, 8, 3, 7, 7, 1, 3, 1, 3, 1, 1);
    test_conv(2, 4, 9, 13, 4, 5, 5, 1, 2, 1, 4, 1, 0);
    test_conv(2, 3, 10, 7, 3, 3, 5, 1, 1, 1, 3, 0, 1);
    test_conv(2, 3, 9, 9, 3, 5, 5, 1, 0, 1, 3, 1, 1);
    test_conv(2, 3, 11, 12, 3, 5, 5, 1, 1, 2, 3, 0, 0);
    test_conv(1, 2, 21, 19, 2, 3, 3, 1, 2, 2, 2, 1, 1);
    test_conv(2, 3, 6, 6, 3, 3, 3, 1, 3, 1, 3, 0, 1); /* pad > dil*(k-1) */
    /* strided: phase planes; pixels no output reads (pad 0, even sizes);
     * stride 4 (the largest) and 5 (the grouped im2col path) */
    test_conv(2, 3, 11, 10, 3, 5, 5, 2, 2, 1, 3, 1, 1);
    test_conv(2, 4, 12, 9, 4, 3, 3, 2, 2, 2, 4, 0, 0);
    test_conv(2, 3, 8, 8, 3, 3, 3, 2, 0, 1, 3, 1, 1);
    test_conv(1, 2, 13, 14, 2, 7, 5, 3, 3, 1, 2, 1, 0);
    test_conv(2, 3, 17, 15, 3, 5, 5, 4, 1, 1, 3, 0, 1);
    test_conv(2, 3, 17, 15, 3, 3, 3, 5, 1, 1, 3, 1, 1);
    test_conv(2, 4, 8, 8, 6, 3, 3, 1, 1, 1, 2, 0, 1); /* groups 2 */
    test_conv(2, 4, 8, 8, 4, 3, 3, 2, 1, 1, 2, 1, 0);
    test_conv(2, 3, 6, 6, 6, 3, 3, 1, 1, 1, 3, 0, 1); /* depth multiplier 2 */
    test_conv(1, 3, 6, 9, 5, 3, 1, 1, 1, 1, 1, 0, 1); /* n=1, 3x1 kernel */
    test_conv(5, 2, 5, 4, 3, 1, 3, 2, 1, 1, 1, 1, 1); /* 1x3 kernel */
    test_conv(2, 3, 6, 6, 4, 3, 3, 1, 3, 1, 1, 0, 1); /* pad > dil*(k-1) */
    /* large enough for several column blocks (of x; of dy; of x at stride 2) */
    test_conv(1, 16, 40, 40, 2, 5, 5, 1, 2, 1, 1, 1, 1);
    test_conv(1, 2, 40, 40, 16, 5, 5, 1, 2, 1, 1, 1, 0);
    test_conv(1, 32, 64, 64, 2, 3, 3, 2, 1, 1, 1, 1, 0);
    /* one-row blocks, with kernel rows whose first in-image row lies past
     * the block (pad 2) */
    test_conv(1, 64, 6, 170, 2, 5, 5, 1, 2, 1, 1, 1, 1);
    test_conv(1, 2, 6, 170, 64, 5, 5, 1, 2, 1, 1, 0, 0);
    test_conv(1, 64, 6, 330, 2, 5, 5, 2, 2, 1, 1, 1, 0); /* col2im */
    /* above the size (2^18 multiply-adds) where convolutions use threads:
     * per-thread slices and the dw reduction */
    test_conv(3, 8, 14, 14, 8, 3, 3, 1, 1, 1, 1, 1, 1);
    test_conv(3, 8, 26, 26, 8, 3, 3, 2, 1, 1, 1, 0, 1);
    test_conv(3, 32, 16, 16, 32, 1, 1, 1, 0, 1, 1, 0, 1);
    test_conv(3, 16, 32, 32, 16, 3, 3, 1, 1, 1, 16, 1, 1);
    test_conv(3, 24, 16, 16, 24, 5, 5, 1, 2, 1, 24, 1, 0);
    test_conv(2, 9, 16, 16, 9, 7, 7, 1, 3, 1, 9, 1, 1);
    test_conv(5, 16, 16, 16, 16, 5, 5, 2, 2, 1, 16, 1, 1);
    backend_cpu_set_threads(3);
    test_conv(4, 12, 14, 14, 12, 3, 3, 1, 1, 1, 2, 0, 1);
    test_conv(7, 16, 18, 18, 16, 3, 3, 1, 1, 1, 16, 0, 1);
    backend_cpu_set_threads(1);
    test_conv(3, 8, 14, 14, 8, 3, 3, 1, 1, 1, 1, 1, 1);
    backend_cpu_set_threads(2);
}

/* backend_cpu_set_conv / backend_cpu_conv: the names, the default (our
 * Winograd, oneDNN for the other shapes, when built with oneDNN, unless
 * RMINAS_CONV names another) and the errors. */
static void test_conv_select(void)
{
#ifdef HAVE_DNNL
    const char *env = getenv("RMINAS_CONV");
    const char *want = env && (!strcmp(env, "im2col") || !strcmp(env, "dnnl") ||
                               !strcmp(env, "winograd") || !strcmp(env, "winograd4"))
                           ? env
                           : "winograd2";
#else
    const char *want = "im2col";
#endif
    const char *def = backend_cpu_conv();
    ok(!strcmp(def, want), "convolutions default to %s (%s)", want, def);
    ok(backend_cpu_set_conv("im2col") == 0 && !strcmp(backend_cpu_conv(), "im2col"),
       "backend_cpu_set_conv(\"im2col\")");
    rm_clear_error();
    ok(backend_cpu_set_conv("fft") == -1 && strstr(rm_last_error(), "unknown") &&
           !strcmp(backend_cpu_conv(), "im2col"),
       "backend_cpu_set_conv(\"fft\") fails and keeps im2col: %s", rm_last_error());
    rm_clear_error();
#ifdef HAVE_DNNL
    ok(backend_cpu_set_conv("winograd") == 0 && !strcmp(backend_cpu_conv(), "winograd"),
       "backend_cpu_set_conv(\"winograd\")");
    ok(backend_cpu_set_conv("dnnl") == 0 && !strcmp(backend_cpu_conv(), "dnnl"),
       "backend_cpu_set_conv(\"dnnl\")");
#else
    ok(backend_cpu_set_conv("dnnl") == -1 && strstr(rm_last_error(), "without oneDNN"),
       "backend_cpu_set_conv(\"dnnl\") without oneDNN: %s", rm_last_error());
    ok(backend_cpu_set_conv("winograd") == -1 && strstr(rm_last_error(), "without oneDNN"),
       "backend_cpu_set_conv(\"winograd\") without oneDNN: %s", rm_last_error());
#endif
    backend_cpu_set_conv(def);
}

#ifdef HAVE_DNNL
/* max |a - b| / max(1, max |b|) */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double e = 0., m = 1.;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return e / m;
}
#endif

#ifdef HAVE_DNNL
/* Our Winograd F(m x m, 3x3), m = 2 (set conv winograd2) or 4 (winograd4):
 * called directly on the shapes it takes (odd sizes and partial tiles, 8 to
 * 136 channels for every GEMM column block, 8- and 16-wide, several chunks
 * of 64 tiles, 1-3 threads), then the table under that setting, which sends
 * the other shapes to oneDNN. */
static void test_conv_wino(int m)
{
    const char *setting = m == 4 ? "winograd4" : "winograd2";
    conv_desc probe = {.n = 1, .cin = 8, .h = 4, .w = 4, .cout = 8, .kh = 3, .kw = 3,
                       .stride = 1, .pad = 1, .dil = 1, .groups = 1};
    conv_desc_init(&probe);
    if (!cpu_wino_ok(&probe)) {
        tap_skip("%s: this CPU lacks AVX2 and FMA", setting);
        return;
    }
    wino_m = m;
    ci = m == 4 ? &conv_wino4 : &conv_wino2;
    conv_tol_mul = m == 4 ? 5. : 1.;
    backend_cpu_set_threads(2);
    /*        n cin  h  w cout kh kw s  p  d  g relu bias */
    test_conv(3, 8, 7, 7, 16, 3, 3, 1, 1, 1, 1, 0, 1);
    test_conv(2, 16, 8, 8, 8, 3, 3, 1, 1, 1, 1, 1, 0);
    test_conv(1, 8, 13, 5, 24, 3, 3, 1, 1, 1, 1, 1, 1);
    test_conv(2, 24, 17, 19, 8, 3, 3, 1, 1, 1, 1, 0, 0);
    test_conv(1, 16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 0);
    test_conv(4, 32, 16, 16, 32, 3, 3, 1, 1, 1, 1, 1, 1);
    backend_cpu_set_threads(3);
    test_conv(5, 16, 9, 9, 16, 3, 3, 1, 1, 1, 1, 1, 1);
    backend_cpu_set_threads(1);
    test_conv(3, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1, 0);
    backend_cpu_set_threads(2);
    /* more column blocks of the 16-wide products: 48 = 32 + 16, 40 = 32 + 8,
     * 136 = 2 x 64 + 8; with AVX-512, 16-channel blocks in and 8 out (48 ->
     * 40), as 16 -> 8 and 8 -> 16 above, and odd image sizes */
    test_conv(2, 48, 6, 5, 40, 3, 3, 1, 1, 1, 1, 1, 1);
    test_conv(1, 8, 4, 6, 136, 3, 3, 1, 1, 1, 1, 0, 0);
    if (m == 4) { /* one tile, and 4x4 tiles with a partial last row and column */
        test_conv(2, 16, 4, 4, 16, 3, 3, 1, 1, 1, 1, 1, 1);
        test_conv(2, 8, 10, 11, 16, 3, 3, 1, 1, 1, 1, 1, 0);
    }
    ci = &conv_table;
    backend_cpu_set_conv(setting);
    ok(!strcmp(backend_cpu_conv(), setting), "backend_cpu_set_conv(\"%s\")", setting);
    conv_desc big = probe;
    big.h = big.w = 13;
    conv_desc_init(&big);
    ok(cpu_conv_uses_wino(&probe) == 2 && cpu_conv_uses_wino(&big) == m,
       "%s takes 3x3 stride-1 shapes of 8-channel multiples: F(%dx%d, 3x3) at 13x13, "
       "F(2x2, 3x3) at 4x4",
       setting, m, m);
    test_conv_cases();
    conv_tol_mul = 1.;
    backend_cpu_set_conv("dnnl");
    ok(!cpu_conv_uses_wino(&probe), "dnnl leaves them to oneDNN");
}
#endif

/* im2col and oneDNN agree on random shapes (groups, depthwise, strides,
 * dilation, padding, 1x1, relu_in, bias, acc): y, dx, dw and db within 1e-5
 * of the largest magnitude of each (they sum in different orders); and the
 * table (oneDNN selected) gives exactly what the implementation it picks
 * for the shape gives. */
static void test_conv_agree(void)
{
#ifndef HAVE_DNNL
    tap_skip("im2col vs oneDNN: built without oneDNN");
#else
    const conv_impl *impl[3] = {&conv_im2col, &conv_dnnl, &conv_table};
    backend_cpu_set_conv("dnnl");
    for (int t = 0; t < 9; t++) {
        conv_desc d;
        do {
            const int kind = t % 3; /* plain, 2 groups, depthwise */
            const int c = 2 + (int)rng_below(&R, 15);
            const int k = 1 + 2 * (int)rng_below(&R, 3);
            d = (conv_desc){.n = 1 + (int)rng_below(&R, 8),
                            .cin = kind == 1 ? 2 * c : c,
                            .h = 4 + (int)rng_below(&R, 20),
                            .w = 4 + (int)rng_below(&R, 20),
                            .cout = kind == 0 ? 2 + (int)rng_below(&R, 30)
                                              : kind == 1 ? 2 * (1 + (int)rng_below(&R, 12))
                                                          : c,
                            .kh = k,
                            .kw = rng_below(&R, 4) ? k : 1 + 2 * (int)rng_below(&R, 3),
                            .stride = 1 + (int)rng_below(&R, 2),
                            .pad = (int)rng_below(&R, (uint64_t)k / 2 + 2),
                            .dil = 1 + (int)rng_below(&R, 2),
                            .groups = kind == 0 ? 1 : kind == 1 ? 2 : c,
                            .relu_in = (int)rng_below(&R, 2)};
        } while (conv_desc_init(&d) != 0);
        const int bias = (int)rng_below(&R, 2), acc = (int)rng_below(&R, 2);
        size_t nx = (size_t)d.n * d.cin * d.h * d.w, ny = (size_t)d.n * d.cout * d.oh * d.ow;
        size_t nw = (size_t)d.cout * (d.cin / d.groups) * d.kh * d.kw, nwork = 0;
        float *x = fnew(nx), *w = fnew(nw), *b = fnew(d.cout), *dy = fnew(ny);
        float *y0 = fnew(ny), *y[3], *dx[3], *dw[3], *db[3];
        fill_unif(x, nx, -1., 1.);
        fill_unif(w, nw, -1., 1.);
        fill_unif(b, d.cout, -1., 1.);
        fill_unif(dy, ny, -1., 1.);
        fill_unif(y0, ny, -1., 1.);
        for (int i = 0; i < 3; i++) {
            size_t ws = impl[i]->work_size(&d);
            nwork = ws > nwork ? ws : nwork;
        }
        float *work = fnew(nwork);
        for (int i = 0; i < 3; i++) {
            y[i] = fnew(ny), dx[i] = fnew(nx), dw[i] = fnew(nw), db[i] = fnew(d.cout);
            memcpy(y[i], y0, ny * sizeof *y0);
            fill_const(dx[i], nx, 0.5f);
            fill_const(dw[i], nw, 0.5f);
            fill_const(db[i], d.cout, 0.5f);
            impl[i]->fwd(&d, x, w, bias ? b : NULL, y[i], acc, work);
            impl[i]->bwd(&d, x, w, dy, dx[i], dw[i], bias ? db[i] : NULL, work);
        }
        double e = fmax(fmax(rel_diff(y[1], y[0], ny), rel_diff(dx[1], dx[0], nx)),
                        fmax(rel_diff(dw[1], dw[0], nw), rel_diff(db[1], db[0], d.cout)));
        char tag[160];
        snprintf(tag, sizeof tag, "n%d %dx%dx%d->%d k%dx%d s%d p%d d%d g%d%s%s%s", d.n,
                 d.cin, d.h, d.w, d.cout, d.kh, d.kw, d.stride, d.pad, d.dil, d.groups,
                 d.relu_in ? " relu_in" : "", bias ? " bias" : "", acc ? " acc" : "");
        ok(e <= TOL_FWD, "im2col vs oneDNN %s: y, dx, dw, db agree (max rel diff %.1e, tol %.0e)",
           tag, e, TOL_FWD);
        /* what the table runs, forward and backward */
        const int p = cpu_conv_uses_dnnl(&d), q = cpu_conv_uses_dnnl_backward(&d);
        ok(!memcmp(y[2], y[p], ny * sizeof *y0) && !memcmp(dx[2], dx[q], nx * sizeof *x) &&
               !memcmp(dw[2], dw[q], nw * sizeof *w) && !memcmp(db[2], db[q], d.cout * sizeof *b),
           "table %s: exactly %s's results, then %s's", tag, p ? "oneDNN" : "im2col",
           q ? "oneDNN" : "im2col");
        for (int i = 0; i < 3; i++)
            free(y[i]), free(dx[i]), free(dw[i]), free(db[i]);
        free(x), free(w), free(b), free(dy), free(y0), free(work);
    }
    /* the per-shape rule: 1x1 on im2col, the rest on oneDNN; all on im2col
     * when selected */
    conv_desc k1 = {.n = 32, .cin = 16, .h = 32, .w = 32, .cout = 16, .kh = 1, .kw = 1,
                    .stride = 1, .pad = 0, .dil = 1, .groups = 1, .relu_in = 1};
    conv_desc k3 = k1;
    k3.kh = k3.kw = 3, k3.pad = 1;
    /* depthwise: the backward of 5x5 and of dilated 3x3 (stride 1 or 2) on
     * cpu_dw.c; 3x3 (stride 1 or 2) on oneDNN */
    conv_desc g5 = k3, g3d = k3, g3 = k3, g5s, g3s;
    g5.groups = g5.cout = 16, g5.kh = g5.kw = 5, g5.pad = 2;
    g3d.groups = 16, g3d.dil = 2, g3d.pad = 2;
    g3.groups = 16;
    g5s = g5, g5s.stride = 2;
    g3s = g3, g3s.stride = 2;
    conv_desc_init(&k1), conv_desc_init(&k3), conv_desc_init(&g5), conv_desc_init(&g3d);
    conv_desc_init(&g3), conv_desc_init(&g5s), conv_desc_init(&g3s);
    int u1 = cpu_conv_uses_dnnl(&k1), u3 = cpu_conv_uses_dnnl(&k3);
    int dw = cpu_conv_uses_dnnl(&g5) && !cpu_conv_uses_dnnl_backward(&g5) &&
             cpu_conv_uses_dnnl(&g3d) && !cpu_conv_uses_dnnl_backward(&g3d) &&
             cpu_conv_uses_dnnl(&g5s) && !cpu_conv_uses_dnnl_backward(&g5s) &&
             cpu_conv_uses_dnnl_backward(&g3) && cpu_conv_uses_dnnl_backward(&g3s) &&
             cpu_conv_uses_dnnl_backward(&k3) && !cpu_conv_uses_dnnl_backward(&k1);
    backend_cpu_set_conv("im2col");
    ok(!u1 && u3 && !cpu_conv_uses_dnnl(&k1) && !cpu_conv_uses_dnnl(&k3) &&
           !cpu_conv_uses_dnnl_backward(&k3),
       "the table runs 3x3 on oneDNN, 1x1 on im2col; all on im2col when selected");
    ok(dw, "depthwise: 5x5 and dilated 3x3 forward on oneDNN, backward on cpu_dw.c "
           "(stride 1 and 2); 3x3 both ways on oneDNN");
#endif
}

static void test_conv_desc(void)
{
    conv_desc d = {.n = 2, .cin = 3, .h = 32, .w = 30, .cout = 8, .kh = 3, .kw = 3,
                   .stride = 2, .pad = 1, .dil = 1, .groups = 1};
    ok(conv_desc_init(&d) == 0 && d.oh == 16 && d.ow == 15,
       "conv_desc_init: 32x30 k3 s2 p1 -> %dx%d (16x15)", d.oh, d.ow);
    d.dil = 2;
    d.pad = 2;
    d.stride = 1;
    ok(conv_desc_init(&d) == 0 && d.oh == 32 && d.ow == 30,
       "conv_desc_init: dilation 2 pad 2 keeps the size (%dx%d)", d.oh, d.ow);
    d.groups = 2;
    rm_clear_error();
    ok(conv_desc_init(&d) == -1 && strstr(rm_last_error(), "divisible"),
       "conv_desc_init: 3 channels in 2 groups fails (%s)", rm_last_error());
    d.groups = 1;
    d.h = 1;
    d.pad = 0;
    rm_clear_error();
    ok(conv_desc_init(&d) == -1 && strstr(rm_last_error(), "empty"),
       "conv_desc_init: empty output fails (%s)", rm_last_error());
    d.h = 8;
    d.stride = 0;
    ok(conv_desc_init(&d) == -1, "conv_desc_init: stride 0 fails (%s)", rm_last_error());

    pool_desc p = {.n = 1, .c = 2, .h = 7, .w = 8, .k = 3, .stride = 2, .pad = 1};
    ok(pool_desc_init(&p) == 0 && p.oh == 4 && p.ow == 4,
       "pool_desc_init: 7x8 k3 s2 p1 -> %dx%d (4x4)", p.oh, p.ow);
    p.pad = 2;
    ok(pool_desc_init(&p) == -1, "pool_desc_init: pad > k/2 fails (%s)", rm_last_error());
    p.pad = 0;
    p.k = 9;
    ok(pool_desc_init(&p) == -1, "pool_desc_init: window larger than input fails (%s)",
       rm_last_error());
}

/* ---- batch norm ---- */

typedef struct bn_ctx {
    int n, c, hw;
    float *x, *gamma, *beta, *y, *r, *mean, *invstd;
} bn_ctx;

static double bn_loss(void *p)
{
    bn_ctx *b = p;
    be->bn_forward_train(b->n, b->c, b->hw, b->x, b->gamma, b->beta, b->y, 0,
                         b->mean, b->invstd, NULL, NULL, 0.1f, 1e-5f);
    return dot_r(b->y, b->r, (size_t)b->n * b->c * b->hw);
}

static void test_bn(int n, int c, int hw, int affine)
{
    char tag[96], name[160];
    snprintf(tag, sizeof tag, "bn n%d c%d hw%d%s", n, c, hw, affine ? "" : " affine=0");
    const size_t nx = (size_t)n * c * hw;
    const double m = (double)n * hw;
    const float momentum = 0.1f, eps = 1e-5f;
    float *x = fnew(nx), *y = fnew(nx), *y0 = fnew(nx), *r = fnew(nx), *dx = fnew(nx);
    float *gamma = affine ? fnew(c) : NULL, *beta = affine ? fnew(c) : NULL;
    float *mean = fnew(c), *invstd = fnew(c), *rm = fnew(c), *rv = fnew(c);
    float *rm0 = fnew(c), *rv0 = fnew(c), *dg = fnew(c), *dbt = fnew(c);
    double *ref = dnew(nx), *rmean = dnew(c), *rinv = dnew(c), *rrm = dnew(c),
           *rrv = dnew(c);
    /* per-channel offset and spread, standard deviation >= 1 */
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++)
            for (int j = 0; j < hw; j++)
                x[((size_t)i * c + ch) * hw + j] =
                    (float)(ch - 1.5 + (1.8 + 0.5 * ch) * unif(-1.7, 1.7) +
                            0.05 * (j % 2 ? 1 : -1));
    if (affine) {
        fill_unif(gamma, c, 0.5, 1.5);
        fill_unif(beta, c, -1., 1.);
    }
    fill_unif(r, nx, -1., 1.);
    fill_unif(rm0, c, -0.5, 0.5);
    fill_unif(rv0, c, 0.5, 1.5);

    for (int ch = 0; ch < c; ch++) {
        double s = 0., ss = 0.;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++)
                s += x[((size_t)i * c + ch) * hw + j];
        double mu = s / m;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                double v = x[((size_t)i * c + ch) * hw + j] - mu;
                ss += v * v;
            }
        double var = ss / m;
        rmean[ch] = mu;
        rinv[ch] = 1. / sqrt(var + eps);
        rrm[ch] = (1. - momentum) * rm0[ch] + momentum * mu;
        rrv[ch] = (1. - momentum) * rv0[ch] + momentum * ss / (m - 1.);
        double g = affine ? gamma[ch] : 1., bt = affine ? beta[ch] : 0.;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t o = ((size_t)i * c + ch) * hw + j;
                ref[o] = (x[o] - mu) * rinv[ch] * g + bt;
            }
    }
    memcpy(rm, rm0, c * sizeof *rm);
    memcpy(rv, rv0, c * sizeof *rv);
    fill_const(y, nx, NAN);
    be->bn_forward_train(n, c, hw, x, gamma, beta, y, 0, mean, invstd, rm, rv,
                         momentum, eps);
    snprintf(name, sizeof name, "%s: train forward", tag);
    check_close(name, y, ref, nx, TOL_FWD);
    double e = fmax(max_err(mean, rmean, c), max_err(invstd, rinv, c));
    ok(e <= TOL_FWD, "%s: saved mean and invstd (max err %.1e)", tag, e);
    e = fmax(max_err(rm, rrm, c), max_err(rv, rrv, c));
    ok(e <= TOL_FWD, "%s: running stats, unbiased var (max err %.1e)", tag, e);

    fill_unif(y0, nx, -1., 1.);
    memcpy(y, y0, nx * sizeof *y);
    be->bn_forward_train(n, c, hw, x, gamma, beta, y, 1, mean, invstd, NULL, NULL,
                         momentum, eps);
    for (size_t i = 0; i < nx; i++)
        ref[i] += y0[i];
    snprintf(name, sizeof name, "%s: train forward acc=1, no running stats", tag);
    check_close(name, y, ref, nx, TOL_FWD);

    /* eval with the running stats just computed */
    for (int ch = 0; ch < c; ch++) {
        double s = 1. / sqrt((double)rv[ch] + eps);
        double g = affine ? gamma[ch] : 1., bt = affine ? beta[ch] : 0.;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < hw; j++) {
                size_t o = ((size_t)i * c + ch) * hw + j;
                ref[o] = (x[o] - rm[ch]) * s * g + bt;
            }
    }
    fill_const(y, nx, NAN);
    be->bn_forward_eval(n, c, hw, x, gamma, beta, y, 0, rm, rv, eps);
    snprintf(name, sizeof name, "%s: eval forward", tag);
    check_close(name, y, ref, nx, TOL_FWD);
    memcpy(y, y0, nx * sizeof *y);
    be->bn_forward_eval(n, c, hw, x, gamma, beta, y, 1, rm, rv, eps);
    for (size_t i = 0; i < nx; i++)
        ref[i] += y0[i];
    snprintf(name, sizeof name, "%s: eval forward acc=1", tag);
    check_close(name, y, ref, nx, TOL_FWD);

    /* backward from the saved statistics */
    be->bn_forward_train(n, c, hw, x, gamma, beta, y, 0, mean, invstd, NULL, NULL,
                         momentum, eps);
    const float bx = 0.25f, bg = -0.5f, bb = 0.125f;
    fill_const(dx, nx, bx);
    fill_const(dg, c, bg);
    fill_const(dbt, c, bb);
    be->bn_backward(n, c, hw, x, gamma, mean, invstd, r, dx, affine ? dg : NULL,
                    affine ? dbt : NULL, 1);
    float *mean2 = fnew(c), *invstd2 = fnew(c);
    bn_ctx b = {n, c, hw, x, gamma, beta, y, r, mean2, invstd2};
    snprintf(name, sizeof name, "%s: dx by FD", tag);
    check_fd(name, bn_loss, &b, x, nx, dx, bx, 1e-2, TOL_GRAD);
    if (affine) {
        snprintf(name, sizeof name, "%s: dgamma by FD", tag);
        check_fd(name, bn_loss, &b, gamma, c, dg, bg, 1e-2, TOL_GRAD);
        snprintf(name, sizeof name, "%s: dbeta by FD", tag);
        check_fd(name, bn_loss, &b, beta, c, dbt, bb, 1e-2, TOL_GRAD);
    }
    /* dx_acc = 0 overwrites: what accumulating into zeros gives */
    float *dxz = fnew(nx);
    fill_const(dxz, nx, 0.f);
    be->bn_backward(n, c, hw, x, gamma, mean, invstd, r, dxz, NULL, NULL, 1);
    fill_const(dx, nx, NAN);
    be->bn_backward(n, c, hw, x, gamma, mean, invstd, r, dx, NULL, NULL, 0);
    size_t bad = 0;
    for (size_t i = 0; i < nx; i++)
        bad += dx[i] != dxz[i];
    ok(bad == 0, "%s: dx_acc=0 overwrites dx (NaN before): accumulated into zeros (%zu differ)",
       tag, bad);
    free(dxz);
    free(mean2), free(invstd2);
    free(x), free(y), free(y0), free(r), free(dx), free(gamma), free(beta);
    free(mean), free(invstd), free(rm), free(rv), free(rm0), free(rv0), free(dg);
    free(dbt), free(ref), free(rmean), free(rinv), free(rrm), free(rrv);
}

/* ---- relu ---- */

static void test_relu(void)
{
    const size_t n = 1000;
    float *x = fnew(n), *y = fnew(n), *dy = fnew(n), *dx = fnew(n);
    double *ref = dnew(n);
    fill_away(x, n, 0.01, 2.);
    for (size_t i = 0; i < n; i++)
        ref[i] = x[i] > 0 ? x[i] : 0.;
    be->relu_forward(x, y, n);
    check_close("relu forward", y, ref, n, 0.);
    memcpy(y, x, n * sizeof *y);
    be->relu_forward(y, y, n);
    check_close("relu forward in place", y, ref, n, 0.);
    float nan_in = NAN, nan_out = 0.f;
    be->relu_forward(&nan_in, &nan_out, 1);
    ok(isnan(nan_out), "relu forward passes NaN through");

    fill_unif(dy, n, -1., 1.);
    fill_const(dx, n, 0.5f);
    be->relu_backward(y, dy, dx, n);
    for (size_t i = 0; i < n; i++)
        ref[i] = 0.5 + (y[i] > 0 ? dy[i] : 0.);
    check_close("relu backward accumulates dy*(y>0)", dx, ref, n, 1e-7);
    for (size_t i = 0; i < n; i++)
        ref[i] = y[i] > 0 ? dy[i] : 0.;
    be->relu_backward(y, dy, dy, n);
    check_close("relu backward in place overwrites", dy, ref, n, 0.);
    free(x), free(y), free(dy), free(dx), free(ref);
}

/* ---- pooling ---- */

static void naive_pool(const pool_desc *d, const float *x, double *y, int max,
                       int32_t *argmax)
{
    for (int p = 0; p < d->n * d->c; p++)
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++) {
                double s = 0., best = -INFINITY;
                int cnt = 0, at = -1;
                for (int ki = 0; ki < d->k; ki++)
                    for (int kj = 0; kj < d->k; kj++) {
                        int iy = oy * d->stride - d->pad + ki;
                        int ix = ox * d->stride - d->pad + kj;
                        if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w)
                            continue;
                        double v = x[((size_t)p * d->h + iy) * d->w + ix];
                        s += v;
                        cnt++;
                        if (v > best) {
                            best = v;
                            at = iy * d->w + ix;
                        }
                    }
                size_t o = ((size_t)p * d->oh + oy) * d->ow + ox;
                if (max) {
                    y[o] = best;
                    argmax[o] = at;
                } else {
                    y[o] = s / (d->count_include_pad ? d->k * d->k : cnt);
                }
            }
}

typedef struct pool_ctx {
    const pool_desc *d;
    int max;
    float *x, *y, *r;
    int32_t *argmax;
    size_t ny;
} pool_ctx;

static double pool_loss(void *p)
{
    pool_ctx *c = p;
    if (c->max)
        be->maxpool_forward(c->d, c->x, c->y, 0, c->argmax);
    else
        be->avgpool_forward(c->d, c->x, c->y, 0);
    return dot_r(c->y, c->r, c->ny);
}

static void test_pool(int max, int n, int c, int h, int w, int k, int stride,
                      int pad, int cip)
{
    pool_desc d = {.n = n, .c = c, .h = h, .w = w, .k = k, .stride = stride,
                   .pad = pad, .count_include_pad = cip};
    char tag[128], name[192];
    if (max)
        snprintf(tag, sizeof tag, "maxpool %dx%dx%dx%d k%d s%d p%d", n, c, h, w, k,
                 stride, pad);
    else
        snprintf(tag, sizeof tag, "avgpool %dx%dx%dx%d k%d s%d p%d include_pad=%d",
                 n, c, h, w, k, stride, pad, cip);
    if (pool_desc_init(&d) != 0) {
        ok(0, "%s: pool_desc_init: %s", tag, rm_last_error());
        return;
    }
    size_t nx = (size_t)n * c * h * w, ny = (size_t)n * c * d.oh * d.ow;
    float *x = fnew(nx), *y = fnew(ny), *y0 = fnew(ny), *r = fnew(ny), *dx = fnew(nx);
    int32_t *am = xmalloc(ny * sizeof *am), *ram = xmalloc(ny * sizeof *ram);
    double *ref = dnew(ny);
    /* max: distinct values 0.05 apart, no ties within the step 1e-2;
     * average (linear): values in [-1, 1] and a large step */
    const double step = max ? 1e-2 : 0.25;
    for (size_t i = 0; i < nx; i++)
        x[i] = max ? (float)(0.05 * ((double)i - nx / 2.)) : (float)unif(-1., 1.);
    for (size_t i = nx - 1; max && i > 0; i--) {
        size_t j = (size_t)rng_below(&R, i + 1);
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
    fill_unif(r, ny, -1., 1.);
    naive_pool(&d, x, ref, max, ram);
    fill_const(y, ny, NAN);
    if (max)
        be->maxpool_forward(&d, x, y, 0, am);
    else
        be->avgpool_forward(&d, x, y, 0);
    snprintf(name, sizeof name, "%s: forward", tag);
    check_close(name, y, ref, ny, TOL_FWD);
    if (max)
        ok(memcmp(am, ram, ny * sizeof *am) == 0, "%s: argmax", tag);

    fill_unif(y0, ny, -1., 1.);
    memcpy(y, y0, ny * sizeof *y);
    if (max)
        be->maxpool_forward(&d, x, y, 1, am);
    else
        be->avgpool_forward(&d, x, y, 1);
    for (size_t i = 0; i < ny; i++)
        ref[i] += y0[i];
    snprintf(name, sizeof name, "%s: forward acc=1", tag);
    check_close(name, y, ref, ny, TOL_FWD);

    const float bx = 0.25f;
    fill_const(dx, nx, bx);
    if (max)
        be->maxpool_backward(&d, r, am, dx);
    else
        be->avgpool_backward(&d, r, dx);
    pool_ctx pc = {&d, max, x, y, r, am, ny};
    snprintf(name, sizeof name, "%s: dx by FD", tag);
    check_fd(name, pool_loss, &pc, x, nx, dx, bx, step, TOL_GRAD);
    free(x), free(y), free(y0), free(r), free(dx), free(am), free(ram), free(ref);
}

/* A NaN reaches every max-pool window holding it (as PyTorch), so a
 * diverged network stays visible. */
static void test_maxpool_nan(void)
{
    pool_desc d = {.n = 1, .c = 1, .h = 5, .w = 5, .k = 3, .stride = 1, .pad = 1};
    float x[25], y[25];
    int32_t am[25];
    int good = pool_desc_init(&d) == 0;
    for (int i = 0; i < 25; i++)
        x[i] = (float)i;
    x[2 * 5 + 1] = NAN; /* row 2, column 1 */
    be->maxpool_forward(&d, x, y, 0, am);
    for (int oy = 0; oy < 5; oy++)
        for (int ox = 0; ox < 5; ox++) {
            int holds = abs(oy - 2) <= 1 && abs(ox - 1) <= 1;
            good &= holds == (int)isnan(y[oy * 5 + ox]);
        }
    ok(good, "maxpool forward propagates NaN to exactly the windows holding it");
}

/* ---- global average pool ---- */

typedef struct gap_ctx {
    int n, c, hw;
    float *x, *y, *r;
} gap_ctx;

static double gap_loss(void *p)
{
    gap_ctx *g = p;
    be->gap_forward(g->n, g->c, g->hw, g->x, g->y);
    return dot_r(g->y, g->r, (size_t)g->n * g->c);
}

static void test_gap(void)
{
    const int n = 3, c = 5, hw = 16;
    const size_t nx = (size_t)n * c * hw, ny = (size_t)n * c;
    float *x = fnew(nx), *y = fnew(ny), *r = fnew(ny), *dx = fnew(nx);
    double *ref = dnew(ny);
    fill_unif(x, nx, -1., 1.);
    fill_unif(r, ny, -1., 1.);
    for (size_t p = 0; p < ny; p++) {
        double s = 0.;
        for (int j = 0; j < hw; j++)
            s += x[p * hw + j];
        ref[p] = s / hw;
    }
    fill_const(y, ny, NAN);
    be->gap_forward(n, c, hw, x, y);
    check_close("gap forward", y, ref, ny, TOL_FWD);
    fill_const(dx, nx, 0.25f);
    be->gap_backward(n, c, hw, r, dx);
    gap_ctx g = {n, c, hw, x, y, r};
    check_fd("gap dx by FD", gap_loss, &g, x, nx, dx, 0.25f, 1e-2, TOL_GRAD);
    free(x), free(y), free(r), free(dx), free(ref);
}

/* ---- linear ---- */

typedef struct lin_ctx {
    int n, in, out;
    float *x, *w, *b, *y, *r;
} lin_ctx;

static double lin_loss(void *p)
{
    lin_ctx *l = p;
    be->linear_forward(l->n, l->in, l->out, l->x, l->w, l->b, l->y);
    return dot_r(l->y, l->r, (size_t)l->n * l->out);
}

static void test_linear(int bias)
{
    const int n = 6, in = 13, out = 10;
    char tag[64], name[128];
    snprintf(tag, sizeof tag, "linear %d x %d -> %d%s", n, in, out, bias ? " bias" : "");
    float *x = fnew((size_t)n * in), *w = fnew((size_t)out * in), *b = fnew(out);
    float *y = fnew((size_t)n * out), *r = fnew((size_t)n * out);
    float *dx = fnew((size_t)n * in), *dw = fnew((size_t)out * in), *db = fnew(out);
    double *ref = dnew((size_t)n * out);
    fill_unif(x, (size_t)n * in, -1., 1.);
    fill_unif(w, (size_t)out * in, -1., 1.);
    fill_unif(b, out, -1., 1.);
    fill_unif(r, (size_t)n * out, -1., 1.);
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double s = bias ? b[o] : 0.;
            for (int j = 0; j < in; j++)
                s += (double)x[i * in + j] * w[o * in + j];
            ref[i * out + o] = s;
        }
    float *bp = bias ? b : NULL;
    fill_const(y, (size_t)n * out, NAN);
    be->linear_forward(n, in, out, x, w, bp, y);
    snprintf(name, sizeof name, "%s: forward", tag);
    check_close(name, y, ref, (size_t)n * out, TOL_FWD);
    fill_const(dx, (size_t)n * in, 0.25f);
    fill_const(dw, (size_t)out * in, -0.5f);
    fill_const(db, out, 0.125f);
    be->linear_backward(n, in, out, x, w, r, dx, dw, bias ? db : NULL);
    lin_ctx l = {n, in, out, x, w, bp, y, r};
    snprintf(name, sizeof name, "%s: dx by FD", tag);
    check_fd(name, lin_loss, &l, x, (size_t)n * in, dx, 0.25f, 1e-2, TOL_GRAD);
    snprintf(name, sizeof name, "%s: dw by FD", tag);
    check_fd(name, lin_loss, &l, w, (size_t)out * in, dw, -0.5f, 1e-2, TOL_GRAD);
    if (bias) {
        snprintf(name, sizeof name, "%s: db by FD", tag);
        check_fd(name, lin_loss, &l, b, out, db, 0.125f, 1e-2, TOL_GRAD);
    }
    free(x), free(w), free(b), free(y), free(r), free(dx), free(dw), free(db), free(ref);
}

/* ---- option-A shortcut ---- */

typedef struct sc_ctx {
    int n, cin, h, w, padc;
    float *x, *y, *r;
    size_t ny;
} sc_ctx;

static double sc_loss(void *p)
{
    sc_ctx *s = p;
    be->shortcut_a_forward(s->n, s->cin, s->h, s->w, s->padc, s->x, s->y, 0);
    return dot_r(s->y, s->r, s->ny);
}

static void test_shortcut(void)
{
    const int n = 2, cin = 3, h = 6, w = 8, padc = 2;
    const int cout = cin + 2 * padc, oh = h / 2, ow = w / 2;
    const size_t nx = (size_t)n * cin * h * w, ny = (size_t)n * cout * oh * ow;
    float *x = fnew(nx), *y = fnew(ny), *y0 = fnew(ny), *r = fnew(ny), *dx = fnew(nx);
    double *ref = dnew(ny);
    fill_unif(x, nx, -1., 1.);
    fill_unif(r, ny, -1., 1.);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < cout; c++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    int ci = c - padc;
                    ref[(((size_t)i * cout + c) * oh + oy) * ow + ox] =
                        ci < 0 || ci >= cin
                            ? 0.
                            : x[(((size_t)i * cin + ci) * h + 2 * oy) * w + 2 * ox];
                }
    fill_const(y, ny, NAN);
    be->shortcut_a_forward(n, cin, h, w, padc, x, y, 0);
    check_close("shortcut_a forward", y, ref, ny, 0.);
    fill_unif(y0, ny, -1., 1.);
    memcpy(y, y0, ny * sizeof *y);
    be->shortcut_a_forward(n, cin, h, w, padc, x, y, 1);
    for (size_t i = 0; i < ny; i++)
        ref[i] += y0[i];
    check_close("shortcut_a forward acc=1", y, ref, ny, 1e-7);
    fill_const(dx, nx, 0.25f);
    be->shortcut_a_backward(n, cin, h, w, padc, r, dx);
    sc_ctx s = {n, cin, h, w, padc, x, y, r, ny};
    check_fd("shortcut_a dx by FD", sc_loss, &s, x, nx, dx, 0.25f, 1e-2, TOL_GRAD);
    free(x), free(y), free(y0), free(r), free(dx), free(ref);
}

/* ---- strided channel copy ---- */

typedef struct sl_ctx {
    int n, c, h, w, off, step, yc, yoff;
    float *x, *y, *r;
    size_t ny;
} sl_ctx;

static double sl_loss(void *p)
{
    sl_ctx *s = p;
    memset(s->y, 0, s->ny * sizeof *s->y);
    be->slice_forward(s->n, s->c, s->h, s->w, s->off, s->step, s->x, s->yc, s->yoff, s->y, 0);
    return dot_r(s->y, s->r, s->ny);
}

/* y[:, yoff+ch] = x[:, ch, off::step, off::step]: a channel block of a
 * concatenation (off 0, step 1) and DARTS's x[:, :, 1:, 1:] and ::2 reads. */
static void test_slice(int off, int step, int yc, int yoff)
{
    const int n = 2, c = 3, h = 7, w = 6;
    const int oh = (h - off + step - 1) / step, ow = (w - off + step - 1) / step;
    const size_t nx = (size_t)n * c * h * w, ny = (size_t)n * yc * oh * ow;
    float *x = fnew(nx), *y = fnew(ny), *y0 = fnew(ny), *r = fnew(ny), *dx = fnew(nx);
    double *ref = dnew(ny);
    char name[96];
    fill_unif(x, nx, -1., 1.);
    fill_unif(r, ny, -1., 1.);
    fill_unif(y0, ny, -1., 1.);
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < yc; ch++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    size_t o = (((size_t)i * yc + ch) * oh + oy) * ow + ox;
                    int xc = ch - yoff;
                    ref[o] = xc < 0 || xc >= c ? y0[o]
                             : x[(((size_t)i * c + xc) * h + off + oy * step) * w + off +
                                 ox * step];
                }
    memcpy(y, y0, ny * sizeof *y);
    be->slice_forward(n, c, h, w, off, step, x, yc, yoff, y, 0);
    snprintf(name, sizeof name, "slice off %d step %d into %d channels at %d: forward", off, step,
             yc, yoff);
    check_close(name, y, ref, ny, 0.);
    memcpy(y, y0, ny * sizeof *y);
    be->slice_forward(n, c, h, w, off, step, x, yc, yoff, y, 1);
    for (size_t i = 0; i < ny; i++) {
        int ch = (int)(i / ((size_t)oh * ow) % (size_t)yc);
        if (ch >= yoff && ch < yoff + c)
            ref[i] += y0[i];
    }
    snprintf(name, sizeof name, "slice off %d step %d: forward acc=1", off, step);
    check_close(name, y, ref, ny, 1e-7);
    fill_const(dx, nx, 0.25f);
    be->slice_backward(n, c, h, w, off, step, r, yc, yoff, dx);
    sl_ctx s = {n, c, h, w, off, step, yc, yoff, x, y, r, ny};
    snprintf(name, sizeof name, "slice off %d step %d: dx by FD", off, step);
    check_fd(name, sl_loss, &s, x, nx, dx, 0.25f, 1e-2, TOL_GRAD);
    free(x), free(y), free(y0), free(r), free(dx), free(ref);
}

/* ---- Gram matrix ---- */

typedef struct gram_ctx {
    int n, p;
    float *x, *k, *r;
} gram_ctx;

static double gram_loss(void *p)
{
    gram_ctx *g = p;
    be->gram(g->n, g->p, g->x, g->k);
    return dot_r(g->k, g->r, (size_t)g->n * g->n);
}

static void test_gram(void)
{
    const int n = 6, p = 11;
    float *x = fnew((size_t)n * p), *k = fnew((size_t)n * n), *r = fnew((size_t)n * n);
    float *dx = fnew((size_t)n * p);
    double *ref = dnew((size_t)n * n);
    fill_unif(x, (size_t)n * p, -1., 1.);
    fill_unif(r, (size_t)n * n, -1., 1.); /* not symmetric: checks dk + dk^T */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.;
            for (int t = 0; t < p; t++)
                s += (double)x[i * p + t] * x[j * p + t];
            ref[i * n + j] = s;
        }
    fill_const(k, (size_t)n * n, NAN);
    be->gram(n, p, x, k);
    int sym = 1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            sym &= k[i * n + j] == k[j * n + i];
    check_close("gram forward", k, ref, (size_t)n * n, TOL_FWD);
    ok(sym, "gram forward is exactly symmetric");
    fill_const(dx, (size_t)n * p, 0.25f);
    be->gram_backward(n, p, x, r, dx);
    gram_ctx g = {n, p, x, k, r};
    check_fd("gram dx by FD", gram_loss, &g, x, (size_t)n * p, dx, 0.25f, 1e-2, TOL_GRAD);
    free(x), free(k), free(r), free(dx), free(ref);
}

/* ---- softmax cross-entropy ---- */

typedef struct ce_ctx {
    int n, k;
    float *z;
    int32_t *lab;
    float scale;
} ce_ctx;

static double ce_loss(void *p)
{
    ce_ctx *c = p;
    return c->scale * be->softmax_ce(c->n, c->k, c->z, c->lab, NULL, NULL, 1.f);
}

static void test_softmax_ce(void)
{
    const int n = 5, k = 7;
    const float scale = 2.5f;
    float *z = fnew((size_t)n * k), *dz = fnew((size_t)n * k);
    int32_t lab[5];
    double loss[5], ref[5], mean = 0.;
    fill_unif(z, (size_t)n * k, -3., 3.);
    for (int j = 0; j < k; j++) /* one sample with huge logits: must not overflow */
        z[3 * k + j] += 1000.f;
    for (int i = 0; i < n; i++) {
        lab[i] = (int32_t)rng_below(&R, k);
        double mx = -INFINITY, s = 0.;
        for (int j = 0; j < k; j++)
            mx = fmax(mx, z[i * k + j]);
        for (int j = 0; j < k; j++)
            s += exp(z[i * k + j] - mx);
        ref[i] = mx + log(s) - z[i * k + lab[i]];
        mean += ref[i] / n;
    }
    double got = be->softmax_ce(n, k, z, lab, loss, dz, scale);
    double e = fabs(got - mean) / fmax(1., fabs(mean));
    for (int i = 0; i < n; i++)
        e = fmax(e, fabs(loss[i] - ref[i]) / fmax(1., fabs(ref[i])));
    ok(e <= 1e-12, "softmax_ce: mean and per-sample losses (max err %.1e, tol 1e-12)", e);
    ok(be->softmax_ce(n, k, z, lab, NULL, NULL, 1.f) == got,
       "softmax_ce: loss and dlogits may be NULL");
    ce_ctx c = {n, k, z, lab, scale};
    check_fd("softmax_ce: dlogits = d(scale*mean)/dz by FD", ce_loss, &c, z,
             (size_t)n * k, dz, 0.f, 1e-3, TOL_GRAD);
    free(z), free(dz);
}

/* ---- SGD ---- */

static void test_sgd(void)
{
    const size_t n = 100;
    const float lr = 0.1f, mom = 0.9f, wd = 5e-4f;
    float *p = fnew(n), *g = fnew(n), *buf = fnew(n), *rp = fnew(n), *rb = fnew(n);
    double *ref = dnew(n), *refb = dnew(n);
    fill_unif(p, n, -1., 1.);
    memcpy(rp, p, n * sizeof *p);
    fill_const(buf, n, NAN); /* the first step must not read buf */
    double e = 0.;
    for (int step = 0; step < 3; step++) {
        fill_unif(g, n, -1., 1.);
        for (size_t i = 0; i < n; i++) { /* torch.optim.SGD, in float */
            float d = g[i] + wd * rp[i];
            rb[i] = step == 0 ? d : mom * rb[i] + d;
            rp[i] = rp[i] - lr * rb[i];
            ref[i] = rp[i];
            refb[i] = rb[i];
        }
        be->sgd_step(p, g, buf, n, lr, mom, wd, step == 0, NULL, 0);
        e = fmax(e, fmax(max_err(p, ref, n), max_err(buf, refb, n)));
    }
    ok(e <= TOL_SGD, "sgd_step: momentum 0.9, wd 5e-4, three steps (max err %.1e, tol %.0e)",
       e, TOL_SGD);
    fill_const(buf, n, 7.f);
    fill_unif(g, n, -1., 1.);
    for (size_t i = 0; i < n; i++)
        ref[i] = rp[i] - lr * (g[i] + wd * rp[i]);
    memcpy(p, rp, n * sizeof *p);
    be->sgd_step(p, g, buf, n, lr, 0.f, wd, 0, NULL, 0);
    int untouched = 1;
    for (size_t i = 0; i < n; i++)
        untouched &= buf[i] == 7.f;
    e = max_err(p, ref, n);
    ok(e <= TOL_SGD && untouched, "sgd_step: momentum 0 leaves buf alone (max err %.1e)", e);
    /* unless: finite values change nothing; one NaN or inf skips the step */
    double terms[4] = {0.5, 1, 0.25, 0.75};
    memcpy(rp, p, n * sizeof *p);
    memcpy(rb, buf, n * sizeof *buf);
    be->sgd_step(rp, g, rb, n, lr, mom, wd, 0, NULL, 0);
    be->sgd_step(p, g, buf, n, lr, mom, wd, 0, terms, 4);
    ok(!memcmp(p, rp, n * sizeof *p) && !memcmp(buf, rb, n * sizeof *buf),
       "sgd_step unless 4 finite values: the same step as without");
    const double bad[3] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        terms[3] = bad[k];
        be->sgd_step(p, g, buf, n, lr, mom, wd, k == 0, terms, 4);
        ok(!memcmp(p, rp, n * sizeof *p) && !memcmp(buf, rb, n * sizeof *buf),
           "sgd_step unless one of 4 values is %g: p and buf unchanged", bad[k]);
    }
    free(p), free(g), free(buf), free(rp), free(rb), free(ref), free(refb);
}

/* ---- memory and elementwise ---- */

static void test_memory(void)
{
    const size_t n = 1001;
    float *a = be->alloc(n * sizeof(float));
    int zero = a != NULL && ((uintptr_t)a % 64) == 0;
    for (size_t i = 0; zero && i < n; i++)
        zero = a[i] == 0.f;
    ok(zero, "alloc: zeroed, 64-byte aligned");
    float *h = fnew(n), *h2 = fnew(n), *b = be->alloc(n * sizeof(float));
    double *ref = dnew(n);
    fill_unif(h, n, -1., 1.);
    be->upload(a, h, n * sizeof(float));
    be->copy(b, a, n);
    be->download(h2, b, n * sizeof(float));
    ok(memcmp(h, h2, n * sizeof(float)) == 0, "upload, copy, download round trip");
    be->axpy(b, a, 2.f, n, 0);
    for (size_t i = 0; i < n; i++)
        ref[i] = 2. * h[i];
    check_close("axpy acc=0", b, ref, n, 1e-7);
    be->axpy(b, a, -0.5f, n, 1);
    for (size_t i = 0; i < n; i++)
        ref[i] = 1.5 * h[i];
    check_close("axpy acc=1", b, ref, n, 1e-7);
    be->scale(b, 2.f, n);
    for (size_t i = 0; i < n; i++)
        ref[i] = 3. * h[i];
    check_close("scale", b, ref, n, 1e-7);
    be->zero(b, n);
    for (size_t i = 0; i < n; i++)
        ref[i] = 0.;
    check_close("zero", b, ref, n, 0.);
    be->free(a);
    be->free(b);
    free(h), free(h2), free(ref);
}

static void test_lookup(void)
{
    ok(be != NULL && strcmp(be->name, "cpu") == 0 && backend_get("cpu") == be,
       "backend_get(\"cpu\")");
    rm_clear_error();
    const backend *cu = backend_get("cuda");
#ifdef HAVE_CUDA
    ok(cu != NULL || rm_last_error()[0] != '\0', "backend_get(\"cuda\"): %s",
       cu ? "present" : rm_last_error());
#else
    ok(cu == NULL && strstr(rm_last_error(), "without CUDA"),
       "backend_get(\"cuda\") without CUDA: %s", rm_last_error());
#endif
    rm_clear_error();
    ok(backend_get("tpu") == NULL && rm_last_error()[0] != '\0',
       "backend_get(\"tpu\") fails: %s", rm_last_error());
    int t0 = backend_cpu_threads();
    backend_cpu_set_threads(3);
    int t3 = backend_cpu_threads();
    backend_cpu_set_threads(0);
    /* more threads than the cores OpenMP offers are clamped to them */
    ok(t0 >= 1 && t3 == (t0 < 3 ? t0 : 3) && backend_cpu_threads() == t0, "backend_cpu_set_threads");
}

int main(void)
{
    rng_seed(&R, 20240607);
    be = backend_cpu();
    clock_t t0 = clock();
    test_lookup();
    test_memory();
    test_conv_desc();

    /* the convolutions under each implementation: the table with im2col +
     * sgemm selected (backend_cpu_set_conv), oneDNN's functions on every
     * shape where built (the table keeps 1x1 on im2col), then the two side
     * by side */
    test_conv_select();
    const char *conv_default = backend_cpu_conv();
    backend_cpu_set_conv("im2col"); /* the table, im2col selected */
    ci = &conv_table;
    test_conv_cases();
#ifdef HAVE_DNNL
    ci = &conv_dnnl; /* every shape, 1x1 too */
    test_conv_cases();
    ok(conv_refused == 0, "oneDNN ran every case (%d fell back to im2col)", conv_refused);
    /* the table with Winograd selected: oneDNN takes three of its cases
     * (3x3, stride 1, pad 1, ungrouped: 4x7x7 and 8x14x14 at 2 and 3
     * threads) and refuses the pad-3 one, which runs direct */
    ci = &conv_table;
    backend_cpu_set_conv("winograd");
    conv_wino = 0;
    test_conv_cases();
    /* oneDNN's Winograd is an AVX-512 kernel: on a CPU without it every
     * shape runs direct (set conv winograd then changes nothing) */
    conv_desc probe = {.n = 4, .cin = 8, .h = 14, .w = 14, .cout = 8, .kh = 3, .kw = 3,
                       .stride = 1, .pad = 1, .dil = 1, .groups = 1};
    if (conv_desc_init(&probe) == 0 && cpu_dnnl_conv_winograd(&probe))
        ok(conv_wino == 3, "Winograd ran the 3 cases it takes (%d)", conv_wino);
    else
        tap_skip("Winograd ran the 3 cases it takes: oneDNN offers no Winograd on this CPU "
                 "(%d ran on it)", conv_wino);
    backend_cpu_set_conv("dnnl");
    test_conv_wino(2);
    test_conv_wino(4);
#else
    tap_skip("convolutions on oneDNN: built without oneDNN");
#endif
    test_conv_agree();
#ifdef HAVE_DNNL
    /* oneDNN's fallbacks: adding through plain temporaries, and im2col for a
     * refused shape (its work size included) */
    ci = &conv_dnnl;
    for (int mode = 1; mode <= 2; mode++) {
        cpu_dnnl_conv_test_mode(mode);
        conv_variant = mode == 1 ? " (no sum reorders)" : " (refused: im2col)";
        test_conv(3, 4, 7, 7, 6, 3, 3, 1, 1, 1, 1, 0, 1);
        test_conv(3, 8, 14, 14, 8, 3, 3, 1, 1, 1, 1, 1, 1);
        test_conv(3, 6, 8, 8, 6, 3, 3, 2, 1, 1, 6, 1, 0);
        test_conv(3, 5, 6, 6, 7, 1, 1, 1, 0, 1, 1, 1, 1);
        conv_desc d = {.n = 3, .cin = 4, .h = 7, .w = 7, .cout = 6, .kh = 3, .kw = 3,
                       .stride = 1, .pad = 1, .dil = 1, .groups = 1};
        conv_desc_init(&d);
        ok(cpu_dnnl_conv_refused(&d) == (mode == 2), "oneDNN test mode %d %s the shape",
           mode, mode == 2 ? "refuses" : "takes");
    }
    cpu_dnnl_conv_test_mode(0);
    conv_variant = "";
#endif
    ci = &conv_table;
    backend_cpu_set_conv(conv_default);

    test_bn(4, 3, 5, 1);
    test_bn(2, 5, 9, 0);
    test_relu();
    test_pool(0, 2, 3, 6, 6, 3, 1, 1, 0);
    test_pool(0, 2, 3, 6, 6, 3, 1, 1, 1);
    test_pool(0, 2, 3, 6, 8, 2, 2, 0, 0);
    test_pool(0, 2, 3, 6, 8, 2, 2, 0, 1);
    test_pool(0, 1, 2, 7, 7, 3, 2, 1, 0);
    test_pool(0, 1, 2, 7, 7, 3, 2, 1, 1);
    test_pool(1, 2, 3, 6, 6, 3, 1, 1, 0);
    test_pool(1, 2, 3, 7, 7, 3, 2, 1, 0);
    test_pool(1, 2, 2, 8, 8, 2, 2, 0, 0);
    /* wider than the row buffers: the direct window loops */
    test_pool(0, 1, 1, 3, 2100, 3, 1, 1, 0);
    test_pool(0, 1, 1, 3, 2100, 3, 2, 1, 1);
    test_pool(1, 1, 1, 3, 2100, 3, 1, 1, 0);
    test_maxpool_nan();
    test_gap();
    test_linear(1);
    test_linear(0);
    test_shortcut();
    test_slice(0, 1, 7, 2);
    test_slice(1, 2, 3, 0);
    test_slice(0, 2, 5, 1);
    test_gram();
    test_softmax_ce();
    test_sgd();

    tap_diag("%d failed, %.2f s CPU", tap_failed, (double)(clock() - t0) / CLOCKS_PER_SEC);
    tap_plan(tap_n);
    return tap_done();
}
