/* TAP test of the linear CKA / nHSIC module (src/rmi/cka.c).
 *
 * What is checked, and the tolerances (all stated as absolute errors on the
 * CKA value, which lies in [0, 1], unless said otherwise):
 *  - cka_gram against a double X X^T: |K - ref| <= 1e-5 * max|ref| (float
 *    sums of p = 500 products, observed ~5e-7);
 *  - cka_gram_backward against the double formula dX0 + (dK + dK^T) X for a
 *    non-symmetric dK: 1e-5 relative to max|ref| (observed ~1.5e-7);
 *  - cka_from_grams against a naive double implementation written here
 *    (explicit H K H matrix products), both variants:
 *      on the same float Gram matrices: 1e-12 (only double rounding differs);
 *      against Gram matrices built in double from X, Y: 1e-5 (float Gram;
 *      observed ~3e-9);
 *  - invariances, both variants unless said: CKA(X, aX) = 1 (1e-6);
 *    CKA(X, X + constant column offsets) = 1, centered only (1e-5: the offsets
 *    add a large common part to K that the centering cancels);
 *    CKA(aX, bY) = CKA(X, Y) (1e-5); CKA(XQ, Y) = CKA(X, Y) for Q orthogonal
 *    (a product of 3 Householder reflections) (1e-5); observed 1e-13 to 5e-9;
 *  - values in [0, 1] over 40 random pairs of different kinds (exact bounds,
 *    a slack of 1e-12 above 1 for rounding of CKA(X, X));
 *  - dK by central differences of the naive double implementation, perturbing
 *    every entry of K (as an independent entry) by h = 1e-5 * max|K|:
 *    max|dK - fd| <= 1e-6 * max|fd| (dK is float: ~6e-8; differences in
 *    double: truncation ~(h/|K|)^2 ~ 1e-10, rounding ~1e-11; observed ~5e-8);
 *  - the chain rule through X (dCKA(XX^T, L)/dX = cka_gram_backward of dK)
 *    against central differences on X in float (step 1e-3 * rms(X), the
 *    divisor is the difference of the rounded perturbed values), on 64
 *    entries, p = q = 24 so that the float rounding of K stays small against
 *    the change of K: max|g - fd| <= 2e-3 * max|g| (observed ~1.5e-4);
 *  - all-zero features: NaN, dK all NaN, no crash; invalid arguments: -1;
 *  - golden values (fixed X, Y below, n = 32, p = 200, q = 300): 1e-6
 *    (observed 9e-8 centered: the reference rounds each centering step to
 *    float32, this module centers in double; 8e-9 uncentered: float Gram).
 * Runs in ~0.2 s.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rmi/cka.h"
#include "tensor/backend.h"
#include "tap.h"
#include "util/err.h"

/* Golden values for X_ij = (float)sin(0.1 i + 0.37 j) (32 x 200) and
 * Y_ij = (float)(sin(0.1 i + 0.37 j)^2 + 0.5 cos(0.013 i j + 0.2 j)) (32 x 300).
 *
 * GOLDEN_CENTERED: the reference rmi_ref.tensor_cka (PyTorch 1.13.1, float32
 * Grams and result), produced by
 *   mkdir -p /tmp/rmiref && RMI_REF_OUT=/tmp/rmiref /usr/bin/python3 -c "
 *   import sys,math;sys.path.insert(0,'/work/shared/reference');import rmi_ref as r,torch
 *   X=torch.tensor([[math.sin(0.1*i+0.37*j) for j in range(200)] for i in range(32)],dtype=torch.float32)
 *   Y=torch.tensor([[math.sin(0.1*i+0.37*j)**2+0.5*math.cos(0.013*i*j+0.2*j) for j in range(300)]
 *                   for i in range(32)],dtype=torch.float32)
 *   print(repr(r.tensor_cka(r.tensor_gram_linear(X),r.tensor_gram_linear(Y)).item()))"
 * -> 0.5936039090156555 (the original in-place tensor_center_gram gives the same
 * float32; numpy float64 with explicit H K H gives 0.5936038793080303).
 *
 * GOLDEN_UNCENTERED: the paper's Eq. 3 in numpy float64 on the same float32
 * X, Y, appended to the script above:
 *   import numpy as np;x=X.numpy().astype(np.float64);y=Y.numpy().astype(np.float64)
 *   K=x@x.T;L=y@y.T;print(repr(float((K*L).sum()/(np.linalg.norm(K)*np.linalg.norm(L)))))
 * -> 0.6709739329964636 */
