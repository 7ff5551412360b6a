/* Average and max pooling on the CPU, x (n,c,h,w) -> y (n,c,oh,ow): (n,c)
 * planes split over threads, so every thread writes only its own planes.
 *
 * Each output row is computed separably: the window's input rows are first
 * combined column by column into a row buffer padded by `pad` on both sides
 * (sum, or running max), then the k shifted copies of that buffer are
 * combined across the row. Both passes are contiguous for stride 1 and
 * vectorize; a direct window loop was 10-30x slower. The average's divisor
 * factors per dimension (count_include_pad or not), and the max visits each
 * window in row-major order, keeping the first maximum as PyTorch does.
 * Where a plane fits, the passes run over the whole plane instead (the 3x3
 * stride-1 average, and the max reading a plane padded once): the same
 * arithmetic in the same order, without loads that wait on just-made stores
 * of the row buffer at another offset (1.14x on a cell with three pools).
 */
#include "tensor/cpu_ops.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Longest padded row (w + 2*pad) the row buffers hold; wider planes take
 * the direct window loops. */
#define POOL_ROW_MAX 2048

/* In-image rows [*lo, *hi) of the window of output row o; the length of the
 * window clipped to the padded image (count_include_pad, as PyTorch) in
 * *padded. */
static void pool_window(int o, int stride, int pad, int k, int len, int *lo,
                        int *hi, int *padded)
{
    int start = o * stride - pad, end = start + k;
    if (end > len + pad)
        end = len + pad;
    *padded = end - start;
    *lo = start < 0 ? 0 : start;
    *hi = end > len ? len : end;
}

/* window element count along one dimension for output o */
static int pool_count(const pool_desc *d, int o, int len)
{
    int lo, hi, padded;
    pool_window(o, d->stride, d->pad, d->k, len, &lo, &hi, &padded);
    return d->count_include_pad ? padded : hi - lo;
}

/* the counts of all output columns, once per plane */
static void pool_col_counts(const pool_desc *d, float *cx)
{
    for (int ox = 0; ox < d->ow; ox++)
        cx[ox] = (float)pool_count(d, ox, d->w);
}

static int pool_rows_fit(const pool_desc *d)
{
    return d->w + 2 * d->pad <= POOL_ROW_MAX && d->ow <= POOL_ROW_MAX;
}

/* ---- average ---- */

CPU_HOT static void avg_plane(const pool_desc *d, const float *xp, float *yp,
                              int acc)
{
    const int w = d->w, ow = d->ow, k = d->k, s = d->stride, pad = d->pad;
    float buf[POOL_ROW_MAX], sum[POOL_ROW_MAX], cx[POOL_ROW_MAX];
    pool_col_counts(d, cx);
    for (int oy = 0; oy < d->oh; oy++) {
        int y0, y1, ph;
        pool_window(oy, s, pad, k, d->h, &y0, &y1, &ph);
        const float cy = (float)(d->count_include_pad ? ph : y1 - y0);
        memset(buf, 0, (size_t)(w + 2 * pad) * sizeof *buf);
        for (int iy = y0; iy < y1; iy++) {
            const float *xr = xp + (size_t)iy * w;
#pragma omp simd
            for (int ix = 0; ix < w; ix++)
                buf[pad + ix] += xr[ix];
        }
        memset(sum, 0, (size_t)ow * sizeof *sum);
        for (int kx = 0; kx < k; kx++) {
            if (s == 1) {
#pragma omp simd
                for (int ox = 0; ox < ow; ox++)
                    sum[ox] += buf[ox + kx];
            } else {
                for (int ox = 0; ox < ow; ox++)
                    sum[ox] += buf[ox * s + kx];
            }
        }
        float *yr = yp + (size_t)oy * ow;
        if (acc) {
#pragma omp simd
            for (int ox = 0; ox < ow; ox++)
                yr[ox] += sum[ox] / (cy * cx[ox]);
        } else {
#pragma omp simd
            for (int ox = 0; ox < ow; ox++)
                yr[ox] = sum[ox] / (cy * cx[ox]);
        }
    }
}

