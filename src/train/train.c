#include "train/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/err.h"
#include "util/rng.h"

void train_opts_default(train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->epochs = 1;
    o->batch = 128;
    o->lr = 0.02;
    o->cosine = 1;
    o->momentum = 0.9;
    o->wd = 1e-4;
    o->augment = 1;
    o->eval_every_epoch = 1;
}

static int check_shape(const model *m, const dataset *d)
{
    int c, h, w;
    graph_value_shape(m->g, m->input, &c, &h, &w);
    if (d->c != c || d->h != h || d->w != w)
        return rm_error("the network takes %dx%dx%d images, the dataset has %dx%dx%d", c, h, w,
                        d->c, d->h, d->w);
    if (d->nclass > m->nclass)
        return rm_error("the dataset has %d classes, the network's classifier %d", d->nclass,
                        m->nclass);
    return 0;
}

int model_evaluate(model *m, const dataset *d, int batch, double *acc)
{
    if (check_shape(m, d) < 0)
        return -1;
    graph *g = m->g;
    const backend *be = graph_backend(g);
    if (batch > d->n)
        batch = d->n;
    if (graph_plan(g, batch, PLAN_INFER) < 0)
        return -1;
    int hw = d->h * d->w, k = m->nclass;
    size_t img = (size_t)d->c * hw;
    float *x = malloc((size_t)batch * img * sizeof(float));
    float *logits = malloc((size_t)batch * k * sizeof(float));
    uint8_t *u8 = malloc((size_t)batch * img);
    if (!x || !logits || !u8) {
        free(x);
        free(logits);
        free(u8);
        return rm_error("out of memory");
    }
    long correct = 0;
    int rc = 0;
    for (int s = 0; s < d->n; s += batch) {
        int b = d->n - s < batch ? d->n - s : batch;
        graph_set_batch(g, b);
        dataset_range_u8(d, s, b, u8);
        dataset_normalize(d, u8, b, x);
        be->upload(graph_data(g, m->input), x, (size_t)b * img * sizeof(float));
        graph_forward(g, BN_EVAL);
        be->download(logits, graph_data(g, m->logits), (size_t)b * k * sizeof(float));
        if (be->sync() < 0) {
            rc = -1;
            break;
        }
        for (int i = 0; i < b; i++) {
            int best = 0;
            for (int j = 1; j < k; j++)
                if (logits[i * k + j] > logits[i * k + best])
                    best = j;
            correct += best == d->y[s + i];
        }
    }
    free(u8);
    free(x);
    free(logits);
    if (rc < 0)
        return -1;
    *acc = d->n ? (double)correct / d->n : 0;
    return 0;
}

int model_train(model *m, const dataset *train, const dataset *test, const train_opts *o,
                train_callback cb, void *user)
{
    if (check_shape(m, train) < 0)
        return -1;
    if (o->epochs <= 0 || o->batch <= 0)
        return rm_error("epochs and batch must be positive");
    graph *g = m->g;
    const backend *be = graph_backend(g);
    int n = train->n, bs = o->batch < n ? o->batch : n;
    int hw = train->h * train->w, k = m->nclass;
    size_t img = (size_t)train->c * hw;
    long steps_per_epoch = (n + bs - 1) / bs, total = steps_per_epoch * o->epochs;
    rm_clear_error(); /* the backend's reason, if it gives one, follows ours */
    int *order = malloc((size_t)n * sizeof *order);
    uint8_t *u8 = malloc((size_t)bs * img), *aug = malloc((size_t)bs * img);
    float *x = malloc((size_t)bs * img * sizeof(float));
    int32_t *labels = malloc((size_t)bs * sizeof *labels);
    /* the backend's copy of the labels (device memory on a GPU) */
    int32_t *dlabels = be->alloc((size_t)bs * sizeof *dlabels);
    int rc = 0;
    if (!order || !u8 || !aug || !x || !labels || !dlabels) {
        rc = rm_error_alloc("the training batch");
        goto done;
    }
    rng r;
    rng_seed(&r, o->seed);
    for (int i = 0; i < n; i++)
        order[i] = i;
    long gstep = 0;
    for (int ep = 1; ep <= o->epochs && rc == 0; ep++) {
        if (graph_plan(g, bs, PLAN_TRAIN) < 0) {
            rc = -1;
            break;
        }
        rng_shuffle(&r, order, n);
        double t0 = rm_seconds(), sum_loss = 0;
        long seen = 0;
        train_progress p = {.epoch = ep, .epochs = o->epochs, .steps = total, .test_acc = -1};
        for (long s = 0; s < steps_per_epoch; s++) {
            int b = (int)(s * bs + bs <= n ? bs : n - s * bs);
            graph_set_batch(g, b);
            dataset_gather_u8(train, order + s * bs, b, u8, labels);
            if (o->augment)
                dataset_augment(train, u8, b, &r, aug);
            dataset_normalize(train, o->augment ? aug : u8, b, x);
            be->upload(graph_data(g, m->input), x, (size_t)b * img * sizeof(float));
            be->upload(dlabels, labels, (size_t)b * sizeof *labels);
            double lr = o->cosine ? 0.5 * o->lr * (1 + cos(M_PI * (double)gstep / total)) : o->lr;
            graph_forward(g, BN_TRAIN);
            graph_zero_output_grads(g);
            double loss = be->softmax_ce(b, k, graph_data(g, m->logits), dlabels, NULL,
                                         graph_grad(g, m->logits), 1.0f);
            if (be->sync() < 0) { /* a failed GPU call, not a divergence */
                rc = -1;
                break;
            }
            if (!isfinite(loss)) {
                rc = rm_error("training diverged: loss is %g at epoch %d step %ld", loss, ep,
                              s + 1);
                break;
            }
            graph_zero_param_grads(g);
            graph_backward(g);
            graph_sgd_step(g, (float)lr, (float)o->momentum, (float)o->wd, NULL, 0);
            gstep++;
            seen += b;
            sum_loss += loss * b;
            p.step = gstep;
            p.loss = loss;
            p.epoch_loss = sum_loss / seen;
            p.lr = lr;
            p.images_per_s = seen / (rm_seconds() - t0);
            if (cb && cb(&p, user)) {
                rc = 1;
                break;
            }
        }
        if (rc)
            break;
        p.epoch_seconds = rm_seconds() - t0;
        if (o->eval_every_epoch && test && model_evaluate(m, test, 200, &p.test_acc) < 0) {
            rc = -1;
            break;
        }
        p.epoch_end = 1;
        if (cb && cb(&p, user))
            rc = 1;
    }
done:
    free(order);
    free(u8);
    free(aug);
    free(x);
    free(labels);
    if (dlabels)
        be->free(dlabels);
    return rc;
}
