#include "space/space.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "space/nb201.h"
#include "util/err.h"

/* NAS-Bench-201's (the chain space shares them) and DARTS's search settings */
static const char *const cell_settings[] = {"batch", "32", "gamma", "16", "steps", "150",
                                            "lr", "0.1", "wd", "5e-4", "trees", "30", NULL};
static const char *const darts_settings[] = {"batch", "128", "gamma", "16", "steps", "250",
                                             "lr", "0.025", "wd", "3e-4", "trees", "98", NULL};

const space *space_find(const char *name)
{
    const space *all[] = {&space_nb201, &space_darts, &space_chain};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(name, all[i]->name))
            return all[i];
    return NULL;
}

const space *space_get(const char *name)
{
    const space *sp = space_find(name);
    if (sp)
        return sp;
    rm_error("unknown search space '%s' (this rminas knows nb201, darts and chain)", name);
    return NULL;
}

void space_mode(const space *sp, const sarch *a, int n, sarch *out)
{
    memset(out, 0, sizeof *out);
    for (int p = 0; p < sp->npos; p++) {
        int cnt[SPACE_MAXCHOICE] = {0};
        for (int i = 0; i < n; i++)
            cnt[a[i].v[p]]++;
        int best = 0;
        for (int k = 1; k < sp->nchoice; k++)
            if (cnt[k] > cnt[best])
                best = k;
        out->v[p] = (uint8_t)best;
    }
}

void space_mutate(const space *sp, rng *r, const sarch *parent, sarch *child)
{
    if (sp->mutate) {
        sp->mutate(r, parent, child);
        return;
    }
    *child = *parent;
    int p = (int)rng_below(r, (uint64_t)sp->npos);
    int k = (int)rng_below(r, (uint64_t)sp->nchoice - 1);
    child->v[p] = (uint8_t)(k >= parent->v[p] ? k + 1 : k);
}

void space_select(const space *sp, const sarch *a, int n, sarch *out)
{
    if (sp->select)
        sp->select(a, n, out);
    else
        space_mode(sp, a, n, out);
}

void space_encode(const space *sp, const sarch *a, double *x)
{
    memset(x, 0, (size_t)sp->npos * sp->nchoice * sizeof *x);
    for (int p = 0; p < sp->npos; p++)
        x[p * sp->nchoice + a->v[p]] = 1;
}

uint64_t space_key(const space *sp, const sarch *a)
{
    uint64_t h = 1469598103934665603ULL;
    for (int p = 0; p < sp->npos; p++) {
        h ^= a->v[p];
        h *= 1099511628211ULL;
    }
    return h;
}

int space_equal(const space *sp, const sarch *a, const sarch *b)
{
    return !memcmp(a->v, b->v, (size_t)sp->npos);
}

/* Graphviz text appended to buf (o: its length so far; full once it overflowed). */
typedef struct dotbuf {
    char *buf;
    size_t size, o;
    int full;
} dotbuf;

static void put(dotbuf *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = d->full ? -1 : vsnprintf(d->buf + d->o, d->size - d->o, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= d->size - d->o)
        d->full = 1;
    else
        d->o += (size_t)k;
}

static int dot_end(dotbuf *d, const space *sp)
{
    put(d, "}\n");
    if (d->full)
        return rm_error("%s: the drawing does not fit in %zu bytes", sp->name, d->size);
    return 0;
}

static void dot_begin(dotbuf *d, const space *sp, const sarch *a, const char *name)
{
    char str[SPACE_STRLEN];
    sp->format(a, str, sizeof str);
    put(d, "// %s\ndigraph %s {\n  rankdir=LR;\n  node [shape=circle];\n", str, name);
}

/* ---- NAS-Bench-201 ---- */

static int nb_parse(const char *s, sarch *a)
{
    nb201_arch n;
    if (nb201_parse(s, &n) < 0)
        return -1;
    memset(a, 0, sizeof *a);
    memcpy(a->v, n.op, NB201_EDGES);
    return 0;
}

static void nb_format(const sarch *a, char *buf, size_t size)
{
    nb201_arch n;
    memcpy(n.op, a->v, NB201_EDGES);
    nb201_format(&n, buf, size);
}

static int nb_index(const sarch *a)
{
    nb201_arch n;
    memcpy(n.op, a->v, NB201_EDGES);
    return nb201_index(&n);
}

static void nb_unindex(int i, sarch *a)
{
    nb201_arch n;
    nb201_from_index(i, &n);
    memset(a, 0, sizeof *a);
    memcpy(a->v, n.op, NB201_EDGES);
}

static void nb_sample(rng *r, sarch *a)
{
    nb_unindex((int)rng_below(r, NB201_COUNT), a);
}

