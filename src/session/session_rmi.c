/* Session commands around the RMI score: the benchmark table, the selected
 * batch, the current architecture and its student, ranking, CSV export. */
#include <csv.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "session/score_pool.h"
#include "session/session.h"
#include "tensor/profile.h"
#include "util/atomic.h"
#include "util/err.h"
#include "util/rng.h"
#include "util/stats.h"

int session_load_benchmark(session *s, const char *file)
{
    char path[1024];
    if (!file) {
        if (session_find_data("nb201.csv", path, sizeof path) < 0)
            return rm_error_context("no bundled benchmark table; give a FILE");
        file = path;
    }
    bench_table t;
    if (bench_load(file, &t) < 0)
        return -1;
    bench_free(&s->bench);
    s->bench = t;
    session_fit_bench_column(s);
    return 0;
}

/* A column to fall back on in t: cifar10_test, else the first accuracy
 * column (not the row number "index"); NULL where t has none. */
static const char *bench_default_column(const bench_table *t)
{
    const char *first = NULL;
    for (int i = 0; i < t->ncols; i++) {
        if (!strcmp(t->colname[i], "cifar10_test"))
            return t->colname[i];
        if (!first && strcmp(t->colname[i], "index"))
            first = t->colname[i];
    }
    return first;
}

void session_fit_bench_column(session *s)
{
    const bench_table *tabs[2] = {&s->bench, &s->bench_eval};
    for (int i = 0; i < 2; i++)
        if (tabs[i]->nrows && bench_column(tabs[i], s->bench_column) >= 0)
            return;
    rm_clear_error();
    for (int i = 0; i < 2; i++) {
        const char *c = tabs[i]->nrows ? bench_default_column(tabs[i]) : NULL;
        if (c) {
            snprintf(s->bench_column, sizeof s->bench_column, "%s", c);
            return;
        }
    }
}

int session_select_batch(session *s)
{
    if (!s->teacher.g)
        return rm_error("no teacher loaded (load teacher resnet20 [FILE])");
    if (!s->train.n)
        return rm_error("no dataset loaded (load dataset cifar10 DIR)");
    rmi_data d;
    int rc = rmi_select(&d, &s->teacher, &s->train, &s->rmi);
    /* the teacher's pool-sized buffers are not needed again for a search */
    graph_unplan(s->teacher.g);
    if (rc < 0)
        return -1;
    session_drop_batch(s);
    s->data = d;
    return 0;
}

int session_need_batch(session *s)
{
    const rmi_settings *a = &s->data.settings, *b = &s->rmi;
    if (s->data.n && a->batch == b->batch && a->gamma == b->gamma &&
        a->teacher_bn == b->teacher_bn && a->data_seed == b->data_seed)
        return 0;
    return session_select_batch(s);
}

int session_parse_arch(const session *s, const char *str, sarch *a)
{
    const char *p = str;
    while (isspace((unsigned char)*p))
        p++;
    const int nd = (int)strspn(p, "0123456789");
    const char *q = p + nd;
    while (isspace((unsigned char)*q))
        q++;
    if (s->sp != &space_nb201 || !nd || *q)
        return s->sp->parse(str, a);
    /* a number: NAS-Bench-201's index, from the table's index column (a
     * number too large for any index matches none) */
    const bench_table *t = &s->bench;
    if (!t->nrows)
        return rm_error("architecture %.*s: a number is NAS-Bench-201's index of an "
                        "architecture, read from the benchmark table (load benchmark nb201 "
                        "first)", nd, p);
    const int col = bench_column(t, "index");
    if (col < 0)
        return rm_error("architecture %.*s: the benchmark table %s has no index column", nd, p,
                        t->path);
    const double k = strtod(p, NULL);
    for (int i = 0; i < NB201_COUNT; i++)
        if (t->row_of[i] >= 0 && bench_value(t, t->row_of[i], col) == k) {
            nb201_arch na;
            nb201_from_index(i, &na);
            *a = nb201_to_sarch(&na);
            return 0;
        }
    return rm_error("architecture %.*s: no architecture has that index in %s", nd, p, t->path);
}

int session_arch_set(session *s, const char *str)
{
    sarch a;
    if (session_parse_arch(s, str, &a) < 0)
        return -1;
    s->arch = a;
    s->arch_sp = s->sp;
    s->have_arch = 1;
    rmi_eval_free(&s->eval);
    return 0;
}

/* n distinct architectures of a space that cannot be enumerated */
static int sample_distinct(session *s, int n, sarch *out)
{
    const space *sp = s->sp;
    for (int i = 0; i < n; i++) {
        int dup = 1;
        for (int t = 0; t < 1000 && dup; t++) {
            sp->sample(&s->sample_rng, &out[i]);
            dup = 0;
            for (int j = 0; j < i && !dup; j++)
                dup = space_equal(sp, &out[i], &out[j]);
        }
        if (dup)
            return rm_error("could not sample %d distinct architectures", n);
    }
    return 0;
}

