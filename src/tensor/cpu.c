/* The CPU backend: host memory, OpenMP threads, single-threaded OpenBLAS
 * inside them. This file holds the table, threads, memory, elementwise ops,
 * the small layers, the loss and the optimizer; convolution, batch norm and
 * pooling live in cpu_conv.c, cpu_bn.c and cpu_pool.c. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "tensor/cpu_ops.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util/err.h"

/* ---- threads ---- */

static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static int cpu_nthreads, cpu_nmax;

/* the convolution implementation (backend_cpu_set_conv) */
enum { CONV_IM2COL, CONV_DNNL, CONV_WINOGRAD, CONV_WINO2, CONV_WINO4, CONV_N };
static int cpu_conv_impl;
static const char *const conv_names[CONV_N] = {"im2col", "dnnl", "winograd", "winograd2",
                                               "winograd4"};

/* the implementation of that name, or -1 */
static int conv_by_name(const char *name)
{
    for (int i = 0; name && i < CONV_N; i++)
        if (!strcmp(name, conv_names[i]))
            return i;
    return -1;
}

/* Parallelism comes from OpenMP over samples, channels or planes; a
 * multi-threaded BLAS inside those threads would oversubscribe the cores. */
static void cpu_init(void)
{
    openblas_set_num_threads(1);
    cpu_nthreads = cpu_nmax = omp_get_max_threads();
#ifdef HAVE_DNNL
    /* our Winograd F(2x2, 3x3) for the shapes it takes and oneDNN's direct
     * convolutions for the others by default; RMINAS_CONV=im2col|dnnl|
     * winograd|winograd2|winograd4 chooses at first use */
    const int impl = conv_by_name(getenv("RMINAS_CONV"));
    cpu_conv_impl = impl >= 0 ? impl : CONV_WINO2;
    cpu_dnnl_conv_set_winograd(cpu_conv_impl == CONV_WINOGRAD);
#else
    cpu_conv_impl = CONV_IM2COL;
#endif
}

int cpu_max_threads(void)
{
    pthread_once(&cpu_once, cpu_init);
    return cpu_nmax;
}

int cpu_threads(void)
{
    pthread_once(&cpu_once, cpu_init);
    return cpu_nthreads;
}

/* 0 means every core OpenMP offers (OMP_NUM_THREADS if set), which is also
 * the most: scratch buffers planned earlier are sized for that many. */
void backend_cpu_set_threads(int n)
{
    pthread_once(&cpu_once, cpu_init);
    cpu_nthreads = n > 0 && n < cpu_nmax ? n : cpu_nmax;
    /* for code that takes the count from OpenMP itself: oneDNN's primitives
     * (the calling thread's setting; cpu_conv_dnnl.c also sets it) */
    omp_set_num_threads(cpu_nthreads);
}

int backend_cpu_threads(void)
{
    return cpu_threads();
}

/* ---- convolution: oneDNN or im2col + sgemm ---- */

int backend_cpu_set_conv(const char *impl)
{
    pthread_once(&cpu_once, cpu_init);
    const int i = conv_by_name(impl);
    if (i < 0)
        return rm_error("unknown convolution '%s' (dnnl, winograd, winograd2, winograd4 or "
                        "im2col)", impl ? impl : "(null)");
#ifdef HAVE_DNNL
    cpu_conv_impl = i;
    cpu_dnnl_conv_set_winograd(cpu_conv_impl == CONV_WINOGRAD);
    return 0;
#else
    if (i != CONV_IM2COL)
        return rm_error("this rminas was built without oneDNN (install libdnnl-dev, "
                        "configure --with-dnnl)");
    cpu_conv_impl = i;
    return 0;
#endif
}

const char *backend_cpu_conv(void)
{
    pthread_once(&cpu_once, cpu_init);
    return conv_names[cpu_conv_impl];
}

