/* Convolutions of the CUDA backend on cuDNN's convolution API.
 *
 * Each distinct shape (conv_desc without relu_in) gets one cache entry for
 * the life of the process: its tensor, filter and convolution descriptors and
 * the algorithms chosen by cuDNN's heuristics (or, with RMINAS_CUDA_FIND=1,
 * by timing them) for the forward, backward-data and backward-filter passes
 * (deterministic ones first), in full float32
 * (CUDNN_FMA_MATH: no TF32, so results match the CPU backend to rounding).
 * With RMINAS_CUDA_TF32=1 (cu_tf32) they may use TF32 tensor cores
 * (CUDNN_DEFAULT_MATH, PyTorch's default for convolutions): faster where the
 * convolutions are compute-bound, but each product's inputs are rounded to
 * 10 mantissa bits, so scores differ from the CPU backend's by more than
 * rounding. The Gram/CKA and linear GEMMs (cuBLAS) stay in full float32.
 * conv_work_size, called when a network is planned, fills the entry; the
 * passes then only look it up. An entry first met in a pass (a smaller last
 * batch) is limited to the smallest workspace planned for a larger batch of
 * the same shape, so it always fits the caller's scratch.
 *
 * Scratch layout (floats): [relu(x) | masked-dx temporary | cuDNN workspace],
 * the first two only when relu_in is set; relu(x) goes to d->keep instead
 * where the graph gave one, and the backward then reads it from there. */
#include "cuda_ops.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <pthread.h>

struct conv_entry {
    conv_desc key; /* relu_in, oh, ow zeroed */
    cudnnTensorDescriptor_t x, y, b;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t ws; /* bytes: the most any of the three needs */
    int ok;
    int planned;          /* set up by a plan (else first met in a pass) */
    unsigned long tried;  /* plan_gen at its last set-up */
};

/* Entries never move (the array holds pointers) and are never freed; the
 * lock covers lookups and additions, for threads scoring concurrently (a
 * found entry is only read). */
static conv_entry **cache;
static int cache_n, cache_cap;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long plan_gen; /* plans looked up so far (entry_find), under cache_lock */

static conv_desc conv_key(const conv_desc *d)
{
    conv_desc k;
    memset(&k, 0, sizeof k);
    k.n = d->n;
    k.cin = d->cin;
    k.h = d->h;
    k.w = d->w;
    k.cout = d->cout;
    k.kh = d->kh;
    k.kw = d->kw;
    k.stride = d->stride;
    k.pad = d->pad;
    k.dil = d->dil;
    k.groups = d->groups;
    return k;
}

/* same shape apart from the batch */
static int same_but_n(const conv_desc *a, const conv_desc *b)
{
    conv_desc x = *a, y = *b;
    x.n = y.n = 0;
    return memcmp(&x, &y, sizeof x) == 0;
}

/* RMINAS_CUDA_FIND=1: algorithms chosen by timing them (cuDNN's Find, as
 * PyTorch's cudnn.benchmark) instead of by cuDNN's heuristics; still full
 * float32 and deterministic ones first, but which one wins may differ from
 * run to run, and with it the rounding. Read once, under cache_lock. */
static int conv_find(void)
{
    static int find = -1;
    if (find < 0) {
        const char *e = getenv("RMINAS_CUDA_FIND");
        find = e && *e && strcmp(e, "0") != 0;
    }
    return find;
}

/* The first successful result, deterministic if one is, within limit bytes.
 * Timed results (find) can be in any math cuDNN tried: in full float32 only
 * those in FMA math are taken, with TF32 none that converts to half. */