int session_sample(session *s, int n, sarch *out)
{
    if (!s->sp->count) {
        if (n < 1 || n > 100000)
            return rm_error("can sample 1 to 100000 architectures at a time, not %d", n);
        return sample_distinct(s, n, out);
    }
    /* an enumerable space: a partial Fisher-Yates over its indices */
    const int count = s->sp->count;
    if (n < 1 || n > count)
        return rm_error("can sample 1 to %d distinct architectures, not %d", count, n);
    int *idx = malloc((size_t)count * sizeof *idx);
    if (!idx)
        return rm_error("out of memory");
    for (int i = 0; i < count; i++)
        idx[i] = i;
    for (int i = 0; i < n; i++) {
        int j = i + (int)rng_below(&s->sample_rng, (uint64_t)(count - i));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        s->sp->unindex(idx[i], &out[i]);
    }
    free(idx);
    return 0;
}

int session_student_init(session *s)
{
    if (!s->have_arch)
        return rm_error("no architecture (arch set STRING or arch sample)");
    if (session_need_batch(s) < 0)
        return -1;
    rmi_eval_free(&s->eval);
    model m;
    if (s->arch_sp->build(&m, s->be, &s->arch, s->data.nclass, s->data.hw) < 0)
        return -1;
    return rmi_eval_start_model(&s->eval, s->be, &m, &s->data, &s->rmi);
}

int session_student_step(session *s, int n, step_callback cb, void *user)
{
    if (!s->eval.student.g && session_student_init(s) < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        if (s->eval.step >= s->eval.s.steps)
            return rm_error("the student has done all %d steps (init for a new one, or set "
                            "steps higher before init)", s->eval.s.steps);
        if (s->eval.diverged)
            return rm_error("the loss is no longer finite (score +inf); init for a new student");
        if (rmi_eval_step(&s->eval) < 0)
            return -1;
        if ((cb && cb(&s->eval, user)) || s->interrupt)
            return 1;
    }
    return 0;
}

int session_score(session *s, const sarch *a, rmi_result *r)
{
    if (session_need_batch(s) < 0)
        return -1;
    model m;
    if (s->sp->build(&m, s->be, a, s->data.nclass, s->data.hw) < 0)
        return -1;
    return rmi_score_model(s->be, &m, &s->data, &s->rmi, r, &s->interrupt, s->step_hook,
                           s->hook_user);
}

/* ---- CSV ---- */

/* Plain fields as they are (numbers stay numbers for plotting tools);
 * fields that need quoting go through libcsv. */
static int write_field(FILE *f, const char *s, int last)
{
    if (strpbrk(s, ",\"\r\n") ? csv_fwrite(f, s, strlen(s)) != 0 : fputs(s, f) == EOF)
        return -1;
    return fputc(last ? '\n' : ',', f) == EOF ? -1 : 0;
}

static int write_row(FILE *f, const char *const *fields, int n)
{
    for (int i = 0; i < n; i++)
        if (write_field(f, fields[i], i == n - 1) < 0)
            return -1;
    return 0;
}

static void fmt_double(char *buf, size_t size, double v)
{
    if (isinf(v))
        snprintf(buf, size, v > 0 ? "inf" : "-inf");
    else if (isnan(v))
        snprintf(buf, size, "nan");
    else
        snprintf(buf, size, "%.9g", v);
}

static void fmt_exact(char *buf, size_t size, double v)
{
    if (isfinite(v))
        snprintf(buf, size, "%.17g", v);
    else
        fmt_double(buf, size, v);
}

/* ---- the score log: one CSV row per scored architecture, appended (and
 * synced) as it is scored, with the settings that decide a score in
 * LOG.settings. rank and the search's RMI evaluator take scores already in
 * it from there, so a killed ranking loses nothing and searches under the
 * same settings share their evaluations. ---- */

/* the log's columns before the benchmark one */
static const char *const log_cols[9] = {"arch", "score", "cka1", "cka2", "cka3", "ce",
                                        "seconds", "params", "flops"};

static void rank_header(const session *s, const char **hdr)
{
    static char col[80];
    snprintf(col, sizeof col, "%s", s->bench_column);
    for (int i = 0; i < 9; i++)
        hdr[i] = log_cols[i];
    hdr[9] = col;
}

/* exact: every digit of the double (the log), else 9 (exports for plotting) */
static int rank_row(FILE *f, const space *sp, const rank_entry *e, int exact)
{
    char arch[SPACE_STRLEN], b[6][64], c[3][64];
    void (*fmt)(char *, size_t, double) = exact ? fmt_exact : fmt_double;
    sp->format(&e->arch, arch, sizeof arch);
    fmt(b[0], 64, e->r.score);
    for (int i = 0; i < RMI_LAYERS; i++)
        fmt(b[1 + i], 64, e->r.cka[i]);
    fmt(b[4], 64, e->r.ce);
    snprintf(b[5], 64, "%.3f", e->r.seconds);
    snprintf(c[0], 64, "%lld", e->params);
    snprintf(c[1], 64, "%lld", e->macs);
    fmt_double(c[2], 64, e->bench);
    const char *row[] = {arch, b[0], b[1], b[2], b[3], b[4], b[5], c[0], c[1], c[2]};
    return write_row(f, row, 10);
}

