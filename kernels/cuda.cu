/* The CUDA backend: the table, the device state and error record, memory,
 * the ops through cuBLAS (linear, Gram matrices), the host's loss, CUDA
 * graphs and threads. Our kernels and the entries that only launch them are
 * in cuda_kernels.cuh, the convolutions (cuDNN) in cuda_conv.cu; all are
 * checked against the CPU backend by tests/test_cuda.c on a GPU, the
 * kernels also on the CPU by tests/test_kernels.cc. */
#include "cuda_ops.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <pthread.h>

thread_local cuda_state cu;

/* ---- errors ---- */

static thread_local char cu_err[512];
static thread_local int cu_err_set;

void cu_fail(const char *file, int line, const char *call, const char *msg)
{
    if (cu_err_set)
        return;
    /* the call's name without its arguments */
    int len = 0;
    while (call[len] && call[len] != '(' && call[len] != '<' && len < 64)
        len++;
    snprintf(cu_err, sizeof cu_err, "CUDA backend, %s:%d: %.*s failed: %s", file, line, len,
             call, msg ? msg : "unknown error");
    cu_err_set = 1;
}

void cu_fail_rt(const char *file, int line, const char *call, cudaError_t e)
{
    const bool first = !cu_err_set;
    cu_fail(file, line, call, cudaGetErrorString(e));
    cudaGetLastError();
    if (first && cudaGetLastError() != cudaSuccess) {
        /* still there after clearing: the device keeps it */
        const size_t n = strlen(cu_err);
        snprintf(cu_err + n, sizeof cu_err - n,
                 " (the GPU stays failed until rminas restarts; a search resumes from its "
                 "state file)");
    }
}

int cu_failed(void) { return cu_err_set; }

/* the record as rm_error, cleared */
static int cu_report(void)
{
    if (!cu_err_set)
        return 0;
    cu_err_set = 0;
    return rm_error("%s", cu_err);
}

static int cu_sync(void)
{
    CU(cudaStreamSynchronize(cu.stream));
    CU(cudaGetLastError());
    return cu_report();
}

/* ---- device-wide waits and captures ----
 * cudaFree, cudaFreeHost and the creation and destruction of streams and
 * library handles wait for the whole device, which invalidates a CUDA graph
 * capture under way in another thread (threads scoring concurrently): a
 * capture holds cu_dev_lock shared, those calls exclusive. A thread never
 * asks for it while it captures itself (such a call in a capture fails the
 * recording, and the step runs op by op, as after any failed recording). */
static pthread_rwlock_t cu_dev_lock = PTHREAD_RWLOCK_INITIALIZER;
static thread_local int cu_capturing;

bool cu_wait_begin(void)
{
    if (cu_capturing)
        return false;
    pthread_rwlock_wrlock(&cu_dev_lock);
    return true;
}

void cu_wait_end(bool held)
{
    if (held)
        pthread_rwlock_unlock(&cu_dev_lock);
}

bool cu_capturing_now(void) { return cu_capturing != 0; }

/* ---- device memory ----
 * From the device's stream-ordered pool (cudaMallocAsync / cudaFreeAsync on
 * the calling thread's stream) where the device has one. cudaMalloc and
 * cudaFree wait for the whole device: with jobs scoring concurrently, each
 * of a score's ~150 frees (and its allocations) would wait for the other
 * jobs' queued steps, and take cu_dev_lock exclusively, holding up their
 * graph captures. The pool keeps what is freed (release threshold: all)
 * and only reuses memory whose free has completed (no dependencies between
 * streams are inserted), so a score's buffers come from the pool and one
 * job never waits for another. RMINAS_CUDA_POOL=0 uses cudaMalloc and
 * cudaFree (for comparisons). While the calling thread records a CUDA graph
 * the plain calls are used (an allocation there fails the recording, as it
 * always did). */
static int cu_dev; /* the device every thread uses */
static bool cu_use_pool;
static cudaMemPool_t cu_pool;

/* cudaMalloc, once more after the pool has given back what it holds
 * unused (the pool keeps everything freed into it; cudaMalloc cannot take
 * from it). The caller holds cu_dev_lock exclusively or is capturing. */
