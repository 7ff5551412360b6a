/* Depthwise convolutions on padded planes.
 *
 * One input and one output channel per group: the depthwise halves of the
 * chain space's inverted residuals (3x3 to 7x7, stride 1 and 2) and of
 * DARTS's separable and dilated convolutions (3x3 and 5x5, dilation 1 or 2,
 * stride 2 in reduction cells). Each plane is copied, under relu_in as
 * max(x, 0), into zero-padded buffers, one per phase of the stride: phase
 * (py, px) holds the padded pixels (Y*s + py, X*s + px) as a plane of width
 * wp2 = ow + dil*(kw-1)/s (at stride 1 one phase, the padded plane itself).
 * Output (oy, ox) reads, for tap (ki, kj), pixel (oy + Y0, ox + X0) of phase
 * ((ki*dil) % s, (kj*dil) % s), Y0 = ki*dil / s, X0 = kj*dil / s, so over the
 * flat index i = oy*wp2 + ox every tap is one contiguous multiply-add at a
 * fixed offset into the buffers. The columns ox >= ow are computed and
 * thrown away (wp2/ow of the work: 1.1x at 32x32 and 5x5, 1.75x at 8x8 and
 * 7x7), in exchange for loops without bounds or per-row overhead; blocks of
 * DWP_BLOCK outputs keep their sums in registers over all taps.
 *
 * The backward uses the same layout. dw[tap] is the dot product of dy, laid
 * out at width wp2 with zeros in the thrown-away columns, with the buffers
 * at the tap's offset (per plane in float, planes summed in double, as the
 * other CPU convolutions). The gradient of each phase plane gathers dy
 * (after a front of zeros) at the offsets of the taps of that phase, with
 * their weights: a convolution again; dx takes each pixel's value from its
 * phase, masked by x > 0 under relu_in, added into dx.
 *
 * The table runs the backward here where oneDNN's is slow (its backward of
 * 5x5, 7x7, dilated and strided depthwise convolutions took 2-20x its
 * forward: tests/bench/bench_conv, doc/benchmarks.md), and everything here
 * under `set conv im2col`.
 */
#include "tensor/cpu_ops.h"

#include <omp.h>
#include <string.h>

/* outputs summed at once in registers: DWP_NV vectors of 8 floats (AVX2;
 * two SSE halves each in the baseline build) */
#define DWP_NV 8
#define DWP_BLOCK (8 * DWP_NV)
/* the most taps (7x7 = 49) and the largest stride */
#define DWP_MAX_TAPS 64
#define DWP_MAX_STRIDE 4
#define DWP_MAX_PHASES (DWP_MAX_STRIDE * DWP_MAX_STRIDE)

typedef struct dwp_geom {
    int s, wp2, hp2;    /* stride; width and height of a phase plane */
    size_t nf;          /* flat outputs, oh*wp2 rounded up to 8 */
    size_t plen;        /* one phase plane: nf + the largest in-phase offset */
    size_t front;       /* zeros before dy in the dx pass: that offset */
    size_t xlen, qlen;  /* s*s*plen; front + plen */
    int off[DWP_MAX_TAPS];                 /* tap: phase base + in-phase offset */
    int nph[DWP_MAX_PHASES];               /* taps per phase */
    int ptap[DWP_MAX_PHASES][DWP_MAX_TAPS];  /* their indices */
    int poff[DWP_MAX_PHASES][DWP_MAX_TAPS];  /* front - their in-phase offset */
} dwp_geom;

static size_t round8(size_t v) { return (v + 7) & ~(size_t)7; }
static size_t round16(size_t v) { return (v + 15) & ~(size_t)15; }

int cpu_dwp_ok(const conv_desc *d)
{
    return d->groups == d->cin && d->groups == d->cout && d->stride <= DWP_MAX_STRIDE &&
           d->kh * d->kw <= DWP_MAX_TAPS;
}

