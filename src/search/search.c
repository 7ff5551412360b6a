/* RMI-NAS (Algorithm 1), random search, REA and REINFORCE over a search
 * space (space.h), one evaluation per search_step. */
#include "search/search.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search/forest.h"
#include "util/clock.h"
#include "util/err.h"

const char *const search_algo_names[SEARCH_NALGO] = {"rminas", "random", "rea", "reinforce"};
const char *const search_phase_names[4] = {"warmup", "expand", "run", "done"};

/* ---- key set ---- */

static int keyset_grow(keyset *k)
{
    int cap = k->cap ? 2 * k->cap : 1024;
    uint64_t *slot = calloc((size_t)cap, sizeof *slot);
    if (!slot)
        return rm_error("out of memory");
    for (int i = 0; i < k->cap; i++)
        if (k->slot[i]) {
            size_t j = (size_t)(k->slot[i] & (uint64_t)(cap - 1));
            while (slot[j])
                j = (j + 1) & (size_t)(cap - 1);
            slot[j] = k->slot[i];
        }
    free(k->slot);
    k->slot = slot;
    k->cap = cap;
    return 0;
}

static int keyset_has(const keyset *k, uint64_t key)
{
    if (!k->cap)
        return 0;
    key = key ? key : 1;
    size_t j = (size_t)(key & (uint64_t)(k->cap - 1));
    while (k->slot[j]) {
        if (k->slot[j] == key)
            return 1;
        j = (j + 1) & (size_t)(k->cap - 1);
    }
    return 0;
}

static int keyset_add(keyset *k, uint64_t key)
{
    key = key ? key : 1;
    if (keyset_has(k, key))
        return 0;
    if ((k->n + 1) * 2 > k->cap && keyset_grow(k) < 0)
        return -1;
    size_t j = (size_t)(key & (uint64_t)(k->cap - 1));
    while (k->slot[j])
        j = (j + 1) & (size_t)(k->cap - 1);
    k->slot[j] = key;
    k->n++;
    return 0;
}

static void keyset_free(keyset *k)
{
    free(k->slot);
    memset(k, 0, sizeof *k);
}

int search_scored(const search *s, const sarch *a)
{
    return keyset_has(&s->scored, space_key(s->sp, a));
}

int search_mark_scored(search *s, const sarch *a)
{
    return keyset_add(&s->scored, space_key(s->sp, a));
}

int search_algo_lookup(const char *name)
{
    for (int i = 0; i < SEARCH_NALGO; i++)
        if (!strcmp(name, search_algo_names[i]))
            return i;
    return rm_error("unknown search algorithm '%s' (rminas, random, rea, reinforce)", name);
}

void search_opts_default(search_opts *o)
{
    memset(o, 0, sizeof *o);
    o->algo = SEARCH_RMINAS;
    o->n_warm = 100;
    o->quantile = 0.05;
    o->n_fitting = 1000;
    o->n_collect = 100;
    o->top = 50;
    o->trees = 30;
    o->budget = 100;
    o->population = 10;
    o->sample_size = 3;
    o->rl_lr = 0.01;
    o->rl_momentum = 0.9;
}

static int opts_check(const search_opts *o)
{
    if (o->algo < 0 || o->algo >= SEARCH_NALGO)
        return rm_error("invalid search algorithm %d", o->algo);
    if (o->n_warm < 1)
        return rm_error("n_warm must be at least 1, not %d", o->n_warm);
    if (!(o->quantile > 0 && o->quantile < 1))
        return rm_error("quantile must be in (0, 1), not %g", o->quantile);
    if (o->n_fitting < 1 || o->n_collect < 1 || o->trees < 1 || o->top < 0 || o->cap < 0)
        return rm_error("n_fitting, n_collect and trees must be >= 1, top and cap >= 0");
    if (o->budget < 1 || o->population < 1 || o->sample_size < 1)
        return rm_error("budget, population and sample_size must be >= 1");
    if (o->sample_size > o->population)
        return rm_error("sample_size (%d) must not exceed population (%d)", o->sample_size,
                        o->population);
    if (!(o->rl_lr > 0) || !(o->rl_momentum >= 0 && o->rl_momentum < 1))
        return rm_error("rl_lr must be > 0 and rl_momentum in [0, 1)");
    if (o->max_params < 0 || o->max_flops < 0)
        return rm_error("max_params and max_flops must be >= 0 (0: no constraint)");
    return 0;
}

