/* The DARTS network (Liu et al., "DARTS: Differentiable Architecture
 * Search"; its NetworkCIFAR of model.py) with one cell used for both the
 * normal and the reduction cells, as RMI-NAS searches it:
 * stem Conv3x3(3 -> 3C) + BN; 8 cells, the 3rd and 6th reducing (stride 2,
 * channels x2); each cell preprocesses its two inputs (ReLU-Conv1x1-BN, or
 * a factorized reduce when the previous cell reduced), computes 4 nodes as
 * the sum of two operations on earlier states, and concatenates the 4 nodes;
 * global average pool; Linear. Features: the outputs of cells 1, 4 and 7.
 * Key names are those of the DARTS code (stem.0.weight,
 * cells.3.preprocess0.op.1.weight, cells.2._ops.5.op.3.running_mean, ...), so
 * its weights load unchanged.
 *
 * An architecture is 14 edge values (node j's inputs 0..j+1 at edge
 * j*(j+3)/2 + input): 0 = the edge is not kept, 1..7 = its operation; every
 * node keeps exactly 2 edges. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/model.h"
#include "util/err.h"

const char *const darts_op_names[DARTS_NOPS] = {
    "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
    "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"};

enum { OP_MAX = 1, OP_AVG, OP_SKIP, OP_SEP3, OP_SEP5, OP_DIL3, OP_DIL5 };

int darts_edge(int node, int input) { return node * (node + 3) / 2 + input; }

int darts_valid(const uint8_t *e)
{
    for (int j = 0; j < DARTS_NODES; j++) {
        int kept = 0;
        for (int k = 0; k < j + 2; k++) {
            int v = e[darts_edge(j, k)];
            if (v > DARTS_NOPS)
                return 0;
            kept += v != 0;
        }
        if (kept != 2)
            return 0;
    }
    return 1;
}

/* ---- network ---- */

typedef struct builder {
    graph *g;
    char pfx[64];   /* "cells.i" */
} builder;

/* ReLU -> Conv1x1 -> BN, as ReLUConvBN (keys base.op.1, base.op.2) */
static int relu_conv_bn(builder *b, int x, int cout, const char *base)
{
    char name[128];
    snprintf(name, sizeof name, "%s.op.1", base);
    x = graph_conv(b->g, x, cout, 1, 1, 0, 1, 1, 0, 1, name, -1);
    snprintf(name, sizeof name, "%s.op.2", base);
    return graph_bn(b->g, x, name, -1);
}

/* FactorizedReduce: ReLU; cat(Conv1x1 s2 (x), Conv1x1 s2 (x[:, :, 1:, 1:])); BN */
static int factorized_reduce(builder *b, int x, int cout, const char *base, int into)
{
    char name[128];
    graph *g = b->g;
    snprintf(name, sizeof name, "%s.conv_1", base);
    int a = graph_conv(g, x, cout / 2, 1, 2, 0, 1, 1, 0, 1, name, -1);
    snprintf(name, sizeof name, "%s.conv_2", base);
    int c = graph_conv(g, graph_subsample(g, x, 1, 1), cout / 2, 1, 2, 0, 1, 1, 0, 1, name, -1);
    int parts[2] = {a, c};
    snprintf(name, sizeof name, "%s.bn", base);
    return graph_bn(g, graph_concat(g, parts, 2), name, into);
}

/* One operation of a cell on x (C channels) into node `into` (< 0: new). */
static int cell_op(builder *b, int op, int x, int C, int stride, int idx, int into)
{
    char base[96], name[128];
    graph *g = b->g;
    snprintf(base, sizeof base, "%s._ops.%d", b->pfx, idx);
    switch (op) {
    case OP_MAX:
        return graph_maxpool(g, x, 3, stride, 1, into);
    case OP_AVG:
        return graph_avgpool(g, x, 3, stride, 1, 0, into);
    case OP_SKIP:
        return stride == 1 ? graph_add(g, x, into) : factorized_reduce(b, x, C, base, into);
    case OP_SEP3:
    case OP_SEP5: {
        /* SepConv: ReLU, dw k s, pw, BN, ReLU, dw k, pw, BN (op.1 .. op.7) */
        int k = op == OP_SEP3 ? 3 : 5;
        int h = x;
        for (int half = 0; half < 2; half++) {
            int o = half * 4;
            snprintf(name, sizeof name, "%s.op.%d", base, o + 1);
            h = graph_conv(g, h, C, k, half ? 1 : stride, k / 2, 1, C, 0, 1, name, -1);
            snprintf(name, sizeof name, "%s.op.%d", base, o + 2);
            h = graph_conv(g, h, C, 1, 1, 0, 1, 1, 0, 0, name, -1);
            snprintf(name, sizeof name, "%s.op.%d", base, o + 3);
            h = graph_bn(g, h, name, half ? into : -1);
        }
        return h;
    }
    case OP_DIL3:
    case OP_DIL5: {
        /* DilConv: ReLU, dw k s dilation 2, pw, BN (op.1 .. op.3) */
        int k = op == OP_DIL3 ? 3 : 5;
        snprintf(name, sizeof name, "%s.op.1", base);
        int h = graph_conv(g, x, C, k, stride, k - 1, 2, C, 0, 1, name, -1);
        snprintf(name, sizeof name, "%s.op.2", base);
        h = graph_conv(g, h, C, 1, 1, 0, 1, 1, 0, 0, name, -1);
        snprintf(name, sizeof name, "%s.op.3", base);
        return graph_bn(g, h, name, into);
    }
    }
    return -1;
}

