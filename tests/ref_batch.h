/* The reference's RMI batch, for tests/test_rmi.c and tests/test_kernels.cc
 * (C and C++): the images and labels of tests/golden/rmi.safetensors (made
 * by tests/golden/make_rmi_golden.py) through the reference teacher
 * ($SHARED_DIR, else ../shared: data/teachers/resnet20-c10q75.safetensors),
 * and the same batch perturbed by 1e-7 relative as make_rmi_golden.py
 * perturbs it: how far float32 rounding alone moves a trajectory. Include
 * after io/safetensors.h, rmi/rmi.h, util/err.h, util/rng.h and tap.h. */
#ifndef RM_TEST_REF_BATCH_H
#define RM_TEST_REF_BATCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct ref_batch {
    st_file f;      /* the golden file (test_rmi compares with its values) */
    model teacher;  /* the reference teacher, on the CPU */
    int n;          /* images */
    rmi_data d, dp; /* the batch, the perturbed batch */
} ref_batch;

/* What ref_batch_load could not make (rm_error says why); what it made
 * before is freed. */
enum { REF_NO_GOLDEN = -1, REF_NO_TEACHER = -2, REF_NO_FEATURES = -3, REF_NO_PERTURBED = -4 };

static int ref_batch_load(ref_batch *b, const rmi_settings *s)
{
    char path[4608];
    snprintf(path, sizeof path, "%s/rmi.safetensors", tap_golden_dir());
    if (st_load(path, &b->f) < 0)
        return REF_NO_GOLDEN;
    const char *shared = getenv("SHARED_DIR");
    snprintf(path, sizeof path, "%s/data/teachers/resnet20-c10q75.safetensors",
             shared ? shared : "../shared");
    if (resnet_cifar_build(&b->teacher, backend_cpu(), 20, 10, 32) < 0 ||
        model_load_file(&b->teacher, path) < 0) {
        st_free(&b->f);
        return REF_NO_TEACHER;
    }
    const st_tensor *xt = st_find(&b->f, "x"), *yt = st_find(&b->f, "labels");
    const int n = b->n = (int)xt->shape[0];
    const size_t nx = (size_t)n * 3 * 32 * 32;
    const float *x = (const float *)xt->data;
    int32_t *y = (int32_t *)malloc((size_t)n * sizeof *y);
    float *xp = (float *)malloc(nx * sizeof *xp);
    int rc = 0;
    if (!y || !xp) {
        rm_error("out of memory");
        rc = REF_NO_FEATURES;
    } else {
        for (int i = 0; i < n; i++)
            y[i] = (int32_t)((const int64_t *)yt->data)[i];
        rng pr;
        rng_seed(&pr, 2);
        for (size_t i = 0; i < nx; i++)
            xp[i] = x[i] * (float)(1 + 1e-7 * (2 * rng_uniform(&pr) - 1));
        if (rmi_data_from_batch(&b->d, &b->teacher, x, y, n, s) < 0) {
            rc = REF_NO_FEATURES;
        } else if (rmi_data_from_batch(&b->dp, &b->teacher, xp, y, n, s) < 0) {
            rmi_data_free(&b->d);
            rc = REF_NO_PERTURBED;
        }
    }
    free(y);
    free(xp);
    if (rc < 0) {
        model_free(&b->teacher);
        st_free(&b->f);
    }
    return rc;
}

static void ref_batch_free(ref_batch *b)
{
    rmi_data_free(&b->dp);
    rmi_data_free(&b->d);
    model_free(&b->teacher);
    st_free(&b->f);
}

#endif
