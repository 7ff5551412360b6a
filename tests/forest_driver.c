/* Command-line driver of the random forest for tests/forest_vs_sklearn.py
 * (not built by make; the script compiles it).
 *
 *   forest_driver TRAIN.csv TEST.csv SEED OUT.csv
 *
 * CSV rows without a header: label, feature_1, ..., feature_d. Fits a forest
 * with the default options (30 trees) and the given seed on TRAIN
 * (n_classes = largest training label + 1), writes the class probabilities
 * of every TEST row to OUT (n_classes comma-separated values per line) and
 * prints "nodes_per_tree X" (mean tree size, from the serialized image).
 * Exit status 1 with a message on stderr on any failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search/forest.h"
#include "util/err.h"

typedef struct table {
    int n, d;
    double *x; /* n x d */
    int *y;
    size_t nx, cap_x, cap_y;
} table;

static int table_push(table *t, int label, const double *row, int d)
{
    if ((size_t)t->n == t->cap_y) {
        t->cap_y = t->cap_y ? 2 * t->cap_y : 1024;
        int *y = realloc(t->y, t->cap_y * sizeof *y);
        if (!y)
            return rm_error("out of memory");
        t->y = y;
    }
    while (t->nx + (size_t)d > t->cap_x) {
        t->cap_x = t->cap_x ? 2 * t->cap_x : 16384;
        double *x = realloc(t->x, t->cap_x * sizeof *x);
        if (!x)
            return rm_error("out of memory");
        t->x = x;
    }
    memcpy(t->x + t->nx, row, (size_t)d * sizeof *row);
    t->nx += (size_t)d;
    t->y[t->n++] = label;
    return 0;
}

/* Read path into t (zeroed first); every row must have the same width. */
static int table_read(const char *path, table *t)
{
    enum { MAX_D = 4096 };
    static double row[MAX_D];
    FILE *fp = fopen(path, "r");
    if (!fp)
        return rm_error("%s: cannot open", path);
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    memset(t, 0, sizeof *t);
    t->d = -1;
    while (rc == 0 && getline(&line, &cap, fp) > 0) {
        char *p = line, *end;
        if (*p == '\n')
            continue;
        int label = (int)strtol(p, &end, 10), d = 0;
        if (end == p) {
            rc = rm_error("%s: row %d: no label", path, t->n + 1);
            break;
        }
        for (p = end; *p == ',' && d < MAX_D; p = end) {
            row[d++] = strtod(p + 1, &end);
            if (end == p + 1) {
                rc = rm_error("%s: row %d: bad feature %d", path, t->n + 1, d);
                break;
            }
        }
        if (rc == 0 && t->d >= 0 && d != t->d)
            rc = rm_error("%s: row %d has %d features, expected %d", path, t->n + 1, d, t->d);
        if (rc == 0) {
            t->d = d;
            rc = table_push(t, label, row, d);
        }
    }
    free(line);
    fclose(fp);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s TRAIN.csv TEST.csv SEED OUT.csv\n", argv[0]);
        return 1;
    }
    table tr, te;
    forest *f = NULL;
    if (table_read(argv[1], &tr) < 0 || table_read(argv[2], &te) < 0) {
        fprintf(stderr, "%s\n", rm_last_error());
        return 1;
    }
    if (te.d != tr.d) {
        fprintf(stderr, "train has %d features, test %d\n", tr.d, te.d);
        return 1;
    }
    int nc = 0;
    for (int i = 0; i < tr.n; i++)
        nc = tr.y[i] + 1 > nc ? tr.y[i] + 1 : nc;
    forest_opts o;
    forest_opts_default(&o);
    o.seed = strtoull(argv[3], NULL, 10);
    if (forest_fit(&f, tr.x, tr.y, tr.n, tr.d, nc, &o) < 0) {
        fprintf(stderr, "%s\n", rm_last_error());
        return 1;
    }
    double *p = malloc((size_t)te.n * nc * sizeof *p);
    FILE *out = fopen(argv[4], "w");
    if (!p || !out) {
        fprintf(stderr, "%s: cannot write\n", argv[4]);
        return 1;
    }
    forest_predict_proba(f, te.x, te.n, p);
    for (int i = 0; i < te.n; i++)
        for (int k = 0; k < nc; k++)
            fprintf(out, "%.17g%c", p[(size_t)i * nc + k], k + 1 < nc ? ',' : '\n');
    fclose(out);

    /* tree sizes from the documented image: a u32 node count heads each tree */
    unsigned char *buf = NULL;
    size_t len = 0, off = 24, nb = 3 * 4 + 8 + 8 * (size_t)nc, nodes = 0;
    if (forest_serialize(f, &buf, &len) < 0) {
        fprintf(stderr, "%s\n", rm_last_error());
        return 1;
    }
    for (int t = 0; t < o.n_trees; t++) {
        size_t k = buf[off] | buf[off + 1] << 8 | buf[off + 2] << 16 | (size_t)buf[off + 3] << 24;
        nodes += k;
        off += 4 + k * nb;
    }
    printf("nodes_per_tree %.3f\n", (double)nodes / o.n_trees);
    free(buf);
    free(p);
    forest_free(f);
    free(tr.x);
    free(tr.y);
    free(te.x);
    free(te.y);
    return 0;
}
