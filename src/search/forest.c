#include "search/forest.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/rng.h"

/* Values closer than this count as equal (sklearn's FEATURE_THRESHOLD). */
#define FEATURE_THRESHOLD 1e-7

#define FOREST_MAGIC "RMFOREST"
#define FOREST_VERSION 1u
#define HEADER_BYTES (8 + 4 * 4)

typedef struct tree_node {
    int feature; /* -1 for a leaf */
    int left, right;
    double threshold; /* x[feature] <= threshold goes left */
} tree_node;

typedef struct tree {
    int n_nodes, cap;
    tree_node *nodes; /* n_nodes, pre-order */
    double *value;    /* n_nodes x n_classes, class fractions of each node */
} tree;

struct forest {
    int n_trees, n_features, n_classes;
    tree *trees;
};

void forest_opts_default(forest_opts *o)
{
    o->n_trees = 30;
    o->max_features = 0;
    o->bootstrap = 1;
    o->max_depth = 0;
    o->min_samples_split = 2;
    o->seed = 0;
}

int forest_n_features(const forest *f) { return f->n_features; }
int forest_n_classes(const forest *f) { return f->n_classes; }

void forest_free(forest *f)
{
    if (!f)
        return;
    if (f->trees)
        for (int t = 0; t < f->n_trees; t++) {
            free(f->trees[t].nodes);
            free(f->trees[t].value);
        }
    free(f->trees);
    free(f);
}

static forest *forest_alloc(int n_trees, int n_features, int n_classes)
{
    forest *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->n_trees = n_trees;
    f->n_features = n_features;
    f->n_classes = n_classes;
    f->trees = calloc((size_t)n_trees, sizeof *f->trees);
    if (!f->trees) {
        free(f);
        return NULL;
    }
    return f;
}

/* Append a node with the given class fractions; returns its index or -1. */
static int tree_add_node(tree *t, int n_classes, const double *value)
{
    if (t->n_nodes == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        tree_node *nodes = realloc(t->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes)
            return -1;
        t->nodes = nodes;
        double *v = realloc(t->value, (size_t)cap * n_classes * sizeof *v);
        if (!v)
            return -1;
        t->value = v;
        t->cap = cap;
    }
    int id = t->n_nodes++;
    t->nodes[id] = (tree_node){.feature = -1, .left = -1, .right = -1, .threshold = 0};
    memcpy(t->value + (size_t)id * n_classes, value, (size_t)n_classes * sizeof *value);
    return id;
}

/* ---- fitting ---- */

typedef struct sort_pair {
    double v;
    int s;
} sort_pair;

static int by_value(const void *a, const void *b)
{
    const sort_pair *p = a, *q = b;
    if (p->v != q->v)
        return p->v < q->v ? -1 : 1;
    return (p->s > q->s) - (p->s < q->s);
}

/* State of one tree's growth; the work arrays are shared by all trees. */
typedef struct builder {
    const double *x; /* n x d */
    const int *y;
    int d, n_classes;
    int max_features, max_depth, min_samples_split;
    rng r;
    double *weight;         /* n: times drawn into the bootstrap */
    int *samples;           /* the m distinct drawn samples; a node owns a range */
    sort_pair *pairs;       /* m */
    int *features;          /* d: sklearn's feature permutation */
    int *constant_features; /* d */
    double *count, *count_left; /* n_classes, weighted */
} builder;

typedef struct split {
    int feature, pos; /* pos = end: no split */
    double threshold;
} split;

typedef struct stack_entry {
    int start, end, depth, parent, is_left, n_constant;
} stack_entry;

/* pairs[start:end) = feature feat of samples[start:end), ascending by
 * value. A feature with at most two distinct values in the node (every
 * one-hot feature of an architecture encoding) is split into its two runs
 * in one pass instead of sorted: the order within a run of equal values
 * changes nothing in node_split, which reads the class weights (whole
 * numbers, summed exactly in any order) only at the ends of runs. */