#define GOLDEN_CENTERED 0.5936039090156555
#define GOLDEN_UNCENTERED 0.6709739329964636

/* ---- deterministic random numbers (xorshift64*, Box-Muller) ---- */
static uint64_t rs = 0x9e3779b97f4a7c15ull;
static double urand(void)
{
    rs ^= rs >> 12;
    rs ^= rs << 25;
    rs ^= rs >> 27;
    return ((rs * 0x2545f4914f6cdd1dull) >> 11) * (1.0 / 9007199254740992.0);
}
static double nrand(void)
{
    double u = urand(), v = urand();
    if (u < 1e-300)
        u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}
static void fill_normal(float *a, size_t m, double scale)
{
    for (size_t t = 0; t < m; t++)
        a[t] = (float)(scale * nrand());
}

static float *falloc(size_t m)
{
    float *p = calloc(m ? m : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}
static double *dalloc(size_t m)
{
    double *p = calloc(m ? m : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

/* ---- naive double reference ---- */
/* C = A B, n x n double */
static void matmul(int n, const double *A, const double *B, double *C)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int k = 0; k < n; k++)
                s += A[i * n + k] * B[k * n + j];
            C[i * n + j] = s;
        }
}

/* CKA of double K, L (any n x n, not assumed symmetric), with explicit
 * Kc = H K H, H = I - 11^T/n, when centered. */
static double naive_cka(int n, const double *K, const double *L, int centered)
{
    size_t nn = (size_t)n * n;
    double *H = dalloc(nn), *T = dalloc(nn), *Kc = dalloc(nn), *Lc = dalloc(nn);
    if (centered) {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                H[i * n + j] = (i == j) - 1.0 / n;
        matmul(n, H, K, T);
        matmul(n, T, H, Kc);
        matmul(n, H, L, T);
        matmul(n, T, H, Lc);
    } else {
        memcpy(Kc, K, nn * sizeof *K);
        memcpy(Lc, L, nn * sizeof *L);
    }
    double kl = 0, kk = 0, ll = 0;
    for (size_t t = 0; t < nn; t++) {
        kl += Kc[t] * Lc[t];
        kk += Kc[t] * Kc[t];
        ll += Lc[t] * Lc[t];
    }
    free(H);
    free(T);
    free(Kc);
    free(Lc);
    return kl / (sqrt(kk) * sqrt(ll));
}

/* double X X^T of a float X */
static void gram_double(int n, int p, const float *X, double *K)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int k = 0; k < p; k++)
                s += (double)X[(size_t)i * p + k] * X[(size_t)j * p + k];
            K[i * n + j] = s;
        }
}
static void f2d(const float *a, double *b, size_t m)
{
    for (size_t t = 0; t < m; t++)
        b[t] = a[t];
}

/* CKA(XX^T, YY^T) via the library (float Gram, double CKA). */
static double cka_xy(int n, int p, const float *X, int q, const float *Y, int centered)
{
    float *K = falloc((size_t)n * n), *L = falloc((size_t)n * n);
    backend_cpu()->gram(n, p, X, K);
    backend_cpu()->gram(n, q, Y, L);
    double c = cka_from_grams(n, K, L, centered, NULL);
    free(K);
    free(L);
    return c;
}

/* Y (n x q) correlated with X (n x p), q <= p: Y = 0.6 X[:, :q] + 0.2 X[:, 1:q+1]^2 + 0.8 N */
static void make_correlated(int n, int p, const float *X, int q, float *Y)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < q; j++) {
            double a = X[(size_t)i * p + j], b = X[(size_t)i * p + (j + 1) % p];
            Y[(size_t)i * q + j] = (float)(0.6 * a + 0.2 * b * b + 0.8 * nrand());
        }
}