static void dwp_geometry(const conv_desc *d, dwp_geom *g)
{
    const int kh = d->kh, kw = d->kw, dil = d->dil, s = d->stride;
    const int y0max = dil * (kh - 1) / s, x0max = dil * (kw - 1) / s;
    g->s = s;
    g->wp2 = d->ow + x0max;
    g->hp2 = d->oh + y0max;
    g->nf = round8((size_t)d->oh * g->wp2);
    g->front = (size_t)y0max * g->wp2 + x0max;
    g->plen = round8(g->nf + g->front);
    g->xlen = (size_t)s * s * g->plen;
    g->qlen = g->front + g->plen;
    memset(g->nph, 0, sizeof g->nph);
    for (int ki = 0; ki < kh; ki++)
        for (int kj = 0; kj < kw; kj++) {
            const int t = ki * kw + kj, ph = (ki * dil % s) * s + kj * dil % s;
            const int o = ki * dil / s * g->wp2 + kj * dil / s;
            g->off[t] = (int)(ph * g->plen) + o;
            g->ptap[ph][g->nph[ph]] = t;
            g->poff[ph][g->nph[ph]++] = (int)g->front - o;
        }
}

/* one thread's scratch: the phase planes of x (round16(xlen)), then the
 * flat outputs (forward) or dy after its front and the phase planes'
 * gradients (backward) */
static size_t dwp_slice(const dwp_geom *g)
{
    const size_t fwd = round16(g->nf), bwd = round16(g->qlen) + round16(g->xlen);
    return round16(g->xlen) + (fwd > bwd ? fwd : bwd);
}

static int dwp_bwd_threads(const conv_desc *d, int t)
{
    if (cpu_conv_macs(d) < CPU_CONV_PAR_MIN_MACS)
        return 1;
    return t < d->cin ? t : d->cin;
}

size_t cpu_dwp_work_size(const conv_desc *d)
{
    dwp_geom g;
    dwp_geometry(d, &g);
    return (size_t)cpu_max_threads() * dwp_slice(&g);
}

/* The phase planes of src (sh, sw) zero-padded by pad into dst (s*s planes
 * of plen, each hp2 rows of wp2), as max(., 0) under relu. dst is zeroed
 * first (len floats). */
