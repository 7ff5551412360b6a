#include "rmi/rmi.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rmi/cka.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/rng.h"

void rmi_settings_default(rmi_settings *s)
{
    s->batch = 32;
    s->gamma = 16;
    s->beta = 0.8;
    s->steps = 150;
    s->lr = 0.1;
    s->momentum = 0.9;
    s->wd = 5e-4;
    s->centered = 1;
    s->teacher_bn = 1;
    s->data_seed = 0;
    s->init_seed = 0;
}

void rmi_data_free(rmi_data *d)
{
    free(d->x);
    free(d->y);
    free(d->train_index);
    free(d->teacher_ce);
    for (int i = 0; i < RMI_LAYERS; i++)
        free(d->gram[i]);
    memset(d, 0, sizeof *d);
}

typedef struct ce_rank {
    double ce;
    int pos;
} ce_rank;

static int by_ce(const void *a, const void *b)
{
    const ce_rank *x = a, *y = b;
    if (x->ce != y->ce)
        return x->ce < y->ce ? -1 : 1;
    return x->pos - y->pos;
}

/* K = X X^T of a device feature tensor (n, p) into a host (n, n) array. */
static int feature_gram(const backend *be, int n, size_t p, const float *x, float *host)
{
    rm_clear_error(); /* the backend's reason, if it gives one, follows ours */
    float *k = be->alloc((size_t)n * n * sizeof(float));
    if (!k)
        return rm_error_alloc("a %dx%d Gram matrix", n, n);
    be->gram(n, (int)p, x, k);
    be->download(host, k, (size_t)n * n * sizeof(float));
    be->free(k);
    return 0;
}

/* The side of a model's square input images. */
static int input_hw(const model *m)
{
    int c, h, w;
    graph_value_shape(m->g, m->input, &c, &h, &w);
    return h;
}

/* Teacher features of the batch d->x (BN over the batch in train mode) and
 * their Gram matrices; completes d. */
static int teacher_grams(rmi_data *d, model *teacher, int n, const rmi_settings *s)
{
    graph *g = teacher->g;
    const backend *be = graph_backend(g);
    if (graph_batch(g) < n && graph_plan(g, n, PLAN_INFER) < 0)
        return -1;
    graph_set_batch(g, n);
    be->upload(graph_data(g, teacher->input), d->x, (size_t)n * 3 * d->hw * d->hw * sizeof(float));
    graph_forward(g, s->teacher_bn ? BN_BATCH : BN_EVAL);
    for (int i = 0; i < RMI_LAYERS; i++)
        if (feature_gram(be, n, graph_value_numel(g, teacher->feat[i]),
                         graph_data(g, teacher->feat[i]), d->gram[i]) < 0)
            return -1;
    if (be->sync() < 0)
        return -1;
    d->n = n;
    d->nclass = teacher->nclass;
    d->settings = *s;
    return 0;
}

int rmi_data_from_batch(rmi_data *d, model *teacher, const float *x, const int32_t *y, int n,
                        const rmi_settings *s)
{
    memset(d, 0, sizeof *d);
    if (n < 2)
        return rm_error("a batch needs at least 2 images");
    d->hw = input_hw(teacher);
    size_t img = 3 * (size_t)d->hw * d->hw;
    d->x = malloc((size_t)n * img * sizeof(float));
    d->y = malloc((size_t)n * sizeof *d->y);
    d->train_index = malloc((size_t)n * sizeof(int));
    d->teacher_ce = calloc((size_t)n, sizeof(double));
    for (int i = 0; i < RMI_LAYERS; i++)
        d->gram[i] = malloc((size_t)n * n * sizeof(float));
    if (!d->x || !d->y || !d->train_index || !d->teacher_ce || !d->gram[0] || !d->gram[1] ||
        !d->gram[2]) {
        rmi_data_free(d);
        return rm_error("out of memory");
    }
    memcpy(d->x, x, (size_t)n * img * sizeof(float));
    memcpy(d->y, y, (size_t)n * sizeof *d->y);
    for (int i = 0; i < n; i++)
        d->train_index[i] = -1;
    d->pool = n;
    d->pool_acc = NAN;
    d->pool_ce_mean = NAN;
    if (teacher_grams(d, teacher, n, s) < 0) {
        rmi_data_free(d);
        return -1;
    }
    return 0;
}