/* What decides a score, as one line, kept in LOG.settings. On the CPU the
 * thread count does too (convolution weight gradients are summed per
 * thread); it is written only when not 1, so logs from before it was
 * recorded (all scored at 1 thread) keep their line. */
void session_scored_on(const session *s, char *buf, size_t size)
{
    if (!strcmp(s->be->name, "cpu"))
        snprintf(buf, size, "device cpu threads %d", s->threads);
    else
        snprintf(buf, size, "device %s%s%s", s->be->name, s->be->math ? " math " : "",
                 s->be->math ? s->be->math : "");
}

void session_score_signature(const session *s, const space *sp, char *buf, size_t size)
{
    const rmi_settings *r = &s->rmi;
    char dev_extra[64] = ""; /* the device's own settings: CPU threads or math */
    if (!strcmp(s->be->name, "cpu") && s->threads != 1)
        snprintf(dev_extra, sizeof dev_extra, " threads %d", s->threads);
    else if (s->be->math) /* written only when set, as threads */
        snprintf(dev_extra, sizeof dev_extra, " math %s", s->be->math);
    snprintf(buf, size,
             "batch %d gamma %d beta %.17g steps %d lr %.17g momentum %.17g wd %.17g centered %d "
             "teacher_bn %d data_seed %llu init_seed %llu teacher %s dataset %s/%d space %s "
             "device %s conv %s numerics %d%s\n",
             r->batch, r->gamma, r->beta, r->steps, r->lr, r->momentum, r->wd, r->centered,
             r->teacher_bn, (unsigned long long)r->data_seed, (unsigned long long)r->init_seed,
             s->teacher_file, s->data_dir, s->train.n, sp->name, s->be->name,
             backend_cpu_conv(), RMI_NUMERICS, dev_extra);
}

/* The value of KEY in a signature line (the word after it), or dflt. */
static void sig_value(const char *sig, const char *key, const char *dflt, char *out,
                      size_t size)
{
    const size_t kl = strlen(key);
    for (const char *p = sig; *p;) {
        const char *e = p + strcspn(p, " \n");
        const char *v = *e == ' ' ? e + 1 : e, *ve = v + strcspn(v, " \n");
        if ((size_t)(e - p) == kl && !strncmp(p, key, kl)) {
            snprintf(out, size, "%.*s", (int)(ve - v), v);
            return;
        }
        p = ve + strspn(ve, " \n");
    }
    snprintf(out, size, "%s", dflt);
}

/* Which settings differ between the signature here (want) and a log's
 * (have), as "steps 150 here, 40 in the log; ...". */
static void sig_diff(const char *want, const char *have, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    /* every key of this line, then those only the log's has */
    for (int side = 0; side < 2; side++)
        for (const char *p = side ? have : want; *p && n < size;) {
            char key[64], a[1100], b[1100];
            const size_t kl = strcspn(p, " \n");
            snprintf(key, sizeof key, "%.*s", (int)kl, p);
            const char *dflt = !strcmp(key, "threads") ? "1"
                               : !strcmp(key, "math") ? "float32"
                                                      : "(none)";
            sig_value(want, key, dflt, a, sizeof a);
            sig_value(have, key, dflt, b, sizeof b);
            char here[8];
            sig_value(want, key, "", here, sizeof here);
            if (strcmp(a, b) && (!side || !here[0]))
                n += (size_t)snprintf(out + n, size - n, "%s%s %s here, %s in the log",
                                      n ? "; " : "", key, a, b);
            p += kl;
            p += strspn(p, " ");
            p += strcspn(p, " \n"); /* the value */
            p += strspn(p, " \n");
        }
    if (!out[0])
        snprintf(out, size, "the line differs");
}

/* field as a double (all of it: as rank_row writes them, nan and inf too) */
static int log_num(const char *field, const char *name, double *out)
{
    char *end;
    *out = strtod(field, &end); /* out of range: +-inf or 0 */
    if (end == field || *end)
        return rm_error("%s is not a number ('%.40s')", name, field);
    return 0;
}

static int log_count(const char *field, const char *name, long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(field, &end, 10);
    if (end == field || *end || errno || *out < 0)
        return rm_error("%s is not a count ('%.40s')", name, field);
    return 0;
}

/* One data row of the log (field[0..nf-1], already split) into e; -1 with
 * rm_error saying which field is wrong. */
