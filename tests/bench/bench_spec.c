/* The wall time of a whole RMI-NAS search with `jobs` architectures scored
 * at once, on a device that scores `jobs` architectures in the time of one
 * each (a GPU with room to spare), under two ways of scoring ahead:
 *
 *   rounds (sessions 9-17): the warm-up in queues of 4 per job (at most
 *     32), each waiting for its last score; the expanded phase in rounds of
 *     `jobs` speculated picks (search_ahead), each waiting for its slowest;
 *     the search takes a round's scores for as long as its next pick is
 *     among the scores in;
 *   pool (session 18, session_search.c): a job that finishes gets the next
 *     architecture at once (search_plan), the speculation follows the
 *     scores already in, and the search takes each score as soon as it is
 *     next.
 *
 * The searches are the real ones (src/search), with paper defaults. The
 * evaluator is a table lookup standing in for the RMI score (scores cost
 * nothing here): -COLUMN of TABLE, plus Gaussian noise of standard
 * deviation SIGMA fixed per architecture, which sets how predictable
 * success is for the forest. An architecture's scoring time is
 * c0 + c3 * (3x3 convolutions) + c1 * (1x1 convolutions), fitted by least
 * squares to the `seconds` of TIMES (a CSV with arch and seconds columns,
 * e.g. doc/gpu/h200-run2/bench_rminas.csv: one H200 job at a time); "-":
 * every score takes 1 s. SAT is the device's concurrency: up to SAT scores
 * run at once at their own speed, k > SAT share it (each at SAT/k of it);
 * 0: no limit (a GPU with room for every job).
 *
 * Usage: bench_spec TABLE COLUMN SIGMA SEEDS TIMES SAT JOBS...
 *   e.g. bench_spec examples/data/nb201_12epoch.csv cifar10_valid 1 10 \
 *          doc/gpu/h200-run2/bench_rminas.csv 0 4 8 16
 * One line per (jobs, seed) and a mean per jobs:
 *   jobs seed evals expanded rounds warm_rounds_s warm_pool_s exp_rounds_s
 *   exp_pool_s scored_rounds scored_pool forest_s
 * Both ways make the search's own evaluations (checked). Not part of make
 * check. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/bench.h"
#include "search/search.h"
#include "space/space.h"
#include "util/err.h"
#include "util/rng.h"

enum { MAXK = 8192 };

typedef struct sim {
    bench_table t;
    int col;
    double sigma;
    double c[3];          /* the time model: c0, per 3x3, per 1x1 */
    double sat;           /* the device's concurrency (0: unlimited) */
    sarch known[MAXK];    /* scored, maybe not yet taken by the search */
    int nknown;
    double now;           /* the simulated clock */
    double forest;        /* the search's forest time already on it */
    int alone;            /* the search scores its next one itself: on the clock */
} sim;

static int eval_table(void *user, const sarch *sa, search_eval *out)
{
    const sim *m = user;
    nb201_arch a = sarch_to_nb201(sa);
    int row = bench_row(&m->t, &a);
    double v = row >= 0 ? bench_value(&m->t, row, m->col) : NAN;
    if (isnan(v))
        return rm_error("no value for an architecture");
    rng r;
    rng_seed(&r, rng_hash64(space_key(&space_nb201, sa)));
    memset(out, 0, sizeof *out);
    out->score = -v + m->sigma * rng_normal(&r);
    out->cka[0] = out->cka[1] = out->cka[2] = out->ce = NAN;
    return 0;
}

static void conv_counts(const sarch *sa, double *n3, double *n1)
{
    nb201_arch a = sarch_to_nb201(sa);
    *n3 = *n1 = 0;
    for (int e = 0; e < NB201_EDGES; e++) {
        *n3 += a.op[e] == NB201_CONV3;
        *n1 += a.op[e] == NB201_CONV1;
    }
}

static double duration(const sim *m, const sarch *a)
{
    double n3, n1;
    conv_counts(a, &n3, &n1);
    return m->c[0] + m->c[1] * n3 + m->c[2] * n1;
}

static int find(const sarch *set, int n, const sarch *a)
{
    for (int i = 0; i < n; i++)
        if (space_equal(&space_nb201, &set[i], a))
            return i;
    return -1;
}

static int known_fn(void *user, const sarch *a, search_eval *out)
{
    sim *m = user;
    return find(m->known, m->nknown, a) >= 0 && eval_table(m, a, out) == 0;
}

