/* The search command: start, warm-up, step, run, pause, resume, status,
 * result. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shell/shell.h"
#include "util/err.h"

const char *const search_subs[] = {"start", "warmup", "step", "run", "pause", "resume",
                                   "load", "status", "result", NULL};

static const char SEARCH_USAGE[] =
    "start rminas|random|rea|reinforce [KEY VALUE ...] | warmup | step [N] | run | pause | "
    "resume [FILE] | load FILE | status | result";

void shell_search_arch(const session *s, const sarch *a, char *str, char *note)
{
    nb201_arch na = sarch_to_nb201(a);
    s->srch.sp->format(a, str, SPACE_STRLEN);
    note[0] = '\0';
    if (s->srch.sp == &space_nb201)
        shell_bench_note(s, &na, note, 96);
}

static int search_print(const session *s, void *user)
{
    (void)user;
    const search *q = &s->srch;
    const search_record *r = &q->rec[q->n - 1];
    char str[SPACE_STRLEN], note[96];
    shell_search_arch(s, &r->arch, str, note);
    printf("[%d] %-6s %s score %.6g", q->n, search_phase_names[r->phase], str, r->r.score);
    if (r->phase == PHASE_EXPAND)
        printf("  p %.3f %s  successes %d/%d", r->prob, r->good ? "good" : "-", q->successes,
               q->o.n_collect);
    printf("  %.1f s%s%s\n", r->r.seconds, r->r.cached ? " (from the score log)" : "", note);
    if (q->o.algo == SEARCH_RMINAS && r->phase == PHASE_WARMUP && q->phase == PHASE_EXPAND) {
        int good = 0;
        for (int i = 0; i < q->n; i++)
            good += q->rec[i].good;
        printf("warm-up done: tau %.9g (%g quantile of %d scores + 1e-9), %d below it\n", q->tau,
               q->o.quantile, q->n, good);
    }
    fflush(stdout);
    return 0;
}

/* How many evaluations a score log served, and what they had cost. */
static void print_cached(const search *q)
{
    int n = 0;
    double t = 0;
    for (int i = 0; i < q->n; i++)
        if (q->rec[i].r.cached) {
            n++;
            t += q->rec[i].r.seconds;
        }
    if (n)
        printf("  %d of the %d evaluations came from the score log (%.1f s when they were "
               "scored)\n", n, q->n, t);
}

/* Why a loaded search's scores stayed out of the score log, if they did. */
static void print_log_note(const session *s)
{
    if (s->log_note[0])
        printf("note: %s\n", s->log_note);
}

static void print_status(const session *s)
{
    const search *q = &s->srch;
    printf("search %s, %s: %d evaluations", search_algo_names[q->o.algo],
           search_phase_names[q->phase], q->n);
    if (q->o.algo == SEARCH_RMINAS) {
        int warm = 0, good = 0;
        for (int i = 0; i < q->n; i++) {
            warm += q->rec[i].phase == PHASE_WARMUP;
            good += q->rec[i].good;
        }
        printf(" (%d warm-up of %d, %d expanded), successes %d/%d, below tau %d", warm,
               q->o.n_warm, q->n - warm, q->successes, q->o.n_collect, good);
        if (!isnan(q->tau))
            printf(", tau %.9g", q->tau);
        if (!isnan(q->last_prob))
            printf(", last forest p %.3f", q->last_prob);
        if (q->o.cap)
            printf(", cap %d", q->o.cap);
    } else {
        printf(" of %d", q->o.budget);
    }
    printf("\n");
    int b = search_best(q);
    if (b >= 0) {
        char str[SPACE_STRLEN], note[96];
        shell_search_arch(s, &q->rec[b].arch, str, note);
        printf("  best so far %s score %.6g%s\n", str, q->rec[b].r.score, note);
    }
    printf("  time: warm-up %.1f s, forest %.1f s, evaluation %.1f s; state %s\n", q->t_warm,
           q->t_forest, q->t_eval, s->state_path[0] ? s->state_path : "not saved (set state FILE)");
    print_cached(q);
    if (s->nahead) {
        const int spent = s->nscored_ahead - s->nahead;
        printf("  scored ahead, %d at a time: %d evaluations (this session)", s->jobs, s->nahead);
        if (spent > 0)
            printf("; %d more scored for outcomes that did not come (yet)", spent);
        printf("\n");
    }
    int held = 0;
    for (int i = 0; i < s->npre; i++)
        held += !search_scored(q, &s->pre[i].arch);
    if (held && q->phase != PHASE_DONE)
        printf("  %d scored ahead and not taken yet (kept with the state): the search takes "
               "them if it picks them\n", held);
    if (q->stop_reason[0])
        printf("  finished: %s\n", q->stop_reason);
}