static int score_log_row(const session *s, const space *sp, char **field, int nf,
                         rank_entry *e)
{
    memset(e, 0, sizeof *e);
    if (nf < 9)
        return rm_error("%d fields, not 10", nf);
    if (sp->parse(field[0], &e->arch) < 0)
        return -1;
    double v[6];
    for (int i = 0; i < 6; i++)
        if (log_num(field[1 + i], log_cols[1 + i], &v[i]) < 0)
            return -1;
    if (isnan(v[0]) || v[0] == -INFINITY)
        return rm_error("score is %s", isnan(v[0]) ? "nan" : "-inf");
    if (log_count(field[7], log_cols[7], &e->params) < 0 ||
        log_count(field[8], log_cols[8], &e->macs) < 0)
        return -1;
    e->r.score = v[0];
    for (int i = 0; i < RMI_LAYERS; i++)
        e->r.cka[i] = v[1 + i];
    e->r.ce = v[4];
    e->r.seconds = v[5];
    e->r.steps = s->rmi.steps;
    e->r.diverged = isinf(e->r.score);
    e->r.loss = e->r.score;
    e->bench = NAN;
    return 0;
}

/* Split one CSV line in place into at most max fields; a field in double
 * quotes (a DARTS genotype holds commas) may hold commas and "" for ". */
static int split_csv_line(char *line, char **field, int max)
{
    int nf = 0;
    char *p = line;
    while (nf < max) {
        if (*p == '"') {
            char *w = ++p;
            field[nf++] = w;
            for (; *p && !(*p == '"' && p[1] != '"'); p++)
                *w++ = *p == '"' ? *++p : *p;
            if (*p == '"')
                p++;
            char end = *p;
            *w = '\0';
            if (end != ',')
                break;
            p++;
            continue;
        }
        field[nf++] = p;
        char *q = strpbrk(p, ",\r\n");
        if (!q)
            break;
        int end = *q != ',';
        *q = '\0';
        if (end)
            break;
        p = q + 1;
    }
    return nf;
}

FILE *session_score_log_open(session *s, const space *sp, rank_entry **rows, int *nrows)
{
    const char *path = s->rank_log;
    char sig[4096], side[1100], have[4096] = "";
    int fresh = 0;
    *rows = NULL;
    *nrows = 0;
    if (session_teacher_saved(s, "the score log") < 0)
        return NULL;
    session_score_signature(s, sp, sig, sizeof sig);
    snprintf(side, sizeof side, "%s.settings", path);
    struct stat st = {0};
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        rm_error("score log %s is a directory; set score_log to a file", path);
        return NULL;
    }
    FILE *f = fopen(path, "r");
    if (f && st.st_size == 0 && access(side, F_OK) != 0) {
        fclose(f); /* an empty file (made by the user): a new log */
        f = NULL;
    }
    if (f) {
        FILE *g = fopen(side, "r");
        if (!g && st.st_size > 0) {
            fclose(f);
            rm_error("%s is not an rminas score log (no %s beside it); set score_log to another "
                     "file", path, side);
            return NULL;
        }
        if (!g || !fgets(have, sizeof have, g) || strcmp(have, sig)) {
            char why[1200] = "missing";
            if (g) {
                fclose(g);
                sig_diff(sig, have, why, sizeof why);
            }
            fclose(f);
            rm_error("%s was scored with other settings (%s: %s); set score_log to another "
                     "file", path, side, why);
            return NULL;
        }
        fclose(g);
        char line[4096];
        long lineno = 0, complete = 0; /* the end of the last whole line */
        int partial = 0;
        int cap = 0;
        while (fgets(line, sizeof line, f)) {
            lineno++;
            if (!strchr(line, '\n')) {
                if (feof(f)) {
                    partial = 1; /* a row cut short by a kill: dropped below */
                    break;
                }
                fclose(f);
                free(*rows);
                *rows = NULL;
                rm_error("%s line %ld: longer than %zu characters", path, lineno,
                         sizeof line - 2);
                return NULL;
            }
            complete = ftell(f);
            if (lineno == 1)
                continue; /* header */
            char *field[10];
            int nf = split_csv_line(line, field, 10);
            rank_entry e;
            if (score_log_row(s, sp, field, nf, &e) < 0) {
                fclose(f);
                free(*rows);
                *rows = NULL;
                rm_error_context("%s line %ld: not a score log row", path, lineno);
                return NULL;
            }
            if (*nrows == cap) {
                cap = cap ? 2 * cap : 128;
                rank_entry *nr = realloc(*rows, (size_t)cap * sizeof *nr);
                if (!nr) {
                    fclose(f);
                    free(*rows);
                    *rows = NULL;
                    rm_error("out of memory");
                    return NULL;
                }
                *rows = nr;
            }
            (*rows)[(*nrows)++] = e;
        }
        fclose(f);
        /* a process killed in the middle of a row leaves it without its
         * newline: that score was never whole, so it is scored again */
        if (partial && truncate(path, complete) != 0) {
            free(*rows);
            *rows = NULL;
            rm_error("%s: %s", path, strerror(errno));
            return NULL;
        }
        fresh = complete == 0;
        f = fopen(path, fresh ? "w" : "a");
    } else {
        FILE *g = fopen(side, "w");
        if (!g || fputs(sig, g) == EOF || fclose(g) != 0) {
            rm_error("%s: cannot write", side);
            return NULL;
        }
        f = fopen(path, "w");
        fresh = 1;
    }
    if (f && fresh) { /* a new log, or one killed before its header was whole */
        const char *hdr[10];
        rank_header(s, hdr);
        if (write_row(f, hdr, 10) < 0 || fflush(f) != 0) {
            fclose(f);
            f = NULL;
        }
    }
    if (!f) {
        free(*rows);
        *rows = NULL;
        rm_error("%s: %s", path, strerror(errno));
    }
    return f;
}

