/* Session commands around the search: settings, the evaluators (RMI score
 * or benchmark lookup), cost constraints, start / step / resume with the
 * state saved after every evaluation. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "session/score_pool.h"
#include "session/session.h"
#include "util/clock.h"
#include "util/err.h"

/* ---- settings ---- */

typedef struct int_setting {
    const char *key;
    size_t off;
    long lo, hi;
} int_setting;

#define OPT(f) offsetof(search_opts, f)
static const int_setting int_settings[] = {
    {"n_warm", OPT(n_warm), 1, NB201_COUNT},     {"n_fitting", OPT(n_fitting), 1, NB201_COUNT},
    {"n_collect", OPT(n_collect), 1, NB201_COUNT}, {"top", OPT(top), 0, NB201_COUNT},
    {"trees", OPT(trees), 1, 10000},              {"cap", OPT(cap), 0, NB201_COUNT},
    {"budget", OPT(budget), 1, NB201_COUNT},      {"population", OPT(population), 1, 10000},
    {"sample_size", OPT(sample_size), 1, 10000},
};
static const struct {
    const char *key;
    size_t off;
    double lo, hi;
} dbl_settings[] = {
    {"quantile", OPT(quantile), 1e-6, 1 - 1e-6}, {"rl_lr", OPT(rl_lr), 1e-9, 100},
    {"rl_momentum", OPT(rl_momentum), 0, 0.999999}, {"max_params", OPT(max_params), 0, 1e15},
    {"max_flops", OPT(max_flops), 0, 1e18},
};
#undef OPT
enum { NINT = sizeof int_settings / sizeof int_settings[0],
       NDBL = sizeof dbl_settings / sizeof dbl_settings[0] };

int session_search_set(session *s, const char *key, const char *v)
{
    if (!strcmp(key, "evaluator")) {
        if (!strcmp(v, "rmi"))
            s->evaluator = EVAL_RMI;
        else if (!strcmp(v, "benchmark"))
            s->evaluator = EVAL_BENCHMARK;
        else
            return rm_error("evaluator must be rmi or benchmark, got '%s'", v);
        return 0;
    }
    struct stat st;
    if ((!strcmp(key, "score_log") || !strcmp(key, "rank_log") || !strcmp(key, "state")) &&
        strcmp(v, "none") && stat(v, &st) == 0 && S_ISDIR(st.st_mode))
        return rm_error("%s %s is a directory; give a file", key, v);
    if (!strcmp(key, "score_log") || !strcmp(key, "rank_log")) {
        if (strlen(v) >= sizeof s->rank_log)
            return rm_error("score_log file name too long");
        snprintf(s->rank_log, sizeof s->rank_log, "%s", strcmp(v, "none") ? v : "");
        return 0;
    }
    if (!strcmp(key, "state")) {
        if (strlen(v) >= sizeof s->state_path)
            return rm_error("state file name too long");
        snprintf(s->state_path, sizeof s->state_path, "%s", strcmp(v, "none") ? v : "");
        return 0;
    }
    for (int i = 0; i < NINT; i++)
        if (!strcmp(key, int_settings[i].key)) {
            long l = 0;
            if (session_parse_long(key, v, int_settings[i].lo, int_settings[i].hi, &l) < 0)
                return -1;
            *(int *)((char *)&s->search_o + int_settings[i].off) = (int)l;
            return 0;
        }
    for (int i = 0; i < NDBL; i++)
        if (!strcmp(key, dbl_settings[i].key)) {
            double d = 0;
            if (session_parse_double(key, v, dbl_settings[i].lo, dbl_settings[i].hi, &d) < 0)
                return -1;
            *(double *)((char *)&s->search_o + dbl_settings[i].off) = d;
            return 0;
        }
    return -2;
}

int session_search_get(const session *s, const char *key, char *out, size_t size)
{
    if (!strcmp(key, "evaluator")) {
        snprintf(out, size, "%s", s->evaluator == EVAL_RMI ? "rmi" : "benchmark");
        return 0;
    }
    if (!strcmp(key, "state")) {
        snprintf(out, size, "%s", s->state_path[0] ? s->state_path : "none");
        return 0;
    }
    if (!strcmp(key, "score_log") || !strcmp(key, "rank_log")) {
        snprintf(out, size, "%s", s->rank_log[0] ? s->rank_log : "none");
        return 0;
    }
    for (int i = 0; i < NINT; i++)
        if (!strcmp(key, int_settings[i].key)) {
            snprintf(out, size, "%d", *(const int *)((const char *)&s->search_o + int_settings[i].off));
            return 0;
        }
    for (int i = 0; i < NDBL; i++)
        if (!strcmp(key, dbl_settings[i].key)) {
            snprintf(out, size, "%.15g",
                     *(const double *)((const char *)&s->search_o + dbl_settings[i].off));
            return 0;
        }
    return -2;
}

