/* CUDA kernels on the CPU, for testing them without a GPU: enough of CUDA's
 * execution model for kernels/cuda_kernels.cuh, compiled by g++.
 *
 * A launch runs its blocks one after another. A block's threads are fibers
 * on the calling thread: each runs until it reaches
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
 * on a GPU): the launch is marked failed (emu_failures()). A launch whose
 * first block reaches no barrier runs its other blocks' threads as plain
 * calls, one after another (a fiber costs a few hundred nanoseconds; the step of
 * a network launches kernels over half a million threads); a barrier
 * reached there after all is a failed launch too. No warps, no
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

/* a fiber's stack: the kernels' frames are small; AddressSanitizer's are not */
#ifdef __SANITIZE_ADDRESS__
enum { EMU_STACK = 256 << 10 };
#else
enum { EMU_STACK = 16 << 10 };
#endif
enum { EMU_MAX_THREADS = 1024, EMU_MAX_SHMEM = 48 << 10 };

/* Switching between fibers: a few instructions on x86-64 (the callee-saved
 * registers and the stack pointer; ucontext's swapcontext also makes a
 * system call for the signal mask, which made the batch-norm reductions of
 * one training step take half a minute), ucontext elsewhere. Under
 * AddressSanitizer every switch is announced to it (its fiber interface),
 * so that it knows which stack is running. */
#ifdef __SANITIZE_ADDRESS__
extern "C" void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
                                               size_t size);
extern "C" void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                                size_t *size_old);
extern "C" void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
static const void *emu_main_bottom; /* the launching thread's stack, as ASan told it */
static size_t emu_main_size;
#define EMU_ASAN_START(save, bottom, size) __sanitizer_start_switch_fiber(save, bottom, size)
#define EMU_ASAN_FINISH(fake, bottom_old, size_old)                                          \
    __sanitizer_finish_switch_fiber(fake, bottom_old, size_old)
#else
#define EMU_ASAN_START(save, bottom, size) ((void)0)
#define EMU_ASAN_FINISH(fake, bottom_old, size_old) ((void)0)
#endif
#if defined(__x86_64__)
#define EMU_ASM_SWITCH 1
extern "C" void emu_switch(void **save_sp, void *load_sp);
__asm__(".text\n"
        ".globl emu_switch\n"
        ".type emu_switch, @function\n"
        "emu_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size emu_switch, .-emu_switch\n");
struct emu_ctx {
    void *sp;
};
#else
struct emu_ctx {
    ucontext_t uc;
};
#endif

struct emu_fiber {
    emu_ctx ctx;
    char *stack;
    int done, barriers;
};

static emu_ctx emu_main;
static emu_fiber emu_fibers[EMU_MAX_THREADS];
static int emu_cur, emu_failed, emu_plain;
static const std::function<void()> *emu_body;
static double emu_shmem[EMU_MAX_SHMEM / sizeof(double)];

static void *emu_dynamic_shared(void) { return emu_shmem; }
#define CU_SHARED_DYNAMIC(type, name) type *name = (type *)emu_dynamic_shared()

static void emu_fail(const char *what);

/* from fiber f back to the launch (for good when f is done) */
static inline void emu_to_main(emu_fiber *f)
{
    void *fake = NULL;
    (void)fake;
    EMU_ASAN_START(f->done ? NULL : &fake, emu_main_bottom, emu_main_size);
#ifdef EMU_ASM_SWITCH
    emu_switch(&f->ctx.sp, emu_main.sp);
#else
    swapcontext(&f->ctx.uc, &emu_main.uc);
#endif
    EMU_ASAN_FINISH(fake, NULL, NULL);
}

static inline void emu_to_fiber(emu_fiber *f)
{
    void *fake = NULL;
    (void)fake;
    EMU_ASAN_START(&fake, f->stack, EMU_STACK);
#ifdef EMU_ASM_SWITCH
    emu_switch(&emu_main.sp, f->ctx.sp);
#else
    swapcontext(&emu_main.uc, &f->ctx.uc);
#endif
    EMU_ASAN_FINISH(fake, NULL, NULL);
}

static inline void __syncthreads(void)
{
    if (emu_plain) {
        emu_fail("__syncthreads in a block run without fibers (its launch's first block had none)");
        return;
    }
    emu_fiber *f = &emu_fibers[emu_cur];
    f->barriers++;
    emu_to_main(f);
}

/* a fiber's start: the kernel's body for this thread, then back for good */
static void emu_entry(void)
{
    EMU_ASAN_FINISH(NULL, &emu_main_bottom, &emu_main_size);
    (*emu_body)();
    emu_fiber *f = &emu_fibers[emu_cur];
    f->done = 1;
    emu_to_main(f);
    abort(); /* a finished fiber is never resumed */
}