CPU_HOT static void dwp_phases(const float *src, int sh, int sw, int pad, const dwp_geom *g,
                               float *dst, size_t len, int relu)
{
    const int s = g->s, wp2 = g->wp2;
    memset(dst, 0, len * sizeof *dst);
    for (int py = 0; py < s; py++) {
        int ylo, yhi;
        cpu_conv_range(py - pad, s, sh, g->hp2, &ylo, &yhi);
        for (int px = 0; px < s; px++) {
            float *plane = dst + (size_t)(py * s + px) * g->plen;
            int lo, hi;
            cpu_conv_range(px - pad, s, sw, wp2, &lo, &hi);
            const int c0 = px - pad; /* pixel x of the plane is column x*s + c0 */
            for (int y = ylo; y < yhi; y++) {
                const float *r = src + (size_t)(y * s + py - pad) * sw;
                float *o = plane + (size_t)y * wp2;
                if (s == 1 && !relu) {
                    memcpy(o + lo, r + lo + c0, (size_t)(hi - lo) * sizeof *o);
                } else if (s == 1) {
#pragma omp simd
                    for (int x = lo; x < hi; x++) {
                        const float v = r[x + c0];
                        o[x] = v < 0.f ? 0.f : v;
                    }
                } else if (!relu) {
                    for (int x = lo; x < hi; x++)
                        o[x] = r[x * s + c0];
                } else {
                    for (int x = lo; x < hi; x++) {
                        const float v = r[x * s + c0];
                        o[x] = v < 0.f ? 0.f : v;
                    }
                }
            }
        }
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
    dwp_phases(xp, d->h, d->w, d->pad, g, xb, g->xlen, d->relu_in);
    dwp_taps(xb, g->off, wt, d->kh * d->kw, bv, yb, g->nf);
    if (acc)
        dwp_add_rows(yp, yb, g->wp2, d->oh, d->ow, NULL);
    else
        for (int oy = 0; oy < d->oh; oy++)
            memcpy(yp + (size_t)oy * d->ow, yb + (size_t)oy * g->wp2,
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
    if (cpu_conv_macs(d) >= CPU_CONV_PAR_MIN_MACS)
    for (long p = 0; p < planes; p++) {
        const int ch = (int)(p % c);
        float *xb = work + (size_t)omp_get_thread_num() * slice;
        dwp_forward_plane(d, &g, x + p * hw, w + (size_t)ch * taps, b ? b[ch] : 0.f,
                          y + p * ohw, acc, xb, xb + round16(g.xlen));
    }
}

/* dx (h, w) += each pixel's gradient from its phase plane of dp, masked by
 * x > 0 under relu (x given); pixels that no output reads get none */
CPU_HOT static void dwp_dx(const conv_desc *d, const dwp_geom *g, const float *dp,
                           const float *x, float *dx)
{
    const int s = g->s, pad = d->pad, w = d->w;
    if (s == 1) { /* one phase, hp2 == h + 2*pad, wp2 == w + 2*pad */
        dwp_add_rows(dx, dp + (size_t)pad * g->wp2 + pad, g->wp2, d->h, w, x);
        return;
    }
    for (int py = 0; py < s; py++) {
        int ylo, yhi;
        cpu_conv_range(py - pad, s, d->h, g->hp2, &ylo, &yhi);
        for (int px = 0; px < s; px++) {
            const float *plane = dp + (size_t)(py * s + px) * g->plen;
            int lo, hi;
            cpu_conv_range(px - pad, s, w, g->wp2, &lo, &hi);
            const int c0 = px - pad; /* pixel xx of the plane is column xx*s + c0 */
            for (int y = ylo; y < yhi; y++) {
                const size_t row = (size_t)(y * s + py - pad) * w;
                float *o = dx + row;
                const float *src = plane + (size_t)y * g->wp2, *xr = x ? x + row : NULL;
                for (int xx = lo; xx < hi; xx++) {
                    const float v = src[xx];
                    o[xx * s + c0] += xr && xr[xx * s + c0] <= 0.f ? 0.f : v;
                }
            }
        }
    }
}

/* Channel ch over all samples: its dx planes, dw and db entries. */
static void dwp_backward_channel(const conv_desc *d, const dwp_geom *g, int ch,
                                 const float *x, const float *w, const float *dy,
                                 float *dx, float *dw, float *db, float *work)
{
    const int c = d->cin, taps = d->kh * d->kw, nph = g->s * g->s;
    const size_t hw = (size_t)d->h * d->w, ohw = (size_t)d->oh * d->ow;
    float *xb = work, *qb = xb + round16(g->xlen);
    float *dp = qb + round16(g->qlen), *dyw = qb + g->front;
    const float *wt = w + (size_t)ch * taps;
    float pw[DWP_MAX_PHASES][DWP_MAX_TAPS]; /* the weights of each phase's taps */
    for (int ph = 0; ph < nph; ph++)
        for (int k = 0; k < g->nph[ph]; k++)
            pw[ph][k] = wt[g->ptap[ph][k]];
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
        if (!dw && !dx)
            continue;
        /* dy at width wp2 after a front of zeros, zeros after it */
        memset(qb, 0, g->qlen * sizeof *qb);
        for (int oy = 0; oy < d->oh; oy++)
            memcpy(dyw + (size_t)oy * g->wp2, dyp + (size_t)oy * d->ow,
                   (size_t)d->ow * sizeof *qb);
        if (dw) {
            dwp_phases(xp, d->h, d->w, d->pad, g, xb, g->xlen, d->relu_in);
            dwp_wgrad(xb, g->off, dyw, taps, g->nf, gw);
        }
        if (dx) {
            for (int ph = 0; ph < nph; ph++)
                dwp_taps(qb, g->poff[ph], pw[ph], g->nph[ph], 0.f, dp + (size_t)ph * g->plen,
                         g->plen);
            dwp_dx(d, g, dp, d->relu_in ? xp : NULL, dx + p * hw);
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