CPU_HOT static void avg_plane_backward(const pool_desc *d, const float *dyp,
                                       float *dxp)
{
    const int w = d->w, ow = d->ow, k = d->k, s = d->stride, pad = d->pad;
    float buf[POOL_ROW_MAX], g[POOL_ROW_MAX], cx[POOL_ROW_MAX];
    pool_col_counts(d, cx);
    for (int oy = 0; oy < d->oh; oy++) {
        int y0, y1, ph;
        pool_window(oy, s, pad, k, d->h, &y0, &y1, &ph);
        const float cy = (float)(d->count_include_pad ? ph : y1 - y0);
        const float *dyr = dyp + (size_t)oy * ow;
#pragma omp simd
        for (int ox = 0; ox < ow; ox++)
            g[ox] = dyr[ox] / (cy * cx[ox]);
        /* buf[pad + ix]: the sum of g over the windows holding column ix */
        memset(buf, 0, (size_t)(w + 2 * pad) * sizeof *buf);
        for (int kx = 0; kx < k; kx++) {
            if (s == 1) {
#pragma omp simd
                for (int ox = 0; ox < ow; ox++)
                    buf[ox + kx] += g[ox];
            } else {
                for (int ox = 0; ox < ow; ox++)
                    buf[ox * s + kx] += g[ox];
            }
        }
        for (int iy = y0; iy < y1; iy++) {
            float *dxr = dxp + (size_t)iy * w;
#pragma omp simd
            for (int ix = 0; ix < w; ix++)
                dxr[ix] += buf[pad + ix];
        }
    }
}

/* The 3x3 window at stride 1 with padding 1 that keeps the size (the
 * cells' avg_pool_3x3), over whole planes: all the column sums of a plane
 * first, then all the row sums, so that no load waits on a store still in
 * flight at another offset (the row-buffer version's cost at this size).
 * Every output is the same sum in the same order as avg_plane's, so the
 * results are the same to the bit. */
#define POOL3_MAX 4352 /* (w + 2) * h floats of the column sums: 64x64 planes */

static int pool3_fits(const pool_desc *d)
{
    return d->k == 3 && d->stride == 1 && d->pad == 1 && d->oh == d->h && d->ow == d->w &&
           (size_t)(d->w + 2) * d->h <= POOL3_MAX && d->w >= 2 && d->h >= 2;
}

/* 0 when RMINAS_POOL_ROWS is set (and not 0): the row-buffer loops
 * everywhere (the same values; kept for comparing the two) */
static int pool_planes;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static void pool_init(void)
{
    const char *e = getenv("RMINAS_POOL_ROWS");
    pool_planes = !e || !*e || !strcmp(e, "0");
}

static int pool_planes_on(void)
{
    pthread_once(&pool_once, pool_init);
    return pool_planes;
}

/* the divisor's row factor of output row y */
static float pool3_cy(const pool_desc *d, int y)
{
    int y0, y1, ph;
    pool_window(y, 1, 1, 3, d->h, &y0, &y1, &ph);
    return (float)(d->count_include_pad ? ph : y1 - y0);
}

CPU_HOT static void avg3_plane(const pool_desc *d, const float *xp, float *yp, int acc)
{
    const int h = d->h, w = d->w, W = w + 2;
    float v[POOL3_MAX], cx[POOL_ROW_MAX];
    pool_col_counts(d, cx);
    for (int y = 0; y < h; y++) {
        float *vr = v + (size_t)y * W + 1;
        const float *a = xp + (size_t)(y ? y - 1 : 0) * w, *b = a + w, *c = b + w;
        vr[-1] = vr[w] = 0.f;
        if (y == 0 || y == h - 1) {
#pragma omp simd
            for (int ix = 0; ix < w; ix++)
                vr[ix] = (0.f + a[ix]) + b[ix];
        } else {
#pragma omp simd
            for (int ix = 0; ix < w; ix++)
                vr[ix] = ((0.f + a[ix]) + b[ix]) + c[ix];
        }
    }
    for (int y = 0; y < h; y++) {
        const float *vr = v + (size_t)y * W;
        const float cy = pool3_cy(d, y);
        float *yr = yp + (size_t)y * w;
        if (acc) {
#pragma omp simd
            for (int ox = 0; ox < w; ox++)
                yr[ox] += (((0.f + vr[ox]) + vr[ox + 1]) + vr[ox + 2]) / (cy * cx[ox]);
        } else {
#pragma omp simd
            for (int ox = 0; ox < w; ox++)
                yr[ox] = (((0.f + vr[ox]) + vr[ox + 1]) + vr[ox + 2]) / (cy * cx[ox]);
        }
    }
}

