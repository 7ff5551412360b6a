/* Winograd F(2x2, 3x3) and F(4x4, 3x3) convolutions of our own (`set conv
 * winograd2`, and `winograd4`, which takes the larger tiles where a sample
 * has 16 of them or more), for
 * the shapes that take nearly all of an NAS-Bench-201 step: 3x3, stride 1,
 * padding 1, undilated, ungrouped, channels in multiples of 8. AVX2 + FMA
 * only (cpu_wino_ok says no elsewhere, and the table runs oneDNN instead);
 * with AVX-512 the products run 16 wide (gemm16), each element the same
 * chain of FMAs as in the 8-wide kernel, and for channel counts that are
 * multiples of 16 the packed and blocked layouts below hold 16-channel
 * blocks, which the input and output transforms take 16 wide (itrans16,
 * otrans16: the same operations per element). RMINAS_WINO_AVX2=1 keeps
 * everything 8 wide; the results are the same to the bit either way.
 *
 * Forward, per sample: the input is packed into a zero-padded,
 * channel-blocked layout P[c/8][y][x][8] (ReLU applied under relu_in), each
 * 4x4 input tile of every 8-channel block is transformed (V = B^T d B, 16
 * vectors), the 16 positions xi of a chunk of WT tiles are multiplied by
 * the transformed weights (M[xi] = V[xi] U[xi], U = G g G^T, a small GEMM
 * per position), and each tile comes back as A^T M A (2x2 outputs) into a
 * blocked output buffer, transposed into NCHW at the end.
 *
 * Backward data is the same convolution of dy with the kernel flipped and
 * its channel axes swapped (stride 1, padding 1 keeps the shape); under
 * relu_in its result is masked by x > 0 on the way out. Backward weights:
 * with dM = A dY A^T per output tile, dU[xi] = sum over tiles of
 * V[xi]^T dM[xi] and dg = G^T dU G, the exact gradient of the forward's
 * algebra. Per-thread dU are summed in thread order.
 *
 * The transforms' constants (0, +-1, 1/2) are exact in binary, so the
 * rounding differs from a direct convolution's only in the order of the
 * sums (the products of a tile position sum over channels in float).
 *
 * F(4x4, 3x3) is the same algebra on 6x6 input tiles (36 positions, 4x4
 * outputs; B, G and A of Lavin & Gray, "Fast Algorithms for Convolutional
 * Neural Networks", 2016): 2.25 products per output instead of 4, at
 * larger rounding (A's entries reach 8, G's 1/24; the weight transforms in
 * double). Its transforms are 8 wide only (8-channel blocks; the products
 * run 16 wide on AVX-512 as above). */
#include "tensor/cpu_ops.h"

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define WINO_X86 1
#include <immintrin.h>
#endif

#define WT 64 /* tiles per chunk */

typedef struct wplan {
    int m, al, nx;       /* F(m x m, 3x3): al x al inputs (al = m + 2), nx = al^2 */
    int th, tw, T;       /* tiles: rows, columns, per sample */
    int hp, wp;          /* packed plane: rows, columns */
    size_t np_in, np_out; /* floats of a packed input / output-gradient plane set */
    size_t nv;           /* floats of V or M (16 x WT x widest channels) */
    size_t nu;           /* floats of U (16 x cin x cout) */
    size_t per;          /* floats of one thread's scratch */
} wplan;

static size_t up8(size_t v) { return (v + 7) & ~(size_t)7; }

/* floats from one tile position's plane of V or M to the next: 64 bytes
 * more than the plane, so that the 16 planes of a tile do not all fall in
 * one cache set (with c = 16 a plane is exactly 4 KiB) */
static size_t xstride(int c) { return (size_t)WT * c + 16; }

static void plan(const conv_desc *d, int m, wplan *p)
{
    p->m = m, p->al = m + 2, p->nx = p->al * p->al;
    p->th = (d->oh + m - 1) / m, p->tw = (d->ow + m - 1) / m;
    p->T = p->th * p->tw;
    p->hp = m * p->th + 2, p->wp = m * p->tw + 2;
    const int cmax = d->cin > d->cout ? d->cin : d->cout;
    p->np_in = up8((size_t)d->cin * p->hp * p->wp);
    p->np_out = up8((size_t)d->cout * p->hp * p->wp);
    p->nv = up8(p->nx * xstride(cmax));
    p->nu = up8((size_t)p->nx * d->cin * d->cout);
    /* a thread's slice (see slice) */
    p->per = 2 * p->np_in + p->np_out + 2 * p->nv + p->nu;
}

#ifdef WINO_X86
static int wino_have, wino_512;
static pthread_once_t wino_once = PTHREAD_ONCE_INIT;
static void wino_init(void)
{
    __builtin_cpu_init();
    wino_have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    /* the products in 16-wide registers where there are (the same sums in
     * the same order: the same results to the bit); RMINAS_WINO_AVX2=1
     * keeps the 8-wide ones, for comparisons */
    const char *e = getenv("RMINAS_WINO_AVX2");
    wino_512 = wino_have && __builtin_cpu_supports("avx512f") && !(e && *e && strcmp(e, "0"));
}
#endif

static int wino_cpu(void)
{
#ifdef WINO_X86
    pthread_once(&wino_once, wino_init);
    return wino_have;
#else
    return 0;
#endif
}

int cpu_wino_ok(const conv_desc *d)
{
    return d->kh == 3 && d->kw == 3 && d->stride == 1 && d->pad == 1 && d->dil == 1 &&
           d->groups == 1 && d->cin % 8 == 0 && d->cout % 8 == 0 && wino_cpu();
}

/* work: U (forward) and U flipped, nu floats each, then a slice of p->per
 * floats per thread:
 * packed x, packed dy (the forward's blocked output), V, M, dU, blocked dx */
static size_t work_size(const conv_desc *d, int m)
{
    wplan p;
    plan(d, m, &p);
    return 2 * p.nu + (size_t)cpu_max_threads() * p.per;
}

int cpu_wino_tile(const conv_desc *d)
{
    wplan p;
    plan(d, 4, &p);
    return p.T >= 16 ? 4 : 2;
}

/* the larger of the two tile sizes' needs, so that the table may switch
 * between winograd2 and winograd4 between planning and running */
