/* CUDA kernels on the CPU, for testing them without a GPU: enough of CUDA's
 * execution model for kernels/cuda_kernels.cuh, compiled by g++.
 *
 * A launch runs its blocks one after another. A block's threads are fibers
 * (ucontext) on the calling thread: each runs until it reaches
 * __syncthreads or returns, then the next one runs; when every thread still
 * running waits at the barrier they all go on. So a kernel that reads what
 * other threads wrote before a barrier sees it, and one that reads it
 * without the barrier reads what was there before (fiber 0 runs first and
 * alone): missing barriers show up as wrong results, deterministically.
 * __shared__ variables are static, in a section of their own, so one copy
 * serves the block's threads (blocks run one at a time); every block starts
 * with all of them, and the dynamic shared memory, filled with 0xff bytes
 * (NaN as doubles and floats), so a read before any write shows. A thread
 * that returns while others wait at a barrier it never reached, or threads
 * waiting at different barriers, are a divergent __syncthreads (undefined
 * on a GPU): the launch is marked failed (emu_failures()). No warps, no
 * atomics, no preemption: a race that needs
 * two threads to interleave between barriers is not found here (the GPU
 * run's tests/test_cuda and compute-sanitizer are for that).
 *
 * Not thread-safe: one launch at a time. */
#ifndef RM_CUDA_EMU_H
#define RM_CUDA_EMU_H

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <math.h>
#include <sys/mman.h>
#include <ucontext.h>

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static __attribute__((section("emu_shared")))
/* the linker's bounds of that section */
extern "C" char __start_emu_shared[], __stop_emu_shared[];

/* the running thread's indices (set before each fiber is resumed) */
static dim3 threadIdx, blockIdx, blockDim, gridDim;

enum { EMU_MAX_THREADS = 1024, EMU_STACK = 256 << 10, EMU_MAX_SHMEM = 48 << 10 };

struct emu_fiber {
    ucontext_t ctx;
    char *stack;
    int done, barriers;
};

static ucontext_t emu_main;
static emu_fiber emu_fibers[EMU_MAX_THREADS];
static int emu_cur, emu_failed;
static const std::function<void()> *emu_body;
static double emu_shmem[EMU_MAX_SHMEM / sizeof(double)];

static void *emu_dynamic_shared(void) { return emu_shmem; }
#define CU_SHARED_DYNAMIC(type, name) type *name = (type *)emu_dynamic_shared()

static inline void __syncthreads(void)
{
    emu_fiber *f = &emu_fibers[emu_cur];
    f->barriers++;
    swapcontext(&f->ctx, &emu_main);
}

static void emu_entry(void)
{
    (*emu_body)();
    emu_fibers[emu_cur].done = 1; /* then uc_link: back to emu_main */
}

/* Launches that went wrong so far: a divergent barrier, too many threads or
 * too much dynamic shared memory, an unusable stack. */
static inline int emu_failures(void) { return emu_failed; }

static void emu_fail(const char *what)
{
    fprintf(stderr, "cuda_emu: %s\n", what);
    emu_failed++;
}

/* One block: every thread as a fiber, in rounds between barriers. */
static void emu_block(unsigned nt)
{
    for (unsigned t = 0; t < nt; t++) {
        emu_fiber *f = &emu_fibers[t];
        if (!f->stack) {
            void *s = mmap(NULL, EMU_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                           -1, 0);
            if (s == MAP_FAILED) {
                emu_fail("no memory for a fiber's stack");
                return;
            }
            f->stack = (char *)s;
        }
        getcontext(&f->ctx);
        f->ctx.uc_stack.ss_sp = f->stack;
        f->ctx.uc_stack.ss_size = EMU_STACK;
        f->ctx.uc_link = &emu_main;
        makecontext(&f->ctx, emu_entry, 0);
        f->done = 0;
        f->barriers = 0;
    }
    unsigned live = nt;
    while (live) {
        for (unsigned t = 0; t < nt; t++) {
            emu_fiber *f = &emu_fibers[t];
            if (f->done)
                continue;
            emu_cur = (int)t;
            threadIdx = dim3(t % blockDim.x, t / blockDim.x % blockDim.y,
                             t / (blockDim.x * blockDim.y));
            swapcontext(&emu_main, &f->ctx);
            if (f->done)
                live--;
        }
        /* the threads still running all wait at the same barrier, and none
         * returned before reaching it */
        int at = 0;
        for (unsigned t = 0; t < nt; t++)
            if (emu_fibers[t].barriers > at)
                at = emu_fibers[t].barriers;
        for (unsigned t = 0; t < nt; t++)
            if (emu_fibers[t].barriers != at) {
                emu_fail("divergent __syncthreads");
                return; /* the block's fibers are abandoned (their stacks are reused) */
            }
    }
}

static void emu_launch(dim3 grid, dim3 block, size_t shmem, const std::function<void()> &body)
{
    const unsigned long nt = (unsigned long)block.x * block.y * block.z;
    if (nt == 0 || nt > EMU_MAX_THREADS || shmem > EMU_MAX_SHMEM || !grid.x || !grid.y ||
        !grid.z) {
        emu_fail("bad launch configuration");
        return;
    }
    gridDim = grid;
    blockDim = block;
    emu_body = &body;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                /* shared memory starts undefined: NaN patterns */
                memset(emu_shmem, 0xff, shmem);
                memset(__start_emu_shared, 0xff, __stop_emu_shared - __start_emu_shared);
                blockIdx = dim3(x, y, z);
                emu_block((unsigned)nt);
            }
    emu_body = NULL;
}

#define CU_LAUNCH_SHMEM(kernel, blocks, threads, shmem, ...)                     \
    emu_launch(dim3(blocks), dim3(threads), (shmem), [&] { kernel(__VA_ARGS__); })
#define CU_LAUNCH(kernel, blocks, threads, ...)                                  \
    CU_LAUNCH_SHMEM(kernel, blocks, threads, 0, __VA_ARGS__)

#endif