static const char *vname(int centered) { return centered ? "centered" : "uncentered"; }

/* ---- tests ---- */

static void test_gram(void)
{
    const int n = 32, p = 500;
    float *X = falloc((size_t)n * p), *K = falloc((size_t)n * n);
    double *Kd = dalloc((size_t)n * n);
    fill_normal(X, (size_t)n * p, 1.0);
    backend_cpu()->gram(n, p, X, K);
    gram_double(n, p, X, Kd);
    double err = 0, mx = 0;
    int sym = 1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            err = fmax(err, fabs(K[i * n + j] - Kd[i * n + j]));
            mx = fmax(mx, fabs(Kd[i * n + j]));
            sym &= K[i * n + j] == K[j * n + i];
        }
    tap_ok(err <= 1e-5 * mx && sym, "cka_gram = X X^T (max err %.3g of max %.3g), exactly symmetric", err, mx);

    /* backward: dX += (dK + dK^T) X, accumulating */
    float *dK = falloc((size_t)n * n), *dX = falloc((size_t)n * p);
    fill_normal(dK, (size_t)n * n, 1.0);
    fill_normal(dX, (size_t)n * p, 1.0);
    double *ref = dalloc((size_t)n * p);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < p; k++) {
            double s = dX[(size_t)i * p + k];
            for (int j = 0; j < n; j++)
                s += ((double)dK[i * n + j] + dK[j * n + i]) * X[(size_t)j * p + k];
            ref[(size_t)i * p + k] = s;
        }
    backend_cpu()->gram_backward(n, p, X, dK, dX);
    err = 0, mx = 0;
    for (size_t t = 0; t < (size_t)n * p; t++) {
        err = fmax(err, fabs(dX[t] - ref[t]));
        mx = fmax(mx, fabs(ref[t]));
    }
    tap_ok(err <= 1e-5 * mx, "cka_gram_backward accumulates (dK + dK^T) X (max err %.3g of max %.3g)", err, mx);
    free(X);
    free(K);
    free(Kd);
    free(dK);
    free(dX);
    free(ref);
}

static void test_naive(void)
{
    const int n = 32, p = 500, q = 300;
    size_t nn = (size_t)n * n;
    float *X = falloc((size_t)n * p), *Y = falloc((size_t)n * q), *K = falloc(nn), *L = falloc(nn);
    double *Kd = dalloc(nn), *Ld = dalloc(nn);
    fill_normal(X, (size_t)n * p, 1.0);
    make_correlated(n, p, X, q, Y);
    backend_cpu()->gram(n, p, X, K);
    backend_cpu()->gram(n, q, Y, L);
    for (int c = 1; c >= 0; c--) {
        double got = cka_from_grams(n, K, L, c, NULL);
        f2d(K, Kd, nn);
        f2d(L, Ld, nn);
        double same = naive_cka(n, Kd, Ld, c);
        gram_double(n, p, X, Kd);
        gram_double(n, q, Y, Ld);
        double dbl = naive_cka(n, Kd, Ld, c);
        tap_ok(fabs(got - same) <= 1e-12, "%s: = naive H K H on the same Grams (%.15f vs %.15f)", vname(c), got, same);
        tap_ok(fabs(got - dbl) <= 1e-5, "%s: = naive double from X, Y (%.10f vs %.10f, diff %.2g)", vname(c), got,
               dbl, fabs(got - dbl));
    }
    free(X);
    free(Y);
    free(K);
    free(L);
    free(Kd);
    free(Ld);
}