static void emu_ctx_make(emu_fiber *f, size_t stack_bytes)
{
#ifdef __SANITIZE_ADDRESS__
    /* the frames of the stack's last fiber never returned: their redzones */
    __asan_unpoison_memory_region(f->stack, stack_bytes);
#endif
#ifdef EMU_ASM_SWITCH
    /* what emu_switch pops: six registers, then the return address, at a
     * 16-byte boundary so that emu_entry starts as if called */
    void **top = (void **)(f->stack + stack_bytes - 64);
    top[0] = (void *)emu_entry;
    top[1] = NULL; /* above the return address: emu_entry never returns */
    for (int r = 1; r <= 6; r++)
        top[-r] = NULL;
    f->ctx.sp = (void *)(top - 6);
#else
    getcontext(&f->ctx.uc);
    f->ctx.uc.uc_stack.ss_sp = f->stack;
    f->ctx.uc.uc_stack.ss_size = stack_bytes;
    f->ctx.uc.uc_link = NULL;
    makecontext(&f->ctx.uc, emu_entry, 0);
#endif
}

/* Launches that went wrong so far: a divergent barrier, too many threads or
 * too much dynamic shared memory, an unusable stack. */
static inline int emu_failures(void) { return emu_failed; }

static void emu_fail(const char *what)
{
    fprintf(stderr, "cuda_emu: %s\n", what);
    emu_failed++;
}

/* thread t's index in the block (no divisions for the usual 1-d blocks) */
static inline dim3 emu_thread_index(unsigned t)
{
    if (blockDim.y == 1 && blockDim.z == 1)
        return dim3(t, 0, 0);
    return dim3(t % blockDim.x, t / blockDim.x % blockDim.y, t / (blockDim.x * blockDim.y));
}

/* One block: every thread as a fiber, in rounds between barriers. Returns
 * whether any thread reached a barrier. */
static bool emu_block(unsigned nt)
{
    for (unsigned t = 0; t < nt; t++) {
        emu_fiber *f = &emu_fibers[t];
        if (!f->stack) {
            /* below the stack a page that faults: an overflow stops at once */
            const size_t guard = 4096;
            char *s = (char *)mmap(NULL, EMU_STACK + guard, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (s == (char *)MAP_FAILED || mprotect(s, guard, PROT_NONE) != 0) {
                emu_fail("no memory for a fiber's stack");
                return false;
            }
            f->stack = s + guard;
        }
        emu_ctx_make(f, EMU_STACK);
        f->done = 0;
        f->barriers = 0;
    }
    unsigned live = nt;
    bool synced = false;
    while (live) {
        for (unsigned t = 0; t < nt; t++) {
            emu_fiber *f = &emu_fibers[t];
            if (f->done)
                continue;
            emu_cur = (int)t;
            threadIdx = emu_thread_index(t);
            emu_to_fiber(f);
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
                return true; /* the block's fibers are abandoned (their stacks are reused) */
            }
        if (at)
            synced = true;
    }
    return synced;
}

/* One block's threads as plain calls, one after another. */
static void emu_block_plain(unsigned nt)
{
    emu_plain = 1;
    for (unsigned t = 0; t < nt; t++) {
        threadIdx = emu_thread_index(t);
        (*emu_body)();
    }
    emu_plain = 0;
}

/* How many blocks of a launch start with their shared memory refilled with
 * 0xff bytes (all by default; the fake GPU of tests/fakecuda, which runs
 * whole training steps, takes the first few: a read before a write shows
 * there already, and refilling ~20 KiB for each of the thousands of blocks
 * of a training step's batch norms costs seconds). */
#ifndef EMU_POISON_BLOCKS
#define EMU_POISON_BLOCKS (~0ul)
#endif

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
    bool fibers = true;
    unsigned long count = 0;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                /* shared memory starts undefined: NaN patterns */
                if (count++ < EMU_POISON_BLOCKS) {
                    memset(emu_shmem, 0xff, shmem);
                    memset(__start_emu_shared, 0xff, __stop_emu_shared - __start_emu_shared);
                }
                blockIdx = dim3(x, y, z);
                if (fibers)
                    fibers = emu_block((unsigned)nt);
                else
                    emu_block_plain((unsigned)nt);
            }
    emu_body = NULL;
}

/* launches that run at once (tests/test_kernels.cc); the fake GPU
 * (tests/fakecuda/fake_launch.h) queues them on streams instead */
#ifndef EMU_NO_LAUNCH_MACROS
#define CU_LAUNCH_SHMEM(kernel, blocks, threads, shmem, ...)                     \
    emu_launch(dim3(blocks), dim3(threads), (shmem), [&] { kernel(__VA_ARGS__); })
#define CU_LAUNCH(kernel, blocks, threads, ...)                                  \
    CU_LAUNCH_SHMEM(kernel, blocks, threads, 0, __VA_ARGS__)
#endif

#endif
