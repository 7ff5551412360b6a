/* The CUDA backend's own kernels (kernels/cuda_kernels.cuh) run on the CPU
 * through tests/cuda_emu.h and compared with the CPU backend: every make
 * check tests them, GPU or not (tests/test_cuda compares the real thing on a
 * GPU, cuDNN and cuBLAS included). The table entries are called as the
 * CUDA table calls them (their grids, their batch-norm buffers), with
 * shapes that take each kernel through its cases (batch norm split over
 * several blocks and not, pools with and without padding, CKA centered and
 * not, SGD's three modes and its guard). The emulator's own tests come
 * first: a reduction without its barrier must come out wrong, a divergent
 * barrier must be caught. Last, a whole RMI score of two NAS-Bench-201 cells
 * (the reference's batch and teacher, as tests/test_rmi) with these kernels
 * in the CPU table, through rmi.c's device path: the loss on the device,
 * CKA, the guarded SGD, steps queued (skipped without the teacher). */
#include "cuda_emu.h"

extern "C" {
#include "io/safetensors.h"
#include "rmi/cka.h"
#include "rmi/rmi.h"
#include "tensor/backend.h"
#include "util/err.h"
#include "util/rng.h"
}

#include <cstdint>
#include <vector>

/* what cuda_kernels.cuh takes from the CUDA backend */
static struct {
    double *bn_part;
    float *bn_coef;
} cu;
static int fail_calls;
static char fail_msg[256];
static void cu_fail(const char *file, int line, const char *call, const char *msg)
{
    (void)file;
    (void)line;
    snprintf(fail_msg, sizeof fail_msg, "%s: %s", call, msg);
    fail_calls++;
}

#include "../kernels/cuda_kernels.cuh"
#include "tap.h"
#include "ref_batch.h"

typedef std::vector<float> vec;

static uint64_t rng_state = 88172645463325252ull;
static float frand(void) /* uniform in [-1, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}
static vec randv(size_t n, float scale = 1.f, float shift = 0.f)
{
    vec v(n);
    for (auto &x : v)
        x = frand() * scale + shift;
    return v;
}

/* largest |a - b| over the largest |b| (at least 1) */
static double rel_err(const vec &a, const vec &b)
{
    double m = 0., big = 1.;
    for (size_t i = 0; i < a.size(); i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m))
            m = d; /* NaN wins */
        if (fabs(b[i]) > big)
            big = fabs(b[i]);
    }
    return a.size() == b.size() ? m / big : INFINITY;
}

static int same_bits(const vec &a, const vec &b)
{
    return a.size() == b.size() && !memcmp(a.data(), b.data(), a.size() * sizeof(float));
}

#define CHECK(a, b, tol, ...)                                                    \
    do {                                                                         \
        double e_ = rel_err(a, b);                                               \
        if (!tap_ok(e_ <= (tol), __VA_ARGS__))                                   \
            tap_diag("relative error %.3g > %.1g", e_, (double)(tol));           \
    } while (0)

static const backend *C;

/* ---- the emulator itself ---- */

__global__ void t_block_sum(const double *x, int n, double *out, int barriers)
{
    __shared__ double sh[2 * CU_THREADS];
    double a = 0., b = 0.;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        a += x[i];
    if (barriers) {
        block_sum2(a, b, sh);
    } else { /* block_sum2 with its barriers left out */
        const int t = threadIdx.x;
        sh[t] = a;
        for (int s = CU_THREADS / 2; s > 0; s >>= 1)
            if (t < s)
                sh[t] += sh[t + s];
        a = sh[0];
    }
    if (threadIdx.x == 0)
        out[blockIdx.x] = a;
}

__global__ void t_divergent(int *x)
{
    if (threadIdx.x % 2)
        __syncthreads();
    x[threadIdx.x] = 1;
}

__global__ void t_indices(int *x)
{
    const size_t i = ((size_t)blockIdx.y * gridDim.x + blockIdx.x) * blockDim.x + threadIdx.x;
    x[i] = (int)(blockIdx.y * 1000000 + blockIdx.x * 1000 + threadIdx.x);
}