#ifdef HAVE_DNNL
/* Shapes where oneDNN is the faster (tests/bench/bench_conv, batch 32, 1
 * and 2 threads): every 3x3 (1.4-3x: plain, stride 2, the 3-channel stem,
 * depthwise) and the teacher's batch of 512 (1.4x). Not 1x1 convolutions:
 * cheap enough that oneDNN's reorders to and from its blocked layout (and
 * the separate ReLU pass) cost as much as the convolution; im2col measured
 * as fast at 1 thread (1.8 ms forward + backward, relu_in, 16 channels
 * 32x32) and twice as fast at 2 (1.8 vs 3.6 ms), so 1x1 stays on im2col. */
static int dnnl_wins(const conv_desc *d)
{
    return !(d->kh == 1 && d->kw == 1);
}

/* The backward too, except depthwise convolutions wider than 3x3 or
 * dilated: oneDNN's backward of those takes 2-20x its forward (bench_conv,
 * 2 threads: 96 channels at 32x32, 5x5, 71 ms forward + backward against
 * 7.5 ms with cpu_dw.c's backward; DARTS's dil_conv_3x3 at batch 128, 29 vs
 * 2.8 ms; its sep_conv_5x5 at stride 2, 8.2 vs 3.9 ms), where its forward
 * is as fast as ours or faster (0.5 against 2.1 ms at 8x8, 7x7, 384
 * channels). Depthwise 3x3 stays on oneDNN both ways (1.0 against 1.2 ms at
 * 16x16, 96 channels; 3.2 against 4.5 at stride 2). */
static int dnnl_wins_backward(const conv_desc *d)
{
    return dnnl_wins(d) && !(cpu_dwp_ok(d) && (d->kh > 3 || d->kw > 3 || d->dil > 1));
}
#endif

int cpu_conv_uses_dnnl(const conv_desc *d)
{
#ifdef HAVE_DNNL
    pthread_once(&cpu_once, cpu_init);
    return cpu_conv_impl != CONV_IM2COL && dnnl_wins(d);
#else
    (void)d;
    return 0;
#endif
}

int cpu_conv_uses_dnnl_backward(const conv_desc *d)
{
#ifdef HAVE_DNNL
    return cpu_conv_uses_dnnl(d) && dnnl_wins_backward(d);
#else
    (void)d;
    return 0;
#endif
}

/* Scratch for whichever implementation runs d: the oneDNN size (which
 * covers im2col) wherever oneDNN may, so backend_cpu_set_conv can switch
 * between planning and running. */
static size_t cpu_conv_work(const conv_desc *d)
{
#ifdef HAVE_DNNL
    if (dnnl_wins(d)) {
        size_t n = cpu_dnnl_conv_work_size(d);
        if (cpu_wino_ok(d)) {
            size_t m = cpu_wino_work_size(d);
            n = m > n ? m : n;
        }
        return n;
    }
#endif
    return cpu_conv_work_size(d);
}

/* Whether the table runs d on our own Winograd F(m x m, 3x3): m (2 or 4),
 * or 0. winograd4 keeps F(2x2, 3x3) for small images (cpu_wino_tile): at
 * 8x8 and 64 channels F(4x4, 3x3)'s forward + backward measured 1.3x
 * slower, at 16 channels 32x32 and 32 channels 16x16 1.3x faster (1
 * thread, batch 32, 2-core Zen 3; doc/benchmarks.md, session 27). */
int cpu_conv_uses_wino(const conv_desc *d)
{
#ifdef HAVE_DNNL
    pthread_once(&cpu_once, cpu_init);
    if (!cpu_wino_ok(d))
        return 0;
    if (cpu_conv_impl == CONV_WINO4)
        return cpu_wino_tile(d);
    return cpu_conv_impl == CONV_WINO2 ? 2 : 0;
#else
    (void)d;
    return 0;
#endif
}

static void cpu_conv_forward(const conv_desc *d, const float *x, const float *w,
                             const float *b, float *y, int acc, float *work)
{
#ifdef HAVE_DNNL
    const int wm = cpu_conv_uses_wino(d);
    if (wm) {
        cpu_wino_conv2d_forward(d, wm, x, w, b, y, acc, work);
        return;
    }
    if (cpu_conv_uses_dnnl(d)) {
        cpu_dnnl_conv2d_forward(d, x, w, b, y, acc, work);
        return;
    }
#endif
    cpu_conv2d_forward(d, x, w, b, y, acc, work);
}