size_t cpu_wino_work_size(const conv_desc *d)
{
    const size_t a = work_size(d, 2), b = work_size(d, 4);
    return a > b ? a : b;
}

typedef struct wslice {
    float *px, *pd, *v, *m, *du, *o;
} wslice;

static wslice slice(const wplan *p, float *work, int tid)
{
    wslice r;
    r.px = work + 2 * p->nu + (size_t)tid * p->per;
    r.pd = r.px + p->np_in;
    r.v = r.pd + p->np_out;
    r.m = r.v + p->nv;
    r.du = r.m + p->nv;
    r.o = r.du + p->nu;
    return r;
}

/* G of F(4x4, 3x3) (6 x 3; F(2x2, 3x3)'s is written out below) */
static const double G4[6][3] = {{0.25, 0., 0.},
                                {-1. / 6, -1. / 6, -1. / 6},
                                {-1. / 6, 1. / 6, -1. / 6},
                                {1. / 24, 1. / 12, 1. / 6},
                                {1. / 24, -1. / 12, 1. / 6},
                                {0., 0., 1.}};

/* dw[co][ci] += G^T dU[xi][ci][co] G, dU the sum in double of the nthr
 * threads' float dU (in thread order); input channels split over threads */
static void wgrad_out(const wplan *p, float *work, int nthr, int cin, int cout, float *dw)
{
    const float *part[nthr];
    for (int k = 0; k < nthr; k++)
        part[k] = slice(p, work, k).du;
#pragma omp parallel for schedule(static) num_threads(nthr)
    for (int ci = 0; ci < cin; ci++)
        for (int co = 0; co < cout; co++) {
            double m[6][6], t[3][6];
            for (int xi = 0; xi < p->nx; xi++) {
                const size_t i = ((size_t)xi * cin + ci) * cout + co;
                double sum = 0.;
                for (int k = 0; k < nthr; k++)
                    sum += part[k][i];
                m[xi / p->al][xi % p->al] = sum;
            }
            float *g = dw + ((size_t)co * cin + ci) * 9;
            if (p->m == 4) {
                for (int r = 0; r < 3; r++)
                    for (int q = 0; q < 6; q++) {
                        double v = 0.;
                        for (int k = 0; k < 6; k++)
                            v += G4[k][r] * m[k][q];
                        t[r][q] = v;
                    }
                for (int r = 0; r < 3; r++)
                    for (int c = 0; c < 3; c++) {
                        double v = 0.;
                        for (int q = 0; q < 6; q++)
                            v += t[r][q] * G4[q][c];
                        g[r * 3 + c] += (float)v;
                    }
                continue;
            }
            for (int q = 0; q < 4; q++) {
                t[0][q] = m[0][q] + 0.5 * (m[1][q] + m[2][q]);
                t[1][q] = 0.5 * (m[1][q] - m[2][q]);
                t[2][q] = 0.5 * (m[1][q] + m[2][q]) + m[3][q];
            }
            for (int r = 0; r < 3; r++) {
                g[r * 3 + 0] += (float)(t[r][0] + 0.5 * (t[r][1] + t[r][2]));
                g[r * 3 + 1] += (float)(0.5 * (t[r][1] - t[r][2]));
                g[r * 3 + 2] += (float)(0.5 * (t[r][1] + t[r][2]) + t[r][3]);
            }
        }
}

#ifdef WINO_X86
#pragma GCC push_options
#pragma GCC target("avx2,fma")

static inline void tr8(__m256 r[8])
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* U[xi][ci][co] = (G g G^T)[xi] of the kernel from input channel ci to output
 * channel co: g = w[co][ci] (forward) or, flipped, w[ci][co] rotated by 180
 * degrees (backward data: ci runs over the forward's outputs), 8 output
 * channels at a time. */
static void wtrans2(const float *w, int cin, int cout, int flip, float *U)
{
    const int ni = flip ? cout : cin, no = flip ? cin : cout;
    const __m256 h = _mm256_set1_ps(0.5f);
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) if (ni * no >= 1024)
    for (int ci = 0; ci < ni; ci++) /* no is a multiple of 8 */
        for (int co = 0; co < no; co += 8) {
            float g8[9][8];
            for (int l = 0; l < 8; l++) {
                const float *g = flip ? w + ((size_t)ci * cin + co + l) * 9
                                      : w + ((size_t)(co + l) * cin + ci) * 9;
                for (int q = 0; q < 9; q++)
                    g8[q][l] = g[flip ? 8 - q : q];
            }
            __m256 k[3][3], t[4][3];
            for (int r = 0; r < 3; r++)
                for (int s = 0; s < 3; s++)
                    k[r][s] = _mm256_loadu_ps(g8[r * 3 + s]);
            for (int s = 0; s < 3; s++) {
                t[0][s] = k[0][s];
                t[1][s] = _mm256_mul_ps(h, _mm256_add_ps(_mm256_add_ps(k[0][s], k[1][s]), k[2][s]));
                t[2][s] = _mm256_mul_ps(h, _mm256_add_ps(_mm256_sub_ps(k[0][s], k[1][s]), k[2][s]));
                t[3][s] = k[2][s];
            }
            for (int r = 0; r < 4; r++) {
                const __m256 u[4] = {
                    t[r][0],
                    _mm256_mul_ps(h, _mm256_add_ps(_mm256_add_ps(t[r][0], t[r][1]), t[r][2])),
                    _mm256_mul_ps(h, _mm256_add_ps(_mm256_sub_ps(t[r][0], t[r][1]), t[r][2])),
                    t[r][2]};
                for (int q = 0; q < 4; q++)
                    _mm256_storeu_ps(U + ((size_t)(r * 4 + q) * ni + ci) * no + co, u[q]);
            }
        }
}

/* The channel blocks of the packed and blocked layouts for c channels: 16
 * wide where the products run 16 wide (the input and output transforms then
 * do too) and c allows, else 8; F(4x4, 3x3)'s transforms are 8 wide only. */
static int cbw(const wplan *p, int c) { return p->m == 2 && wino_512 && c % 16 == 0 ? 16 : 8; }