int search_init(search *s, const space *sp, const search_opts *o)
{
    memset(s, 0, sizeof *s);
    if (opts_check(o) < 0)
        return -1;
    if (o->algo == SEARCH_REINFORCE && sp->valid)
        return rm_error("reinforce samples every position independently; the %s space has "
                        "constraints it cannot meet", sp->name);
    if (o->n_warm > (sp->count ? sp->count : 1 << 30))
        return rm_error("n_warm %d is more than the %d architectures of %s", o->n_warm, sp->count,
                        sp->name);
    s->sp = sp;
    s->o = *o;
    if (keyset_grow(&s->scored) < 0)
        return -1;
    rng_seed(&s->rng, o->seed);
    s->phase = o->algo == SEARCH_RMINAS ? PHASE_WARMUP : PHASE_RUN;
    s->tau = NAN;
    s->last_prob = NAN;
    s->pending_prob = NAN;
    return 0;
}

/* ---- RMI-NAS's picks remembered by state ----
 * A pick (pick_candidate) depends on nothing but the records' architectures
 * and labels in order, the iteration and the generator (the options and
 * constraints are the search's): a speculation makes the same picks again
 * each time a job finishes, and the search makes them once more when it
 * gets there, so each is kept under a hash of that state. */
enum { MEMO_CAP = 4096 }; /* a power of two; cleared when half full */

typedef struct pick_entry {
    uint64_t key;       /* 0: empty */
    int none;           /* pick_candidate found no candidate */
    sarch pending;
    double prob;
    rng rng_after;
    int iteration_after;
} pick_entry;

typedef struct pick_memo {
    int n;
    long fits;          /* pick_candidate runs (forest fits) of the search and its copies */
    pick_entry e[MEMO_CAP];
} pick_memo;

long search_forest_fits(const search *s)
{
    return s->memo ? s->memo->fits : 0;
}

static uint64_t pick_key(const search *s)
{
    uint64_t h = rng_hash64(((uint64_t)s->n << 32) ^ (uint64_t)s->iteration);
    for (int i = 0; i < 4; i++)
        h = rng_hash64(h ^ s->rng.s[i]);
    h = rng_hash64(h ^ (uint64_t)s->scored.n);
    for (int i = 0; i < s->n; i++)
        h = rng_hash64(h ^ (space_key(s->sp, &s->rec[i].arch) * 2 + (uint64_t)s->rec[i].good));
    return h ? h : 1;
}

/* the entry of key, or the empty slot where it goes (NULL: no memo) */
static pick_entry *memo_slot(search *s, uint64_t key)
{
    if (!s->memo) {
        if (!(s->memo = calloc(1, sizeof *s->memo)))
            return NULL; /* picks are made afresh */
        s->memo_owner = 1;
    }
    pick_memo *m = s->memo;
    if (m->n >= MEMO_CAP / 2) {
        memset(m->e, 0, sizeof m->e);
        m->n = 0;
    }
    size_t i = (size_t)key & (MEMO_CAP - 1);
    while (m->e[i].key && m->e[i].key != key)
        i = (i + 1) & (MEMO_CAP - 1);
    return &m->e[i];
}

void search_free(search *s)
{
    if (s->memo_owner)
        free(s->memo);
    free(s->rec);
    keyset_free(&s->scored);
    memset(s, 0, sizeof *s);
}

/* ---- helpers ---- */

double search_quantile(const double *v, int n, double q)
{
    if (n < 1)
        return NAN;
    double *t = malloc((size_t)n * sizeof *t);
    if (!t)
        return NAN;
    memcpy(t, v, (size_t)n * sizeof *t);
    /* insertion sort is fine for the sizes here; +inf sorts last */
    for (int i = 1; i < n; i++) {
        double x = t[i];
        int j = i - 1;
        while (j >= 0 && t[j] > x) {
            t[j + 1] = t[j];
            j--;
        }
        t[j + 1] = x;
    }
    double pos = q * (n - 1);
    int lo = (int)floor(pos), hi = (int)ceil(pos);
    double frac = pos - lo, r;
    if (frac == 0 || t[lo] == t[hi])
        r = t[lo];
    else if (isinf(t[hi]))
        r = INFINITY;
    else
        r = t[lo] + (t[hi] - t[lo]) * frac;
    free(t);
    return r;
}