static void cpu_zero(float *x, size_t n);

/* dx_acc == 0: dx zeroed here, then accumulated into as always (every CPU
 * path accumulates; only the GPU gains from overwriting) */
static void cpu_conv_backward(const conv_desc *d, const float *x, const float *w,
                              const float *dy, float *dx, float *dw, float *db,
                              float *work, int dx_acc)
{
    if (dx && !dx_acc)
        cpu_zero(dx, (size_t)d->n * d->cin * d->h * d->w);
#ifdef HAVE_DNNL
    const int wm = cpu_conv_uses_wino(d);
    if (wm) {
        cpu_wino_conv2d_backward(d, wm, x, w, dy, dx, dw, db, work);
        return;
    }
    if (cpu_conv_uses_dnnl_backward(d)) {
        cpu_dnnl_conv2d_backward(d, x, w, dy, dx, dw, db, work);
        return;
    }
#endif
    cpu_conv2d_backward(d, x, w, dy, dx, dw, db, work);
}

/* ---- memory ---- */

/* Zeroed, 64-byte aligned blocks behind a 64-byte header that says how the
 * block was made. From 1 MiB on they are mapped pages, zero until written:
 * a scratch sized for the most any convolution implementation may need
 * (cpu_conv_work: oneDNN's Winograd at the teacher's 512-image pool asks
 * for 214 MB on an AVX-512 CPU) costs memory only where one is used, and
 * goes back to the system when freed. */
enum { ALLOC_HDR = 64, ALLOC_MAP_MIN = 1 << 20 };
typedef struct alloc_hdr {
    size_t size; /* bytes from the header on */
    int mapped;
} alloc_hdr;

static void *cpu_alloc(size_t bytes)
{
    size_t size = (bytes + 63) & ~(size_t)63;
    if (size == 0)
        size = 64;
    if (size < bytes || size + ALLOC_HDR < size)
        return NULL;
    size += ALLOC_HDR;
    alloc_hdr *h;
    if (size >= ALLOC_MAP_MIN) {
        void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        h = m;
        h->mapped = 1;
    } else {
        if (!(h = aligned_alloc(64, size)))
            return NULL;
        memset(h, 0, size);
        h->mapped = 0;
    }
    h->size = size;
    return (char *)h + ALLOC_HDR;
}

static void cpu_free(void *p)
{
    if (!p)
        return;
    alloc_hdr *h = (alloc_hdr *)((char *)p - ALLOC_HDR);
    if (h->mapped)
        munmap(h, h->size);
    else
        free(h);
}

static void cpu_memcpy(void *dst, const void *src, size_t bytes)
{
    if (bytes)
        memcpy(dst, src, bytes);
}

/* in slices of at least CPU_PAR_MIN floats over the threads */
static void cpu_zero(float *x, size_t n)
{
    if (!n)
        return;
    size_t parts = n / CPU_PAR_MIN, t = (size_t)cpu_threads();
    if (parts > t)
        parts = t;
    if (parts < 2) {
        memset(x, 0, n * sizeof *x);
        return;
    }
#pragma omp parallel for schedule(static) num_threads((int)parts)
    for (size_t k = 0; k < parts; k++) {
        const size_t a = n * k / parts, b = n * (k + 1) / parts;
        memset(x + a, 0, (b - a) * sizeof *x);
    }
}

static void cpu_copy(float *dst, const float *src, size_t n)
{
    if (n && dst != src)
        memcpy(dst, src, n * sizeof *dst);
}

/* ---- elementwise ---- */

