/* Convolution on the CPU.
 *
 * General case: per sample and group, im2col into a column matrix
 * cols (cin_g*kh*kw, oh*ow) and one sgemm y_g (cout_g, oh*ow) = w_g * cols.
 * The column matrix is built for a block of output rows at a time (up to
 * 1 MiB, see CONV_BLOCK), which bounds work for large images. Samples are split
 * over OpenMP threads, BLAS runs single-threaded inside, and each thread owns
 * a slice of `work`. 1x1 stride-1 unpadded convolutions use x itself as the
 * column matrix.
 *
 * Backward: dw_g += dy_g * cols^T. The weight gradient of thread 0 goes
 * straight into dw; the other threads accumulate into their slices, summed
 * into dw at the end (so results depend on the thread count, not on timing).
 * For stride 1 and a square kernel, dx is itself a convolution: of dy with
 * the kernel flipped and its channel axes swapped (wt below), so it runs as
 * im2col(dy) + sgemm into dx, which measured faster than sgemm into columns
 * (zeroed by BLAS) + a col2im scatter. Other strides use the latter.
 *
 * Depthwise case (one input and one output channel per group): an sgemm of
 * one row would waste BLAS, so it runs as direct loops over padded planes
 * (cpu_dw.c).
 */
#include "tensor/cpu_ops.h"

#include <cblas.h>
#include <omp.h>
#include <string.h>

static size_t round16(size_t v) { return (v + 15) & ~(size_t)15; }

/* x is already the column matrix */
static int conv_pointwise(const conv_desc *d)
{
    return d->kh == 1 && d->kw == 1 && d->stride == 1 && d->pad == 0 &&
           !d->relu_in;
}

double cpu_conv_macs(const conv_desc *d)
{
    return (double)d->n * d->cout * d->oh * d->ow * (d->cin / d->groups) * d->kh *
           d->kw;
}

/* threads for the per-sample loops: no more than samples */
static int conv_nthreads_of(const conv_desc *d, int t)
{
    if (cpu_conv_macs(d) < CPU_CONV_PAR_MIN_MACS)
        return 1;
    return t < d->n ? t : d->n;
}

static int conv_nthreads(const conv_desc *d) { return conv_nthreads_of(d, cpu_threads()); }

/* rows of the column matrix of one group */
static int conv_k(const conv_desc *d)
{
    return d->cin / d->groups * d->kh * d->kw;
}

/* Output rows per column block: about CONV_BLOCK floats (1 MiB) of columns,
 * but at least one row, and all rows when x serves as the column matrix.
 * Smaller blocks (64-512 KiB) measured no faster at 16-64 channels on
 * 32x32..8x8 images (the sgemm loses more on short rows than the cache
 * gains); the bound keeps work small for large images. */
#ifndef CONV_BLOCK
#define CONV_BLOCK 262144
#endif
static int conv_block_rows(const conv_desc *d)
{
    if (conv_pointwise(d))
        return d->oh;
    long rows = CONV_BLOCK / ((long)conv_k(d) * d->ow);
    return rows < 1 ? 1 : rows > d->oh ? d->oh : (int)rows;
}

static size_t conv_cols_size(const conv_desc *d)
{
    if (conv_pointwise(d))
        return 0;
    return round16((size_t)conv_k(d) * conv_block_rows(d) * d->ow);
}

/* dx as a convolution of dy (see the top): stride 1, square kernel. */
static int conv_dx_direct(const conv_desc *d)
{
    return d->stride == 1 && d->kh == d->kw && !conv_pointwise(d);
}

/* The convolution that maps dy to dx when conv_dx_direct: its input is dy
 * (cout channels, oh x ow), its output dx (cin channels, h x w), and its
 * padding dil*(k-1) - pad (negative when pad exceeds that: the loops below
 * take any offset). */
static conv_desc conv_dx_desc(const conv_desc *d)
{
    conv_desc t = *d;
    t.cin = d->cout;
    t.cout = d->cin;
    t.h = d->oh;
    t.w = d->ow;
    t.oh = d->h;
    t.ow = d->w;
    t.pad = d->dil * (d->kh - 1) - d->pad;
    t.relu_in = 0;
    return t;
}

