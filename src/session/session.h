/* The state a shell drives: backend, data, teacher, settings. Every shell
 * command is a call on it. Nothing here prints; progress goes through
 * callbacks and errors through rm_error. */
#ifndef RM_SESSION_H
#define RM_SESSION_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "io/bench.h"
#include "io/cifar.h"
#include "models/model.h"
#include "rmi/rmi.h"
#include "search/search.h"
#include "train/train.h"
#include "util/rng.h"

/* The most architectures scored at once (set jobs). */
enum { RANK_MAX_JOBS = 64 };
/* Values per step of a ranking's learning curves: loss, ce, cka1..3. */
enum { RANK_CURVE_W = 2 + RMI_LAYERS };

/* One scored architecture of a ranking run. */
typedef struct rank_entry {
    sarch arch;
    rmi_result r;
    long long params, macs;
    double bench;        /* benchmark_column value, NaN if unknown */
    int logged;          /* taken from the score log, not scored again */
} rank_entry;

/* jobs > 1: what one scoring job is doing, for a view of concurrent work
 * (the panel). The histories hold `step` entries. */
typedef struct job_view {
    int busy;                        /* scoring now (else the values are its last) */
    char name[1024];                 /* the student's architecture string */
    int step, steps, diverged;
    double loss, ce, cka[RMI_LAYERS];
    double *h_loss, *h_cka[RMI_LAYERS]; /* steps entries each (owned by the jobs) */
} job_view;
/* Called in the thread that started the jobs, at once, about every 0.1 s
 * and when a job finishes an architecture, with the njobs jobs' views and
 * how many of the n architectures to score are done. It runs under the
 * jobs' lock (they wait for it at their next step), so it must not call
 * into the session. Nonzero stops the jobs as an interrupt does. */
typedef int (*jobs_watch_fn)(const job_view *jobs, int njobs, int done, int n, void *user);

typedef struct session {
    const backend *be;
    int threads;
    int jobs;                     /* architectures scored at once (rank, search warm-up) */
    int speculate;                /* jobs > 1: RMI-NAS's expansion scores ahead under
                                     both outcomes (search_ahead) */
    uint64_t seed;
    rng sample_rng;               /* architecture sampling; reseeded by set seed */

    dataset train, test;          /* n == 0: not loaded */
    char data_name[16];           /* "cifar10", "cifar100", "imagenet16-120" */
    char data_dir[1024];

    model teacher;                /* teacher.g == NULL: not loaded */
    char teacher_file[1024];      /* its weights' file; after teacher train, that file
                                     and "trained here" */
    char teacher_base[1024];      /* the file it was trained from */
    int teacher_trained;          /* times trained since it was loaded or saved */

    bench_table bench;            /* bench.nrows == 0: not loaded */
    char bench_column[64];        /* column for accuracies and correlations */

    rmi_settings rmi;
    rmi_data data;                /* data.n == 0: no batch selected */

    sarch arch;                   /* the current architecture, in space arch_sp */
    const space *arch_sp;
    int have_arch;
    rmi_eval eval;                /* eval.student.g != NULL: a student in training */

    model net;                    /* the current architecture trained as a network */
    sarch net_arch;               /* its architecture (in arch_sp) */

    char rank_log[1024];          /* the score_log setting; "": scores are not logged */
    rank_entry *rank;             /* the last ranking run, in space rank_sp */
    const space *rank_sp;
    int nrank;
    /* its learning curves: RANK_CURVE_W values (loss, ce, cka1..3) for each
     * of rank_steps steps of every entry (NaN where not run, or taken from
     * the score log); NULL when there was no memory for them */
    double *rank_curve;
    int rank_steps;

    /* search (session_search.c) */
    const space *sp;              /* the space of the next search (space CMD) */
    int evaluator;                /* EVAL_RMI or EVAL_BENCHMARK */
    bench_table bench_eval;       /* optional table the benchmark evaluator reads
                                     (the 12-epoch one); nrows == 0: use bench */
    search_opts search_o;         /* options of the next search start */
    search srch;                  /* srch.scored == NULL: no search */
    /* jobs > 1, RMI evaluator: the search's next evaluations scored ahead,
     * concurrently, under the settings of pre_sig; taken by the evaluator */
    rank_entry *pre;              /* RANK_MAX_JOBS of them */
    int npre;
    int nahead;                   /* evaluations of this search taken from pre */
    int nscored_ahead;            /* architectures this search scored ahead (the batches'
                                     wall time is on its clock); those neither taken
                                     nor still in pre were speculative, for outcomes
                                     that did not come */
    char pre_sig[4096];
    /* where the current search's RMI scores were computed (session_scored_on:
     * the device and CPU threads, which decide a score but are not restored
     * with a state): "" not known (none yet, or a state from before it was
     * saved), "mixed" when it changed during the search; a loaded search's
     * scores go into the score log only when it is the current one */
    char srch_on[64];
    char log_note[256];           /* why session_search_load left the score log alone */
    char state_path[1024];        /* "": the search state is not saved */
    int state_lock;               /* > 0: the descriptor of state_locked's .lock (flock) */
    char state_locked[1024];
    double cost_base[2], cost_op[NB201_NOPS][2]; /* params, MACs; cost_ok */
    int cost_ok;

    /* called after every training step of an RMI evaluation (score, rank,
     * search), e.g. to redraw a panel; nonzero interrupts */
    rmi_step_fn step_hook;
    /* with jobs > 1: called while the jobs score (jobs_watch_fn), in the
     * thread that started them; with it set, a search scores ahead under a
     * step_hook too (which then sees only the evaluations it makes alone) */
    jobs_watch_fn jobs_hook;
    void *hook_user;               /* both hooks' user */

    /* set from a signal handler: long operations stop at the next step */
    volatile sig_atomic_t interrupt;
} session;