static void cpu_axpy(float *y, const float *x, float a, size_t n, int acc)
{
    if (acc) {
#pragma omp parallel for simd schedule(static) num_threads(cpu_threads()) \
    if (n > CPU_PAR_MIN)
        for (size_t i = 0; i < n; i++)
            y[i] += a * x[i];
    } else {
#pragma omp parallel for simd schedule(static) num_threads(cpu_threads()) \
    if (n > CPU_PAR_MIN)
        for (size_t i = 0; i < n; i++)
            y[i] = a * x[i];
    }
}

static void cpu_scale(float *x, float a, size_t n)
{
#pragma omp parallel for simd schedule(static) num_threads(cpu_threads()) \
    if (n > CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++)
        x[i] *= a;
}

/* NaN passes through (as PyTorch), so a diverged network stays visible. */
static void cpu_relu_forward(const float *x, float *y, size_t n)
{
#pragma omp parallel for simd schedule(static) num_threads(cpu_threads()) \
    if (n > CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] < 0.f ? 0.f : x[i];
}

static void cpu_relu_backward(const float *y, const float *dy, float *dx, size_t n)
{
    if (dx == dy) {
#pragma omp parallel for simd schedule(static) num_threads(cpu_threads()) \
    if (n > CPU_PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float g = dy[i]; /* loaded unconditionally: the select vectorizes */
            dx[i] = y[i] > 0.f ? g : 0.f;
        }
    } else {
#pragma omp parallel for simd schedule(static) num_threads(cpu_threads()) \
    if (n > CPU_PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float g = dy[i];
            float m = y[i] > 0.f ? g : 0.f;
            dx[i] += m;
        }
    }
}

/* ---- global average pool: x (n,c,hw) -> y (n,c) ---- */

static void cpu_gap_forward(int n, int c, int hw, const float *x, float *y)
{
    const long planes = (long)n * c;
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if (planes * hw > CPU_PAR_MIN)
    for (long p = 0; p < planes; p++) {
        const float *xp = x + p * hw;
        double s = 0.;
#pragma omp simd reduction(+ : s)
        for (int j = 0; j < hw; j++)
            s += xp[j];
        y[p] = (float)(s / hw);
    }
}

static void cpu_gap_backward(int n, int c, int hw, const float *dy, float *dx)
{
    const long planes = (long)n * c;
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if (planes * hw > CPU_PAR_MIN)
    for (long p = 0; p < planes; p++) {
        const float g = dy[p] / (float)hw;
        float *dxp = dx + p * hw;
#pragma omp simd
        for (int j = 0; j < hw; j++)
            dxp[j] += g;
    }
}

/* ---- linear: x (n,in), w (out,in), b (out), y (n,out) ---- */

static void cpu_linear_forward(int n, int in, int out, const float *x,
                               const float *w, const float *b, float *y)
{
    if (b)
        for (int i = 0; i < n; i++)
            memcpy(y + (size_t)i * out, b, (size_t)out * sizeof *y);
    cpu_threads(); /* BLAS single-threaded from here on */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.f, x, in,
                w, in, b ? 1.f : 0.f, y, out);
}

static void cpu_linear_backward(int n, int in, int out, const float *x,
                                const float *w, const float *dy, float *dx,
                                float *dw, float *db)
{
    cpu_threads();
    if (dx) /* dx (n,in) += dy (n,out) * w (out,in) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.f,
                    dy, out, w, in, 1.f, dx, in);
    if (dw) /* dw (out,in) += dy^T * x */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.f, dy,
                    out, x, in, 1.f, dw, in);
    if (db)
        for (int o = 0; o < out; o++) {
            double s = 0.;
            for (int i = 0; i < n; i++)
                s += dy[(size_t)i * out + o];
            db[o] += (float)s;
        }
}

/* ---- ResNet option-A shortcut: x (n,cin,h,w) -> y (n,cin+2*padc,h/2,w/2) ---- */

