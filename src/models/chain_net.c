/* A MobileNet-like chain network for 32x32 inputs (the chain search space):
 * stem Conv3x3(3->16) + BN + ReLU; three stages of 16, 32 and 64 channels at
 * 32x32, 16x16 and 8x8, each entered (stages 2 and 3) through a fixed
 * inverted-residual block (kernel 3, expansion 3, stride 2) and followed by
 * CHAIN_PER_STAGE searchable layers; BN + ReLU; global average pool; Linear.
 * A searchable layer is skip (identity) or an inverted residual block
 * x + BN(Conv1x1(ReLU(BN(DWConv_kxk(ReLU(BN(Conv1x1_{C->eC}(x)))))))) with
 * k in {3, 5, 7} and e in {3, 6} (MobileNetV2/V3 blocks with ReLU).
 * Features: the outputs of stages 1 and 2, and the final BN+ReLU. */
#include <stdio.h>
#include <string.h>

#include "models/model.h"
#include "util/err.h"

const char *const chain_op_names[CHAIN_NOPS] = {"skip", "k3e3", "k3e6", "k5e3",
                                                "k5e6", "k7e3", "k7e6"};
static const int op_k[CHAIN_NOPS] = {0, 3, 3, 5, 5, 7, 7};
static const int op_e[CHAIN_NOPS] = {0, 3, 6, 3, 6, 3, 6};

/* Conv1x1 expand -> BN -> (ReLU) DWConv k stride -> BN -> (ReLU) Conv1x1 -> BN */
static int ir_block(graph *g, int x, int cin, int cout, int k, int e, int stride, const char *pfx)
{
    char name[96];
    int mid = cin * e;
    snprintf(name, sizeof name, "%s.expand.0", pfx);
    int h = graph_conv(g, x, mid, 1, 1, 0, 1, 1, 0, 0, name, -1);
    snprintf(name, sizeof name, "%s.expand.1", pfx);
    h = graph_bn(g, h, name, -1);
    snprintf(name, sizeof name, "%s.dw.0", pfx);
    h = graph_conv(g, h, mid, k, stride, k / 2, 1, mid, 0, 1, name, -1);
    snprintf(name, sizeof name, "%s.dw.1", pfx);
    h = graph_bn(g, h, name, -1);
    snprintf(name, sizeof name, "%s.project.0", pfx);
    h = graph_conv(g, h, cout, 1, 1, 0, 1, 1, 0, 1, name, -1);
    snprintf(name, sizeof name, "%s.project.1", pfx);
    return graph_bn(g, h, name, -1);
}

int chain_net_build(model *m, const backend *be, const uint8_t *layers, int nclass, int hw)
{
    memset(m, 0, sizeof *m);
    for (int i = 0; i < CHAIN_LAYERS; i++)
        if (layers[i] >= CHAIN_NOPS)
            return rm_error("chain layer %d: operation %d out of range", i, layers[i]);
    graph *g = model_start(m, be, nclass, hw);
    if (!g)
        return -1;
    chain_format(layers, m->name, sizeof m->name);
    int x = m->input;
    x = graph_conv(g, x, 16, 3, 1, 1, 1, 1, 0, 0, "stem.0", -1);
    x = graph_relu(g, graph_bn(g, x, "stem.1", -1));
    int c = 16;
    for (int stage = 0; stage < 3; stage++) {
        char pfx[64];
        if (stage > 0) {
            snprintf(pfx, sizeof pfx, "stages.%d.down", stage);
            x = ir_block(g, x, c, 2 * c, 3, 3, 2, pfx);
            c *= 2;
        }
        for (int l = 0; l < CHAIN_PER_STAGE; l++) {
            int op = layers[stage * CHAIN_PER_STAGE + l];
            if (op == 0)
                continue; /* skip: identity */
            snprintf(pfx, sizeof pfx, "stages.%d.%d", stage, l);
            int h = ir_block(g, x, c, c, op_k[op], op_e[op], 1, pfx);
            x = graph_add(g, x, h); /* h += x: the residual */
        }
        if (stage < 2)
            model_feature(m, stage, x);
    }
    x = model_feature(m, 2, graph_relu(g, graph_bn(g, x, "head.0", -1)));
    return model_finish(m, x, "classifier", "the chain network");
}

void chain_format(const uint8_t *layers, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < CHAIN_LAYERS && o < size; i++) {
        const char *sep = i == 0 ? "" : i % CHAIN_PER_STAGE == 0 ? "|" : "-";
        o += (size_t)snprintf(buf + o, size - o, "%s%s", sep,
                              layers[i] < CHAIN_NOPS ? chain_op_names[layers[i]] : "?");
    }
}

int chain_parse(const char *s, uint8_t *layers)
{
    const char *p = s;
    while (*p == ' ' || *p == '\t')
        p++;
    for (int i = 0; i < CHAIN_LAYERS; i++) {
        if (i > 0) {
            char want = i % CHAIN_PER_STAGE == 0 ? '|' : '-';
            if (!*p)
                return rm_error("chain architecture ends early at offset %ld: %d of %d layers "
                                "(%d stages of %d, layers by '-', stages by '|')",
                                (long)(p - s), i, CHAIN_LAYERS, CHAIN_LAYERS / CHAIN_PER_STAGE,
                                CHAIN_PER_STAGE);
            if (*p != want)
                return rm_error("chain architecture: at offset %ld (layer %d) expected '%c', "
                                "found '%c'", (long)(p - s), i, want, *p);
            p++;
        }
        size_t len = strcspn(p, "-| \t\r\n");
        int op = -1;
        for (int k = 0; k < CHAIN_NOPS; k++)
            if (strlen(chain_op_names[k]) == len && !strncmp(p, chain_op_names[k], len))
                op = k;
        if (op < 0)
            return rm_error("chain architecture: layer %d (offset %ld): unknown block '%.*s'; "
                            "expected skip, k3e3, k3e6, k5e3, k5e6, k7e3 or k7e6",
                            i, (long)(p - s), (int)len, p);
        layers[i] = (uint8_t)op;
        p += len;
    }
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (*p)
        return rm_error("chain architecture: unexpected '%c' at offset %ld after %d layers", *p,
                        (long)(p - s), CHAIN_LAYERS);
    return 0;
}
