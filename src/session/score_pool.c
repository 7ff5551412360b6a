/* Scoring threads: see score_pool.h. One lock guards the jobs' states and
 * views; a worker holds it only between scores and at each training step
 * (to update its view and see whether to stop). */
#include "session/score_pool.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/err.h"

enum { PJ_FREE, PJ_RUN, PJ_DONE, PJ_DEAD }; /* DEAD: the backend could not ready its thread */

typedef struct pool_job {
    struct score_pool *p;
    int slot;
    pthread_t t;
    int started;        /* t was created */
    int ready;          /* the thread has begun (or failed to: PJ_DEAD) */
    int state;          /* PJ_* */
    int cancel;         /* stop the running score at its next step */
    sarch arch;
    double *curve;      /* its learning curve, or NULL */
    rank_entry e;
    int rc;
    char err[1024];     /* rc < 0: why */
} pool_job;

struct score_pool {
    session *s;
    const space *sp;
    int n;              /* jobs */
    pool_job *job;
    job_view *view;     /* per job, with s->jobs_hook; else NULL */
    double *hist;
    int total;          /* for the hook (0: finished and running) */
    int scored;         /* scores finished */
    int quit;           /* the threads end; running scores stop at their next step */
    pthread_mutex_t mu;
    pthread_cond_t work; /* a job was given work, or quit */
    pthread_cond_t done; /* a job finished, or its thread began */
};

/* A score's step callback that also keeps the steps' values in a curve. */
typedef struct curve_rec {
    double *curve;
    int done, steps;
    rmi_step_fn cb;
    void *user;
} curve_rec;

static int record_curve(const rmi_eval *e, void *user)
{
    curve_rec *c = user;
    const int n = e->step < c->steps ? e->step : c->steps;
    for (; c->done < n; c->done++) {
        double *v = c->curve + (size_t)c->done * RANK_CURVE_W;
        v[0] = e->h_loss[c->done];
        v[1] = e->h_ce[c->done];
        for (int l = 0; l < RMI_LAYERS; l++)
            v[2 + l] = e->h_cka[l][c->done];
    }
    return c->cb ? c->cb(e, c->user) : 0;
}

int session_score_entry(session *s, const space *sp, const sarch *a, rank_entry *r,
                        double *curve, rmi_step_fn cb, void *user)
{
    r->arch = *a;
    model m;
    if (sp->build(&m, s->be, a, s->data.nclass, s->data.hw) < 0)
        return -1;
    r->params = (long long)graph_count_trainable(m.g);
    r->macs = (long long)graph_count_macs(m.g);
    curve_rec c = {curve, 0, s->rmi.steps, cb, user};
    if (curve) {
        cb = record_curve;
        user = &c;
    }
    return rmi_score_model(s->be, &m, &s->data, &s->rmi, &r->r, &s->interrupt, cb, user);
}

/* e's progress into v (under the lock): the new history entries only */
static void view_update(job_view *v, const rmi_eval *e)
{
    const int n = e->step < v->steps ? e->step : v->steps; /* the histories' length */
    for (int i = v->step; i < n; i++) {
        v->h_loss[i] = e->h_loss[i];
        for (int l = 0; l < RMI_LAYERS; l++)
            v->h_cka[l][i] = e->h_cka[l][i];
    }
    v->step = n;
    v->diverged = e->diverged;
    v->loss = e->loss;
    v->ce = e->ce;
    memcpy(v->cka, e->cka, sizeof v->cka);
}

static void view_begin(score_pool *p, pool_job *j)
{
    job_view *v = &p->view[j->slot];
    v->busy = 1;
    v->step = 0;
    v->steps = p->s->rmi.steps;
    v->diverged = 0;
    v->loss = v->ce = NAN;
    for (int l = 0; l < RMI_LAYERS; l++)
        v->cka[l] = NAN;
    p->sp->format(&j->arch, v->name, sizeof v->name);
}

static int poll_step(const rmi_eval *e, void *user)
{
    pool_job *j = user;
    score_pool *p = j->p;
    pthread_mutex_lock(&p->mu);
    if (p->view)
        view_update(&p->view[j->slot], e);
    const int stop = p->quit || j->cancel;
    pthread_mutex_unlock(&p->mu);
    return stop;
}

static void *worker(void *arg)
{
    pool_job *j = arg;
    score_pool *p = j->p;
    const backend *be = p->s->be;
    const int begun = be->thread_begin ? be->thread_begin(j->slot) : 0;
    pthread_mutex_lock(&p->mu);
    if (begun < 0) {
        j->state = PJ_DEAD;
        snprintf(j->err, sizeof j->err, "%s",
                 rm_last_error()[0] ? rm_last_error() : "a scoring thread could not begin");
    }
    j->ready = 1;
    pthread_cond_broadcast(&p->done);
    while (begun == 0) {
        while (!p->quit && j->state != PJ_RUN)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->quit)
            break;
        if (p->view)
            view_begin(p, j);
        pthread_mutex_unlock(&p->mu);
        rm_clear_error();
        const int rc = session_score_entry(p->s, p->sp, &j->arch, &j->e, j->curve, poll_step, j);
        pthread_mutex_lock(&p->mu);
        j->rc = rc < 0 ? -1 : rc;
        if (rc < 0)
            snprintf(j->err, sizeof j->err, "%s",
                     rm_last_error()[0] ? rm_last_error() : "scoring failed");
        j->state = PJ_DONE;
        j->cancel = 0;
        p->scored += rc == 0;
        if (p->view)
            p->view[j->slot].busy = 0;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    if (begun == 0 && be->thread_end)
        be->thread_end();
    return NULL;
}