static void test_emulator(void)
{
    std::vector<double> x(1000);
    double want = 0.;
    for (int i = 0; i < 1000; i++)
        want += x[i] = i % 7 - 3 + 0.25 * i;
    double got[2] = {0., 0.};
    CU_LAUNCH(t_block_sum, 2, CU_THREADS, x.data(), 1000, got, 1);
    tap_ok(got[0] == want && got[1] == want && !emu_failures(),
           "emulator: a block reduction with its barriers sums 1000 values (%.2f, want %.2f)",
           got[0], want);
    CU_LAUNCH(t_block_sum, 1, CU_THREADS, x.data(), 1000, got, 0);
    tap_ok(got[0] != want, "emulator: the same without its barriers comes out wrong (%.2f)",
           got[0]);
    std::vector<int> ints(64);
    CU_LAUNCH(t_divergent, 1, 64, ints.data());
    tap_ok(emu_failures() == 1, "emulator: a __syncthreads reached by half the block is caught");
    emu_failed = 0;
    std::vector<int> idx(3 * 2 * 32);
    CU_LAUNCH(t_indices, dim3(3, 2), 32, idx.data());
    int ok = 1;
    for (int by = 0; by < 2; by++)
        for (int bx = 0; bx < 3; bx++)
            for (int t = 0; t < 32; t++)
                ok &= idx[(by * 3 + bx) * 32 + t] == by * 1000000 + bx * 1000 + t;
    tap_ok(ok, "emulator: blockIdx, gridDim and threadIdx of a 3x2 grid of 32 threads");
}

/* ---- elementwise ---- */

static void test_elementwise(void)
{
    const size_t n = 3000;
    vec x = randv(n), y0 = randv(n);
    for (int acc = 0; acc < 2; acc++) {
        vec a = y0, b = y0;
        C->axpy(a.data(), x.data(), -0.75f, n, acc);
        cu_axpy(b.data(), x.data(), -0.75f, n, acc);
        tap_ok(same_bits(b, a), "axpy acc=%d: the CPU's values, every bit", acc);
    }
    vec a = x, b = x;
    C->scale(a.data(), 1.5f, n);
    cu_scale(b.data(), 1.5f, n);
    tap_ok(same_bits(b, a), "scale");
    x[5] = NAN;
    vec r1(n), r2(n);
    C->relu_forward(x.data(), r1.data(), n);
    cu_relu_forward(x.data(), r2.data(), n);
    tap_ok(same_bits(r2, r1) && r2[5] != r2[5], "relu (NaN passes through)");
    vec inpl = x;
    cu_relu_copy(inpl.data(), inpl.data(), n);
    tap_ok(same_bits(inpl, r1), "relu in place");
    vec dy = randv(n);
    vec d1 = dy, d2 = dy;
    C->relu_backward(r1.data(), d1.data(), d1.data(), n);
    cu_relu_backward(r1.data(), d2.data(), d2.data(), n);
    tap_ok(same_bits(d2, d1), "relu backward in place (dx == dy)");
    d1 = y0, d2 = y0;
    C->relu_backward(r1.data(), dy.data(), d1.data(), n);
    cu_relu_backward(r1.data(), dy.data(), d2.data(), n);
    tap_ok(same_bits(d2, d1), "relu backward accumulated");
    /* the fused ReLU -> Conv's input side: dx += t where x > 0, or dx = that */
    for (int acc = 0; acc < 2; acc++) {
        vec m = y0, want = y0;
        for (size_t i = 0; i < n; i++)
            want[i] = (acc ? want[i] : 0.f) + (x[i] > 0.f ? dy[i] : 0.f);
        cu_relu_mask(x.data(), dy.data(), m.data(), n, acc);
        tap_ok(same_bits(m, want), "relu mask acc=%d", acc);
    }
}

/* ---- batch norm ---- */

