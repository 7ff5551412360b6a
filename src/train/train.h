/* Whole-model training and evaluation on a labelled image dataset. */
#ifndef RM_TRAIN_H
#define RM_TRAIN_H

#include <stdint.h>

#include "io/cifar.h"
#include "models/model.h"

typedef struct train_opts {
    int epochs;
    int batch;          /* the last batch of an epoch may be smaller */
    double lr;          /* peak learning rate */
    int cosine;         /* lr = lr/2 (1 + cos(pi t/T)) per step, t = 0..T-1; else constant */
    double momentum;
    double wd;
    int augment;        /* random crop 32 pad 4 + horizontal flip */
    uint64_t seed;      /* shuffling and augmentation */
    int eval_every_epoch; /* evaluate on the test set after each epoch */
} train_opts;

void train_opts_default(train_opts *o);

typedef struct train_progress {
    int epoch, epochs;        /* 1-based */
    long step, steps;         /* global step (1-based) and total */
    double loss;              /* mean loss of the last step */
    double epoch_loss;        /* running mean over the epoch */
    double lr;
    double images_per_s;      /* over the epoch so far */
    double test_acc;          /* after an epoch when evaluated, else -1 */
    double epoch_seconds;     /* at the end of an epoch, else 0 */
    int epoch_end;
} train_progress;

/* Called after every step and at the end of each epoch; return nonzero to
 * stop (the model keeps the weights of the last finished step). */
typedef int (*train_callback)(const train_progress *p, void *user);

/* Top-1 accuracy (0..1) of the model in eval mode (running BN statistics). */
int model_evaluate(model *m, const dataset *d, int batch, double *acc);
/* Mini-batch SGD on cross-entropy, train-mode BN. Returns 0, 1 if stopped by
 * the callback, or -1 on error. */
int model_train(model *m, const dataset *train, const dataset *test, const train_opts *o,
                train_callback cb, void *user);

#endif