static void test_invariances(void)
{
    const int n = 32, p = 500, q = 300;
    float *X = falloc((size_t)n * p), *Y = falloc((size_t)n * q), *Z = falloc((size_t)n * p),
          *W = falloc((size_t)n * q);
    fill_normal(X, (size_t)n * p, 1.0);
    make_correlated(n, p, X, q, Y);

    /* CKA(X, aX) = 1 */
    for (size_t t = 0; t < (size_t)n * p; t++)
        Z[t] = 2.7f * X[t];
    for (int c = 1; c >= 0; c--) {
        double v = cka_xy(n, p, X, p, Z, c);
        tap_ok(fabs(v - 1.0) <= 1e-6, "%s: CKA(X, 2.7 X) = 1 (1 - %.3g)", vname(c), 1.0 - v);
    }

    /* centered: CKA(X, X + 1 c^T) = 1 */
    float *off = falloc(p);
    for (int j = 0; j < p; j++)
        off[j] = (float)(4.0 * urand() - 2.0);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < p; j++)
            Z[(size_t)i * p + j] = X[(size_t)i * p + j] + off[j];
    double vc = cka_xy(n, p, X, p, Z, 1), vu = cka_xy(n, p, X, p, Z, 0);
    tap_ok(fabs(vc - 1.0) <= 1e-5 && vu < 0.9, "centered: CKA(X, X + column offsets) = 1 (1 - %.3g; uncentered %.4f)",
           1.0 - vc, vu);
    free(off);

    /* isotropic scaling: CKA(aX, bY) = CKA(X, Y) */
    for (size_t t = 0; t < (size_t)n * p; t++)
        Z[t] = 3.7f * X[t];
    for (size_t t = 0; t < (size_t)n * q; t++)
        W[t] = 0.21f * Y[t];
    for (int c = 1; c >= 0; c--) {
        double a = cka_xy(n, p, X, q, Y, c), b = cka_xy(n, p, Z, q, W, c);
        tap_ok(fabs(a - b) <= 1e-5, "%s: CKA(3.7 X, 0.21 Y) = CKA(X, Y) = %.8f (diff %.2g)", vname(c), a,
               fabs(a - b));
    }

    /* orthogonal transform of the features: X Q, Q = product of 3 Householder reflections */
    double *v = dalloc(p), *row = dalloc(p);
    double *V = dalloc((size_t)3 * p);
    for (int r = 0; r < 3; r++) {
        double s = 0;
        for (int j = 0; j < p; j++) {
            V[(size_t)r * p + j] = nrand();
            s += V[(size_t)r * p + j] * V[(size_t)r * p + j];
        }
        for (int j = 0; j < p; j++)
            V[(size_t)r * p + j] /= sqrt(s);
    }
    for (int i = 0; i < n; i++) {
        f2d(X + (size_t)i * p, row, p);
        for (int r = 0; r < 3; r++) {
            memcpy(v, V + (size_t)r * p, p * sizeof *v);
            double d = 0;
            for (int j = 0; j < p; j++)
                d += row[j] * v[j];
            for (int j = 0; j < p; j++)
                row[j] -= 2.0 * d * v[j];
        }
        for (int j = 0; j < p; j++)
            Z[(size_t)i * p + j] = (float)row[j];
    }
    double moved = 0;
    for (size_t t = 0; t < (size_t)n * p; t++)
        moved = fmax(moved, fabs(Z[t] - X[t]));
    for (int c = 1; c >= 0; c--) {
        double a = cka_xy(n, p, X, q, Y, c), b = cka_xy(n, p, Z, q, Y, c);
        tap_ok(fabs(a - b) <= 1e-5 && moved > 0.1, "%s: CKA(X Q, Y) = CKA(X, Y) for orthogonal Q (diff %.2g)",
               vname(c), fabs(a - b));
    }
    free(v);
    free(row);
    free(V);
    free(X);
    free(Y);
    free(Z);
    free(W);
}

