/* Choosing a backend by name at run time. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "tensor/backend.h"

#include <string.h>

#include "util/err.h"

#ifdef HAVE_CUDA
/* Defined by the CUDA build (kernels/); NULL with rm_error when no GPU. */
const backend *backend_cuda_impl(void);
#endif

const backend *backend_cuda(void)
{
#ifdef HAVE_CUDA
    return backend_cuda_impl();
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