/* nodes 0..3, one labeled edge per operation that is not `none` */
static int nb_dot(const sarch *a, char *buf, size_t size)
{
    dotbuf d = {buf, size, 0, 0};
    dot_begin(&d, &space_nb201, a, "cell");
    put(&d, "  n0 [label=\"in\"];\n  n1 [label=\"1\"];\n  n2 [label=\"2\"];\n"
            "  n3 [label=\"out\", shape=doublecircle];\n");
    for (int e = 0; e < NB201_EDGES; e++)
        if (a->v[e] != NB201_NONE)
            put(&d, "  n%d -> n%d [label=\"%s\"];\n", nb201_edge_from[e], nb201_edge_to[e],
                nb201_op_names[a->v[e]]);
    return dot_end(&d, &space_nb201);
}

static int nb_build(model *m, const backend *be, const sarch *a, int nclass, int hw)
{
    nb201_arch n = sarch_to_nb201(a);
    return nb201_net_build(m, be, &n, nclass, hw);
}

const space space_nb201 = {
    .name = "nb201",
    .npos = NB201_EDGES,
    .nchoice = NB201_NOPS,
    .count = NB201_COUNT,
    .parse = nb_parse,
    .format = nb_format,
    .valid = NULL,
    .sample = nb_sample,
    .mutate = NULL,
    .select = NULL,
    .index = nb_index,
    .unindex = nb_unindex,
    .build = nb_build,
    .dot = nb_dot,
    .help = "NAS-Bench-201 cell, 4 nodes, 6 edges, 5 operations (none, skip_connect, "
            "nor_conv_1x1, nor_conv_3x3, avg_pool_3x3), 15625 architectures; strings "
            "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|",
    .settings = cell_settings,
};

/* ---- the MobileNet-like chain (models/chain_net.c) ---- */

static int ch_parse(const char *s, sarch *a)
{
    memset(a, 0, sizeof *a);
    return chain_parse(s, a->v);
}

static void ch_format(const sarch *a, char *buf, size_t size)
{
    chain_format(a->v, buf, size);
}

static void ch_sample(rng *r, sarch *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; i < CHAIN_LAYERS; i++)
        a->v[i] = (uint8_t)rng_below(r, CHAIN_NOPS);
}

/* the chain from the stem to the head, one box per layer (skips dashed) */
static int ch_dot(const sarch *a, char *buf, size_t size)
{
    dotbuf d = {buf, size, 0, 0};
    dot_begin(&d, &space_chain, a, "chain");
    put(&d, "  node [shape=box];\n  stem [label=\"stem 3x3, 16\"];\n");
    const char *prev = "stem";
    char name[16];
    for (int i = 0; i < CHAIN_LAYERS; i++) {
        int stage = i / CHAIN_PER_STAGE;
        if (i % CHAIN_PER_STAGE == 0 && stage > 0) {
            put(&d, "  down%d [label=\"k3e3 stride 2, %d\"];\n  %s -> down%d;\n", stage,
                16 << stage, prev, stage);
            snprintf(name, sizeof name, "down%d", stage);
            prev = name;
        }
        put(&d, "  l%d [label=\"%s\"%s];\n  %s -> l%d;\n", i, chain_op_names[a->v[i]],
            a->v[i] ? "" : ", style=dashed", prev, i);
        snprintf(name, sizeof name, "l%d", i);
        prev = name;
    }
    put(&d, "  head [label=\"BN, ReLU, pool, linear\"];\n  %s -> head;\n", prev);
    return dot_end(&d, &space_chain);
}

static int ch_build(model *m, const backend *be, const sarch *a, int nclass, int hw)
{
    return chain_net_build(m, be, a->v, nclass, hw);
}

const space space_chain = {
    .name = "chain",
    .npos = CHAIN_LAYERS,
    .nchoice = CHAIN_NOPS,
    .count = 0, /* 7^12 */
    .parse = ch_parse,
    .format = ch_format,
    .valid = NULL,
    .sample = ch_sample,
    .mutate = NULL,
    .select = NULL,
    .index = NULL,
    .unindex = NULL,
    .build = ch_build,
    .dot = ch_dot,
    .help = "MobileNet-like chain for 32x32 inputs: 3 stages (16, 32, 64 channels) of 4 "
            "layers, each skip or an inverted residual block k3e3, k3e6, k5e3, k5e6, k7e3 or "
            "k7e6 (kernel, expansion); 7^12 architectures; strings "
            "k3e3-skip-k5e6-k7e3|...|... (layers by '-', stages by '|')",
    .settings = cell_settings,
};

/* ---- DARTS (models/darts_net.c): 14 edges, 0 = not kept, 1..7 = operation ---- */

static int da_parse(const char *s, sarch *a)
{
    memset(a, 0, sizeof *a);
    return darts_parse(s, a->v);
}

static void da_format(const sarch *a, char *buf, size_t size)
{
    darts_format(a->v, buf, size);
}

static int da_valid(const sarch *a)
{
    return darts_valid(a->v);
}

