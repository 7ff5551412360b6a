/* Architecture search in any search space (src/space/space.h; RMI-NAS
 * section 2): RMI-NAS
 * (Algorithm 1: warm-up, fixed threshold, forest-guided expanded sampling,
 * mode selection), random search, regularized evolution (REA) and
 * REINFORCE, all driven one evaluation at a time through an evaluator
 * callback (the RMI score or a benchmark lookup; lower is better).
 *
 * Everything a search decides is a function of its options, its seed and
 * the scores it has seen: the sampling generator is saved with the state,
 * the forest of iteration k is seeded from (seed, k), REA's population is
 * the last `population` evaluations, REINFORCE's policy and optimizer are
 * saved. So a search saved after evaluation k and resumed continues exactly
 * as one never interrupted (given an evaluator that returns the same score
 * for the same architecture). */
#ifndef RM_SEARCH_H
#define RM_SEARCH_H

#include <stdint.h>

#include "space/space.h"
#include "util/rng.h"

enum search_algo { SEARCH_RMINAS, SEARCH_RANDOM, SEARCH_REA, SEARCH_REINFORCE, SEARCH_NALGO };
extern const char *const search_algo_names[SEARCH_NALGO];
/* Name -> algorithm, or -1 with rm_error. */
int search_algo_lookup(const char *name);

enum search_phase { PHASE_WARMUP, PHASE_EXPAND, PHASE_RUN, PHASE_DONE };
extern const char *const search_phase_names[4];

typedef struct search_opts {
    int algo;
    uint64_t seed;       /* sampling, forest, mutation, policy */
    /* RMI-NAS */
    int n_warm;          /* 100 warm-up architectures */
    double quantile;     /* 0.05: tau = this quantile of the warm-up scores + 1e-9 */
    int n_fitting;       /* 1000 candidates per iteration */
    int n_collect;       /* 100 successes (score < tau) in the expanded phase */
    int top;             /* 50: the best `top` good architectures vote (0: half of them) */
    int trees;           /* 30 */
    int cap;             /* 0: no cap on evaluations; else stop after this many */
    /* random / REA / REINFORCE */
    int budget;          /* 100 evaluations */
    int population;      /* REA: 10 */
    int sample_size;     /* REA: tournament size 3 */
    double rl_lr;        /* REINFORCE: Adam step 0.01 */
    double rl_momentum;  /* REINFORCE: reward baseline EMA 0.9 */
    /* constraints (Eq. 1); 0 = none */
    double max_params;   /* trainable parameters */
    double max_flops;    /* multiply-accumulates of one 32x32 image */
} search_opts;

void search_opts_default(search_opts *o);

/* What an evaluator returns for one architecture. Lower score is better;
 * +inf marks an architecture that failed (diverged, no path to the output). */
typedef struct search_eval {
    double score;
    double cka[3], ce;   /* NaN for a benchmark evaluator */
    double seconds;      /* evaluation time */
    int diverged;
    int cached;          /* taken from a score log, not evaluated again; seconds are
                            then those of the evaluation the log kept */
} search_eval;

/* Returns 0 with *out filled, 1 when interrupted (nothing is recorded; the
 * search can go on later), -1 on an error (rm_error). */
typedef int (*search_evaluate_fn)(void *user, const sarch *a, search_eval *out);
/* Cost of an architecture for the constraints: 0, or -1 on an error. */
typedef int (*search_cost_fn)(void *user, const sarch *a, double *params, double *flops);

typedef struct search_record {
    sarch arch;
    search_eval r;
    int phase;           /* PHASE_WARMUP, PHASE_EXPAND or PHASE_RUN */
    double prob;         /* RMI-NAS expanded phase: forest probability of "good"; else NaN */
    int good;            /* RMI-NAS: score < tau (set once tau exists) */
} search_record;

/* A set of architecture keys (space_key), open addressing. */
typedef struct keyset {
    uint64_t *slot;              /* 0 = empty (a key of 0 is stored as 1) */
    int cap, n;
} keyset;

typedef struct search {
    const space *sp;
    search_opts o;
    int phase;
    rng rng;                     /* sampling / mutation / policy draws */
    search_record *rec;
    int n, cap_rec;
    keyset scored;               /* architectures evaluated; scored.slot != NULL: a search exists */
    double tau;                  /* RMI-NAS threshold, NaN before the warm-up ends */
    int successes;               /* RMI-NAS expanded-phase scores below tau */
    int iteration;               /* RMI-NAS expanded iterations started with a forest fit */
    double last_prob;            /* forest probability of the last pick */
    /* REINFORCE: per-position logits and Adam moments (npos x nchoice) */
    double logits[SPACE_MAXPOS * SPACE_MAXCHOICE];
    double adam_m[SPACE_MAXPOS * SPACE_MAXCHOICE], adam_v[SPACE_MAXPOS * SPACE_MAXCHOICE];
    double baseline;
    int adam_t, have_baseline;
    /* wall time in seconds, accumulated over resumes */
    double t_warm, t_forest, t_eval;
    /* the candidate picked by the forest for the pending evaluation */
    int have_pending;
    sarch pending;
    double pending_prob;
    char stop_reason[64];        /* why the search ended; empty while running */
    /* RMI-NAS's picks by the state they were made in (search.c), shared
     * with the copies a speculation makes; freed by its owner */
    struct pick_memo *memo;
    int memo_owner;
} search;