template <typename P>
static int pick(const P *res, int count, size_t limit, size_t *mem, int find)
{
    int best = -1;
    for (int pass = 0; pass < 2 && best < 0; pass++)
        for (int i = 0; i < count; i++) {
            if (res[i].status != CUDNN_STATUS_SUCCESS || res[i].memory > limit)
                continue;
            if (find && !cu_tf32 && res[i].mathType != CUDNN_FMA_MATH)
                continue;
            if (cu_tf32 && res[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
                continue;
            if (pass == 0 && res[i].determinism != CUDNN_DETERMINISTIC)
                continue;
            best = i;
            break;
        }
    if (best >= 0)
        *mem = res[best].memory;
    return best;
}

static int entry_init(conv_entry *e, const conv_desc *d, size_t limit)
{
    const int g = d->groups > 0 ? d->groups : 1;
    e->ok = 0;
    if (!CU(cudnnCreateTensorDescriptor(&e->x)) || !CU(cudnnCreateTensorDescriptor(&e->y)) ||
        !CU(cudnnCreateTensorDescriptor(&e->b)) || !CU(cudnnCreateFilterDescriptor(&e->w)) ||
        !CU(cudnnCreateConvolutionDescriptor(&e->conv)))
        return -1;
    if (!CU(cudnnSetTensor4dDescriptor(e->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->cin,
                                       d->h, d->w)) ||
        !CU(cudnnSetTensor4dDescriptor(e->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->n, d->cout,
                                       d->oh, d->ow)) ||
        !CU(cudnnSetTensor4dDescriptor(e->b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, d->cout, 1,
                                       1)) ||
        !CU(cudnnSetFilter4dDescriptor(e->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, d->cout,
                                       d->cin / g, d->kh, d->kw)) ||
        !CU(cudnnSetConvolution2dDescriptor(e->conv, d->pad, d->pad, d->stride, d->stride,
                                            d->dil, d->dil, CUDNN_CROSS_CORRELATION,
                                            CUDNN_DATA_FLOAT)) ||
        !CU(cudnnSetConvolutionGroupCount(e->conv, g)) ||
        !CU(cudnnSetConvolutionMathType(e->conv,
                                        cu_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH)))
        return -1;
    int on, oc, oh, ow;
    if (!CU(cudnnGetConvolution2dForwardOutputDim(e->conv, e->x, e->w, &on, &oc, &oh, &ow)))
        return -1;
    if (on != d->n || oc != d->cout || oh != d->oh || ow != d->ow) {
        cu_fail(__FILE__, __LINE__, "cudnnGetConvolution2dForwardOutputDim",
                "cuDNN's output shape differs from the description");
        return -1;
    }
    enum { MAXALGO = 16 };
    size_t mf = 0, md = 0, mw = 0;
    /* not inside the calling thread's own CUDA-graph capture (a pass on a
     * shape never planned): Find's runs would be recorded, not timed */
    const int find = conv_find() && !cu_capturing_now();
    cudnnConvolutionFwdAlgoPerf_t pf[MAXALGO];
    cudnnConvolutionBwdDataAlgoPerf_t pd[MAXALGO];
    cudnnConvolutionBwdFilterAlgoPerf_t pw[MAXALGO];
    int nf = 0, nd = 0, nw = 0;
    const bool found =
        find ? CU(cudnnFindConvolutionForwardAlgorithm(cu.dnn, e->x, e->w, e->conv, e->y,
                                                       MAXALGO, &nf, pf)) &&
                   CU(cudnnFindConvolutionBackwardDataAlgorithm(cu.dnn, e->w, e->y, e->conv,
                                                                e->x, MAXALGO, &nd, pd)) &&
                   CU(cudnnFindConvolutionBackwardFilterAlgorithm(cu.dnn, e->x, e->y, e->conv,
                                                                  e->w, MAXALGO, &nw, pw))
             : CU(cudnnGetConvolutionForwardAlgorithm_v7(cu.dnn, e->x, e->w, e->conv, e->y,
                                                         MAXALGO, &nf, pf)) &&
                   CU(cudnnGetConvolutionBackwardDataAlgorithm_v7(cu.dnn, e->w, e->y, e->conv,
                                                                  e->x, MAXALGO, &nd, pd)) &&
                   CU(cudnnGetConvolutionBackwardFilterAlgorithm_v7(cu.dnn, e->x, e->y,
                                                                    e->conv, e->w, MAXALGO,
                                                                    &nw, pw));
    if (!found)
        return -1;
    int i = pick(pf, nf, limit, &mf, find);
    if (i < 0) {
        cu_fail(__FILE__, __LINE__, find ? "cudnnFindConvolutionForwardAlgorithm"
                                         : "cudnnGetConvolutionForwardAlgorithm_v7",
                "no forward algorithm for this convolution");
        return -1;
    }
    e->fwd = pf[i].algo;
    if ((i = pick(pd, nd, limit, &md, find)) < 0) {
        cu_fail(__FILE__, __LINE__, find ? "cudnnFindConvolutionBackwardDataAlgorithm"
                                         : "cudnnGetConvolutionBackwardDataAlgorithm_v7",
                "no backward-data algorithm for this convolution");
        return -1;
    }
    e->bwd_data = pd[i].algo;
    if ((i = pick(pw, nw, limit, &mw, find)) < 0) {
        cu_fail(__FILE__, __LINE__, find ? "cudnnFindConvolutionBackwardFilterAlgorithm"
                                         : "cudnnGetConvolutionBackwardFilterAlgorithm_v7",
                "no backward-filter algorithm for this convolution");
        return -1;
    }
    e->bwd_filter = pw[i].algo;
    /* the sizes as the workspace queries give them, not the heuristics' */
    if (!CU(cudnnGetConvolutionForwardWorkspaceSize(cu.dnn, e->x, e->w, e->conv, e->y, e->fwd,
                                                    &mf)) ||
        !CU(cudnnGetConvolutionBackwardDataWorkspaceSize(cu.dnn, e->w, e->y, e->conv, e->x,
                                                         e->bwd_data, &md)) ||
        !CU(cudnnGetConvolutionBackwardFilterWorkspaceSize(cu.dnn, e->x, e->y, e->conv, e->w,
                                                           e->bwd_filter, &mw)))
        return -1;
    /* the queries can differ from what the heuristics or Find reported:
     * more than the caller's scratch holds would be written past it */
    const size_t need[3] = {mf, md, mw};
    static const char *const query[3] = {"cudnnGetConvolutionForwardWorkspaceSize",
                                         "cudnnGetConvolutionBackwardDataWorkspaceSize",
                                         "cudnnGetConvolutionBackwardFilterWorkspaceSize"};
    e->ws = 0;
    for (int p = 0; p < 3; p++) {
        if (need[p] > limit) {
            char why[128];
            snprintf(why, sizeof why,
                     "the chosen algorithm needs %zu bytes of workspace, %zu planned", need[p],
                     limit);
            cu_fail(__FILE__, __LINE__, query[p], why);
            return -1;
        }
        if (need[p] > e->ws)
            e->ws = need[p];
    }
    e->ok = 1;
    return 0;
}

/* e, or NULL with a failure recorded again when its set-up failed (every
 * pass on the shape fails, not only the first, until entry_find sets it up
 * again: set_up_again) */
static conv_entry *entry_ok(conv_entry *e)
{
    if (e->ok)
        return e;
    cu_fail(__FILE__, __LINE__, "cuDNN convolution set-up",
            "this convolution shape failed to set up earlier");
    return NULL;
}

/* The entry of key k, or NULL. Under cache_lock. */
static conv_entry *entry_lookup(const conv_desc *k)
{
    for (int i = 0; i < cache_n; i++)
        if (!memcmp(&cache[i]->key, k, sizeof *k))
            return cache[i];
    return NULL;
}

/* An entry whose set-up failed, emptied for another try: its descriptors
 * destroyed (no pass uses them: entry_ok refuses the entry). */
static void entry_clear(conv_entry *e)
{
    if (e->x)
        cudnnDestroyTensorDescriptor(e->x);
    if (e->y)
        cudnnDestroyTensorDescriptor(e->y);
    if (e->b)
        cudnnDestroyTensorDescriptor(e->b);
    if (e->w)
        cudnnDestroyFilterDescriptor(e->w);
    if (e->conv)
        cudnnDestroyConvolutionDescriptor(e->conv);
    memset(e, 0, sizeof *e);
}

/* The workspace a pass on shape k, never planned, may use: the smallest
 * planned for the same shape at a larger batch. The caller's own plan is
 * one of those and its scratch holds at least that plan's workspace;
 * another network's plan at a still larger batch (the cache is shared) may
 * need more than the caller has. Under cache_lock. */
static size_t unplanned_limit(const conv_desc *k)
{
    size_t limit = (size_t)-1;
    for (int i = 0; i < cache_n; i++)
        if (cache[i]->ok && cache[i]->key.n > k->n && same_but_n(&cache[i]->key, k) &&
            cache[i]->ws < limit)
            limit = cache[i]->ws;
    return limit == (size_t)-1 ? 0 : limit; /* none planned: no workspace */
}

/* (Re)sets up e for d: planned by a plan (no workspace limit), or first met
 * in a pass (unplanned_limit). Under cache_lock. */
static conv_entry *entry_setup(conv_entry *e, const conv_desc *d, int planning)
{
    e->key = conv_key(d);
    const size_t limit = planning ? (size_t)-1 : unplanned_limit(&e->key);
    e->planned = planning;
    e->tried = plan_gen;
    return entry_init(e, d, limit) < 0 ? NULL : e;
}

/* Whether entry_find sets e up again, e's set-up having failed: at the
 * shape's next plan (planning), and, if no plan ever set it up (a pass at a
 * smaller batch than planned: the teacher's at the RMI batch after a
 * selection over a larger pool, the last batch of an epoch), at its next
 * pass after any plan. A failure that passes (a library's status, Find out
 * of memory while other jobs held the GPU) is not the shape's for the rest
 * of the process. Under cache_lock. */
static bool set_up_again(const conv_entry *e, int planning)
{
    return !e->ok && (planning || (!e->planned && e->tried != plan_gen));
}

/* The entry of d, made when missing, or set up again (set_up_again). NULL
 * with the failure recorded. Under cache_lock. */
static conv_entry *entry_find(const conv_desc *d, int planning)
{
    conv_desc k = conv_key(d);
    conv_entry *found = entry_lookup(&k);
    if (planning)
        plan_gen++;
    if (found && set_up_again(found, planning)) {
        entry_clear(found);
        return entry_setup(found, d, planning);
    }
    if (found)
        return entry_ok(found);
    if (cache_n == cache_cap) {
        int cap = cache_cap ? 2 * cache_cap : 64;
        conv_entry **c = (conv_entry **)realloc(cache, (size_t)cap * sizeof *c);
        if (!c) {
            cu_fail(__FILE__, __LINE__, "realloc", "out of host memory");
            return NULL;
        }
        cache = c;
        cache_cap = cap;
    }
    conv_entry *e = (conv_entry *)calloc(1, sizeof *e);
    if (!e) {
        cu_fail(__FILE__, __LINE__, "calloc", "out of host memory");
        return NULL;
    }
    cache[cache_n++] = e;
    return entry_setup(e, d, planning);
}

static conv_entry *entry_get(const conv_desc *d, int planning)
{
    pthread_mutex_lock(&cache_lock);
    bool held = false;
    if (conv_find()) {
        /* Find runs the algorithms on buffers it allocates, which waits for
         * the whole device: a new shape is set up holding back the other
         * threads' graph captures, that lock taken before cache_lock (the
         * order of a capturing thread, which holds it while it looks shapes up) */
        const conv_desc k = conv_key(d);
        const conv_entry *f = entry_lookup(&k);
        if (!f || set_up_again(f, planning)) {
            pthread_mutex_unlock(&cache_lock);
            held = cu_wait_begin();
            pthread_mutex_lock(&cache_lock);
        }
    }
    conv_entry *e = entry_find(d, planning);
    pthread_mutex_unlock(&cache_lock);
    cu_wait_end(held);
    return e;
}

static size_t x_floats(const conv_desc *d) { return (size_t)d->n * d->cin * d->h * d->w; }

/* x_floats rounded up to 64 floats: every part of the scratch starts on a
 * 256-byte boundary (as cudaMalloc's own), which cuDNN's workspace wants */
static size_t x_slot(const conv_desc *d) { return (x_floats(d) + 63) & ~(size_t)63; }

size_t cu_conv_work_size(const conv_desc *d)
{
    conv_entry *e = entry_get(d, 1);
    size_t ws = e ? (e->ws + sizeof(float) - 1) / sizeof(float) : 0;
    return ws + (d->relu_in ? 2 * x_slot(d) : 0);
}

void cu_conv2d_forward(const conv_desc *d, const float *x, const float *w, const float *b,
                       float *y, int acc, float *work)
{
    conv_entry *e = entry_get(d, 0);
    if (!e)
        return;
    float *ws = work;
    if (d->relu_in) {
        float *xr = d->keep ? d->keep : work;
        cu_relu_copy(x, xr, x_floats(d));
        x = xr;
        ws = work + 2 * x_slot(d);
    }
    const float one = 1.f, beta = acc ? 1.f : 0.f;
    CU(cudnnConvolutionForward(cu.dnn, &one, e->x, x, e->w, w, e->conv, e->fwd, ws, e->ws, &beta,
                               e->y, y));
    if (b)
        CU(cudnnAddTensor(cu.dnn, &one, e->b, b, &one, e->y, y));
}

void cu_conv2d_backward(const conv_desc *d, const float *x, const float *w, const float *dy,
                        float *dx, float *dw, float *db, float *work, int dx_acc)
{
    conv_entry *e = entry_get(d, 0);
    if (!e)
        return;
    const float one = 1.f, zero = 0.f;
    const float *xin = x;
    float *ws = work;
    if (d->relu_in) {
        ws = work + 2 * x_slot(d);
        if (dw && d->keep) { /* the forward's */
            xin = d->keep;
        } else if (dw) {
            cu_relu_copy(x, work, x_floats(d));
            xin = work;
        }
    }
    if (dw)
        CU(cudnnConvolutionBackwardFilter(cu.dnn, &one, e->x, xin, e->y, dy, e->conv,
                                          e->bwd_filter, ws, e->ws, &one, e->w, dw));
    if (db)
        CU(cudnnConvolutionBackwardBias(cu.dnn, &one, e->y, dy, &one, e->b, db));
    if (!dx)
        return;
    if (d->relu_in) {
        float *t = work + x_slot(d);
        CU(cudnnConvolutionBackwardData(cu.dnn, &one, e->w, w, e->y, dy, e->conv, e->bwd_data, ws,
                                        e->ws, &zero, e->x, t));
        cu_relu_mask(x, t, dx, x_floats(d), dx_acc);
    } else {
        CU(cudnnConvolutionBackwardData(cu.dnn, &one, e->w, w, e->y, dy, e->conv, e->bwd_data, ws,
                                        e->ws, dx_acc ? &one : &zero, e->x, dx));
    }
}
