/* TAP test of the rank statistics that judge a proxy against the benchmark
 * (src/util/stats.c): Kendall's tau-b and Spearman's rho (rank, search and
 * the paper's tables report them) and numpy's linear quantile (RMI-NAS's
 * threshold tau).
 *
 * Goldens: SciPy 1.10.1 (scipy.stats.kendalltau, scipy.stats.spearmanr) and
 * NumPy 1.24.2 (numpy.quantile, default method), Debian 12's python3-scipy
 * and python3-numpy, on the data below, rebuilt in Python from the same
 * integer formulas:
 *   x[i] = ((37 i + 11) mod MX) / 4
 *   y[i] = ((13 i^2 + 5 i + 3) mod MY) - 20
 *   z[i] = 1.7 x[i] - 0.01 y[i]          (quantiles)
 * with (n, MX, MY) = (10, 1000, 1000) (no ties), (25, 7, 11), (200, 31, 53)
 * and (1000, 97, 1009) (ties in both, and pairs tied in both).
 * Properties: tau and rho are 1 for a strictly increasing transform, -1 for
 * a decreasing one, NaN for a constant variable or fewer than 2 points;
 * they are symmetric in x and y; average ranks of ties; a quantile lies at
 * the order statistics for q = k/(n-1). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tap.h"
#include "util/stats.h"

typedef struct golden {
    int n, mx, my;
    double tau, rho, q[6];
} golden;

static const double qs[6] = {0, 0.05, 0.3, 0.5, 0.77, 1};

static const golden goldens[] = {
    {10, 1000, 1000, 0.7333333333333333, 0.7454545454545454,
     {4.845, 11.84025, 46.192499999999995, 72.7175, 107.22104999999999, 145.39}},
    {25, 7, 11, -0.16064739110755247, -0.209408121562847,
     {0.1, 0.15000000000000002, 0.958, 1.4449999999999998, 2.2898, 2.75}},
    {200, 31, 53, 0.018186119608474004, 0.02666666209173433,
     {-0.21, 0.44350000000000006, 3.836, 6.37, 9.9373, 12.91}},
    {1000, 97, 1009, 0.01036996973397927, 0.015330655105141283,
     {-9.0, -3.562, 7.095999999999999, 15.544999999999998, 26.4892, 39.629999999999995}},
};

static void fill(int n, int mx, int my, double *x, double *y, double *z)
{
    for (int i = 0; i < n; i++) {
        long long li = i;
        x[i] = (double)((37 * li + 11) % mx) / 4;
        y[i] = (double)((13 * li * li + 5 * li + 3) % my) - 20;
        z[i] = x[i] * 1.7 - y[i] * 0.01;
    }
}

static int close_to(double a, double b, double tol) { return fabs(a - b) <= tol; }

int main(void)
{
    tap_plan(26);
    enum { N = 1000 };
    double *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y), *z = malloc(N * sizeof *z),
           *w = malloc(N * sizeof *w), *r = malloc(N * sizeof *r);
    if (!x || !y || !z || !w || !r)
        return 99;

    for (size_t k = 0; k < sizeof goldens / sizeof *goldens; k++) {
        const golden *g = &goldens[k];
        fill(g->n, g->mx, g->my, x, y, z);
        double tau = kendall_tau_b(x, y, g->n), rho = spearman_rho(x, y, g->n);
        tap_ok(close_to(tau, g->tau, 1e-12), "n %d: Kendall tau-b %.17g (SciPy %.17g)", g->n, tau,
               g->tau);
        tap_ok(close_to(rho, g->rho, 1e-12), "n %d: Spearman rho %.17g (SciPy %.17g)", g->n, rho,
               g->rho);
        tap_ok(kendall_tau_b(y, x, g->n) == tau && spearman_rho(y, x, g->n) == rho,
               "n %d: symmetric in x and y", g->n);
        double worst = 0;
        for (int j = 0; j < 6; j++) {
            double v = quantile(z, g->n, qs[j]);
            double e = fabs(v - g->q[j]) / (fabs(g->q[j]) > 1 ? fabs(g->q[j]) : 1);
            worst = e > worst ? e : worst;
        }
        tap_ok(worst <= 1e-12, "n %d: quantiles at 0, .05, .3, .5, .77, 1 as NumPy's (worst %.2g)",
               g->n, worst);
    }

    /* monotone transforms, with the ties of the (25, 7, 11) data */
    fill(25, 7, 11, x, y, z);
    for (int i = 0; i < 25; i++)
        w[i] = exp(x[i]) - 3;
    tap_ok(kendall_tau_b(x, w, 25) == 1 && fabs(spearman_rho(x, w, 25) - 1) < 1e-15,
           "an increasing transform: tau 1, rho 1 (ties in both)");
    for (int i = 0; i < 25; i++)
        w[i] = -x[i] * x[i] * x[i];
    tap_ok(kendall_tau_b(x, w, 25) == -1 && fabs(spearman_rho(x, w, 25) + 1) < 1e-15,
           "a decreasing transform: tau -1, rho -1");
    for (int i = 0; i < 25; i++)
        w[i] = 4.5;
    tap_ok(isnan(kendall_tau_b(x, w, 25)) && isnan(spearman_rho(x, w, 25)),
           "a constant variable: NaN");
    tap_ok(isnan(kendall_tau_b(x, y, 1)) && isnan(spearman_rho(x, y, 1)) &&
               isnan(kendall_tau_b(x, y, 0)) && isnan(spearman_rho(x, y, 0)),
           "fewer than 2 points: NaN");

    /* average ranks: 3 1 3 2 3 -> 4 1 4 2 4 */
    const double t[5] = {3, 1, 3, 2, 3};
    const double want[5] = {4, 1, 4, 2, 4};
    int same = rank_average(t, 5, r) == 0;
    for (int i = 0; i < 5; i++)
        same = same && r[i] == want[i];
    tap_ok(same, "average ranks of ties: 3 1 3 2 3 -> %g %g %g %g %g", r[0], r[1], r[2], r[3],
           r[4]);
    tap_ok(rank_average(t, 0, r) == 0, "ranks of nothing: no error");

    /* quantiles at the order statistics and between them */
    const double s[5] = {10, -2, 7, 3, 0}; /* sorted: -2 0 3 7 10 */
    tap_ok(quantile(s, 5, 0) == -2 && quantile(s, 5, 0.25) == 0 && quantile(s, 5, 0.5) == 3 &&
               quantile(s, 5, 0.75) == 7 && quantile(s, 5, 1) == 10,
           "quantile at q = k/(n-1) is the k-th order statistic");
    tap_ok(quantile(s, 5, 0.125) == -1 && quantile(s, 5, 0.625) == 5,
           "quantile between order statistics: linear (-1, 5)");
    tap_ok(quantile(s, 1, 0.3) == 10 && isnan(quantile(s, 0, 0.5)),
           "quantile of one value is it; of none NaN");

    /* the reference's use: 5 % quantile of 100 scores is between the 5th and 6th smallest */
    for (int i = 0; i < 100; i++)
        w[i] = (double)((i * 53 + 7) % 100) / 100.;
    double q5 = quantile(w, 100, 0.05);
    tap_ok(close_to(q5, 0.0495, 1e-15), "5 %% quantile of 0.00..0.99: %.17g (0.0495)", q5);

    free(x);
    free(y);
    free(z);
    free(w);
    free(r);
    return tap_done();
}