/* wt, shared by the threads at the start of work: (cin, cout_g*kh*kw) */
static size_t conv_wt_size(const conv_desc *d)
{
    return conv_dx_direct(d) ? round16((size_t)d->cout * conv_k(d)) : 0;
}

/* One thread's slice of work: its column matrix (of x, or of dy for dx),
 * its dw accumulator (cout, cin_g*kh*kw) and, under relu_in with dx direct,
 * a buffer for dx before the mask (cin_g, block rows * w); all start
 * 64-byte aligned when work does. */
static size_t conv_slice_size(const conv_desc *d)
{
    size_t cols = conv_cols_size(d), tmp = 0;
    if (conv_dx_direct(d)) {
        conv_desc t = conv_dx_desc(d);
        size_t tcols = conv_cols_size(&t);
        cols = tcols > cols ? tcols : cols;
        if (d->relu_in)
            tmp = round16((size_t)(d->cin / d->groups) * conv_block_rows(&t) * d->w);
    }
    return cols + round16((size_t)d->cout * conv_k(d)) + tmp;
}

size_t cpu_conv_work_size(const conv_desc *d)
{
    if (cpu_dwp_ok(d))
        return cpu_dwp_work_size(d);
    return conv_wt_size(d) + (size_t)conv_nthreads_of(d, cpu_max_threads()) * conv_slice_size(d);
}

