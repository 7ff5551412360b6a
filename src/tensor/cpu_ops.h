/* Internal to the CPU backend: the entries of its table, defined across
 * cpu.c (memory, elementwise, small layers, loss, optimizer), cpu_conv.c,
 * cpu_bn.c and cpu_pool.c. The contracts are those of backend.h. */
#ifndef RM_CPU_OPS_H
#define RM_CPU_OPS_H

#include "tensor/backend.h"

/* Threads for OpenMP regions (backend_cpu_threads(), initialized on first
 * use, which also makes BLAS single-threaded). */
int cpu_threads(void);
/* The most threads ever used (scratch sizes are planned for it). */
int cpu_max_threads(void);

/* Hot loops of our own (BLAS picks its kernels itself) are compiled twice,
 * for AVX2+FMA and for the baseline, and chosen at load time (GCC ifunc):
 * 1.6x on depthwise convolutions without asking the build for -march. */
#if defined(__GNUC__) && __GNUC__ >= 12 && !defined(__clang__) && \
    defined(__x86_64__) && defined(__ELF__) && !defined(RM_NO_TARGET_CLONES)
#define CPU_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define CPU_HOT
#endif

/* Elementwise loops parallelize only above this many values: below it, the
 * cost of waking threads exceeds the work. */
#define CPU_PAR_MIN 32768

size_t cpu_conv_work_size(const conv_desc *d);
void cpu_conv2d_forward(const conv_desc *d, const float *x, const float *w,
                        const float *b, float *y, int acc, float *work);
void cpu_conv2d_backward(const conv_desc *d, const float *x, const float *w,
                         const float *dy, float *dx, float *dw, float *db,
                         float *work);

/* Below this many multiply-adds a convolution runs on one thread: a fork
 * and join costs more than the work, and far more when the cores are shared
 * (OpenMP threads spin at the barrier while a sibling waits to be run). */
#define CPU_CONV_PAR_MIN_MACS (1L << 18)
/* the multiply-adds of a convolution (cpu_conv.c) */
double cpu_conv_macs(const conv_desc *d);
/* Output positions o in [*lo, *hi) of [0, out) that read input o*stride + off
 * within [0, len) (cpu_conv.c). */
void cpu_conv_range(int off, int stride, int len, int out, int *lo, int *hi);

/* Depthwise convolutions (stride up to 4) on padded planes (cpu_dw.c), which
 * cpu_conv2d_* run where cpu_dwp_ok(d); the work size is their own. */
int cpu_dwp_ok(const conv_desc *d);
size_t cpu_dwp_work_size(const conv_desc *d);
void cpu_dwp_forward(const conv_desc *d, const float *x, const float *w, const float *b,
                     float *y, int acc, float *work);
void cpu_dwp_backward(const conv_desc *d, const float *x, const float *w, const float *dy,
                      float *dx, float *dw, float *db, float *work);

/* db += the sum of dy per output channel (cpu_conv.c; every implementation
 * uses it) */
void cpu_conv_bias_grad(const conv_desc *d, const float *dy, float *db);
/* The same three on oneDNN (cpu_conv_dnnl.c, built with HAVE_DNNL). Their
 * work size also covers the im2col functions, which they fall back to for
 * a shape oneDNN refuses. */
size_t cpu_dnnl_conv_work_size(const conv_desc *d);
void cpu_dnnl_conv2d_forward(const conv_desc *d, const float *x, const float *w,
                             const float *b, float *y, int acc, float *work);
void cpu_dnnl_conv2d_backward(const conv_desc *d, const float *x, const float *w,
                              const float *dy, float *dx, float *dw, float *db,
                              float *work);
/* 1 when oneDNN refused d (at the current thread count), or failed once
 * running it: those calls go to im2col. For the tests. */
int cpu_dnnl_conv_refused(const conv_desc *d);
/* For the tests, the paths oneDNN rarely takes: 1 adds results by plain
 * temporaries and loops instead of sum reorders, 2 refuses every shape (so
 * im2col runs); 0 (the default) back to normal. Not thread-safe. */
void cpu_dnnl_conv_test_mode(int mode);
/* 1: oneDNN's Winograd algorithm for 3x3, stride-1, undilated, ungrouped
 * shapes (where it accepts them), 0: direct convolutions everywhere (the
 * default); cpu_dnnl_conv_winograd says whether d runs on Winograd now. */
void cpu_dnnl_conv_set_winograd(int on);
int cpu_dnnl_conv_winograd(const conv_desc *d);
/* The calling thread's primitives from now on: threads of different slots
 * never wait for each other's (cpu_thread_begin). */
void cpu_dnnl_conv_set_slot(int slot);
/* Our own Winograd F(m x m, 3x3), m = 2 or 4 (cpu_wino.c, AVX2 + FMA): 3x3,
 * stride 1, padding 1, undilated, ungrouped, channels in multiples of 8, on
 * a CPU with AVX2 and FMA (cpu_wino_ok). The table runs it under
 * "winograd2" and "winograd4" (oneDNN builds only, for the other shapes);
 * cpu_conv_uses_wino says whether it runs d now, and with which m. The work
 * size covers both m. */
int cpu_wino_ok(const conv_desc *d);
/* The tile size winograd4 runs d with: 4 where a sample has 16 tiles of
 * 4x4 or more (outputs of 16x16 and up; below, its products are too short
 * and F(2x2, 3x3) measured faster), else 2. */
int cpu_wino_tile(const conv_desc *d);
size_t cpu_wino_work_size(const conv_desc *d);
void cpu_wino_conv2d_forward(const conv_desc *d, int m, const float *x, const float *w,
                             const float *b, float *y, int acc, float *work);
void cpu_wino_conv2d_backward(const conv_desc *d, int m, const float *x, const float *w,
                              const float *dy, float *dx, float *dw, float *db,
                              float *work);
int cpu_conv_uses_wino(const conv_desc *d);
/* Whether the table's convolution entries run d on oneDNN: built in,
 * selected (backend_cpu_set_conv) and faster at such shapes (cpu.c). */
int cpu_conv_uses_dnnl(const conv_desc *d);
/* The same for the backward, which differs at some depthwise shapes. */
int cpu_conv_uses_dnnl_backward(const conv_desc *d);

void cpu_bn_forward_train(int n, int c, int hw, const float *x,
                          const float *gamma, const float *beta, float *y,
                          int acc, float *save_mean, float *save_invstd,
                          float *running_mean, float *running_var,
                          float momentum, float eps);
void cpu_bn_forward_eval(int n, int c, int hw, const float *x,
                         const float *gamma, const float *beta, float *y,
                         int acc, const float *running_mean,
                         const float *running_var, float eps);
void cpu_bn_backward(int n, int c, int hw, const float *x, const float *gamma,
                     const float *save_mean, const float *save_invstd,
                     const float *dy, float *dx, float *dgamma, float *dbeta, int dx_acc);

void cpu_avgpool_forward(const pool_desc *d, const float *x, float *y, int acc);
void cpu_avgpool_backward(const pool_desc *d, const float *dy, float *dx);
void cpu_maxpool_forward(const pool_desc *d, const float *x, float *y, int acc,
                         int32_t *argmax);
void cpu_maxpool_backward(const pool_desc *d, const float *dy,
                          const int32_t *argmax, float *dx);

void cpu_gram(int n, int p, const float *x, float *k);
void cpu_gram_backward(int n, int p, const float *x, const float *dk, float *dx);

#endif
