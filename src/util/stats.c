#include "util/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double kendall_tau_b(const double *x, const double *y, int n)
{
    long long conc = 0, disc = 0, tx = 0, ty = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double dx = x[i] - x[j], dy = y[i] - y[j];
            if (x[i] == x[j] && y[i] == y[j])
                continue; /* tied in both: counts in neither */
            if (x[i] == x[j])
                tx++;
            else if (y[i] == y[j])
                ty++;
            else if ((dx > 0) == (dy > 0))
                conc++;
            else
                disc++;
        }
    double den = sqrt((double)(conc + disc + tx) * (double)(conc + disc + ty));
    return den > 0 ? (double)(conc - disc) / den : NAN;
}

static _Thread_local const double *sort_key; /* qsort has no context argument */
static int by_key(const void *a, const void *b)
{
    double x = sort_key[*(const int *)a], y = sort_key[*(const int *)b];
    return x < y ? -1 : x > y;
}

int rank_average(const double *x, int n, double *rank)
{
    int *o = malloc((size_t)(n > 0 ? n : 1) * sizeof *o);
    if (!o)
        return -1;
    for (int i = 0; i < n; i++)
        o[i] = i;
    sort_key = x;
    qsort(o, (size_t)n, sizeof *o, by_key);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && x[o[j + 1]] == x[o[i]])
            j++;
        double r = (i + j) / 2.0 + 1;
        for (int k = i; k <= j; k++)
            rank[o[k]] = r;
        i = j + 1;
    }
    free(o);
    return 0;
}

double spearman_rho(const double *x, const double *y, int n)
{
    double *rx = malloc((size_t)n * sizeof *rx), *ry = malloc((size_t)n * sizeof *ry);
    double rho = NAN;
    if (rx && ry && n > 1 && rank_average(x, n, rx) == 0 && rank_average(y, n, ry) == 0) {
        double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < n; i++) {
            mx += rx[i];
            my += ry[i];
        }
        mx /= n;
        my /= n;
        for (int i = 0; i < n; i++) {
            sxy += (rx[i] - mx) * (ry[i] - my);
            sxx += (rx[i] - mx) * (rx[i] - mx);
            syy += (ry[i] - my) * (ry[i] - my);
        }
        rho = sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
    }
    free(rx);
    free(ry);
    return rho;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double quantile(const double *x, int n, double q)
{
    if (n <= 0)
        return NAN;
    double *s = malloc((size_t)n * sizeof *s);
    if (!s)
        return NAN;
    memcpy(s, x, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double pos = q * (n - 1);
    int lo = (int)floor(pos);
    int hi = lo + 1 < n ? lo + 1 : lo;
    double v = s[lo] + (pos - lo) * (s[hi] - s[lo]);
    free(s);
    return v;
}