static void test_bn_shape(int n, int c, int hw)
{
    const size_t total = (size_t)n * c * hw;
    vec x = randv(total, 2.f, 0.5f), g = randv(c, 0.5f, 1.f), bt = randv(c, 0.3f);
    vec y0 = randv(total);
    const int split = bn_split(n, c, hw);
    for (int acc = 0; acc < 2; acc++)
        for (int affine = 0; affine < 2; affine++) {
            vec ya = y0, yb = y0, ma(c), mb(c), sa(c), sb(c);
            vec rma = randv(c, 0.1f), rva = randv(c, 0.1f, 1.f), rmb = rma, rvb = rva;
            const float *gp = affine ? g.data() : NULL, *bp = affine ? bt.data() : NULL;
            C->bn_forward_train(n, c, hw, x.data(), gp, bp, ya.data(), acc, ma.data(),
                                sa.data(), rma.data(), rva.data(), 0.1f, 1e-5f);
            cu_bn_forward_train(n, c, hw, x.data(), gp, bp, yb.data(), acc, mb.data(),
                                sb.data(), rmb.data(), rvb.data(), 0.1f, 1e-5f);
            CHECK(yb, ya, 1e-6, "bn train %dx%dx%d (split %d) acc=%d affine=%d: y", n, c, hw,
                  split, acc, affine);
            CHECK(mb, ma, 1e-6, "  saved mean");
            CHECK(sb, sa, 1e-6, "  saved invstd");
            CHECK(rmb, rma, 1e-6, "  running mean");
            CHECK(rvb, rva, 1e-6, "  running var");
        }
    vec rm = randv(c, 0.2f), rv = randv(c, 0.2f, 1.f);
    for (int acc = 0; acc < 2; acc++) {
        vec ya = y0, yb = y0;
        C->bn_forward_eval(n, c, hw, x.data(), g.data(), bt.data(), ya.data(), acc, rm.data(),
                           rv.data(), 1e-5f);
        cu_bn_forward_eval(n, c, hw, x.data(), g.data(), bt.data(), yb.data(), acc, rm.data(),
                           rv.data(), 1e-5f);
        CHECK(yb, ya, 1e-6, "bn eval %dx%dx%d acc=%d", n, c, hw, acc);
    }
    /* backward from the saved statistics of a forward */
    vec y(total), mean(c), invstd(c);
    C->bn_forward_train(n, c, hw, x.data(), g.data(), bt.data(), y.data(), 0, mean.data(),
                        invstd.data(), NULL, NULL, 0.1f, 1e-5f);
    vec dy = randv(total), dx0 = randv(total), dg0 = randv(c), db0 = randv(c);
    for (int mode = 0; mode < 3; mode++) { /* no dx, dx accumulated, dx overwritten */
        vec dxa = dx0, dxb = dx0, dga = dg0, dgb = dg0, dba = db0, dbb = db0;
        const int acc = mode < 2;
        if (!acc)
            dxb = vec(total, NAN);
        C->bn_backward(n, c, hw, x.data(), g.data(), mean.data(), invstd.data(), dy.data(),
                       mode ? dxa.data() : NULL, dga.data(), dba.data(), acc);
        cu_bn_backward(n, c, hw, x.data(), g.data(), mean.data(), invstd.data(), dy.data(),
                       mode ? dxb.data() : NULL, dgb.data(), dbb.data(), acc);
        CHECK(dxb, dxa, 1e-5, "bn backward %dx%dx%d%s: dx", n, c, hw,
              mode == 0 ? " (no dx)" : acc ? "" : " (dx_acc=0 over NaN)");
        CHECK(dgb, dga, 1e-5, "  dgamma (accumulated)");
        CHECK(dbb, dba, 1e-5, "  dbeta (accumulated)");
    }
}

/* The fused kernels (the default) against the three-kernel path, bit for
 * bit, and with a grid of 3 blocks striding over the chunks. */
struct bn_out {
    vec y, mean, invstd, rm, rv, dx, dg, db;
    bool operator==(const bn_out &o) const
    {
        return same_bits(y, o.y) && same_bits(mean, o.mean) && same_bits(invstd, o.invstd) &&
               same_bits(rm, o.rm) && same_bits(rv, o.rv) && same_bits(dx, o.dx) &&
               same_bits(dg, o.dg) && same_bits(db, o.db);
    }
};

