/* Choosing a backend by name at run time. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "tensor/backend.h"

#include <string.h>

#include "util/err.h"

#ifdef HAVE_CUDA
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The CUDA backend lives in a module, rminas-cuda.so (kernels/, linked with
 * cuDNN, cuBLAS and the CUDA runtime), loaded on the first call: a program
 * that never asks for the GPU does not map CUDA's libraries, which cost
 * about 150 MB of resident memory once loaded. Looked up as
 * $RMINAS_CUDA_MODULE alone when that is set, else next to the executable,
 * one and two folders above it (the build tree's tests/ and tests/bench/),
 * then in the installed pkglibdir. Its entry, backend_cuda_impl, returns NULL with
 * rm_error when there is no GPU. */
#define CUDA_MODULE "rminas-cuda.so"

typedef const backend *(*cuda_entry)(void);

static cuda_entry cuda_load(char *why, size_t len)
{
    char exe[PATH_MAX], cand[4][PATH_MAX + 32];
    int n = 0;
    const char *env = getenv("RMINAS_CUDA_MODULE");
    if (env && *env) {
        if (access(env, F_OK) != 0) {
            snprintf(why, len, "RMINAS_CUDA_MODULE=%.1024s: no such file", env);
            return NULL;
        }
        snprintf(cand[n++], sizeof cand[0], "%s", env);
    } else {
        ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
        char *slash = k > 0 ? (exe[k] = 0, strrchr(exe, '/')) : NULL;
        if (slash) {
            *slash = 0;
            snprintf(cand[n++], sizeof cand[0], "%s/" CUDA_MODULE, exe);
            snprintf(cand[n++], sizeof cand[0], "%s/../" CUDA_MODULE, exe);
            snprintf(cand[n++], sizeof cand[0], "%s/../../" CUDA_MODULE, exe);
        }
        snprintf(cand[n++], sizeof cand[0], "%s/" CUDA_MODULE, RMINAS_PKGLIB);
    }
    snprintf(why, len, "the CUDA backend (%s) was not found next to the program or in %s",
             CUDA_MODULE, RMINAS_PKGLIB);
    for (int i = 0; i < n; i++) {
        if (access(cand[i], F_OK) != 0)
            continue;
        void *h = dlopen(cand[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            snprintf(why, len, "cannot load the CUDA backend %.1024s: %.1024s", cand[i], dlerror());
            return NULL;
        }
        cuda_entry f = (cuda_entry)dlsym(h, "backend_cuda_impl");
        if (!f)
            snprintf(why, len, "%.1024s has no backend_cuda_impl: %.1024s", cand[i], dlerror());
        return f;
    }
    return NULL;
}
#endif

const backend *backend_cuda(void)
{
#ifdef HAVE_CUDA
    static int tried;
    static cuda_entry entry;
    static char why[PATH_MAX + 128];
    if (!tried) {
        tried = 1;
        entry = cuda_load(why, sizeof why);
    }
    if (!entry) {
        rm_error("%s", why);
        return NULL;
    }
    return entry();
#else
    rm_error("this rminas was built without CUDA (configure --with-cuda)");
    return NULL;
#endif
}

const backend *backend_get(const char *name)
{
    if (!name) {
        rm_error("no backend named");
        return NULL;
    }
    if (strcmp(name, "cpu") == 0)
        return backend_cpu();
    if (strcmp(name, "cuda") == 0)
        return backend_cuda();
    rm_error("unknown backend '%s' (cpu or cuda)", name);
    return NULL;
}