/* Start a search in space sp (no evaluation yet). */
int search_init(search *s, const space *sp, const search_opts *o);
void search_free(search *s);

/* One evaluation (for RMI-NAS in the expanded phase: fit the forest, pick,
 * evaluate). Returns 0 after an evaluation, 1 when the evaluator was
 * interrupted (nothing changed), 2 when the search is done, -1 on error.
 * cost may be NULL when no constraint is set. */
int search_step(search *s, search_evaluate_fn ev, search_cost_fn cost, void *user);

/* Scores the caller already has for architectures the search has not
 * evaluated yet (scored ahead, or in a score log): 1 and *out when a's is
 * known, else 0. */
typedef int (*search_known_fn)(void *user, const sarch *a, search_eval *out);
/* What is worth evaluating ahead of the next `steps` search_steps, up to
 * k architectures whose scores `known` (may be NULL) does not report: the
 * evaluations the search makes whatever the scores it gets (RMI-NAS's
 * warm-up, random search, REA's first population), in its order (its
 * generator is left as it was), none where the next choice depends on
 * scores not yet known; or in RMI-NAS's expanded phase (where each pick
 * depends on the outcomes before it) a speculation: the pick of this
 * iteration (made now, as search_step would make it first), then the
 * picks of the next iterations under each outcome of the earlier ones
 * (below tau or not, all a pick depends on; a known score's own outcome
 * only), distinct, the likeliest first by the forest's probabilities.
 * Evaluations of the outcome that does not happen are wasted; those of the
 * one that does are the evaluations search_step makes, in its order.
 * Returns how many, 0 when none, -1 on an error. */
int search_ahead(search *s, int k, int steps, sarch *out, search_cost_fn cost,
                 search_known_fn known, void *user);

/* Scoring ahead with `jobs` concurrent jobs (at most SEARCH_PLAN_MAX),
 * busy[0..nbusy-1] being scored now and nfree jobs free, for the next
 * `steps` search_steps: evaluations that do not depend on scores only
 * within search_plan_window(jobs) of the search's place (what a process
 * killed without a score log may lose).
 *   SEARCH_READY: the next evaluation's score is known: search_step takes it.
 *   SEARCH_ALONE: nothing is worth scoring ahead (the next evaluation
 *     depends on scores not in, or nothing runs and there is one to score):
 *     search_step scores it itself; what runs is of no use to it.
 *   SEARCH_WAIT: start start[0..*nstart-1] (search_ahead's, not running,
 *     the likeliest first, at most nfree) on free jobs; when the next
 *     evaluation is neither running nor among them, stop busy[*stop] (the
 *     least likely; else *stop is -1); then wait for a score.
 * -1 on an error. */
enum { SEARCH_READY, SEARCH_ALONE, SEARCH_WAIT, SEARCH_PLAN_MAX = 64 };
int search_plan(search *s, int jobs, int steps, const sarch *busy, int nbusy, int nfree,
                search_cost_fn cost, search_known_fn known, void *user, sarch *start,
                int *nstart, int *stop);
/* 4 per job, at most 32, never under jobs. */
int search_plan_window(int jobs);

/* RMI-NAS's forest fits so far in this process (the search's and its
 * speculations'; a pick made before in the same state is not fitted again). */
long search_forest_fits(const search *s);

/* The answer: RMI-NAS the per-edge mode over the best `top` good
 * architectures (ties: lower operation index); the others: the best score.
 * Returns 0, or -1 when nothing to choose from. */
int search_answer(const search *s, sarch *a);
/* The best evaluated architecture (lowest score), or -1. */
int search_best(const search *s);

/* numpy.quantile's default (linear) of n values (+inf allowed); exposed for tests. */
double search_quantile(const double *v, int n, double q);
/* Whether a was evaluated; mark it evaluated (used when loading a state). */
int search_scored(const search *s, const sarch *a);
int search_mark_scored(search *s, const sarch *a);

/* ---- state files (versioned JSON, written atomically) ---- */
/* An evaluation made ahead of the search (by concurrent jobs) that the
 * search has not taken yet. */
typedef struct search_held {
    sarch arch;
    search_eval r;
    double params, macs;
} search_held;
enum { SEARCH_MAX_HELD = 64 };
/* Extra key/value text pairs the caller stores with the state (evaluator,
 * settings, data it depends on). */
typedef struct search_ctx {
    int n;
    char key[64][32];
    char val[64][1024];
    /* evaluations made ahead and not taken yet, all under the settings line
     * held_sig: saved with the state (its "ahead"), so that a process killed
     * while later evaluations were done before an earlier one loses none */
    int nheld;
    search_held held[SEARCH_MAX_HELD];
    char held_sig[4096];
} search_ctx;
int search_ctx_set(search_ctx *c, const char *key, const char *val);
const char *search_ctx_get(const search_ctx *c, const char *key);

/* Write to path through path.tmp, fsync, rename. */
int search_save(const search *s, const search_ctx *ctx, const char *path);
/* Read a state file; a damaged or foreign file is refused with an error that
 * names the file and what is wrong, and nothing is changed. */
int search_load(search *s, search_ctx *ctx, const char *path);
/* 1 if path exists and is a readable rminas search state, 0 if it does not
 * exist, -1 (with rm_error) if it exists but is something else. */
int search_probe(const char *path);

#endif
