/* Static layer graph: building, parameters, planning, forward, backward. */
#include "nn/graph.h"

#include <math.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/rng.h"

enum op_kind {
    OP_CONV, OP_BN, OP_RELU, OP_AVGPOOL, OP_MAXPOOL, OP_GAP, OP_LINEAR,
    OP_SHORTCUT_A, OP_ADD, OP_ZEROS, OP_SLICE
};

typedef struct value {
    int c, h, w;
    int first, last;   /* first and last node touching it */
    int output;
    float *data, *grad;
} value;

typedef struct node {
    enum op_kind op;
    int in, out, acc;
    int w, b;          /* param indices (-1 none); BN: weight and bias */
    int rm, rv, cnt;   /* BN buffers */
    conv_desc cd;      /* conv: n filled at plan */
    pool_desc pd;
    int padc;          /* shortcut A */
    int off, step, yoff; /* slice: spatial offset and step, output channel offset */
    float *save;       /* BN: mean and invstd (2c), under the plan */
    int32_t *argmax;   /* max pool, under the plan */
} node;

typedef struct param {
    param_info info;
    char *name;
    int fan_in;        /* weights and biases */
    size_t off;        /* into the trainable arena or the buffer arena */
} param;

struct graph {
    const backend *be;
    value *v;
    int nv, cap_v;
    node *nd;
    int nn, cap_n;
    param *p;
    int np, cap_p;
    int input;
    int failed;        /* a builder call failed */
    /* parameters, allocated on first use */
    int params_ready;
    size_t n_train, n_buf;
    float *p_data, *p_grad, *p_mom, *b_data;
    int64_t *counts;   /* host, one per PARAM_BN_COUNT */
    int sgd_first;
    /* plan */
    int plan_cap;      /* batch size the buffers were sized for */
    int plan_n;        /* batch size of the next forward (<= plan_cap) */
    enum plan_mode plan_mode;
    void **bufs;
    int nbufs;
    size_t plan_bytes;
    float *work;
    int last_batch_stats;
};


/* ------------------------------------------------------------------ */
/* building                                                             */

/* Builder failures are sticky: a model builder checks graph_failed once. */
#define gfail(g, ...) ((g)->failed = 1, rm_error(__VA_ARGS__))

static void *grow(void *a, int *cap, int need, size_t elt)
{
    if (need <= *cap)
        return a;
    int nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    void *na = realloc(a, (size_t)nc * elt);
    if (!na)
        return NULL;
    memset((char *)na + (size_t)*cap * elt, 0, (size_t)(nc - *cap) * elt);
    *cap = nc;
    return na;
}

graph *graph_new(const backend *be)
{
    graph *g = calloc(1, sizeof *g);
    if (!g) {
        rm_error("out of memory");
        return NULL;
    }
    g->be = be;
    g->input = -1;
    return g;
}

const backend *graph_backend(const graph *g) { return g->be; }

int graph_failed(const graph *g) { return g->failed; }

static int check_open(graph *g)
{
    if (g->params_ready)
        return gfail(g, "graph: cannot add layers after the parameters were allocated");
    return 0;
}

static int new_value(graph *g, int c, int h, int w)
{
    value *nv = grow(g->v, &g->cap_v, g->nv + 1, sizeof *g->v);
    if (!nv)
        return gfail(g, "out of memory");
    g->v = nv;
    value *v = &g->v[g->nv];
    memset(v, 0, sizeof *v);
    v->c = c;
    v->h = h;
    v->w = w;
    v->first = v->last = -1;
    return g->nv++;
}

static void touch(graph *g, int vi, int ni)
{
    value *v = &g->v[vi];
    if (v->first < 0)
        v->first = ni;
    v->last = ni;
}

static node *new_node(graph *g, enum op_kind op, int in)
{
    node *nn = grow(g->nd, &g->cap_n, g->nn + 1, sizeof *g->nd);
    if (!nn) {
        gfail(g, "out of memory");
        return NULL;
    }
    g->nd = nn;
    node *n = &g->nd[g->nn];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->in = in;
    n->out = -1;
    n->w = n->b = n->rm = n->rv = n->cnt = -1;
    return n;
}

/* Attach the output: a new value of shape (c,h,w) or accumulation into
 * `into`, which must have that shape. Returns the value id or -1. */
