/* Depthwise convolutions of stride 1 on padded planes.
 *
 * One input and one output channel per group: the depthwise halves of the
 * chain space's inverted residuals (3x3 to 7x7) and of DARTS's separable and
 * dilated convolutions (3x3 and 5x5, dilation 1 or 2). Each plane is copied,
 * under relu_in as max(x, 0), into a zero-padded buffer of width
 * wp = w + 2*pad. Output (oy, ox) is then the sum over the taps of
 * w[ki][kj] * buf[(oy + ki*dil)*wp + ox + kj*dil], so over the flat index
 * i = oy*wp + ox every tap is one contiguous multiply-add at the offset
 * ki*dil*wp + kj*dil. The columns ox >= ow are computed and thrown away
 * (wp/ow of the work: 1.1x at 32x32 and 5x5, 1.75x at 8x8 and 7x7), in
 * exchange for loops without bounds or per-row overhead; blocks of
 * DWP_BLOCK outputs keep their sums in registers over all taps.
 *
 * The backward uses the same layout. dw[tap] is the dot product of dy, laid
 * out at width wp with zeros in the thrown-away columns, with the buffer at
 * the tap's offset (per plane in float, planes summed in double, as the
 * other CPU convolutions). dx is the forward convolution of dy, zero-padded
 * by dil*(k-1) - pad to width w + dil*(kw-1), with the kernel flipped, masked
 * by x > 0 under relu_in, added into dx.
 *
 * It replaces oneDNN at these shapes: oneDNN's backward of 5x5, 7x7 and
 * dilated depthwise convolutions took 2-20x its forward (tests/bench/
 * bench_conv, doc/benchmarks.md). Stride 2 keeps the row loops of
 * cpu_conv.c (or oneDNN).
 */
#include "tensor/cpu_ops.h"

#include <omp.h>
#include <string.h>

/* outputs summed at once in registers: DWP_NV vectors of 8 floats (AVX2;
 * two SSE halves each in the baseline build) */
#define DWP_NV 8
#define DWP_BLOCK (8 * DWP_NV)
/* the most taps (7x7 = 49) */
#define DWP_MAX_TAPS 64

typedef struct dwp_geom {
    int wp;             /* width of the padded input plane */
    int wq, qt, ql;     /* the padded dy plane of the dx pass: width, top and
                           left padding */
    size_t nf;          /* flat outputs of the forward, oh*wp rounded up */
    size_t nd;          /* flat outputs of the dx pass, h*wq rounded up */
    size_t xlen, qlen;  /* buffer lengths: nf (nd) + the largest offset */
    int off[DWP_MAX_TAPS], offq[DWP_MAX_TAPS];
} dwp_geom;

static size_t round8(size_t v) { return (v + 7) & ~(size_t)7; }
static size_t round16(size_t v) { return (v + 15) & ~(size_t)15; }

int cpu_dwp_ok(const conv_desc *d)
{
    return d->groups == d->cin && d->groups == d->cout && d->stride == 1 &&
           d->kh * d->kw <= DWP_MAX_TAPS && d->pad <= d->dil * (d->kh - 1) &&
           d->pad <= d->dil * (d->kw - 1);
}

static void dwp_geometry(const conv_desc *d, dwp_geom *g)
{
    const int kh = d->kh, kw = d->kw, dil = d->dil;
    g->wp = d->w + 2 * d->pad;
    g->wq = d->w + dil * (kw - 1);
    g->qt = dil * (kh - 1) - d->pad;
    g->ql = dil * (kw - 1) - d->pad;
    g->nf = round8((size_t)d->oh * g->wp);
    g->nd = round8((size_t)d->h * g->wq);
    for (int ki = 0; ki < kh; ki++)
        for (int kj = 0; kj < kw; kj++) {
            g->off[ki * kw + kj] = ki * dil * g->wp + kj * dil;
            g->offq[ki * kw + kj] = (kh - 1 - ki) * dil * g->wq + (kw - 1 - kj) * dil;
        }
    g->xlen = g->nf + (size_t)g->off[kh * kw - 1];
    g->qlen = g->nd + (size_t)g->offq[0];
}

/* one thread's scratch: the padded x, the forward's flat outputs (or dy at
 * width wp), the padded dy and the dx pass's flat outputs */
static size_t dwp_slice(const dwp_geom *g)
{
    return round16(g->xlen) + round16(g->nf) + round16(g->qlen) + round16(g->nd);
}

/* Below this many multiply-adds one thread (see cpu_conv.c) */
#define DWP_PAR_MIN_MACS (1L << 18)

static double dwp_macs(const conv_desc *d)
{
    return (double)d->n * d->cout * d->oh * d->ow * d->kh * d->kw;
}