static bn_out bn_run(int n, int c, int hw, int fused, unsigned grid, int dx_acc)
{
    rng_state = 1234567; /* the same inputs each time */
    const size_t total = (size_t)n * c * hw;
    vec x = randv(total, 2.f, 0.5f), g = randv(c, 0.5f, 1.f), bt = randv(c, 0.3f);
    bn_out o;
    o.y = randv(total), o.rm = randv(c, 0.1f), o.rv = randv(c, 0.1f, 1.f);
    o.mean = o.invstd = vec(c);
    o.dx = randv(total), o.dg = randv(c), o.db = randv(c);
    const vec dy = randv(total);
    cu_bn_fused = fused;
    const int split = bn_split(n, c, hw);
    const double m = (double)n * hw;
    if (!grid) {
        cu_bn_forward_train(n, c, hw, x.data(), g.data(), bt.data(), o.y.data(), 1,
                            o.mean.data(), o.invstd.data(), o.rm.data(), o.rv.data(), 0.1f, 1e-5f);
        cu_bn_backward(n, c, hw, x.data(), g.data(), o.mean.data(), o.invstd.data(), dy.data(),
                       o.dx.data(), o.dg.data(), o.db.data(), dx_acc);
    } else { /* the fused kernels launched on a grid that must stride */
        CU_LAUNCH(k_bn_partial, dim3(split, c), CU_THREADS, n, c, hw, split, x.data(),
                  (const float *)NULL, (const float *)NULL, cu.bn_part);
        CU_LAUNCH(k_bn_train_apply, grid, CU_THREADS, total, c, hw, split, m, cu.bn_part,
                  g.data(), bt.data(), o.mean.data(), o.invstd.data(), o.rm.data(), o.rv.data(),
                  0.1f, 1e-5f, x.data(), o.y.data(), 1);
        CU_LAUNCH(k_bn_partial, dim3(split, c), CU_THREADS, n, c, hw, split, x.data(), dy.data(),
                  o.mean.data(), cu.bn_part);
        CU_LAUNCH(k_bn_bwd_apply_fused, grid, CU_THREADS, total, c, hw, split, m, cu.bn_part,
                  g.data(), o.mean.data(), o.invstd.data(), o.dg.data(), o.db.data(), x.data(),
                  dy.data(), o.dx.data(), dx_acc);
    }
    cu_bn_fused = 1;
    return o;
}

static void test_bn_fused(void)
{
    const int shapes[][3] = {{8, 16, 1024}, {2, 5, 9}, {300, 7, 1}, {5, 6, 3}, {3, 2, 11025},
                             {7, 3, 100}};
    for (auto &sh : shapes)
        for (int acc = 1; acc >= 0; acc--) {
            const bn_out three = bn_run(sh[0], sh[1], sh[2], 0, 0, acc);
            tap_ok(bn_run(sh[0], sh[1], sh[2], 1, 0, acc) == three &&
                       bn_run(sh[0], sh[1], sh[2], 1, 3, acc) == three,
                   "bn %dx%dx%d%s fused (and on a grid of 3 blocks): the three kernels' y, "
                   "statistics, dx, dgamma and dbeta, every bit",
                   sh[0], sh[1], sh[2], acc ? "" : " dx_acc=0");
        }
}

static void test_bn(void)
{
    test_bn_shape(2, 5, 9);     /* split 1 */
    test_bn_shape(4, 3, 1024);  /* split 2 */
    test_bn_shape(8, 4, 1024);  /* split 4 */
    test_bn_shape(3, 2, 11025); /* split 17, a last block shorter than the others */
    test_bn_shape(300, 7, 1);   /* a chunk of 256 elements over 256 planes */
    test_bn_fused();
    fail_calls = 0;
    tap_ok(bn_split(1, CU_BN_COEF + 1, 1) == 0 && fail_calls == 1 &&
               strstr(fail_msg, "16384"),
           "bn: more channels than the buffers hold is a recorded failure (%s)", fail_msg);
}

/* ---- pooling, global average pool, shortcut, slice ---- */