/* ---- tables and costs ---- */

int session_load_benchmark_kind(session *s, const char *which, const char *file)
{
    if (!strcmp(which, "nb201"))
        return session_load_benchmark(s, file);
    if (strcmp(which, "nb201-12"))
        return rm_error("unknown benchmark '%s' (nb201: 200-epoch ground truth, nb201-12: "
                        "12-epoch table for the benchmark evaluator)", which);
    char path[1024];
    if (!file) {
        if (session_find_data("nb201_12epoch.csv", path, sizeof path) < 0)
            return rm_error_context("no bundled 12-epoch table; give a FILE");
        file = path;
    }
    bench_table t;
    if (bench_load(file, &t) < 0)
        return -1;
    bench_free(&s->bench_eval);
    s->bench_eval = t;
    session_fit_bench_column(s);
    return 0;
}

static int cost_of_built(session *s, const nb201_arch *a, double *out)
{
    model m;
    int nclass = s->data.n ? s->data.nclass : session_nclass(s);
    int hw = s->data.n ? s->data.hw : session_hw(s);
    if (nb201_net_build(&m, s->be, a, nclass, hw) < 0)
        return -1;
    out[0] = (double)graph_count_trainable(m.g);
    out[1] = (double)graph_count_macs(m.g);
    model_free(&m);
    return 0;
}

int session_arch_cost(session *s, const nb201_arch *a, double *params, double *macs)
{
    if (!s->cost_ok) {
        /* every edge maps C channels to C channels at its stage's size, so
         * the cost is the all-none network plus one term per edge op */
        nb201_arch none = {{0}};
        if (cost_of_built(s, &none, s->cost_base) < 0)
            return -1;
        for (int k = 0; k < NB201_NOPS; k++) {
            nb201_arch one = none;
            one.op[0] = (uint8_t)k;
            double c[2];
            if (cost_of_built(s, &one, c) < 0)
                return -1;
            s->cost_op[k][0] = c[0] - s->cost_base[0];
            s->cost_op[k][1] = c[1] - s->cost_base[1];
        }
        s->cost_ok = 1;
    }
    double p = s->cost_base[0], f = s->cost_base[1];
    for (int e = 0; e < NB201_EDGES; e++) {
        p += s->cost_op[a->op[e]][0];
        f += s->cost_op[a->op[e]][1];
    }
    *params = p;
    *macs = f;
    return 0;
}

int session_bench_values(const session *s, const nb201_arch *a, const char **names,
                         double *values, int max)
{
    if (!s->bench.nrows || !a)
        return 0;
    int row = bench_row(&s->bench, a), n = 0;
    for (int c = 0; c < s->bench.ncols && n < max; c++) {
        if (!strcmp(s->bench.colname[c], "index"))
            continue; /* the benchmark's own numbering, not a measurement */
        names[n] = s->bench.colname[c];
        values[n++] = row >= 0 ? bench_value(&s->bench, row, c) : NAN;
    }
    return n;
}

/* ---- evaluators ---- */

/* A score's fields between the RMI result (the score log's rows) and the
 * search's record of an evaluation. */
static void eval_from_result(search_eval *out, const rmi_result *r)
{
    out->score = r->score;
    for (int i = 0; i < 3; i++)
        out->cka[i] = r->cka[i];
    out->ce = r->ce;
    out->seconds = r->seconds;
    out->diverged = r->diverged;
}

static void result_from_eval(rmi_result *r, const search_eval *q)
{
    r->score = q->score;
    for (int i = 0; i < 3; i++)
        r->cka[i] = q->cka[i];
    r->ce = q->ce;
    r->seconds = q->seconds;
    r->diverged = q->diverged;
}

/* The entry of a among the scores computed ahead (s->pre), or -1. */
static int pre_index(const session *s, const space *sp, const sarch *a)
{
    for (int i = 0; i < s->npre; i++)
        if (space_equal(sp, &s->pre[i].arch, a))
            return i;
    return -1;
}

/* The same, under the current settings only. */
static int pre_find(session *s, const space *sp, const sarch *a)
{
    if (!s->npre)
        return -1;
    char sig[sizeof s->pre_sig];
    session_score_signature(s, sp, sig, sizeof sig);
    return strcmp(sig, s->pre_sig) ? -1 : pre_index(s, sp, a);
}