static int dwp_bwd_threads(const conv_desc *d, int t)
{
    if (dwp_macs(d) < DWP_PAR_MIN_MACS)
        return 1;
    return t < d->cin ? t : d->cin;
}

size_t cpu_dwp_work_size(const conv_desc *d)
{
    dwp_geom g;
    dwp_geometry(d, &g);
    return (size_t)cpu_max_threads() * dwp_slice(&g);
}

/* dst (len) = 0, then src (sh, sw) at row top, column left of width dw,
 * as max(., 0) under relu */
static void dwp_pad(const float *src, int sh, int sw, float *dst, int dw, int top,
                    int left, size_t len, int relu)
{
    memset(dst, 0, len * sizeof *dst);
    for (int y = 0; y < sh; y++) {
        const float *s = src + (size_t)y * sw;
        float *o = dst + (size_t)(y + top) * dw + left;
        if (!relu) {
            memcpy(o, s, (size_t)sw * sizeof *o);
            continue;
        }
#pragma omp simd
        for (int x = 0; x < sw; x++)
            o[x] = s[x] < 0.f ? 0.f : s[x];
    }
}

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));

#define DWP_INLINE static inline __attribute__((always_inline))

/* unaligned loads and stores (macros: a vector argument or result of a
 * function changes the baseline clone's ABI) */
#define V8_LOAD(p) (*(const v8u *)(p))
#define V8_STORE(p, v) (*(v8u *)(p) = (v))

/* out[i] = b + sum_t wt[t] * buf[i + off[t]] for i in [i0, i0 + 8*nv) */
DWP_INLINE void dwp_taps_block(const float *buf, const int *off, const float *wt,
                               int taps, float b, float *out, size_t i0, const int nv)
{
    v8 s[DWP_NV];
#pragma GCC unroll 8
    for (int v = 0; v < nv; v++)
        s[v] = (v8){0} + b;
    for (int t = 0; t < taps; t++) {
        const v8 a = (v8){0} + wt[t];
        const float *xs = buf + i0 + off[t];
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            s[v] += a * V8_LOAD(xs + 8 * v);
    }
#pragma GCC unroll 8
    for (int v = 0; v < nv; v++)
        V8_STORE(out + i0 + 8 * v, s[v]);
}

/* out[i] = b + sum_t wt[t] * buf[i + off[t]] for i < n (a multiple of 8) */
CPU_HOT static void dwp_taps(const float *buf, const int *off, const float *wt,
                             int taps, float b, float *out, size_t n)
{
    size_t i0 = 0;
    for (; i0 + DWP_BLOCK <= n; i0 += DWP_BLOCK)
        dwp_taps_block(buf, off, wt, taps, b, out, i0, DWP_NV);
    for (; i0 < n; i0 += 8)
        dwp_taps_block(buf, off, wt, taps, b, out, i0, 1);
}

DWP_INLINE float v8_sum(const v8 *v)
{
    float s = 0.f;
    for (int j = 0; j < 8; j++)
        s += (*v)[j];
    return s;
}

/* gw[t] += sum_{i<n} dyw[i] * buf[i + off[t]] (float sums per plane, added
 * in double), two taps at a time, four vectors each */
CPU_HOT static void dwp_wgrad(const float *buf, const int *off, const float *dyw,
                              int taps, size_t n, double *gw)
{
    for (int t = 0; t < taps; t += 2) {
        const int two = t + 1 < taps;
        const float *xa = buf + off[t], *xb = buf + off[two ? t + 1 : t];
        v8 sa[4] = {{0}}, sb[4] = {{0}};
        size_t i = 0;
        for (; i + 32 <= n; i += 32)
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) {
                const v8 g = V8_LOAD(dyw + i + 8 * v);
                sa[v] += g * V8_LOAD(xa + i + 8 * v);
                sb[v] += g * V8_LOAD(xb + i + 8 * v);
            }
        for (; i < n; i += 8) {
            const v8 g = V8_LOAD(dyw + i);
            sa[0] += g * V8_LOAD(xa + i);
            sb[0] += g * V8_LOAD(xb + i);
        }
        const v8 ta = (sa[0] + sa[1]) + (sa[2] + sa[3]);
        const v8 tb = (sb[0] + sb[1]) + (sb[2] + sb[3]);
        gw[t] += v8_sum(&ta);
        if (two)
            gw[t + 1] += v8_sum(&tb);
    }
}

/* dst (rows, cols) += src (rows at width ws), masked by x > 0 where x
 * (rows, cols) is given */