static void cpu_shortcut_a_forward(int n, int cin, int h, int w, int padc,
                                   const float *x, float *y, int acc)
{
    const int cout = cin + 2 * padc, oh = h / 2, ow = w / 2;
    const size_t ohw = (size_t)oh * ow, hw = (size_t)h * w;
    const long planes = (long)n * cout;
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if (planes * (long)ohw > CPU_PAR_MIN)
    for (long p = 0; p < planes; p++) {
        const long i = p / cout, c = p % cout - padc;
        float *yp = y + p * ohw;
        if (c < 0 || c >= cin) {
            if (!acc)
                memset(yp, 0, ohw * sizeof *yp);
            continue;
        }
        const float *xp = x + (i * cin + c) * hw;
        for (int oy = 0; oy < oh; oy++) {
            const float *xr = xp + (size_t)2 * oy * w;
            float *yr = yp + (size_t)oy * ow;
            if (acc)
                for (int ox = 0; ox < ow; ox++)
                    yr[ox] += xr[2 * ox];
            else
                for (int ox = 0; ox < ow; ox++)
                    yr[ox] = xr[2 * ox];
        }
    }
}

static void cpu_shortcut_a_backward(int n, int cin, int h, int w, int padc,
                                    const float *dy, float *dx)
{
    const int cout = cin + 2 * padc, oh = h / 2, ow = w / 2;
    const size_t ohw = (size_t)oh * ow, hw = (size_t)h * w;
    const long planes = (long)n * cin;
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if (planes * (long)ohw > CPU_PAR_MIN)
    for (long p = 0; p < planes; p++) {
        const long i = p / cin, c = p % cin;
        const float *dyp = dy + (i * cout + c + padc) * ohw;
        float *dxp = dx + p * hw;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                dxp[(size_t)2 * oy * w + 2 * ox] += dyp[(size_t)oy * ow + ox];
    }
}

/* ---- strided channel copy ---- */

static void cpu_slice_forward(int n, int c, int h, int w, int off, int step, const float *x,
                              int yc, int yoff, float *y, int acc)
{
    const int oh = (h - off + step - 1) / step, ow = (w - off + step - 1) / step;
    const size_t ohw = (size_t)oh * ow, hw = (size_t)h * w;
    const long planes = (long)n * c;
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if (planes * (long)ohw > CPU_PAR_MIN)
    for (long p = 0; p < planes; p++) {
        const long i = p / c, ch = p % c;
        const float *xp = x + p * hw + (size_t)off * w + off;
        float *yp = y + (i * yc + yoff + ch) * ohw;
        for (int oy = 0; oy < oh; oy++) {
            const float *xr = xp + (size_t)oy * step * w;
            float *yr = yp + (size_t)oy * ow;
            if (acc)
                for (int ox = 0; ox < ow; ox++)
                    yr[ox] += xr[(size_t)ox * step];
            else if (step == 1)
                memcpy(yr, xr, (size_t)ow * sizeof *yr);
            else
                for (int ox = 0; ox < ow; ox++)
                    yr[ox] = xr[(size_t)ox * step];
        }
    }
}

static void cpu_slice_backward(int n, int c, int h, int w, int off, int step, const float *dy,
                               int yc, int yoff, float *dx)
{
    const int oh = (h - off + step - 1) / step, ow = (w - off + step - 1) / step;
    const size_t ohw = (size_t)oh * ow, hw = (size_t)h * w;
    const long planes = (long)n * c;
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if (planes * (long)ohw > CPU_PAR_MIN)
    for (long p = 0; p < planes; p++) {
        const long i = p / c, ch = p % c;
        const float *dyp = dy + (i * yc + yoff + ch) * ohw;
        float *dxp = dx + p * hw + (size_t)off * w + off;
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                dxp[(size_t)oy * step * w + (size_t)ox * step] += dyp[(size_t)oy * ow + ox];
    }
}

/* ---- loss ---- */

/* Per sample, in double: loss = logsumexp(z) - z[label]. A label outside
 * [0,k) gives a NaN loss (and NaN gradients) rather than a wild read. */
