#include "io/bench.h"

#include <csv.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

typedef struct reader {
    bench_table *t;
    long line;           /* 1-based line of the record being read */
    int field;           /* field index in the current record */
    int arch_col;        /* position of 'arch' in the header */
    int nfields;         /* header width */
    int *col_of_field;   /* header position -> numeric column or -1 */
    int cap_rows;
    nb201_arch cur;
    int have_arch;
    double *row;         /* values of the current record */
    int failed;
} reader;

static void fail(reader *r, const char *fmt, const char *a, const char *b)
{
    if (r->failed)
        return;
    char msg[600];
    snprintf(msg, sizeof msg, fmt, a, b);
    rm_error("%s line %ld: %s", r->t->path, r->line, msg);
    r->failed = 1;
}

static void on_field(void *s, size_t len, void *data)
{
    reader *r = data;
    bench_table *t = r->t;
    if (r->failed)
        return;
    char buf[512];
    if (len >= sizeof buf)
        len = sizeof buf - 1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    int f = r->field++;
    if (r->line == 1) { /* header */
        int *nc = realloc(r->col_of_field, (size_t)(f + 1) * sizeof *nc);
        if (!nc)
            return fail(r, "%s%s", "out of memory", "");
        r->col_of_field = nc;
        r->nfields = f + 1;
        if (!strcmp(buf, "arch")) {
            if (r->arch_col >= 0)
                return fail(r, "column '%s' twice in the header%s", buf, "");
            r->arch_col = f;
            nc[f] = -1;
            return;
        }
        for (int i = 0; i < t->ncols; i++)
            if (!strcmp(t->colname[i], buf))
                return fail(r, "column '%s' twice in the header%s", buf, "");
        char **cn = realloc(t->colname, (size_t)(t->ncols + 1) * sizeof *cn);
        if (!cn)
            return fail(r, "%s%s", "out of memory", "");
        t->colname = cn;
        if (!(cn[t->ncols] = strdup(buf)))
            return fail(r, "%s%s", "out of memory", "");
        nc[f] = t->ncols++;
        return;
    }
    if (f >= r->nfields)
        return fail(r, "more fields than the header's%s%s", "", "");
    if (f == r->arch_col) {
        if (nb201_parse(buf, &r->cur) < 0) {
            char m[400];
            snprintf(m, sizeof m, "%s", rm_last_error());
            return fail(r, "%s%s", m, "");
        }
        r->have_arch = 1;
        return;
    }
    int c = r->col_of_field[f];
    if (!*buf) {
        r->row[c] = NAN;
        return;
    }
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end || errno)
        return fail(r, "column '%s': '%s' is not a number", t->colname[c], buf);
    r->row[c] = v;
}

static void on_record(int term, void *data)
{
    (void)term;
    reader *r = data;
    bench_table *t = r->t;
    if (r->failed)
        return;
    if (r->line == 1) {
        if (r->arch_col < 0)
            return fail(r, "no 'arch' column in the header%s%s", "", "");
        if (!t->ncols)
            return fail(r, "no column besides 'arch' in the header%s%s", "", "");
        r->row = malloc((size_t)t->ncols * sizeof(double));
        if (!r->row)
            return fail(r, "%s%s", "out of memory", "");
    } else {
        if (r->field != r->nfields)
            return fail(r, "fewer fields than the header's%s%s", "", "");
        int idx = nb201_index(&r->cur);
        if (t->row_of[idx] >= 0)
            return fail(r, "architecture listed twice%s%s", "", "");
        if (t->nrows == r->cap_rows) {
            int nc = r->cap_rows ? 2 * r->cap_rows : 1024;
            double *nv = realloc(t->val, (size_t)nc * t->ncols * sizeof(double));
            if (!nv)
                return fail(r, "%s%s", "out of memory", "");
            t->val = nv;
            r->cap_rows = nc;
        }
        memcpy(t->val + (size_t)t->nrows * t->ncols, r->row, (size_t)t->ncols * sizeof(double));
        t->row_of[idx] = t->nrows++;
    }
    r->line++;
    r->field = 0;
    r->have_arch = 0;
}