static cudaError_t plain_malloc(void **p, size_t bytes)
{
    cudaError_t e = cudaMalloc(p, bytes);
    if (e == cudaErrorMemoryAllocation && cu_use_pool) {
        cudaGetLastError();
        cudaMemPoolTrimTo(cu_pool, 0);
        e = cudaMalloc(p, bytes);
    }
    return e;
}

static cudaError_t dev_malloc(void **p, size_t bytes)
{
    if (!cu_use_pool || cu_capturing) {
        /* cudaMalloc may wait for the device like cudaFree */
        const bool held = cu_wait_begin();
        const cudaError_t e = plain_malloc(p, bytes);
        cu_wait_end(held);
        return e;
    }
    cudaError_t e = cudaMallocAsync(p, bytes, cu.stream);
    if (e == cudaErrorMemoryAllocation) {
        /* what the pool holds unused goes back to the driver, then once more */
        cudaGetLastError();
        cudaStreamSynchronize(cu.stream);
        cudaMemPoolTrimTo(cu_pool, 0);
        e = cudaMallocAsync(p, bytes, cu.stream);
    }
    return e;
}

/* the call dev_malloc makes, for its failure's message */
static const char *dev_malloc_call(void)
{
    return cu_use_pool && !cu_capturing ? "cudaMallocAsync" : "cudaMalloc";
}

static void dev_free(void *p)
{
    if (cu_use_pool && !cu_capturing) {
        CU(cudaFreeAsync(p, cu.stream));
        return;
    }
    const bool held = cu_wait_begin();
    CU(cudaFree(p));
    cu_wait_end(held);
}

/* The default pool of the device, set up for dev_malloc (cu_init). */
static void cu_pool_init(void)
{
    int pools = 0;
    const char *env = getenv("RMINAS_CUDA_POOL");
    if ((env && !strcmp(env, "0")) ||
        cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, cu_dev) != cudaSuccess ||
        !pools) {
        cudaGetLastError();
        return;
    }
    cudaMemPool_t pool;
    uint64_t keep = UINT64_MAX;
    int no = 0;
    if (cudaDeviceGetDefaultMemPool(&pool, cu_dev) != cudaSuccess ||
        cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep) != cudaSuccess ||
        cudaMemPoolSetAttribute(pool, cudaMemPoolReuseAllowInternalDependencies, &no) !=
            cudaSuccess) {
        cudaGetLastError(); /* plain cudaMalloc then */
        return;
    }
    cu_pool = pool;
    cu_use_pool = true;
}

/* ---- scratch (cu.scratch) ---- */

void *cu_scratch(size_t bytes)
{
    if (bytes <= cu.scratch_n)
        return cu.scratch;
    void *p = NULL;
    if (!CU_AS(dev_malloc(&p, bytes), dev_malloc_call()))
        return NULL;
    if (cu.scratch)
        dev_free(cu.scratch); /* after the work that used it (stream order) */
    cu.scratch = p;
    cu.scratch_n = bytes;
    return p;
}

/* host staging for values the host reads back (the loss; cu.host) */
static void *cu_host(size_t bytes)
{
    if (bytes <= cu.host_n)
        return cu.host;
    void *p = NULL;
    const bool held = cu_wait_begin();
    const bool ok = CU(cudaMallocHost(&p, bytes));
    if (ok && cu.host)
        CU(cudaFreeHost(cu.host));
    cu_wait_end(held);
    if (!ok)
        return NULL;
    cu.host = p;
    cu.host_n = bytes;
    return p;
}

/* ---- memory ---- */

