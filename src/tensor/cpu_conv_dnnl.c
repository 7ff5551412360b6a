/* Convolution on the CPU through oneDNN (libdnnl, C API), the library behind
 * PyTorch's CPU convolutions. Same contract as cpu_conv.c (backend.h):
 * plain NCHW / OIHW (GOIHW with groups) arrays at the interface.
 *
 * Inside, every primitive is created with format_tag_any, so oneDNN picks
 * its blocked layouts (nChw8c / OIhw8i8o with AVX2) and its JIT kernels;
 * reorders convert from and to the plain arrays around each primitive:
 *
 *   forward:  x -> src (then max(.,0) in place under relu_in), w -> wei,
 *             conv (with bias; a zero bias when b is NULL) -> dst,
 *             dst -> y by a reorder, or with a sum post-op when acc (y += ..).
 *   backward: dy -> diff_dst; dw: x -> src (relu'd), backward-weights (with
 *             diff bias) -> diff_wei, diff_wei -> dw with a sum post-op,
 *             db += diff bias; dx: w -> wei, backward-data -> diff_src,
 *             diff_src -> dx with a sum post-op, or under relu_in -> a plain
 *             temporary t, then dx[i] += x[i] > 0 ? t[i] : 0.
 *   A reorder is skipped where oneDNN chose the plain layout itself (the
 *   stem's 3-channel input, for instance). Should a sum reorder be refused,
 *   the result goes to a plain temporary and an add loop instead.
 *
 * Primitives are cached per shape (every conv_desc field but relu_in, which
 * only changes our own loops) and per thread count: oneDNN fixes a
 * primitive's threads when it is created (omp_get_max_threads() then, which
 * is set to backend_cpu_threads() around creation and execution). Entries
 * live in a growable array under a mutex and are never freed; each has a
 * lock held while it runs, since its memory objects get the call's pointers.
 * Threads scoring at the same time (set jobs) would take turns there, so
 * the key also holds the calling thread's slot (cpu_dnnl_conv_set_slot):
 * each such thread has entries of its own.
 *
 * Scratch: every blocked buffer and oneDNN's scratchpad (user mode: attr
 * scratchpad_mode_user, sizes from dnnl_query_scratchpad_md) live in `work`,
 * as 64-byte aligned regions:
 *   A  src (forward, backward-weights), then diff_src (backward-data)
 *   C  dst; diff_dst (backward-data), then dx's plain temporary
 *   C2 diff_dst of backward-weights, where its layout differs
 *   W  weights           DW diff weights         BIAS zero bias / diff bias
 *   T  plain temporary (only where a sum reorder was refused)
 *   S  scratchpad (the largest of all primitives; they run one at a time)
 * Backward runs dw before dx, so A is free again for diff_src; forward
 * needs A and C, backward the same two (x and y sized) plus small parts.
 *
 * Winograd (cpu_dnnl_conv_set_winograd): oneDNN's F(4x4, 3x3) algorithm for
 * the 3x3, stride-1, undilated, ungrouped convolutions (NAS-Bench-201's and
 * ResNet's), direct convolutions elsewhere and wherever oneDNN refuses it.
 * The algorithm is part of the cache key. Winograd sums in another order
 * through its transforms: results differ from direct ones by about 1e-6
 * relative (tests/test_ops checks both against a double reference).
 *
 * Creation failures (a shape oneDNN refuses) are remembered in the cache and
 * the call falls back to the im2col functions, whose scratch need is
 * included in cpu_dnnl_conv_work_size.
 *
 * A call opens a dozen OpenMP parallel regions (each reorder, primitive and
 * loop) where im2col opens one to three: on cores shared with other busy
 * processes, with OpenMP's default spinning waits, each join can wait a
 * scheduler tick for a preempted sibling, and oneDNN loses to im2col
 * (measured 2x on a 2-core machine running two other jobs);
 * OMP_WAIT_POLICY=passive removes that (oneDNN 1.4-1.6x faster again).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "tensor/cpu_ops.h"

#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* one primitive with its scratchpad memory object (NULL when it needs none) */
typedef struct dop {
    dnnl_primitive_t p; /* NULL: not needed */
    dnnl_memory_t scr;
    size_t scr_bytes;
} dop;

enum { K_N, K_CIN, K_H, K_W, K_COUT, K_KH, K_KW, K_STRIDE, K_PAD, K_DIL, K_GROUPS,
       K_NTHR, K_MODE, K_ALG, K_SLOT, K_LEN };

