/* The CUDA backend's own kernels and the table entries that only launch
 * them: elementwise ops, batch norm, pooling, the small layers, the loss,
 * CKA and SGD. Each mirrors the CPU backend's arithmetic (src/tensor/cpu*.c):
 * the same double reductions where the CPU sums in double, the same float
 * expressions elsewhere, so the two agree to rounding. Kernels are plain
 * grid-stride loops or blocks reducing with __syncthreads; at the batch
 * sizes of an RMI score (32 images) launch latency, not arithmetic, is the
 * cost.
 *
 * Included by cuda.cu (nvcc) and by tests/test_kernels.cc (g++), which runs
 * these kernels on the CPU through tests/cuda_emu.h, one fiber per GPU
 * thread, and compares them with the CPU backend in every `make check`.
 * So nothing here calls the CUDA runtime or a library: the includer
 * provides
 *   - CU_LAUNCH(kernel, blocks, threads, args...) and
 *     CU_LAUNCH_SHMEM(kernel, blocks, threads, shmem bytes, args...);
 *   - CU_SHARED_DYNAMIC(type, name): the kernel's dynamic shared memory;
 *   - cu.bn_part, cu.bn_coef (the calling thread's batch-norm buffers, of
 *     CU_BN_PART and CU_BN_COEF) and cu_fail;
 *   - __global__, __device__, __shared__, __syncthreads, threadIdx,
 *     blockIdx, blockDim, gridDim, and pool_desc (tensor/backend.h). */

#define GRID_STRIDE(i, n)                                                        \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);     \
         i += (size_t)gridDim.x * blockDim.x)

/* Blocks of CU_THREADS threads for a grid-stride loop over n elements. */
enum { CU_THREADS = 256 };
static inline unsigned cu_blocks(size_t n)
{
    size_t b = (n + CU_THREADS - 1) / CU_THREADS;
    if (b < 1)
        b = 1;
    return b > 65535 * 8 ? 65535 * 8 : (unsigned)b;
}

/* each thread's batch-norm buffers: 2 * CU_BN_PART doubles, 3 * CU_BN_COEF floats */
enum { CU_BN_PART = 1 << 16, CU_BN_COEF = 1 << 14 };

/* ---- elementwise ---- */

__global__ void k_axpy(float *y, const float *x, float a, size_t n, int acc)
{
    GRID_STRIDE(i, n)
    {
        float v = a * x[i];
        y[i] = acc ? y[i] + v : v;
    }
}

static void cu_axpy(float *y, const float *x, float a, size_t n, int acc)
{
    if (n)
        CU_LAUNCH(k_axpy, cu_blocks(n), CU_THREADS, y, x, a, n, acc);
}

__global__ void k_scale(float *x, float a, size_t n)
{
    GRID_STRIDE(i, n) x[i] *= a;
}

static void cu_scale(float *x, float a, size_t n)
{
    if (n)
        CU_LAUNCH(k_scale, cu_blocks(n), CU_THREADS, x, a, n);
}

/* NaN passes through (x < 0 is false for NaN), as on the CPU */
__global__ void k_relu(const float *x, float *y, size_t n)
{
    GRID_STRIDE(i, n) y[i] = x[i] < 0.f ? 0.f : x[i];
}

static void cu_relu_forward(const float *x, float *y, size_t n)
{
    if (n)
        CU_LAUNCH(k_relu, cu_blocks(n), CU_THREADS, x, y, n);
}

void cu_relu_copy(const float *x, float *y, size_t n) { cu_relu_forward(x, y, n); }

__global__ void k_relu_bwd_inplace(const float *y, float *d, size_t n)
{
    GRID_STRIDE(i, n) d[i] = y[i] > 0.f ? d[i] : 0.f;
}

__global__ void k_relu_bwd_acc(const float *y, const float *dy, float *dx, size_t n)
{
    GRID_STRIDE(i, n) dx[i] += y[i] > 0.f ? dy[i] : 0.f;
}

static void cu_relu_backward(const float *y, const float *dy, float *dx, size_t n)
{
    if (!n)
        return;
    if (dx == dy)
        CU_LAUNCH(k_relu_bwd_inplace, cu_blocks(n), CU_THREADS, y, dx, n);
    else
        CU_LAUNCH(k_relu_bwd_acc, cu_blocks(n), CU_THREADS, y, dy, dx, n);
}

__global__ void k_relu_bwd_set(const float *y, const float *dy, float *dx, size_t n)
{
    GRID_STRIDE(i, n) dx[i] = y[i] > 0.f ? dy[i] : 0.f;
}

/* dx += t where x > 0, or dx = that (acc == 0): the input side of a fused
 * ReLU -> Conv */
void cu_relu_mask(const float *x, const float *t, float *dx, size_t n, int acc)
{
    if (!n)
        return;
    if (acc)
        CU_LAUNCH(k_relu_bwd_acc, cu_blocks(n), CU_THREADS, x, t, dx, n);
    else
        CU_LAUNCH(k_relu_bwd_set, cu_blocks(n), CU_THREADS, x, t, dx, n);
}

/* ---- block reductions in double ---- */