int session_score_log_find(const space *sp, const rank_entry *rows, int nrows, const sarch *a)
{
    for (int j = 0; j < nrows; j++)
        if (space_equal(sp, &rows[j].arch, a))
            return j;
    return -1;
}

int session_score_log_add(session *s, FILE *log, const space *sp, const rank_entry *e)
{
    if (rank_row(log, sp, e, 1) < 0 || fflush(log) != 0 || fsync(fileno(log)) != 0)
        return rm_error("%s: write failed", s->rank_log);
    return 0;
}

/* ---- ranking ---- */

/* Entry k's learning curve in the last ranking, or NULL when none is kept. */
static double *rank_curve(const session *s, int k)
{
    return s->rank_curve ? s->rank_curve + (size_t)k * s->rank_steps * RANK_CURVE_W : NULL;
}

static void rank_bench(const session *s, const space *sp, int col, rank_entry *r)
{
    nb201_arch na = sarch_to_nb201(&r->arch);
    r->bench = col >= 0 && sp == &space_nb201
                   ? bench_value(&s->bench, bench_row(&s->bench, &na), col)
                   : NAN;
}

/* The architectures of a ranking with several jobs: each scored by the
 * first job free (score_pool.h). */
enum { RK_TODO, RK_RUN, RK_KEPT }; /* KEPT: scored (and logged) or from the log */

/* The pool's finished scores into e and the log (even after a stop: a
 * finished score is never lost); rc becomes -1 on a failed score or write. */
static void rank_take(session *s, score_pool *p, const space *sp, const int *which,
                      rank_entry *e, signed char *st, FILE *log, int col, int *run, int *rc)
{
    rank_entry r;
    int slot, status;
    while ((slot = score_pool_take(p, &r, &status)) >= 0) {
        const int k = which[slot];
        --*run;
        st[k] = status == 0 ? RK_KEPT : RK_TODO; /* a stopped score is dropped */
        if (status < 0 && *rc >= 0) {
            *rc = -1; /* its message is the error */
            continue;
        }
        if (status)
            continue;
        e[k] = r;
        rank_bench(s, sp, col, &e[k]);
        if (log && *rc >= 0 && session_score_log_add(s, log, sp, &e[k]) < 0)
            *rc = -1;
    }
}

static int rank_parallel(session *s, const space *sp, const sarch *archs, int n, rank_entry *e,
                         signed char *st, FILE *log, int col, int *count, rank_callback cb,
                         void *user)
{
    int todo = 0;
    for (int k = 0; k < n; k++)
        todo += st[k] == RK_TODO;
    const int jobs = s->jobs < todo ? s->jobs : todo > 0 ? todo : 1;
    int which[RANK_MAX_JOBS];
    score_pool *p = score_pool_start(s, sp, jobs, todo);
    if (!p)
        return -1;
    int next = 0, done = 0, run = 0, rc = 0, slot;
    for (;;) {
        rank_take(s, p, sp, which, e, st, log, col, &run, &rc);
        while (done < n && st[done] == RK_KEPT && !rc) {
            *count = ++done;
            if (cb && cb(s, done - 1, n, user))
                rc = 1;
        }
        if (rc || s->interrupt)
            break;
        while (next < n && (slot = score_pool_idle(p)) >= 0) {
            if (st[next] == RK_TODO) {
                score_pool_give(p, slot, &archs[next], rank_curve(s, next));
                which[slot] = next;
                st[next] = RK_RUN;
                run++;
            }
            next++;
        }
        if (!run)
            break;
        if (score_pool_wait(p))
            rc = 1;
    }
    char err[1024]; /* the first error's message */
    snprintf(err, sizeof err, "%s", rc < 0 ? rm_last_error() : "");
    score_pool_stop(p);
    rank_take(s, p, sp, which, e, st, log, col, &run, &rc);
    score_pool_free(p);
    if (rc < 0)
        return err[0] ? rm_error("%s", err) : -1;
    if (!rc && done < n)
        rc = 1; /* interrupted */
    return rc;
}