/* Where 8-channel group g starts in a layout of bw-channel blocks whose
 * planes have `plane` positions: its block's planes, then its half. */
static size_t gofs(int g, int bw, size_t plane)
{
    return (size_t)(g / (bw / 8)) * plane * bw + (size_t)(g % (bw / 8)) * 8;
}

/* P[cb][1 + y][1 + x][l] = in[cb*bw + l][y][x] (max(.,0) under relu; bw =
 * cbw(c)), the border and the rows/columns past the image zero */
static void pack(const float *in, int c, int h, int w, int relu, const wplan *p, float *P)
{
    /* zero what the image does not cover: row 0, the rows past it, and
     * column 0 and the columns past it of the rows in between */
    const int bw = cbw(p, c);
    const size_t row = (size_t)p->wp * bw, plane = (size_t)p->hp * p->wp;
    for (int cb = 0; cb < c / bw; cb++) {
        float *q = P + (size_t)cb * p->hp * row;
        memset(q, 0, row * sizeof *q);
        memset(q + (size_t)(h + 1) * row, 0, (size_t)(p->hp - h - 1) * row * sizeof *q);
        for (int y = 1; y <= h; y++) {
            memset(q + y * row, 0, bw * sizeof *q);
            memset(q + y * row + (size_t)(w + 1) * bw, 0,
                   (size_t)(p->wp - w - 1) * bw * sizeof *q);
        }
    }
    const size_t hw = (size_t)h * w;
    const __m256 z = _mm256_setzero_ps();
    for (int g = 0; g < c / 8; g++) {
        const float *src = in + (size_t)g * 8 * hw;
        for (int y = 0; y < h; y++) {
            float *dst = P + gofs(g, bw, plane) + ((size_t)(y + 1) * p->wp + 1) * bw;
            int x = 0;
            for (; x + 8 <= w; x += 8) {
                __m256 r[8];
                for (int l = 0; l < 8; l++) {
                    r[l] = _mm256_loadu_ps(src + l * hw + (size_t)y * w + x);
                    if (relu)
                        r[l] = _mm256_max_ps(r[l], z);
                }
                tr8(r);
                for (int m = 0; m < 8; m++)
                    _mm256_storeu_ps(dst + (size_t)(x + m) * bw, r[m]);
            }
            for (; x < w; x++)
                for (int l = 0; l < 8; l++) {
                    float v = src[l * hw + (size_t)y * w + x];
                    dst[(size_t)x * bw + l] = relu && !(v > 0.f) ? 0.f : v;
                }
        }
    }
}

/* V[xi][t - t0][cb*8 ..] = B^T d B of tiles t0 .. t0+nt-1 of a packed plane
 * set with c channels in 8-channel blocks (the tile's first row and column
 * are the padding's); itrans16 for 16-channel blocks */
static void itrans8(const float *P, int c, const wplan *p, int t0, int nt, float *V)
{
    for (int cb = 0; cb < c / 8; cb++)
        for (int tt = 0; tt < nt; tt++) {
            const int i = (t0 + tt) / p->tw, j = (t0 + tt) % p->tw;
            const float *s = P + (((size_t)cb * p->hp + 2 * i) * p->wp + 2 * j) * 8;
            const size_t rs = (size_t)p->wp * 8;
            __m256 e[4][4];
            for (int q = 0; q < 4; q++) {
                __m256 d0 = _mm256_loadu_ps(s + q * 8), d1 = _mm256_loadu_ps(s + rs + q * 8);
                __m256 d2 = _mm256_loadu_ps(s + 2 * rs + q * 8);
                __m256 d3 = _mm256_loadu_ps(s + 3 * rs + q * 8);
                e[0][q] = _mm256_sub_ps(d0, d2);
                e[1][q] = _mm256_add_ps(d1, d2);
                e[2][q] = _mm256_sub_ps(d2, d1);
                e[3][q] = _mm256_sub_ps(d1, d3);
            }
            float *o = V + (size_t)tt * c + cb * 8;
            const size_t xs = xstride(c);
            for (int r = 0; r < 4; r++) {
                _mm256_storeu_ps(o + (r * 4 + 0) * xs, _mm256_sub_ps(e[r][0], e[r][2]));
                _mm256_storeu_ps(o + (r * 4 + 1) * xs, _mm256_add_ps(e[r][1], e[r][2]));
                _mm256_storeu_ps(o + (r * 4 + 2) * xs, _mm256_sub_ps(e[r][2], e[r][1]));
                _mm256_storeu_ps(o + (r * 4 + 3) * xs, _mm256_sub_ps(e[r][1], e[r][3]));
            }
        }
}

/* dM[xi][t - t0][kb*8 ..] = A dY A^T of the 2x2 output-gradient tiles, read
 * from a packed plane set (dy at offset 1, zero past the image; blocks of
 * cbw(c) channels) */
static void gtrans2(const float *P, int c, const wplan *p, int t0, int nt, float *G)
{
    const int bw = cbw(p, c);
    const size_t rs = (size_t)p->wp * bw, xs = xstride(c), plane = (size_t)p->hp * p->wp;
    for (int cb = 0; cb < c / 8; cb++)
        for (int tt = 0; tt < nt; tt++) {
            const int i = (t0 + tt) / p->tw, j = (t0 + tt) % p->tw;
            const float *s =
                P + gofs(cb, bw, plane) + (((size_t)2 * i + 1) * p->wp + 2 * j + 1) * bw;
            __m256 y00 = _mm256_loadu_ps(s), y01 = _mm256_loadu_ps(s + bw);
            __m256 y10 = _mm256_loadu_ps(s + rs), y11 = _mm256_loadu_ps(s + rs + bw);
            __m256 g[4][2];
            g[0][0] = y00, g[0][1] = y01;
            g[1][0] = _mm256_add_ps(y00, y10), g[1][1] = _mm256_add_ps(y01, y11);
            g[2][0] = _mm256_sub_ps(y00, y10), g[2][1] = _mm256_sub_ps(y01, y11);
            const __m256 z = _mm256_setzero_ps();
            g[3][0] = _mm256_sub_ps(z, y10), g[3][1] = _mm256_sub_ps(z, y11);
            float *o = G + (size_t)tt * c + cb * 8;
            for (int r = 0; r < 4; r++) {
                _mm256_storeu_ps(o + (r * 4 + 0) * xs, g[r][0]);
                _mm256_storeu_ps(o + (r * 4 + 1) * xs, _mm256_add_ps(g[r][0], g[r][1]));
                _mm256_storeu_ps(o + (r * 4 + 2) * xs, _mm256_sub_ps(g[r][0], g[r][1]));
                _mm256_storeu_ps(o + (r * 4 + 3) * xs, _mm256_sub_ps(z, g[r][1]));
            }
        }
}

