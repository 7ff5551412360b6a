/* Linear CKA / nHSIC on Gram matrices; see cka.h. */
#include "rmi/cka.h"

#include <math.h>
#include <stdlib.h>

#include "util/err.h"

/* Column means of the n x n row-major matrix M (in double) into m, and their
 * mean into *g. For a symmetric M these are also the row means. */
static void col_means(int n, const float *M, double *m, double *g)
{
    for (int j = 0; j < n; j++)
        m[j] = 0.0;
    for (int i = 0; i < n; i++) {
        const float *row = M + (size_t)i * n;
        for (int j = 0; j < n; j++)
            m[j] += row[j];
    }
    double s = 0.0;
    for (int j = 0; j < n; j++) {
        m[j] /= n;
        s += m[j];
    }
    *g = s / n;
}

double cka_from_grams(int n, const float *K, const float *L, int centered, float *dK)
{
    if (n <= 0)
        return rm_error("cka_from_grams: batch size %d must be positive", n);
    if (!K || !L)
        return rm_error("cka_from_grams: NULL Gram matrix");

    /* mK, mL: column means of K, L (zero when uncentered); rA, cA: row and
     * column means of the gradient matrix A (for dK = H A H). */
    double *buf = calloc((size_t)4 * n, sizeof *buf);
    if (!buf)
        return rm_error("cka_from_grams: out of memory (n = %d)", n);
    double *mK = buf, *mL = buf + n, *rA = buf + 2 * (size_t)n, *cA = buf + 3 * (size_t)n;
    double gK = 0.0, gL = 0.0;
    if (centered) {
        col_means(n, K, mK, &gK);
        col_means(n, L, mL, &gL);
    }

    /* Kc_ij = K_ij - m_i - m_j + g, as RMI_torch.tensor_center_gram (which
     * subtracts m_i - g/2 from rows, then from columns). */
    double kk = 0.0, ll = 0.0, kl = 0.0;
    for (int i = 0; i < n; i++) {
        const float *Ki = K + (size_t)i * n, *Li = L + (size_t)i * n;
        for (int j = 0; j < n; j++) {
            double kc = (double)Ki[j] - mK[i] - mK[j] + gK;
            double lc = (double)Li[j] - mL[i] - mL[j] + gL;
            kk += kc * kc;
            ll += lc * lc;
            kl += kc * lc;
        }
    }
    double nk = sqrt(kk), nl = sqrt(ll);
    double cka = (kk == 0.0 || ll == 0.0) ? NAN : kl / (nk * nl);

    if (dK) {
        if (isnan(cka)) {
            for (size_t t = 0; t < (size_t)n * n; t++)
                dK[t] = NAN;
        } else {
            /* A = Lc/(|Kc||Lc|) - cka*Kc/|Kc|^2; dK = H A H (centered) or A. */
            double a = 1.0 / (nk * nl), b = cka / kk;
            double gA = 0.0;
            if (centered) {
                for (int i = 0; i < n; i++) {
                    const float *Ki = K + (size_t)i * n, *Li = L + (size_t)i * n;
                    for (int j = 0; j < n; j++) {
                        double kc = (double)Ki[j] - mK[i] - mK[j] + gK;
                        double lc = (double)Li[j] - mL[i] - mL[j] + gL;
                        double A = a * lc - b * kc;
                        rA[i] += A;
                        cA[j] += A;
                        gA += A;
                    }
                }
                for (int i = 0; i < n; i++) {
                    rA[i] /= n;
                    cA[i] /= n;
                }
                gA /= (double)n * n;
            }
            for (int i = 0; i < n; i++) {
                const float *Ki = K + (size_t)i * n, *Li = L + (size_t)i * n;
                float *Di = dK + (size_t)i * n;
                for (int j = 0; j < n; j++) {
                    double kc = (double)Ki[j] - mK[i] - mK[j] + gK;
                    double lc = (double)Li[j] - mL[i] - mL[j] + gL;
                    double A = a * lc - b * kc;
                    Di[j] = (float)(A - rA[i] - cA[j] + gA);
                }
            }
        }
    }
    free(buf);
    return cka;
}