int darts_net_build_sized(model *m, const backend *be, const uint8_t *edges, int nclass, int hw,
                          int C, int layers)
{
    memset(m, 0, sizeof *m);
    if (!darts_valid(edges))
        return rm_error("DARTS cell: every node must keep exactly 2 inputs, each with one of "
                        "the 7 operations");
    graph *g = model_start(m, be, nclass, hw);
    if (!g)
        return -1;
    darts_format(edges, m->name, sizeof m->name);
    builder b = {.g = g};
    int x = m->input;
    int cc = 3 * C;
    x = graph_conv(g, x, cc, 3, 1, 1, 1, 1, 0, 0, "stem.0", -1);
    x = graph_bn(g, x, "stem.1", -1);
    int s0 = x, s1 = x, c_cur = C, red_prev = 0, nfeat = 0;
    for (int i = 0; i < layers; i++) {
        int red = i == layers / 3 || i == 2 * layers / 3;
        if (red)
            c_cur *= 2;
        char name[128];
        snprintf(b.pfx, sizeof b.pfx, "cells.%d", i);
        snprintf(name, sizeof name, "%s.preprocess0", b.pfx);
        int p0 = red_prev ? factorized_reduce(&b, s0, c_cur, name, -1)
                          : relu_conv_bn(&b, s0, c_cur, name);
        snprintf(name, sizeof name, "%s.preprocess1", b.pfx);
        int p1 = relu_conv_bn(&b, s1, c_cur, name);
        int states[2 + DARTS_NODES] = {p0, p1};
        int idx = 0;
        for (int j = 0; j < DARTS_NODES; j++) {
            int node = -1;
            for (int k = 0; k < j + 2; k++) {
                int op = edges[darts_edge(j, k)];
                if (!op)
                    continue;
                int stride = red && k < 2 ? 2 : 1;
                node = cell_op(&b, op, states[k], c_cur, stride, idx++, node);
            }
            states[2 + j] = node;
        }
        int out = graph_concat(g, states + 2, DARTS_NODES);
        s0 = s1;
        s1 = out;
        red_prev = red;
        if ((i == 1 || i == 4 || i == 7) && nfeat < 3)
            model_feature(m, nfeat++, out);
    }
    if (nfeat != 3) {
        model_free(m);
        return rm_error("DARTS network: %d layers give no features at cells 1, 4 and 7", layers);
    }
    return model_finish(m, s1, "classifier", "the DARTS network");
}

int darts_net_build(model *m, const backend *be, const uint8_t *edges, int nclass, int hw)
{
    return darts_net_build_sized(m, be, edges, nclass, hw, 16, 8);
}

/* ---- genotype strings ---- */

void darts_format(const uint8_t *e, char *buf, size_t size)
{
    char cell[512];
    size_t o = 0;
    cell[0] = '\0';
    for (int j = 0; j < DARTS_NODES; j++)
        for (int k = 0; k < j + 2; k++) {
            int v = e[darts_edge(j, k)];
            if (v && o < sizeof cell)
                o += (size_t)snprintf(cell + o, sizeof cell - o, "%s('%s', %d)", o ? ", " : "",
                                      v <= DARTS_NOPS ? darts_op_names[v - 1] : "?", k);
        }
    snprintf(buf, size,
             "Genotype(normal=[%s], normal_concat=[2, 3, 4, 5], reduce=[%s], "
             "reduce_concat=[2, 3, 4, 5])",
             cell, cell);
}

typedef struct cursor {
    const char *s, *p;
} cursor;

static void ws(cursor *c)
{
    while (isspace((unsigned char)*c->p))
        c->p++;
}

static int lit(cursor *c, const char *t)
{
    ws(c);
    size_t n = strlen(t);
    if (strncmp(c->p, t, n))
        return 0;
    c->p += n;
    return 1;
}

static int expect(cursor *c, const char *t, const char *what)
{
    if (lit(c, t))
        return 0;
    ws(c);
    return rm_error("DARTS genotype: expected '%s' %s at offset %ld, found '%.12s'", t, what,
                    (long)(c->p - c->s), *c->p ? c->p : "(end)");
}

static int integer(cursor *c, long *v)
{
    ws(c);
    char *end;
    *v = strtol(c->p, &end, 10);
    if (end == c->p || !isdigit((unsigned char)*c->p))
        return rm_error("DARTS genotype: expected a number at offset %ld, found '%.12s'",
                        (long)(c->p - c->s), *c->p ? c->p : "(end)");
    c->p = end;
    return 0;
}

/* [('op', input), ...] (quotes optional: the shell may have removed them) into
 * 14 edges; two entries per node, in node order. */