static void test_range(void)
{
    const int n = 32, p = 64, q = 48;
    float *X = falloc((size_t)n * p), *Y = falloc((size_t)n * q);
    for (int c = 1; c >= 0; c--) {
        int ok = 1;
        double lo = 2, hi = -1;
        for (int trial = 0; trial < 40; trial++) {
            int kind = trial % 4;
            fill_normal(X, (size_t)n * p, 0.01 + 10.0 * urand());
            if (kind == 0) /* independent */
                fill_normal(Y, (size_t)n * q, 1.0);
            else if (kind == 1) /* correlated */
                make_correlated(n, p, X, q, Y);
            else if (kind == 2) { /* non-negative (post-ReLU) features, rank 1 Y */
                for (size_t t = 0; t < (size_t)n * p; t++)
                    X[t] = fabsf(X[t]);
                double a = 0;
                for (int i = 0; i < n; i++) {
                    a = nrand();
                    for (int j = 0; j < q; j++)
                        Y[(size_t)i * q + j] = (float)(a * (j + 1));
                }
            } else { /* Y = X's first columns: CKA close to 1 */
                for (int i = 0; i < n; i++)
                    memcpy(Y + (size_t)i * q, X + (size_t)i * p, q * sizeof *Y);
            }
            double v = cka_xy(n, p, X, q, Y, c), s = cka_xy(n, p, X, p, X, c);
            lo = fmin(lo, fmin(v, s));
            hi = fmax(hi, fmax(v, s));
            ok &= v >= 0.0 && v <= 1.0 + 1e-12 && s >= 0.0 && s <= 1.0 + 1e-12 && fabs(s - 1.0) < 1e-6;
        }
        tap_ok(ok, "%s: 80 values in [0, 1] (min %.4g, max 1 + %.2g), CKA(X, X) = 1", vname(c), lo, hi - 1.0);
    }
    free(X);
    free(Y);
}

static void test_dK(void)
{
    const int n = 32, p = 500, q = 300;
    size_t nn = (size_t)n * n;
    float *X = falloc((size_t)n * p), *Y = falloc((size_t)n * q), *K = falloc(nn), *L = falloc(nn),
          *dK = falloc(nn);
    double *Kd = dalloc(nn), *Ld = dalloc(nn);
    fill_normal(X, (size_t)n * p, 1.0);
    make_correlated(n, p, X, q, Y);
    backend_cpu()->gram(n, p, X, K);
    backend_cpu()->gram(n, q, Y, L);
    f2d(L, Ld, nn);
    double kmax = 0;
    for (size_t t = 0; t < nn; t++)
        kmax = fmax(kmax, fabs(K[t]));
    double h = 1e-5 * kmax;
    for (int c = 1; c >= 0; c--) {
        cka_from_grams(n, K, L, c, dK);
        double err = 0, mx = 0;
        for (size_t t = 0; t < nn; t++) {
            f2d(K, Kd, nn);
            Kd[t] = K[t] + h;
            double fp = naive_cka(n, Kd, Ld, c);
            Kd[t] = K[t] - h;
            double fm = naive_cka(n, Kd, Ld, c);
            double fd = (fp - fm) / (2 * h);
            err = fmax(err, fabs(dK[t] - fd));
            mx = fmax(mx, fabs(fd));
        }
        tap_ok(err <= 1e-6 * mx, "%s: dK = central differences on K (max err %.3g of max %.3g, rel %.2g)", vname(c),
               err, mx, err / mx);
    }
    free(X);
    free(Y);
    free(K);
    free(L);
    free(dK);
    free(Kd);
    free(Ld);
}

static void test_dX(void)
{
    const int n = 32, p = 24, q = 24, nchk = 64;
    size_t nn = (size_t)n * n;
    float *X = falloc((size_t)n * p), *Y = falloc((size_t)n * q), *K = falloc(nn), *L = falloc(nn),
          *dK = falloc(nn), *dX = falloc((size_t)n * p);
    fill_normal(X, (size_t)n * p, 1.0);
    make_correlated(n, p, X, q, Y);
    backend_cpu()->gram(n, q, Y, L);
    double rms = 0;
    for (size_t t = 0; t < (size_t)n * p; t++)
        rms += (double)X[t] * X[t];
    rms = sqrt(rms / ((double)n * p));
    for (int c = 1; c >= 0; c--) {
        backend_cpu()->gram(n, p, X, K);
        double v0 = cka_from_grams(n, K, L, c, dK);
        memset(dX, 0, (size_t)n * p * sizeof *dX);
        backend_cpu()->gram_backward(n, p, X, dK, dX);
        double err = 0, mx = 0;
        for (int k = 0; k < nchk; k++) {
            size_t t = (size_t)(urand() * n * p);
            float x0 = X[t];
            float xp = (float)(x0 + 1e-3 * rms), xm = (float)(x0 - 1e-3 * rms);
            X[t] = xp;
            backend_cpu()->gram(n, p, X, K);
            double fp = cka_from_grams(n, K, L, c, NULL);
            X[t] = xm;
            backend_cpu()->gram(n, p, X, K);
            double fm = cka_from_grams(n, K, L, c, NULL);
            X[t] = x0;
            double fd = (fp - fm) / ((double)xp - xm);
            err = fmax(err, fabs(dX[t] - fd));
            mx = fmax(mx, fabs(dX[t]));
        }
        tap_ok(err <= 2e-3 * mx, "%s: dCKA/dX via cka_gram_backward = differences on X (CKA %.4f, max err %.3g of "
                                 "max %.3g, rel %.2g)",
               vname(c), v0, err, mx, err / mx);
    }
    free(X);
    free(Y);
    free(K);
    free(L);
    free(dK);
    free(dX);
}