/* Uniform: per node two distinct inputs, each with one of the 7 operations. */
static void da_sample(rng *r, sarch *a)
{
    memset(a, 0, sizeof *a);
    for (int j = 0; j < DARTS_NODES; j++) {
        int n = j + 2;
        int k1 = (int)rng_below(r, (uint64_t)n);
        int k2 = (int)rng_below(r, (uint64_t)n - 1);
        k2 += k2 >= k1;
        a->v[darts_edge(j, k1)] = (uint8_t)(1 + rng_below(r, DARTS_NOPS));
        a->v[darts_edge(j, k2)] = (uint8_t)(1 + rng_below(r, DARTS_NOPS));
    }
}

/* One kept edge of one node: another operation, or (half of the time, where
 * the node has a free input) the same operation from another input. */
static void da_mutate(rng *r, const sarch *parent, sarch *child)
{
    *child = *parent;
    int j = (int)rng_below(r, DARTS_NODES), n = j + 2;
    int kept[2] = {0, 1}, nk = 0, free_in[DARTS_NODES + 2], nf = 0;
    for (int k = 0; k < n; k++) {
        if (parent->v[darts_edge(j, k)] && nk < 2)
            kept[nk++] = k;
        else if (!parent->v[darts_edge(j, k)])
            free_in[nf++] = k;
    }
    int e = darts_edge(j, kept[rng_below(r, 2)]);
    if (nf && rng_below(r, 2)) {
        int to = darts_edge(j, free_in[rng_below(r, (uint64_t)nf)]);
        child->v[to] = parent->v[e];
        child->v[e] = 0;
    } else {
        int op = 1 + (int)rng_below(r, DARTS_NOPS - 1);
        child->v[e] = (uint8_t)(op >= parent->v[e] ? op + 1 : op);
    }
}

/* The vote (Theorem 1 per node): each node keeps the two inputs kept most
 * often, each with its most frequent operation among the architectures that
 * keep it; ties go to the lower input and the lower operation. */
static void da_select(const sarch *a, int n, sarch *out)
{
    memset(out, 0, sizeof *out);
    for (int j = 0; j < DARTS_NODES; j++) {
        int votes[DARTS_NODES + 2] = {0}, best[2] = {-1, -1};
        for (int i = 0; i < n; i++)
            for (int k = 0; k < j + 2; k++)
                votes[k] += a[i].v[darts_edge(j, k)] != 0;
        for (int t = 0; t < 2; t++)
            for (int k = 0; k < j + 2; k++)
                if (k != best[0] && (best[t] < 0 || votes[k] > votes[best[t]]))
                    best[t] = k;
        for (int t = 0; t < 2; t++) {
            int e = darts_edge(j, best[t]), cnt[DARTS_NOPS + 1] = {0}, op = 1;
            for (int i = 0; i < n; i++)
                cnt[a[i].v[e]]++;
            for (int k = 2; k <= DARTS_NOPS; k++)
                if (cnt[k] > cnt[op])
                    op = k;
            out->v[e] = (uint8_t)op;
        }
    }
}

/* DARTS's own drawing (its visualize.py): c_{k-2}, c_{k-1}, nodes 0..3, c_{k} */
static int da_dot(const sarch *a, char *buf, size_t size)
{
    dotbuf d = {buf, size, 0, 0};
    dot_begin(&d, &space_darts, a, "cell");
    put(&d, "  in0 [label=\"c_{k-2}\", shape=box];\n  in1 [label=\"c_{k-1}\", shape=box];\n"
            "  out [label=\"c_{k}\", shape=box];\n");
    for (int j = 0; j < DARTS_NODES; j++) {
        put(&d, "  n%d [label=\"%d\"];\n", j, j);
        for (int k = 0; k < j + 2; k++) {
            int v = a->v[darts_edge(j, k)];
            if (v)
                put(&d, "  %s%d -> n%d [label=\"%s\"];\n", k < 2 ? "in" : "n", k < 2 ? k : k - 2,
                    j, darts_op_names[v - 1]);
        }
        put(&d, "  n%d -> out;\n", j);
    }
    return dot_end(&d, &space_darts);
}

static int da_build(model *m, const backend *be, const sarch *a, int nclass, int hw)
{
    return darts_net_build(m, be, a->v, nclass, hw);
}

const space space_darts = {
    .name = "darts",
    .npos = DARTS_EDGES,
    .nchoice = DARTS_NOPS + 1,
    .count = 0, /* 180 * 7^8 */
    .parse = da_parse,
    .format = da_format,
    .valid = da_valid,
    .sample = da_sample,
    .mutate = da_mutate,
    .select = da_select,
    .index = NULL,
    .unindex = NULL,
    .build = da_build,
    .dot = da_dot,
    .help = "DARTS cell (one cell for normal and reduction cells), 4 nodes each keeping 2 of "
            "its inputs with one of 7 operations (max_pool_3x3, avg_pool_3x3, skip_connect, "
            "sep_conv_3x3/5x5, dil_conv_3x3/5x5); network C=16, 8 cells; about 1.0e9 cells; "
            "strings: DARTS's Genotype(normal=[('sep_conv_3x3', 0), ...], "
            "normal_concat=[2, 3, 4, 5], reduce=..., reduce_concat=...)",
    .settings = darts_settings,
};