static int add_known(sim *m, const sarch *a)
{
    if (find(m->known, m->nknown, a) >= 0)
        return 0;
    if (m->nknown == MAXK)
        return rm_error("more than %d architectures scored", MAXK);
    m->known[m->nknown++] = *a;
    return 0;
}

static int eval_timed(void *user, const sarch *a, search_eval *out)
{
    sim *m = user;
    if (m->alone) {
        m->now += duration(m, a);
        if (add_known(m, a) < 0)
            return -1;
    }
    return eval_table(m, a, out);
}

/* The host's forest fits (this machine's time) go on the clock: the
 * jobs' work waits for the picks. */
static void host(sim *m, const search *s)
{
    m->now += s->t_forest - m->forest;
    m->forest = s->t_forest;
}

/* the rate at which each of k running scores progresses */
static double rate(const sim *m, int k)
{
    return m->sat > 0 && k > m->sat ? m->sat / k : 1;
}

/* w[0..k-1] (work left) advanced by dt at k's rate */
static void progress(const sim *m, double *w, int k, double dt)
{
    const double r = rate(m, k);
    for (int j = 0; j < k; j++)
        w[j] = fmax(0, w[j] - dt * r);
}

/* the time k running scores with work w[] take until the first is done */
static double until_first(const sim *m, const double *w, int k)
{
    double t = w[0];
    for (int j = 1; j < k; j++)
        t = fmin(t, w[j]);
    return t / rate(m, k);
}

/* the time to score d[0..n-1] on `jobs` jobs, each taking the next as it
 * finishes, at the device's rates */
static double makespan(const sim *m, const double *d, int n, int jobs)
{
    double w[64], t = 0;
    int k = 0, next = 0;
    while (next < n || k) {
        while (k < jobs && next < n)
            w[k++] = d[next++];
        const double dt = until_first(m, w, k);
        t += dt;
        progress(m, w, k, dt);
        for (int j = 0; j < k;)
            if (w[j] <= 1e-12)
                w[j] = w[--k];
            else
                j++;
    }
    return t;
}

/* the search's next evaluations while their scores are in */
static int take_known(sim *m, search *s, int *rc)
{
    sarch next;
    int taken = 0;
    while (*rc == 0 && s->phase != PHASE_DONE && search_ahead(s, 1, 1, &next, NULL, NULL, m) == 1 &&
           find(m->known, m->nknown, &next) >= 0) {
        *rc = search_step(s, eval_table, NULL, m) < 0 ? -1 : 0;
        taken++;
    }
    return taken;
}

typedef struct result {
    int evals, expanded, rounds, scored;
    double warm_s, exp_s, forest_s;
    search_record *rec; /* the evaluations, to compare */
} result;

static int finish(search *s, result *r, int n0, sim *m)
{
    r->evals = s->n;
    r->expanded = s->n - n0;
    r->forest_s = s->t_forest;
    r->scored = m->nknown;
    r->rec = malloc((size_t)s->n * sizeof *r->rec);
    if (!r->rec)
        return rm_error("out of memory");
    memcpy(r->rec, s->rec, (size_t)s->n * sizeof *r->rec);
    return 0;
}

/* a search with paper defaults and `seed`, on a fresh clock */
static int begin(sim *m, int seed, search *s)
{
    search_opts o;
    search_opts_default(&o);
    o.seed = (uint64_t)seed;
    m->nknown = 0;
    m->now = m->forest = 0;
    m->alone = 1;
    return search_init(s, &space_nb201, &o);
}

