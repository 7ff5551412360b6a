/* Benchmark ground truth: a CSV table keyed by architecture string (the
 * NAS-Bench-201 files in shared/data/nb201), read with libcsv. Rows are
 * joined by the parsed architecture, never by the file's own index. */
#ifndef RM_BENCH_H
#define RM_BENCH_H

#include "space/nb201.h"

typedef struct bench_table {
    int nrows, ncols;      /* numeric columns (every column but 'arch') */
    char **colname;        /* (ncols) */
    double *val;           /* (nrows, ncols); NaN where a cell is empty */
    int *row_of;           /* (NB201_COUNT) canonical index -> row, or -1 */
    char path[1024];
} bench_table;

/* Errors name the file, the line and the column. */
int bench_load(const char *path, bench_table *t);
void bench_free(bench_table *t);
/* Column index by name, or -1 with rm_error listing the columns. */
int bench_column(const bench_table *t, const char *name);
/* The row of an architecture, or -1 when the table lacks it. */
int bench_row(const bench_table *t, const nb201_arch *a);
double bench_value(const bench_table *t, int row, int col);
/* How many rows hold a value of column col above v (a row with value v
 * ranks one after them), and in *n how many hold a value at all; *best is
 * the highest value (NaN when none). */
int bench_count_above(const bench_table *t, int col, double v, int *n, double *best);
/* The rows with a value in column col, best (highest) first, ties in the
 * table's row order: their canonical NAS-Bench-201 indices go
 * to idx (room for NB201_COUNT); returns how many. */
int bench_sorted(const bench_table *t, int col, int *idx);

#endif
