/* Gram matrices of per-sample feature rows, for the CKA of the RMI loss. */
#include <cblas.h>
#include <stddef.h>
#include <stdlib.h>

#include "tensor/cpu_ops.h"

void cpu_gram(int n, int p, const float *X, float *K)
{
    if (n <= 0)
        return;
    if (p <= 0) {
        for (size_t t = 0; t < (size_t)n * n; t++)
            K[t] = 0.0f;
        return;
    }
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, n, p, 1.0f, X, p, 0.0f, K, n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            K[(size_t)i * n + j] = K[(size_t)j * n + i];
}

void cpu_gram_backward(int n, int p, const float *X, const float *dK, float *dX)
{
    if (n <= 0 || p <= 0)
        return;
    /* dX += (dK + dK^T) X: one n x p x n product over X instead of two (the
     * n x n sum is nothing beside it; at n = 128 and p = 65536 it halves the
     * time). Without memory for the sum, the two products. */
    float *S = malloc(sizeof(float) * (size_t)n * n);
    if (!S) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, p, n, 1.0f, dK, n, X, p, 1.0f, dX, p);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, p, n, 1.0f, dK, n, X, p, 1.0f, dX, p);
        return;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            S[(size_t)i * n + j] = dK[(size_t)i * n + j] + dK[(size_t)j * n + i];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, p, n, 1.0f, S, n, X, p, 1.0f, dX, p);
    free(S);
}