/* the way of sessions 9-17 */
static int run_rounds(sim *m, int jobs, int seed, result *r)
{
    search s;
    if (begin(m, seed, &s) < 0)
        return -1;
    const search_opts o = s.o;
    const int window = search_plan_window(jobs); /* the warm-up's queue */
    int rc = 0;
    sarch set[64];
    double d[64];
    while (rc == 0 && s.phase == PHASE_WARMUP) {
        int k = search_ahead(&s, window, o.n_warm - s.n, set, NULL, NULL, m);
        if (k < 2) { /* the search scores it alone */
            rc = search_step(&s, eval_timed, NULL, m) < 0 ? -1 : 0;
            continue;
        }
        for (int i = 0; i < k && rc == 0; i++) {
            d[i] = duration(m, &set[i]);
            rc = add_known(m, &set[i]);
        }
        m->now += makespan(m, d, k, jobs);
        take_known(m, &s, &rc);
    }
    r->warm_s = m->now;
    const int n0 = s.n;
    r->rounds = 0;
    while (rc == 0 && s.phase != PHASE_DONE) {
        if (take_known(m, &s, &rc))
            continue;
        int k = search_ahead(&s, jobs, 64, set, NULL, NULL, m), n = 0;
        host(m, &s);
        if (k < 0) {
            rc = -1;
            break;
        }
        for (int i = 0; i < k; i++)
            if (find(m->known, m->nknown, &set[i]) < 0)
                set[n++] = set[i];
        ++r->rounds;
        if (n < 2) { /* the search scores it alone */
            rc = search_step(&s, eval_timed, NULL, m) < 0 ? -1 : 0;
            continue;
        }
        for (int i = 0; i < n && rc == 0; i++) {
            rc = add_known(m, &set[i]);
            d[i] = duration(m, &set[i]);
        }
        m->now += makespan(m, d, n, n);
    }
    host(m, &s);
    r->exp_s = m->now - r->warm_s;
    if (rc == 0)
        rc = finish(&s, r, n0, m);
    search_free(&s);
    return rc;
}

/* the pool's way (session_search.c's score_ahead, simulated) */
static int run_pool(sim *m, int jobs, int seed, result *r)
{
    search s;
    if (begin(m, seed, &s) < 0)
        return -1;
    const search_opts o = s.o;
    sarch busy[64], start[64];
    double work[64]; /* left, in seconds alone */
    int nbusy = 0, rc = 0, n0 = -1;
    while (rc == 0 && s.phase != PHASE_DONE) {
        if (n0 < 0 && s.phase == PHASE_EXPAND) {
            n0 = s.n;
            r->warm_s = m->now;
        }
        int nstart, stop;
        const int steps = s.phase == PHASE_WARMUP ? o.n_warm - s.n : 64;
        const double t0 = m->now;
        const int plan = search_plan(&s, jobs, steps, busy, nbusy, jobs - nbusy, NULL, known_fn,
                                     m, start, &nstart, &stop);
        host(m, &s);
        progress(m, work, nbusy, m->now - t0); /* the jobs go on while the host plans */
        if (plan < 0)
            return -1;
        if (plan != SEARCH_WAIT) {
            if (plan == SEARCH_ALONE)
                nbusy = 0; /* of no use: stopped */
            m->alone = plan == SEARCH_ALONE;
            rc = search_step(&s, eval_timed, NULL, m) < 0 ? -1 : 0;
            continue;
        }
        for (int i = 0; i < nstart && nbusy < jobs; i++) {
            busy[nbusy] = start[i];
            work[nbusy++] = duration(m, &start[i]);
        }
        if (stop >= 0) { /* freed at once */
            busy[stop] = busy[--nbusy];
            work[stop] = work[nbusy];
            continue;
        }
        if (!nbusy)
            return rm_error("nothing to wait for");
        const double dt = until_first(m, work, nbusy);
        m->now += dt;
        progress(m, work, nbusy, dt);
        for (int j = 0; j < nbusy && rc == 0;)
            if (work[j] <= 1e-12) {
                rc = add_known(m, &busy[j]);
                busy[j] = busy[--nbusy];
                work[j] = work[nbusy];
            } else {
                j++;
            }
    }
    if (n0 < 0) {
        n0 = s.n;
        r->warm_s = m->now;
    }
    host(m, &s);
    r->exp_s = m->now - r->warm_s;
    r->rounds = 0;
    if (rc == 0)
        rc = finish(&s, r, n0, m);
    search_free(&s);
    return rc;
}

