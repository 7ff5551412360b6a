/* A network as a static graph of layers with explicit forward and backward.
 *
 * A model is built once (graph_input, graph_conv, graph_bn, ...), then
 * planned for a batch size: graph_plan allocates every activation, gradient
 * and scratch buffer up front, so a training step allocates nothing.
 *
 * Values are activations of shape (n, c, h, w); n is fixed by the plan.
 * A builder call either creates its output value (into < 0) or accumulates
 * into an existing value of the same shape (into = that value), which is how
 * a cell sums its edges without storing each edge's output. Every producer of
 * a value must be built before any consumer of it.
 *
 * Parameters are registered in PyTorch state-dict order with PyTorch key
 * names ("layer1.0.conv1.weight", "cells.3.layers.1.op.2.running_mean"), so
 * safetensors weights move between rminas and PyTorch unchanged.
 *
 * Builders return a value id >= 0, or -1 with rm_error set; they accept -1 as
 * input and return -1 again, so a model builder checks once at the end. */
#ifndef RM_GRAPH_H
#define RM_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/backend.h"

typedef struct graph graph;

graph *graph_new(const backend *be);
void graph_free(graph *g);
const backend *graph_backend(const graph *g);

/* ---- building ---- */
int graph_input(graph *g, int c, int h, int w);
/* Conv2d (PyTorch layout, zero padding); relu_in fuses a preceding ReLU. */
int graph_conv(graph *g, int x, int cout, int k, int stride, int pad, int dil,
               int groups, int bias, int relu_in, const char *name, int into);
/* BatchNorm2d (eps 1e-5, momentum 0.1, affine). */
int graph_bn(graph *g, int x, const char *name, int into);
/* ReLU in place on x (x must have no other consumer that needs the
 * pre-activation); returns x. */
int graph_relu(graph *g, int x);
int graph_avgpool(graph *g, int x, int k, int stride, int pad,
                  int count_include_pad, int into);
int graph_maxpool(graph *g, int x, int k, int stride, int pad, int into);
/* global average pool: (c,h,w) -> (c,1,1) */
int graph_gap(graph *g, int x);
/* Linear on a (c,1,1) value -> (out,1,1), with bias. */
int graph_linear(graph *g, int x, int out, const char *name);
/* ResNet option-A shortcut to cout channels at half resolution. */
int graph_shortcut_a(graph *g, int x, int cout, int into);
/* into += x (into < 0: a copy of x). */
int graph_add(graph *g, int x, int into);
/* x[:, :, off::step, off::step] (DARTS's factorized reduce reads x[:, :, 1:, 1:]
 * with stride 2). */
int graph_subsample(graph *g, int x, int off, int step);
/* torch.cat(xs, dim=1) of k values of the same height and width. */
int graph_concat(graph *g, const int *xs, int k);
/* A value of zeros (a cell node none of whose edges carries data). */
int graph_zeros(graph *g, int c, int h, int w);

/* Nonzero if any builder call failed (the failures are sticky). */
int graph_failed(const graph *g);

/* Outputs keep their data after an inference forward and receive their
 * gradients from the caller before graph_backward. */
void graph_mark_output(graph *g, int v);

/* ---- parameters ---- */
enum param_kind {
    PARAM_WEIGHT,      /* conv/linear weight: trained, kaiming-uniform init */
    PARAM_BIAS,        /* conv/linear bias: trained */
    PARAM_BN_WEIGHT,   /* trained, init 1 */
    PARAM_BN_BIAS,     /* trained, init 0 */
    PARAM_BN_MEAN,     /* buffer, init 0 */
    PARAM_BN_VAR,      /* buffer, init 1 */
    PARAM_BN_COUNT     /* num_batches_tracked: int64 buffer, init 0 */
};

typedef struct param_info {
    const char *name;
    enum param_kind kind;
    int ndim;
    int64_t shape[4];
    size_t numel;
} param_info;

int graph_num_params(const graph *g);          /* state-dict entries */
const param_info *graph_param(const graph *g, int i);
/* Trainable parameter count (what "#params" means). */
size_t graph_count_trainable(const graph *g);
/* Multiply-accumulates for one sample, counted as the reference does:
 * convolutions and linear layers (with bias), pooling windows k*k per output;
 * batch norm, ReLU, additions and the global pool not counted. */
int64_t graph_count_macs(const graph *g);

/* Default initialization from a seeded generator, PyTorch style: conv and
 * linear weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)) drawn in
 * registration order (element by element, row-major), BN weight 1, bias 0,
 * running mean 0, var 1, count 0. */
int graph_init_params(graph *g, uint64_t seed);

/* Host copies of one state-dict entry (count entries as one float). */
int graph_param_get(graph *g, int i, float *host);
int graph_param_set(graph *g, int i, const float *host);

/* ---- planning and running ---- */
enum plan_mode {
    PLAN_INFER,  /* forward only; activations share buffers by liveness */
    PLAN_TRAIN   /* forward + backward; all activations kept, gradients pooled */
};
int graph_plan(graph *g, int n, enum plan_mode mode);
/* Free the plan's buffers (the parameters stay); the next use plans again. */
void graph_unplan(graph *g);
int graph_batch(const graph *g);
/* Run the next passes on a smaller batch within the plan (a last partial
 * batch); n <= the planned size. */
int graph_set_batch(graph *g, int n);
/* Device pointers of a value's data / gradient under the current plan. */
float *graph_data(graph *g, int v);
float *graph_grad(graph *g, int v);
void graph_value_shape(const graph *g, int v, int *c, int *h, int *w);
size_t graph_value_numel(const graph *g, int v);   /* per sample */
int graph_input_value(const graph *g);

/* How batch norm runs in a forward pass. */
enum bn_mode {
    BN_EVAL = 0,    /* running statistics (PyTorch eval mode) */
    BN_TRAIN = 1,   /* batch statistics, running statistics updated (train mode) */
    BN_BATCH = 2    /* batch statistics, running statistics left alone (train mode
                       under no_grad on a network that must not change) */
};
/* Forward from graph_data(g, input). */
int graph_forward(graph *g, enum bn_mode mode);
/* Zero the gradients of the outputs (then add the loss gradients to them). */
void graph_zero_output_grads(graph *g);
/* Backward after a BN_TRAIN or BN_BATCH forward under a PLAN_TRAIN plan: accumulates
 * parameter gradients (zero them first with graph_zero_param_grads). */
int graph_backward(graph *g);
void graph_zero_param_grads(graph *g);
/* One torch.optim.SGD step over all trainable parameters. The first call
 * after graph_init_params / graph_reset_optimizer initializes the momentum
 * buffers as PyTorch does. unless (NULL, or nunless doubles in the
 * backend's memory): the step changes nothing if any of them is not finite
 * when it runs (backend.h sgd_step); it still counts as the first. */
void graph_sgd_step(graph *g, float lr, float momentum, float wd, const double *unless,
                    int nunless);
void graph_reset_optimizer(graph *g);

/* Bytes held by the current plan (activations, gradients, scratch) and by
 * the parameters. */
size_t graph_plan_bytes(const graph *g);
size_t graph_param_bytes(const graph *g);

#endif