/* C[r][k] (+)= sum_j A[r*ai + j*ar] * B[j*K + k] for rows r0 .. r0+R-1 and
 * columns k0 .. k0 + 8*NV - 1 (R, NV constants where it is inlined) */
static inline __attribute__((always_inline)) void kern(int R, int NV, int red, int K,
                                                       const float *A, size_t ai,
                                                       size_t ar, const float *B,
                                                       float *C, int acc)
{
    __m256 c[6][2];
#pragma GCC unroll 6
    for (int i = 0; i < R; i++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            c[i][v] = acc ? _mm256_loadu_ps(C + (size_t)i * K + v * 8) : _mm256_setzero_ps();
    for (int j = 0; j < red; j++) {
        __m256 b[2];
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            b[v] = _mm256_loadu_ps(B + (size_t)j * K + v * 8);
#pragma GCC unroll 6
        for (int i = 0; i < R; i++) {
            __m256 a = _mm256_broadcast_ss(A + i * ai + j * ar);
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++)
                c[i][v] = _mm256_fmadd_ps(a, b[v], c[i][v]);
        }
    }
#pragma GCC unroll 6
    for (int i = 0; i < R; i++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++)
            _mm256_storeu_ps(C + (size_t)i * K + v * 8, c[i][v]);
}

/* the rows past the last block of 6, R constant in each case */
#define KERN_TAIL(NV)                                                                   \
    switch (rows - r) {                                                                 \
    case 5: kern(5, NV, red, K, A + r * ai, ai, ar, b, c + (size_t)r * K, acc); break; \
    case 4: kern(4, NV, red, K, A + r * ai, ai, ar, b, c + (size_t)r * K, acc); break; \
    case 3: kern(3, NV, red, K, A + r * ai, ai, ar, b, c + (size_t)r * K, acc); break; \
    case 2: kern(2, NV, red, K, A + r * ai, ai, ar, b, c + (size_t)r * K, acc); break; \
    case 1: kern(1, NV, red, K, A + r * ai, ai, ar, b, c + (size_t)r * K, acc); break; \
    default: break;                                                                     \
    }

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")

/* kern with 16-wide registers: columns k0 .. k0 + 16*NV - 1; each element
 * the same chain of FMAs as kern's */