/* Indices of records sorted by score, ties in evaluation order. */
static int *sorted_records(const search *s, int good_only, int *count)
{
    int *idx = malloc((size_t)(s->n + 1) * sizeof *idx);
    if (!idx)
        return NULL;
    int m = 0;
    for (int i = 0; i < s->n; i++)
        if (!good_only || s->rec[i].good)
            idx[m++] = i;
    for (int i = 1; i < m; i++) { /* stable insertion sort */
        int x = idx[i], j = i - 1;
        while (j >= 0 && s->rec[idx[j]].r.score > s->rec[x].r.score) {
            idx[j + 1] = idx[j];
            j--;
        }
        idx[j + 1] = x;
    }
    *count = m;
    return idx;
}

int search_best(const search *s)
{
    int best = -1;
    for (int i = 0; i < s->n; i++)
        if (best < 0 || s->rec[i].r.score < s->rec[best].r.score)
            best = i;
    return best;
}

int search_answer(const search *s, sarch *a)
{
    if (s->o.algo != SEARCH_RMINAS || isnan(s->tau)) {
        int b = search_best(s);
        if (b < 0)
            return rm_error("no architecture evaluated yet");
        *a = s->rec[b].arch;
        return 0;
    }
    int m;
    int *idx = sorted_records(s, 1, &m);
    if (!idx)
        return rm_error("out of memory");
    if (m == 0) {
        free(idx);
        return rm_error("no architecture scored below the threshold %g", s->tau);
    }
    int k = s->o.top > 0 ? (m < s->o.top ? m : s->o.top) : (m + 1) / 2;
    sarch *sel = malloc((size_t)k * sizeof *sel);
    if (!sel) {
        free(idx);
        return rm_error("out of memory");
    }
    for (int i = 0; i < k; i++)
        sel[i] = s->rec[idx[i]].arch;
    space_select(s->sp, sel, k, a);
    free(sel);
    free(idx);
    return 0;
}

/* ---- sampling ---- */

static int feasible(search *s, const sarch *a, search_cost_fn cost, void *user, int *ok)
{
    *ok = 1;
    if (s->o.max_params <= 0 && s->o.max_flops <= 0)
        return 0;
    if (!cost)
        return rm_error("a constraint is set but no cost function is available");
    double p, f;
    if (cost(user, a, &p, &f) < 0)
        return -1;
    if ((s->o.max_params > 0 && p > s->o.max_params) || (s->o.max_flops > 0 && f > s->o.max_flops))
        *ok = 0;
    return 0;
}

enum { MAX_TRIES = 200000 };

/* A uniformly random unscored architecture that meets the constraints and
 * is not in skip (may be NULL); 1 when none was found. */
static int sample_unscored(search *s, search_cost_fn cost, void *user, const keyset *skip,
                           sarch *a)
{
    int left = s->sp->count ? s->sp->count - s->scored.n - (skip ? skip->n : 0) : 1;
    for (int t = 0; t < MAX_TRIES && left > 0; t++) {
        s->sp->sample(&s->rng, a);
        uint64_t key = space_key(s->sp, a);
        if (keyset_has(&s->scored, key) || (skip && keyset_has(skip, key)))
            continue;
        int ok;
        if (feasible(s, a, cost, user, &ok) < 0)
            return -1;
        if (ok)
            return 0;
    }
    return 1;
}

/* whether a score is a success (below tau; NaN counts as +inf) */
static int outcome_good(const search *s, const search_eval *r)
{
    return !isnan(s->tau) && !isnan(r->score) && r->score < s->tau;
}

static int add_record(search *s, const sarch *a, const search_eval *r, int phase, double prob)
{
    search_record *q = &s->rec[s->n++];
    q->arch = *a;
    q->r = *r;
    if (isnan(q->r.score))
        q->r.score = INFINITY;
    q->phase = phase;
    q->prob = prob;
    q->good = outcome_good(s, &q->r);
    return keyset_add(&s->scored, space_key(s->sp, a));
}

static int grow(search *s)
{
    if (s->n < s->cap_rec)
        return 0;
    int cap = s->cap_rec ? 2 * s->cap_rec : 256;
    search_record *r = realloc(s->rec, (size_t)cap * sizeof *r);
    if (!r)
        return rm_error("out of memory");
    s->rec = r;
    s->cap_rec = cap;
    return 0;
}

static int finish(search *s, const char *why)
{
    s->phase = PHASE_DONE;
    snprintf(s->stop_reason, sizeof s->stop_reason, "%s", why);
    return 2;
}