typedef struct dconv {
    int key[K_LEN];
    int ok; /* 0: oneDNN refused the shape; use im2col */
    int wino; /* 1: the three primitives are Winograd's */
    size_t total; /* floats of work */
    pthread_mutex_t lock;
    dnnl_stream_t st;
    /* regions of work, bytes from its 64-byte aligned start */
    size_t oA, oC, oC2, oW, oDW, oBias, oT, oS;
    size_t nfsrc, nbsrc; /* floats of the blocked src buffers (relu loop) */
    int sum_y, sum_dw;   /* 1: reorder with sum post-op; 0: T + add loop */
    int sum_dx;          /* 0: dx goes through a plain temporary (in C), as
                            under relu_in */
    int bwdd_shared;     /* backward-weights diff_dst layout == backward-data's */
    dop fwd, bwd_d, bwd_w;
    dop r_x, r_x2, r_w, r_w2, r_dy, r_dy2;   /* plain -> primitive layout */
    dop r_y, r_y0, r_dx, r_dx0, r_dw;       /* back: acc (r_y, r_dx, r_dw) or not */
    /* plain memory objects (user arrays or plain temporaries) */
    dnnl_memory_t m_x, m_w, m_y, m_dy, m_dx, m_dw, m_b, m_tx, m_ty, m_tw;
    /* the primitives' own layouts */
    dnnl_memory_t m_fsrc, m_fwei, m_fdst, m_bsrc, m_bdd, m_bwdd, m_bwei, m_bds,
        m_bdw, m_dbias;
} dconv;

/* cpu_dnnl_conv_test_mode: 1 builds entries without sum reorders, 2 refuses
 * every shape (part of the key, so entries of each mode stay apart) */
static int dn_mode;

/* cpu_dnnl_conv_set_winograd */
static int dn_wino;

/* cpu_dnnl_conv_set_slot: the calling thread's entries */
static _Thread_local int dn_slot;

/* the shapes oneDNN's Winograd takes (it may still refuse one) */
static int wino_shape(const conv_desc *d)
{
    return d->kh == 3 && d->kw == 3 && d->stride == 1 && d->dil == 1 && d->groups == 1;
}

static pthread_once_t dn_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t dn_eng; /* NULL: no engine, everything falls back */
static pthread_mutex_t dn_mutex = PTHREAD_MUTEX_INITIALIZER;
static dconv **dn_cache;
static int dn_count, dn_cap;

static void dn_init(void)
{
    if (dnnl_engine_create(&dn_eng, dnnl_cpu, 0) != dnnl_success)
        dn_eng = NULL;
}

/* ---- creation ---- */

#define A64(v) (((v) + 63) & ~(size_t)63)

static size_t md_size(const dnnl_memory_desc_t *md) { return dnnl_memory_desc_get_size(md); }

static int mem_new(dnnl_memory_t *m, const dnnl_memory_desc_t *md)
{
    return dnnl_memory_create(m, md, dn_eng, DNNL_MEMORY_NONE) == dnnl_success ? 0 : -1;
}

/* Primitive and scratchpad memory of pd; pd stays with the caller. */
static int op_from_pd(dop *o, const_dnnl_primitive_desc_t pd)
{
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    o->scr_bytes = smd ? md_size(smd) : 0;
    if (o->scr_bytes && mem_new(&o->scr, smd) < 0)
        return -1;
    return dnnl_primitive_create(&o->p, pd) == dnnl_success ? 0 : -1;
}

/* attr with a user scratchpad and, when sum, a sum post-op (dst += result) */
static dnnl_primitive_attr_t attr_new(int sum)
{
    dnnl_primitive_attr_t attr;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success)
        return NULL;
    int bad = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) !=
              dnnl_success;
    if (!bad && sum) {
        dnnl_post_ops_t po;
        bad = dnnl_post_ops_create(&po) != dnnl_success;
        if (!bad) {
            bad = dnnl_post_ops_append_sum(po, 1.f) != dnnl_success ||
                  dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success;
            dnnl_post_ops_destroy(po);
        }
    }
    if (bad) {
        dnnl_primitive_attr_destroy(attr);
        return NULL;
    }
    return attr;
}