static void sort_by_value(builder *b, int feat, int start, int end)
{
    sort_pair *pv = b->pairs;
    const double first = b->x[(size_t)b->samples[start] * b->d + feat];
    double other = first;
    int two = 1, n_first = 0;
    for (int i = start; i < end && two; i++) {
        const double v = b->x[(size_t)b->samples[i] * b->d + feat];
        if (v == first)
            n_first++;
        else if (other == first)
            other = v;
        else
            two = v == other;
    }
    if (!two) {
        for (int i = start; i < end; i++)
            pv[i] = (sort_pair){b->x[(size_t)b->samples[i] * b->d + feat], b->samples[i]};
        qsort(pv + start, (size_t)(end - start), sizeof *pv, by_value);
        return;
    }
    const double small = first < other ? first : other;
    sort_pair *lo = pv + start, *hi = lo + (first <= other ? n_first : end - start - n_first);
    for (int i = start; i < end; i++) {
        const int s = b->samples[i];
        const double v = b->x[(size_t)s * b->d + feat];
        *(v == small ? lo++ : hi++) = (sort_pair){v, s};
    }
}

static void swap_int(int *a, int i, int j)
{
    int t = a[i];
    a[i] = a[j];
    a[j] = t;
}

/* Best split of samples[start:end) (b->count holds the node's class weights,
 * wn their sum); sklearn's BestSplitter.node_split. On entry features[0:
 * *n_constant) are the features known to be constant here, in the order
 * the parent left them; on return *n_constant counts the newly found ones
 * too, and features[0:*n_constant) lists them all. */
static void node_split(builder *b, int start, int end, double wn, int *n_constant, split *best)
{
    int *features = b->features, *constant = b->constant_features;
    int n_known = *n_constant, n_total = n_known;
    int n_found = 0, n_drawn = 0, n_visited = 0, f_i = b->d;
    double best_proxy = -INFINITY;
    sort_pair *pv = b->pairs;

    best->pos = end;
    while (f_i > n_total && (n_visited < b->max_features || n_visited <= n_found + n_drawn)) {
        n_visited++;
        int f_j = n_drawn + (int)rng_below(&b->r, (uint64_t)(f_i - n_found - n_drawn));
        if (f_j < n_known) {
            swap_int(features, n_drawn, f_j);
            n_drawn++;
            continue;
        }
        f_j += n_found;
        int feat = features[f_j];
        sort_by_value(b, feat, start, end);
        if (pv[end - 1].v <= pv[start].v + FEATURE_THRESHOLD) {
            swap_int(features, f_j, n_total);
            n_found++;
            n_total++;
            continue;
        }
        f_i--;
        swap_int(features, f_i, f_j);

        /* Move samples left one by one; a split may fall after the last of a
         * run of equal values. proxy = sum_k cl_k^2/wl + sum_k cr_k^2/wr
         * orders splits as the weighted Gini decrease does. */
        double *cl = b->count_left, wl = 0;
        memset(cl, 0, (size_t)b->n_classes * sizeof *cl);
        for (int i = start; i < end - 1; i++) {
            double w = b->weight[pv[i].s];
            cl[b->y[pv[i].s]] += w;
            wl += w;
            if (pv[i + 1].v <= pv[i].v + FEATURE_THRESHOLD)
                continue;
            double wr = wn - wl, sl = 0, sr = 0;
            for (int k = 0; k < b->n_classes; k++) {
                double cr = b->count[k] - cl[k];
                sl += cl[k] * cl[k];
                sr += cr * cr;
            }
            double proxy = sl / wl + sr / wr;
            if (proxy > best_proxy) {
                best_proxy = proxy;
                double thr = pv[i].v / 2.0 + pv[i + 1].v / 2.0;
                if (thr == pv[i + 1].v || isinf(thr))
                    thr = pv[i].v;
                *best = (split){.feature = feat, .pos = i + 1, .threshold = thr};
            }
        }
    }

    if (best->pos < end) {
        int i = start, j = end;
        while (i < j) {
            if (b->x[(size_t)b->samples[i] * b->d + best->feature] <= best->threshold)
                i++;
            else
                swap_int(b->samples, i, --j);
        }
    }
    /* Keep the parent's constants in their order for siblings and children,
     * and record the new ones after them. */
    memcpy(features, constant, (size_t)n_known * sizeof *features);
    memcpy(constant + n_known, features + n_known, (size_t)n_found * sizeof *features);
    *n_constant = n_total;
}

/* Grow one tree on samples[0:m) depth first, children pushed right then left
 * so that nodes come out in pre-order (sklearn's DepthFirstTreeBuilder). */