CPU_HOT static void avg3_plane_backward(const pool_desc *d, const float *dyp, float *dxp)
{
    const int h = d->h, w = d->w;
    float g[POOL3_MAX], t[POOL3_MAX], cx[POOL_ROW_MAX];
    pool_col_counts(d, cx);
    for (int y = 0; y < h; y++) {
        const float cy = pool3_cy(d, y);
        const float *dyr = dyp + (size_t)y * w;
        float *gr = g + (size_t)y * w;
#pragma omp simd
        for (int ox = 0; ox < w; ox++)
            gr[ox] = dyr[ox] / (cy * cx[ox]);
    }
    /* t[y][ix]: the sum of g over the windows of row y holding column ix,
     * in avg_plane_backward's order (g[ix + 1], g[ix], g[ix - 1]) */
    for (int y = 0; y < h; y++) {
        const float *gr = g + (size_t)y * w;
        float *tr = t + (size_t)y * w;
        tr[0] = (0.f + gr[1]) + gr[0];
#pragma omp simd
        for (int ix = 1; ix < w - 1; ix++)
            tr[ix] = ((0.f + gr[ix + 1]) + gr[ix]) + gr[ix - 1];
        tr[w - 1] = (0.f + gr[w - 1]) + gr[w - 2];
    }
    /* dx row y gets the rows y - 1, y, y + 1 of t, in that order */
    for (int y = 0; y < h; y++) {
        float *dxr = dxp + (size_t)y * w;
        const float *a = t + (size_t)(y ? y - 1 : 0) * w, *b = a + w, *c = b + w;
        if (y == 0 || y == h - 1) {
#pragma omp simd
            for (int ix = 0; ix < w; ix++)
                dxr[ix] = (dxr[ix] + a[ix]) + b[ix];
        } else {
#pragma omp simd
            for (int ix = 0; ix < w; ix++)
                dxr[ix] = ((dxr[ix] + a[ix]) + b[ix]) + c[ix];
        }
    }
}

/* direct window loops, for planes wider than the row buffers */
static void avg_plane_direct(const pool_desc *d, const float *xp, float *yp,
                             int acc)
{
    for (int oy = 0; oy < d->oh; oy++) {
        int y0, y1, ph;
        pool_window(oy, d->stride, d->pad, d->k, d->h, &y0, &y1, &ph);
        for (int ox = 0; ox < d->ow; ox++) {
            int x0, x1, pw;
            pool_window(ox, d->stride, d->pad, d->k, d->w, &x0, &x1, &pw);
            float s = 0.f;
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++)
                    s += xp[(size_t)iy * d->w + ix];
            int cnt = d->count_include_pad ? ph * pw : (y1 - y0) * (x1 - x0);
            float v = s / (float)cnt;
            float *yo = yp + (size_t)oy * d->ow + ox;
            *yo = acc ? *yo + v : v;
        }
    }
}

static void avg_plane_backward_direct(const pool_desc *d, const float *dyp,
                                      float *dxp)
{
    for (int oy = 0; oy < d->oh; oy++) {
        int y0, y1, ph;
        pool_window(oy, d->stride, d->pad, d->k, d->h, &y0, &y1, &ph);
        for (int ox = 0; ox < d->ow; ox++) {
            int x0, x1, pw;
            pool_window(ox, d->stride, d->pad, d->k, d->w, &x0, &x1, &pw);
            int cnt = d->count_include_pad ? ph * pw : (y1 - y0) * (x1 - x0);
            float g = dyp[(size_t)oy * d->ow + ox] / (float)cnt;
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++)
                    dxp[(size_t)iy * d->w + ix] += g;
        }
    }
}

void cpu_avgpool_forward(const pool_desc *d, const float *x, float *y, int acc)
{
    const size_t hw = (size_t)d->h * d->w, ohw = (size_t)d->oh * d->ow;
    const long planes = (long)d->n * d->c;
    const int rows = pool_rows_fit(d), pool3 = pool3_fits(d) && pool_planes_on();
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if (planes * (long)hw > CPU_PAR_MIN)
    for (long p = 0; p < planes; p++) {
        if (pool3)
            avg3_plane(d, x + p * hw, y + p * ohw, acc);
        else if (rows)
            avg_plane(d, x + p * hw, y + p * ohw, acc);
        else
            avg_plane_direct(d, x + p * hw, y + p * ohw, acc);
    }
}

void cpu_avgpool_backward(const pool_desc *d, const float *dy, float *dx)
{
    const size_t hw = (size_t)d->h * d->w, ohw = (size_t)d->oh * d->ow;
    const long planes = (long)d->n * d->c;
    const int rows = pool_rows_fit(d), pool3 = pool3_fits(d) && pool_planes_on();
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if (planes * (long)hw > CPU_PAR_MIN)
    for (long p = 0; p < planes; p++) {
        if (pool3)
            avg3_plane_backward(d, dy + p * ohw, dx + p * hw);
        else if (rows)
            avg_plane_backward(d, dy + p * ohw, dx + p * hw);
        else
            avg_plane_backward_direct(d, dy + p * ohw, dx + p * hw);
    }
}

/* ---- max ---- */

/* Takes v when it is larger, or NaN (which then propagates, as PyTorch). */
#define MAX_TAKES(v, m) ((v) > (m) || (v) != (v))

