/* Scoring threads (set jobs): a pool of worker threads, each scoring the
 * architecture handed to it, one at a time, while the thread that started
 * them decides what comes next. session_rank hands out a list in order; a
 * search (session_search.c) hands out its next evaluations as the jobs
 * free up, and takes each score as it arrives.
 *
 * Every function is called from the thread that started the pool. A job
 * is free (score_pool_idle), running (score_pool_give), or finished with a
 * score or a status that score_pool_take hands back once, freeing it. */
#ifndef RM_SCORE_POOL_H
#define RM_SCORE_POOL_H

#include "session/session.h"

typedef struct score_pool score_pool;

/* Build a (in space sp) and score it into r under the session's settings
 * (its benchmark value and log row come later); cb/user as rmi_score_model's.
 * curve (may be NULL): RANK_CURVE_W values per step for s->rmi.steps steps,
 * filled with the steps' values as they come (the rest left as they are). */
int session_score_entry(session *s, const space *sp, const sarch *a, rank_entry *r,
                        double *curve, rmi_step_fn cb, void *user);

/* Start `jobs` threads, each readied by the backend's thread_begin before
 * this returns. With s->jobs_hook, score_pool_wait shows them to it,
 * `total` being the architectures to score (0: those finished and
 * running). NULL with rm_error when a thread could not start or be readied. */
score_pool *score_pool_start(session *s, const space *sp, int jobs, int total);
/* A free job's slot, or -1 when all are running or hold a score not yet taken. */
int score_pool_idle(score_pool *p);
/* Hand a to free job `slot`; curve as session_score_entry's. */
void score_pool_give(score_pool *p, int slot, const sarch *a, double *curve);
/* The slots and architectures of the jobs that are not free: running, or
 * finished with a score not yet taken (one that finished since the last
 * score_pool_take is not to be handed out again). slot may be NULL; out
 * has room for the pool's jobs. Returns how many. */
int score_pool_running(score_pool *p, int *slot, sarch *out);
/* Stop job `slot`'s score at its next step (it finishes with status 1). */
void score_pool_cancel(score_pool *p, int slot);
/* A finished job's slot (now free), its score into *e and its status into
 * *rc (0 scored, 1 stopped, -1 failed: its message is rm_last_error), or
 * -1 when none has finished. */
int score_pool_take(score_pool *p, rank_entry *e, int *rc);
/* Wait until a job finishes (with a jobs_hook, at most 0.1 s, and show it
 * the jobs). 1 when the hook asks to stop, else 0. */
int score_pool_wait(score_pool *p);
/* Stop every running score at its next step and end the threads; the
 * scores finished before remain to be taken. */
void score_pool_stop(score_pool *p);
/* Stop, and free the pool (NULL: nothing). */
void score_pool_free(score_pool *p);

#endif