/* The best architecture the search evaluated by the benchmark column (what
 * the search could not see) and where its score put it among the
 * evaluations: whether the search met a better cell than its answer and
 * misjudged it. Called for a NAS-Bench-201 search with the table loaded. */
static void print_best_evaluated(const session *s, const nb201_arch *answer)
{
    const search *q = &s->srch;
    int best = -1, below = 0, col = -1;
    double bv = NAN;
    for (int i = 0; i < q->n; i++) {
        const nb201_arch a = sarch_to_nb201(&q->rec[i].arch);
        const double v = shell_bench_value(s, &a, &col);
        if (!isnan(v) && (best < 0 || v > bv))
            best = i, bv = v;
    }
    if (best < 0)
        return;
    for (int i = 0; i < q->n; i++)
        below += q->rec[i].r.score < q->rec[best].r.score;
    const nb201_arch a = sarch_to_nb201(&q->rec[best].arch);
    char str[SPACE_STRLEN];
    q->sp->format(&q->rec[best].arch, str, sizeof str);
    printf("  the best it evaluated by %s: %.2f (evaluation %d, score %.6g: %d of %d by score): "
           "%s\n",
           s->bench.colname[col], bv, best + 1, q->rec[best].r.score, below + 1, q->n,
           nb201_index(&a) == nb201_index(answer) ? "the answer" : str);
}

static void print_result(const session *s)
{
    const search *q = &s->srch;
    sarch sa;
    if (search_answer(q, &sa) < 0) {
        printf("no answer yet: %s\n", rm_last_error());
        return;
    }
    nb201_arch a = sarch_to_nb201(&sa);
    char str[SPACE_STRLEN];
    q->sp->format(&sa, str, sizeof str);
    printf("arch %s\n", str);
    const char *names[16];
    double vals[16];
    int nb = q->sp == &space_nb201;
    int nv = session_bench_values(s, nb ? &a : NULL, names, vals, 16);
    if (nv > 0) {
        printf(" ");
        for (int i = 0; i < nv; i++)
            printf(" %s %.2f", names[i], vals[i]);
        printf("\n");
        shell_bench_rank(s, &a);
        print_best_evaluated(s, &a);
    } else if (nb) {
        printf("  (load benchmark nb201 for its accuracies)\n");
    } else {
        double p, f;
        if (session_sarch_cost((session *)s, q->sp, &sa, &p, &f) == 0)
            printf("  %s space: %.0f parameters, %.2f M MACs (no benchmark table for it)\n",
                   q->sp->name, p, f / 1e6);
    }
    if (q->phase != PHASE_DONE)
        printf("  (the search is not finished: this is the answer so far)\n");
    printf("  %d evaluations (%s evaluator), %.1f s: warm-up %.1f s, forest %.1f s, evaluation "
           "%.1f s\n",
           q->n, s->evaluator == EVAL_RMI ? "rmi" : "benchmark",
           q->t_warm + q->t_forest + q->t_eval, q->t_warm, q->t_forest, q->t_eval);
    print_cached(q);
}

/* Run and report how it ended. */
static int run_report(shell *sh, int rc)
{
    session *s = &sh->s;
    if (rc < 0)
        return SH_ERROR;
    if (rc == 1) {
        printf("paused after %d evaluations%s%s; 'search run' continues\n", s->srch.n,
               s->state_path[0] ? ", state in " : "", s->state_path);
    } else if (rc == 2) {
        printf("search done: %s\n", s->srch.stop_reason);
        print_result(s);
    }
    return SH_OK;
}