static int eval_rmi(void *user, const sarch *sa, search_eval *out)
{
    session *s = user;
    const space *sp = s->srch.sp;
    rank_entry *rows = NULL, e;
    int nrows = 0, rc = 0;
    FILE *log = NULL;
    if (s->rank_log[0] && !(log = session_score_log_open(s, sp, &rows, &nrows)))
        return -1;
    int hit = session_score_log_find(sp, rows, nrows, sa);
    const int ahead = pre_find(s, sp, sa);
    if (ahead >= 0) {
        /* scored ahead for this search (score_ahead): a fresh evaluation,
         * its batch's wall time already on the phase's clock */
        e = s->pre[ahead];
        s->nahead++;
        s->pre[ahead] = s->pre[--s->npre];
        if (log && hit < 0) /* not written then (no log, or a failed write) */
            rc = session_score_log_add(s, log, sp, &e);
        hit = -1;
    } else if (hit >= 0) {
        e = rows[hit];
    } else {
        memset(&e, 0, sizeof e);
        e.bench = NAN;
        rc = session_score_entry(s, sp, sa, &e, NULL, s->step_hook, s->hook_user);
        if (rc == 0 && log)
            rc = session_score_log_add(s, log, sp, &e);
    }
    if (log)
        fclose(log);
    free(rows);
    if (rc)
        return rc;
    char on[sizeof s->srch_on];
    session_scored_on(s, on, sizeof on);
    if (!s->srch_on[0])
        memcpy(s->srch_on, on, sizeof on);
    else if (strcmp(s->srch_on, on))
        snprintf(s->srch_on, sizeof s->srch_on, "mixed");
    eval_from_result(out, &e.r);
    out->cached = hit >= 0;
    return 0;
}

/* The current search's RMI evaluations that the score log lacks go into it
 * (a search loaded from a file shares its scores with later searches). */
static int score_log_sync(session *s)
{
    if (!s->rank_log[0] || s->evaluator != EVAL_RMI || !s->srch.n)
        return 0;
    char on[sizeof s->srch_on];
    session_scored_on(s, on, sizeof on);
    if (s->srch_on[0] && strcmp(s->srch_on, on)) {
        snprintf(s->log_note, sizeof s->log_note,
                 "its scores were not added to the score log: scored with %s, here %s",
                 !strcmp(s->srch_on, "mixed") ? "more than one device or thread count"
                                             : s->srch_on, on);
        return 0;
    }
    const space *sp = s->srch.sp;
    rank_entry *rows = NULL;
    int nrows = 0, rc = 0;
    FILE *log = session_score_log_open(s, sp, &rows, &nrows);
    if (!log)
        return -1;
    for (int k = 0; k < s->srch.n && !rc; k++) {
        const search_record *q = &s->srch.rec[k];
        if (session_score_log_find(sp, rows, nrows, &q->arch) >= 0)
            continue;
        rank_entry e;
        double p, f;
        memset(&e, 0, sizeof e);
        e.arch = q->arch;
        result_from_eval(&e.r, &q->r);
        e.bench = NAN;
        if ((rc = session_sarch_cost(s, sp, &q->arch, &p, &f)) == 0) {
            e.params = (long long)p;
            e.macs = (long long)f;
            rc = session_score_log_add(s, log, sp, &e);
        }
    }
    fclose(log);
    free(rows);
    return rc;
}

static const bench_table *eval_table(const session *s)
{
    return s->bench_eval.nrows ? &s->bench_eval : &s->bench;
}

static int eval_benchmark(void *user, const sarch *sa, search_eval *out)
{
    session *s = user;
    if (s->srch.sp != &space_nb201)
        return rm_error("the benchmark evaluator knows NAS-Bench-201 only, not the %s space",
                        s->srch.sp->name);
    nb201_arch na = sarch_to_nb201(sa);
    const nb201_arch *a = &na;
    const bench_table *t = eval_table(s);
    int col = bench_column(t, s->bench_column);
    if (col < 0)
        return rm_error_context("%s", t->path);
    int row = bench_row(t, a);
    double v = row >= 0 ? bench_value(t, row, col) : NAN;
    if (isnan(v)) {
        char str[NB201_STRLEN];
        nb201_format(a, str, sizeof str);
        return rm_error("%s has no %s value for %s", t->path, s->bench_column, str);
    }
    out->score = -v; /* lower is better */
    out->cka[0] = out->cka[1] = out->cka[2] = out->ce = NAN;
    out->seconds = 0;
    out->diverged = 0;
    return 0;
}