static int set_output(graph *g, node *n, int c, int h, int w, int into)
{
    int ni = (int)(n - g->nd);
    if (into >= 0) {
        if (into >= g->nv)
            return gfail(g, "graph: no value %d", into);
        value *t = &g->v[into];
        if (t->c != c || t->h != h || t->w != w)
            return gfail(g, "graph: cannot add a %dx%dx%d result into a %dx%dx%d value",
                            c, h, w, t->c, t->h, t->w);
        n->out = into;
        n->acc = 1;
    } else {
        int o = new_value(g, c, h, w);
        if (o < 0)
            return -1;
        n->out = o;
        n->acc = 0;
    }
    if (n->in >= 0)
        touch(g, n->in, ni);
    touch(g, n->out, ni);
    g->nn++;
    return n->out;
}

static int add_param(graph *g, const char *prefix, const char *suffix,
                     enum param_kind kind, int ndim, const int64_t *shape, int fan_in)
{
    param *np = grow(g->p, &g->cap_p, g->np + 1, sizeof *g->p);
    if (!np)
        return gfail(g, "out of memory");
    g->p = np;
    param *p = &g->p[g->np];
    memset(p, 0, sizeof *p);
    size_t len = strlen(prefix) + strlen(suffix) + 2;
    p->name = malloc(len);
    if (!p->name)
        return gfail(g, "out of memory");
    snprintf(p->name, len, "%s%s%s", prefix, *prefix ? "." : "", suffix);
    p->info.name = p->name;
    p->info.kind = kind;
    p->info.ndim = ndim;
    p->info.numel = 1;
    for (int i = 0; i < ndim; i++) {
        p->info.shape[i] = shape[i];
        p->info.numel *= (size_t)shape[i];
    }
    p->fan_in = fan_in;
    return g->np++;
}

static int valid_in(graph *g, int x)
{
    if (x < 0)
        return g->failed = 1, -1; /* propagate an earlier error */
    if (x >= g->nv)
        return gfail(g, "graph: no value %d", x);
    return check_open(g);
}

int graph_input(graph *g, int c, int h, int w)
{
    if (check_open(g) < 0)
        return -1;
    if (g->input >= 0)
        return gfail(g, "graph: the input is already defined");
    g->input = new_value(g, c, h, w);
    return g->input;
}

int graph_conv(graph *g, int x, int cout, int k, int stride, int pad, int dil,
               int groups, int bias, int relu_in, const char *name, int into)
{
    if (valid_in(g, x) < 0)
        return -1;
    value *xv = &g->v[x];
    conv_desc d = {.n = 1, .cin = xv->c, .h = xv->h, .w = xv->w, .cout = cout,
                   .kh = k, .kw = k, .stride = stride, .pad = pad, .dil = dil,
                   .groups = groups, .relu_in = relu_in};
    if (conv_desc_init(&d) < 0)
        return g->failed = 1, rm_error_context("%s", name);
    node *n = new_node(g, OP_CONV, x);
    if (!n)
        return -1;
    n->cd = d;
    int fan_in = d.cin / groups * k * k;
    int64_t ws[4] = {cout, d.cin / groups, k, k};
    n->w = add_param(g, name, "weight", PARAM_WEIGHT, 4, ws, fan_in);
    if (n->w < 0)
        return -1;
    if (bias) {
        int64_t bs[1] = {cout};
        n->b = add_param(g, name, "bias", PARAM_BIAS, 1, bs, fan_in);
        if (n->b < 0)
            return -1;
    }
    return set_output(g, n, cout, d.oh, d.ow, into);
}

int graph_bn(graph *g, int x, const char *name, int into)
{
    if (valid_in(g, x) < 0)
        return -1;
    value *xv = &g->v[x];
    int c = xv->c, h = xv->h, w = xv->w;
    node *n = new_node(g, OP_BN, x);
    if (!n)
        return -1;
    int64_t s[1] = {c};
    n->w = add_param(g, name, "weight", PARAM_BN_WEIGHT, 1, s, 0);
    n->b = add_param(g, name, "bias", PARAM_BN_BIAS, 1, s, 0);
    n->rm = add_param(g, name, "running_mean", PARAM_BN_MEAN, 1, s, 0);
    n->rv = add_param(g, name, "running_var", PARAM_BN_VAR, 1, s, 0);
    n->cnt = add_param(g, name, "num_batches_tracked", PARAM_BN_COUNT, 0, s, 0);
    if (n->w < 0 || n->b < 0 || n->rm < 0 || n->rv < 0 || n->cnt < 0)
        return -1;
    return set_output(g, n, c, h, w, into);
}

int graph_relu(graph *g, int x)
{
    if (valid_in(g, x) < 0)
        return -1;
    node *n = new_node(g, OP_RELU, x);
    if (!n)
        return -1;
    int ni = g->nn;
    n->out = x;
    touch(g, x, ni);
    g->nn++;
    return x;
}