static int reorder_new(dop *o, const dnnl_memory_desc_t *from,
                       const dnnl_memory_desc_t *to, int sum)
{
    dnnl_primitive_attr_t attr = attr_new(sum);
    dnnl_primitive_desc_t pd;
    if (!attr)
        return -1;
    int rc = dnnl_reorder_primitive_desc_create(&pd, from, dn_eng, to, dn_eng, attr) ==
                     dnnl_success
                 ? 0
                 : -1;
    dnnl_primitive_attr_destroy(attr);
    if (rc == 0) {
        rc = op_from_pd(o, pd);
        dnnl_primitive_desc_destroy(pd);
    }
    return rc;
}

/* A reorder that adds into `to` (sum post-op); *sum says whether that was
 * possible, else a plain reorder into a plain temporary of to's layout. */
static int reorder_acc_new(dop *o, const dnnl_memory_desc_t *from,
                           const dnnl_memory_desc_t *to, int *sum)
{
    *sum = 1;
    if (dn_mode != 1 && reorder_new(o, from, to, 1) == 0)
        return 0;
    if (o->p)
        dnnl_primitive_destroy(o->p);
    memset(o, 0, sizeof *o);
    *sum = 0;
    return reorder_new(o, from, to, 0);
}

static const dnnl_memory_desc_t *pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t q)
{
    return dnnl_primitive_desc_query_md(pd, q, 0);
}

/* Build everything of e (key filled in) with omp_get_max_threads() already
 * set to its thread count: Winograd's primitives where the key asks for them
 * and oneDNN accepts all three, else direct ones. Returns 0, or -1 when
 * oneDNN refused anything. */