static double cpu_softmax_ce(int n, int k, const float *logits,
                             const int32_t *labels, double *loss,
                             float *dlogits, float scale)
{
    double total = 0.;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * k;
        const int32_t lab = labels[i];
        double zmax = -INFINITY;
        for (int j = 0; j < k; j++)
            if (z[j] > zmax)
                zmax = z[j];
        double s = 0.;
        for (int j = 0; j < k; j++)
            s += exp(z[j] - zmax);
        const double lse = zmax + log(s);
        const int valid = lab >= 0 && lab < k;
        const double li = valid ? lse - z[lab] : NAN;
        if (loss)
            loss[i] = li;
        total += li;
        if (dlogits) {
            float *g = dlogits + (size_t)i * k;
            const double f = (double)scale / n;
            for (int j = 0; j < k; j++)
                g[j] = valid ? (float)(f * (exp(z[j] - lse) - (j == lab))) : NAN;
        }
    }
    return n > 0 ? total / n : 0.;
}

static int cpu_sync(void)
{
    return 0;
}

/* ---- optimizer ---- */

static void cpu_sgd_step(float *p, const float *g, float *buf, size_t n, float lr,
                         float momentum, float wd, int first, const double *unless,
                         int nunless)
{
    for (int i = 0; unless && i < nunless; i++)
        if (!isfinite(unless[i]))
            return;
    if (momentum == 0.f) {
#pragma omp parallel for simd schedule(static) num_threads(cpu_threads()) \
    if (n > CPU_PAR_MIN)
        for (size_t i = 0; i < n; i++)
            p[i] -= lr * (g[i] + wd * p[i]);
        return;
    }
    if (first) {
#pragma omp parallel for simd schedule(static) num_threads(cpu_threads()) \
    if (n > CPU_PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            const float d = g[i] + wd * p[i];
            buf[i] = d;
            p[i] -= lr * d;
        }
        return;
    }
#pragma omp parallel for simd schedule(static) num_threads(cpu_threads()) \
    if (n > CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        const float b = momentum * buf[i] + (g[i] + wd * p[i]);
        buf[i] = b;
        p[i] -= lr * b;
    }
}

/* A scoring thread (backend.h): the thread count for code that asks OpenMP
 * (each thread has its own setting), and primitives of its own for the
 * oneDNN convolutions, which otherwise take turns on each shape's. */
static int cpu_thread_begin(int slot)
{
    omp_set_num_threads(cpu_threads());
#ifdef HAVE_DNNL
    cpu_dnnl_conv_set_slot(slot);
#else
    (void)slot;
#endif
    return 0;
}

static const backend cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_memcpy,
    .download = cpu_memcpy,
    .zero = cpu_zero,
    .copy = cpu_copy,
    .axpy = cpu_axpy,
    .scale = cpu_scale,
    .conv_work_size = cpu_conv_work,
    .conv2d_forward = cpu_conv_forward,
    .conv2d_backward = cpu_conv_backward,
    .bn_forward_train = cpu_bn_forward_train,
    .bn_forward_eval = cpu_bn_forward_eval,
    .bn_backward = cpu_bn_backward,
    .relu_forward = cpu_relu_forward,
    .relu_backward = cpu_relu_backward,
    .avgpool_forward = cpu_avgpool_forward,
    .avgpool_backward = cpu_avgpool_backward,
    .maxpool_forward = cpu_maxpool_forward,
    .maxpool_backward = cpu_maxpool_backward,
    .gap_forward = cpu_gap_forward,
    .gap_backward = cpu_gap_backward,
    .linear_forward = cpu_linear_forward,
    .linear_backward = cpu_linear_backward,
    .shortcut_a_forward = cpu_shortcut_a_forward,
    .shortcut_a_backward = cpu_shortcut_a_backward,
    .slice_forward = cpu_slice_forward,
    .slice_backward = cpu_slice_backward,
    .gram = cpu_gram,
    .gram_backward = cpu_gram_backward,
    .softmax_ce = cpu_softmax_ce,
    .sgd_step = cpu_sgd_step,
    .sync = cpu_sync,
    .thread_begin = cpu_thread_begin,
};

const backend *backend_cpu(void)
{
    cpu_threads();
    return &cpu_backend;
}
