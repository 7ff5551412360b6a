/* Rank correlations for judging a proxy against ground truth. */
#ifndef RM_STATS_H
#define RM_STATS_H

/* Kendall's tau-b (ties in either variable handled as scipy's kendalltau). */
double kendall_tau_b(const double *x, const double *y, int n);
/* Spearman's rho: Pearson correlation of the ranks (ties get average ranks). */
double spearman_rho(const double *x, const double *y, int n);
/* Ranks 1..n with average ranks for ties; -1 when out of memory. */
int rank_average(const double *x, int n, double *rank);
/* The q-quantile (0..1) with linear interpolation, as numpy's default. */
double quantile(const double *x, int n, double q);

#endif