static void test_pool_desc(pool_desc d, const char *what)
{
    if (pool_desc_init(&d) < 0) {
        tap_ok(0, "%s: pool_desc_init", what);
        return;
    }
    const size_t nx = (size_t)d.n * d.c * d.h * d.w, ny = (size_t)d.n * d.c * d.oh * d.ow;
    vec x = randv(nx), y0 = randv(ny), dy = randv(ny), dx0 = randv(nx);
    x[3] = x[4]; /* a tie in a max window */
    for (int acc = 0; acc < 2; acc++) {
        vec a = y0, b = y0;
        C->avgpool_forward(&d, x.data(), a.data(), acc);
        cu_avgpool_forward(&d, x.data(), b.data(), acc);
        CHECK(b, a, 1e-6, "avgpool %s acc=%d", what, acc);
        std::vector<int32_t> ia(ny), ib(ny);
        a = y0, b = y0;
        C->maxpool_forward(&d, x.data(), a.data(), acc, ia.data());
        cu_maxpool_forward(&d, x.data(), b.data(), acc, ib.data());
        tap_ok(same_bits(b, a) && ia == ib, "maxpool %s acc=%d: values and argmax", what, acc);
        if (acc) {
            vec da = dx0, db = dx0;
            C->maxpool_backward(&d, dy.data(), ia.data(), da.data());
            cu_maxpool_backward(&d, dy.data(), ib.data(), db.data());
            CHECK(db, da, 1e-6, "maxpool backward %s", what);
        }
    }
    vec da = dx0, db = dx0;
    C->avgpool_backward(&d, dy.data(), da.data());
    cu_avgpool_backward(&d, dy.data(), db.data());
    CHECK(db, da, 1e-6, "avgpool backward %s", what);
}

static void test_pools(void)
{
    pool_desc d = {};
    d.n = 2, d.c = 3, d.h = 9, d.w = 7, d.k = 3, d.stride = 1, d.pad = 1;
    test_pool_desc(d, "3x3 s1 p1 (NB-201), count_include_pad=0");
    d.count_include_pad = 1;
    test_pool_desc(d, "3x3 s1 p1, count_include_pad=1");
    d.k = 2, d.stride = 2, d.pad = 0, d.h = 8, d.w = 8;
    test_pool_desc(d, "2x2 s2 p0 (reduction)");
    d.k = 3, d.stride = 2, d.pad = 1, d.h = 9, d.w = 10, d.count_include_pad = 0;
    test_pool_desc(d, "3x3 s2 p1 (DARTS)");

    const int n = 3, c = 5, hw = 37;
    vec x = randv((size_t)n * c * hw), ya(n * c), yb(n * c);
    C->gap_forward(n, c, hw, x.data(), ya.data());
    cu_gap_forward(n, c, hw, x.data(), yb.data());
    CHECK(yb, ya, 1e-6, "global average pool");
    vec dy = randv(n * c), da = randv(x.size()), db = da;
    C->gap_backward(n, c, hw, dy.data(), da.data());
    cu_gap_backward(n, c, hw, dy.data(), db.data());
    CHECK(db, da, 1e-6, "global average pool backward");
}

static void test_shapes(void)
{
    const int n = 2, cin = 3, h = 6, w = 8, padc = 2, cout = cin + 2 * padc;
    vec x = randv((size_t)n * cin * h * w), y0 = randv((size_t)n * cout * (h / 2) * (w / 2));
    for (int acc = 0; acc < 2; acc++) {
        vec a = y0, b = y0;
        C->shortcut_a_forward(n, cin, h, w, padc, x.data(), a.data(), acc);
        cu_shortcut_a_forward(n, cin, h, w, padc, x.data(), b.data(), acc);
        tap_ok(same_bits(b, a), "shortcut A acc=%d", acc);
    }
    vec dx0 = randv(x.size()), da = dx0, db = dx0;
    C->shortcut_a_backward(n, cin, h, w, padc, y0.data(), da.data());
    cu_shortcut_a_backward(n, cin, h, w, padc, y0.data(), db.data());
    tap_ok(same_bits(db, da), "shortcut A backward");

    /* DARTS's factorized reduce: channels 4.. of a 9-channel y, offset 1, step 2 */
    const int c = 5, yc = 9, yoff = 4, off = 1, step = 2;
    const int oh = (h - off + step - 1) / step, ow = (w - off + step - 1) / step;
    vec s0 = randv((size_t)n * yc * oh * ow);
    for (int acc = 0; acc < 2; acc++) {
        vec xs = randv((size_t)n * c * h * w), a = s0, b = s0;
        C->slice_forward(n, c, h, w, off, step, xs.data(), yc, yoff, a.data(), acc);
        cu_slice_forward(n, c, h, w, off, step, xs.data(), yc, yoff, b.data(), acc);
        tap_ok(same_bits(b, a), "slice acc=%d (the other channels left alone)", acc);
    }
    vec sx0 = randv((size_t)n * c * h * w), sa = sx0, sb = sx0;
    C->slice_backward(n, c, h, w, off, step, s0.data(), yc, yoff, sa.data());
    cu_slice_backward(n, c, h, w, off, step, s0.data(), yc, yoff, sb.data());
    tap_ok(same_bits(sb, sa), "slice backward");
}