static void *cu_alloc(size_t bytes)
{
    void *p = NULL;
    if (bytes == 0)
        bytes = 16;
    cudaError_t e = dev_malloc(&p, bytes);
    if (e != cudaSuccess && e != cudaErrorMemoryAllocation) {
        /* not memory: the device failed before (a kernel's fault stays) */
        cu_fail_rt(__FILE__, __LINE__, dev_malloc_call(), e);
        cu_report();
        return NULL;
    }
    if (e != cudaSuccess) {
        cudaGetLastError(); /* an allocation failure is not sticky: clear it */
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        rm_error("CUDA out of memory: %zu bytes asked, %zu of %zu free on the GPU (%s)", bytes,
                 free_b, total_b, cudaGetErrorString(e));
        return NULL;
    }
    /* zeroed, and (waited for) usable on every thread's stream, as cudaMalloc's */
    if (!CU(cudaMemsetAsync(p, 0, bytes, cu.stream)) ||
        (cu_use_pool && !cu_capturing && !CU(cudaStreamSynchronize(cu.stream)))) {
        dev_free(p);
        cu_report();
        return NULL;
    }
    return p;
}

static void cu_free(void *p)
{
    if (p)
        dev_free(p);
}

/* Uploads wait for the copy, so the caller may reuse its buffer at once. */
static void cu_upload(void *dst, const void *src, size_t bytes)
{
    if (!bytes)
        return;
    CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cu.stream));
    CU(cudaStreamSynchronize(cu.stream));
}

static void cu_download(void *dst, const void *src, size_t bytes)
{
    if (!bytes)
        return;
    CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cu.stream));
    CU(cudaStreamSynchronize(cu.stream));
}

static void cu_zero(float *x, size_t n)
{
    if (n)
        CU(cudaMemsetAsync(x, 0, n * sizeof *x, cu.stream));
}

static void cu_copy(float *dst, const float *src, size_t n)
{
    if (n && dst != src)
        CU(cudaMemcpyAsync(dst, src, n * sizeof *dst, cudaMemcpyDeviceToDevice, cu.stream));
}

#include "cuda_kernels.cuh"

/* ---- linear, Gram matrices (cuBLAS) ---- */

/* Row-major (n,in) x (out,in)^T through column-major cuBLAS: y^T = w x^T. */
static void cu_linear_forward(int n, int in, int out, const float *x, const float *w,
                              const float *b, float *y)
{
    if (n <= 0 || out <= 0)
        return;
    if (b)
        CU_LAUNCH(k_rows_set, cu_blocks((size_t)n * out), CU_THREADS, n, out, b, y);
    const float one = 1.f, beta = b ? 1.f : 0.f;
    CU(cublasSgemm(cu.blas, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, w, in, x, in, &beta, y,
                   out));
}

static void cu_linear_backward(int n, int in, int out, const float *x, const float *w,
                               const float *dy, float *dx, float *dw, float *db)
{
    if (n <= 0 || out <= 0)
        return;
    const float one = 1.f;
    if (dx) /* dx (n,in) += dy (n,out) w (out,in) */
        CU(cublasSgemm(cu.blas, CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &one, w, in, dy, out,
                       &one, dx, in));
    if (dw) /* dw (out,in) += dy^T x */
        CU(cublasSgemm(cu.blas, CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one, x, in, dy, out,
                       &one, dw, in));
    if (db)
        CU_LAUNCH(k_colsum_add, cu_blocks(out), CU_THREADS, n, out, dy, db);
}

/* Row-major x (n,p) is column-major x^T (p,n): k = (x^T)^T x^T, by a GEMM
 * (cuBLAS splits long thin GEMMs like 32 x 32 x 16384 over the GPU; syrk
 * is the less tuned routine), then the upper triangle copied onto the
 * lower. */
static void cu_gram(int n, int p, const float *x, float *k)
{
    if (n <= 0)
        return;
    if (p <= 0) {
        cu_zero(k, (size_t)n * n);
        return;
    }
    const float one = 1.f, zero = 0.f;
    CU(cublasSgemm(cu.blas, CUBLAS_OP_T, CUBLAS_OP_N, n, n, p, &one, x, p, x, p, &zero, k, n));
    CU_LAUNCH(k_symmetrize, cu_blocks((size_t)n * n), CU_THREADS, n, k);
}

/* dx += dk x + dk^T x; in column-major terms dx^T += x^T dk^T + x^T dk, and
 * the stored row-major dk read column-major is dk^T. */