static int dconv_build(dconv *e, const conv_desc *d)
{
    const int g = d->groups;
    dnnl_dims_t xd = {d->n, d->cin, d->h, d->w}, yd = {d->n, d->cout, d->oh, d->ow};
    dnnl_dims_t wd = {d->cout, d->cin / g, d->kh, d->kw};
    dnnl_dims_t wgd = {g, d->cout / g, d->cin / g, d->kh, d->kw}, bd = {d->cout};
    dnnl_dims_t strides = {d->stride, d->stride}, dil = {d->dil - 1, d->dil - 1};
    dnnl_dims_t pad = {d->pad, d->pad};
    dnnl_memory_desc_t x_md, y_md, w_md, b_md, xa, ya, wa;
    const int wnd = g > 1 ? 5 : 4;
    if (dnnl_memory_desc_init_by_tag(&x_md, 4, xd, dnnl_f32, dnnl_nchw) ||
        dnnl_memory_desc_init_by_tag(&y_md, 4, yd, dnnl_f32, dnnl_nchw) ||
        dnnl_memory_desc_init_by_tag(&w_md, wnd, g > 1 ? wgd : wd, dnnl_f32,
                                     g > 1 ? dnnl_goihw : dnnl_oihw) ||
        dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x) ||
        dnnl_memory_desc_init_by_tag(&xa, 4, xd, dnnl_f32, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&ya, 4, yd, dnnl_f32, dnnl_format_tag_any) ||
        dnnl_memory_desc_init_by_tag(&wa, wnd, g > 1 ? wgd : wd, dnnl_f32,
                                     dnnl_format_tag_any))
        return -1;

    /* the three convolutions (right padding = left: oneDNN's output size
     * check divides like conv_desc_init) */
    dnnl_convolution_desc_t fd, bdd, bwd;
    dnnl_primitive_desc_t fpd = NULL, bdpd = NULL, bwpd = NULL;
    dnnl_primitive_attr_t attr = attr_new(0);
    int rc = -1;
    if (!attr)
        return -1;
    e->wino = e->key[K_ALG];
    for (;;) {
        const dnnl_alg_kind_t alg =
            e->wino ? dnnl_convolution_winograd : dnnl_convolution_direct;
        if (!dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, alg,
                                                        &xa, &wa, &b_md, &ya, strides,
                                                        dil, pad, pad) &&
            !dnnl_primitive_desc_create(&fpd, &fd, attr, dn_eng, NULL) &&
            !dnnl_dilated_convolution_backward_data_desc_init(&bdd, alg, &xa, &wa, &ya,
                                                              strides, dil, pad, pad) &&
            !dnnl_primitive_desc_create(&bdpd, &bdd, attr, dn_eng, fpd) &&
            !dnnl_dilated_convolution_backward_weights_desc_init(
                &bwd, alg, &xa, &wa, &b_md, &ya, strides, dil, pad, pad) &&
            !dnnl_primitive_desc_create(&bwpd, &bwd, attr, dn_eng, fpd))
            break;
        if (!e->wino)
            goto out;
        /* Winograd refused: direct convolutions instead */
        if (fpd)
            dnnl_primitive_desc_destroy(fpd);
        if (bdpd)
            dnnl_primitive_desc_destroy(bdpd);
        fpd = bdpd = NULL;
        e->wino = 0;
    }

    const dnnl_memory_desc_t *fsrc = pd_md(fpd, dnnl_query_src_md);
    const dnnl_memory_desc_t *fwei = pd_md(fpd, dnnl_query_weights_md);
    const dnnl_memory_desc_t *fdst = pd_md(fpd, dnnl_query_dst_md);
    const dnnl_memory_desc_t *bds = pd_md(bdpd, dnnl_query_diff_src_md);
    const dnnl_memory_desc_t *bwei = pd_md(bdpd, dnnl_query_weights_md);
    const dnnl_memory_desc_t *bdd_md = pd_md(bdpd, dnnl_query_diff_dst_md);
    const dnnl_memory_desc_t *bsrc = pd_md(bwpd, dnnl_query_src_md);
    const dnnl_memory_desc_t *bdw = pd_md(bwpd, dnnl_query_diff_weights_md);
    const dnnl_memory_desc_t *bwdd = pd_md(bwpd, dnnl_query_diff_dst_md);
    /* index 1 of the diff weights is the diff bias */
    const dnnl_memory_desc_t *dbias =
        dnnl_primitive_desc_query_md(bwpd, dnnl_query_diff_weights_md, 1);
    if (!fsrc || !fwei || !fdst || !bds || !bwei || !bdd_md || !bsrc || !bdw || !bwdd ||
        !dbias)
        goto out;
    e->bwdd_shared = dnnl_memory_desc_equal(bwdd, bdd_md);

    if (op_from_pd(&e->fwd, fpd) || op_from_pd(&e->bwd_d, bdpd) ||
        op_from_pd(&e->bwd_w, bwpd))
        goto out;
    /* reorders from the plain arrays, where the layouts differ */
    if ((!dnnl_memory_desc_equal(fsrc, &x_md) && reorder_new(&e->r_x, &x_md, fsrc, 0)) ||
        (!dnnl_memory_desc_equal(bsrc, &x_md) && reorder_new(&e->r_x2, &x_md, bsrc, 0)) ||
        (!dnnl_memory_desc_equal(fwei, &w_md) && reorder_new(&e->r_w, &w_md, fwei, 0)) ||
        (!dnnl_memory_desc_equal(bwei, &w_md) && reorder_new(&e->r_w2, &w_md, bwei, 0)) ||
        (!dnnl_memory_desc_equal(bdd_md, &y_md) && reorder_new(&e->r_dy, &y_md, bdd_md, 0)) ||
        (!e->bwdd_shared && !dnnl_memory_desc_equal(bwdd, &y_md) &&
         reorder_new(&e->r_dy2, &y_md, bwdd, 0)))
        goto out;
    /* and back: y (+)= dst, dx += diff_src, dw += diff_wei (sum post-ops,
     * or plain reorders into T), and the plain reorders of y = dst and of
     * dx's temporary (not needed where the layout is already plain: the
     * primitive then writes y or the temporary itself) */
    if (reorder_acc_new(&e->r_y, fdst, &y_md, &e->sum_y) ||
        reorder_acc_new(&e->r_dw, bdw, &w_md, &e->sum_dw) ||
        (!dnnl_memory_desc_equal(fdst, &y_md) && reorder_new(&e->r_y0, fdst, &y_md, 0)) ||
        (!dnnl_memory_desc_equal(bds, &x_md) && reorder_new(&e->r_dx0, bds, &x_md, 0)))
        goto out;
    e->sum_dx = dn_mode != 1 && reorder_new(&e->r_dx, bds, &x_md, 1) == 0;

    /* memory objects */
    if (mem_new(&e->m_x, &x_md) || mem_new(&e->m_w, &w_md) || mem_new(&e->m_y, &y_md) ||
        mem_new(&e->m_dy, &y_md) || mem_new(&e->m_dx, &x_md) || mem_new(&e->m_dw, &w_md) ||
        mem_new(&e->m_b, &b_md) || mem_new(&e->m_tx, &x_md) || mem_new(&e->m_ty, &y_md) ||
        mem_new(&e->m_tw, &w_md) || mem_new(&e->m_fsrc, fsrc) || mem_new(&e->m_fwei, fwei) ||
        mem_new(&e->m_fdst, fdst) || mem_new(&e->m_bsrc, bsrc) ||
        mem_new(&e->m_bdd, bdd_md) || mem_new(&e->m_bwdd, bwdd) ||
        mem_new(&e->m_bwei, bwei) || mem_new(&e->m_bds, bds) || mem_new(&e->m_bdw, bdw) ||
        mem_new(&e->m_dbias, dbias))
        goto out;
    e->nfsrc = md_size(fsrc) / sizeof(float);
    e->nbsrc = md_size(bsrc) / sizeof(float);

    /* regions */
    size_t a = md_size(&x_md), c = md_size(fdst), w = md_size(fwei), t = 0, s = 0;
    if (md_size(fsrc) > a)
        a = md_size(fsrc);
    if (md_size(bsrc) > a)
        a = md_size(bsrc);
    if (md_size(bds) > a)
        a = md_size(bds);
    if (md_size(bdd_md) > c)
        c = md_size(bdd_md);
    if (md_size(&x_md) > c)
        c = md_size(&x_md);
    if (md_size(bwei) > w)
        w = md_size(bwei);
    if (!e->sum_y)
        t = md_size(&y_md);
    if (!e->sum_dw && md_size(&w_md) > t)
        t = md_size(&w_md);
    const dop *ops[] = {&e->fwd, &e->bwd_d, &e->bwd_w, &e->r_x, &e->r_x2, &e->r_w,
                        &e->r_w2, &e->r_dy, &e->r_dy2, &e->r_y, &e->r_y0, &e->r_dx,
                        &e->r_dx0, &e->r_dw};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (ops[i]->scr_bytes > s)
            s = ops[i]->scr_bytes;
    size_t off = 0;
    e->oA = off, off += A64(a);
    e->oC = off, off += A64(c);
    e->oC2 = off, off += e->bwdd_shared ? 0 : A64(md_size(bwdd));
    e->oW = off, off += A64(w);
    e->oDW = off, off += A64(md_size(bdw));
    e->oBias = off, off += A64(md_size(dbias) > md_size(&b_md) ? md_size(dbias)
                                                              : md_size(&b_md));
    e->oT = off, off += A64(t);
    e->oS = off, off += A64(s);
    /* + 64 bytes: work itself may start anywhere on a float */
    e->total = (off + 64) / sizeof(float);
    if (dnnl_stream_create(&e->st, dn_eng, dnnl_stream_default_flags) != dnnl_success)
        goto out;
    rc = 0;