static int pool(graph *g, enum op_kind op, int x, int k, int stride, int pad,
                int count_include_pad, int into)
{
    if (valid_in(g, x) < 0)
        return -1;
    value *xv = &g->v[x];
    pool_desc d = {.n = 1, .c = xv->c, .h = xv->h, .w = xv->w, .k = k,
                   .stride = stride, .pad = pad,
                   .count_include_pad = count_include_pad};
    if (pool_desc_init(&d) < 0)
        return g->failed = 1, -1;
    node *n = new_node(g, op, x);
    if (!n)
        return -1;
    n->pd = d;
    return set_output(g, n, d.c, d.oh, d.ow, into);
}

int graph_avgpool(graph *g, int x, int k, int stride, int pad,
                  int count_include_pad, int into)
{
    return pool(g, OP_AVGPOOL, x, k, stride, pad, count_include_pad, into);
}

int graph_maxpool(graph *g, int x, int k, int stride, int pad, int into)
{
    return pool(g, OP_MAXPOOL, x, k, stride, pad, 1, into);
}

int graph_gap(graph *g, int x)
{
    if (valid_in(g, x) < 0)
        return -1;
    node *n = new_node(g, OP_GAP, x);
    if (!n)
        return -1;
    return set_output(g, n, g->v[x].c, 1, 1, -1);
}

int graph_linear(graph *g, int x, int out, const char *name)
{
    if (valid_in(g, x) < 0)
        return -1;
    value *xv = &g->v[x];
    int in = xv->c * xv->h * xv->w;
    node *n = new_node(g, OP_LINEAR, x);
    if (!n)
        return -1;
    int64_t ws[2] = {out, in}, bs[1] = {out};
    n->w = add_param(g, name, "weight", PARAM_WEIGHT, 2, ws, in);
    n->b = add_param(g, name, "bias", PARAM_BIAS, 1, bs, in);
    if (n->w < 0 || n->b < 0)
        return -1;
    return set_output(g, n, out, 1, 1, -1);
}

int graph_shortcut_a(graph *g, int x, int cout, int into)
{
    if (valid_in(g, x) < 0)
        return -1;
    value *xv = &g->v[x];
    if (cout < xv->c || (cout - xv->c) % 2 || xv->h % 2 || xv->w % 2)
        return gfail(g, "graph: option-A shortcut from %dx%dx%d to %d channels is not defined",
                        xv->c, xv->h, xv->w, cout);
    node *n = new_node(g, OP_SHORTCUT_A, x);
    if (!n)
        return -1;
    n->padc = (cout - xv->c) / 2;
    return set_output(g, n, cout, xv->h / 2, xv->w / 2, into);
}

int graph_add(graph *g, int x, int into)
{
    if (valid_in(g, x) < 0)
        return -1;
    value *xv = &g->v[x];
    node *n = new_node(g, OP_ADD, x);
    if (!n)
        return -1;
    return set_output(g, n, xv->c, xv->h, xv->w, into);
}

/* One strided channel copy of x into channels yoff.. of a (yc,oh,ow) value:
 * a new one (into < 0) or `into`, of which it overwrites only its channels. */
static int slice(graph *g, int x, int off, int step, int yc, int yoff, int into)
{
    value *xv = &g->v[x];
    int oh = (xv->h - off + step - 1) / step, ow = (xv->w - off + step - 1) / step;
    node *n = new_node(g, OP_SLICE, x);
    if (!n)
        return -1;
    n->off = off;
    n->step = step;
    n->yoff = yoff;
    int o = set_output(g, n, yc, oh, ow, into);
    if (o >= 0)
        g->nd[g->nn - 1].acc = 0;
    return o;
}

int graph_subsample(graph *g, int x, int off, int step)
{
    if (valid_in(g, x) < 0)
        return -1;
    value *xv = &g->v[x];
    if (step < 1 || off < 0 || off >= xv->h || off >= xv->w)
        return gfail(g, "graph: cannot subsample %dx%d from offset %d by %d", xv->h, xv->w,
                     off, step);
    return slice(g, x, off, step, xv->c, 0, -1);
}

int graph_concat(graph *g, const int *xs, int k)
{
    int c = 0;
    for (int i = 0; i < k; i++) {
        if (valid_in(g, xs[i]) < 0)
            return -1;
        const value *a = &g->v[xs[i]], *b = &g->v[xs[0]];
        if (a->h != b->h || a->w != b->w)
            return gfail(g, "graph: cannot concatenate a %dx%dx%d value with a %dx%dx%d one",
                         a->c, a->h, a->w, b->c, b->h, b->w);
        c += a->c;
    }
    if (k < 1)
        return gfail(g, "graph: nothing to concatenate");
    int out = -1;
    for (int i = 0, yoff = 0; i < k && !g->failed; yoff += g->v[xs[i]].c, i++)
        out = slice(g, xs[i], 0, 1, c, yoff, out);
    return g->failed ? -1 : out;
}

