/* Kernel launches on the fake GPU: force-included (g++ -include) before
 * kernels/cuda.cu, which then defines no launch macros of its own
 * (cuda_ops.h). A launch converts its arguments to the kernel's parameter
 * types at once (as <<<>>> does) and queues the kernel on the stream; when
 * it runs, the pointer arguments are checked and the grid runs in
 * tests/cuda_emu.h, one launch at a time (fakecuda.cc's lock is held). */
#ifndef FAKECUDA_LAUNCH_H
#define FAKECUDA_LAUNCH_H

#define EMU_NO_LAUNCH_MACROS 1
#define EMU_POISON_BLOCKS 3ul /* whole training steps: see cuda_emu.h */
#include "../cuda_emu.h"
#include "fakecuda.h"

#include <tuple>
#include <type_traits>
#include <utility>

template <typename T> static bool fake_pointer_ok(const T &v, const char *kernel, int arg)
{
    if constexpr (std::is_pointer<T>::value)
        return fakecuda_kernel_pointer((const void *)v, kernel, arg);
    (void)v;
    (void)kernel;
    (void)arg;
    return true;
}

template <typename T> static void fake_use(const T &v, fakecuda_uses &uses)
{
    if constexpr (std::is_pointer<T>::value)
        uses.push_back(
            {(const void *)v, !std::is_const<typename std::remove_pointer<T>::type>::value});
    (void)v;
    (void)uses;
}

template <typename... P, typename... A>
static cudaError_t fake_launch(cudaStream_t s, const char *name, void (*kernel)(P...),
                               dim3 grid, dim3 block, size_t shmem, A &&...args)
{
    std::tuple<typename std::decay<P>::type...> params(std::forward<A>(args)...);
    fakecuda_uses uses;
    std::apply([&](const auto &...p) { (fake_use(p, uses), ...); }, params);
    return fakecuda_launch(
        s, name, grid.x, grid.y, grid.z, block.x * block.y * block.z, shmem,
        [=]() {
            bool ok = true;
            int arg = 0;
            std::apply(
                [&](const auto &...p) { ((ok = fake_pointer_ok(p, name, arg++) && ok), ...); },
                params);
            if (!ok)
                return;
            const int before = emu_failures();
            std::apply(
                [&](const auto &...p) { emu_launch(grid, block, shmem, [&] { kernel(p...); }); },
                params);
            if (emu_failures() != before)
                fakecuda_kernel_failed(name);
        },
        uses);
}

#define CU_LAUNCH_SHMEM(kernel, blocks, threads, shmem, ...)                                   \
    do {                                                                                       \
        fake_launch(cu.stream, #kernel, kernel, dim3(blocks), dim3(threads), (shmem),          \
                    __VA_ARGS__);                                                              \
        cu_check(cudaGetLastError(), #kernel "<<<>>>", __FILE__, __LINE__);                    \
    } while (0)
#define CU_LAUNCH(kernel, blocks, threads, ...)                                                \
    CU_LAUNCH_SHMEM(kernel, blocks, threads, 0, __VA_ARGS__)

#endif
