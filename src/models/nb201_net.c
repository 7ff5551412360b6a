/* NAS-Bench-201 TinyNetwork (D-X-Y), as in the released RMI-NAS code. */
#include <stdio.h>
#include <string.h>

#include "models/model.h"
#include "util/err.h"

/* ReLU -> Conv(k, no bias) -> BN, accumulated into `into`. */
static int relu_conv_bn(graph *g, int x, int cout, int k, int stride, const char *pfx, int into)
{
    char name[96];
    snprintf(name, sizeof name, "%s.op.1", pfx);
    int h = graph_conv(g, x, cout, k, stride, k / 2, 1, 1, 0, 1, name, -1);
    snprintf(name, sizeof name, "%s.op.2", pfx);
    return graph_bn(g, h, name, into);
}

/* InferCell: node j = sum over i < j of op_ij(node i); returns node 3. */
static int infer_cell(graph *g, int x, int c, const nb201_arch *a, int cell)
{
    int nodes[4] = {x, -1, -1, -1};
    int hw_c, hw_h, hw_w;
    graph_value_shape(g, x, &hw_c, &hw_h, &hw_w);
    for (int e = 0; e < NB201_EDGES; e++) {
        int from = nodes[nb201_edge_from[e]], to = nb201_edge_to[e];
        char pfx[64];
        snprintf(pfx, sizeof pfx, "cells.%d.layers.%d", cell, e);
        switch (a->op[e]) {
        case NB201_NONE:
            break;
        case NB201_SKIP:
            nodes[to] = graph_add(g, from, nodes[to]);
            break;
        case NB201_CONV1:
            nodes[to] = relu_conv_bn(g, from, c, 1, 1, pfx, nodes[to]);
            break;
        case NB201_CONV3:
            nodes[to] = relu_conv_bn(g, from, c, 3, 1, pfx, nodes[to]);
            break;
        case NB201_AVGPOOL:
            nodes[to] = graph_avgpool(g, from, 3, 1, 1, 0, nodes[to]);
            break;
        }
        /* after its last input edge, a node whose inputs are all 'none' is zero */
        int last_edge = e == NB201_EDGES - 1 || nb201_edge_to[e + 1] != to;
        if (last_edge && nodes[to] == -1)
            nodes[to] = graph_zeros(g, hw_c, hw_h, hw_w);
    }
    return nodes[3];
}

/* ResNetBasicblock with stride 2: conv_b(conv_a(x)) + conv1x1(avgpool2(x)). */
static int reduction_block(graph *g, int x, int cout, int cell)
{
    char pfx[64], name[96];
    snprintf(pfx, sizeof pfx, "cells.%d.conv_a", cell);
    int h = relu_conv_bn(g, x, cout, 3, 2, pfx, -1);
    snprintf(pfx, sizeof pfx, "cells.%d.conv_b", cell);
    int out = relu_conv_bn(g, h, cout, 3, 1, pfx, -1);
    int r = graph_avgpool(g, x, 2, 2, 0, 1, -1);
    snprintf(name, sizeof name, "cells.%d.downsample.1", cell);
    return graph_conv(g, r, cout, 1, 1, 0, 1, 1, 0, 0, name, out);
}

int nb201_net_build(model *m, const backend *be, const nb201_arch *arch, int nclass, int hw)
{
    memset(m, 0, sizeof *m);
    graph *g = model_start(m, be, nclass, hw);
    if (!g)
        return -1;
    nb201_format(arch, m->name, sizeof m->name);
    int x = m->input;
    x = graph_conv(g, x, 16, 3, 1, 1, 1, 1, 0, 0, "stem.0", -1);
    x = graph_bn(g, x, "stem.1", -1);
    int c = 16, cell = 0;
    for (int stage = 0; stage < 3; stage++) {
        if (stage > 0) {
            c *= 2;
            x = reduction_block(g, x, c, cell++);
        }
        for (int i = 0; i < 5; i++)
            x = infer_cell(g, x, c, arch, cell++);
        if (stage < 2)
            model_feature(m, stage, x);
    }
    x = model_feature(m, 2, graph_relu(g, graph_bn(g, x, "lastact.0", -1)));
    return model_finish(m, x, "classifier", "the NAS-Bench-201 network");
}