int graph_zeros(graph *g, int c, int h, int w)
{
    if (check_open(g) < 0)
        return -1;
    node *n = new_node(g, OP_ZEROS, -1);
    if (!n)
        return -1;
    return set_output(g, n, c, h, w, -1);
}

void graph_mark_output(graph *g, int v)
{
    if (v >= 0 && v < g->nv)
        g->v[v].output = 1;
}

/* ------------------------------------------------------------------ */
/* parameters                                                           */

static int is_trainable(enum param_kind k)
{
    return k == PARAM_WEIGHT || k == PARAM_BIAS || k == PARAM_BN_WEIGHT ||
           k == PARAM_BN_BIAS;
}

static int params_alloc(graph *g)
{
    if (g->params_ready)
        return 0;
    size_t nt = 0, nb = 0;
    int nc = 0;
    for (int i = 0; i < g->np; i++) {
        param *p = &g->p[i];
        if (is_trainable(p->info.kind)) {
            p->off = nt;
            nt += p->info.numel;
        } else if (p->info.kind == PARAM_BN_COUNT) {
            p->off = (size_t)nc++;
        } else {
            p->off = nb;
            nb += p->info.numel;
        }
    }
    const backend *be = g->be;
    rm_clear_error(); /* the backend's reason, if it gives one, follows ours */
    g->p_data = be->alloc((nt ? nt : 1) * sizeof(float));
    g->p_grad = be->alloc((nt ? nt : 1) * sizeof(float));
    g->p_mom = be->alloc((nt ? nt : 1) * sizeof(float));
    g->b_data = be->alloc((nb ? nb : 1) * sizeof(float));
    g->counts = calloc(nc ? (size_t)nc : 1, sizeof(int64_t));
    if (!g->p_data || !g->p_grad || !g->p_mom || !g->b_data || !g->counts)
        return rm_error_alloc("%zu parameters", nt + nb);
    g->n_train = nt;
    g->n_buf = nb;
    g->params_ready = 1;
    g->sgd_first = 1;
    return 0;
}

static float *param_ptr(graph *g, int i)
{
    param *p = &g->p[i];
    if (i < 0)
        return NULL;
    if (is_trainable(p->info.kind))
        return g->p_data + p->off;
    return g->b_data + p->off;
}

static float *param_grad_ptr(graph *g, int i)
{
    return i < 0 ? NULL : g->p_grad + g->p[i].off;
}

int graph_num_params(const graph *g) { return g->np; }

const param_info *graph_param(const graph *g, int i)
{
    return i >= 0 && i < g->np ? &g->p[i].info : NULL;
}

size_t graph_count_trainable(const graph *g)
{
    size_t n = 0;
    for (int i = 0; i < g->np; i++)
        if (is_trainable(g->p[i].info.kind))
            n += g->p[i].info.numel;
    return n;
}

int64_t graph_count_macs(const graph *g)
{
    int64_t total = 0;
    for (int i = 0; i < g->nn; i++) {
        const node *n = &g->nd[i];
        const value *o = &g->v[n->out];
        int64_t out_elems = (int64_t)o->c * o->h * o->w;
        switch (n->op) {
        case OP_CONV: {
            const conv_desc *d = &n->cd;
            int64_t per_pos = (int64_t)d->kh * d->kw * d->cin * d->cout / d->groups;
            int64_t active = (int64_t)d->oh * d->ow;
            total += per_pos * active + (n->b >= 0 ? d->cout * active : 0);
            break;
        }
        case OP_LINEAR: {
            const value *x = &g->v[n->in];
            total += (int64_t)x->c * x->h * x->w * o->c + o->c;
            break;
        }
        case OP_AVGPOOL:
        case OP_MAXPOOL:
            total += (int64_t)n->pd.k * n->pd.k * out_elems;
            break;
        default:
            break;
        }
    }
    return total;
}