/* ---- linear's bias kernels, the Gram matrix's symmetrization ---- */

static void test_small(void)
{
    const int n = 5, out = 7;
    vec b = randv(out), y(n * out), want(n * out);
    for (int i = 0; i < n * out; i++)
        want[i] = b[i % out];
    CU_LAUNCH(k_rows_set, cu_blocks((size_t)n * out), CU_THREADS, n, out, b.data(), y.data());
    tap_ok(same_bits(y, want), "linear: bias rows");
    vec dy = randv(n * out), db = randv(out), dwant = db;
    for (int o = 0; o < out; o++) {
        double s = 0.;
        for (int i = 0; i < n; i++)
            s += dy[i * out + o];
        dwant[o] += (float)s;
    }
    CU_LAUNCH(k_colsum_add, cu_blocks(out), CU_THREADS, n, out, dy.data(), db.data());
    tap_ok(same_bits(db, dwant), "linear: bias gradient (column sums in double, added)");

    const int k = 37;
    vec g = randv(k * k), gw = g;
    for (int c = 0; c < k; c++)
        for (int r = c + 1; r < k; r++)
            gw[c * k + r] = g[r * k + c];
    CU_LAUNCH(k_symmetrize, cu_blocks((size_t)k * k), CU_THREADS, k, g.data());
    tap_ok(same_bits(g, gw), "Gram: the upper triangle copied onto the lower");
}

/* ---- loss, CKA ---- */

static void test_loss(void)
{
    const int n = 40, k = 10;
    vec z = randv((size_t)n * k, 4.f);
    std::vector<int32_t> lab(n);
    for (int i = 0; i < n; i++)
        lab[i] = (i * 7) % k;
    std::vector<double> la(n), lb(n);
    vec ga((size_t)n * k), gb((size_t)n * k);
    const double mean = C->softmax_ce(n, k, z.data(), lab.data(), la.data(), ga.data(), 0.7f);
    CU_LAUNCH(k_softmax_ce, cu_blocks(n), CU_THREADS, n, k, z.data(), lab.data(), lb.data(),
              gb.data(), 0.7f);
    double worst = 0., total = 0.;
    for (int i = 0; i < n; i++) {
        worst = fmax(worst, fabs(la[i] - lb[i]));
        total += lb[i];
    }
    tap_ok(worst < 1e-12 && fabs(total / n - mean) < 1e-12,
           "softmax CE: per-sample losses (worst %.2g) and their mean", worst);
    CHECK(gb, ga, 1e-6, "softmax CE: dlogits, scaled");
    double dmean = 0.;
    vec gc((size_t)n * k);
    cu_softmax_ce_dev(n, k, z.data(), lab.data(), gc.data(), 0.7f, &dmean);
    tap_ok(fabs(dmean - mean) < 1e-12 && same_bits(gc, gb),
           "softmax CE on the device: the mean in one block (%.9f, CPU %.9f)", dmean, mean);
    lab[3] = k; /* a label out of range: NaN, as on the CPU */
    cu_softmax_ce_dev(n, k, z.data(), lab.data(), gc.data(), 0.7f, &dmean);
    tap_ok(dmean != dmean && gc[3 * k] != gc[3 * k], "softmax CE: a bad label gives NaN");
}

static vec gram_of(int n, int p)
{
    vec x = randv((size_t)n * p), g((size_t)n * n);
    C->gram(n, p, x.data(), g.data());
    return g;
}