/* finish when no architecture could be drawn: the space is used up, or
 * (with max_params or max_flops) none left meets the constraints */
static int finish_none_left(search *s)
{
    int constrained = s->o.max_params > 0 || s->o.max_flops > 0;
    int all = s->sp->count && s->scored.n >= s->sp->count;
    return finish(s, constrained && !all ? "no unscored architecture meets the constraints"
                                         : "no unscored architecture left");
}

/* Evaluate a and record it; 0, 1 (interrupted) or -1. */
static int evaluate(search *s, const sarch *a, int phase, double prob, search_evaluate_fn ev,
                    void *user, double *secs)
{
    search_eval r;
    memset(&r, 0, sizeof r);
    double t0 = rm_seconds();
    int rc = ev(user, a, &r);
    *secs = rm_seconds() - t0;
    if (rc)
        return rc;
    if (grow(s) < 0)
        return -1;
    return add_record(s, a, &r, phase, prob);
}

/* ---- RMI-NAS ---- */

static int end_warmup(search *s)
{
    double *v = malloc((size_t)s->n * sizeof *v);
    if (!v)
        return rm_error("out of memory");
    for (int i = 0; i < s->n; i++)
        v[i] = s->rec[i].r.score;
    s->tau = search_quantile(v, s->n, s->o.quantile) + 1e-9;
    free(v);
    for (int i = 0; i < s->n; i++)
        s->rec[i].good = s->rec[i].r.score < s->tau;
    s->phase = PHASE_EXPAND;
    return 0;
}

/* Fit the forest on everything scored, draw n_fitting unscored candidates
 * and keep the most probably good one in s->pending. 1: no candidate. */