/* Sum a and b over the block (blockDim.x == CU_THREADS); thread 0 gets the
 * totals. sh holds 2 * CU_THREADS doubles. */
__device__ void block_sum2(double &a, double &b, double *sh)
{
    const int t = threadIdx.x;
    sh[t] = a;
    sh[CU_THREADS + t] = b;
    __syncthreads();
    for (int s = CU_THREADS / 2; s > 0; s >>= 1) {
        if (t < s) {
            sh[t] += sh[t + s];
            sh[CU_THREADS + t] += sh[CU_THREADS + t + s];
        }
        __syncthreads();
    }
    a = sh[0];
    b = sh[CU_THREADS];
}

/* ---- batch norm ---- */

/* Batch norm in three kernels: each channel's (n, hw) values are summed by
 * `split` blocks into partial double sums (cu.bn_part), one thread per
 * channel finishes them into the per-channel coefficients (cu.bn_coef), and
 * an elementwise kernel applies them; by default the last two are one
 * kernel (k_bn_train_apply, k_bn_bwd_apply_fused below). (One block per channel, the first
 * version, left the GPU nearly idle: 16 blocks walking 32768 values each for
 * the ResNet-like cell; the first H200 run measured 9.5 ms per RMI step with
 * it, 5.1 ms with this.) Both buffers are fixed at start-up, so nothing is
 * allocated while a step is recorded. */
static int bn_split(int n, int c, int hw)
{
    size_t m = (size_t)n * hw, split = (m + 2047) / 2048;
    if (split > 64)
        split = 64;
    if (split < 1)
        split = 1;
    while (split > 1 && (size_t)c * split > CU_BN_PART)
        split /= 2;
    if ((size_t)c * split > CU_BN_PART || (size_t)c > CU_BN_COEF) {
        cu_fail(__FILE__, __LINE__, "batch norm", "more channels than the CUDA backend's 16384");
        return 0;
    }
    return (int)split;
}

/* part[(ch*split + b)*2 + {0,1}]: sums of v and v*v (forward, dy == NULL)
 * or of dy and dy*(x - mean) (backward) over block b's share of channel ch */
__global__ void k_bn_partial(int n, int c, int hw, int split, const float *x, const float *dy,
                             const float *mean, double *part)
{
    __shared__ double sh[2 * CU_THREADS];
    const int b = blockIdx.x, ch = blockIdx.y;
    const size_t m = (size_t)n * hw, chunk = (m + split - 1) / split;
    const size_t lo = b * chunk, hi = lo + chunk < m ? lo + chunk : m;
    double s = 0., ss = 0.;
    if (!dy) {
        for (size_t t = lo + threadIdx.x; t < hi; t += blockDim.x) {
            double v = x[((t / hw) * c + ch) * hw + t % hw];
            s += v;
            ss += v * v;
        }
    } else {
        const float mu = mean[ch];
        for (size_t t = lo + threadIdx.x; t < hi; t += blockDim.x) {
            size_t o = ((t / hw) * c + ch) * hw + t % hw;
            s += dy[o];
            ss += (double)dy[o] * (x[o] - mu);
        }
    }
    block_sum2(s, ss, sh);
    if (threadIdx.x == 0) {
        part[((size_t)ch * split + b) * 2] = s;
        part[((size_t)ch * split + b) * 2 + 1] = ss;
    }
}

/* Channel ch's coefficients from its partial sums (coef[0], coef[1]: y =
 * x*coef[0] + coef[1]), and its saved and running statistics where those
 * pointers are not NULL. */