int rmi_select(rmi_data *d, model *teacher, const dataset *train, const rmi_settings *s)
{
    memset(d, 0, sizeof *d);
    int B = s->batch, P = s->batch * s->gamma;
    if (B < 2 || s->gamma < 1)
        return rm_error("batch must be at least 2 and gamma at least 1");
    if (P > train->n)
        return rm_error("the pool of %d images is larger than the training set (%d)", P,
                        train->n);
    int hw = train->h;
    if (train->c != 3 || train->w != hw)
        return rm_error("RMI needs square RGB images (the dataset's are %dx%dx%d)", train->c,
                        train->h, train->w);
    if (input_hw(teacher) != hw)
        return rm_error("the teacher takes %dx%d images, the dataset has %dx%d (load the teacher "
                        "after the dataset)", input_hw(teacher), input_hw(teacher), hw, hw);
    if (teacher->nclass != train->nclass)
        return rm_error("the teacher has %d classes, the dataset %d (load the teacher after the "
                        "dataset)", teacher->nclass, train->nclass);
    d->hw = hw;
    graph *g = teacher->g;
    const backend *be = graph_backend(g);
    const size_t img = 3 * (size_t)hw * hw;
    int k = teacher->nclass, rc = 0;
    rm_clear_error(); /* the backend's reason, if it gives one, follows ours */
    int *idx = malloc((size_t)train->n * sizeof *idx);
    uint8_t *u8 = malloc((size_t)P * img), *aug = malloc((size_t)P * img);
    float *px = malloc((size_t)P * img * sizeof(float));
    int32_t *py = malloc((size_t)P * sizeof *py);
    double *ce = malloc((size_t)P * sizeof *ce);
    float *logits = malloc((size_t)P * k * sizeof(float));
    int32_t *dy = be->alloc((size_t)P * sizeof *dy);
    ce_rank *order = malloc((size_t)P * sizeof *order);
    d->x = malloc((size_t)B * img * sizeof(float));
    d->y = malloc((size_t)B * sizeof *d->y);
    d->train_index = malloc((size_t)B * sizeof(int));
    d->teacher_ce = malloc((size_t)B * sizeof(double));
    for (int i = 0; i < RMI_LAYERS; i++)
        d->gram[i] = malloc((size_t)B * B * sizeof(float));
    if (!idx || !u8 || !aug || !px || !py || !ce || !logits || !dy || !order || !d->x ||
        !d->y || !d->train_index || !d->teacher_ce || !d->gram[0] || !d->gram[1] ||
        !d->gram[2]) {
        rc = rm_error_alloc("the batch selection");
        goto done;
    }
    /* the pool: P distinct training images, augmented once */
    rng r;
    rng_seed(&r, s->data_seed);
    for (int i = 0; i < train->n; i++)
        idx[i] = i;
    for (int i = 0; i < P; i++) {
        int j = i + (int)rng_below(&r, (uint64_t)(train->n - i));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    dataset_gather_u8(train, idx, P, u8, py);
    dataset_augment(train, u8, P, &r, aug);
    dataset_normalize(train, aug, P, px);

    /* the teacher scores the whole pool at once: in train mode its BN uses
     * the statistics of the pool, as the released code does */
    enum bn_mode mode = s->teacher_bn ? BN_BATCH : BN_EVAL;
    if (graph_plan(g, P, PLAN_INFER) < 0) {
        rc = -1;
        goto done;
    }
    be->upload(graph_data(g, teacher->input), px, (size_t)P * img * sizeof(float));
    be->upload(dy, py, (size_t)P * sizeof *dy);
    graph_forward(g, mode);
    d->pool_ce_mean = be->softmax_ce(P, k, graph_data(g, teacher->logits), dy, ce, NULL, 1.0f);
    be->download(logits, graph_data(g, teacher->logits), (size_t)P * k * sizeof(float));
    if (be->sync() < 0) {
        rc = -1;
        goto done;
    }
    int correct = 0;
    for (int i = 0; i < P; i++) {
        int best = 0;
        for (int j = 1; j < k; j++)
            if (logits[i * k + j] > logits[i * k + best])
                best = j;
        correct += best == py[i];
        order[i].ce = ce[i];
        order[i].pos = i;
    }
    d->pool_acc = (double)correct / P;
    qsort(order, (size_t)P, sizeof *order, by_ce);
    for (int b = 0; b < B; b++) {
        int p = order[b].pos;
        memcpy(d->x + (size_t)b * img, px + (size_t)p * img, img * sizeof(float));
        d->y[b] = py[p];
        d->train_index[b] = idx[p];
        d->teacher_ce[b] = order[b].ce;
    }
    d->pool = P;
    rc = teacher_grams(d, teacher, B, s);
done:
    free(idx);
    free(u8);
    free(aug);
    free(px);
    free(py);
    free(ce);
    free(logits);
    free(order);
    if (dy)
        be->free(dy);
    if (rc < 0)
        rmi_data_free(d);
    return rc;
}

/* ------------------------------------------------------------------ */

void rmi_eval_free(rmi_eval *e)
{
    const backend *be = e->student.g ? graph_backend(e->student.g) : NULL;
    if (be) {
        be->free(e->labels);
        be->free(e->kdev);
        be->free(e->dkdev);
        be->free(e->res);
        be->free(e->hist);
        for (int i = 0; i < RMI_LAYERS; i++)
            be->free(e->ldev[i]);
        if (e->rec_fwd)
            be->record_free(e->rec_fwd);
        if (e->rec_bwd)
            be->record_free(e->rec_bwd);
    }
    model_free(&e->student);
    free(e->h_loss);
    free(e->h_ce);
    for (int i = 0; i < RMI_LAYERS; i++)
        free(e->h_cka[i]);
    free(e->gram);
    free(e->dgram);
    memset(e, 0, sizeof *e);
}

int rmi_eval_start(rmi_eval *e, const backend *be, const nb201_arch *arch,
                   const rmi_data *data, const rmi_settings *s)
{
    model m;
    memset(e, 0, sizeof *e);
    if (nb201_net_build(&m, be, arch, data->nclass, data->hw) < 0)
        return -1;
    return rmi_eval_start_model(e, be, &m, data, s);
}

int rmi_eval_start_model(rmi_eval *e, const backend *be, model *student, const rmi_data *data,
                         const rmi_settings *s)
{
    memset(e, 0, sizeof *e);
    e->student = *student;
    memset(student, 0, sizeof *student);
    if (!data->n) {
        rmi_eval_free(e);
        return rm_error("no RMI batch selected");
    }
    if (s->steps < 1) {
        rmi_eval_free(e);
        return rm_error("steps must be at least 1");
    }
    if (input_hw(&e->student) != data->hw) {
        int hw = input_hw(&e->student);
        rmi_eval_free(e);
        return rm_error("the student takes %dx%d images, the RMI batch has %dx%d", hw, hw,
                        data->hw, data->hw);
    }
    e->data = data;
    e->s = *s;
    int n = data->n;
    graph *g = e->student.g;
    rm_clear_error(); /* the backend's reason, if it gives one, follows ours */
    e->h_loss = calloc((size_t)s->steps, sizeof(double));
    e->h_ce = calloc((size_t)s->steps, sizeof(double));
    for (int i = 0; i < RMI_LAYERS; i++)
        e->h_cka[i] = calloc((size_t)s->steps, sizeof(double));
    e->gram = malloc((size_t)n * n * sizeof(float));
    e->dgram = malloc((size_t)n * n * sizeof(float));
    e->labels = be->alloc((size_t)n * sizeof(int32_t));
    e->kdev = be->alloc((size_t)n * n * sizeof(float));
    if (!e->h_loss || !e->h_ce || !e->h_cka[0] || !e->h_cka[1] || !e->h_cka[2] || !e->gram ||
        !e->dgram || !e->labels || !e->kdev) {
        rmi_eval_free(e);
        return rm_error_alloc("the student's evaluator");
    }
    if (graph_init_params(g, s->init_seed) < 0 || graph_plan(g, n, PLAN_TRAIN) < 0) {
        rmi_eval_free(e);
        return -1;
    }
    /* the batch stays in the input buffer for every step */
    be->upload(graph_data(g, e->student.input), data->x,
               (size_t)n * 3 * data->hw * data->hw * sizeof(float));
    be->upload(e->labels, data->y, (size_t)n * sizeof(int32_t));
    if (be->softmax_ce_dev && be->cka) {
        size_t nn = (size_t)n * n * sizeof(float);
        e->dkdev = be->alloc(nn);
        e->res = be->alloc((1 + RMI_LAYERS) * sizeof(double));
        e->hist = be->alloc((size_t)s->steps * (1 + RMI_LAYERS) * sizeof(double));
        int ok = e->dkdev && e->res && e->hist;
        for (int i = 0; i < RMI_LAYERS && ok; i++) {
            e->ldev[i] = be->alloc(nn);
            if ((ok = e->ldev[i] != NULL))
                be->upload(e->ldev[i], data->gram[i], nn);
        }
        if (!ok) {
            rmi_eval_free(e);
            return rm_error_alloc("the student's evaluator");
        }
        e->device_step = 1;
    }
    return be->sync() < 0 ? (rmi_eval_free(e), -1) : 0;
}

/* Keep the step's loss and CE (the CKA values are in e->cka) in the history
 * and count the step; 1 when the loss is not finite: the student diverged
 * (NaN weights would follow; the score is +inf either way) and gets no
 * backward pass. */
static int record_values(rmi_eval *e, double loss, double ce)
{
    e->ce = ce;
    e->loss = loss;
    int k = e->step++;
    e->h_loss[k] = loss;
    e->h_ce[k] = ce;
    for (int i = 0; i < RMI_LAYERS; i++)
        e->h_cka[i][k] = e->cka[i];
    if (isfinite(loss))
        return 0;
    e->diverged = 1;
    return 1;
}

/* The device step's halves. Forward: the network, then the loss gradients
 * into the outputs, (ce, cka) into e->res; nothing waits for the host. */
static void device_forward(rmi_eval *e)
{
    model *m = &e->student;
    graph *g = m->g;
    const backend *be = graph_backend(g);
    int n = e->data->n;
    float beta = (float)e->s.beta;
    graph_forward(g, BN_TRAIN);
    graph_zero_output_grads(g);
    be->softmax_ce_dev(n, m->nclass, graph_data(g, m->logits), e->labels,
                       graph_grad(g, m->logits), (float)(1 - e->s.beta), e->res);
    for (int i = 0; i < RMI_LAYERS; i++) {
        int v = m->feat[i];
        int p = (int)graph_value_numel(g, v);
        be->gram(n, p, graph_data(g, v), e->kdev);
        be->cka(n, e->kdev, e->ldev[i], e->s.centered, -beta, e->dkdev, e->res + 1 + i);
        be->gram_backward(n, p, graph_data(g, v), e->dkdev, graph_grad(g, v));
    }
}

/* The device step's SGD is skipped on the device when the forward's loss
 * terms (ce, cka) are not finite: a diverged student is never updated, even
 * when its steps were queued before the host saw the loss. */
static void step_backward(rmi_eval *e)
{
    graph *g = e->student.g;
    graph_zero_param_grads(g);
    graph_backward(g);
    graph_sgd_step(g, (float)e->s.lr, (float)e->s.momentum, (float)e->s.wd,
                   e->device_step ? e->res : NULL, 1 + RMI_LAYERS);
}

/* Run half (device_forward or step_backward) of step k from its recording,
 * recording it first when the backend can. The first step (k = 0) runs op
 * by op: its SGD step initializes the momentum (a different operation from
 * the later ones). */
static void run_half(rmi_eval *e, void (*half)(rmi_eval *), void **rec, int k)
{
    const backend *be = graph_backend(e->student.g);
    if (!*rec && k >= 1 && be->record_begin && !e->rec_failed) {
        if (be->record_begin() == 0) {
            half(e);
            *rec = be->record_end();
        }
        if (!*rec) {
            /* not recordable here: op by op from now on (already noted in
             * rm_error; nothing of the half has run) */
            e->rec_failed = 1;
            rm_clear_error();
        }
    }
    if (*rec)
        be->record_run(*rec);
    else
        half(e);
}

/* record_values for one device step's (ce, cka1..3) as the device wrote them */
static int record_res(rmi_eval *e, const double *res)
{
    const double beta = e->s.beta, ce = res[0];
    double loss = (1 - beta) * ce;
    for (int i = 0; i < RMI_LAYERS; i++) {
        e->cka[i] = res[1 + i];
        loss += beta * (1 - res[1 + i]);
    }
    return record_values(e, loss, ce);
}

static int rmi_eval_step_device(rmi_eval *e)
{
    const backend *be = graph_backend(e->student.g);
    const int k = e->step;
    double res[1 + RMI_LAYERS];
    run_half(e, device_forward, &e->rec_fwd, k);
    be->download(res, e->res, sizeof res);
    if (be->sync() < 0)
        return -1;
    if (record_res(e, res))
        return 0;
    run_half(e, step_backward, &e->rec_bwd, k);
    return 0;
}

/* n (at most RMI_AHEAD) device steps queued at once, for a whole score: no
 * step waits for the host. Each forward's (ce, cka) is copied into the
 * device history e->hist and each SGD step is skipped on the device when
 * they are not finite (step_backward); then one download of the n steps'
 * values, recorded in order with cb after each (as rmi_eval_step's caller
 * does), up to the first non-finite loss (diverged: the steps queued after
 * it changed nothing but the batch norm running statistics, which a score
 * does not use). Once cb asks to stop, the steps that ran are still
 * recorded but cb is not called again; *stop is set. */
static int device_steps_ahead(rmi_eval *e, int n, rmi_step_fn cb, void *user, int *stop)
{
    enum { W = 1 + RMI_LAYERS };
    const backend *be = graph_backend(e->student.g);
    const int k0 = e->step;
    double v[RMI_AHEAD * W];
    for (int i = 0; i < n; i++) {
        run_half(e, device_forward, &e->rec_fwd, k0 + i);
        /* W doubles as 2 W floats: copy moves bytes */
        be->copy((float *)(e->hist + (size_t)(k0 + i) * W), (const float *)e->res, 2 * W);
        run_half(e, step_backward, &e->rec_bwd, k0 + i);
    }
    be->download(v, e->hist + (size_t)k0 * W, (size_t)n * W * sizeof(double));
    if (be->sync() < 0)
        return -1;
    for (int i = 0; i < n && !e->diverged; i++) {
        record_res(e, v + (size_t)i * W);
        if (cb && !*stop && cb(e, user))
            *stop = 1;
    }
    return 0;
}

int rmi_eval_step(rmi_eval *e)
{
    if (e->diverged)
        return 0;
    if (e->step >= e->s.steps)
        return rm_error("all %d steps are done", e->s.steps);
    if (e->device_step)
        return rmi_eval_step_device(e);
    model *m = &e->student;
    graph *g = m->g;
    const backend *be = graph_backend(g);
    int n = e->data->n;
    double beta = e->s.beta;
    graph_forward(g, BN_TRAIN);
    graph_zero_output_grads(g);
    double ce = be->softmax_ce(n, m->nclass, graph_data(g, m->logits), e->labels, NULL,
                               graph_grad(g, m->logits), (float)(1 - beta));
    double loss = (1 - beta) * ce;
    for (int i = 0; i < RMI_LAYERS; i++) {
        int v = m->feat[i];
        int p = (int)graph_value_numel(g, v);
        be->gram(n, p, graph_data(g, v), e->kdev);
        be->download(e->gram, e->kdev, (size_t)n * n * sizeof(float));
        double c = cka_from_grams(n, e->gram, e->data->gram[i], e->s.centered, e->dgram);
        e->cka[i] = c;
        loss += beta * (1 - c);
        /* dL/dK = -beta dCKA/dK, then through K = X X^T into the feature */
        for (int j = 0; j < n * n; j++)
            e->dgram[j] *= (float)-beta;
        be->upload(e->kdev, e->dgram, (size_t)n * n * sizeof(float));
        be->gram_backward(n, p, graph_data(g, v), e->kdev, graph_grad(g, v));
    }
    /* a failed backend call (an asynchronous one: CUDA) is an error, not a
     * diverged student; the downloads above waited, so this costs nothing */
    if (be->sync() < 0)
        return -1;
    if (record_values(e, loss, ce))
        return 0;
    step_backward(e);
    return 0;
}

double rmi_eval_score(const rmi_eval *e)
{
    if (e->diverged || !isfinite(e->loss))
        return INFINITY;
    return e->loss;
}

int rmi_score(const backend *be, const nb201_arch *arch, const rmi_data *data,
              const rmi_settings *s, rmi_result *r, volatile sig_atomic_t *interrupt)
{
    return rmi_score_cb(be, arch, data, s, r, interrupt, NULL, NULL);
}

int rmi_score_cb(const backend *be, const nb201_arch *arch, const rmi_data *data,
                 const rmi_settings *s, rmi_result *r, volatile sig_atomic_t *interrupt,
                 rmi_step_fn cb, void *user)
{
    model m;
    memset(r, 0, sizeof *r);
    if (nb201_net_build(&m, be, arch, data->nclass, data->hw) < 0)
        return -1;
    return rmi_score_model(be, &m, data, s, r, interrupt, cb, user);
}

int rmi_score_model(const backend *be, model *student, const rmi_data *data,
                    const rmi_settings *s, rmi_result *r, volatile sig_atomic_t *interrupt,
                    rmi_step_fn cb, void *user)
{
    double t0 = rm_seconds();
    rmi_eval e;
    memset(r, 0, sizeof *r);
    if (rmi_eval_start_model(&e, be, student, data, s) < 0)
        return -1;
    int rc = 0;
    while (e.step < s->steps && !e.diverged) {
        if (interrupt && *interrupt) {
            rc = 1;
            break;
        }
        /* after the first step (op by op, synchronous), device steps go
         * RMI_AHEAD at a time: cb and interrupt are seen between them */
        int stop = 0;
        if (e.device_step && e.step >= 1) {
            const int left = s->steps - e.step;
            if (device_steps_ahead(&e, left < RMI_AHEAD ? left : RMI_AHEAD, cb, user, &stop) < 0) {
                rc = -1;
                break;
            }
        } else {
            if (rmi_eval_step(&e) < 0) {
                rc = -1;
                break;
            }
            stop = cb && cb(&e, user);
        }
        if (stop) {
            rc = e.step < s->steps && !e.diverged;
            break;
        }
    }
    /* the last step's backward is not waited for by the step: a failure
     * there belongs to this score, not to the next one of the thread */
    if (rc >= 0 && be->sync() < 0)
        rc = -1;
    r->score = rmi_eval_score(&e);
    r->loss = e.loss;
    r->ce = e.ce;
    for (int i = 0; i < RMI_LAYERS; i++)
        r->cka[i] = e.cka[i];
    r->steps = e.step;
    r->diverged = e.diverged;
    r->seconds = rm_seconds() - t0;
    rmi_eval_free(&e);
    return rc;
}