out:
    if (fpd)
        dnnl_primitive_desc_destroy(fpd);
    if (bdpd)
        dnnl_primitive_desc_destroy(bdpd);
    if (bwpd)
        dnnl_primitive_desc_destroy(bwpd);
    dnnl_primitive_attr_destroy(attr);
    return rc;
}

/* The entry of d at nthr threads, built on first use (under dn_mutex); NULL
 * only when out of memory. Building sets the OpenMP thread count to nthr for
 * the time of the creation. */
static dconv *dconv_get_alg(const conv_desc *d, int nthr, int wino)
{
    const int key[K_LEN] = {d->n,      d->cin, d->h,   d->w,     d->cout,
                            d->kh,     d->kw,  d->stride, d->pad, d->dil,
                            d->groups, nthr,   dn_mode, wino, dn_slot};
    pthread_once(&dn_once, dn_init);
    pthread_mutex_lock(&dn_mutex);
    dconv *e = NULL;
    for (int i = 0; i < dn_count; i++)
        if (!memcmp(dn_cache[i]->key, key, sizeof key)) {
            e = dn_cache[i];
            goto done;
        }
    if (dn_count == dn_cap) {
        int cap = dn_cap ? 2 * dn_cap : 32;
        dconv **c = realloc(dn_cache, (size_t)cap * sizeof *c);
        if (!c)
            goto done;
        dn_cache = c;
        dn_cap = cap;
    }
    e = calloc(1, sizeof *e);
    if (!e)
        goto done;
    memcpy(e->key, key, sizeof key);
    pthread_mutex_init(&e->lock, NULL);
    if (dn_eng && dn_mode != 2) {
        const int cur = omp_get_max_threads();
        if (cur != nthr)
            omp_set_num_threads(nthr);
        e->ok = dconv_build(e, d) == 0;
        if (cur != nthr)
            omp_set_num_threads(cur);
    }
    /* a refused shape keeps what was created so far: never freed, like the
     * rest of the cache */
    dn_cache[dn_count++] = e;
done:
    pthread_mutex_unlock(&dn_mutex);
    return e;
}