score_pool *score_pool_start(session *s, const space *sp, int jobs, int total)
{
    score_pool *p = calloc(1, sizeof *p);
    if (!p || jobs < 1 || !(p->job = calloc((size_t)jobs, sizeof *p->job))) {
        free(p);
        rm_error("out of memory");
        return NULL;
    }
    p->s = s;
    p->sp = sp;
    p->n = jobs;
    p->total = total;
    /* the views and their histories (every score runs s->rmi.steps steps);
     * without memory for them the jobs run unwatched */
    const size_t hn = (size_t)(s->rmi.steps > 0 ? s->rmi.steps : 1);
    p->hist = s->jobs_hook ? calloc((size_t)jobs * (1 + RMI_LAYERS) * hn, sizeof *p->hist) : NULL;
    p->view = p->hist ? calloc((size_t)jobs, sizeof *p->view) : NULL;
    for (int i = 0; p->view && i < jobs; i++) {
        double *h = p->hist + (size_t)i * (1 + RMI_LAYERS) * hn;
        p->view[i].h_loss = h;
        for (int l = 0; l < RMI_LAYERS; l++)
            p->view[i].h_cka[l] = h + (size_t)(1 + l) * hn;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    char err[1024] = "";
    for (int i = 0; i < jobs; i++) {
        pool_job *j = &p->job[i];
        j->p = p;
        j->slot = i;
        j->started = pthread_create(&j->t, NULL, worker, j) == 0;
        if (!j->started && !err[0])
            snprintf(err, sizeof err, "cannot start a scoring thread");
    }
    /* every thread readied by the backend, or the first failure */
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < jobs; i++) {
        pool_job *j = &p->job[i];
        while (j->started && !j->ready)
            pthread_cond_wait(&p->done, &p->mu);
        if (j->state == PJ_DEAD && !err[0])
            snprintf(err, sizeof err, "%s", j->err);
    }
    pthread_mutex_unlock(&p->mu);
    if (err[0]) {
        score_pool_free(p);
        rm_error("%s", err);
        return NULL;
    }
    return p;
}

int score_pool_idle(score_pool *p)
{
    int slot = -1;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->n && slot < 0 && !p->quit; i++)
        if (p->job[i].state == PJ_FREE)
            slot = i;
    pthread_mutex_unlock(&p->mu);
    return slot;
}

void score_pool_give(score_pool *p, int slot, const sarch *a, double *curve)
{
    pthread_mutex_lock(&p->mu);
    pool_job *j = &p->job[slot];
    j->arch = *a;
    j->curve = curve;
    j->cancel = 0;
    j->state = PJ_RUN;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
}

int score_pool_running(score_pool *p, int *slot, sarch *out)
{
    int n = 0;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->n; i++)
        if (p->job[i].state == PJ_RUN || p->job[i].state == PJ_DONE) {
            if (slot)
                slot[n] = i;
            out[n++] = p->job[i].arch;
        }
    pthread_mutex_unlock(&p->mu);
    return n;
}

void score_pool_cancel(score_pool *p, int slot)
{
    pthread_mutex_lock(&p->mu);
    if (p->job[slot].state == PJ_RUN)
        p->job[slot].cancel = 1;
    pthread_mutex_unlock(&p->mu);
}

int score_pool_take(score_pool *p, rank_entry *e, int *rc)
{
    int slot = -1;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->n && slot < 0; i++) {
        pool_job *j = &p->job[i];
        if (j->state == PJ_DONE) {
            slot = i;
            *e = j->e;
            *rc = j->rc;
            if (j->rc < 0)
                rm_error("%s", j->err);
            j->state = PJ_FREE;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return slot;
}

int score_pool_wait(score_pool *p)
{
    session *s = p->s;
    int stop = 0;
    pthread_mutex_lock(&p->mu);
    int running = 0, finished = 0;
    for (int i = 0; i < p->n; i++) {
        running += p->job[i].state == PJ_RUN;
        finished += p->job[i].state == PJ_DONE;
    }
    if (p->view) {
        const int total = p->total > 0 ? p->total : p->scored + running;
        stop = s->jobs_hook(p->view, p->n, p->scored, total, s->hook_user) != 0;
    }
    if (!stop && running && !finished && !s->interrupt) {
        if (p->view) {
            struct timespec t;
            clock_gettime(CLOCK_REALTIME, &t);
            t.tv_nsec += 100000000L;
            t.tv_sec += t.tv_nsec / 1000000000L;
            t.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&p->done, &p->mu, &t);
        } else {
            pthread_cond_wait(&p->done, &p->mu);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return stop;
}

void score_pool_stop(score_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n; i++)
        if (p->job[i].started) {
            pthread_join(p->job[i].t, NULL);
            p->job[i].started = 0;
        }
    /* a job given work that it never began holds nothing */
    for (int i = 0; i < p->n; i++)
        if (p->job[i].state == PJ_RUN)
            p->job[i].state = PJ_FREE;
}

void score_pool_free(score_pool *p)
{
    if (!p)
        return;
    score_pool_stop(p);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mu);
    free(p->view);
    free(p->hist);
    free(p->job);
    free(p);
}