int session_init(session *s);
void session_free(session *s);

int session_set_device(session *s, const char *name);
int session_set_threads(session *s, int n);
/* Time every backend operation (tensor/profile.h) from now on, for what is
 * built from here (on: the session's backend becomes the profiled one), or
 * stop. */
int session_set_profile(session *s, int on);

/* name: cifar10 or cifar100; dir holds the binary batches (NULL: the bundled
 * CIFAR-10 subset). Loads the train and test splits; on error the session
 * keeps what it had. */
int session_load_dataset(session *s, const char *name, const char *dir);
/* arch: resnet20/32/44/56 (file NULL: the bundled default weights); nb201,
 * darts or chain (the architecture from the file's metadata, as train save
 * writes it); or an architecture string of the current space (NB-201 strings
 * in any space) with a file. file "init": a fresh network seeded by init_seed
 * (not for the named spaces), to train with teacher train. */
int session_load_teacher(session *s, const char *arch, const char *file);
/* Classes and image side of the networks built now: the loaded dataset's,
 * else CIFAR-10's (10, 32). */
int session_nclass(const session *s);
int session_hw(const session *s);
/* The bundled file of that name (data_dir_find("resnet20-c10q75.safetensors")),
 * looked up in $RMINAS_DATA, the source tree's examples/data, then the
 * installed data directory. Returns 0 and fills out, or -1. */
int session_find_data(const char *name, char *out, size_t size);

int session_teacher_eval(session *s, double *acc);

/* ---- settings (set KEY VALUE / show settings) ---- */
typedef struct setting_info {
    const char *key;
    const char *help;
} setting_info;
extern const setting_info session_settings[];
extern const int session_nsettings;
int session_set(session *s, const char *key, const char *value);
/* v as an integer / a number in [lo, hi], or -1 with "KEY must be ..." */
int session_parse_long(const char *key, const char *v, long lo, long hi, long *out);
int session_parse_double(const char *key, const char *v, double lo, double hi, double *out);
/* The value of a setting as text. */
int session_get(const session *s, const char *key, char *out, size_t size);

/* ---- RMI (session_rmi.c) ---- */
/* file NULL: the bundled table. */
int session_load_benchmark(session *s, const char *file);
/* Forget the selected batch, and the student in training that reads it. */
void session_drop_batch(session *s);
/* -1 with an error naming WHAT (a score log, a search state) when the
 * teacher has been trained since it was loaded or saved: no file holds its
 * weights. */
int session_teacher_saved(const session *s, const char *what);
/* Keep benchmark_column one that a loaded table has: where neither has it,
 * cifar10_test or the first accuracy column of one (never "index"). */
void session_fit_bench_column(session *s);
/* Select the RMI batch with the current teacher, dataset and settings. */
int session_select_batch(session *s);
/* Select the batch unless one matching the settings is there already. */
int session_need_batch(session *s);
/* An architecture from a string of the current space; in NAS-Bench-201 a
 * number is the benchmark's own index of an architecture (the loaded
 * table's index column, as its API's query_by_index). */
int session_parse_arch(const session *s, const char *str, sarch *a);
/* The current architecture from a string of the current space (space CMD). */
int session_arch_set(session *s, const char *str);
/* n distinct architectures drawn uniformly from the sampling generator
 * (which continues from draw to draw; set seed restarts it). */