int graph_init_params(graph *g, uint64_t seed)
{
    if (params_alloc(g) < 0)
        return -1;
    rng r;
    rng_seed(&r, seed);
    size_t maxn = 1;
    for (int i = 0; i < g->np; i++)
        if (g->p[i].info.numel > maxn)
            maxn = g->p[i].info.numel;
    float *host = malloc(maxn * sizeof(float));
    if (!host)
        return rm_error("out of memory");
    for (int i = 0; i < g->np; i++) {
        param *p = &g->p[i];
        size_t n = p->info.numel;
        switch (p->info.kind) {
        case PARAM_WEIGHT:
        case PARAM_BIAS: {
            double bound = 1.0 / sqrt((double)p->fan_in);
            for (size_t j = 0; j < n; j++)
                host[j] = (float)((2.0 * rng_uniform(&r) - 1.0) * bound);
            break;
        }
        case PARAM_BN_WEIGHT:
        case PARAM_BN_VAR:
            for (size_t j = 0; j < n; j++)
                host[j] = 1.0f;
            break;
        default:
            for (size_t j = 0; j < n; j++)
                host[j] = 0.0f;
            break;
        }
        graph_param_set(g, i, host);
    }
    free(host);
    graph_reset_optimizer(g);
    return 0;
}

int graph_param_get(graph *g, int i, float *host)
{
    if (params_alloc(g) < 0)
        return -1;
    if (i < 0 || i >= g->np)
        return rm_error("graph: no parameter %d", i);
    param *p = &g->p[i];
    if (p->info.kind == PARAM_BN_COUNT)
        host[0] = (float)g->counts[p->off];
    else
        g->be->download(host, param_ptr(g, i), p->info.numel * sizeof(float));
    return 0;
}

int graph_param_set(graph *g, int i, const float *host)
{
    if (params_alloc(g) < 0)
        return -1;
    if (i < 0 || i >= g->np)
        return rm_error("graph: no parameter %d", i);
    param *p = &g->p[i];
    if (p->info.kind == PARAM_BN_COUNT)
        g->counts[p->off] = (int64_t)host[0];
    else
        g->be->upload(param_ptr(g, i), host, p->info.numel * sizeof(float));
    return 0;
}

size_t graph_param_bytes(const graph *g)
{
    return (3 * g->n_train + g->n_buf) * sizeof(float);
}

/* ------------------------------------------------------------------ */
/* planning                                                             */

static void plan_release(graph *g)
{
    for (int i = 0; i < g->nbufs; i++)
        g->be->free(g->bufs[i]);
    free(g->bufs);
    g->bufs = NULL;
    g->nbufs = 0;
    g->work = NULL;
    g->plan_n = g->plan_cap = 0;
    g->plan_bytes = 0;
    for (int i = 0; i < g->nv; i++)
        g->v[i].data = g->v[i].grad = NULL;
    for (int i = 0; i < g->nn; i++) {
        g->nd[i].save = NULL;
        g->nd[i].argmax = NULL;
        g->nd[i].cd.keep = NULL;
    }
}

void graph_free(graph *g)
{
    if (!g)
        return;
    plan_release(g);
    if (g->params_ready) {
        g->be->free(g->p_data);
        g->be->free(g->p_grad);
        g->be->free(g->p_mom);
        g->be->free(g->b_data);
    }
    free(g->counts);
    for (int i = 0; i < g->np; i++)
        free(g->p[i].name);
    free(g->p);
    free(g->v);
    free(g->nd);
    free(g);
#ifdef __GLIBC__
    /* a ranking or a search builds one network after another: hand the
     * freed heap back, or a large network after small ones lands on fresh
     * pages while the old ones stay resident (6 architectures, the largest
     * last: 298 MB peak without this, 260 MB with it or in another order) */
    malloc_trim(0);
#endif
}

/* A buffer of the plan from the backend; NULL with rm_error cleared or set
 * by the backend (CUDA: what it asked and what the GPU has free). */
static void *plan_alloc(graph *g, size_t bytes)
{
    rm_clear_error();
    void **nb = realloc(g->bufs, (size_t)(g->nbufs + 1) * sizeof *nb);
    if (!nb)
        return NULL;
    g->bufs = nb;
    void *p = g->be->alloc(bytes ? bytes : 16);
    if (!p)
        return NULL;
    g->bufs[g->nbufs++] = p;
    g->plan_bytes += bytes;
    return p;
}

/* A failed plan_alloc of bytes for what: -1 with the error, the backend's
 * own reason after it where it gave one. */
static int plan_oom(const char *what, size_t bytes)
{
    return rm_error_alloc("%s (%zu bytes)", what, bytes);
}

/* Interval allocation: value i needs size[i] floats over [start[i], end[i]]
 * (inclusive, in some time order); values whose intervals do not overlap
 * share a buffer. Greedy in order of start, best fit among free buffers. */
typedef struct slot {
    float *p;
    size_t size;
    int busy_until;
} slot;