static int tree_grow(tree *t, builder *b, int m, stack_entry *stack, double *value)
{
    int sp = 0, nc = b->n_classes;
    for (int k = 0; k < b->d; k++)
        b->features[k] = k;
    stack[sp++] = (stack_entry){0, m, 0, -1, 0, 0};
    while (sp > 0) {
        stack_entry e = stack[--sp];
        double wn = 0, sq = 0;
        memset(b->count, 0, (size_t)nc * sizeof *b->count);
        for (int i = e.start; i < e.end; i++) {
            int s = b->samples[i];
            b->count[b->y[s]] += b->weight[s];
            wn += b->weight[s];
        }
        for (int k = 0; k < nc; k++) {
            value[k] = b->count[k] / wn;
            sq += value[k] * value[k];
        }
        int n_node = e.end - e.start;
        int is_leaf = (b->max_depth > 0 && e.depth >= b->max_depth) || n_node < b->min_samples_split ||
                      1.0 - sq <= DBL_EPSILON;
        split best = {.pos = e.end};
        int n_constant = e.n_constant;
        if (!is_leaf) {
            node_split(b, e.start, e.end, wn, &n_constant, &best);
            is_leaf = best.pos >= e.end;
        }
        int id = tree_add_node(t, nc, value);
        if (id < 0)
            return rm_error("forest_fit: out of memory");
        if (e.parent >= 0) {
            if (e.is_left)
                t->nodes[e.parent].left = id;
            else
                t->nodes[e.parent].right = id;
        }
        if (!is_leaf) {
            t->nodes[id].feature = best.feature;
            t->nodes[id].threshold = best.threshold;
            /* each entry owns a disjoint non-empty range: at most m */
            stack[sp++] = (stack_entry){best.pos, e.end, e.depth + 1, id, 0, n_constant};
            stack[sp++] = (stack_entry){e.start, best.pos, e.depth + 1, id, 1, n_constant};
        }
    }
    return 0;
}

static int check_inputs(const double *x, const int *y, int n, int d, int n_classes, const forest_opts *o)
{
    if (!x || !y)
        return rm_error("forest_fit: NULL data");
    if (n < 1 || d < 1 || n_classes < 1)
        return rm_error("forest_fit: need n, d, n_classes >= 1 (got %d, %d, %d)", n, d, n_classes);
    if (o->n_trees < 1)
        return rm_error("forest_fit: n_trees must be >= 1 (got %d)", o->n_trees);
    if (o->max_features < 0 || o->max_features > d)
        return rm_error("forest_fit: max_features must be in [0, %d] (got %d)", d, o->max_features);
    if (o->max_depth < 0)
        return rm_error("forest_fit: max_depth must be >= 0 (got %d)", o->max_depth);
    if (o->min_samples_split < 2)
        return rm_error("forest_fit: min_samples_split must be >= 2 (got %d)", o->min_samples_split);
    for (int i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= n_classes)
            return rm_error("forest_fit: label %d of sample %d is outside [0, %d)", y[i], i, n_classes);
    for (size_t i = 0; i < (size_t)n * d; i++)
        if (!isfinite(x[i]))
            return rm_error("forest_fit: feature %zu of sample %zu is not finite", i % d, i / d);
    return 0;
}