static void test_degenerate(void)
{
    const int n = 32, p = 40;
    size_t nn = (size_t)n * n;
    float *X = falloc((size_t)n * p), *Z = falloc((size_t)n * p), *K = falloc(nn), *L = falloc(nn),
          *dK = falloc(nn), *dX = falloc((size_t)n * p);
    fill_normal(X, (size_t)n * p, 1.0);
    backend_cpu()->gram(n, p, X, L);
    backend_cpu()->gram(n, p, Z, K); /* Z is all zero */
    for (int c = 1; c >= 0; c--) {
        double v = cka_from_grams(n, K, L, c, dK);
        int allnan = 1;
        for (size_t t = 0; t < nn; t++)
            allnan &= isnan(dK[t]);
        backend_cpu()->gram_backward(n, p, Z, dK, dX); /* must not crash */
        tap_ok(isnan(v) && allnan, "%s: zero features in K -> NaN, dK all NaN", vname(c));
    }
    double v = cka_from_grams(n, L, K, 1, dK);
    int allnan = 1;
    for (size_t t = 0; t < nn; t++)
        allnan &= isnan(dK[t]);
    tap_ok(isnan(v) && allnan, "centered: zero features in L -> NaN, dK all NaN");

    rm_clear_error();
    double e1 = cka_from_grams(0, K, L, 1, NULL);
    int msg1 = rm_last_error()[0] != '\0';
    rm_clear_error();
    double e2 = cka_from_grams(n, NULL, L, 1, NULL);
    int msg2 = rm_last_error()[0] != '\0';
    tap_ok(e1 == -1.0 && e2 == -1.0 && msg1 && msg2, "invalid arguments -> -1 with a message (\"%s\")",
           rm_last_error());
    free(X);
    free(Z);
    free(K);
    free(L);
    free(dK);
    free(dX);
}

static void test_golden(void)
{
    const int n = 32, p = 200, q = 300;
    float *X = falloc((size_t)n * p), *Y = falloc((size_t)n * q);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < p; j++)
            X[(size_t)i * p + j] = (float)sin(0.1 * i + 0.37 * j);
        for (int j = 0; j < q; j++) {
            double s = sin(0.1 * i + 0.37 * j);
            Y[(size_t)i * q + j] = (float)(s * s + 0.5 * cos(0.013 * i * j + 0.2 * j));
        }
    }
    double c = cka_xy(n, p, X, q, Y, 1), u = cka_xy(n, p, X, q, Y, 0);
    tap_ok(fabs(c - GOLDEN_CENTERED) <= 1e-6, "golden centered (PyTorch tensor_cka): %.10f vs %.10f (diff %.2g)", c,
           GOLDEN_CENTERED, fabs(c - GOLDEN_CENTERED));
    tap_ok(fabs(u - GOLDEN_UNCENTERED) <= 1e-6, "golden uncentered (numpy float64): %.10f vs %.10f (diff %.2g)", u,
           GOLDEN_UNCENTERED, fabs(u - GOLDEN_UNCENTERED));
    free(X);
    free(Y);
}

int main(void)
{
    test_gram();
    test_naive();
    test_invariances();
    test_range();
    test_dK();
    test_dX();
    test_degenerate();
    test_golden();
    printf("1..%d\n", tap_n);
    return tap_done();
}