CPU_HOT static void max_plane(const pool_desc *d, const float *xp, float *yp,
                              int acc, int32_t *ap, int planes_ok)
{
    const int w = d->w, ow = d->ow, k = d->k, s = d->stride, pad = d->pad, W = w + 2 * pad;
    float buf[POOL_ROW_MAX], m[POOL_ROW_MAX], plane[POOL3_MAX];
    int32_t at[POOL_ROW_MAX];
    for (int i = 0; i < pad; i++)
        buf[i] = buf[pad + w + i] = -INFINITY;
    /* the whole plane padded at once where it fits, so that the window
     * loads never wait on the stores of a row copied just before */
    const int whole = planes_ok && (size_t)W * d->h <= POOL3_MAX;
    if (whole)
        for (int iy = 0; iy < d->h; iy++) {
            float *r = plane + (size_t)iy * W;
            for (int i = 0; i < pad; i++)
                r[i] = r[pad + w + i] = -INFINITY;
            memcpy(r + pad, xp + (size_t)iy * w, (size_t)w * sizeof *r);
        }
    for (int oy = 0; oy < d->oh; oy++) {
        int y0, y1, ph;
        pool_window(oy, s, pad, k, d->h, &y0, &y1, &ph);
#pragma omp simd
        for (int ox = 0; ox < ow; ox++) {
            int start = ox * s - pad;
            m[ox] = -INFINITY;
            at[ox] = y0 * w + (start < 0 ? 0 : start);
        }
        /* rows in order, then columns in order: row-major in each window */
        for (int iy = y0; iy < y1; iy++) {
            const float *row = buf;
            if (whole)
                row = plane + (size_t)iy * W;
            else
                memcpy(buf + pad, xp + (size_t)iy * w, (size_t)w * sizeof *buf);
            const int32_t base = iy * w - pad;
            for (int kx = 0; kx < k; kx++) {
                if (s == 1) {
#pragma omp simd
                    for (int ox = 0; ox < ow; ox++) {
                        float v = row[ox + kx], mo = m[ox];
                        int take = MAX_TAKES(v, mo);
                        m[ox] = take ? v : mo;
                        at[ox] = take ? base + ox + kx : at[ox];
                    }
                } else {
                    for (int ox = 0; ox < ow; ox++) {
                        float v = row[ox * s + kx];
                        if (MAX_TAKES(v, m[ox])) {
                            m[ox] = v;
                            at[ox] = base + ox * s + kx;
                        }
                    }
                }
            }
        }
        float *yr = yp + (size_t)oy * ow;
        if (acc) {
#pragma omp simd
            for (int ox = 0; ox < ow; ox++)
                yr[ox] += m[ox];
        } else {
            memcpy(yr, m, (size_t)ow * sizeof *yr);
        }
        if (ap)
            memcpy(ap + (size_t)oy * ow, at, (size_t)ow * sizeof *at);
    }
}

static void max_plane_direct(const pool_desc *d, const float *xp, float *yp,
                             int acc, int32_t *ap)
{
    for (int oy = 0; oy < d->oh; oy++) {
        int y0, y1, ph;
        pool_window(oy, d->stride, d->pad, d->k, d->h, &y0, &y1, &ph);
        for (int ox = 0; ox < d->ow; ox++) {
            int x0, x1, pw;
            pool_window(ox, d->stride, d->pad, d->k, d->w, &x0, &x1, &pw);
            float best = -INFINITY;
            int32_t at = y0 * d->w + x0;
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++) {
                    float v = xp[(size_t)iy * d->w + ix];
                    if (MAX_TAKES(v, best)) {
                        best = v;
                        at = iy * d->w + ix;
                    }
                }
            const size_t o = (size_t)oy * d->ow + ox;
            yp[o] = acc ? yp[o] + best : best;
            if (ap)
                ap[o] = at;
        }
    }
}

void cpu_maxpool_forward(const pool_desc *d, const float *x, float *y, int acc,
                         int32_t *argmax)
{
    const size_t hw = (size_t)d->h * d->w, ohw = (size_t)d->oh * d->ow;
    const long planes = (long)d->n * d->c;
    const int rows = pool_rows_fit(d), planes_ok = pool_planes_on();
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if (planes * (long)hw > CPU_PAR_MIN)
    for (long p = 0; p < planes; p++) {
        int32_t *ap = argmax ? argmax + p * ohw : NULL;
        if (rows)
            max_plane(d, x + p * hw, y + p * ohw, acc, ap, planes_ok);
        else
            max_plane_direct(d, x + p * hw, y + p * ohw, acc, ap);
    }
}

void cpu_maxpool_backward(const pool_desc *d, const float *dy,
                          const int32_t *argmax, float *dx)
{
    const size_t hw = (size_t)d->h * d->w, ohw = (size_t)d->oh * d->ow;
    const long planes = (long)d->n * d->c;
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if (planes * (long)ohw > CPU_PAR_MIN)
    for (long p = 0; p < planes; p++) {
        const float *dyp = dy + p * ohw;
        const int32_t *ap = argmax + p * ohw;
        float *dxp = dx + p * hw;
        for (size_t o = 0; o < ohw; o++)
            dxp[ap[o]] += dyp[o];
    }
}