void cpu_conv_range(int off, int stride, int len, int out, int *lo, int *hi)
{
    int l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int h = len - 1 - off < 0 ? 0 : (len - 1 - off) / stride + 1;
    if (h > out)
        h = out;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

/* Inlined into each CPU_HOT clone, so they are compiled for its target. */
#define ROW_INLINE static inline __attribute__((always_inline))

/* The row loops below: r[ox] (ox in [lo,hi)) pairs with xr[ox*s + off].
 * Stride 1 gets its own loops, which vectorize; a run-time stride does not. */

/* r[ox] = xr[ox*s + off], or max(.,0) of it under relu */
ROW_INLINE void row_gather(float *r, const float *xr, int lo, int hi, int s, int off,
                       int relu)
{
    if (s == 1 && !relu) {
        memcpy(r + lo, xr + lo + off, (size_t)(hi - lo) * sizeof *r);
    } else if (s == 1) {
#pragma omp simd
        for (int o = lo; o < hi; o++) {
            float v = xr[o + off];
            r[o] = v < 0.f ? 0.f : v;
        }
    } else {
        for (int o = lo; o < hi; o++) {
            float v = xr[o * s + off];
            r[o] = relu && v < 0.f ? 0.f : v;
        }
    }
}

/* dxr[ox*s + off] += a*r[ox], masked by xr[ox*s + off] > 0 when xr != NULL */
ROW_INLINE void row_scatter(float *dxr, const float *xr, const float *r, float a,
                        int lo, int hi, int s, int off)
{
    if (s == 1 && !xr) {
#pragma omp simd
        for (int o = lo; o < hi; o++)
            dxr[o + off] += a * r[o];
    } else if (s == 1) {
#pragma omp simd
        for (int o = lo; o < hi; o++) {
            /* select a loaded value, then compute unconditionally: GCC does
             * not vectorize a conditional multiply (it might trap) */
            float g = r[o];
            float m = xr[o + off] > 0.f ? g : 0.f;
            dxr[o + off] += a * m;
        }
    } else {
        for (int o = lo; o < hi; o++) {
            int i = o * s + off;
            if (!xr || xr[i] > 0.f)
                dxr[i] += a * r[o];
        }
    }
}

/* In-image output rows [*ylo, *yhi) of kernel row ki, clipped to the block
 * [oy0, oy1) (so oy0 <= *ylo <= *yhi <= oy1, empty when none is in it). */
static void conv_rows(const conv_desc *d, int ki, int oy0, int oy1, int *yoff,
                      int *ylo, int *yhi)
{
    int lo, hi;
    *yoff = ki * d->dil - d->pad;
    cpu_conv_range(*yoff, d->stride, d->h, d->oh, &lo, &hi);
    lo = lo < oy0 ? oy0 : lo > oy1 ? oy1 : lo;
    hi = hi > oy1 ? oy1 : hi < lo ? lo : hi;
    *ylo = lo;
    *yhi = hi;
}

/* x (cin_g,h,w) of one sample and group -> the columns of output rows
 * [oy0, oy1): cols (cin_g*kh*kw, (oy1-oy0)*ow), reading max(x,0) under
 * relu_in. */
CPU_HOT static void im2col(const conv_desc *d, int cin_g, const float *x, float *cols,
                   int oy0, int oy1)
{
    const int h = d->h, w = d->w, ow = d->ow, s = d->stride;
    const size_t nb = (size_t)(oy1 - oy0) * ow;
    for (int c = 0; c < cin_g; c++)
        for (int ki = 0; ki < d->kh; ki++) {
            int yoff, ylo, yhi;
            conv_rows(d, ki, oy0, oy1, &yoff, &ylo, &yhi);
            for (int kj = 0; kj < d->kw; kj++) {
                float *row = cols + ((size_t)(c * d->kh + ki) * d->kw + kj) * nb;
                int xoff = kj * d->dil - d->pad, lo, hi;
                cpu_conv_range(xoff, s, w, ow, &lo, &hi);
                memset(row, 0, (size_t)(ylo - oy0) * ow * sizeof *row);
                for (int oy = ylo; oy < yhi; oy++) {
                    const float *xr = x + ((size_t)c * h + oy * s + yoff) * w;
                    float *r = row + (size_t)(oy - oy0) * ow;
                    for (int ox = 0; ox < lo; ox++)
                        r[ox] = 0.f;
                    row_gather(r, xr, lo, hi, s, xoff, d->relu_in);
                    for (int ox = hi; ox < ow; ox++)
                        r[ox] = 0.f;
                }
                memset(row + (size_t)(yhi - oy0) * ow, 0,
                       (size_t)(oy1 - yhi) * ow * sizeof *row);
            }
        }
}

/* dx (cin_g,h,w) += scatter of the columns of output rows [oy0, oy1),
 * cols (cin_g*kh*kw, (oy1-oy0)*ow), masked by x > 0 under relu_in. */
CPU_HOT static void col2im(const conv_desc *d, int cin_g, const float *cols,
                   const float *x, float *dx, int oy0, int oy1)
{
    const int h = d->h, w = d->w, ow = d->ow, s = d->stride;
    const size_t nb = (size_t)(oy1 - oy0) * ow;
    for (int c = 0; c < cin_g; c++)
        for (int ki = 0; ki < d->kh; ki++) {
            int yoff, ylo, yhi;
            conv_rows(d, ki, oy0, oy1, &yoff, &ylo, &yhi);
            for (int kj = 0; kj < d->kw; kj++) {
                const float *row =
                    cols + ((size_t)(c * d->kh + ki) * d->kw + kj) * nb;
                int xoff = kj * d->dil - d->pad, lo, hi;
                cpu_conv_range(xoff, s, w, ow, &lo, &hi);
                for (int oy = ylo; oy < yhi; oy++) {
                    size_t base = ((size_t)c * h + oy * s + yoff) * w;
                    const float *xr = x + base;
                    float *dxr = dx + base;
                    row_scatter(dxr, d->relu_in ? xr : NULL,
                                row + (size_t)(oy - oy0) * ow,
                                1.f, lo, hi, s, xoff);
                }
            }
        }
}

void cpu_conv2d_forward(const conv_desc *d, const float *x, const float *w,
                        const float *b, float *y, int acc, float *work)
{
    if (cpu_dwp_ok(d)) {
        cpu_dwp_forward(d, x, w, b, y, acc, work);
        return;
    }
    const int groups = d->groups, cin_g = d->cin / groups;
    const int cout_g = d->cout / groups, k = conv_k(d);
    const int ohw = d->oh * d->ow;
    const size_t hw = (size_t)d->h * d->w, slice = conv_slice_size(d);
    const int pointwise = conv_pointwise(d), rows = conv_block_rows(d);
    /* with a bias, y starts as bias (or y + bias) and the sgemm adds to it */
    const float beta = (b || acc) ? 1.f : 0.f;
#pragma omp parallel num_threads(conv_nthreads(d))
    {
        const int nt = omp_get_num_threads(), t = omp_get_thread_num();
        const int i0 = (int)((long)d->n * t / nt), i1 = (int)((long)d->n * (t + 1) / nt);
        float *cols = work + (size_t)t * slice;
        for (int i = i0; i < i1; i++) {
            const float *xi = x + (size_t)i * d->cin * hw;
            float *yi = y + (size_t)i * d->cout * ohw;
            if (b)
                for (int co = 0; co < d->cout; co++) {
                    float *yr = yi + (size_t)co * ohw;
                    const float bv = b[co];
                    if (acc) {
#pragma omp simd
                        for (int j = 0; j < ohw; j++)
                            yr[j] += bv;
                    } else {
#pragma omp simd
                        for (int j = 0; j < ohw; j++)
                            yr[j] = bv;
                    }
                }
            for (int g = 0; g < groups; g++) {
                const float *xg = xi + (size_t)g * cin_g * hw;
                for (int oy0 = 0; oy0 < d->oh; oy0 += rows) {
                    const int oy1 = oy0 + rows < d->oh ? oy0 + rows : d->oh;
                    const int nb = (oy1 - oy0) * d->ow;
                    const float *src = xg; /* pointwise: one block, ldb == hw */
                    if (!pointwise) {
                        im2col(d, cin_g, xg, cols, oy0, oy1);
                        src = cols;
                    }
                    /* y_g[:, block] (cout_g, nb) = w_g (cout_g, k) * cols */
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cout_g, nb,
                                k, 1.f, w + (size_t)g * cout_g * k, k, src, nb, beta,
                                yi + (size_t)g * cout_g * ohw + (size_t)oy0 * d->ow,
                                ohw);
                }
            }
        }
    }
}