static int cell_list(cursor *c, const char *field, uint8_t *e)
{
    char in[32];
    snprintf(in, sizeof in, "in %s", field);
    memset(e, 0, DARTS_EDGES);
    if (expect(c, "[", in) < 0)
        return -1;
    for (int i = 0; i < 2 * DARTS_NODES; i++) {
        int j = i / 2;
        if ((i && expect(c, ",", in) < 0) || expect(c, "(", in) < 0)
            return -1;
        ws(c);
        char q = *c->p == '\'' || *c->p == '"' ? *c->p++ : 0;
        size_t len = strcspn(c->p, q ? (q == '"' ? "\"" : "'") : ", \t)");
        int op = 0;
        for (int k = 0; k < DARTS_NOPS; k++)
            if (strlen(darts_op_names[k]) == len && !strncmp(c->p, darts_op_names[k], len))
                op = k + 1;
        if (!op)
            return rm_error("DARTS genotype: %s entry %d (node %d, offset %ld): unknown "
                            "operation '%.*s'; expected max_pool_3x3, avg_pool_3x3, "
                            "skip_connect, sep_conv_3x3, sep_conv_5x5, dil_conv_3x3 or "
                            "dil_conv_5x5",
                            field, i, j + 2, (long)(c->p - c->s), (int)len, c->p);
        c->p += len + (q && c->p[len] == q);
        long input;
        if (expect(c, ",", in) < 0 || integer(c, &input) < 0 || expect(c, ")", in) < 0)
            return -1;
        if (input < 0 || input > j + 1)
            return rm_error("DARTS genotype: %s entry %d: node %d can take input 0..%d, not %ld",
                            field, i, j + 2, j + 1, input);
        if (e[darts_edge(j, (int)input)])
            return rm_error("DARTS genotype: %s entry %d: node %d takes input %ld twice", field,
                            i, j + 2, input);
        e[darts_edge(j, (int)input)] = (uint8_t)op;
    }
    if (lit(c, ","))
        return rm_error("DARTS genotype: %s has more than %d entries (4 nodes x 2 inputs)",
                        field, 2 * DARTS_NODES);
    return expect(c, "]", in);
}

/* [2, 3, 4, 5] or range(2, 6) */
static int concat_list(cursor *c, const char *field)
{
    char in[32];
    snprintf(in, sizeof in, "in %s", field);
    if (lit(c, "range")) {
        long a, b;
        if (expect(c, "(", in) < 0 || integer(c, &a) < 0 || expect(c, ",", in) < 0 ||
            integer(c, &b) < 0 || expect(c, ")", in) < 0)
            return -1;
        if (a != 2 || b != 6)
            return rm_error("DARTS genotype: %s must be range(2, 6) (all 4 nodes)", field);
        return 0;
    }
    if (expect(c, "[", in) < 0)
        return -1;
    for (long i = 2; i <= 5; i++) {
        long v;
        if ((i > 2 && expect(c, ",", in) < 0) || integer(c, &v) < 0)
            return -1;
        if (v != i)
            return rm_error("DARTS genotype: %s must be [2, 3, 4, 5] (all 4 nodes)", field);
    }
    return expect(c, "]", in);
}

int darts_parse(const char *s, uint8_t *edges)
{
    cursor c = {s, s};
    uint8_t red[DARTS_EDGES];
    int have_normal = 0, have_reduce = 0;
    if (expect(&c, "Genotype", "(the form DARTS prints)") < 0 || expect(&c, "(", "") < 0)
        return -1;
    for (int f = 0; f < 4; f++) {
        if (f && !lit(&c, ","))
            break;
        ws(&c);
        if (lit(&c, "normal_concat")) {
            if (expect(&c, "=", "after normal_concat") < 0 || concat_list(&c, "normal_concat") < 0)
                return -1;
        } else if (lit(&c, "reduce_concat")) {
            if (expect(&c, "=", "after reduce_concat") < 0 || concat_list(&c, "reduce_concat") < 0)
                return -1;
        } else if (lit(&c, "normal")) {
            if (expect(&c, "=", "after normal") < 0 || cell_list(&c, "normal", edges) < 0)
                return -1;
            have_normal = 1;
        } else if (lit(&c, "reduce")) {
            if (expect(&c, "=", "after reduce") < 0 || cell_list(&c, "reduce", red) < 0)
                return -1;
            have_reduce = 1;
        } else {
            return rm_error("DARTS genotype: unknown field at offset %ld ('%.12s'); expected "
                            "normal, normal_concat, reduce or reduce_concat",
                            (long)(c.p - s), c.p);
        }
    }
    if (expect(&c, ")", "closing the genotype") < 0)
        return -1;
    ws(&c);
    if (*c.p)
        return rm_error("DARTS genotype: unexpected '%.12s' at offset %ld after the genotype",
                        c.p, (long)(c.p - s));
    if (!have_normal)
        return rm_error("DARTS genotype: no normal=[...] cell");
    if (have_reduce && memcmp(red, edges, DARTS_EDGES))
        return rm_error("DARTS genotype: reduce differs from normal; this space (RMI-NAS's) "
                        "uses one cell for both");
    return 0;
}
