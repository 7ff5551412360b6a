/* Times one training step (forward, cross-entropy, backward, SGD) at batch
 * 32 for ResNet-20, the ResNet-like NAS-Bench-201 cell, a chain network
 * (depthwise 3x3 to 7x7) and a DARTS network (C = 16, 8 cells; separable,
 * dilated, pools), as PyTorch's bench_step.py does, and prints one line per
 * model:
 *   MODEL median_ms mean_ms min_ms
 * Usage: bench_step [STEPS] [WARMUP]. Not part of make check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "models/model.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/rng.h"

/* the networks of tests/golden's chain_mix and darts_mix (bench_step.py
 * builds the same) */
#define BENCH_CHAIN "k3e3-k5e6-skip-k7e3|k7e6-skip-k3e6-k5e3|k5e3-skip-skip-k7e3"
#define BENCH_DARTS                                                                       \
    "Genotype(normal=[('max_pool_3x3', 0), ('avg_pool_3x3', 1), ('skip_connect', 1), "   \
    "('sep_conv_5x5', 2), ('dil_conv_5x5', 0), ('max_pool_3x3', 3), ('avg_pool_3x3', 2), " \
    "('dil_conv_3x3', 4)], normal_concat=[2, 3, 4, 5])"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int bench(const char *name, model *m, int steps, int warmup)
{
    const int n = 32;
    graph *g = m->g;
    const backend *be = graph_backend(g);
    if (graph_init_params(g, 0) < 0 || graph_plan(g, n, PLAN_TRAIN) < 0)
        return -1;
    rng r;
    rng_seed(&r, 1);
    float *x = graph_data(g, m->input);
    for (size_t i = 0; i < (size_t)n * 3 * 32 * 32; i++)
        x[i] = (float)rng_normal(&r);
    int32_t labels[32];
    for (int i = 0; i < n; i++)
        labels[i] = i % 10;
    double *t = malloc((size_t)steps * sizeof *t);
    for (int s = 0; s < warmup + steps; s++) {
        double t0 = rm_seconds();
        graph_forward(g, BN_TRAIN);
        graph_zero_output_grads(g);
        be->softmax_ce(n, m->nclass, graph_data(g, m->logits), labels, NULL,
                       graph_grad(g, m->logits), 1.0f);
        graph_zero_param_grads(g);
        graph_backward(g);
        graph_sgd_step(g, 0.01f, 0.9f, 5e-4f, NULL, 0);
        if (s >= warmup)
            t[s - warmup] = rm_seconds() - t0;
    }
    double mean = 0;
    for (int s = 0; s < steps; s++)
        mean += t[s] / steps;
    qsort(t, (size_t)steps, sizeof *t, cmp);
    printf("%s %.2f %.2f %.2f\n", name, 1e3 * t[steps / 2], 1e3 * mean, 1e3 * t[0]);
    free(t);
    return 0;
}

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 30, warmup = argc > 2 ? atoi(argv[2]) : 3;
    model m;
    if (resnet_cifar_build(&m, backend_cpu(), 20, 10, 32) < 0 || bench("resnet20", &m, steps, warmup) < 0)
        goto fail;
    model_free(&m);
    nb201_arch a;
    nb201_parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|", &a);
    if (nb201_net_build(&m, backend_cpu(), &a, 10, 32) < 0 || bench("nb201_resnet_cell", &m, steps, warmup) < 0)
        goto fail;
    model_free(&m);
    uint8_t layers[CHAIN_LAYERS];
    if (chain_parse(BENCH_CHAIN, layers) < 0 || chain_net_build(&m, backend_cpu(), layers, 10, 32) < 0 ||
        bench("chain_mix", &m, steps, warmup) < 0)
        goto fail;
    model_free(&m);
    uint8_t e[DARTS_EDGES];
    if (darts_parse(BENCH_DARTS, e) < 0 || darts_net_build(&m, backend_cpu(), e, 10, 32) < 0 ||
        bench("darts_mix", &m, steps, warmup) < 0)
        goto fail;
    model_free(&m);
    return 0;
fail:
    fprintf(stderr, "bench_step: %s\n", rm_last_error());
    return 1;
}