int forest_fit(forest **out, const double *x, const int *y, int n, int d, int n_classes, const forest_opts *o)
{
    forest_opts def;
    if (!out)
        return rm_error("forest_fit: NULL output");
    *out = NULL;
    if (!o) {
        forest_opts_default(&def);
        o = &def;
    }
    if (check_inputs(x, y, n, d, n_classes, o) < 0)
        return -1;

    builder b = {.x = x, .y = y, .d = d, .n_classes = n_classes, .max_depth = o->max_depth,
                 .min_samples_split = o->min_samples_split};
    b.max_features = o->max_features ? o->max_features : (int)floor(sqrt((double)d));
    if (b.max_features < 1)
        b.max_features = 1;
    forest *f = forest_alloc(o->n_trees, d, n_classes);
    b.weight = malloc((size_t)n * sizeof *b.weight);
    b.samples = malloc((size_t)n * sizeof *b.samples);
    b.pairs = malloc((size_t)n * sizeof *b.pairs);
    b.features = malloc((size_t)d * sizeof *b.features);
    b.constant_features = malloc((size_t)d * sizeof *b.constant_features);
    b.count = malloc((size_t)n_classes * sizeof *b.count);
    b.count_left = malloc((size_t)n_classes * sizeof *b.count_left);
    double *value = malloc((size_t)n_classes * sizeof *value);
    stack_entry *stack = malloc((size_t)n * sizeof *stack);
    if (!f || !b.weight || !b.samples || !b.pairs || !b.features || !b.constant_features || !b.count ||
        !b.count_left || !value || !stack) {
        rm_error("forest_fit: out of memory");
        goto fail;
    }

    /* One stream per tree, seeded from the forest's, so a tree depends only
     * on the seed and its index. */
    rng master;
    rng_seed(&master, o->seed);
    for (int t = 0; t < o->n_trees; t++) {
        rng_seed(&b.r, rng_u64(&master));
        if (o->bootstrap) {
            memset(b.weight, 0, (size_t)n * sizeof *b.weight);
            for (int i = 0; i < n; i++)
                b.weight[rng_below(&b.r, (uint64_t)n)] += 1.0;
        } else {
            for (int i = 0; i < n; i++)
                b.weight[i] = 1.0;
        }
        int m = 0;
        for (int i = 0; i < n; i++)
            if (b.weight[i] > 0)
                b.samples[m++] = i;
        if (tree_grow(&f->trees[t], &b, m, stack, value) < 0)
            goto fail;
    }
    *out = f;
    f = NULL;
fail:
    forest_free(f);
    free(b.weight);
    free(b.samples);
    free(b.pairs);
    free(b.features);
    free(b.constant_features);
    free(b.count);
    free(b.count_left);
    free(value);
    free(stack);
    return *out ? 0 : -1;
}

/* ---- prediction ---- */

void forest_predict_proba(const forest *f, const double *x, int n, double *proba)
{
    int nc = f->n_classes, d = f->n_features;
    for (int i = 0; i < n; i++) {
        const double *xi = x + (size_t)i * d;
        double *p = proba + (size_t)i * nc;
        for (int k = 0; k < nc; k++)
            p[k] = 0;
        for (int t = 0; t < f->n_trees; t++) {
            const tree *tr = &f->trees[t];
            int id = 0;
            while (tr->nodes[id].feature >= 0)
                id = xi[tr->nodes[id].feature] <= tr->nodes[id].threshold ? tr->nodes[id].left
                                                                          : tr->nodes[id].right;
            for (int k = 0; k < nc; k++)
                p[k] += tr->value[(size_t)id * nc + k];
        }
        for (int k = 0; k < nc; k++)
            p[k] /= f->n_trees;
    }
}

/* ---- serialization ---- */

static unsigned char *put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        *p++ = (unsigned char)(v >> (8 * i));
    return p;
}