static void test_cka(void)
{
    for (int n : {5, 32, 300})
        for (int centered = 0; centered < 2; centered++) {
            vec K = gram_of(n, 50), L = gram_of(n, 20);
            vec da((size_t)n * n), db((size_t)n * n);
            const double want = cka_from_grams(n, K.data(), L.data(), centered, da.data());
            for (auto &v : da)
                v *= 0.25f;
            double got = -1.;
            cu_cka(n, K.data(), L.data(), centered, 0.25f, db.data(), &got);
            tap_ok(fabs(got - want) < 1e-12 * fmax(1., fabs(want)),
                   "CKA n=%d centered=%d: %.12f (CPU %.12f)", n, centered, got, want);
            CHECK(db, da, 1e-6, "  its gradient, scaled");
            double alone = -1.;
            cu_cka(n, K.data(), L.data(), centered, 0.25f, NULL, &alone);
            tap_ok(alone == got, "  without the gradient: the same value");
        }
    const int n = 8;
    vec K((size_t)n * n, 0.f), L = gram_of(n, 4), dK((size_t)n * n);
    double got = 0.;
    cu_cka(n, K.data(), L.data(), 1, 1.f, dK.data(), &got);
    tap_ok(got != got && dK[0] != dK[0] && dK[n * n - 1] != dK[n * n - 1],
           "CKA of an all-zero Gram: NaN and a NaN gradient, as on the CPU");
    fail_calls = 0;
    cu_cka(2000, K.data(), L.data(), 1, 1.f, NULL, &got);
    tap_ok(fail_calls == 1, "CKA: a batch over the shared memory is a recorded failure (%s)",
           fail_msg);
}

/* ---- SGD ---- */

static void test_sgd(void)
{
    const size_t n = 1000;
    vec p0 = randv(n), g = randv(n), m0 = randv(n);
    const struct {
        float mom;
        int first;
        const char *what;
    } modes[] = {{0.f, 0, "no momentum"}, {0.9f, 1, "first step"}, {0.9f, 0, "momentum"}};
    for (auto &md : modes) {
        vec pa = p0, pb = p0, ma = m0, mb = m0;
        C->sgd_step(pa.data(), g.data(), ma.data(), n, 0.1f, md.mom, 5e-4f, md.first, NULL, 0);
        cu_sgd_step(pb.data(), g.data(), mb.data(), n, 0.1f, md.mom, 5e-4f, md.first, NULL, 0);
        tap_ok(same_bits(pb, pa) && same_bits(mb, ma), "SGD, %s: p and the momentum", md.what);
    }
    const double fine[4] = {1., 2., 3., 4.};
    for (int bad = 0; bad < 4; bad++) {
        double terms[4] = {1., 2., 3., 4.};
        terms[bad] = bad % 2 ? INFINITY : NAN;
        vec pb = p0, mb = m0;
        cu_sgd_step(pb.data(), g.data(), mb.data(), n, 0.1f, 0.9f, 5e-4f, 0, terms, 4);
        tap_ok(same_bits(pb, p0) && same_bits(mb, m0),
               "SGD guard: term %d %s leaves p and the momentum alone", bad,
               bad % 2 ? "inf" : "NaN");
    }
    vec pa = p0, pb = p0, ma = m0, mb = m0;
    C->sgd_step(pa.data(), g.data(), ma.data(), n, 0.1f, 0.9f, 5e-4f, 0, NULL, 0);
    cu_sgd_step(pb.data(), g.data(), mb.data(), n, 0.1f, 0.9f, 5e-4f, 0, fine, 4);
    tap_ok(same_bits(pb, pa) && same_bits(mb, ma), "SGD guard: finite terms, the plain step");
}

/* ---- a whole RMI score ----
 * The CPU table with every entry that has a kernel here replaced by it
 * (convolutions, products, memory stay the CPU's, as cuDNN and cuBLAS stand
 * in on a GPU): rmi.c then takes the device path with these kernels doing
 * the batch norms, pools, the loss on the device, CKA and the guarded SGD,
 * and the score must be the CPU's to rounding. */
static backend emu_table(void)
{
    backend t = *backend_cpu();
    t.name = "cpu+cuda-kernels";
    t.axpy = cu_axpy;
    t.scale = cu_scale;
    t.relu_forward = cu_relu_forward;
    t.relu_backward = cu_relu_backward;
    t.bn_forward_train = cu_bn_forward_train;
    t.bn_forward_eval = cu_bn_forward_eval;
    t.bn_backward = cu_bn_backward;
    t.avgpool_forward = cu_avgpool_forward;
    t.avgpool_backward = cu_avgpool_backward;
    t.maxpool_forward = cu_maxpool_forward;
    t.maxpool_backward = cu_maxpool_backward;
    t.gap_forward = cu_gap_forward;
    t.gap_backward = cu_gap_backward;
    t.shortcut_a_forward = cu_shortcut_a_forward;
    t.shortcut_a_backward = cu_shortcut_a_backward;
    t.slice_forward = cu_slice_forward;
    t.slice_backward = cu_slice_backward;
    t.softmax_ce_dev = cu_softmax_ce_dev;
    t.cka = cu_cka;
    t.sgd_step = cu_sgd_step;
    return t;
}

