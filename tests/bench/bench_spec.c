/* How many rounds of concurrent scoring RMI-NAS's expanded phase takes
 * with `jobs` architectures scored at once under speculation
 * (search_ahead), against the evaluations it makes: the expanded phase's
 * wall time on a device that scores `jobs` architectures in the time of
 * one (a GPU with room to spare) is rounds x one score's time.
 *
 * The searches are the real ones (src/search), driven as
 * session_search_step drives them with jobs > 1: each round scores
 * search_ahead's picks, then the search takes them for as long as its next
 * pick is among them. The evaluator is a table lookup standing in for the
 * RMI score (scores cost nothing here): -COLUMN of TABLE, plus Gaussian
 * noise of standard deviation SIGMA fixed per architecture (the RMI
 * score ranks NB-201's cells with a Kendall tau of about 0.55 against
 * cifar10_test; the 12-epoch cifar10_valid is far closer), which sets how
 * predictable success is for the forest.
 *
 * Usage: bench_spec TABLE COLUMN SIGMA SEEDS JOBS...
 *   e.g. bench_spec examples/data/nb201_12epoch.csv cifar10_valid 2 10 2 4 8 16
 * One line per (jobs, seed) and a mean per jobs:
 *   jobs seed expanded rounds evals_per_round forest_s
 * Not part of make check. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/bench.h"
#include "search/search.h"
#include "space/space.h"
#include "util/err.h"
#include "util/rng.h"

typedef struct sim {
    bench_table t;
    int col;
    double sigma;
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

static int contains(const sarch *set, int n, const sarch *a)
{
    for (int i = 0; i < n; i++)
        if (space_equal(&space_nb201, &set[i], a))
            return 1;
    return 0;
}

/* one search to its end; the expanded phase in rounds of `jobs` */
static int run(sim *m, int jobs, int seed, int *expanded, int *rounds, double *forest_s)
{
    search_opts o;
    search_opts_default(&o);
    o.algo = SEARCH_RMINAS;
    o.seed = (uint64_t)seed;
    search s;
    if (search_init(&s, &space_nb201, &o) < 0)
        return -1;
    int rc = 0;
    while (rc == 0 && s.phase == PHASE_WARMUP)
        rc = search_step(&s, eval_table, NULL, m);
    const int n0 = s.n;
    *rounds = 0;
    sarch *set = malloc((size_t)jobs * sizeof *set);
    if (!set)
        rc = rm_error("out of memory");
    while (rc == 0) {
        int k = search_ahead(&s, jobs, 64, set, NULL, NULL);
        if (k <= 0) {
            rc = k < 0 ? -1 : search_step(&s, eval_table, NULL, m);
            break;
        }
        ++*rounds;
        sarch next;
        int taken = 0;
        while (rc == 0 && search_ahead(&s, 1, 1, &next, NULL, NULL) == 1 &&
               contains(set, k, &next)) {
            rc = search_step(&s, eval_table, NULL, m);
            taken++;
        }
        if (rc == 0 && !taken)
            rc = rm_error("the search's next pick was not among the speculated ones");
    }
    *expanded = s.n - n0;
    *forest_s = s.t_forest;
    free(set);
    search_free(&s);
    return rc < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: bench_spec TABLE COLUMN SIGMA SEEDS JOBS...\n");
        return 2;
    }
    sim m;
    memset(&m, 0, sizeof m);
    m.sigma = atof(argv[3]);
    const int seeds = atoi(argv[4]);
    if (bench_load(argv[1], &m.t) < 0 || (m.col = bench_column(&m.t, argv[2])) < 0) {
        fprintf(stderr, "bench_spec: %s\n", rm_last_error());
        return 1;
    }
    printf("jobs seed expanded rounds evals_per_round forest_s\n");
    for (int a = 5; a < argc; a++) {
        const int jobs = atoi(argv[a]);
        double se = 0, sr = 0, sf = 0;
        for (int seed = 1; seed <= seeds; seed++) {
            int e, r;
            double f;
            if (run(&m, jobs, seed, &e, &r, &f) < 0) {
                fprintf(stderr, "bench_spec: %s\n", rm_last_error());
                return 1;
            }
            printf("%d %d %d %d %.2f %.2f\n", jobs, seed, e, r, (double)e / r, f);
            fflush(stdout);
            se += e;
            sr += r;
            sf += f;
        }
        printf("%d mean %.1f %.1f %.2f %.2f\n", jobs, se / seeds, sr / seeds, se / sr,
               sf / seeds);
    }
    bench_free(&m.t);
    return 0;
}