int session_rank(session *s, const sarch *archs, int n, rank_callback cb, void *user)
{
    const space *sp = s->sp;
    if (session_need_batch(s) < 0)
        return -1;
    rank_entry *e = calloc((size_t)n, sizeof *e);
    signed char *st = calloc((size_t)n, 1);
    if (!e || !st) {
        free(e);
        free(st);
        return rm_error("out of memory");
    }
    rank_entry *logged = NULL;
    int nlogged = 0;
    FILE *log = NULL;
    if (s->rank_log[0] && !(log = session_score_log_open(s, sp, &logged, &nlogged))) {
        free(e);
        free(st);
        return -1;
    }
    free(s->rank);
    s->rank = e;
    s->rank_sp = sp;
    s->nrank = 0;
    /* the learning curves, NaN until scored (without memory: no curves) */
    free(s->rank_curve);
    s->rank_steps = s->rmi.steps;
    const size_t nc = (size_t)n * s->rank_steps * RANK_CURVE_W;
    s->rank_curve = nc ? malloc(nc * sizeof(double)) : NULL;
    for (size_t i = 0; s->rank_curve && i < nc; i++)
        s->rank_curve[i] = NAN;
    int col = s->bench.nrows ? bench_column(&s->bench, s->bench_column) : -1;
    rm_clear_error();
    for (int k = 0; k < n; k++) {
        int prev = session_score_log_find(sp, logged, nlogged, &archs[k]);
        if (prev >= 0) {
            e[k] = logged[prev];
            e[k].logged = 1;
            rank_bench(s, sp, col, &e[k]);
            st[k] = RK_KEPT;
        }
    }
    int rc = 0;
    if (s->jobs > 1) {
        rc = rank_parallel(s, sp, archs, n, e, st, log, col, &s->nrank, cb, user);
    } else {
        for (int k = 0; k < n; k++) {
            rank_entry *r = &e[k];
            if (st[k] != RK_KEPT) {
                rc = session_score_entry(s, sp, &archs[k], r, rank_curve(s, k), s->step_hook,
                                         s->hook_user);
                if (rc)
                    break; /* error, or interrupted: the finished ones stay */
                rank_bench(s, sp, col, r);
                if (log && (rc = session_score_log_add(s, log, sp, r)) < 0)
                    break;
            }
            s->nrank = k + 1;
            if (cb && cb(s, k, n, user)) {
                rc = 1;
                break;
            }
        }
    }
    if (log)
        fclose(log);
    free(logged);
    free(st);
    return rc;
}

int session_read_archs(const session *s, const char *path, sarch **out, int *n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return rm_error("%s: %s", path, strerror(errno));
    sarch *a = NULL;
    int cnt = 0, cap = 0, rc = 0;
    char line[1024];
    long lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\r' || !*p)
            continue;
        if (cnt == cap) {
            cap = cap ? 2 * cap : 64;
            sarch *na = realloc(a, (size_t)cap * sizeof *na);
            if (!na) {
                rc = rm_error("out of memory");
                break;
            }
            a = na;
        }
        if (session_parse_arch(s, p, &a[cnt]) < 0) {
            rc = rm_error_context("%s line %ld", path, lineno);
            break;
        }
        cnt++;
    }
    fclose(f);
    if (!rc && cnt == 0)
        rc = rm_error("%s: no architectures in the file", path);
    if (rc) {
        free(a);
        return -1;
    }
    *out = a;
    *n = cnt;
    return 0;
}

/* The correlations of the last ranking's -score, #params and MACs with the
 * benchmark column; step > 0: with -(the loss at that step) for the score,
 * over the architectures scored with their curves (not from the score log) */
static int rank_corr(const session *s, int step, double tau[3], double rho[3], int *nout)
{
    int n = 0;
    double *acc = malloc((size_t)(s->nrank + 1) * sizeof(double));
    double *v[3];
    for (int j = 0; j < 3; j++)
        v[j] = malloc((size_t)(s->nrank + 1) * sizeof(double));
    if (!acc || !v[0] || !v[1] || !v[2]) {
        free(acc);
        for (int j = 0; j < 3; j++)
            free(v[j]);
        return rm_error("out of memory");
    }
    for (int k = 0; k < s->nrank; k++) {
        const rank_entry *e = &s->rank[k];
        if (isnan(e->bench) || (step && e->logged))
            continue;
        /* lower is better; a student that diverged before the step scores
         * +inf, as it would have with that many steps */
        double loss = e->r.score;
        if (step)
            loss = step <= e->r.steps ? rank_curve(s, k)[(size_t)(step - 1) * RANK_CURVE_W]
                                      : INFINITY;
        acc[n] = e->bench;
        v[0][n] = isfinite(loss) ? -loss : -INFINITY;
        v[1][n] = (double)e->params;
        v[2][n] = (double)e->macs;
        n++;
    }
    for (int j = 0; j < 3; j++) {
        tau[j] = n > 1 ? kendall_tau_b(v[j], acc, n) : NAN;
        rho[j] = n > 1 ? spearman_rho(v[j], acc, n) : NAN;
        free(v[j]);
    }
    free(acc);
    *nout = n;
    return 0;
}