/* The entry of d at nthr threads under the algorithm selected now. */
static dconv *dconv_get(const conv_desc *d, int nthr)
{
    return dconv_get_alg(d, nthr, dn_wino && wino_shape(d));
}

/* im2col's need and both algorithms' (cpu_dnnl_conv_set_winograd may
 * change between planning and running) */
size_t cpu_dnnl_conv_work_size(const conv_desc *d)
{
    size_t n = cpu_conv_work_size(d);
    for (int wino = 0; wino <= wino_shape(d); wino++) {
        const dconv *e = dconv_get_alg(d, cpu_max_threads(), wino);
        if (e && e->ok && e->total > n)
            n = e->total;
    }
    return n;
}

void cpu_dnnl_conv_set_winograd(int on)
{
    dn_wino = on != 0;
}

void cpu_dnnl_conv_set_slot(int slot)
{
    dn_slot = slot;
}

int cpu_dnnl_conv_winograd(const conv_desc *d)
{
    const dconv *e = dconv_get(d, cpu_threads());
    return e && e->ok && e->wino;
}

void cpu_dnnl_conv_test_mode(int mode)
{
    dn_mode = mode;
}

int cpu_dnnl_conv_refused(const conv_desc *d)
{
    const dconv *e = dconv_get(d, cpu_threads());
    return !e || !e->ok;
}

/* The entry to run d with now, or NULL for the im2col fallback: refused,
 * or (in theory) needing more scratch at this thread count than the
 * work size planned for the most threads. */
static dconv *dconv_for(const conv_desc *d)
{
    const int nthr = cpu_threads(), nmax = cpu_max_threads();
    dconv *e = dconv_get(d, nthr);
    if (!e || !e->ok)
        return NULL;
    if (nthr != nmax) {
        const dconv *m = dconv_get(d, nmax);
        if (!m || !m->ok || m->total < e->total)
            return NULL;
    }
    /* reorders take the thread count at execution */
    if (omp_get_max_threads() != nthr)
        omp_set_num_threads(nthr);
    return e;
}

/* ---- execution ---- */

static void mem_set(dnnl_memory_t m, const void *p)
{
    void *cur = NULL;
    /* setting a handle zeroes a blocked layout's padding: only on a change */
    if (dnnl_memory_get_data_handle(m, &cur) != dnnl_success || cur != p)
        dnnl_memory_set_data_handle(m, (void *)p);
}

/* Run o with args (room for one more: the scratchpad at S). */
static int op_run(const dconv *e, const dop *o, float *S, int nargs, dnnl_exec_arg_t *args)
{
    if (o->scr) {
        mem_set(o->scr, S);
        args[nargs].arg = DNNL_ARG_SCRATCHPAD;
        args[nargs].memory = o->scr;
        nargs++;
    }
    return dnnl_primitive_execute(o->p, e->st, nargs, args) == dnnl_success ? 0 : -1;
}

static int reorder_run(const dconv *e, const dop *o, float *S, dnnl_memory_t from,
                       const void *src, dnnl_memory_t to, void *dst)
{
    mem_set(from, src);
    mem_set(to, dst);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return op_run(e, o, S, 2, args);
}

static void relu_inplace(float *a, size_t n)
{
#pragma omp parallel for simd schedule(static) num_threads(cpu_threads()) \
    if (n > CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++)
        a[i] = a[i] < 0.f ? 0.f : a[i];
}

static void relu_copy(float *a, const float *x, size_t n)
{
#pragma omp parallel for simd schedule(static) num_threads(cpu_threads()) \
    if (n > CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++)
        a[i] = x[i] < 0.f ? 0.f : x[i];
}

static void add_into(float *y, const float *t, size_t n)
{
#pragma omp parallel for simd schedule(static) num_threads(cpu_threads()) \
    if (n > CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] += t[i];
}

/* dx[i] += x[i] > 0 ? t[i] : 0 */
static void add_masked(float *dx, const float *x, const float *t, size_t n)
{
#pragma omp parallel for simd schedule(static) num_threads(cpu_threads()) \
    if (n > CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float g = t[i]; /* loaded unconditionally: the select vectorizes */
        dx[i] += x[i] > 0.f ? g : 0.f;
    }
}