/* c0, c3, c1 by least squares to TIMES's seconds */
static int fit_times(sim *m, const char *path)
{
    if (!strcmp(path, "-")) {
        m->c[0] = 1;
        return 0;
    }
    FILE *f = fopen(path, "r");
    if (!f)
        return rm_error("%s: cannot open", path);
    char line[4096];
    int col = -1, n = 0;
    double a[3][3] = {{0}}, b[3] = {0};
    if (fgets(line, sizeof line, f)) {
        int i = 0;
        for (char *t = strtok(line, ",\n"); t; t = strtok(NULL, ",\n"), i++)
            if (!strcmp(t, "seconds"))
                col = i;
    }
    while (col > 0 && fgets(line, sizeof line, f)) {
        char *field[64];
        int nf = 0;
        for (char *t = strtok(line, ",\n"); t && nf < 64; t = strtok(NULL, ",\n"))
            field[nf++] = t;
        sarch sa;
        if (nf <= col || space_nb201.parse(field[0], &sa) < 0)
            continue;
        double x[3] = {1, 0, 0}, y = atof(field[col]);
        conv_counts(&sa, &x[1], &x[2]);
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < 3; j++)
                a[i][j] += x[i] * x[j];
            b[i] += x[i] * y;
        }
        n++;
    }
    fclose(f);
    if (n < 3)
        return rm_error("%s: no arch and seconds rows to fit", path);
    /* Gaussian elimination on the normal equations */
    for (int i = 0; i < 3; i++)
        for (int k = i + 1; k < 3; k++) {
            const double q = a[k][i] / a[i][i];
            for (int j = i; j < 3; j++)
                a[k][j] -= q * a[i][j];
            b[k] -= q * b[i];
        }
    for (int i = 2; i >= 0; i--) {
        double v = b[i];
        for (int j = i + 1; j < 3; j++)
            v -= a[i][j] * m->c[j];
        m->c[i] = v / a[i][i];
    }
    printf("# time model from %d rows of %s: %.3f s + %.3f s per 3x3 + %.3f s per 1x1\n", n, path,
           m->c[0], m->c[1], m->c[2]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: bench_spec TABLE COLUMN SIGMA SEEDS TIMES SAT JOBS...\n");
        return 2;
    }
    sim *m = calloc(1, sizeof *m);
    if (!m)
        return 1;
    m->sigma = atof(argv[3]);
    const int seeds = atoi(argv[4]);
    m->sat = atof(argv[6]);
    if (bench_load(argv[1], &m->t) < 0 || (m->col = bench_column(&m->t, argv[2])) < 0 ||
        fit_times(m, argv[5]) < 0) {
        fprintf(stderr, "bench_spec: %s\n", rm_last_error());
        return 1;
    }
    printf("jobs seed evals expanded rounds warm_rounds_s warm_pool_s exp_rounds_s exp_pool_s "
           "scored_rounds scored_pool forest_s\n");
    if (m->sat > 0)
        printf("# the device runs %g scores at full speed; k > %g share it (each at %g/k)\n",
               m->sat, m->sat, m->sat);
    for (int a = 7; a < argc; a++) {
        const int jobs = atoi(argv[a]);
        double sum[11] = {0};
        if (jobs < 1 || jobs > 64) {
            fprintf(stderr, "bench_spec: jobs must be 1 to 64\n");
            return 2;
        }
        for (int seed = 1; seed <= seeds; seed++) {
            result r0 = {0}, r1 = {0};
            if (run_rounds(m, jobs, seed, &r0) < 0 || run_pool(m, jobs, seed, &r1) < 0) {
                fprintf(stderr, "bench_spec: %s\n", rm_last_error());
                return 1;
            }
            int same = r0.evals == r1.evals;
            for (int i = 0; same && i < r0.evals; i++)
                same = space_equal(&space_nb201, &r0.rec[i].arch, &r1.rec[i].arch) &&
                       r0.rec[i].r.score == r1.rec[i].r.score &&
                       r0.rec[i].phase == r1.rec[i].phase && r0.rec[i].good == r1.rec[i].good;
            if (!same) {
                fprintf(stderr, "bench_spec: jobs %d seed %d: the two ways made different "
                                "evaluations\n", jobs, seed);
                return 1;
            }
            const double v[11] = {r0.evals,  r0.expanded, r0.rounds, r0.warm_s,
                                  r1.warm_s, r0.exp_s,    r1.exp_s,  r0.scored,
                                  r1.scored, r1.forest_s, 0};
            printf("%d %d %d %d %d %.1f %.1f %.1f %.1f %d %d %.2f\n", jobs, seed, r0.evals,
                   r0.expanded, r0.rounds, r0.warm_s, r1.warm_s, r0.exp_s, r1.exp_s, r0.scored,
                   r1.scored, r1.forest_s);
            fflush(stdout);
            for (int i = 0; i < 10; i++)
                sum[i] += v[i];
            free(r0.rec);
            free(r1.rec);
        }
        printf("%d mean %.1f %.1f %.1f %.1f %.1f %.1f %.1f %.1f %.1f %.2f\n", jobs,
               sum[0] / seeds, sum[1] / seeds, sum[2] / seeds, sum[3] / seeds, sum[4] / seeds,
               sum[5] / seeds, sum[6] / seeds, sum[7] / seeds, sum[8] / seeds, sum[9] / seeds);
    }
    bench_free(&m->t);
    free(m);
    return 0;
}