int session_rank_correlations(const session *s, double tau[3], double rho[3], int *nout)
{
    return rank_corr(s, 0, tau, rho, nout);
}

int session_rank_tau_at(const session *s, int step, double *tau, int *nout)
{
    double t[3] = {NAN, NAN, NAN}, r[3];
    *nout = 0;
    if (s->rank_curve && step >= 1 && step <= s->rank_steps &&
        rank_corr(s, step, t, r, nout) < 0)
        return -1;
    *tau = t[0];
    return 0;
}

/* ---- CSV export ---- */


/* One row per evaluation: eval, phase, arch, score, cka1..3, ce, seconds,
 * prob (forest, expanded phase), good (below tau), params, flops, every
 * column of the ground-truth table, then cached (1: from the score log). */
static int write_search_rows(session *s, FILE *f)
{
    const search *q = &s->srch;
    const char *names[16];
    double vals[16];
    nb201_arch none = {{0}};
    int nv = session_bench_values(s, &none, names, vals, 16);
    const char *hdr[14 + 16] = {"eval", "phase", "arch", "score", "cka1", "cka2", "cka3",
                                "ce", "seconds", "prob", "good", "params", "flops"};
    for (int i = 0; i < nv; i++)
        hdr[13 + i] = names[i];
    hdr[13 + nv] = "cached";
    if (write_row(f, hdr, 14 + nv) < 0)
        return -1;
    for (int k = 0; k < q->n; k++) {
        const search_record *r = &q->rec[k];
        char b[14 + 16][64], arch[SPACE_STRLEN];
        const char *row[14 + 16];
        double p, fl;
        int nb = q->sp == &space_nb201;
        nb201_arch na = sarch_to_nb201(&r->arch);
        if (session_sarch_cost(s, q->sp, &r->arch, &p, &fl) < 0)
            return -1;
        q->sp->format(&r->arch, arch, sizeof arch);
        snprintf(b[0], 64, "%d", k + 1);
        snprintf(b[1], 64, "%s", search_phase_names[r->phase]);
        fmt_double(b[3], 64, r->r.score);
        for (int i = 0; i < 3; i++)
            fmt_double(b[4 + i], 64, r->r.cka[i]);
        fmt_double(b[7], 64, r->r.ce);
        snprintf(b[8], 64, "%.3f", r->r.seconds);
        fmt_double(b[9], 64, r->prob);
        snprintf(b[10], 64, "%d", r->good);
        snprintf(b[11], 64, "%.0f", p);
        snprintf(b[12], 64, "%.0f", fl);
        if (session_bench_values(s, nb ? &na : NULL, names, vals, 16) == 0)
            for (int i = 0; i < nv; i++)
                vals[i] = NAN;
        for (int i = 0; i < nv; i++)
            fmt_double(b[13 + i], 64, vals[i]);
        snprintf(b[13 + nv], 64, "%d", r->r.cached);
        for (int i = 0; i < 14 + nv; i++)
            row[i] = b[i];
        row[2] = arch;
        if (write_row(f, row, 14 + nv) < 0)
            return -1;
    }
    return 0;
}

/* The profile (tensor/profile.h): one row per backend operation, then one
 * per convolution shape and direction. */
static int write_profile_rows(FILE *f, const prof_op *ops, int nops)
{
    const char *hdr[] = {"kind", "operation", "calls", "seconds", "n", "cin", "h", "w",
                         "cout", "kh", "kw", "stride", "pad", "dil", "groups", "relu_in"};
    int bad = write_row(f, hdr, 16);
    char b[16][64];
    const char *row[16];
    for (int i = 0; i < 16; i++)
        row[i] = b[i];
    for (int i = 0; i < nops && !bad; i++) {
        snprintf(b[0], 64, "op");
        snprintf(b[1], 64, "%s", ops[i].name);
        snprintf(b[2], 64, "%lld", ops[i].calls);
        fmt_double(b[3], 64, ops[i].seconds);
        for (int k = 4; k < 16; k++)
            b[k][0] = '\0';
        bad |= write_row(f, row, 16);
    }
    prof_conv *cv = malloc(512 * sizeof *cv);
    int more = 0, nc = cv ? backend_profile_convs(cv, 512, &more) : -1;
    if (nc < 0) {
        free(cv);
        return -1;
    }
    for (int i = 0; i < nc && !bad; i++)
        for (int dir = 0; dir < 2 && !bad; dir++) {
            const conv_desc *d = &cv[i].d;
            if (!cv[i].calls[dir])
                continue;
            snprintf(b[0], 64, "conv");
            snprintf(b[1], 64, dir ? "conv2d_backward" : "conv2d_forward");
            snprintf(b[2], 64, "%lld", cv[i].calls[dir]);
            fmt_double(b[3], 64, cv[i].seconds[dir]);
            const int v[12] = {d->n, d->cin, d->h, d->w, d->cout, d->kh, d->kw, d->stride,
                               d->pad, d->dil, d->groups, d->relu_in};
            for (int k = 0; k < 12; k++)
                snprintf(b[4 + k], 64, "%d", v[k]);
            bad |= write_row(f, row, 16);
        }
    free(cv);
    return bad;
}