static void cu_gram_backward(int n, int p, const float *x, const float *dk, float *dx)
{
    if (n <= 0 || p <= 0)
        return;
    const float one = 1.f;
    CU(cublasSgemm(cu.blas, CUBLAS_OP_N, CUBLAS_OP_N, p, n, n, &one, x, p, dk, n, &one, dx, p));
    CU(cublasSgemm(cu.blas, CUBLAS_OP_N, CUBLAS_OP_T, p, n, n, &one, x, p, dk, n, &one, dx, p));
}

/* ---- loss ---- */

/* The per-sample losses come back to the host and are summed there in
 * order, as on the CPU. */
static double cu_softmax_ce(int n, int k, const float *logits, const int32_t *labels,
                            double *loss, float *dlogits, float scale)
{
    if (n <= 0)
        return 0.;
    double *dl = (double *)cu_scratch((size_t)n * sizeof(double));
    double *hl = (double *)cu_host((size_t)n * sizeof(double));
    if (!dl || !hl)
        return NAN;
    CU_LAUNCH(k_softmax_ce, cu_blocks(n), CU_THREADS, n, k, logits, labels, dl, dlogits, scale);
    CU(cudaMemcpyAsync(hl, dl, (size_t)n * sizeof(double), cudaMemcpyDeviceToHost, cu.stream));
    if (!CU(cudaStreamSynchronize(cu.stream)))
        return NAN;
    double total = 0.;
    for (int i = 0; i < n; i++) {
        if (loss)
            loss[i] = hl[i];
        total += hl[i];
    }
    return total / n;
}

/* ---- recordings: CUDA graphs of the stream's work ---- */

static int cu_record_begin(void)
{
    if (cu_err_set) {
        /* an operation before failed and no wait has reported it yet: no
         * recording (it would take the failure for its own, and the caller
         * drops that), the operations run directly and the next wait
         * reports the failure */
        return rm_error("CUDA backend: not recording after a failed operation");
    }
    pthread_rwlock_rdlock(&cu_dev_lock);
    cu_capturing = 1;
    if (!CU(cudaStreamBeginCapture(cu.stream, cudaStreamCaptureModeThreadLocal))) {
        cu_capturing = 0;
        pthread_rwlock_unlock(&cu_dev_lock);
        return cu_report();
    }
    return 0;
}

static void *cu_record_end(void)
{
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    cudaError_t e = cudaStreamEndCapture(cu.stream, &graph);
    cu_capturing = 0;
    pthread_rwlock_unlock(&cu_dev_lock);
    if (e == cudaSuccess && !cu_err_set)
        e = cudaGraphInstantiate(&exec, graph, 0);
    if (graph)
        cudaGraphDestroy(graph);
    if (e != cudaSuccess || cu_err_set || !exec) {
        /* what failed inside the capture, or the capture itself */
        if (!cu_err_set)
            cu_fail_rt(__FILE__, __LINE__, "cudaStreamEndCapture/cudaGraphInstantiate", e);
        cudaGetLastError();
        if (exec) {
            const bool held = cu_wait_begin();
            cudaGraphExecDestroy(exec);
            cu_wait_end(held);
        }
        cu_report();
        return NULL;
    }
    return (void *)exec;
}

static void cu_record_run(void *rec)
{
    if (rec)
        CU(cudaGraphLaunch((cudaGraphExec_t)rec, cu.stream));
}

static void cu_record_free(void *rec)
{
    if (!rec)
        return;
    const bool held = cu_wait_begin();
    CU(cudaGraphExecDestroy((cudaGraphExec_t)rec));
    cu_wait_end(held);
}

/* ---- the table ---- */

static backend cu_table;
int cu_tf32;
static int cu_state; /* 0 not tried, 1 ready, -1 failed */
static char cu_init_err[512];

/* The calling thread's stream, handles and buffers (cu); false with the
 * failure recorded, whatever was made kept for cu_thread_free. */