static inline __attribute__((always_inline)) void kern16(int R, int NV, int red, int K,
                                                         const float *A, size_t ai,
                                                         size_t ar, const float *B,
                                                         float *C, int acc)
{
    __m512 c[12][4];
#pragma GCC unroll 12
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            c[i][v] = acc ? _mm512_loadu_ps(C + (size_t)i * K + v * 16) : _mm512_setzero_ps();
    for (int j = 0; j < red; j++) {
        __m512 b[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            b[v] = _mm512_loadu_ps(B + (size_t)j * K + v * 16);
#pragma GCC unroll 12
        for (int i = 0; i < R; i++) {
            __m512 a = _mm512_set1_ps(A[i * ai + j * ar]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                c[i][v] = _mm512_fmadd_ps(a, b[v], c[i][v]);
        }
    }
#pragma GCC unroll 12
    for (int i = 0; i < R; i++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            _mm512_storeu_ps(C + (size_t)i * K + v * 16, c[i][v]);
}

/* all rows of one column block: blocks of RB rows, then the rest with its
 * count a constant in each case */
#define K16(R, NV) kern16(R, NV, red, K, A + r * ai, ai, ar, b, c + (size_t)r * K, acc)
#define K16_ROWS(RB, NV)                        \
    for (; r + RB <= rows; r += RB)             \
        K16(RB, NV);                            \
    switch (rows - r) {                         \
    case 11: K16(11, NV); break;                \
    case 10: K16(10, NV); break;                \
    case 9: K16(9, NV); break;                  \
    case 8: K16(8, NV); break;                  \
    case 7: K16(7, NV); break;                  \
    case 6: K16(6, NV); break;                  \
    case 5: K16(5, NV); break;                  \
    case 4: K16(4, NV); break;                  \
    case 3: K16(3, NV); break;                  \
    case 2: K16(2, NV); break;                  \
    case 1: K16(1, NV); break;                  \
    default: break;                             \
    }

static void gemm16(int rows, int red, int K, const float *A, size_t ai, size_t ar,
                   const float *B, float *C, int acc)
{
    int k0 = 0;
    for (; k0 + 64 <= K; k0 += 64) {
        const float *b = B + k0;
        float *c = C + k0;
        int r = 0;
        K16_ROWS(6, 4)
    }
    if (k0 + 32 <= K) {
        const float *b = B + k0;
        float *c = C + k0;
        int r = 0;
        K16_ROWS(12, 2)
        k0 += 32;
    }
    if (k0 + 16 <= K) {
        const float *b = B + k0;
        float *c = C + k0;
        int r = 0;
        K16_ROWS(12, 1)
        k0 += 16;
    }
    if (k0 < K) { /* 8 columns */
        const float *b = B + k0;
        float *c = C + k0;
        int r = 0;
        for (; r + 6 <= rows; r += 6)
            kern(6, 1, red, K, A + r * ai, ai, ar, b, c + (size_t)r * K, acc);
        KERN_TAIL(1)
    }
}
#undef K16_ROWS
#undef K16

/* itrans8 over 16-channel blocks: each lane the same operations */
static void itrans16(const float *P, int c, const wplan *p, int t0, int nt, float *V)
{
    const size_t rs = (size_t)p->wp * 16, xs = xstride(c);
    for (int cb = 0; cb < c / 16; cb++)
        for (int tt = 0; tt < nt; tt++) {
            const int i = (t0 + tt) / p->tw, j = (t0 + tt) % p->tw;
            const float *s = P + (((size_t)cb * p->hp + 2 * i) * p->wp + 2 * j) * 16;
            __m512 e[4][4];
            for (int q = 0; q < 4; q++) {
                __m512 d0 = _mm512_loadu_ps(s + q * 16), d1 = _mm512_loadu_ps(s + rs + q * 16);
                __m512 d2 = _mm512_loadu_ps(s + 2 * rs + q * 16);
                __m512 d3 = _mm512_loadu_ps(s + 3 * rs + q * 16);
                e[0][q] = _mm512_sub_ps(d0, d2);
                e[1][q] = _mm512_add_ps(d1, d2);
                e[2][q] = _mm512_sub_ps(d2, d1);
                e[3][q] = _mm512_sub_ps(d1, d3);
            }
            float *o = V + (size_t)tt * c + cb * 16;
            for (int r = 0; r < 4; r++) {
                _mm512_storeu_ps(o + (r * 4 + 0) * xs, _mm512_sub_ps(e[r][0], e[r][2]));
                _mm512_storeu_ps(o + (r * 4 + 1) * xs, _mm512_add_ps(e[r][1], e[r][2]));
                _mm512_storeu_ps(o + (r * 4 + 2) * xs, _mm512_sub_ps(e[r][2], e[r][1]));
                _mm512_storeu_ps(o + (r * 4 + 3) * xs, _mm512_sub_ps(e[r][1], e[r][3]));
            }
        }
}

/* otrans8 into 16-channel blocks of O: each lane the same operations */
static void otrans16(const wplan *p, int t0, int nt, int cout, const float *M,
                     const float *bias, const float *mask, float *O)
{
    const __m512 z = _mm512_setzero_ps();
    const size_t xs_out = xstride(cout);
    const int oh2 = 2 * p->th, ow2 = 2 * p->tw;
    for (int kb = 0; kb < cout / 16; kb++) {
        const __m512 bv = bias ? _mm512_loadu_ps(bias + kb * 16) : _mm512_setzero_ps();
        for (int tt = 0; tt < nt; tt++) {
            const int i = (t0 + tt) / p->tw, j = (t0 + tt) % p->tw;
            const float *m = M + (size_t)tt * cout + kb * 16;
            __m512 f[2][4];
            for (int q = 0; q < 4; q++) {
                __m512 m0 = _mm512_loadu_ps(m + (0 * 4 + q) * xs_out);
                __m512 m1 = _mm512_loadu_ps(m + (1 * 4 + q) * xs_out);
                __m512 m2 = _mm512_loadu_ps(m + (2 * 4 + q) * xs_out);
                __m512 m3 = _mm512_loadu_ps(m + (3 * 4 + q) * xs_out);
                f[0][q] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                f[1][q] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
            }
            float *o = O + (((size_t)kb * oh2 + 2 * i) * ow2 + 2 * j) * 16;
            for (int a = 0; a < 2; a++) {
                __m512 y0 = _mm512_add_ps(_mm512_add_ps(f[a][0], f[a][1]), f[a][2]);
                __m512 y1 = _mm512_sub_ps(_mm512_sub_ps(f[a][1], f[a][2]), f[a][3]);
                y0 = _mm512_add_ps(y0, bv), y1 = _mm512_add_ps(y1, bv);
                if (mask) {
                    const float *mk =
                        mask + (((size_t)kb * p->hp + 2 * i + a + 1) * p->wp + 2 * j + 1) * 16;
                    y0 = _mm512_maskz_mov_ps(
                        _mm512_cmp_ps_mask(_mm512_loadu_ps(mk), z, _CMP_GT_OQ), y0);
                    y1 = _mm512_maskz_mov_ps(
                        _mm512_cmp_ps_mask(_mm512_loadu_ps(mk + 16), z, _CMP_GT_OQ), y1);
                }
                _mm512_storeu_ps(o + (size_t)a * ow2 * 16, y0);
                _mm512_storeu_ps(o + (size_t)a * ow2 * 16 + 16, y1);
            }
        }
    }
}
#pragma GCC pop_options

/* ---- F(4x4, 3x3): 6x6 input tiles, 36 positions, 4x4 outputs, 8-channel
 * blocks (B, G, A as in Lavin & Gray's paper; U in double, then float) ---- */

/* U[xi][ci][co] = (G g G^T)[xi] as wtrans2, with F(4x4, 3x3)'s G */
static void wtrans4(const float *w, int cin, int cout, int flip, float *U)
{
    const int ni = flip ? cout : cin, no = flip ? cin : cout;
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) if (ni * no >= 1024)
    for (int ci = 0; ci < ni; ci++)
        for (int co = 0; co < no; co++) {
            const float *g =
                flip ? w + ((size_t)ci * cin + co) * 9 : w + ((size_t)co * cin + ci) * 9;
            double k[9], t[6][3];
            for (int q = 0; q < 9; q++)
                k[q] = g[flip ? 8 - q : q];
            for (int r = 0; r < 6; r++)
                for (int s = 0; s < 3; s++)
                    t[r][s] = G4[r][0] * k[s] + G4[r][1] * k[3 + s] + G4[r][2] * k[6 + s];
            for (int r = 0; r < 6; r++)
                for (int q = 0; q < 6; q++)
                    U[((size_t)(r * 6 + q) * ni + ci) * no + co] =
                        (float)(t[r][0] * G4[q][0] + t[r][1] * G4[q][1] + t[r][2] * G4[q][2]);
        }
}

/* r = B^T d of one line of 6 (the values by value: arrays handed to these
 * helpers were copied through the stack in halves, which stalled the loads) */
static inline __attribute__((always_inline)) void bt6(__m256 d0, __m256 d1, __m256 d2,
                                                      __m256 d3, __m256 d4, __m256 d5,
                                                      __m256 r[6])
{
    const __m256 f4 = _mm256_set1_ps(4.f), f5 = _mm256_set1_ps(5.f), f2 = _mm256_set1_ps(2.f);
    const __m256 a = _mm256_fnmadd_ps(f4, d2, d4), b = _mm256_fnmadd_ps(f4, d1, d3);
    const __m256 c = _mm256_sub_ps(d4, d2), e = _mm256_mul_ps(f2, _mm256_sub_ps(d3, d1));
    r[0] = _mm256_fmadd_ps(f4, d0, _mm256_fnmadd_ps(f5, d2, d4));
    r[1] = _mm256_add_ps(a, b);
    r[2] = _mm256_sub_ps(a, b);
    r[3] = _mm256_add_ps(c, e);
    r[4] = _mm256_sub_ps(c, e);
    r[5] = _mm256_fmadd_ps(f4, d1, _mm256_fnmadd_ps(f5, d3, d5));
}

/* y = A^T m of one line of 6 (4 values) */
static inline __attribute__((always_inline)) void at6(__m256 m0, __m256 m1, __m256 m2,
                                                      __m256 m3, __m256 m4, __m256 m5,
                                                      __m256 y[4])
{
    const __m256 f2 = _mm256_set1_ps(2.f), f4 = _mm256_set1_ps(4.f), f8 = _mm256_set1_ps(8.f);
    const __m256 a = _mm256_sub_ps(m1, m2), b = _mm256_sub_ps(m3, m4);
    const __m256 c = _mm256_add_ps(m1, m2), d = _mm256_add_ps(m3, m4);
    y[0] = _mm256_add_ps(_mm256_add_ps(m0, c), d);
    y[1] = _mm256_fmadd_ps(f2, b, a);
    y[2] = _mm256_fmadd_ps(f4, d, c);
    y[3] = _mm256_add_ps(_mm256_fmadd_ps(f8, b, a), m5);
}

/* g = A y of one line of 4 (6 values) */
static inline __attribute__((always_inline)) void a6(__m256 y0, __m256 y1, __m256 y2,
                                                     __m256 y3, __m256 g[6])
{
    const __m256 f2 = _mm256_set1_ps(2.f), f4 = _mm256_set1_ps(4.f), f8 = _mm256_set1_ps(8.f);
    const __m256 e = _mm256_add_ps(y0, y2), o = _mm256_add_ps(y1, y3);
    const __m256 e4 = _mm256_fmadd_ps(f4, y2, y0);
    const __m256 o8 = _mm256_fmadd_ps(f8, y3, _mm256_mul_ps(f2, y1));
    g[0] = y0;
    g[1] = _mm256_add_ps(e, o);
    g[2] = _mm256_sub_ps(e, o);
    g[3] = _mm256_add_ps(e4, o8);
    g[4] = _mm256_sub_ps(e4, o8);
    g[5] = y3;
}

/* V[xi][t - t0][cb*8 ..] = B^T d B of the 6x6 tiles (as itrans8): down each
 * column into h, then along each row of h */
static void itrans4(const float *P, int c, const wplan *p, int t0, int nt, float *V)
{
    const size_t rs = (size_t)p->wp * 8, xs = xstride(c);
    for (int cb = 0; cb < c / 8; cb++)
        for (int tt = 0; tt < nt; tt++) {
            const int i = (t0 + tt) / p->tw, j = (t0 + tt) % p->tw;
            const float *s = P + (((size_t)cb * p->hp + 4 * i) * p->wp + 4 * j) * 8;
            __m256 h[6][6], e[6];
            for (int q = 0; q < 6; q++) {
                const float *sq = s + q * 8;
                bt6(_mm256_loadu_ps(sq), _mm256_loadu_ps(sq + rs), _mm256_loadu_ps(sq + 2 * rs),
                    _mm256_loadu_ps(sq + 3 * rs), _mm256_loadu_ps(sq + 4 * rs),
                    _mm256_loadu_ps(sq + 5 * rs), e);
                for (int r = 0; r < 6; r++)
                    h[r][q] = e[r];
            }
            float *o = V + (size_t)tt * c + cb * 8;
            for (int r = 0; r < 6; r++) {
                bt6(h[r][0], h[r][1], h[r][2], h[r][3], h[r][4], h[r][5], e);
                for (int q = 0; q < 6; q++)
                    _mm256_storeu_ps(o + (r * 6 + q) * xs, e[q]);
            }
        }
}

/* dM[xi][t - t0][kb*8 ..] = A dY A^T of the 4x4 output-gradient tiles (as
 * gtrans2): down each column into h, then along each row of h */
static void gtrans4(const float *P, int c, const wplan *p, int t0, int nt, float *G)
{
    const size_t rs = (size_t)p->wp * 8, xs = xstride(c);
    for (int cb = 0; cb < c / 8; cb++)
        for (int tt = 0; tt < nt; tt++) {
            const int i = (t0 + tt) / p->tw, j = (t0 + tt) % p->tw;
            const float *s = P + (((size_t)cb * p->hp + 4 * i + 1) * p->wp + 4 * j + 1) * 8;
            __m256 h[6][4], g[6];
            for (int q = 0; q < 4; q++) {
                const float *sq = s + q * 8;
                a6(_mm256_loadu_ps(sq), _mm256_loadu_ps(sq + rs), _mm256_loadu_ps(sq + 2 * rs),
                   _mm256_loadu_ps(sq + 3 * rs), g);
                for (int r = 0; r < 6; r++)
                    h[r][q] = g[r];
            }
            float *o = G + (size_t)tt * c + cb * 8;
            for (int r = 0; r < 6; r++) {
                a6(h[r][0], h[r][1], h[r][2], h[r][3], g);
                for (int q = 0; q < 6; q++)
                    _mm256_storeu_ps(o + (r * 6 + q) * xs, g[q]);
            }
        }
}

/* A^T M A of tiles t0 .. t0+nt-1 (4x4 outputs each), as otrans8 */
static void otrans4(const wplan *p, int t0, int nt, int cout, const float *M,
                    const float *bias, const float *mask, float *O)
{
    const __m256 z = _mm256_setzero_ps();
    const size_t xs = xstride(cout);
    const int oh4 = 4 * p->th, ow4 = 4 * p->tw;
    for (int kb = 0; kb < cout / 8; kb++) {
        const __m256 bv = bias ? _mm256_loadu_ps(bias + kb * 8) : _mm256_setzero_ps();
        for (int tt = 0; tt < nt; tt++) {
            const int i = (t0 + tt) / p->tw, j = (t0 + tt) % p->tw;
            const float *m = M + (size_t)tt * cout + kb * 8;
            __m256 f[4][6], y[4]; /* f[a][q]: column q, transformed down it */
            for (int q = 0; q < 6; q++) {
                const float *mq = m + q * xs;
                at6(_mm256_loadu_ps(mq), _mm256_loadu_ps(mq + 6 * xs),
                    _mm256_loadu_ps(mq + 12 * xs), _mm256_loadu_ps(mq + 18 * xs),
                    _mm256_loadu_ps(mq + 24 * xs), _mm256_loadu_ps(mq + 30 * xs), y);
                for (int a = 0; a < 4; a++)
                    f[a][q] = y[a];
            }
            float *o = O + (((size_t)kb * oh4 + 4 * i) * ow4 + 4 * j) * 8;
            for (int a = 0; a < 4; a++) {
                at6(f[a][0], f[a][1], f[a][2], f[a][3], f[a][4], f[a][5], y);
                for (int b = 0; b < 4; b++) {
                    __m256 v = _mm256_add_ps(y[b], bv);
                    if (mask) {
                        const float *mk = mask + (((size_t)kb * p->hp + 4 * i + a + 1) * p->wp +
                                                  4 * j + 1 + b) * 8;
                        v = _mm256_and_ps(v, _mm256_cmp_ps(_mm256_loadu_ps(mk), z, _CMP_GT_OQ));
                    }
                    _mm256_storeu_ps(o + ((size_t)a * ow4 + b) * 8, v);
                }
            }
        }
    }
}

/* The transforms of the plan's tile size (and channel blocks) */
static void wtrans(const wplan *p, const float *w, int cin, int cout, int flip, float *U)
{
    (p->m == 4 ? wtrans4 : wtrans2)(w, cin, cout, flip, U);
}

static void gtrans(const float *P, int c, const wplan *p, int t0, int nt, float *G)
{
    (p->m == 4 ? gtrans4 : gtrans2)(P, c, p, t0, nt, G);
}

static void itrans(const float *P, int c, const wplan *p, int t0, int nt, float *V)
{
    if (p->m == 4)
        itrans4(P, c, p, t0, nt, V);
    else if (cbw(p, c) == 16)
        itrans16(P, c, p, t0, nt, V);
    else
        itrans8(P, c, p, t0, nt, V);
}

static void gemm(int rows, int red, int K, const float *A, size_t ai, size_t ar,
                 const float *B, float *C, int acc)
{
    if (wino_512) {
        gemm16(rows, red, K, A, ai, ar, B, C, acc);
        return;
    }
    for (int k0 = 0; k0 < K; k0 += 16) {
        const float *b = B + k0;
        float *c = C + k0;
        int r = 0;
        if (K - k0 >= 16) {
            for (; r + 6 <= rows; r += 6)
                kern(6, 2, red, K, A + r * ai, ai, ar, b, c + (size_t)r * K, acc);
            KERN_TAIL(2)
        } else {
            for (; r + 6 <= rows; r += 6)
                kern(6, 1, red, K, A + r * ai, ai, ar, b, c + (size_t)r * K, acc);
            KERN_TAIL(1)
        }
    }
}

/* A^T M A of tiles t0 .. t0+nt-1 (2x2 outputs each), bias added, zero
 * where mask (packed, when given) is not > 0, into 8-channel blocks of the
 * blocked output O; otrans16 for 16-channel blocks */
static void otrans8(const wplan *p, int t0, int nt, int cout, const float *M,
                    const float *bias, const float *mask, float *O)
{
    const __m256 z = _mm256_setzero_ps();
    const size_t xs_out = xstride(cout);
    const int oh2 = 2 * p->th, ow2 = 2 * p->tw;
    for (int kb = 0; kb < cout / 8; kb++) {
        const __m256 bv = bias ? _mm256_loadu_ps(bias + kb * 8) : _mm256_setzero_ps();
        for (int tt = 0; tt < nt; tt++) {
            const int i = (t0 + tt) / p->tw, j = (t0 + tt) % p->tw;
            const float *m = M + (size_t)tt * cout + kb * 8;
            __m256 f[2][4];
            for (int q = 0; q < 4; q++) {
                __m256 m0 = _mm256_loadu_ps(m + (0 * 4 + q) * xs_out);
                __m256 m1 = _mm256_loadu_ps(m + (1 * 4 + q) * xs_out);
                __m256 m2 = _mm256_loadu_ps(m + (2 * 4 + q) * xs_out);
                __m256 m3 = _mm256_loadu_ps(m + (3 * 4 + q) * xs_out);
                f[0][q] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
                f[1][q] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
            }
            float *o = O + (((size_t)kb * oh2 + 2 * i) * ow2 + 2 * j) * 8;
            for (int a = 0; a < 2; a++) {
                __m256 y0 = _mm256_add_ps(_mm256_add_ps(f[a][0], f[a][1]), f[a][2]);
                __m256 y1 = _mm256_sub_ps(_mm256_sub_ps(f[a][1], f[a][2]), f[a][3]);
                y0 = _mm256_add_ps(y0, bv), y1 = _mm256_add_ps(y1, bv);
                if (mask) {
                    const float *mk =
                        mask + (((size_t)kb * p->hp + 2 * i + a + 1) * p->wp + 2 * j + 1) * 8;
                    y0 = _mm256_and_ps(y0, _mm256_cmp_ps(_mm256_loadu_ps(mk), z, _CMP_GT_OQ));
                    y1 = _mm256_and_ps(y1,
                                       _mm256_cmp_ps(_mm256_loadu_ps(mk + 8), z, _CMP_GT_OQ));
                }
                _mm256_storeu_ps(o + (size_t)a * ow2 * 8, y0);
                _mm256_storeu_ps(o + (size_t)a * ow2 * 8 + 8, y1);
            }
        }
    }
}

static void otrans(const wplan *p, int t0, int nt, int cout, const float *M,
                   const float *bias, const float *mask, float *O)
{
    if (p->m == 4)
        otrans4(p, t0, nt, cout, M, bias, mask, O);
    else if (cbw(p, cout) == 16)
        otrans16(p, t0, nt, cout, M, bias, mask, O);
    else
        otrans8(p, t0, nt, cout, M, bias, mask, O);
}

/* out (+)= the convolution of one sample's cin packed planes P by U (cout
 * outputs), bias added, zero where the packed planes mask are not > 0 when
 * mask is given (the backward data under relu_in: mask is relu(x) packed,
 * cached where x itself would be read from memory again). O: blocked
 * output scratch. */
static void conv_sample(const wplan *p, const float *P, int cin, int cout, int oh, int ow,
                        const float *U, const float *bias, float *out, int acc,
                        const float *mask, float *V, float *M, float *O)
{
    const size_t xs_in = xstride(cin), xs_out = xstride(cout);
    const int oh2 = p->m * p->th, ow2 = p->m * p->tw, bw = cbw(p, cout);
    for (int t0 = 0; t0 < p->T; t0 += WT) {
        const int nt = p->T - t0 < WT ? p->T - t0 : WT;
        itrans(P, cin, p, t0, nt, V);
        for (int xi = 0; xi < p->nx; xi++)
            gemm(nt, cin, cout, V + xi * xs_in, cin, 1, U + (size_t)xi * cin * cout,
                 M + xi * xs_out, 0);
        otrans(p, t0, nt, cout, M, bias, mask, O);
    }
    /* blocked -> NCHW */
    const size_t hw = (size_t)oh * ow, oplane = (size_t)oh2 * ow2;
    for (int kb = 0; kb < cout / 8; kb++)
        for (int y = 0; y < oh; y++) {
            const float *src = O + gofs(kb, bw, oplane) + (size_t)y * ow2 * bw;
            float *dst = out + (size_t)kb * 8 * hw + (size_t)y * ow;
            int x = 0;
            for (; x + 8 <= ow; x += 8) {
                __m256 r[8];
                for (int m = 0; m < 8; m++)
                    r[m] = _mm256_loadu_ps(src + (size_t)(x + m) * bw);
                tr8(r);
                for (int l = 0; l < 8; l++) {
                    float *dp = dst + l * hw + x;
                    __m256 v = r[l];
                    if (acc)
                        v = _mm256_add_ps(_mm256_loadu_ps(dp), v);
                    _mm256_storeu_ps(dp, v);
                }
            }
            for (; x < ow; x++)
                for (int l = 0; l < 8; l++) {
                    float v = src[(size_t)x * bw + l];
                    dst[l * hw + x] = acc ? dst[l * hw + x] + v : v;
                }
        }
}

static int nthreads(const conv_desc *d)
{
    int t = cpu_threads();
    return t < d->n ? t : d->n;
}

void cpu_wino_conv2d_forward(const conv_desc *d, int m, const float *x, const float *w,
                             const float *b, float *y, int acc, float *work)
{
    wplan p;
    plan(d, m, &p);
    float *U = work;
    wtrans(&p, w, d->cin, d->cout, 0, U);
    const size_t nxs = (size_t)d->cin * d->h * d->w, nys = (size_t)d->cout * d->oh * d->ow;
    const int nthr = nthreads(d);
#pragma omp parallel for num_threads(nthr) schedule(static)
    for (int n = 0; n < d->n; n++) {
        const wslice t = slice(&p, work, omp_get_thread_num());
        pack(x + n * nxs, d->cin, d->h, d->w, d->relu_in, &p, t.px);
        conv_sample(&p, t.px, d->cin, d->cout, d->oh, d->ow, U, b, y + n * nys, acc, NULL, t.v,
                    t.m, t.pd);
    }
}

void cpu_wino_conv2d_backward(const conv_desc *d, int m, const float *x, const float *w,
                              const float *dy, float *dx, float *dw, float *db, float *work)
{
    wplan p;
    plan(d, m, &p);
    const int cin = d->cin, cout = d->cout;
    const size_t nxs = (size_t)cin * d->h * d->w, nys = (size_t)cout * d->oh * d->ow;
    if (db)
        cpu_conv_bias_grad(d, dy, db);
    if (!dx && !dw)
        return;
    float *Uf = work + p.nu;
    if (dx)
        wtrans(&p, w, cin, cout, 1, Uf);
    const int nthr = nthreads(d);
#pragma omp parallel num_threads(nthr)
    {
        const wslice t = slice(&p, work, omp_get_thread_num());
        if (dw)
            memset(t.du, 0, (size_t)p.nx * cin * cout * sizeof *t.du);
#pragma omp for schedule(static)
        for (int n = 0; n < d->n; n++) {
            pack(dy + n * nys, cout, d->oh, d->ow, 0, &p, t.pd);
            if (dw || d->relu_in)
                pack(x + n * nxs, cin, d->h, d->w, d->relu_in, &p, t.px);
            if (dw) {
                for (int t0 = 0; t0 < p.T; t0 += WT) {
                    const int nt = p.T - t0 < WT ? p.T - t0 : WT;
                    itrans(t.px, cin, &p, t0, nt, t.v);
                    gtrans(t.pd, cout, &p, t0, nt, t.m);
                    for (int xi = 0; xi < p.nx; xi++)
                        gemm(cin, nt, cout, t.v + xi * xstride(cin), 1, cin,
                             t.m + xi * xstride(cout), t.du + (size_t)xi * cin * cout, 1);
                }
            }
            if (dx)
                conv_sample(&p, t.pd, cout, cin, d->h, d->w, Uf, NULL, dx + n * nxs, 1,
                            d->relu_in ? t.px : NULL, t.v, t.m, t.o);
        }
    }
    if (dw)
        wgrad_out(&p, work, nthr, cin, cout, dw);
}

#pragma GCC pop_options
#else
void cpu_wino_conv2d_forward(const conv_desc *d, int m, const float *x, const float *w,
                             const float *b, float *y, int acc, float *work)
{
    (void)d, (void)m, (void)x, (void)w, (void)b, (void)y, (void)acc, (void)work;
}

void cpu_wino_conv2d_backward(const conv_desc *d, int m, const float *x, const float *w,
                              const float *dy, float *dx, float *dw, float *db, float *work)
{
    (void)d, (void)m, (void)x, (void)w, (void)dy, (void)dx, (void)dw, (void)db, (void)work;
}
#endif