static int pick_candidate(search *s, search_cost_fn cost, void *user)
{
    const int nf = s->sp->npos * s->sp->nchoice;
    int n = s->n, rc = -1;
    double *x = malloc((size_t)n * nf * sizeof *x);
    int *y = malloc((size_t)n * sizeof *y);
    int nc = s->o.n_fitting;
    double *cx = malloc((size_t)nc * nf * sizeof *cx);
    double *pr = malloc((size_t)nc * 2 * sizeof *pr);
    sarch *cand = malloc((size_t)nc * sizeof *cand);
    keyset mark = {0};
    forest *f = NULL;
    if (!x || !y || !cx || !pr || !cand) {
        rm_error("out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        space_encode(s->sp, &s->rec[i].arch, x + (size_t)i * nf);
        y[i] = s->rec[i].good;
    }
    forest_opts fo;
    forest_opts_default(&fo);
    fo.n_trees = s->o.trees;
    fo.seed = rng_hash64(s->o.seed ^ rng_hash64((uint64_t)s->iteration + 1));
    if (forest_fit(&f, x, y, n, nf, 2, &fo) < 0)
        goto out;
    int m = 0;
    while (m < nc) {
        int r = sample_unscored(s, cost, user, &mark, &cand[m]);
        if (r < 0)
            goto out;
        if (r == 1)
            break;
        if (keyset_add(&mark, space_key(s->sp, &cand[m])) < 0)
            goto out;
        space_encode(s->sp, &cand[m], cx + (size_t)m * nf);
        m++;
    }
    s->iteration++;
    if (m == 0) {
        rc = 1;
        goto out;
    }
    forest_predict_proba(f, cx, m, pr);
    int best = 0;
    for (int i = 1; i < m; i++)
        if (pr[2 * i + 1] > pr[2 * best + 1])
            best = i;
    s->pending = cand[best];
    s->have_pending = 1;
    s->pending_prob = pr[2 * best + 1];
    rc = 0;
out:
    forest_free(f);
    keyset_free(&mark);
    free(x);
    free(y);
    free(cx);
    free(pr);
    free(cand);
    return rc;
}

/* A copy of s with records and key set of its own (search_free frees it),
 * room for one more record. */
static int clone(const search *s, search *c)
{
    *c = *s;
    c->memo_owner = 0; /* s's memo, shared */
    c->cap_rec = s->n + 1;
    c->rec = malloc((size_t)c->cap_rec * sizeof *c->rec);
    c->scored.slot = malloc((size_t)s->scored.cap * sizeof *c->scored.slot);
    if (!c->rec || !c->scored.slot) {
        free(c->rec);
        free(c->scored.slot);
        memset(c, 0, sizeof *c);
        return rm_error("out of memory");
    }
    if (s->n)
        memcpy(c->rec, s->rec, (size_t)s->n * sizeof *c->rec);
    memcpy(c->scored.slot, s->scored.slot, (size_t)s->scored.cap * sizeof *c->scored.slot);
    return 0;
}

static int rminas_stops(const search *s)
{
    return s->successes >= s->o.n_collect || (s->o.cap > 0 && s->n >= s->o.cap);
}

/* step_rminas's pick, made now when it is not yet (the same effects as
 * there); 1 when there is none (everything left as it was, for the step
 * to find out itself). */
static int make_pick(search *s, search_cost_fn cost, void *user)
{
    if (s->have_pending)
        return 0;
    const uint64_t key = pick_key(s);
    pick_entry *m = memo_slot(s, key);
    if (m && m->key == key) {
        if (m->none)
            return 1;
        s->pending = m->pending;
        s->pending_prob = m->prob;
        s->rng = m->rng_after;
        s->iteration = m->iteration_after;
        s->have_pending = 1;
        return 0;
    }
    const rng saved = s->rng;
    const int it = s->iteration;
    const double t0 = rm_seconds();
    int r = pick_candidate(s, cost, user);
    s->t_forest += rm_seconds() - t0;
    if (r) {
        s->rng = saved;
        s->iteration = it;
    }
    if (s->memo)
        s->memo->fits++;
    if (m && r >= 0) {
        *m = (pick_entry){.key = key, .none = r, .pending = s->pending,
                          .prob = s->pending_prob, .rng_after = s->rng,
                          .iteration_after = s->iteration};
        s->memo->n++;
    }
    return r;
}

static int step_rminas(search *s, search_evaluate_fn ev, search_cost_fn cost, void *user)
{
    double secs;
    if (s->phase == PHASE_WARMUP) {
        sarch a;
        rng saved = s->rng;
        int r = sample_unscored(s, cost, user, NULL, &a);
        if (r < 0)
            return -1;
        if (r == 1)
            return rm_error("no unscored architecture meets the constraints (or all %d are "
                            "scored)", s->n);
        r = evaluate(s, &a, PHASE_WARMUP, NAN, ev, user, &secs);
        if (r) {
            s->rng = saved; /* the same draw next time */
            return r;
        }
        s->t_warm += secs;
        if (s->n >= s->o.n_warm && end_warmup(s) < 0)
            return -1;
        return 0;
    }
    if (s->successes >= s->o.n_collect)
        return finish(s, "collected n_collect successes");
    if (s->o.cap > 0 && s->n >= s->o.cap)
        return finish(s, "reached the cap on evaluations");
    int r = make_pick(s, cost, user);
    if (r < 0)
        return -1;
    if (r == 1)
        return finish_none_left(s);
    sarch a = s->pending;
    r = evaluate(s, &a, PHASE_EXPAND, s->pending_prob, ev, user, &secs);
    if (r)
        return r;
    s->t_eval += secs;
    s->last_prob = s->pending_prob;
    s->have_pending = 0;
    s->pending_prob = NAN;
    if (s->rec[s->n - 1].good)
        s->successes++;
    if (s->successes >= s->o.n_collect)
        finish(s, "collected n_collect successes");
    else if (s->o.cap > 0 && s->n >= s->o.cap)
        finish(s, "reached the cap on evaluations");
    return 0;
}

/* ---- random search and REA ---- */

static int mutate_unscored(search *s, const sarch *parent, search_cost_fn cost, void *user,
                           sarch *child)
{
    for (int t = 0; t < 10000; t++) {
        space_mutate(s->sp, &s->rng, parent, child);
        if (search_scored(s, child))
            continue;
        int ok;
        if (feasible(s, child, cost, user, &ok) < 0)
            return -1;
        if (ok)
            return 0;
    }
    /* the neighbourhood is exhausted: a random unscored architecture */
    return sample_unscored(s, cost, user, NULL, child);
}

static int step_rea(search *s, search_evaluate_fn ev, search_cost_fn cost, void *user)
{
    sarch a;
    int r;
    rng saved = s->rng;
    if (s->o.algo == SEARCH_RANDOM || s->n < s->o.population) {
        r = sample_unscored(s, cost, user, NULL, &a);
    } else {
        /* tournament among the population: the last `population` evaluations */
        int best = -1;
        for (int k = 0; k < s->o.sample_size; k++) {
            int i = s->n - s->o.population + (int)rng_below(&s->rng, (uint64_t)s->o.population);
            if (best < 0 || s->rec[i].r.score < s->rec[best].r.score)
                best = i;
        }
        r = mutate_unscored(s, &s->rec[best].arch, cost, user, &a);
    }
    if (r < 0)
        return -1;
    if (r == 1)
        return finish_none_left(s);
    double secs;
    r = evaluate(s, &a, PHASE_RUN, NAN, ev, user, &secs);
    if (r) {
        s->rng = saved;
        return r;
    }
    s->t_eval += secs;
    if (s->n >= s->o.budget)
        finish(s, "used the evaluation budget");
    return 0;
}

/* ---- REINFORCE: a per-edge categorical policy, Adam on its logits ---- */

static void policy_probs(const search *s, int e, double *p)
{
    const int nc = s->sp->nchoice;
    const double *l = s->logits + e * nc;
    double mx = l[0], z = 0;
    for (int k = 1; k < nc; k++)
        mx = l[k] > mx ? l[k] : mx;
    for (int k = 0; k < nc; k++)
        z += p[k] = exp(l[k] - mx);
    for (int k = 0; k < nc; k++)
        p[k] /= z;
}

static int step_reinforce(search *s, search_evaluate_fn ev, search_cost_fn cost, void *user)
{
    rng saved = s->rng;
    const int np = s->sp->npos, nc = s->sp->nchoice;
    sarch a;
    memset(&a, 0, sizeof a);
    int ok = 0;
    for (int t = 0; t < MAX_TRIES && !ok; t++) {
        for (int e = 0; e < np; e++) {
            double p[SPACE_MAXCHOICE], u = rng_uniform(&s->rng), c = 0;
            policy_probs(s, e, p);
            int k = 0;
            for (; k < nc - 1; k++) {
                c += p[k];
                if (u < c)
                    break;
            }
            a.v[e] = (uint8_t)k;
        }
        if (feasible(s, &a, cost, user, &ok) < 0)
            return -1;
    }
    if (!ok)
        return rm_error("the policy found no architecture that meets the constraints");
    /* a repeated sample reuses its earlier result (deterministic evaluators) */
    int prev = -1;
    if (search_scored(s, &a))
        for (int i = 0; i < s->n && prev < 0; i++)
            if (space_equal(s->sp, &s->rec[i].arch, &a))
                prev = i;
    if (prev >= 0) {
        if (grow(s) < 0)
            return -1;
        search_eval r = s->rec[prev].r;
        r.seconds = 0;
        if (add_record(s, &a, &r, PHASE_RUN, NAN) < 0)
            return -1;
    } else {
        double secs;
        int r = evaluate(s, &a, PHASE_RUN, NAN, ev, user, &secs);
        if (r) {
            s->rng = saved;
            return r;
        }
        s->t_eval += secs;
    }
    /* reward = -score; a failed architecture gets the worst finite reward */
    double reward = -s->rec[s->n - 1].r.score;
    if (!isfinite(reward)) {
        int have = 0;
        for (int i = 0; i < s->n; i++)
            if (isfinite(s->rec[i].r.score) && (!have || -s->rec[i].r.score < reward || !isfinite(reward))) {
                reward = -s->rec[i].r.score;
                have = 1;
            }
        if (!have)
            reward = NAN;
    }
    if (isfinite(reward)) {
        double m = s->o.rl_momentum;
        s->baseline = s->have_baseline ? m * s->baseline + (1 - m) * reward : reward;
        s->have_baseline = 1;
        double adv = reward - s->baseline;
        const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
        s->adam_t++;
        for (int e = 0; e < np; e++) {
            double p[SPACE_MAXCHOICE];
            policy_probs(s, e, p);
            for (int k = 0; k < nc; k++) {
                int j = e * nc + k;
                /* loss = -log p(a) * adv; d/dlogit = -(1[k = a_e] - p_k) * adv */
                double g = -((k == a.v[e]) - p[k]) * adv;
                s->adam_m[j] = b1 * s->adam_m[j] + (1 - b1) * g;
                s->adam_v[j] = b2 * s->adam_v[j] + (1 - b2) * g * g;
                double mh = s->adam_m[j] / (1 - pow(b1, s->adam_t));
                double vh = s->adam_v[j] / (1 - pow(b2, s->adam_t));
                s->logits[j] -= s->o.rl_lr * mh / (sqrt(vh) + eps);
            }
        }
    }
    if (s->n >= s->o.budget)
        finish(s, "used the evaluation budget");
    return 0;
}

/* The draws of the next `steps` evaluations that do not depend on scores,
 * those whose score `known` reports (when not NULL) left out, up to k of
 * them (search_ahead outside RMI-NAS's expanded phase) */
static int upcoming(search *s, int k, int steps, sarch *out, search_cost_fn cost,
                    search_known_fn known, void *user)
{
    int left = 0;
    if (s->phase == PHASE_DONE)
        return 0;
    if (s->o.algo == SEARCH_RMINAS && s->phase == PHASE_WARMUP)
        left = s->o.n_warm - s->n;
    else if (s->o.algo == SEARCH_RANDOM)
        left = s->o.budget - s->n;
    else if (s->o.algo == SEARCH_REA)
        left = (s->o.population < s->o.budget ? s->o.population : s->o.budget) - s->n;
    if (left > steps)
        left = steps;
    /* the draws of step_rminas / step_rea, each earlier one counted as scored */
    const rng saved = s->rng;
    keyset skip = {0};
    int m = 0, rc = 0;
    search_eval e;
    for (int i = 0; i < left && m < k && rc == 0; i++) {
        rc = sample_unscored(s, cost, user, &skip, &out[m]);
        if (rc == 0 && (rc = keyset_add(&skip, space_key(s->sp, &out[m]))) == 0 &&
            !(known && known(user, &out[m], &e)))
            m++;
    }
    s->rng = saved;
    keyset_free(&skip);
    return rc < 0 ? -1 : m;
}

/* RMI-NAS's expanded phase: the pick of this iteration, then those of the
 * following ones under each outcome of the picks before (good or not: all
 * a pick depends on), the likeliest first, at most `steps` deep, until k
 * distinct picks whose scores are not known (into out) or SPEC_NODES
 * forest fits per pick wanted. A node's chance is the product along its
 * path of each pick's chance of the outcome taken: the forest's
 * probability that the pick is good, as votes of its trees, with one vote
 * more for each outcome (Laplace), so that no outcome is taken for
 * certain; a pick whose score `known` reports has its own outcome only,
 * for certain. One label more seldom changes the forest's choice, so the
 * two outcomes often pick the same architecture, and the likeliest path
 * goes deeper for it. */
enum { SPEC_NODES = 4 };

typedef struct spec_node {
    search s;       /* its state; its pick: s.pending */
    double chance;  /* of reaching it */
    int depth;
    int known;      /* the pick's score is known (ev) */
    search_eval ev;
    unsigned char tried[2]; /* outcome (bad, good) followed, or impossible */
} spec_node;

static double outcome_chance(const spec_node *n, int good)
{
    if (n->known)
        return outcome_good(&n->s, &n->ev) == good;
    const search *s = &n->s;
    const double t = s->o.trees > 0 ? s->o.trees : 1;
    double q = isnan(s->pending_prob) ? 0.5 : (s->pending_prob * t + 1) / (t + 2);
    return good ? q : 1 - q;
}

/* node n's pick into out when not known and not there yet */
static void spec_add(const search *s, spec_node *n, search_known_fn known, void *user,
                     sarch *out, int *nout)
{
    n->known = known && known(user, &n->s.pending, &n->ev) == 1;
    for (int j = 0; j < *nout && !n->known; j++)
        if (space_equal(s->sp, &out[j], &n->s.pending))
            return;
    if (!n->known)
        out[(*nout)++] = n->s.pending;
}

static int speculate(search *s, int k, int steps, sarch *out, search_cost_fn cost,
                     search_known_fn known, void *user)
{
    if (s->phase != PHASE_EXPAND || rminas_stops(s) || k < 1 || steps < 1)
        return 0;
    int r = make_pick(s, cost, user);
    if (r)
        return r < 0 ? -1 : 0;
    const int cap = SPEC_NODES * k;
    spec_node *node = calloc((size_t)cap, sizeof *node);
    if (!node)
        return rm_error("out of memory");
    int nn = 0, nout = 0, rc = 0;
    const double t0 = rm_seconds();
    if (clone(s, &node[0].s) < 0) {
        rc = -1;
    } else {
        node[0].chance = 1;
        spec_add(s, &node[nn++], known, user, out, &nout);
    }
    while (nn < cap && nout < k && rc == 0) {
        int head = -1, good = 0;
        double best = 0;
        for (int i = 0; i < nn; i++)
            for (int g = 0; g < 2; g++) {
                const double v = node[i].chance * outcome_chance(&node[i], g);
                if (!node[i].tried[g] && node[i].depth + 1 < steps && v > best) {
                    best = v;
                    head = i;
                    good = g;
                }
            }
        if (head < 0)
            break;
        spec_node *h = &node[head], *c = &node[nn];
        h->tried[good] = 1;
        if (clone(&h->s, &c->s) < 0) {
            rc = -1;
            break;
        }
        search_eval ev = {.score = good ? -INFINITY : INFINITY};
        rc = add_record(&c->s, &c->s.pending, h->known ? &h->ev : &ev, PHASE_EXPAND,
                        c->s.pending_prob);
        c->s.have_pending = 0;
        c->s.successes += good;
        if (rc == 0 && !rminas_stops(&c->s) && (r = make_pick(&c->s, cost, user)) == 0) {
            c->chance = best;
            c->depth = h->depth + 1;
            spec_add(s, &node[nn++], known, user, out, &nout);
            continue;
        }
        if (rc == 0 && r < 0)
            rc = -1;
        search_free(&c->s); /* the search ends there, or picks nothing */
        memset(c, 0, sizeof *c);
    }
    s->t_forest += rm_seconds() - t0;
    for (int i = 0; i < nn; i++)
        search_free(&node[i].s);
    free(node);
    return rc < 0 ? -1 : nout;
}

int search_ahead(search *s, int k, int steps, sarch *out, search_cost_fn cost,
                 search_known_fn known, void *user)
{
    if (s->o.algo == SEARCH_RMINAS && s->phase == PHASE_EXPAND)
        return speculate(s, k, steps, out, cost, known, user);
    return upcoming(s, k, steps, out, cost, known, user);
}

int search_plan_window(int jobs)
{
    const int w = 4 * jobs < SEARCH_PLAN_MAX / 2 ? 4 * jobs : SEARCH_PLAN_MAX / 2;
    return w > jobs ? w : jobs;
}

int search_plan(search *s, int jobs, int steps, const sarch *busy, int nbusy, int nfree,
                search_cost_fn cost, search_known_fn known, void *user, sarch *start,
                int *nstart, int *stop)
{
    sarch next, cand[SEARCH_PLAN_MAX];
    search_eval e;
    *nstart = 0;
    *stop = -1;
    if (jobs > SEARCH_PLAN_MAX)
        jobs = SEARCH_PLAN_MAX;
    const int r = search_ahead(s, 1, steps, &next, cost, NULL, user);
    if (r <= 0)
        return r < 0 ? -1 : SEARCH_ALONE;
    if (known && known(user, &next, &e))
        return SEARCH_READY;
    const int spec = s->o.algo == SEARCH_RMINAS && s->phase == PHASE_EXPAND;
    const int window = search_plan_window(jobs);
    const int m = search_ahead(s, jobs, spec || steps < window ? steps : window, cand, cost, known,
                               user);
    if (m < 0)
        return -1;
    if (!nbusy && m < 2)
        return SEARCH_ALONE;
    int next_runs = 0;
    for (int i = 0; i < m; i++) {
        int running = 0;
        for (int j = 0; j < nbusy && !running; j++)
            running = space_equal(s->sp, &busy[j], &cand[i]);
        if (!running && *nstart < nfree) {
            start[(*nstart)++] = cand[i];
            next_runs |= i == 0;
        }
    }
    for (int j = 0; j < nbusy && !next_runs; j++)
        next_runs = space_equal(s->sp, &busy[j], &next);
    if (next_runs)
        return SEARCH_WAIT;
    /* every job on another one: stop the least likely (one the
     * speculation no longer reaches first) */
    int at_worst = -1;
    for (int j = 0; j < nbusy; j++) {
        int at = m;
        for (int i = 0; i < m && at == m; i++)
            if (space_equal(s->sp, &busy[j], &cand[i]))
                at = i;
        if (at > at_worst) {
            at_worst = at;
            *stop = j;
        }
    }
    return SEARCH_WAIT;
}

int search_step(search *s, search_evaluate_fn ev, search_cost_fn cost, void *user)
{
    if (s->phase == PHASE_DONE)
        return 2;
    switch (s->o.algo) {
    case SEARCH_RMINAS:
        return step_rminas(s, ev, cost, user);
    case SEARCH_RANDOM:
    case SEARCH_REA:
        return step_rea(s, ev, cost, user);
    default:
        return step_reinforce(s, ev, cost, user);
    }
}