int session_sarch_cost(session *s, const space *sp, const sarch *a, double *params,
                       double *macs)
{
    if (sp == &space_nb201) {
        nb201_arch na = sarch_to_nb201(a);
        return session_arch_cost(s, &na, params, macs);
    }
    model m;
    if (sp->build(&m, s->be, a, session_nclass(s), session_hw(s)) < 0)
        return -1;
    *params = (double)graph_count_trainable(m.g);
    *macs = (double)graph_count_macs(m.g);
    model_free(&m);
    return 0;
}

int session_set_space(session *s, const char *name)
{
    const space *sp = space_get(name);
    if (!sp)
        return -1;
    if (sp->settings != s->sp->settings)
        for (const char *const *kv = sp->settings; kv[0]; kv += 2)
            if (session_set(s, kv[0], kv[1]) < 0)
                return -1;
    if (sp != s->sp) {
        /* the current architecture and its student belong to the old space */
        s->have_arch = 0;
        rmi_eval_free(&s->eval);
    }
    s->sp = sp;
    return 0;
}

static int cost_cb(void *user, const sarch *a, double *params, double *flops)
{
    session *s = user;
    return session_sarch_cost(s, s->srch.sp, a, params, flops);
}

/* ---- start, step, save, resume ---- */

/* Settings stored with the state and restored on resume (threads, jobs and
 * device describe the machine, not the search, and are left alone). */
static int keep_setting(const char *key)
{
    return strcmp(key, "threads") && strcmp(key, "jobs") && strcmp(key, "speculate") &&
           strcmp(key, "device") &&
           strcmp(key, "state") && strcmp(key, "score_log");
}