struct losses {
    int n;
    double v[16];
};

static int record_loss(const rmi_eval *e, void *user)
{
    losses *l = (losses *)user;
    if (l->n < 16)
        l->v[l->n++] = e->loss;
    return 0;
}

static void test_score(void)
{
    rmi_settings s;
    rmi_settings_default(&s);
    s.steps = 3; /* one step alone, then two queued (the device path) */
    /* the CPU's score from the perturbed batch too: how far the CPU's own
     * trajectory moves under rounding bounds how far these kernels may
     * take it */
    ref_batch rb;
    const int rc = ref_batch_load(&rb, &s);
    if (rc == REF_NO_TEACHER) {
        tap_skip("a whole score: no teacher (%s)", rm_last_error());
    } else if (rc < 0) {
        tap_ok(0, "%s%s", rc == REF_NO_FEATURES ? "teacher features: "
                          : rc == REF_NO_PERTURBED ? "teacher features of the perturbed batch: "
                                                   : "",
               rm_last_error());
    } else {
        const rmi_data &d = rb.d, &dp = rb.dp;
        const backend dev = emu_table();
        const char *archs[2] = {
            "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",
            "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
            "avg_pool_3x3~2|"};
        for (const char *as : archs) {
            nb201_arch a;
            nb201_parse(as, &a);
            rmi_result r[3];
            losses l[3] = {};
            const backend *be[3] = {backend_cpu(), &dev, backend_cpu()};
            const rmi_data *data[3] = {&d, &d, &dp};
            int rc[3];
            for (int i = 0; i < 3; i++)
                rc[i] = rmi_score_cb(be[i], &a, data[i], &s, &r[i], NULL, record_loss, &l[i]);
            /* how far apart after each step: 1e-7, 1e-5 and 1e-2, or 3
             * times what the perturbed batch moves the CPU's loss, where
             * larger. The ResNet-like cell's trajectory can amplify
             * rounding ten thousandfold in a step: with im2col convolutions
             * (a build without oneDNN) step 2 is 1.6e-4 from the CPU's (the
             * perturbed batch: 1.7e-4), with Winograd 1.8e-7 */
            const double floor_[3] = {1e-7, 1e-5, 1e-2};
            double dif[3], bound[3];
            int ok = rc[0] == 0 && rc[1] == 0 && rc[2] == 0 && !r[1].diverged;
            for (int i = 0; i < 3; i++) {
                dif[i] = bound[i] = INFINITY;
                if (i >= l[0].n || i >= l[1].n || i >= l[2].n) {
                    ok = 0;
                    continue;
                }
                dif[i] = fabs(l[1].v[i] - l[0].v[i]) / fabs(l[0].v[i]);
                bound[i] = fmax(floor_[i], 3 * fabs(l[2].v[i] - l[0].v[i]) / fabs(l[0].v[i]));
                ok &= dif[i] <= bound[i];
            }
            tap_ok(ok, "a whole score (%s, 3 steps, the device path) with these kernels: %.9f, "
                       "CPU %.9f (losses apart by %.2g, %.2g, %.2g; bounds %.1g, %.1g, %.1g)",
                   as, r[1].score, r[0].score, dif[0], dif[1], dif[2], bound[0], bound[1],
                   bound[2]);
        }
        ref_batch_free(&rb);
    }
}

int main(void)
{
    C = backend_cpu();
    static double part[2 * CU_BN_PART];
    static float coef[3 * CU_BN_COEF];
    cu.bn_part = part;
    cu.bn_coef = coef;
    test_emulator();
    test_elementwise();
    test_bn();
    test_pools();
    test_shapes();
    test_small();
    test_loss();
    test_cka();
    test_sgd();
    test_score();
    tap_ok(emu_failures() == 0, "no launch failed in the emulator (%d)", emu_failures());
    tap_plan(tap_n);
    return tap_done();
}