int session_sample(session *s, int n, sarch *out);
/* A fresh student of the current architecture (seed: init seed). */
int session_student_init(session *s);
/* n steps of the current student; cb after each (nonzero stops). */
typedef int (*step_callback)(const rmi_eval *e, void *user);
int session_student_step(session *s, int n, step_callback cb, void *user);
int session_score(session *s, const sarch *a, rmi_result *r);
/* Score the architectures; cb after each, in their order (nonzero stops).
 * With s->jobs > 1, that many are scored at once, each in its own thread
 * (the backend's thread_begin); each score is the same as alone, rows go
 * to the score log as they finish, and cb still sees them in order.
 * Results replace the previous ranking run. Returns 0, 1 when stopped
 * (s->nrank: the leading architectures done). */
typedef int (*rank_callback)(const session *s, int k, int n, void *user);
int session_rank(session *s, const sarch *archs, int n, rank_callback cb, void *user);

/* The score log (setting score_log, in s->rank_log): opened for appending
 * with the rows already in it (*rows, to free), refused (NULL, rm_error)
 * when it was scored under other settings than the session's in space sp.
 * find: the row of a, or -1. add: one row, written through to the disk. */
FILE *session_score_log_open(session *s, const space *sp, rank_entry **rows, int *nrows);
int session_score_log_find(const space *sp, const rank_entry *rows, int nrows, const sarch *a);
int session_score_log_add(session *s, FILE *log, const space *sp, const rank_entry *e);
/* What decides a score under the session's settings in space sp, as one
 * line (the score log's LOG.settings). */
void session_score_signature(const session *s, const space *sp, char *buf, size_t size);
/* The part of it that describes the machine: "device cpu threads N" or
 * "device cuda". */
void session_scored_on(const session *s, char *buf, size_t size);
/* Read one architecture string (or NB-201 index) of the current space per
 * line (blank lines and # comments skipped). */
int session_read_archs(const session *s, const char *path, sarch **out, int *n);
/* Correlations of the last ranking against the benchmark column:
 * tau[0]/rho[0] for -score, [1] for #params, [2] for MACs. */
int session_rank_correlations(const session *s, double tau[3], double rho[3], int *n);
/* Kendall tau of -(the loss at step `step`) against the benchmark column,
 * over the last ranking's architectures scored with their curves (not
 * those from the score log); NaN with *n < 2. */
int session_rank_tau_at(const session *s, int step, double *tau, int *n);
/* CSV exports (libcsv quoting, header row). what: steps | rank | curves |
 * search | profile */
int session_export_csv(session *s, const char *what, const char *path);
/* ---- search (session_search.c) ---- */
enum { EVAL_RMI, EVAL_BENCHMARK };
/* Search settings (set/show); return -2 when key is not one of them. */
int session_search_set(session *s, const char *key, const char *value);
int session_search_get(const session *s, const char *key, char *out, size_t size);
/* file NULL: the bundled table. which: "nb201" (ground truth: results,
 * correlations) or "nb201-12" (12-epoch table for the benchmark evaluator). */
int session_load_benchmark_kind(session *s, const char *which, const char *file);
/* #params and MACs of an NB-201 network (analytic, checked against the
 * built graph in the tests). */
int session_arch_cost(session *s, const nb201_arch *a, double *params, double *macs);
/* The same for an architecture of any space (NB-201: analytic; others: the
 * built network's counts). */
int session_sarch_cost(session *s, const space *sp, const sarch *a, double *params,
                       double *macs);
/* Choose the space of the next search by name. */
int session_set_space(session *s, const char *name);
/* Start a search with the current settings; saves the first state when a
 * state file is set (refusing to overwrite a file that holds anything). */
int session_search_start(session *s, const char *algo);
/* Up to n evaluations (n < 0: until done); the state is saved after every
 * evaluation; cb after each (nonzero stops). Returns 0 (n done), 1 stopped
 * or interrupted, 2 the search is done, -1 on error. */
typedef int (*search_callback)(const session *s, void *user);
int session_search_step(session *s, int n, search_callback cb, void *user);
/* Run until the warm-up is over (RMI-NAS). */
int session_search_warmup(session *s, search_callback cb, void *user);
/* Load a saved search: settings, data, teacher, benchmark as recorded; the
 * state keeps being saved to the same file. */
int session_search_load(session *s, const char *path);
/* Benchmark values of arch in the ground-truth table (all its columns):
 * fills names/values (up to max), returns how many, 0 if no table. */
int session_bench_values(const session *s, const nb201_arch *a, const char **names,
                         double *values, int max);
int session_teacher_train(session *s, const train_opts *o, train_callback cb, void *user);
/* Train the current architecture as a classifier (built and initialized from
 * init_seed on first use or when the architecture changed), evaluate it on
 * the test split, save it (metadata arch = its string, so that
 * `load teacher nb201 FILE` makes it a teacher). */
int session_net_train(session *s, const train_opts *o, train_callback cb, void *user);
int session_net_eval(session *s, double *acc);
int session_net_save(session *s, const char *path);
int session_teacher_save(session *s, const char *path);

#endif