__device__ void bn_train_coef(int ch, int split, double m, const double *part, const float *gamma,
                              const float *beta, float *save_mean, float *save_invstd,
                              float *running_mean, float *running_var, float momentum, float eps,
                              float *coef)
{
    double s = 0., ss = 0.;
    for (int b = 0; b < split; b++) {
        s += part[((size_t)ch * split + b) * 2];
        ss += part[((size_t)ch * split + b) * 2 + 1];
    }
    double mean = s / m, var = ss / m - mean * mean;
    if (var < 0.)
        var = 0.;
    double invstd = 1. / sqrt(var + eps);
    if (save_mean)
        save_mean[ch] = (float)mean;
    if (save_invstd)
        save_invstd[ch] = (float)invstd;
    if (running_mean) {
        double unbiased = m > 1. ? var * m / (m - 1.) : var;
        running_mean[ch] = (float)((1. - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] = (float)((1. - momentum) * running_var[ch] + momentum * unbiased);
    }
    double g = gamma ? gamma[ch] : 1., bt = beta ? beta[ch] : 0.;
    double scale = g * invstd;
    coef[0] = (float)scale;
    coef[1] = (float)(bt - mean * scale);
}

__global__ void k_bn_train_finish(int c, int split, double m, const double *part,
                                  const float *gamma, const float *beta, float *save_mean,
                                  float *save_invstd, float *running_mean, float *running_var,
                                  float momentum, float eps, float *coef)
{
    GRID_STRIDE(ch, (size_t)c)
    bn_train_coef((int)ch, split, m, part, gamma, beta, save_mean, save_invstd, running_mean,
                  running_var, momentum, eps, coef + 2 * ch);
}

__global__ void k_bn_eval_coef(int c, const float *gamma, const float *beta,
                               const float *running_mean, const float *running_var, float eps,
                               float *coef)
{
    GRID_STRIDE(chs, (size_t)c)
    {
        const int ch = (int)chs;
        double g = gamma ? gamma[ch] : 1., bt = beta ? beta[ch] : 0.;
        double scale = g / sqrt((double)running_var[ch] + eps);
        coef[2 * ch] = (float)scale;
        coef[2 * ch + 1] = (float)(bt - running_mean[ch] * scale);
    }
}

/* y = x*coef[2ch] + coef[2ch+1], written or added */
__global__ void k_bn_apply(size_t total, int c, int hw, const float *x, const float *coef,
                           float *y, int acc)
{
    GRID_STRIDE(i, total)
    {
        const int ch = (int)((i / hw) % c);
        float v = x[i] * coef[2 * ch] + coef[2 * ch + 1];
        y[i] = acc ? y[i] + v : v;
    }
}

/* Channel ch's backward coefficients (dx += coef[0]*dy + coef[1]*(x - mean)
 * + coef[2]) from its partial sums; dgamma and dbeta added where not NULL. */
__device__ void bn_bwd_coef(int ch, int split, double m, const double *part, const float *gamma,
                            const float *save_invstd, float *dgamma, float *dbeta, float *coef)
{
    double sdy = 0., sdyx = 0.;
    for (int b = 0; b < split; b++) {
        sdy += part[((size_t)ch * split + b) * 2];
        sdyx += part[((size_t)ch * split + b) * 2 + 1];
    }
    const double invstd = save_invstd[ch];
    if (dgamma)
        dgamma[ch] += (float)(sdyx * invstd);
    if (dbeta)
        dbeta[ch] += (float)sdy;
    const double g = gamma ? gamma[ch] : 1.;
    coef[0] = (float)(g * invstd);
    coef[1] = (float)(-g * invstd * invstd * invstd * sdyx / m);
    coef[2] = (float)(-g * invstd * sdy / m);
}

__global__ void k_bn_bwd_finish(int c, int split, double m, const double *part,
                                const float *gamma, const float *save_invstd, float *dgamma,
                                float *dbeta, float *coef)
{
    GRID_STRIDE(ch, (size_t)c)
    bn_bwd_coef((int)ch, split, m, part, gamma, save_invstd, dgamma, dbeta, coef + 3 * ch);
}

__global__ void k_bn_bwd_apply(size_t total, int c, int hw, const float *x, const float *dy,
                               const float *save_mean, const float *coef, float *dx, int acc)
{
    GRID_STRIDE(i, total)
    {
        const int ch = (int)((i / hw) % c);
        const float v = coef[3 * ch] * dy[i] + coef[3 * ch + 1] * (x[i] - save_mean[ch]) +
                        coef[3 * ch + 2];
        dx[i] = acc ? dx[i] + v : v;
    }
}

/* The finish and apply kernels in one (cu_bn_fused): each block takes
 * CU_THREADS consecutive elements at a time, computes the coefficients of
 * the (n, c) planes they fall in (at most CU_THREADS/hw + 2) from the
 * partial sums, as the finish kernel does, then applies them. A channel's
 * saved and running statistics (forward) or dgamma and dbeta (backward) are
 * written once, by the block that holds the channel's first element of
 * sample 0. The same arithmetic as the three kernels, bit for bit, with one
 * launch fewer per batch norm (two per training step's batch norm: 72 of
 * the ResNet-like cell's ~610 kernels a step). */
enum { BN_CHUNK_PLANES = CU_THREADS + 2 };

/* the chunk [base, base + CU_THREADS) of total: its first plane, its plane count */
__device__ int bn_chunk(size_t base, size_t total, int hw, size_t &p0)
{
    const size_t last = (base + CU_THREADS < total ? base + CU_THREADS : total) - 1;
    p0 = base / hw;
    return (int)(last / hw - p0 + 1);
}

__global__ void k_bn_train_apply(size_t total, int c, int hw, int split, double m,
                                 const double *part, const float *gamma, const float *beta,
                                 float *save_mean, float *save_invstd, float *running_mean,
                                 float *running_var, float momentum, float eps, const float *x,
                                 float *y, int acc)
{
    __shared__ float sc[2 * BN_CHUNK_PLANES];
    for (size_t base = (size_t)blockIdx.x * CU_THREADS; base < total;
         base += (size_t)gridDim.x * CU_THREADS) {
        size_t p0;
        const int np = bn_chunk(base, total, hw, p0);
        for (int q = threadIdx.x; q < np; q += CU_THREADS) {
            const size_t p = p0 + q;
            const bool first = p < (size_t)c && p * hw >= base;
            bn_train_coef((int)(p % c), split, m, part, gamma, beta, first ? save_mean : NULL,
                          first ? save_invstd : NULL, first ? running_mean : NULL,
                          first ? running_var : NULL, momentum, eps, sc + 2 * q);
        }
        __syncthreads();
        const size_t i = base + threadIdx.x;
        if (i < total) {
            const int q = (int)(i / hw - p0);
            float v = x[i] * sc[2 * q] + sc[2 * q + 1];
            y[i] = acc ? y[i] + v : v;
        }
        __syncthreads();
    }
}

__global__ void k_bn_bwd_apply_fused(size_t total, int c, int hw, int split, double m,
                                     const double *part, const float *gamma,
                                     const float *save_mean, const float *save_invstd,
                                     float *dgamma, float *dbeta, const float *x,
                                     const float *dy, float *dx, int acc)
{
    __shared__ float sc[3 * BN_CHUNK_PLANES];
    for (size_t base = (size_t)blockIdx.x * CU_THREADS; base < total;
         base += (size_t)gridDim.x * CU_THREADS) {
        size_t p0;
        const int np = bn_chunk(base, total, hw, p0);
        for (int q = threadIdx.x; q < np; q += CU_THREADS) {
            const size_t p = p0 + q;
            const bool first = p < (size_t)c && p * hw >= base;
            bn_bwd_coef((int)(p % c), split, m, part, gamma, save_invstd,
                        first ? dgamma : NULL, first ? dbeta : NULL, sc + 3 * q);
        }
        __syncthreads();
        const size_t i = base + threadIdx.x;
        if (i < total) {
            const int q = (int)(i / hw - p0), ch = (int)((i / hw) % c);
            const float v =
                sc[3 * q] * dy[i] + sc[3 * q + 1] * (x[i] - save_mean[ch]) + sc[3 * q + 2];
            dx[i] = acc ? dx[i] + v : v;
        }
        __syncthreads();
    }
}

/* RMINAS_CUDA_BN_FUSED=0: the three kernels (set by cu_init; the tests
 * compare both) */
static int cu_bn_fused = 1;

static void cu_bn_forward_train(int n, int c, int hw, const float *x, const float *gamma,
                                const float *beta, float *y, int acc, float *save_mean,
                                float *save_invstd, float *running_mean, float *running_var,
                                float momentum, float eps)
{
    if (n <= 0 || c <= 0 || hw <= 0)
        return;
    const int split = bn_split(n, c, hw);
    if (!split)
        return;
    const size_t total = (size_t)n * c * hw;
    CU_LAUNCH(k_bn_partial, dim3(split, c), CU_THREADS, n, c, hw, split, x, (const float *)NULL,
              (const float *)NULL, cu.bn_part);
    if (cu_bn_fused) {
        CU_LAUNCH(k_bn_train_apply, cu_blocks(total), CU_THREADS, total, c, hw, split,
                  (double)n * hw, cu.bn_part, gamma, beta, save_mean, save_invstd, running_mean,
                  running_var, momentum, eps, x, y, acc);
        return;
    }
    CU_LAUNCH(k_bn_train_finish, cu_blocks(c), CU_THREADS, c, split, (double)n * hw, cu.bn_part,
              gamma, beta, save_mean, save_invstd, running_mean, running_var, momentum, eps,
              cu.bn_coef);
    CU_LAUNCH(k_bn_apply, cu_blocks(total), CU_THREADS, total, c, hw, x, cu.bn_coef, y, acc);
}

static void cu_bn_forward_eval(int n, int c, int hw, const float *x, const float *gamma,
                               const float *beta, float *y, int acc,
                               const float *running_mean, const float *running_var, float eps)
{
    if (n <= 0 || c <= 0 || hw <= 0)
        return;
    if (!bn_split(1, c, 1))
        return;
    const size_t total = (size_t)n * c * hw;
    CU_LAUNCH(k_bn_eval_coef, cu_blocks(c), CU_THREADS, c, gamma, beta, running_mean,
              running_var, eps, cu.bn_coef);
    CU_LAUNCH(k_bn_apply, cu_blocks(total), CU_THREADS, total, c, hw, x, cu.bn_coef, y, acc);
}

static void cu_bn_backward(int n, int c, int hw, const float *x, const float *gamma,
                           const float *save_mean, const float *save_invstd, const float *dy,
                           float *dx, float *dgamma, float *dbeta, int dx_acc)
{
    if (n <= 0 || c <= 0 || hw <= 0)
        return;
    const int split = bn_split(n, c, hw);
    if (!split)
        return;
    const size_t total = (size_t)n * c * hw;
    CU_LAUNCH(k_bn_partial, dim3(split, c), CU_THREADS, n, c, hw, split, x, dy, save_mean,
              cu.bn_part);
    if (cu_bn_fused && dx) {
        CU_LAUNCH(k_bn_bwd_apply_fused, cu_blocks(total), CU_THREADS, total, c, hw, split,
                  (double)n * hw, cu.bn_part, gamma, save_mean, save_invstd, dgamma, dbeta, x,
                  dy, dx, dx_acc);
        return;
    }
    CU_LAUNCH(k_bn_bwd_finish, cu_blocks(c), CU_THREADS, c, split, (double)n * hw, cu.bn_part,
              gamma, save_invstd, dgamma, dbeta, cu.bn_coef);
    if (dx)
        CU_LAUNCH(k_bn_bwd_apply, cu_blocks(total), CU_THREADS, total, c, hw, x, dy, save_mean,
                  cu.bn_coef, dx, dx_acc);
}

/* ---- pooling: one thread per output (forward) or input (backward) ---- */

/* in-image rows [lo, hi) of output o's window; the window clipped to the
 * padded image in padded (cpu_pool.c) */
__device__ void pool_window(int o, int stride, int pad, int k, int len, int &lo, int &hi,
                            int &padded)
{
    int start = o * stride - pad, end = start + k;
    if (end > len + pad)
        end = len + pad;
    padded = end - start;
    lo = start < 0 ? 0 : start;
    hi = end > len ? len : end;
}

__global__ void k_avgpool(pool_desc d, const float *x, float *y, int acc)
{
    const size_t total = (size_t)d.n * d.c * d.oh * d.ow;
    GRID_STRIDE(o, total)
    {
        const int ox = o % d.ow, oy = (o / d.ow) % d.oh;
        const size_t p = o / ((size_t)d.oh * d.ow);
        const float *xp = x + p * d.h * d.w;
        int y0, y1, ph, x0, x1, pw;
        pool_window(oy, d.stride, d.pad, d.k, d.h, y0, y1, ph);
        pool_window(ox, d.stride, d.pad, d.k, d.w, x0, x1, pw);
        float s = 0.f;
        for (int iy = y0; iy < y1; iy++)
            for (int ix = x0; ix < x1; ix++)
                s += xp[iy * d.w + ix];
        int cnt = d.count_include_pad ? ph * pw : (y1 - y0) * (x1 - x0);
        float v = s / (float)cnt;
        y[o] = acc ? y[o] + v : v;
    }
}

/* the outputs whose window holds input i along one dimension: [*a, *b] */
__device__ void pool_outputs(int i, int stride, int pad, int k, int olen, int &a, int &b)
{
    int hi = i + pad, lo = i + pad - k + 1; /* o*stride in [lo, hi] */
    a = lo <= 0 ? 0 : (lo + stride - 1) / stride;
    b = hi / stride;
    if (b > olen - 1)
        b = olen - 1;
}

__global__ void k_avgpool_bwd(pool_desc d, const float *dy, float *dx)
{
    const size_t total = (size_t)d.n * d.c * d.h * d.w;
    GRID_STRIDE(i, total)
    {
        const int ix = i % d.w, iy = (i / d.w) % d.h;
        const size_t p = i / ((size_t)d.h * d.w);
        const float *dyp = dy + p * d.oh * d.ow;
        int oy0, oy1, ox0, ox1;
        pool_outputs(iy, d.stride, d.pad, d.k, d.oh, oy0, oy1);
        pool_outputs(ix, d.stride, d.pad, d.k, d.ow, ox0, ox1);
        float s = 0.f;
        for (int oy = oy0; oy <= oy1; oy++) {
            int y0, y1, ph;
            pool_window(oy, d.stride, d.pad, d.k, d.h, y0, y1, ph);
            if (iy < y0 || iy >= y1)
                continue;
            for (int ox = ox0; ox <= ox1; ox++) {
                int x0, x1, pw;
                pool_window(ox, d.stride, d.pad, d.k, d.w, x0, x1, pw);
                if (ix < x0 || ix >= x1)
                    continue;
                int cnt = d.count_include_pad ? ph * pw : (y1 - y0) * (x1 - x0);
                s += dyp[oy * d.ow + ox] / (float)cnt;
            }
        }
        dx[i] += s;
    }
}

__global__ void k_maxpool(pool_desc d, const float *x, float *y, int acc, int32_t *argmax)
{
    const size_t total = (size_t)d.n * d.c * d.oh * d.ow;
    GRID_STRIDE(o, total)
    {
        const int ox = o % d.ow, oy = (o / d.ow) % d.oh;
        const size_t p = o / ((size_t)d.oh * d.ow);
        const float *xp = x + p * d.h * d.w;
        int y0, y1, ph, x0, x1, pw;
        pool_window(oy, d.stride, d.pad, d.k, d.h, y0, y1, ph);
        pool_window(ox, d.stride, d.pad, d.k, d.w, x0, x1, pw);
        float best = -INFINITY;
        int32_t at = y0 * d.w + x0;
        for (int iy = y0; iy < y1; iy++)
            for (int ix = x0; ix < x1; ix++) {
                float v = xp[iy * d.w + ix];
                if (v > best || v != v) { /* NaN wins (the last one), as on the CPU */
                    best = v;
                    at = iy * d.w + ix;
                }
            }
        y[o] = acc ? y[o] + best : best;
        if (argmax)
            argmax[o] = at;
    }
}

/* gather: every output whose saved argmax is this input */
__global__ void k_maxpool_bwd(pool_desc d, const float *dy, const int32_t *argmax, float *dx)
{
    const size_t total = (size_t)d.n * d.c * d.h * d.w;
    GRID_STRIDE(i, total)
    {
        const int ix = i % d.w, iy = (i / d.w) % d.h;
        const size_t p = i / ((size_t)d.h * d.w), ohw = (size_t)d.oh * d.ow;
        const int32_t me = iy * d.w + ix;
        int oy0, oy1, ox0, ox1;
        pool_outputs(iy, d.stride, d.pad, d.k, d.oh, oy0, oy1);
        pool_outputs(ix, d.stride, d.pad, d.k, d.ow, ox0, ox1);
        float s = 0.f;
        for (int oy = oy0; oy <= oy1; oy++)
            for (int ox = ox0; ox <= ox1; ox++) {
                size_t o = p * ohw + (size_t)oy * d.ow + ox;
                if (argmax[o] == me)
                    s += dy[o];
            }
        dx[i] += s;
    }
}

static void cu_avgpool_forward(const pool_desc *d, const float *x, float *y, int acc)
{
    size_t n = (size_t)d->n * d->c * d->oh * d->ow;
    if (n)
        CU_LAUNCH(k_avgpool, cu_blocks(n), CU_THREADS, *d, x, y, acc);
}

static void cu_avgpool_backward(const pool_desc *d, const float *dy, float *dx)
{
    size_t n = (size_t)d->n * d->c * d->h * d->w;
    if (n)
        CU_LAUNCH(k_avgpool_bwd, cu_blocks(n), CU_THREADS, *d, dy, dx);
}

static void cu_maxpool_forward(const pool_desc *d, const float *x, float *y, int acc,
                               int32_t *argmax)
{
    size_t n = (size_t)d->n * d->c * d->oh * d->ow;
    if (n)
        CU_LAUNCH(k_maxpool, cu_blocks(n), CU_THREADS, *d, x, y, acc, argmax);
}

static void cu_maxpool_backward(const pool_desc *d, const float *dy, const int32_t *argmax,
                                float *dx)
{
    size_t n = (size_t)d->n * d->c * d->h * d->w;
    if (n)
        CU_LAUNCH(k_maxpool_bwd, cu_blocks(n), CU_THREADS, *d, dy, argmax, dx);
}

/* ---- global average pool, linear, shortcut ---- */

__global__ void k_gap(size_t planes, int hw, const float *x, float *y)
{
    GRID_STRIDE(p, planes)
    {
        const float *xp = x + p * hw;
        double s = 0.;
        for (int j = 0; j < hw; j++)
            s += xp[j];
        y[p] = (float)(s / hw);
    }
}

__global__ void k_gap_bwd(size_t total, int hw, const float *dy, float *dx)
{
    GRID_STRIDE(i, total) dx[i] += dy[i / hw] / (float)hw;
}

static void cu_gap_forward(int n, int c, int hw, const float *x, float *y)
{
    size_t planes = (size_t)n * c;
    if (planes && hw > 0)
        CU_LAUNCH(k_gap, cu_blocks(planes), CU_THREADS, planes, hw, x, y);
}

static void cu_gap_backward(int n, int c, int hw, const float *dy, float *dx)
{
    size_t total = (size_t)n * c * hw;
    if (total)
        CU_LAUNCH(k_gap_bwd, cu_blocks(total), CU_THREADS, total, hw, dy, dx);
}

__global__ void k_rows_set(int n, int out, const float *b, float *y)
{
    GRID_STRIDE(i, (size_t)n * out) y[i] = b[i % out];
}

__global__ void k_colsum_add(int n, int out, const float *dy, float *db)
{
    GRID_STRIDE(o, (size_t)out)
    {
        double s = 0.;
        for (int i = 0; i < n; i++)
            s += dy[(size_t)i * out + o];
        db[o] += (float)s;
    }
}

__global__ void k_shortcut_a(int n, int cin, int h, int w, int padc, const float *x, float *y,
                             int acc)
{
    const int cout = cin + 2 * padc, oh = h / 2, ow = w / 2;
    GRID_STRIDE(o, (size_t)n * cout * oh * ow)
    {
        const int ox = o % ow, oy = (o / ow) % oh;
        const size_t pc = o / ((size_t)oh * ow);
        const int c = (int)(pc % cout) - padc;
        const size_t i = pc / cout;
        float v = 0.f;
        if (c >= 0 && c < cin)
            v = x[((i * cin + c) * h + 2 * oy) * w + 2 * ox];
        y[o] = acc ? y[o] + v : v;
    }
}

__global__ void k_shortcut_a_bwd(int n, int cin, int h, int w, int padc, const float *dy,
                                 float *dx)
{
    const int cout = cin + 2 * padc, oh = h / 2, ow = w / 2;
    GRID_STRIDE(t, (size_t)n * cin * oh * ow)
    {
        const int ox = t % ow, oy = (t / ow) % oh;
        const size_t pc = t / ((size_t)oh * ow);
        const int c = (int)(pc % cin);
        const size_t i = pc / cin;
        dx[((i * cin + c) * h + 2 * oy) * w + 2 * ox] +=
            dy[((i * cout + c + padc) * oh + oy) * ow + ox];
    }
}

static void cu_shortcut_a_forward(int n, int cin, int h, int w, int padc, const float *x,
                                  float *y, int acc)
{
    size_t total = (size_t)n * (cin + 2 * padc) * (h / 2) * (w / 2);
    if (total)
        CU_LAUNCH(k_shortcut_a, cu_blocks(total), CU_THREADS, n, cin, h, w, padc, x, y, acc);
}

static void cu_shortcut_a_backward(int n, int cin, int h, int w, int padc, const float *dy,
                                   float *dx)
{
    size_t total = (size_t)n * cin * (h / 2) * (w / 2);
    if (total)
        CU_LAUNCH(k_shortcut_a_bwd, cu_blocks(total), CU_THREADS, n, cin, h, w, padc, dy, dx);
}

__global__ void k_slice(int n, int c, int h, int w, int off, int step, int oh, int ow,
                        const float *x, int yc, int yoff, float *y, int acc)
{
    GRID_STRIDE(t, (size_t)n * c * oh * ow)
    {
        const int ox = t % ow, oy = (t / ow) % oh;
        const size_t pc = t / ((size_t)oh * ow);
        const int ch = (int)(pc % c);
        const size_t i = pc / c;
        const float v = x[((i * c + ch) * h + off + oy * step) * w + off + ox * step];
        float *yo = y + ((i * yc + yoff + ch) * oh + oy) * ow + ox;
        *yo = acc ? *yo + v : v;
    }
}

__global__ void k_slice_bwd(int n, int c, int h, int w, int off, int step, int oh, int ow,
                            const float *dy, int yc, int yoff, float *dx)
{
    GRID_STRIDE(t, (size_t)n * c * oh * ow)
    {
        const int ox = t % ow, oy = (t / ow) % oh;
        const size_t pc = t / ((size_t)oh * ow);
        const int ch = (int)(pc % c);
        const size_t i = pc / c;
        dx[((i * c + ch) * h + off + oy * step) * w + off + ox * step] +=
            dy[((i * yc + yoff + ch) * oh + oy) * ow + ox];
    }
}

static void cu_slice_forward(int n, int c, int h, int w, int off, int step, const float *x,
                             int yc, int yoff, float *y, int acc)
{
    const int oh = (h - off + step - 1) / step, ow = (w - off + step - 1) / step;
    size_t total = (size_t)n * c * oh * ow;
    if (total)
        CU_LAUNCH(k_slice, cu_blocks(total), CU_THREADS, n, c, h, w, off, step, oh, ow, x, yc,
                  yoff, y, acc);
}

static void cu_slice_backward(int n, int c, int h, int w, int off, int step, const float *dy,
                              int yc, int yoff, float *dx)
{
    const int oh = (h - off + step - 1) / step, ow = (w - off + step - 1) / step;
    size_t total = (size_t)n * c * oh * ow;
    if (total)
        CU_LAUNCH(k_slice_bwd, cu_blocks(total), CU_THREADS, n, c, h, w, off, step, oh, ow, dy,
                  yc, yoff, dx);
}

/* ---- Gram matrices ---- */

/* copy the upper triangle (column-major) onto the lower: exactly symmetric */
__global__ void k_symmetrize(int n, float *k)
{
    GRID_STRIDE(t, (size_t)n * n)
    {
        int r = t % n, c = t / n;
        if (r > c)
            k[t] = k[(size_t)r * n + c];
    }
}

/* ---- loss ---- */

/* Sample i's loss, logsumexp(z) - z[label] in double (NaN for a label
 * outside [0,k)), and when dlogits != NULL its row of
 * scale * (softmax - onehot) / n. */
__device__ double ce_sample(int n, int k, const float *logits, const int32_t *labels, size_t i,
                            float *dlogits, float scale)
{
    const float *z = logits + i * k;
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
    if (dlogits) {
        float *g = dlogits + i * k;
        const double f = (double)scale / n;
        for (int j = 0; j < k; j++)
            g[j] = valid ? (float)(f * (exp(z[j] - lse) - (j == lab))) : NAN;
    }
    return valid ? lse - z[valid ? lab : 0] : (double)NAN;
}

__global__ void k_softmax_ce(int n, int k, const float *logits, const int32_t *labels,
                             double *loss, float *dlogits, float scale)
{
    GRID_STRIDE(i, (size_t)n) loss[i] = ce_sample(n, k, logits, labels, i, dlogits, scale);
}


/* The same with the mean left on the device (a training step that does
 * not wait for the host): one block, per-sample losses summed in double. */
__global__ void k_softmax_ce_mean(int n, int k, const float *logits, const int32_t *labels,
                                  float *dlogits, float scale, double *mean)
{
    __shared__ double sh[2 * CU_THREADS];
    double tot = 0., unused = 0.;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        tot += ce_sample(n, k, logits, labels, (size_t)i, dlogits, scale);
    block_sum2(tot, unused, sh);
    if (threadIdx.x == 0)
        *mean = tot / n;
}

static void cu_softmax_ce_dev(int n, int k, const float *logits, const int32_t *labels,
                              float *dlogits, float scale, double *mean)
{
    if (n > 0)
        CU_LAUNCH(k_softmax_ce_mean, 1, CU_THREADS, n, k, logits, labels, dlogits, scale, mean);
}

/* ---- CKA of two Gram matrices (rmi/cka.c on the device) ---- */

/* One block; dynamic shared memory holds 4n doubles: the column means of K
 * and L (zero when uncentered) and the row and column means of the
 * gradient matrix A = Lc/(|Kc||Lc|) - cka*Kc/|Kc|^2. */
__global__ void k_cka(int n, const float *K, const float *L, int centered, float scale,
                      float *dK, double *out)
{
    CU_SHARED_DYNAMIC(double, sm);
    __shared__ double sh[2 * CU_THREADS];
    __shared__ double gK, gL, gA;
    double *mK = sm, *mL = sm + n, *rA = sm + 2 * n, *cA = sm + 3 * n;
    const int tid = threadIdx.x;
    const size_t nn = (size_t)n * n;
    for (int j = tid; j < n; j += blockDim.x) {
        double sk = 0., sl = 0.;
        for (int i = 0; i < n; i++) {
            sk += K[(size_t)i * n + j];
            sl += L[(size_t)i * n + j];
        }
        mK[j] = centered ? sk / n : 0.;
        mL[j] = centered ? sl / n : 0.;
    }
    __syncthreads();
    if (tid == 0) {
        double a = 0., b = 0.;
        for (int j = 0; j < n; j++) {
            a += mK[j];
            b += mL[j];
        }
        gK = a / n;
        gL = b / n;
    }
    __syncthreads();
    double kk = 0., ll = 0., kl = 0.;
    for (size_t t = tid; t < nn; t += blockDim.x) {
        const int i = (int)(t / n), j = (int)(t % n);
        double kc = (double)K[t] - mK[i] - mK[j] + gK;
        double lc = (double)L[t] - mL[i] - mL[j] + gL;
        kk += kc * kc;
        ll += lc * lc;
        kl += kc * lc;
    }
    block_sum2(kk, ll, sh);
    __syncthreads();
    double unused = 0.;
    block_sum2(kl, unused, sh);
    const double nk = sqrt(kk), nl = sqrt(ll);
    const double cka = (kk == 0. || ll == 0.) ? (double)NAN : kl / (nk * nl);
    if (tid == 0)
        *out = cka;
    if (!dK)
        return;
    if (cka != cka) {
        for (size_t t = tid; t < nn; t += blockDim.x)
            dK[t] = NAN;
        return;
    }
    const double a = 1. / (nk * nl), b = cka / kk;
    if (centered) {
        /* row i of A sums to rA[i]*n, column j to cA[j]*n */
        for (int i = tid; i < n; i += blockDim.x) {
            double r = 0., c = 0.;
            for (int j = 0; j < n; j++) {
                r += a * ((double)L[(size_t)i * n + j] - mL[i] - mL[j] + gL) -
                     b * ((double)K[(size_t)i * n + j] - mK[i] - mK[j] + gK);
                c += a * ((double)L[(size_t)j * n + i] - mL[j] - mL[i] + gL) -
                     b * ((double)K[(size_t)j * n + i] - mK[j] - mK[i] + gK);
            }
            rA[i] = r / n;
            cA[i] = c / n;
        }
        __syncthreads();
        if (tid == 0) {
            double g = 0.;
            for (int i = 0; i < n; i++)
                g += rA[i];
            gA = g / n;
        }
    } else if (tid == 0) {
        for (int i = 0; i < n; i++)
            rA[i] = cA[i] = 0.;
        gA = 0.;
    }
    __syncthreads();
    for (size_t t = tid; t < nn; t += blockDim.x) {
        const int i = (int)(t / n), j = (int)(t % n);
        double kc = (double)K[t] - mK[i] - mK[j] + gK;
        double lc = (double)L[t] - mL[i] - mL[j] + gL;
        double A = a * lc - b * kc;
        dK[t] = (float)(A - rA[i] - cA[j] + gA) * scale;
    }
}

static void cu_cka(int n, const float *K, const float *L, int centered, float scale, float *dK,
                   double *out)
{
    if (n <= 0)
        return;
    size_t shmem = 4 * (size_t)n * sizeof(double);
    if (shmem > 40 * 1024) {
        cu_fail(__FILE__, __LINE__, "cu_cka", "batch too large for the device CKA (at most 1280)");
        return;
    }
    CU_LAUNCH_SHMEM(k_cka, 1, CU_THREADS, shmem, n, K, L, centered, scale, dK, out);
}

/* ---- optimizer ---- */

__global__ void k_sgd(float *p, const float *g, float *buf, size_t n, float lr, float momentum,
                      float wd, int mode, const double *unless, int nunless)
{
    for (int k = 0; k < nunless; k++)
        if (!isfinite(unless[k]))
            return;
    GRID_STRIDE(i, n)
    {
        const float d = g[i] + wd * p[i];
        if (mode == 0) { /* no momentum */
            p[i] -= lr * d;
        } else if (mode == 1) { /* first step: buf = d */
            buf[i] = d;
            p[i] -= lr * d;
        } else {
            const float b = momentum * buf[i] + d;
            buf[i] = b;
            p[i] -= lr * b;
        }
    }
}

static void cu_sgd_step(float *p, const float *g, float *buf, size_t n, float lr,
                        float momentum, float wd, int first, const double *unless, int nunless)
{
    if (n)
        CU_LAUNCH(k_sgd, cu_blocks(n), CU_THREADS, p, g, buf, n, lr, momentum, wd,
                  momentum == 0.f ? 0 : first ? 1 : 2, unless, unless ? nunless : 0);
}
