/* What the fake GPU (fakecuda.cc) offers the launch macros of
 * fake_launch.h, besides the CUDA API. */
#ifndef FAKECUDA_H
#define FAKECUDA_H

#include <functional>
#include <utility>
#include <vector>

#include "cuda_runtime.h"

/* The memory an operation uses: (pointer, whether it is written). */
typedef std::vector<std::pair<const void *, bool>> fakecuda_uses;

/* Queue a kernel (its configuration checked now, as cudaGetLastError after
 * a launch reports it) to run on stream s; uses: its pointer arguments
 * (those to const taken as read, the others as written). */
cudaError_t fakecuda_launch(cudaStream_t s, const char *kernel, unsigned gx, unsigned gy,
                            unsigned gz, unsigned threads, size_t shmem,
                            std::function<void()> run, const fakecuda_uses &uses);
/* When it runs: a pointer argument must be NULL or point into a live
 * device (or pinned) allocation; false with a fault reported. */
bool fakecuda_kernel_pointer(const void *p, const char *kernel, int arg);
/* The emulator failed the launch: a fault. */
void fakecuda_kernel_failed(const char *kernel);
/* Faults so far (all threads). */
long fakecuda_faults(void);

#endif