static uint64_t batch_hash(const rmi_data *d)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < d->n; i++) {
        h ^= (uint64_t)d->train_index[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* What was scored ahead (s->pre) under the current settings for this
 * search and not taken yet goes with the state, so that a process killed
 * while a later score was in before an earlier one loses neither. */
static void held_to_ctx(const session *s, search_ctx *c)
{
    _Static_assert((int)RANK_MAX_JOBS <= (int)SEARCH_MAX_HELD,
                   "the state holds every score made ahead");
    if (!s->npre)
        return;
    session_score_signature(s, s->srch.sp, c->held_sig, sizeof c->held_sig);
    if (strcmp(c->held_sig, s->pre_sig))
        return;
    for (int i = 0; i < s->npre; i++) {
        const rank_entry *e = &s->pre[i];
        if (search_scored(&s->srch, &e->arch))
            continue;
        search_held *h = &c->held[c->nheld++];
        h->arch = e->arch;
        eval_from_result(&h->r, &e->r);
        h->params = (double)e->params;
        h->macs = (double)e->macs;
    }
}

static int make_ctx(session *s, search_ctx *c)
{
    memset(c, 0, sizeof *c);
    char v[1024];
    for (int i = 0; i < session_nsettings; i++) {
        if (!keep_setting(session_settings[i].key))
            continue;
        if (session_get(s, session_settings[i].key, v, sizeof v) < 0 ||
            search_ctx_set(c, session_settings[i].key, v) < 0)
            return -1;
    }
    search_ctx_set(c, "dataset", s->data_name);
    search_ctx_set(c, "dataset_dir", s->data_dir);
    snprintf(v, sizeof v, "%d", s->train.n);
    search_ctx_set(c, "dataset_train", v);
    search_ctx_set(c, "teacher", s->teacher_file);
    search_ctx_set(c, "teacher_arch", s->teacher.g ? s->teacher.name : "");
    search_ctx_set(c, "benchmark", s->bench.nrows ? s->bench.path : "");
    search_ctx_set(c, "benchmark_eval", s->bench_eval.nrows ? s->bench_eval.path : "");
    if (s->evaluator == EVAL_RMI) {
        snprintf(v, sizeof v, "%016llx", (unsigned long long)batch_hash(&s->data));
        search_ctx_set(c, "batch_hash", v);
        if (s->srch_on[0])
            search_ctx_set(c, "scored_on", s->srch_on);
        held_to_ctx(s, c);
    }
    return 0;
}

/* Hold PATH.lock (flock, with this process's id in it) while this session
 * writes the search state PATH, so that two processes never run one search:
 * 0, or -1 naming the process that holds it. Kept until another state is
 * locked or the process ends; the lock file stays (removing it would let
 * two processes lock two files of one name). */
static int lock_state(session *s, const char *path)
{
    if (s->state_lock > 0 && !strcmp(s->state_locked, path))
        return 0;
    char lp[sizeof s->state_locked + 8];
    snprintf(lp, sizeof lp, "%s.lock", path);
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return rm_error("%s: cannot create: %s", lp, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        char pid[32] = "";
        ssize_t n = read(fd, pid, sizeof pid - 1);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(fd);
        if (err == EWOULDBLOCK)
            return rm_error("%s is in use by another rminas (process %s, %s); let it finish or "
                            "stop it, or set state to another file", path, *pid ? pid : "?", lp);
        return rm_error("%s: cannot lock: %s", lp, strerror(err));
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        int err = errno;
        close(fd);
        return rm_error("%s: cannot write: %s", lp, strerror(err));
    }
    if (s->state_lock > 0)
        close(s->state_lock);
    s->state_lock = fd;
    snprintf(s->state_locked, sizeof s->state_locked, "%s", path);
    return 0;
}

static int save_state(session *s)
{
    if (!s->state_path[0])
        return 0;
    if (lock_state(s, s->state_path) < 0)
        return -1;
    if (session_teacher_saved(s, "the search state") < 0)
        return -1;
    search_ctx *c = malloc(sizeof *c);
    if (!c)
        return rm_error("out of memory");
    int rc = make_ctx(s, c);
    if (rc == 0)
        rc = search_save(&s->srch, c, s->state_path);
    free(c);
    return rc;
}

static int need_evaluator(session *s)
{
    if (s->evaluator == EVAL_RMI)
        return session_need_batch(s);
    const bench_table *t = eval_table(s);
    if (!t->nrows)
        return rm_error("the benchmark evaluator needs a table (load benchmark nb201 [FILE])");
    if (bench_column(t, s->bench_column) < 0)
        return rm_error_context("%s", t->path);
    return 0;
}

int session_search_start(session *s, const char *algo_name)
{
    int algo = search_algo_lookup(algo_name);
    if (algo < 0)
        return -1;
    if (need_evaluator(s) < 0)
        return -1;
    if (s->state_path[0]) {
        if (session_teacher_saved(s, "the search state") < 0 || lock_state(s, s->state_path) < 0)
            return -1;
        int p = search_probe(s->state_path);
        if (p < 0)
            return rm_error_context("refusing to overwrite %s", s->state_path);
        if (p == 1)
            return rm_error("%s already holds a search; 'search resume %s' continues it, or set "
                            "state to another file", s->state_path, s->state_path);
    }
    search_opts o = s->search_o;
    o.algo = algo;
    o.seed = s->seed;
    search t;
    if (s->evaluator == EVAL_BENCHMARK && s->sp != &space_nb201)
        return rm_error("the benchmark evaluator knows NAS-Bench-201 only (space nb201, or set "
                        "evaluator rmi)");
    if (search_init(&t, s->sp, &o) < 0)
        return -1;
    search_free(&s->srch);
    s->srch = t;
    s->npre = s->nahead = s->nscored_ahead = 0;
    s->srch_on[0] = '\0';
    if (save_state(s) < 0) {
        search_free(&s->srch);
        return -1;
    }
    return 0;
}

/* ---- scoring ahead: jobs > 1 with the RMI evaluator ----
 * While the search waits for its next evaluation, `jobs` threads
 * (score_pool.h) score what its next evaluations may be (search_ahead):
 * those that do not depend on scores (a warm-up, random search, REA's
 * first population) within search_plan_window(jobs) of the search's place,
 * or RMI-NAS's picks under each outcome of the picks before, following
 * the scores already in. A job that finishes gets the likeliest next one
 * at once; a score goes into s->pre (and the score log) as it arrives,
 * and the search takes it (eval_rmi) as soon as it is next: the same
 * evaluations in the same order as with one job, each saved with the
 * state as soon as those before it are in. The main thread's wait is on
 * the phase's clock. Not under a step_hook alone (it runs only in the
 * evaluating thread): with one, a jobs_hook must watch the jobs (the
 * panel). A failed score turns scoring ahead off for the rest of the
 * call: the evaluations then run one by one and report their own errors. */
enum { AHEAD_STEPS = RANK_MAX_JOBS };

typedef struct ahead {
    session *s;
    score_pool *pool;   /* NULL: not started */
    int off;            /* a score or the pool failed: no more scoring ahead in this call */
    int have_rows;
    rank_entry *rows;   /* the score log's rows when the pool started */
    int nrows;
    FILE *log;          /* open while the pool runs; NULL without a score log */
    int unsaved;        /* scores taken into s->pre since the state was last saved */
} ahead;

static int ahead_cost(void *user, const sarch *a, double *params, double *flops)
{
    const ahead *h = user;
    return cost_cb(h->s, a, params, flops);
}

static int ahead_prepare(ahead *h);

/* a's score when the search would take it without scoring it: scored ahead
 * (under the settings of pre_sig) or in the score log, both made ready on
 * the first question (a failure turns scoring ahead off) */
static int ahead_known(void *user, const sarch *a, search_eval *out)
{
    ahead *h = user;
    if (!h->have_rows && ahead_prepare(h) < 0) {
        h->off = 1;
        return 0;
    }
    const session *s = h->s;
    const space *sp = s->srch.sp;
    const int i = pre_index(s, sp, a); /* pre holds this settings' scores only */
    if (i >= 0) {
        eval_from_result(out, &s->pre[i].r);
        return 1;
    }
    const int j = session_score_log_find(sp, h->rows, h->nrows, a);
    if (j >= 0)
        eval_from_result(out, &h->rows[j].r);
    return j >= 0;
}

/* The pool's finished scores into s->pre (the newest RANK_MAX_JOBS) and
 * the score log; a failed one turns scoring ahead off. */
static void ahead_take(ahead *h)
{
    session *s = h->s;
    const space *sp = s->srch.sp;
    rank_entry r;
    int status;
    while (h->pool && score_pool_take(h->pool, &r, &status) >= 0) {
        if (status < 0)
            h->off = 1;
        if (status)
            continue;
        r.bench = NAN;
        r.logged = 0;
        if (s->npre == RANK_MAX_JOBS) /* the oldest goes */
            memmove(s->pre, s->pre + 1, (size_t)--s->npre * sizeof *s->pre);
        s->pre[s->npre++] = r;
        s->nscored_ahead++;
        h->unsaved++;
        if (h->log && session_score_log_add(s, h->log, sp, &r) < 0) {
            fclose(h->log); /* eval_rmi writes it when the search takes it */
            h->log = NULL;
        }
    }
    rm_clear_error();
}

/* Stop the jobs (scores under way are dropped, finished ones kept in
 * s->pre); scoring ahead may start again. */
static void ahead_end(ahead *h)
{
    if (h->pool) {
        score_pool_stop(h->pool);
        ahead_take(h);
        score_pool_free(h->pool);
        h->pool = NULL;
    }
    if (h->log)
        fclose(h->log);
    h->log = NULL;
    free(h->rows);
    h->rows = NULL;
    h->nrows = h->have_rows = 0;
}

/* the score log's rows, and pre under the current settings only (once
 * until ahead_end) */
static int ahead_prepare(ahead *h)
{
    session *s = h->s;
    const space *sp = s->srch.sp;
    if (h->have_rows)
        return 0;
    if (!s->pre && !(s->pre = malloc(RANK_MAX_JOBS * sizeof *s->pre)))
        return -1;
    char sig[sizeof s->pre_sig];
    session_score_signature(s, sp, sig, sizeof sig);
    if (strcmp(sig, s->pre_sig))
        s->npre = 0;
    memcpy(s->pre_sig, sig, sizeof sig);
    int keep = 0; /* what the search has not evaluated yet */
    for (int i = 0; i < s->npre; i++)
        if (!search_scored(&s->srch, &s->pre[i].arch))
            s->pre[keep++] = s->pre[i];
    s->npre = keep;
    if (s->rank_log[0] && !(h->log = session_score_log_open(s, sp, &h->rows, &h->nrows)))
        return -1;
    h->have_rows = 1;
    return 0;
}

/* Hand the jobs what the search's next `steps` evaluations may be, and
 * wait until the next one is scored (or nothing can score it ahead).
 * 0, or 1 when interrupted or stopped by the jobs_hook. */
static int score_ahead(ahead *h, int steps)
{
    session *s = h->s;
    search *q = &s->srch;
    const int spec = q->o.algo == SEARCH_RMINAS && q->phase == PHASE_EXPAND;
    if (s->jobs < 2 || s->evaluator != EVAL_RMI || (s->step_hook && !s->jobs_hook) ||
        (spec && !s->speculate)) {
        ahead_end(h); /* the search scores alone, with no job at work */
        return 0;
    }
    for (;;) {
        ahead_take(h);
        if (s->interrupt)
            return 1;
        sarch busy[RANK_MAX_JOBS], start[RANK_MAX_JOBS];
        int slot[RANK_MAX_JOBS], nstart, stop, plan = SEARCH_ALONE;
        const int nbusy = h->pool ? score_pool_running(h->pool, slot, busy) : 0;
        if (!h->off)
            plan = search_plan(q, s->jobs, steps, busy, nbusy, s->jobs - nbusy, ahead_cost,
                               ahead_known, h, start, &nstart, &stop);
        if (h->off) /* a failure on the way (ahead_known) */
            plan = SEARCH_ALONE;
        if (plan == SEARCH_READY)
            return 0;
        if (plan != SEARCH_WAIT || (!h->pool && !(h->pool = score_pool_start(s, q->sp, s->jobs,
                                                                                0)))) {
            /* the search scores its next one alone */
            h->off |= plan < 0 || (plan == SEARCH_WAIT && !h->pool);
            rm_clear_error();
            ahead_end(h);
            return 0;
        }
        int free_slot;
        for (int i = 0; i < nstart && (free_slot = score_pool_idle(h->pool)) >= 0; i++)
            score_pool_give(h->pool, free_slot, &start[i], NULL);
        if (stop >= 0)
            score_pool_cancel(h->pool, slot[stop]);
        /* scores in before an earlier one go with the state (held_to_ctx),
         * once the jobs are at work again; a failure is the next save's */
        if (h->unsaved && s->state_path[0]) {
            if (save_state(s) < 0)
                rm_clear_error();
            else
                h->unsaved = 0;
        }
        const double t0 = rm_seconds();
        const int hook_stop = score_pool_wait(h->pool);
        *(q->phase == PHASE_WARMUP ? &q->t_warm : &q->t_eval) += rm_seconds() - t0;
        if (hook_stop)
            return 1;
    }
}

int session_search_step(session *s, int n, search_callback cb, void *user)
{
    if (!s->srch.scored.slot)
        return rm_error("no search (search start rminas|random|rea|reinforce, or search resume "
                        "FILE)");
    if (need_evaluator(s) < 0)
        return -1;
    if (s->state_path[0] && lock_state(s, s->state_path) < 0)
        return -1;
    search_evaluate_fn ev = s->evaluator == EVAL_RMI ? eval_rmi : eval_benchmark;
    ahead h = {.s = s};
    int rc = 0;
    for (int k = 0; rc == 0 && (n < 0 || k < n); k++) {
        if (s->interrupt) {
            rc = 1;
            break;
        }
        if ((rc = score_ahead(&h, n < 0 ? AHEAD_STEPS : n - k)) != 0)
            break;
        rc = search_step(&s->srch, ev, cost_cb, s);
        if (rc < 0 || rc == 1)
            break;
        h.unsaved = 0; /* the save below holds them */
        if (rc == 2) {
            rc = save_state(s) < 0 ? -1 : 2;
            break;
        }
        if (save_state(s) < 0) {
            rc = rm_error_context("the evaluation is done but the state was not saved");
            break;
        }
        if (cb && cb(s, user))
            rc = 1;
        else if (s->srch.phase == PHASE_DONE)
            rc = 2;
    }
    char err[1024];
    snprintf(err, sizeof err, "%s", rm_last_error());
    ahead_end(&h);
    /* the scores that came in last (the jobs were stopped) */
    if (h.unsaved && rc >= 0 && save_state(s) < 0)
        return rm_error_context("the scores made ahead were not saved with the state");
    if (rc < 0)
        rm_error("%s", err);
    return rc;
}

int session_search_warmup(session *s, search_callback cb, void *user)
{
    if (!s->srch.scored.slot)
        return rm_error("no search (search start rminas)");
    if (s->srch.o.algo != SEARCH_RMINAS)
        return rm_error("only rminas has a warm-up (this search is %s)",
                        search_algo_names[s->srch.o.algo]);
    while (s->srch.phase == PHASE_WARMUP) {
        /* all that is left at once, so that jobs can score ahead */
        const int left = s->srch.o.n_warm - s->srch.n;
        int rc = session_search_step(s, left > 1 ? left : 1, cb, user);
        if (rc)
            return rc;
    }
    return 0;
}

/* The scores ahead a state holds into s->pre, to be taken under the
 * settings they were made with (pre_find). */
static void held_from_ctx(session *s, const search_ctx *c)
{
    if (!c->nheld || (!s->pre && !(s->pre = malloc(RANK_MAX_JOBS * sizeof *s->pre))))
        return; /* no memory: they are scored again */
    for (int i = 0; i < c->nheld && s->npre < RANK_MAX_JOBS; i++) {
        const search_held *h = &c->held[i];
        rank_entry *e = &s->pre[s->npre++];
        memset(e, 0, sizeof *e);
        e->arch = h->arch;
        result_from_eval(&e->r, &h->r);
        e->params = (long long)h->params;
        e->macs = (long long)h->macs;
        e->bench = NAN;
    }
    snprintf(s->pre_sig, sizeof s->pre_sig, "%s", c->held_sig);
}

int session_search_load(session *s, const char *path)
{
    search t;
    search_ctx *c = malloc(sizeof *c);
    if (!c)
        return rm_error("out of memory");
    if (search_load(&t, c, path) < 0) {
        free(c);
        return -1;
    }
    int rc = 0;
    /* settings first (a failure leaves the session's settings as they were) */
    const rmi_settings old_rmi = s->rmi;
    const search_opts old_opts = s->search_o;
    const int old_evaluator = s->evaluator;
    const uint64_t old_seed = s->seed;
    const rng old_rng = s->sample_rng;
    char old_conv[16];
    snprintf(old_conv, sizeof old_conv, "%s", backend_cpu_conv());
    /* states written before the conv setting existed were scored with
     * oneDNN's direct convolutions */
    if (!search_ctx_get(c, "conv") && backend_cpu_set_conv("dnnl") < 0)
        rm_clear_error(); /* no oneDNN: im2col, as then */
    for (int i = 0; i < c->n && !rc; i++) {
        const char *k = c->key[i];
        int known = 0;
        for (int j = 0; j < session_nsettings; j++)
            known |= !strcmp(session_settings[j].key, k);
        if (!known || !keep_setting(k) || !strcmp(k, "benchmark_column"))
            continue;
        if (session_set(s, k, c->val[i]) < 0)
            rc = rm_error_context("%s: setting %s", path, k);
    }
    const char *v;
    /* the data the search depends on: load what is missing, refuse what differs */
    if (!rc && (v = search_ctx_get(c, "benchmark")) && *v && !s->bench.nrows)
        rc = session_load_benchmark(s, v);
    if (!rc && (v = search_ctx_get(c, "benchmark_eval")) && *v && !s->bench_eval.nrows)
        rc = session_load_benchmark_kind(s, "nb201-12", v);
    if (!rc && (v = search_ctx_get(c, "benchmark_column")))
        rc = session_set(s, "benchmark_column", v);
    if (!rc && (v = search_ctx_get(c, "evaluator")) && !strcmp(v, "rmi")) {
        const char *dn = search_ctx_get(c, "dataset"), *dd = search_ctx_get(c, "dataset_dir");
        const char *tf = search_ctx_get(c, "teacher"), *nt = search_ctx_get(c, "dataset_train");
        char ntrain[32];
        snprintf(ntrain, sizeof ntrain, "%d", s->train.n);
        if (!s->train.n && dn && dd && *dn)
            rc = session_load_dataset(s, dn, dd);
        else if (s->train.n && nt && strcmp(nt, ntrain))
            rc = rm_error("%s was searched with %s training images; the loaded dataset has %s",
                          path, nt, ntrain);
        const char *ta = search_ctx_get(c, "teacher_arch");
        if (!rc && !s->teacher.g && tf && *tf)
            rc = session_load_teacher(s, ta && *ta ? ta : "resnet20", tf);
        if (!rc)
            rc = session_need_batch(s);
        const char *bh = search_ctx_get(c, "batch_hash");
        char now[32];
        snprintf(now, sizeof now, "%016llx", rc ? 0ULL : (unsigned long long)batch_hash(&s->data));
        if (!rc && bh && strcmp(bh, now))
            rc = rm_error("%s: the selected batch differs from the saved search's (another "
                          "dataset or teacher?); load the ones it used: dataset %s, teacher %s",
                          path, dd ? dd : "?", tf ? tf : "?");
    }
    if (rc) {
        /* restore the settings; loaded data stays (it is only more) */
        s->rmi = old_rmi;
        s->search_o = old_opts;
        s->evaluator = old_evaluator;
        s->seed = old_seed;
        s->sample_rng = old_rng;
        backend_cpu_set_conv(old_conv);
        search_free(&t);
        free(c);
        return -1;
    }
    search_free(&s->srch);
    s->srch = t;
    s->npre = s->nahead = s->nscored_ahead = 0;
    held_from_ctx(s, c);
    s->search_o = t.o;
    s->sp = t.sp;
    snprintf(s->state_path, sizeof s->state_path, "%s", path);
    /* a search running in another process may be looked at; stepping it
     * here is refused (session_search_step) */
    if (lock_state(s, path) < 0)
        rm_clear_error();
    v = search_ctx_get(c, "scored_on");
    snprintf(s->srch_on, sizeof s->srch_on, "%s", v ? v : "");
    s->log_note[0] = '\0';
    free(c);
    if (score_log_sync(s) < 0)
        return rm_error_context("%s is loaded, but its scores did not go into the score log",
                                path);
    return 0;
}