/* The last ranking's learning curves: one row per step of each
 * architecture it scored (those from the score log have none). */
static int write_curve_rows(const session *s, FILE *f)
{
    const char *hdr[] = {"arch", "step", "loss", "ce", "cka1", "cka2", "cka3", s->bench_column};
    int bad = write_row(f, hdr, 8);
    char b[8][64], arch[SPACE_STRLEN];
    const char *row[8] = {arch};
    for (int i = 1; i < 8; i++)
        row[i] = b[i];
    for (int k = 0; k < s->nrank && !bad; k++) {
        const rank_entry *e = &s->rank[k];
        const double *c = rank_curve(s, k);
        if (e->logged)
            continue;
        s->rank_sp->format(&e->arch, arch, sizeof arch);
        fmt_double(b[7], 64, e->bench);
        for (int j = 0; j < e->r.steps && j < s->rank_steps && !bad; j++) {
            snprintf(b[1], 64, "%d", j + 1);
            for (int i = 0; i < RANK_CURVE_W; i++)
                fmt_double(b[2 + i], 64, c[(size_t)j * RANK_CURVE_W + i]);
            bad |= write_row(f, row, 8);
        }
    }
    return bad;
}

int session_export_csv(session *s, const char *what, const char *path)
{
    int steps = !strcmp(what, "steps"), rank = !strcmp(what, "rank");
    int srch = !strcmp(what, "search"), prof = !strcmp(what, "profile");
    int curves = !strcmp(what, "curves");
    if (!steps && !rank && !srch && !prof && !curves)
        return rm_error("can export 'steps', 'rank', 'curves', 'search' or 'profile', not '%s'",
                        what);
    prof_op ops[64];
    const int nops = prof ? backend_profile_ops(ops, 64) : 0;
    if (prof && !nops)
        return rm_error("nothing profiled yet (profile on, then score, rank, step or search)");
    if (srch && !s->srch.scored.slot)
        return rm_error("no search (search start ALGO, or search resume FILE)");
    if (steps && !s->eval.student.g)
        return rm_error("no student has been trained (init, step)");
    if ((rank || curves) && !s->nrank)
        return rm_error("no ranking run yet (rank N|FILE)");
    if (curves) {
        int scored = 0;
        for (int k = 0; k < s->nrank; k++)
            scored += !s->rank[k].logged;
        if (!scored)
            return rm_error("the last ranking scored nothing itself (its %d scores came from "
                            "the score log, which keeps no curves)", s->nrank);
        if (!s->rank_curve)
            return rm_error("the last ranking kept no curves (out of memory)");
    }
    rm_atomic out;
    FILE *f = rm_atomic_open(&out, path);
    if (!f)
        return -1;
    int bad = 0;
    char b[8][64];
    if (steps) {
        const rmi_eval *e = &s->eval;
        char arch[SPACE_STRLEN];
        s->arch_sp->format(&s->arch, arch, sizeof arch);
        const char *hdr[] = {"step", "loss", "ce", "cka1", "cka2", "cka3", "arch"};
        bad |= write_row(f, hdr, 7);
        for (int k = 0; k < e->step && !bad; k++) {
            snprintf(b[0], 64, "%d", k + 1);
            fmt_double(b[1], 64, e->h_loss[k]);
            fmt_double(b[2], 64, e->h_ce[k]);
            for (int i = 0; i < RMI_LAYERS; i++)
                fmt_double(b[3 + i], 64, e->h_cka[i][k]);
            const char *row[] = {b[0], b[1], b[2], b[3], b[4], b[5], arch};
            bad |= write_row(f, row, 7);
        }
    } else if (srch) {
        bad |= write_search_rows(s, f);
    } else if (prof) {
        bad |= write_profile_rows(f, ops, nops);
    } else if (curves) {
        bad |= write_curve_rows(s, f);
    } else {
        const char *hdr[10];
        rank_header(s, hdr);
        bad |= write_row(f, hdr, 10);
        for (int k = 0; k < s->nrank && !bad; k++)
            bad |= rank_row(f, s->rank_sp, &s->rank[k], 0);
    }
    if (bad)
        rm_error("%s: write failed", path);
    return rm_atomic_close(&out, !bad);
}