/* db += the sum of dy over samples and positions, per output channel (each
 * plane in float vector lanes, the planes in double) */
void cpu_conv_bias_grad(const conv_desc *d, const float *dy, float *db)
{
    const size_t ohw = (size_t)d->oh * d->ow;
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if ((size_t)d->n * d->cout * ohw > CPU_PAR_MIN)
    for (int co = 0; co < d->cout; co++) {
        double sum = 0.;
        for (int i = 0; i < d->n; i++) {
            const float *p = dy + ((size_t)i * d->cout + co) * ohw;
            float s = 0.f;
#pragma omp simd reduction(+ : s)
            for (size_t j = 0; j < ohw; j++)
                s += p[j];
            sum += s;
        }
        db[co] += (float)sum;
    }
}

void cpu_conv2d_backward(const conv_desc *d, const float *x, const float *w,
                         const float *dy, float *dx, float *dw, float *db,
                         float *work)
{
    if (cpu_dwp_ok(d)) {
        cpu_dwp_backward(d, x, w, dy, dx, dw, db, work);
        return;
    }
    const int groups = d->groups, cin_g = d->cin / groups;
    const int cout_g = d->cout / groups, k = conv_k(d);
    const int ohw = d->oh * d->ow;
    const size_t hw = (size_t)d->h * d->w, nw = (size_t)d->cout * k;
    const int pointwise = conv_pointwise(d), rows = conv_block_rows(d);
    const int direct = dx && conv_dx_direct(d);
    const conv_desc t = conv_dx_desc(d);
    const int trows = conv_block_rows(&t), kt = conv_k(&t);
    const int tpointwise = conv_pointwise(&t); /* 1x1 unpadded, relu_in */
    /* work: [wt] then one slice per thread: [cols | dw accumulator | tmp] */
    float *wt = work, *slices = work + conv_wt_size(d);
    const size_t slice = conv_slice_size(d);
    const size_t dwoff = slice - round16(nw) -
                         (conv_dx_direct(d) && d->relu_in
                              ? round16((size_t)cin_g * trows * d->w)
                              : 0);

    if (db)
        cpu_conv_bias_grad(d, dy, db);
    if (!dx && !dw)
        return;
    if (direct) /* wt[g][ci][(co*kh + ki)*kw + kj] = w[g*cout_g + co][ci][-ki][-kj] */
        for (int g = 0; g < groups; g++)
            for (int ci = 0; ci < cin_g; ci++)
                for (int co = 0; co < cout_g; co++)
                    for (int ki = 0; ki < d->kh; ki++)
                        for (int kj = 0; kj < d->kw; kj++)
                            wt[((size_t)(g * cin_g + ci) * cout_g + co) * d->kh * d->kw +
                               ki * d->kw + kj] =
                                w[(((size_t)(g * cout_g + co) * cin_g + ci) * d->kh +
                                   d->kh - 1 - ki) * d->kw + d->kw - 1 - kj];

#pragma omp parallel num_threads(conv_nthreads(d))
    {
        const int nt = omp_get_num_threads(), th = omp_get_thread_num();
        const int i0 = (int)((long)d->n * th / nt);
        const int i1 = (int)((long)d->n * (th + 1) / nt);
        float *cols = slices + (size_t)th * slice, *tmp = cols + dwoff + round16(nw);
        float *dwt = NULL;
        if (dw) {
            dwt = th == 0 ? dw : cols + dwoff;
            if (th)
                memset(dwt, 0, nw * sizeof *dwt);
        }
        for (int i = i0; i < i1; i++)
            for (int g = 0; g < groups; g++) {
                const size_t xo = ((size_t)i * d->cin + (size_t)g * cin_g) * hw;
                const float *xg = x + xo;
                const float *dyg = dy + ((size_t)i * d->cout + (size_t)g * cout_g) * ohw;
                const float *wg = w + (size_t)g * cout_g * k;
                float *dxg = dx ? dx + xo : NULL;
                for (int oy0 = 0; oy0 < d->oh; oy0 += rows) {
                    const int oy1 = oy0 + rows < d->oh ? oy0 + rows : d->oh;
                    const int nb = (oy1 - oy0) * d->ow;
                    const float *dyb = dyg + (size_t)oy0 * d->ow;
                    if (dwt) {
                        const float *src = xg; /* pointwise: one block */
                        if (!pointwise) {
                            im2col(d, cin_g, xg, cols, oy0, oy1);
                            src = cols;
                        }
                        /* dw_g (cout_g, k) += dy_g[:, block] * cols^T */
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cout_g, k,
                                    nb, 1.f, dyb, ohw, src, nb, 1.f,
                                    dwt + (size_t)g * cout_g * k, k);
                    }
                    if (!dxg || direct)
                        continue;
                    /* dcols (k, nb) = w_g^T * dy_g[:, block]; for pointwise,
                     * straight into dx (k == cin_g, nb == hw) */
                    if (pointwise) {
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, nb,
                                    cout_g, 1.f, wg, k, dyb, ohw, 1.f, dxg, nb);
                    } else {
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, nb,
                                    cout_g, 1.f, wg, k, dyb, ohw, 0.f, cols, nb);
                        col2im(d, cin_g, cols, xg, dxg, oy0, oy1);
                    }
                }
                if (!direct)
                    continue;
                /* dx_g[:, block] (cin_g, nb) += wt_g (cin_g, kt) * im2col(dy_g) */
                const float *wtg = wt + (size_t)g * cin_g * kt;
                for (int iy0 = 0; iy0 < d->h; iy0 += trows) {
                    const int iy1 = iy0 + trows < d->h ? iy0 + trows : d->h;
                    const int nb = (iy1 - iy0) * d->w;
                    float *dxb = dxg + (size_t)iy0 * d->w;
                    const float *src = dyg; /* tpointwise: one block, ldb == hw */
                    if (!tpointwise) {
                        im2col(&t, cout_g, dyg, cols, iy0, iy1);
                        src = cols;
                    }
                    if (!d->relu_in) {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cin_g,
                                    nb, kt, 1.f, wtg, kt, src, nb, 1.f, dxb, (int)hw);
                        continue;
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cin_g, nb,
                                kt, 1.f, wtg, kt, src, nb, 0.f, tmp, nb);
                    for (int c = 0; c < cin_g; c++)
                        row_scatter(dxb + (size_t)c * hw, xg + (size_t)c * hw + iy0 * d->w,
                                    tmp + (size_t)c * nb, 1.f, 0, nb, 1, 0);
                }
            }
        if (dw && nt > 1) {
#pragma omp barrier
#pragma omp for schedule(static)
            for (size_t j = 0; j < nw; j++) {
                float sum = 0.f;
                for (int u = 1; u < nt; u++)
                    sum += slices[(size_t)u * slice + dwoff + j];
                dw[j] += sum;
            }
        }
    }
}