int cmd_search(shell *sh, int argc, char **argv)
{
    session *s = &sh->s;
    const char *sub = argc >= 2 ? argv[1] : "";
    if (!strcmp(sub, "start")) {
        if (argc < 3)
            return usage_error("search", SEARCH_USAGE);
        if (argc % 2 == 0) {
            rm_error("start: '%s' needs a value (options are KEY VALUE pairs)", argv[argc - 1]);
            return SH_ERROR;
        }
        /* the options are settings; a start that fails leaves them as they were */
        int nopt = (argc - 3) / 2, done = 0, bad = 0;
        char (*was)[1100] = calloc((size_t)nopt + 1, sizeof *was);
        if (!was) {
            fprintf(stderr, "error: search: out of memory\n");
            return SH_ERROR;
        }
        for (; done < nopt && !bad; done++) {
            const char *k = argv[3 + 2 * done], *v = argv[4 + 2 * done];
            bad = session_get(s, k, was[done], sizeof was[done]) < 0 || session_set(s, k, v) < 0;
        }
        if (bad)
            done--; /* the last one failed: it was not set */
        bad = bad || session_search_start(s, argv[2]) < 0;
        if (bad) {
            char err[2048];
            snprintf(err, sizeof err, "%s", rm_last_error());
            while (done-- > 0)
                session_set(s, argv[3 + 2 * done], was[done]);
            rm_error("%s", err);
        }
        free(was);
        if (bad)
            return SH_ERROR;
        const search_opts *o = &s->srch.o;
        printf("search %s started in %s: seed %llu, evaluator %s", argv[2], s->srch.sp->name,
               (unsigned long long)o->seed,
               s->evaluator == EVAL_RMI ? "rmi" : "benchmark");
        if (s->evaluator == EVAL_BENCHMARK)
            printf(" (%s of %s)", s->bench_column,
                   s->bench_eval.nrows ? s->bench_eval.path : s->bench.path);
        if (o->algo == SEARCH_RMINAS)
            printf(", n_warm %d, quantile %g, n_fitting %d, n_collect %d, top %d, trees %d%s",
                   o->n_warm, o->quantile, o->n_fitting, o->n_collect, o->top, o->trees,
                   o->cap ? ", capped" : "");
        else
            printf(", budget %d", o->budget);
        printf("; state %s\n", s->state_path[0] ? s->state_path : "not saved");
        return SH_OK;
    }
    if (!strcmp(sub, "warmup") && argc == 2)
        return run_report(sh, session_search_warmup(s, search_print, NULL));
    if (!strcmp(sub, "step") && argc <= 3) {
        long n = 1;
        if (argc == 3 && parse_int(argv[2], 1, NB201_COUNT, "N", &n) < 0)
            return SH_ERROR;
        return run_report(sh, session_search_step(s, (int)n, search_print, NULL));
    }
    if (!strcmp(sub, "run") && argc == 2)
        return run_report(sh, session_search_step(s, -1, search_print, NULL));
    if (!strcmp(sub, "resume") && argc <= 3) {
        if (argc == 3) {
            if (session_search_load(s, argv[2]) < 0)
                return SH_ERROR;
            printf("resumed %s: ", argv[2]);
            print_status(s);
            print_log_note(s);
            char on[sizeof s->srch_on];
            session_scored_on(s, on, sizeof on);
            if (s->evaluator == EVAL_RMI && s->srch.phase != PHASE_DONE && s->srch_on[0] &&
                strcmp(s->srch_on, "mixed") && strcmp(s->srch_on, on))
                printf("note: %s was scored with %s, this process scores with %s: the rest of "
                       "the search differs in the last digits from a run that never stopped "
                       "(give the same for the same)\n", argv[2], s->srch_on, on);
        }
        return run_report(sh, session_search_step(s, -1, search_print, NULL));
    }
    if (!strcmp(sub, "load") && argc == 3) {
        if (session_search_load(s, argv[2]) < 0)
            return SH_ERROR;
        printf("loaded %s: ", argv[2]);
        print_status(s);
        print_log_note(s);
        return SH_OK;
    }
    if (!strcmp(sub, "pause") && argc == 2) {
        if (!s->srch.scored.slot) {
            rm_error("no search to pause");
            return SH_ERROR;
        }
        printf("search paused after %d evaluations%s%s ('search run' or 'search resume' "
               "continues)\n", s->srch.n, s->state_path[0] ? "; state in " : "", s->state_path);
        return SH_OK;
    }
    if ((!strcmp(sub, "status") || !strcmp(sub, "result")) && argc == 2) {
        if (!s->srch.scored.slot) {
            rm_error("no search (search start ALGO, or search resume FILE)");
            return SH_ERROR;
        }
        if (!strcmp(sub, "status"))
            print_status(s);
        else
            print_result(s);
        return SH_OK;
    }
    return usage_error("search", SEARCH_USAGE);
}