CPU_HOT static void dwp_add_rows(float *dst, const float *src, int ws, int rows, int cols,
                                 const float *x)
{
    for (int r = 0; r < rows; r++) {
        float *o = dst + (size_t)r * cols;
        const float *sr = src + (size_t)r * ws;
        if (!x) {
#pragma omp simd
            for (int j = 0; j < cols; j++)
                o[j] += sr[j];
            continue;
        }
        const float *xr = x + (size_t)r * cols;
#pragma omp simd
        for (int j = 0; j < cols; j++) {
            /* select a loaded value (a conditional load does not vectorize) */
            float g = sr[j];
            o[j] += xr[j] > 0.f ? g : 0.f;
        }
    }
}

static void dwp_forward_plane(const conv_desc *d, const dwp_geom *g, const float *xp,
                              const float *wt, float bv, float *yp, int acc, float *xb,
                              float *yb)
{
    dwp_pad(xp, d->h, d->w, xb, g->wp, d->pad, d->pad, g->xlen, d->relu_in);
    dwp_taps(xb, g->off, wt, d->kh * d->kw, bv, yb, g->nf);
    if (acc)
        dwp_add_rows(yp, yb, g->wp, d->oh, d->ow, NULL);
    else
        for (int oy = 0; oy < d->oh; oy++)
            memcpy(yp + (size_t)oy * d->ow, yb + (size_t)oy * g->wp,
                   (size_t)d->ow * sizeof *yp);
}

void cpu_dwp_forward(const conv_desc *d, const float *x, const float *w, const float *b,
                     float *y, int acc, float *work)
{
    dwp_geom g;
    dwp_geometry(d, &g);
    const int c = d->cin, taps = d->kh * d->kw;
    const size_t hw = (size_t)d->h * d->w, ohw = (size_t)d->oh * d->ow;
    const size_t slice = dwp_slice(&g);
    const long planes = (long)d->n * c;
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if (dwp_macs(d) >= DWP_PAR_MIN_MACS)
    for (long p = 0; p < planes; p++) {
        const int ch = (int)(p % c);
        float *xb = work + (size_t)omp_get_thread_num() * slice;
        dwp_forward_plane(d, &g, x + p * hw, w + (size_t)ch * taps, b ? b[ch] : 0.f,
                          y + p * ohw, acc, xb, xb + round16(g.xlen));
    }
}

/* Channel ch over all samples: its dx planes, dw and db entries. */
static void dwp_backward_channel(const conv_desc *d, const dwp_geom *g, int ch,
                                 const float *x, const float *w, const float *dy,
                                 float *dx, float *dw, float *db, float *work)
{
    const int c = d->cin, taps = d->kh * d->kw;
    const size_t hw = (size_t)d->h * d->w, ohw = (size_t)d->oh * d->ow;
    float *xb = work, *dyw = xb + round16(g->xlen);
    float *qb = dyw + round16(g->nf), *dxf = qb + round16(g->qlen);
    const float *wt = w + (size_t)ch * taps;
    double gw[DWP_MAX_TAPS] = {0}, gb = 0.;
    for (int i = 0; i < d->n; i++) {
        const size_t p = (size_t)i * c + ch;
        const float *xp = x + p * hw, *dyp = dy + p * ohw;
        if (db) {
            float sb = 0.f;
#pragma omp simd reduction(+ : sb)
            for (size_t j = 0; j < ohw; j++)
                sb += dyp[j];
            gb += sb;
        }
        if (dw) {
            dwp_pad(xp, d->h, d->w, xb, g->wp, d->pad, d->pad, g->xlen, d->relu_in);
            dwp_pad(dyp, d->oh, d->ow, dyw, g->wp, 0, 0, g->nf, 0);
            dwp_wgrad(xb, g->off, dyw, taps, g->nf, gw);
        }
        if (dx) {
            float *dxp = dx + p * hw;
            /* offq holds the flipped kernel's offsets */
            dwp_pad(dyp, d->oh, d->ow, qb, g->wq, g->qt, g->ql, g->qlen, 0);
            dwp_taps(qb, g->offq, wt, taps, 0.f, dxf, g->nd);
            dwp_add_rows(dxp, dxf, g->wq, d->h, d->w, d->relu_in ? xp : NULL);
        }
    }
    if (dw)
        for (int t = 0; t < taps; t++)
            dw[(size_t)ch * taps + t] += (float)gw[t];
    if (db)
        db[ch] += (float)gb;
}

void cpu_dwp_backward(const conv_desc *d, const float *x, const float *w, const float *dy,
                      float *dx, float *dw, float *db, float *work)
{
    dwp_geom g;
    dwp_geometry(d, &g);
    const size_t slice = dwp_slice(&g);
#pragma omp parallel for schedule(static) num_threads(dwp_bwd_threads(d, cpu_threads()))
    for (int ch = 0; ch < d->cin; ch++)
        dwp_backward_channel(d, &g, ch, x, w, dy, dx, dw, db,
                             work + (size_t)omp_get_thread_num() * slice);
}