static unsigned char *put_f64(unsigned char *p, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    for (int i = 0; i < 8; i++)
        *p++ = (unsigned char)(v >> (8 * i));
    return p;
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static double get_f64(const unsigned char *p)
{
    uint64_t v = 0;
    double d;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    memcpy(&d, &v, sizeof d);
    return d;
}

static size_t node_bytes(int n_classes) { return 3 * 4 + 8 + 8 * (size_t)n_classes; }

int forest_serialize(const forest *f, unsigned char **buf, size_t *len)
{
    if (!f || !buf || !len)
        return rm_error("forest_serialize: NULL argument");
    size_t size = HEADER_BYTES, nb = node_bytes(f->n_classes);
    for (int t = 0; t < f->n_trees; t++)
        size += 4 + (size_t)f->trees[t].n_nodes * nb;
    unsigned char *p = malloc(size);
    if (!p)
        return rm_error("forest_serialize: out of memory (%zu bytes)", size);
    *buf = p;
    *len = size;
    memcpy(p, FOREST_MAGIC, 8);
    p = put_u32(p + 8, FOREST_VERSION);
    p = put_u32(p, (uint32_t)f->n_trees);
    p = put_u32(p, (uint32_t)f->n_features);
    p = put_u32(p, (uint32_t)f->n_classes);
    for (int t = 0; t < f->n_trees; t++) {
        const tree *tr = &f->trees[t];
        p = put_u32(p, (uint32_t)tr->n_nodes);
        for (int i = 0; i < tr->n_nodes; i++) {
            p = put_u32(p, (uint32_t)tr->nodes[i].feature);
            p = put_u32(p, (uint32_t)tr->nodes[i].left);
            p = put_u32(p, (uint32_t)tr->nodes[i].right);
            p = put_f64(p, tr->nodes[i].threshold);
            for (int k = 0; k < f->n_classes; k++)
                p = put_f64(p, tr->value[(size_t)i * f->n_classes + k]);
        }
    }
    return 0;
}

/* Read and check one tree at p (rem bytes left); returns the bytes used or 0. */
static size_t tree_read(tree *t, const unsigned char *p, size_t rem, int n_features, int n_classes)
{
    size_t nb = node_bytes(n_classes);
    if (rem < 4)
        return 0;
    uint32_t n_nodes = get_u32(p);
    if (n_nodes < 1 || n_nodes > (rem - 4) / nb || n_nodes > INT32_MAX)
        return 0;
    t->nodes = malloc(n_nodes * sizeof *t->nodes);
    t->value = malloc((size_t)n_nodes * n_classes * sizeof *t->value);
    if (!t->nodes || !t->value)
        return 0;
    t->n_nodes = t->cap = (int)n_nodes;
    const unsigned char *q = p + 4;
    for (int i = 0; i < (int)n_nodes; i++, q += nb) {
        tree_node *nd = &t->nodes[i];
        nd->feature = (int32_t)get_u32(q);
        nd->left = (int32_t)get_u32(q + 4);
        nd->right = (int32_t)get_u32(q + 8);
        nd->threshold = get_f64(q + 12);
        int leaf_ok = nd->feature == -1 && nd->left == -1 && nd->right == -1;
        /* children after their parent: traversal always ends */
        int split_ok = nd->feature >= 0 && nd->feature < n_features && nd->left > i && nd->right > i &&
                       nd->left < (int)n_nodes && nd->right < (int)n_nodes && !isnan(nd->threshold);
        if (!leaf_ok && !split_ok)
            return 0;
        double sum = 0;
        for (int k = 0; k < n_classes; k++) {
            double v = get_f64(q + 20 + 8 * (size_t)k);
            if (!(v >= 0 && v <= 1))
                return 0;
            t->value[(size_t)i * n_classes + k] = v;
            sum += v;
        }
        if (fabs(sum - 1) > 1e-9)
            return 0;
    }
    return 4 + n_nodes * nb;
}

int forest_deserialize(forest **out, const unsigned char *buf, size_t len)
{
    if (!out)
        return rm_error("forest_deserialize: NULL output");
    *out = NULL;
    if (!buf || len < HEADER_BYTES || memcmp(buf, FOREST_MAGIC, 8) != 0)
        return rm_error("forest_deserialize: not a serialized forest");
    uint32_t version = get_u32(buf + 8), n_trees = get_u32(buf + 12);
    uint32_t n_features = get_u32(buf + 16), n_classes = get_u32(buf + 20);
    if (version != FOREST_VERSION)
        return rm_error("forest_deserialize: version %u, expected %u", version, FOREST_VERSION);
    /* every tree takes at least one node of node_bytes */
    if (n_trees < 1 || n_features < 1 || n_classes < 1 || n_features > INT32_MAX || n_classes > (1u << 20) ||
        n_trees > (len - HEADER_BYTES) / (4 + node_bytes((int)n_classes)))
        return rm_error("forest_deserialize: bad header (%u trees, %u features, %u classes, %zu bytes)", n_trees,
                        n_features, n_classes, len);
    forest *f = forest_alloc((int)n_trees, (int)n_features, (int)n_classes);
    if (!f)
        return rm_error("forest_deserialize: out of memory");
    size_t off = HEADER_BYTES;
    for (int t = 0; t < f->n_trees; t++) {
        size_t used = tree_read(&f->trees[t], buf + off, len - off, f->n_features, f->n_classes);
        if (!used) {
            forest_free(f);
            return rm_error("forest_deserialize: tree %d is truncated or corrupt", t);
        }
        off += used;
    }
    if (off != len) {
        forest_free(f);
        return rm_error("forest_deserialize: %zu trailing bytes", len - off);
    }
    *out = f;
    return 0;
}