static float *region(float *base, size_t off) { return (float *)((char *)base + off); }

/* work rounded up to 64 bytes (e->total has room for it) */
static float *work_base(float *work)
{
    return (float *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
}

/* The convolution's src in layout m (reorder r, or plain when r is NULL)
 * from x: into A, or x itself when plain and not relu'd. */
static int src_prepare(const dconv *e, const dop *r, dnnl_memory_t m, size_t nblk,
                       const conv_desc *d, const float *x, float *A, float *S)
{
    const float *src = x;
    if (r->p) {
        if (reorder_run(e, r, S, e->m_x, x, m, A) < 0)
            return -1;
        if (d->relu_in)
            relu_inplace(A, nblk);
        src = A;
    } else if (d->relu_in) {
        relu_copy(A, x, (size_t)d->n * d->cin * d->h * d->w);
        src = A;
    }
    mem_set(m, src);
    return 0;
}

/* src (plain layout `from`) in layout m: reordered by r into buf, or src
 * itself when the layouts agree (r has no primitive). */
static int plain_prepare(const dconv *e, const dop *r, dnnl_memory_t from, dnnl_memory_t m,
                         const float *src, float *buf, float *S)
{
    if (r->p)
        return reorder_run(e, r, S, from, src, m, buf);
    mem_set(m, src);
    return 0;
}

/* forward of e; -1 before anything was written to y (then the caller falls
 * back to im2col), -2 after */
static int dc_forward(dconv *e, const conv_desc *d, const float *x, const float *w,
                        const float *b, float *y, int acc, float *work)
{
    float *base = work_base(work), *S = region(base, e->oS);
    float *C = region(base, e->oC), *T = region(base, e->oT);
    float *bias = region(base, e->oBias);
    const size_t ny = (size_t)d->n * d->cout * d->oh * d->ow;
    if (src_prepare(e, &e->r_x, e->m_fsrc, e->nfsrc, d, x, region(base, e->oA), S) < 0 ||
        plain_prepare(e, &e->r_w, e->m_w, e->m_fwei, w, region(base, e->oW), S) < 0)
        return -1;
    if (!b) {
        memset(bias, 0, (size_t)d->cout * sizeof *bias);
        b = bias;
    }
    mem_set(e->m_b, b);
    /* without acc, a plain dst is y itself */
    const int direct = !acc && !e->r_y0.p;
    mem_set(e->m_fdst, direct ? y : C);
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, e->m_fsrc},
                               {DNNL_ARG_WEIGHTS, e->m_fwei},
                               {DNNL_ARG_BIAS, e->m_b},
                               {DNNL_ARG_DST, e->m_fdst}};
    if (op_run(e, &e->fwd, S, 4, args) < 0)
        return -1;
    if (direct)
        return 0;
    if (!acc)
        return reorder_run(e, &e->r_y0, S, e->m_fdst, C, e->m_y, y) < 0 ? -2 : 0;
    if (e->sum_y)
        return reorder_run(e, &e->r_y, S, e->m_fdst, C, e->m_y, y) < 0 ? -2 : 0;
    if (reorder_run(e, &e->r_y, S, e->m_fdst, C, e->m_ty, T) < 0)
        return -1;
    add_into(y, T, ny);
    return 0;
}

void cpu_dnnl_conv2d_forward(const conv_desc *d, const float *x, const float *w,
                             const float *b, float *y, int acc, float *work)
{
    dconv *e = dconv_for(d);
    int rc = -1;
    if (e) {
        pthread_mutex_lock(&e->lock);
        rc = dc_forward(e, d, x, w, b, y, acc, work);
        dnnl_stream_wait(e->st);
        if (rc < 0)
            e->ok = 0; /* from now on im2col */
        pthread_mutex_unlock(&e->lock);
    }
    if (rc == -1)
        cpu_conv2d_forward(d, x, w, b, y, acc, work);
    else if (rc < 0)
        rm_error("oneDNN convolution failed while writing its output");
}

/* Backward; *done collects what has been added: 1 dw (and db), 2 dx, so
 * that a failure falls back for the rest only. */
