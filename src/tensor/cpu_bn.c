/* Batch normalization on the CPU, x (n,c,hw): channels split over threads,
 * per-channel sums in double (each float plane sums in vector lanes first). */
#include "tensor/cpu_ops.h"

#include <math.h>

/* sum and sum of squares of x over (n, hw) for one channel */
CPU_HOT static void bn_moments(int n, int c, int hw, const float *x, int ch, double *sum,
                       double *sumsq)
{
    double s = 0., ss = 0.;
    for (int i = 0; i < n; i++) {
        const float *xp = x + ((size_t)i * c + ch) * hw;
#pragma omp simd reduction(+ : s, ss)
        for (int j = 0; j < hw; j++) {
            double v = xp[j];
            s += v;
            ss += v * v;
        }
    }
    *sum = s;
    *sumsq = ss;
}

/* y = x*scale + shift over one channel, written or accumulated */
CPU_HOT static void bn_apply(int n, int c, int hw, const float *x, float *y, int ch,
                     float scale, float shift, int acc)
{
    for (int i = 0; i < n; i++) {
        const size_t o = ((size_t)i * c + ch) * hw;
        const float *xp = x + o;
        float *yp = y + o;
        if (acc) {
#pragma omp simd
            for (int j = 0; j < hw; j++)
                yp[j] += xp[j] * scale + shift;
        } else {
#pragma omp simd
            for (int j = 0; j < hw; j++)
                yp[j] = xp[j] * scale + shift;
        }
    }
}

void cpu_bn_forward_train(int n, int c, int hw, const float *x,
                          const float *gamma, const float *beta, float *y,
                          int acc, float *save_mean, float *save_invstd,
                          float *running_mean, float *running_var,
                          float momentum, float eps)
{
    const double m = (double)n * hw;
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if ((long)n * c * hw > CPU_PAR_MIN)
    for (int ch = 0; ch < c; ch++) {
        double sum, sumsq;
        bn_moments(n, c, hw, x, ch, &sum, &sumsq);
        double mean = sum / m;
        double var = sumsq / m - mean * mean; /* biased */
        if (var < 0.)
            var = 0.;
        double invstd = 1. / sqrt(var + eps);
        if (save_mean)
            save_mean[ch] = (float)mean;
        if (save_invstd)
            save_invstd[ch] = (float)invstd;
        if (running_mean) {
            double unbiased = m > 1. ? var * m / (m - 1.) : var;
            running_mean[ch] = (float)((1. - momentum) * running_mean[ch] +
                                       momentum * mean);
            running_var[ch] = (float)((1. - momentum) * running_var[ch] +
                                      momentum * unbiased);
        }
        double g = gamma ? gamma[ch] : 1., bt = beta ? beta[ch] : 0.;
        double scale = g * invstd;
        bn_apply(n, c, hw, x, y, ch, (float)scale, (float)(bt - mean * scale), acc);
    }
}

void cpu_bn_forward_eval(int n, int c, int hw, const float *x,
                         const float *gamma, const float *beta, float *y,
                         int acc, const float *running_mean,
                         const float *running_var, float eps)
{
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if ((long)n * c * hw > CPU_PAR_MIN)
    for (int ch = 0; ch < c; ch++) {
        double g = gamma ? gamma[ch] : 1., bt = beta ? beta[ch] : 0.;
        double scale = g / sqrt((double)running_var[ch] + eps);
        bn_apply(n, c, hw, x, y, ch, (float)scale,
                 (float)(bt - running_mean[ch] * scale), acc);
    }
}

/* sums of dy and of dy*(x - mean) over one channel */
CPU_HOT static void bn_dsums(int n, int c, int hw, const float *x, const float *dy, int ch,
                             float mean, double *sdy_out, double *sdyx_out)
{
    double sdy = 0., sdyx = 0.;
    for (int i = 0; i < n; i++) {
        const size_t o = ((size_t)i * c + ch) * hw;
        const float *xp = x + o, *dyp = dy + o;
#pragma omp simd reduction(+ : sdy, sdyx)
        for (int j = 0; j < hw; j++) {
            sdy += dyp[j];
            sdyx += (double)dyp[j] * (xp[j] - mean);
        }
    }
    *sdy_out = sdy;
    *sdyx_out = sdyx;
}

/* dx += k*dy + kx*(x - mean) + k0 over one channel */
CPU_HOT static void bn_dx(int n, int c, int hw, const float *x, const float *dy, float *dx,
                          int ch, float mean, float k, float kx, float k0, int acc)
{
    for (int i = 0; i < n; i++) {
        const size_t o = ((size_t)i * c + ch) * hw;
        const float *xp = x + o, *dyp = dy + o;
        float *dxp = dx + o;
        if (acc) {
#pragma omp simd
            for (int j = 0; j < hw; j++)
                dxp[j] += k * dyp[j] + kx * (xp[j] - mean) + k0;
        } else {
#pragma omp simd
            for (int j = 0; j < hw; j++)
                dxp[j] = k * dyp[j] + kx * (xp[j] - mean) + k0;
        }
    }
}

/* With xhat = (x - mean)*invstd and m = n*hw:
 *   dbeta = sum(dy), dgamma = sum(dy*xhat),
 *   dx = gamma*invstd*(dy - dbeta/m - xhat*dgamma/m). */
void cpu_bn_backward(int n, int c, int hw, const float *x, const float *gamma,
                     const float *save_mean, const float *save_invstd,
                     const float *dy, float *dx, float *dgamma, float *dbeta, int dx_acc)
{
    const double m = (double)n * hw;
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if ((long)n * c * hw > CPU_PAR_MIN)
    for (int ch = 0; ch < c; ch++) {
        const float mean = save_mean[ch];
        const double invstd = save_invstd[ch];
        double sdy, sdyx; /* sums of dy and dy*(x - mean) */
        bn_dsums(n, c, hw, x, dy, ch, mean, &sdy, &sdyx);
        if (dgamma)
            dgamma[ch] += (float)(sdyx * invstd);
        if (dbeta)
            dbeta[ch] += (float)sdy;
        if (!dx)
            continue;
        const double g = gamma ? gamma[ch] : 1.;
        /* dx = k*dy + kx*(x - mean) + k0 */
        const float k = (float)(g * invstd);
        const float kx = (float)(-g * invstd * invstd * invstd * sdyx / m);
        const float k0 = (float)(-g * invstd * sdy / m);
        bn_dx(n, c, hw, x, dy, dx, ch, mean, k, kx, k0, dx_acc);
    }
}