static bool cu_thread_init(void)
{
    cu.device = cu_dev;
    const bool held = cu_wait_begin();
    const bool ok = CU(cudaSetDevice(cu.device)) &&
           CU(cudaStreamCreateWithFlags(&cu.stream, cudaStreamNonBlocking)) &&
           CU(cublasCreate(&cu.blas)) && CU(cublasSetStream(cu.blas, cu.stream)) &&
           CU(cudnnCreate(&cu.dnn)) && CU(cudnnSetStream(cu.dnn, cu.stream)) &&
           /* cuBLAS gets its workspace up front: nothing is allocated while a
            * step is recorded into a CUDA graph */
           CU_AS(plain_malloc((void **)&cu.blas_ws, CU_BLAS_WS), "cudaMalloc") &&
           CU_AS(plain_malloc((void **)&cu.bn_part, 2 * CU_BN_PART * sizeof(double)),
                 "cudaMalloc") &&
           CU_AS(plain_malloc((void **)&cu.bn_coef, 3 * CU_BN_COEF * sizeof(float)),
                 "cudaMalloc") &&
           CU(cublasSetWorkspace(cu.blas, cu.blas_ws, CU_BLAS_WS));
    cu_wait_end(held);
    return ok;
}

/* Everything of cu_thread_init (and the thread's scratch), after its work */
static void cu_thread_free(void)
{
    if (cu.stream)
        CU(cudaStreamSynchronize(cu.stream));
    if (cu.scratch)
        dev_free(cu.scratch);
    const bool held = cu_wait_begin();
    if (cu.host)
        CU(cudaFreeHost(cu.host));
    if (cu.dnn)
        CU(cudnnDestroy(cu.dnn));
    if (cu.blas)
        CU(cublasDestroy(cu.blas));
    if (cu.blas_ws)
        CU(cudaFree(cu.blas_ws));
    if (cu.bn_part)
        CU(cudaFree(cu.bn_part));
    if (cu.bn_coef)
        CU(cudaFree(cu.bn_coef));
    if (cu.stream)
        CU(cudaStreamDestroy(cu.stream));
    cu_wait_end(held);
    memset(&cu, 0, sizeof cu);
}

/* The states of scoring threads, kept by slot from one thread's end to the
 * next thread's begin with the same slot: a search scores its evaluations
 * ahead in groups of `jobs` new threads, and making a stream, the cuBLAS
 * and cuDNN handles and their buffers for each (and cudaFree and handle
 * destruction after, which wait for the whole device) would cost every
 * group that much. A state serves one thread at a time (it is moved out of
 * its slot while in use; stream == NULL: the slot is empty); those kept
 * live with the process. */
enum { CU_SLOTS = 64 };
static cuda_state cu_slots[CU_SLOTS];
static pthread_mutex_t cu_slots_mu = PTHREAD_MUTEX_INITIALIZER;
static thread_local int cu_slot = -1;

/* A scoring thread of its own (backend.h); the first thread's state is
 * kept (it is made once and lives with the process). */
static int cu_thread_begin(int slot)
{
    if (cu.stream)
        return 0;
    cu_slot = slot >= 0 && slot < CU_SLOTS ? slot : -1;
    if (cu_slot >= 0) {
        pthread_mutex_lock(&cu_slots_mu);
        if (cu_slots[cu_slot].stream) {
            cu = cu_slots[cu_slot];
            memset(&cu_slots[cu_slot], 0, sizeof cu);
        }
        pthread_mutex_unlock(&cu_slots_mu);
        if (cu.stream)
            return CU(cudaSetDevice(cu.device)) ? 0 : cu_report();
    }
    if (!cu_thread_init()) {
        cu_thread_free();
        return cu_report();
    }
    return 0;
}

static void cu_thread_end(void)
{
    bool kept = false;
    if (cu_slot >= 0 && cu.stream && !cu_err_set && CU(cudaStreamSynchronize(cu.stream))) {
        pthread_mutex_lock(&cu_slots_mu);
        if (!cu_slots[cu_slot].stream) {
            cu_slots[cu_slot] = cu;
            kept = true;
        }
        pthread_mutex_unlock(&cu_slots_mu);
    }
    if (kept)
        memset(&cu, 0, sizeof cu);
    else
        cu_thread_free();
    cu_slot = -1;
    cu_err_set = 0; /* nothing is left to report it to */
}