static int dc_backward(dconv *e, const conv_desc *d, const float *x, const float *w,
                         const float *dy, float *dx, float *dw, float *db, float *work,
                         int *done)
{
    float *base = work_base(work), *S = region(base, e->oS);
    float *A = region(base, e->oA), *C = region(base, e->oC);
    float *T = region(base, e->oT), *bias = region(base, e->oBias);
    const size_t nx = (size_t)d->n * d->cin * d->h * d->w;
    const size_t nw = (size_t)d->cout * (d->cin / d->groups) * d->kh * d->kw;
    int have_dd = 0; /* diff_dst of backward-data is in place */
    if (dw) {
        dnnl_memory_t mdd = e->m_bwdd;
        if (e->bwdd_shared) {
            if (plain_prepare(e, &e->r_dy, e->m_dy, e->m_bdd, dy, C, S) < 0)
                return -1;
            have_dd = 1;
            mdd = e->m_bdd;
        } else if (plain_prepare(e, &e->r_dy2, e->m_dy, e->m_bwdd, dy, region(base, e->oC2),
                                 S) < 0) {
            return -1;
        }
        if (src_prepare(e, &e->r_x2, e->m_bsrc, e->nbsrc, d, x, A, S) < 0)
            return -1;
        mem_set(e->m_bdw, region(base, e->oDW));
        mem_set(e->m_dbias, bias);
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, e->m_bsrc},
                                   {DNNL_ARG_DIFF_DST, mdd},
                                   {DNNL_ARG_DIFF_WEIGHTS, e->m_bdw},
                                   {DNNL_ARG_DIFF_BIAS, e->m_dbias}};
        if (op_run(e, &e->bwd_w, S, 4, args) < 0)
            return -1;
        if (e->sum_dw) {
            if (reorder_run(e, &e->r_dw, S, e->m_bdw, region(base, e->oDW), e->m_dw, dw) < 0)
                return -2;
        } else {
            if (reorder_run(e, &e->r_dw, S, e->m_bdw, region(base, e->oDW), e->m_tw, T) < 0)
                return -1;
            add_into(dw, T, nw);
        }
        if (db)
            for (int c = 0; c < d->cout; c++)
                db[c] += bias[c];
        *done |= 1;
    }
    if (dx) {
        if (!have_dd && plain_prepare(e, &e->r_dy, e->m_dy, e->m_bdd, dy, C, S) < 0)
            return -1;
        if (plain_prepare(e, &e->r_w2, e->m_w, e->m_bwei, w, region(base, e->oW), S) < 0)
            return -1;
        /* diff_src into A (free again), then added by a sum reorder; or,
         * under relu_in (or without the sum reorder), reordered to a plain
         * temporary in C (diff_dst is spent by then; A itself when oneDNN
         * chose the plain layout) and added, masked, by a loop */
        mem_set(e->m_bds, A);
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, e->m_bdd},
                                   {DNNL_ARG_WEIGHTS, e->m_bwei},
                                   {DNNL_ARG_DIFF_SRC, e->m_bds}};
        if (op_run(e, &e->bwd_d, S, 3, args) < 0)
            return -1;
        if (!d->relu_in && e->sum_dx)
            return reorder_run(e, &e->r_dx, S, e->m_bds, A, e->m_dx, dx) < 0 ? -2 : 0;
        float *tmp = A;
        if (e->r_dx0.p) {
            if (reorder_run(e, &e->r_dx0, S, e->m_bds, A, e->m_tx, C) < 0)
                return -1;
            tmp = C;
        }
        if (d->relu_in)
            add_masked(dx, x, tmp, nx);
        else
            add_into(dx, tmp, nx);
        *done |= 2;
    }
    return 0;
}

void cpu_dnnl_conv2d_backward(const conv_desc *d, const float *x, const float *w,
                              const float *dy, float *dx, float *dw, float *db,
                              float *work)
{
    if (db && !dw) {
        cpu_conv_bias_grad(d, dy, db);
        db = NULL;
    }
    if (!dx && !dw)
        return;
    dconv *e = dconv_for(d);
    int rc = -1, done = 0;
    if (e) {
        pthread_mutex_lock(&e->lock);
        rc = dc_backward(e, d, x, w, dy, dx, dw, db, work, &done);
        dnnl_stream_wait(e->st);
        if (rc < 0)
            e->ok = 0;
        pthread_mutex_unlock(&e->lock);
    }
    if (rc == -1)
        cpu_conv2d_backward(d, x, w, dy, (done & 2) ? NULL : dx, (done & 1) ? NULL : dw,
                            (done & 1) ? NULL : db, work);
    else if (rc < 0)
        rm_error("oneDNN convolution failed while adding its gradients");
}