int bench_load(const char *path, bench_table *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->path, sizeof t->path, "%s", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return rm_error("%s: %s", path, strerror(errno));
    t->row_of = malloc(NB201_COUNT * sizeof(int));
    struct csv_parser p;
    if (!t->row_of || csv_init(&p, CSV_STRICT | CSV_APPEND_NULL) != 0) {
        fclose(f);
        free(t->row_of);
        t->row_of = NULL;
        return rm_error("out of memory");
    }
    for (int i = 0; i < NB201_COUNT; i++)
        t->row_of[i] = -1;
    reader r = {.t = t, .line = 1, .arch_col = -1};
    char buf[65536];
    size_t n;
    int rc = 0;
    while (!r.failed && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (csv_parse(&p, buf, n, on_field, on_record, &r) != n) {
            rc = rm_error("%s line %ld: %s", path, r.line, csv_strerror(csv_error(&p)));
            break;
        }
    }
    if (!rc && !r.failed)
        csv_fini(&p, on_field, on_record, &r);
    csv_free(&p);
    fclose(f);
    free(r.col_of_field);
    free(r.row);
    if (!rc && r.failed)
        rc = -1;
    if (!rc && t->nrows == 0)
        rc = rm_error("%s: no rows", path);
    if (rc)
        bench_free(t);
    return rc;
}

void bench_free(bench_table *t)
{
    for (int i = 0; i < t->ncols; i++)
        free(t->colname[i]);
    free(t->colname);
    free(t->val);
    free(t->row_of);
    memset(t, 0, sizeof *t);
}

int bench_column(const bench_table *t, const char *name)
{
    for (int i = 0; i < t->ncols; i++)
        if (!strcmp(t->colname[i], name))
            return i;
    char list[512];
    size_t o = 0;
    for (int i = 0; i < t->ncols && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", t->colname[i]);
    return rm_error("no column '%s' in %s (columns: %s)", name, t->path, list);
}

int bench_row(const bench_table *t, const nb201_arch *a)
{
    return t->row_of ? t->row_of[nb201_index(a)] : -1;
}

double bench_value(const bench_table *t, int row, int col)
{
    if (row < 0 || col < 0 || row >= t->nrows || col >= t->ncols)
        return NAN;
    return t->val[(size_t)row * t->ncols + col];
}

int bench_count_above(const bench_table *t, int col, double v, int *n, double *best)
{
    int above = 0;
    *n = 0;
    *best = NAN;
    for (int row = 0; row < t->nrows; row++) {
        const double x = bench_value(t, row, col);
        if (isnan(x))
            continue;
        ++*n;
        above += x > v;
        if (isnan(*best) || x > *best)
            *best = x;
    }
    return above;
}

typedef struct {
    double v;
    int row, idx;
} bench_key;

static int by_value_desc(const void *pa, const void *pb)
{
    const bench_key *a = pa, *b = pb;
    if (a->v != b->v)
        return a->v > b->v ? -1 : 1;
    return (a->row > b->row) - (a->row < b->row);
}

int bench_sorted(const bench_table *t, int col, int *idx)
{
    bench_key *k = malloc(NB201_COUNT * sizeof *k);
    if (!k)
        return rm_error("out of memory");
    int n = 0;
    for (int i = 0; i < NB201_COUNT; i++) {
        const double v = t->row_of[i] < 0 ? NAN : bench_value(t, t->row_of[i], col);
        if (!isnan(v))
            k[n++] = (bench_key){v, t->row_of[i], i};
    }
    qsort(k, (size_t)n, sizeof *k, by_value_desc);
    for (int i = 0; i < n; i++)
        idx[i] = k[i].idx;
    free(k);
    return n;
}
