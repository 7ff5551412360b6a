/* Per-operation timing of a backend: see profile.h. */
#include "tensor/profile.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/err.h"

enum {
    P_ALLOC, P_FREE, P_UPLOAD, P_DOWNLOAD, P_ZERO, P_COPY, P_AXPY, P_SCALE,
    P_CONV_F, P_CONV_B, P_BN_TRAIN, P_BN_EVAL, P_BN_B, P_RELU_F, P_RELU_B,
    P_AVG_F, P_AVG_B, P_MAX_F, P_MAX_B, P_GAP_F, P_GAP_B, P_LIN_F, P_LIN_B,
    P_SHORT_F, P_SHORT_B, P_SLICE_F, P_SLICE_B, P_GRAM, P_GRAM_B, P_CE, P_SGD,
    P_CE_DEV, P_CKA, P_REC_RUN, P_N
};

static const char *const op_names[P_N] = {
    "alloc", "free", "upload", "download", "zero", "copy", "axpy", "scale",
    "conv2d_forward", "conv2d_backward", "bn_forward_train", "bn_forward_eval", "bn_backward",
    "relu_forward", "relu_backward", "avgpool_forward", "avgpool_backward", "maxpool_forward",
    "maxpool_backward", "gap_forward", "gap_backward", "linear_forward", "linear_backward",
    "shortcut_a_forward", "shortcut_a_backward", "slice_forward", "slice_backward", "gram",
    "gram_backward", "softmax_ce", "sgd_step", "softmax_ce_dev", "cka", "record_run"};

#define NSLOT 2
#define MAX_CONVS 512

static const backend *inner[NSLOT];
static backend table[NSLOT];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* the slots and the counts */
static atomic_int prof_on;

static long long op_calls[P_N];
static double op_secs[P_N];
static prof_conv convs[MAX_CONVS];
static int nconv, conv_more;
static double wall_sum, wall_since; /* counted wall time; when enabled last */

/* the first failure a synchronization after an operation reported, kept
 * for the caller's own sync (which it would otherwise have reported) */
static _Thread_local char pending[1024];
static _Thread_local int has_pending;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void conv_add(const conv_desc *dp, int bwd, double dt)
{
    conv_desc d = *dp;
    d.keep = NULL; /* by shape */
    int i = 0;
    while (i < nconv && memcmp(&convs[i].d, &d, sizeof d))
        i++;
    if (i == nconv) {
        if (nconv == MAX_CONVS) {
            conv_more++;
            return;
        }
        memset(&convs[nconv], 0, sizeof convs[nconv]);
        convs[nconv++].d = d;
    }
    convs[i].calls[bwd]++;
    convs[i].seconds[bwd] += dt;
}

/* After operation op, started at t0: wait for the device, count the time. */
static void done(const backend *b, int op, double t0, const conv_desc *d)
{
    if (b->sync() < 0 && !has_pending) {
        snprintf(pending, sizeof pending, "%s", rm_last_error());
        has_pending = 1;
    }
    const double dt = now() - t0;
    pthread_mutex_lock(&mu);
    op_calls[op]++;
    op_secs[op] += dt;
    if (d)
        conv_add(d, op == P_CONV_B, dt);
    pthread_mutex_unlock(&mu);
}

static int sync_with(const backend *b)
{
    int rc = b->sync();
    if (has_pending) {
        has_pending = 0;
        return rm_error("%s", pending);
    }
    return rc;
}

#define SLOT 0
#include "tensor/profile_wrap.h"
#undef SLOT
#define SLOT 1
#include "tensor/profile_wrap.h"
#undef SLOT

const backend *backend_profiled(const backend *be)
{
    const backend *r = NULL;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < NSLOT && !r; i++)
        if (be == &table[i] || be == inner[i])
            r = &table[i];
    for (int i = 0; i < NSLOT && !r; i++)
        if (!inner[i]) {
            inner[i] = be;
            if (i == 0)
                wrap0(&table[0]);
            else
                wrap1(&table[1]);
            r = &table[i];
        }
    pthread_mutex_unlock(&mu);
    if (!r)
        rm_error("no room to profile another backend (%s): two at most", be->name);
    return r;
}

const backend *backend_unprofiled(const backend *be)
{
    for (int i = 0; i < NSLOT; i++)
        if (be == &table[i])
            return inner[i];
    return be;
}

void backend_profile_enable(int on)
{
    pthread_mutex_lock(&mu);
    if (on && !prof_on)
        wall_since = now();
    else if (!on && prof_on)
        wall_sum += now() - wall_since;
    atomic_store(&prof_on, on != 0);
    pthread_mutex_unlock(&mu);
}

int backend_profile_enabled(void) { return atomic_load(&prof_on); }

void backend_profile_reset(void)
{
    pthread_mutex_lock(&mu);
    memset(op_calls, 0, sizeof op_calls);
    memset(op_secs, 0, sizeof op_secs);
    nconv = conv_more = 0;
    wall_sum = 0;
    wall_since = now();
    pthread_mutex_unlock(&mu);
}

double backend_profile_wall(void)
{
    pthread_mutex_lock(&mu);
    double w = wall_sum + (prof_on ? now() - wall_since : 0);
    pthread_mutex_unlock(&mu);
    return w;
}

static int by_op_time(const void *a, const void *b)
{
    const prof_op *x = a, *y = b;
    return (x->seconds < y->seconds) - (x->seconds > y->seconds);
}

int backend_profile_ops(prof_op *out, int max)
{
    prof_op all[P_N];
    int n = 0;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < P_N; i++)
        if (op_calls[i])
            all[n++] = (prof_op){op_names[i], op_calls[i], op_secs[i]};
    pthread_mutex_unlock(&mu);
    qsort(all, (size_t)n, sizeof *all, by_op_time);
    if (n > max)
        n = max;
    memcpy(out, all, (size_t)n * sizeof *out);
    return n;
}

static int by_conv_time(const void *a, const void *b)
{
    const prof_conv *x = a, *y = b;
    const double tx = x->seconds[0] + x->seconds[1], ty = y->seconds[0] + y->seconds[1];
    return (tx < ty) - (tx > ty);
}

int backend_profile_convs(prof_conv *out, int max, int *more)
{
    prof_conv *all = malloc(MAX_CONVS * sizeof *all);
    if (!all) {
        *more = 0;
        return rm_error("out of memory");
    }
    pthread_mutex_lock(&mu);
    int n = nconv;
    memcpy(all, convs, (size_t)n * sizeof *all);
    *more = conv_more;
    pthread_mutex_unlock(&mu);
    qsort(all, (size_t)n, sizeof *all, by_conv_time);
    if (n > max) {
        *more += n - max;
        n = max;
    }
    memcpy(out, all, (size_t)n * sizeof *out);
    free(all);
    return n;
}