static int cu_init(void)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        snprintf(cu_init_err, sizeof cu_init_err, "no CUDA device: %s",
                 e != cudaSuccess ? cudaGetErrorString(e) : "the driver sees no GPU");
        return -1;
    }
    const char *env = getenv("RMINAS_CUDA_DEVICE");
    cu_dev = env ? atoi(env) : 0;
    if (cu_dev < 0 || cu_dev >= count) {
        snprintf(cu_init_err, sizeof cu_init_err,
                 "RMINAS_CUDA_DEVICE=%s: there are %d CUDA devices (0 to %d)", env, count,
                 count - 1);
        return -1;
    }
    cu_pool_init();
    if (!cu_thread_init()) {
        snprintf(cu_init_err, sizeof cu_init_err, "%s", cu_err);
        cu_err_set = 0;
        return -1;
    }
    const char *tf32 = getenv("RMINAS_CUDA_TF32");
    cu_tf32 = tf32 && *tf32 && strcmp(tf32, "0") != 0;
    const char *fused = getenv("RMINAS_CUDA_BN_FUSED"), *keep = getenv("RMINAS_CUDA_KEEP_RELU");
    cu_bn_fused = !(fused && !strcmp(fused, "0"));
    backend *t = &cu_table;
    t->name = "cuda";
    t->math = cu_tf32 ? "tf32" : NULL;
    t->alloc = cu_alloc;
    t->free = cu_free;
    t->upload = cu_upload;
    t->download = cu_download;
    t->zero = cu_zero;
    t->copy = cu_copy;
    t->axpy = cu_axpy;
    t->scale = cu_scale;
    t->conv_work_size = cu_conv_work_size;
    t->conv_keeps_relu = !(keep && !strcmp(keep, "0"));
    t->conv2d_forward = cu_conv2d_forward;
    t->conv2d_backward = cu_conv2d_backward;
    t->bn_forward_train = cu_bn_forward_train;
    t->bn_forward_eval = cu_bn_forward_eval;
    t->bn_backward = cu_bn_backward;
    t->relu_forward = cu_relu_forward;
    t->relu_backward = cu_relu_backward;
    t->avgpool_forward = cu_avgpool_forward;
    t->avgpool_backward = cu_avgpool_backward;
    t->maxpool_forward = cu_maxpool_forward;
    t->maxpool_backward = cu_maxpool_backward;
    t->gap_forward = cu_gap_forward;
    t->gap_backward = cu_gap_backward;
    t->linear_forward = cu_linear_forward;
    t->linear_backward = cu_linear_backward;
    t->shortcut_a_forward = cu_shortcut_a_forward;
    t->shortcut_a_backward = cu_shortcut_a_backward;
    t->slice_forward = cu_slice_forward;
    t->slice_backward = cu_slice_backward;
    t->gram = cu_gram;
    t->gram_backward = cu_gram_backward;
    t->softmax_ce = cu_softmax_ce;
    t->sgd_step = cu_sgd_step;
    t->sync = cu_sync;
    t->softmax_ce_dev = cu_softmax_ce_dev;
    t->cka = cu_cka;
    t->thread_begin = cu_thread_begin;
    t->thread_end = cu_thread_end;
    /* RMINAS_CUDA_GRAPHS=0 runs every step op by op (for comparisons) */
    const char *graphs = getenv("RMINAS_CUDA_GRAPHS");
    if (!graphs || strcmp(graphs, "0") != 0) {
        t->record_begin = cu_record_begin;
        t->record_end = cu_record_end;
        t->record_run = cu_record_run;
        t->record_free = cu_record_free;
    }
    return 0;
}

/* Not thread-safe on the first call (the shell and tests make it from one
 * thread). */
extern "C" const backend *backend_cuda_impl(void)
{
    if (cu_state == 0)
        cu_state = cu_init() == 0 ? 1 : -1;
    if (cu_state < 0) {
        rm_error("%s", cu_init_err);
        return NULL;
    }
    return &cu_table;
}