static _Thread_local const int *cmp_start; /* qsort has no context argument */
static int by_start(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    if (cmp_start[x] != cmp_start[y])
        return cmp_start[x] < cmp_start[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int assign_buffers(graph *g, int count, const int *start, const int *end,
                          const size_t *size, float **out)
{
    int *order = malloc((size_t)count * sizeof *order);
    slot *slots = malloc((size_t)count * sizeof *slots);
    int nslots = 0, rc = 0;
    if (!order || !slots) {
        rc = rm_error("out of memory");
        goto done;
    }
    int k = 0;
    for (int i = 0; i < count; i++)
        if (size[i])
            order[k++] = i;
    cmp_start = start;
    qsort(order, (size_t)k, sizeof *order, by_start);
    for (int oi = 0; oi < k; oi++) {
        int i = order[oi];
        int best = -1;
        for (int s = 0; s < nslots; s++) {
            if (slots[s].busy_until >= start[i] || slots[s].size < size[i])
                continue;
            if (best < 0 || slots[s].size < slots[best].size)
                best = s;
        }
        if (best < 0) {
            float *p = plan_alloc(g, size[i] * sizeof(float));
            if (!p) {
                rc = plan_oom("activations", size[i] * sizeof(float));
                goto done;
            }
            best = nslots++;
            slots[best].p = p;
            slots[best].size = size[i];
        }
        slots[best].busy_until = end[i];
        out[i] = slots[best].p;
    }
done:
    free(order);
    free(slots);
    return rc;
}

int graph_plan(graph *g, int n, enum plan_mode mode)
{
    if (g->failed)
        return rm_error("graph: the network was not built completely");
    if (g->input < 0)
        return rm_error("graph: no input defined");
    if (n <= 0)
        return rm_error("graph: batch size must be positive (got %d)", n);
    if (params_alloc(g) < 0)
        return -1;
    if (g->plan_cap == n && g->plan_mode == mode)
        return graph_set_batch(g, n);
    plan_release(g);
    int nv = g->nv, nn = g->nn;
    int *start = calloc((size_t)nv, sizeof *start);
    int *end = calloc((size_t)nv, sizeof *end);
    size_t *size = calloc((size_t)nv, sizeof *size);
    float **ptr = calloc((size_t)nv, sizeof *ptr);
    int rc = 0;
    if (!start || !end || !size || !ptr) {
        rc = rm_error("out of memory");
        goto done;
    }
    /* activations */
    for (int i = 0; i < nv; i++) {
        value *v = &g->v[i];
        size[i] = (size_t)n * v->c * v->h * v->w;
        start[i] = i == g->input ? -1 : v->first;
        end[i] = v->output ? nn : v->last;
        if (v->first < 0 && i != g->input)
            size[i] = 0;   /* unused value */
    }
    if (mode == PLAN_TRAIN) {
        /* the backward needs every activation: one buffer each */
        for (int i = 0; i < nv; i++) {
            if (!size[i])
                continue;
            ptr[i] = plan_alloc(g, size[i] * sizeof(float));
            if (!ptr[i]) {
                rc = plan_oom("activations", size[i] * sizeof(float));
                goto done;
            }
        }
    } else if (assign_buffers(g, nv, start, end, size, ptr) < 0) {
        rc = -1;
        goto done;
    }
    for (int i = 0; i < nv; i++)
        g->v[i].data = ptr[i];
    /* gradients, in backward time t = nn - 1 - node: live from the last
     * node touching the value (outputs: from the start) to the first. */
    if (mode == PLAN_TRAIN) {
        memset(ptr, 0, (size_t)nv * sizeof *ptr);
        for (int i = 0; i < nv; i++) {
            value *v = &g->v[i];
            if (i == g->input || v->first < 0) {
                size[i] = 0;
                continue;
            }
            start[i] = v->output ? -1 : nn - 1 - v->last;
            end[i] = nn - 1 - v->first;
        }
        if (assign_buffers(g, nv, start, end, size, ptr) < 0) {
            rc = -1;
            goto done;
        }
        for (int i = 0; i < nv; i++)
            g->v[i].grad = ptr[i];
    }
    /* per-node state and scratch */
    size_t work = 0;
    for (int i = 0; i < nn; i++) {
        node *d = &g->nd[i];
        if (d->op == OP_CONV) {
            d->cd.n = n;
            size_t ws = g->be->conv_work_size(&d->cd);
            if (ws > work)
                work = ws;
            if (d->cd.relu_in && mode == PLAN_TRAIN && g->be->conv_keeps_relu) {
                const value *x = &g->v[d->in];
                const size_t kb = (size_t)n * x->c * x->h * x->w * sizeof(float);
                d->cd.keep = plan_alloc(g, kb);
                if (!d->cd.keep) {
                    rc = plan_oom("a convolution's kept ReLU", kb);
                    goto done;
                }
            }
        } else if (d->op == OP_BN) {
            d->save = plan_alloc(g, 2 * (size_t)g->v[d->in].c * sizeof(float));
            if (!d->save) {
                rc = plan_oom("batch-norm statistics", 2 * (size_t)g->v[d->in].c * sizeof(float));
                goto done;
            }
        } else if (d->op == OP_MAXPOOL || d->op == OP_AVGPOOL) {
            d->pd.n = n;
            if (d->op == OP_MAXPOOL) {
                const size_t ab = graph_value_numel(g, d->out) * n * sizeof(int32_t);
                d->argmax = plan_alloc(g, ab);
                if (!d->argmax) {
                    rc = plan_oom("max-pool indices", ab);
                    goto done;
                }
            }
        }
    }
    if (work) {
        g->work = plan_alloc(g, work * sizeof(float));
        if (!g->work) {
            rc = plan_oom("convolution scratch", work * sizeof(float));
            goto done;
        }
    }
    g->plan_n = g->plan_cap = n;
    g->plan_mode = mode;
done:
    if (rc < 0)
        plan_release(g);
    free(start);
    free(end);
    free(size);
    free(ptr);
    return rc;
}

void graph_unplan(graph *g) { plan_release(g); }

int graph_batch(const graph *g) { return g->plan_n; }

int graph_set_batch(graph *g, int n)
{
    if (n <= 0 || n > g->plan_cap)
        return rm_error("graph: batch of %d does not fit the plan (at most %d)", n, g->plan_cap);
    g->plan_n = n;
    for (int i = 0; i < g->nn; i++) {
        g->nd[i].cd.n = n;
        g->nd[i].pd.n = n;
    }
    return 0;
}
float *graph_data(graph *g, int v) { return v >= 0 && v < g->nv ? g->v[v].data : NULL; }
float *graph_grad(graph *g, int v) { return v >= 0 && v < g->nv ? g->v[v].grad : NULL; }
int graph_input_value(const graph *g) { return g->input; }

void graph_value_shape(const graph *g, int v, int *c, int *h, int *w)
{
    *c = g->v[v].c;
    *h = g->v[v].h;
    *w = g->v[v].w;
}

size_t graph_value_numel(const graph *g, int v)
{
    return (size_t)g->v[v].c * g->v[v].h * g->v[v].w;
}

size_t graph_plan_bytes(const graph *g) { return g->plan_bytes; }

/* ------------------------------------------------------------------ */
/* running                                                              */

int graph_forward(graph *g, enum bn_mode mode)
{
    int batch_stats = mode != BN_EVAL, update = mode == BN_TRAIN;
    if (!g->plan_n)
        return rm_error("graph: not planned");
    const backend *be = g->be;
    int n = g->plan_n;
    for (int i = 0; i < g->nn; i++) {
        node *d = &g->nd[i];
        value *x = d->in >= 0 ? &g->v[d->in] : NULL;
        value *y = &g->v[d->out];
        size_t ny = (size_t)n * y->c * y->h * y->w;
        switch (d->op) {
        case OP_CONV:
            be->conv2d_forward(&d->cd, x->data, param_ptr(g, d->w), param_ptr(g, d->b),
                               y->data, d->acc, g->work);
            break;
        case OP_BN:
            if (batch_stats) {
                be->bn_forward_train(n, x->c, x->h * x->w, x->data, param_ptr(g, d->w),
                                     param_ptr(g, d->b), y->data, d->acc, d->save,
                                     d->save + x->c, update ? param_ptr(g, d->rm) : NULL,
                                     update ? param_ptr(g, d->rv) : NULL, 0.1f, 1e-5f);
                g->counts[g->p[d->cnt].off] += update;
            } else {
                be->bn_forward_eval(n, x->c, x->h * x->w, x->data, param_ptr(g, d->w),
                                    param_ptr(g, d->b), y->data, d->acc,
                                    param_ptr(g, d->rm), param_ptr(g, d->rv), 1e-5f);
            }
            break;
        case OP_RELU:
            be->relu_forward(y->data, y->data, ny);
            break;
        case OP_AVGPOOL:
            be->avgpool_forward(&d->pd, x->data, y->data, d->acc);
            break;
        case OP_MAXPOOL:
            be->maxpool_forward(&d->pd, x->data, y->data, d->acc, d->argmax);
            break;
        case OP_GAP:
            be->gap_forward(n, x->c, x->h * x->w, x->data, y->data);
            break;
        case OP_LINEAR:
            be->linear_forward(n, x->c * x->h * x->w, y->c, x->data, param_ptr(g, d->w),
                               param_ptr(g, d->b), y->data);
            break;
        case OP_SHORTCUT_A:
            be->shortcut_a_forward(n, x->c, x->h, x->w, d->padc, x->data, y->data, d->acc);
            break;
        case OP_ADD:
            be->axpy(y->data, x->data, 1.0f, ny, d->acc);
            break;
        case OP_ZEROS:
            be->zero(y->data, ny);
            break;
        case OP_SLICE:
            be->slice_forward(n, x->c, x->h, x->w, d->off, d->step, x->data, y->c, d->yoff,
                              y->data, d->acc);
            break;
        }
    }
    g->last_batch_stats = batch_stats;
    return 0;
}

void graph_zero_output_grads(graph *g)
{
    for (int i = 0; i < g->nv; i++)
        if (g->v[i].output && g->v[i].grad)
            g->be->zero(g->v[i].grad, (size_t)g->plan_n * graph_value_numel(g, i));
}

void graph_zero_param_grads(graph *g)
{
    if (g->params_ready)
        g->be->zero(g->p_grad, g->n_train);
}

int graph_backward(graph *g)
{
    if (!g->plan_n || g->plan_mode != PLAN_TRAIN)
        return rm_error("graph: backward needs a training plan");
    if (!g->last_batch_stats)
        return rm_error("graph: backward needs a forward with batch statistics");
    const backend *be = g->be;
    int n = g->plan_n;
    for (int i = g->nn - 1; i >= 0; i--) {
        /* gradients whose live range starts here begin at zero */
        node *d = &g->nd[i];
        value *y = &g->v[d->out];
        if (y->last == i && !y->output && y->grad)
            be->zero(y->grad, (size_t)n * graph_value_numel(g, d->out));
        value *x = d->in >= 0 ? &g->v[d->in] : NULL;
        /* x's gradient starts here: the ops that can overwrite it do (a
         * convolution, batch norm, an add's copy), the others add into zeros */
        const int fresh = x && x->last == i && !x->output && x->grad && d->in != d->out;
        const int overwrites = d->op == OP_CONV || d->op == OP_BN || d->op == OP_ADD;
        if (fresh && !overwrites)
            be->zero(x->grad, (size_t)n * graph_value_numel(g, d->in));
        float *dx = x ? x->grad : NULL;
        size_t ny = (size_t)n * y->c * y->h * y->w;
        switch (d->op) {
        case OP_CONV:
            be->conv2d_backward(&d->cd, x->data, param_ptr(g, d->w), y->grad, dx,
                                param_grad_ptr(g, d->w), param_grad_ptr(g, d->b), g->work, !fresh);
            break;
        case OP_BN:
            be->bn_backward(n, x->c, x->h * x->w, x->data, param_ptr(g, d->w), d->save,
                            d->save + x->c, y->grad, dx, param_grad_ptr(g, d->w),
                            param_grad_ptr(g, d->b), !fresh);
            break;
        case OP_RELU:
            be->relu_backward(y->data, y->grad, y->grad, ny);
            break;
        case OP_AVGPOOL:
            if (dx)
                be->avgpool_backward(&d->pd, y->grad, dx);
            break;
        case OP_MAXPOOL:
            if (dx)
                be->maxpool_backward(&d->pd, y->grad, d->argmax, dx);
            break;
        case OP_GAP:
            if (dx)
                be->gap_backward(n, x->c, x->h * x->w, y->grad, dx);
            break;
        case OP_LINEAR:
            be->linear_backward(n, x->c * x->h * x->w, y->c, x->data, param_ptr(g, d->w),
                                y->grad, dx, param_grad_ptr(g, d->w),
                                param_grad_ptr(g, d->b));
            break;
        case OP_SHORTCUT_A:
            if (dx)
                be->shortcut_a_backward(n, x->c, x->h, x->w, d->padc, y->grad, dx);
            break;
        case OP_ADD:
            if (dx)
                be->axpy(dx, y->grad, 1.0f, ny, !fresh);
            break;
        case OP_ZEROS:
            break;
        case OP_SLICE:
            if (dx)
                be->slice_backward(n, x->c, x->h, x->w, d->off, d->step, y->grad, y->c,
                                   d->yoff, dx);
            break;
        }
    }
    return 0;
}

void graph_reset_optimizer(graph *g) { g->sgd_first = 1; }

void graph_sgd_step(graph *g, float lr, float momentum, float wd, const double *unless,
                    int nunless)
{
    if (!g->params_ready)
        return;
    g->be->sgd_step(g->p_data, g->p_grad, g->p_mom, g->n_train, lr, momentum, wd,
                    g->sgd_first, unless, nunless);
    g->sgd_first = 0;
}
