/* Internal to the CUDA backend (the kernels/ .cu files, compiled by nvcc as C++): the
 * shared state (device, stream, library handles, scratch), the error record
 * and the entries of the table defined across cuda.cu (memory, elementwise,
 * batch norm, pooling, small layers, Gram matrices, loss, optimizer) and
 * cuda_conv.cu (cuDNN convolutions). The contracts are those of
 * src/tensor/backend.h.
 *
 * Errors: every CUDA, cuBLAS and cuDNN call goes through CU(...), which
 * records the first failure ("file:line: call: message") and carries on; the
 * table's sync entry (and download, softmax_ce, which wait anyway) turns the
 * record into rm_error and -1. Nothing here exits or prints. */
#ifndef RM_CUDA_OPS_H
#define RM_CUDA_OPS_H

#include <cstddef>
#include <cstdint>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

extern "C" {
#include "tensor/backend.h"
#include "util/err.h"
}

/* One device; per thread that issues operations, one stream, one handle of
 * each library and their buffers: the first thread's made at first use,
 * those of threads scoring concurrently by the table's thread_begin (and
 * released by thread_end). */
struct cuda_state {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    cudnnHandle_t dnn;
    void *blas_ws; /* cuBLAS workspace, CU_BLAS_WS bytes */
    double *bn_part; /* batch norm partial sums: 2 * CU_BN_PART doubles */
    float *bn_coef;  /* batch norm per-channel coefficients: 3 * CU_BN_COEF floats */
    void *scratch;   /* cu_scratch's, scratch_n bytes */
    size_t scratch_n;
    void *host; /* pinned staging for values read back, host_n bytes */
    size_t host_n;
};
enum { CU_BLAS_WS = 32 << 20 }; /* CU_BN_PART, CU_BN_COEF: cuda_kernels.cuh */
extern thread_local cuda_state cu;
/* RMINAS_CUDA_TF32=1: convolutions on TF32 tensor cores (cuda_conv.cu); set
 * once by cu_init, before any thread scores. */
extern int cu_tf32;

/* Record a failure (the first one since the calling thread's last sync
 * wins; each thread has its own record). */
void cu_fail(const char *file, int line, const char *call, const char *msg);
/* The same for a CUDA runtime error, which is then cleared from the
 * runtime's own record (or the check after the next launch would take it
 * for that kernel's); an error the device keeps (a kernel's fault: every
 * later call fails) says so in the message. */
void cu_fail_rt(const char *file, int line, const char *call, cudaError_t e);
/* Whether a failure is recorded (for code that must not go on). */
int cu_failed(void);

/* Around calls that wait for the whole device (cudaFree, handle creation,
 * cuDNN's Find, which allocates): holds back other threads' CUDA-graph
 * captures, which such a call would break. Returns whether the lock was
 * taken (false inside the calling thread's own capture). */
bool cu_wait_begin(void);
void cu_wait_end(bool held);
/* Whether the calling thread is recording a CUDA graph. */
bool cu_capturing_now(void);

static inline bool cu_check(cudaError_t e, const char *call, const char *f, int l)
{
    if (e == cudaSuccess)
        return true;
    cu_fail_rt(f, l, call, e);
    return false;
}
static inline bool cu_check(cublasStatus_t e, const char *call, const char *f, int l)
{
    if (e == CUBLAS_STATUS_SUCCESS)
        return true;
    cu_fail(f, l, call, cublasGetStatusString(e));
    return false;
}
static inline bool cu_check(cudnnStatus_t e, const char *call, const char *f, int l)
{
    if (e == CUDNN_STATUS_SUCCESS)
        return true;
    cu_fail(f, l, call, cudnnGetErrorString(e));
    return false;
}
#define CU(call) cu_check((call), #call, __FILE__, __LINE__)
/* the same, the failure named after the CUDA call that our function made */
#define CU_AS(call, name) cu_check((call), (name), __FILE__, __LINE__)

/* Launch on the backend's stream and check the launch itself (with shmem
 * bytes of dynamic shared memory, declared in the kernel by
 * CU_SHARED_DYNAMIC). tests/cuda_emu.h defines the same three for the CPU. */
#ifndef CU_LAUNCH_SHMEM /* tests/fakecuda/fake_launch.h has its own */
#define CU_LAUNCH_SHMEM(kernel, blocks, threads, shmem, ...)                     \
    do {                                                                         \
        kernel<<<(blocks), (threads), (shmem), cu.stream>>>(__VA_ARGS__);        \
        cu_check(cudaGetLastError(), #kernel "<<<>>>", __FILE__, __LINE__);      \
    } while (0)
#define CU_LAUNCH(kernel, blocks, threads, ...)                                  \
    CU_LAUNCH_SHMEM(kernel, blocks, threads, 0, __VA_ARGS__)
#define CU_SHARED_DYNAMIC(type, name) extern __shared__ type name[]
#endif

/* Device scratch owned by the backend (per thread), grown (never shrunk) on demand; the
 * returned memory stays valid until the next call with a larger size. For
 * the per-call temporaries of ops without a work argument (the loss's
 * per-sample values). NULL with the failure recorded. */
void *cu_scratch(size_t bytes);

/* ---- cuda_conv.cu ---- */
size_t cu_conv_work_size(const conv_desc *d);
void cu_conv2d_forward(const conv_desc *d, const float *x, const float *w, const float *b,
                       float *y, int acc, float *work);
void cu_conv2d_backward(const conv_desc *d, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db, float *work, int dx_acc);
/* y = max(x, 0) into work and dx (+)= t * (x > 0): the fused-ReLU halves. */
void cu_relu_copy(const float *x, float *y, size_t n);
void cu_relu_mask(const float *x, const float *t, float *dx, size_t n, int acc);

#endif
