/* Average and max pooling on the CPU, x (n,c,h,w) -> y (n,c,oh,ow): (n,c)
 * planes split over threads, so every thread writes only its own planes. */
#include "tensor/cpu_ops.h"

#include <math.h>

/* In-image rows [*lo, *hi) of the window of output row o; the padded window
 * length (for count_include_pad, as PyTorch) in *padded. */
static void pool_window(int o, int stride, int pad, int k, int len, int *lo,
                        int *hi, int *padded)
{
    int start = o * stride - pad, end = start + k;
    if (end > len + pad)
        end = len + pad;
    *padded = end - start;
    *lo = start < 0 ? 0 : start;
    *hi = end > len ? len : end;
}

void cpu_avgpool_forward(const pool_desc *d, const float *x, float *y, int acc)
{
    const size_t hw = (size_t)d->h * d->w, ohw = (size_t)d->oh * d->ow;
    const long planes = (long)d->n * d->c;
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if (planes * (long)ohw * d->k * d->k > CPU_PAR_MIN)
    for (long p = 0; p < planes; p++) {
        const float *xp = x + p * hw;
        float *yp = y + p * ohw;
        for (int oy = 0; oy < d->oh; oy++) {
            int y0, y1, ph;
            pool_window(oy, d->stride, d->pad, d->k, d->h, &y0, &y1, &ph);
            for (int ox = 0; ox < d->ow; ox++) {
                int x0, x1, pw;
                pool_window(ox, d->stride, d->pad, d->k, d->w, &x0, &x1, &pw);
                float s = 0.f;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++)
                        s += xp[(size_t)iy * d->w + ix];
                int cnt = d->count_include_pad ? ph * pw : (y1 - y0) * (x1 - x0);
                float v = s / (float)cnt;
                float *yo = yp + (size_t)oy * d->ow + ox;
                *yo = acc ? *yo + v : v;
            }
        }
    }
}

void cpu_avgpool_backward(const pool_desc *d, const float *dy, float *dx)
{
    const size_t hw = (size_t)d->h * d->w, ohw = (size_t)d->oh * d->ow;
    const long planes = (long)d->n * d->c;
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if (planes * (long)ohw * d->k * d->k > CPU_PAR_MIN)
    for (long p = 0; p < planes; p++) {
        const float *dyp = dy + p * ohw;
        float *dxp = dx + p * hw;
        for (int oy = 0; oy < d->oh; oy++) {
            int y0, y1, ph;
            pool_window(oy, d->stride, d->pad, d->k, d->h, &y0, &y1, &ph);
            for (int ox = 0; ox < d->ow; ox++) {
                int x0, x1, pw;
                pool_window(ox, d->stride, d->pad, d->k, d->w, &x0, &x1, &pw);
                int cnt = d->count_include_pad ? ph * pw : (y1 - y0) * (x1 - x0);
                float g = dyp[(size_t)oy * d->ow + ox] / (float)cnt;
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++)
                        dxp[(size_t)iy * d->w + ix] += g;
            }
        }
    }
}

void cpu_maxpool_forward(const pool_desc *d, const float *x, float *y, int acc,
                         int32_t *argmax)
{
    const size_t hw = (size_t)d->h * d->w, ohw = (size_t)d->oh * d->ow;
    const long planes = (long)d->n * d->c;
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if (planes * (long)ohw * d->k * d->k > CPU_PAR_MIN)
    for (long p = 0; p < planes; p++) {
        const float *xp = x + p * hw;
        float *yp = y + p * ohw;
        int32_t *ap = argmax ? argmax + p * ohw : NULL;
        for (int oy = 0; oy < d->oh; oy++) {
            int y0, y1, ph;
            pool_window(oy, d->stride, d->pad, d->k, d->h, &y0, &y1, &ph);
            for (int ox = 0; ox < d->ow; ox++) {
                int x0, x1, pw;
                pool_window(ox, d->stride, d->pad, d->k, d->w, &x0, &x1, &pw);
                /* first maximum wins; NaN propagates (as PyTorch) */
                float best = -INFINITY;
                int32_t at = y0 * d->w + x0;
                for (int iy = y0; iy < y1 && !isnan(best); iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        float v = xp[(size_t)iy * d->w + ix];
                        if (v > best || isnan(v)) {
                            best = v;
                            at = iy * d->w + ix;
                            if (isnan(v))
                                break;
                        }
                    }
                const size_t o = (size_t)oy * d->ow + ox;
                yp[o] = acc ? yp[o] + best : best;
                if (ap)
                    ap[o] = at;
            }
        }
    }
}

void cpu_maxpool_backward(const pool_desc *d, const float *dy,
                          const int32_t *argmax, float *dx)
{
    const size_t hw = (size_t)d->h * d->w, ohw = (size_t)d->oh * d->ow;
    const long planes = (long)d->n * d->c;
#pragma omp parallel for schedule(static) num_threads(cpu_threads()) \
    if (planes * (long)ohw > CPU_PAR_MIN)
    for (long p = 0; p < planes; p++) {
        const float *dyp = dy + p * ohw;
        const int32_t *ap = argmax + p * ohw;
        float *dxp = dx + p * hw;
        for (size_t o = 0; o < ohw; o++)
            dxp[ap[o]] += dyp[o];
    }
}
