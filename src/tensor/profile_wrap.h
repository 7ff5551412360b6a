/* The wrappers of one profiled backend, included by profile.c once per
 * slot with SLOT defined (0, 1): each slot's functions call inner[SLOT].
 * Not a public header. */
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define W(name) CAT(CAT(p, SLOT), _##name)
#define IN (inner[SLOT])
/* run CALL, timed as OP (conv: d, else NULL) while profiling is on */
#define TIMED(op, d, call)                                                                    \
    do {                                                                                      \
        if (!prof_on) {                                                                       \
            call;                                                                             \
            return;                                                                           \
        }                                                                                     \
        const double t0_ = now();                                                             \
        call;                                                                                 \
        done(IN, op, t0_, d);                                                                 \
    } while (0)

static void *W(alloc)(size_t bytes)
{
    if (!prof_on)
        return IN->alloc(bytes);
    const double t0 = now();
    void *p = IN->alloc(bytes);
    done(IN, P_ALLOC, t0, NULL);
    return p;
}
static void W(free)(void *p) { TIMED(P_FREE, NULL, IN->free(p)); }
static void W(upload)(void *dst, const void *src, size_t bytes)
{
    TIMED(P_UPLOAD, NULL, IN->upload(dst, src, bytes));
}
static void W(download)(void *dst, const void *src, size_t bytes)
{
    TIMED(P_DOWNLOAD, NULL, IN->download(dst, src, bytes));
}
static void W(zero)(float *x, size_t n) { TIMED(P_ZERO, NULL, IN->zero(x, n)); }
static void W(copy)(float *dst, const float *src, size_t n)
{
    TIMED(P_COPY, NULL, IN->copy(dst, src, n));
}
static void W(axpy)(float *y, const float *x, float a, size_t n, int acc)
{
    TIMED(P_AXPY, NULL, IN->axpy(y, x, a, n, acc));
}
static void W(scale)(float *x, float a, size_t n) { TIMED(P_SCALE, NULL, IN->scale(x, a, n)); }
static void W(conv2d_forward)(const conv_desc *d, const float *x, const float *w,
                              const float *b, float *y, int acc, float *work)
{
    TIMED(P_CONV_F, d, IN->conv2d_forward(d, x, w, b, y, acc, work));
}
static void W(conv2d_backward)(const conv_desc *d, const float *x, const float *w,
                               const float *dy, float *dx, float *dw, float *db, float *work,
                               int dx_acc)
{
    TIMED(P_CONV_B, d, IN->conv2d_backward(d, x, w, dy, dx, dw, db, work, dx_acc));
}
static void W(bn_forward_train)(int n, int c, int hw, const float *x, const float *gamma,
                                const float *beta, float *y, int acc, float *save_mean,
                                float *save_invstd, float *running_mean, float *running_var,
                                float momentum, float eps)
{
    TIMED(P_BN_TRAIN, NULL,
          IN->bn_forward_train(n, c, hw, x, gamma, beta, y, acc, save_mean, save_invstd,
                               running_mean, running_var, momentum, eps));
}
static void W(bn_forward_eval)(int n, int c, int hw, const float *x, const float *gamma,
                               const float *beta, float *y, int acc,
                               const float *running_mean, const float *running_var, float eps)
{
    TIMED(P_BN_EVAL, NULL,
          IN->bn_forward_eval(n, c, hw, x, gamma, beta, y, acc, running_mean, running_var,
                              eps));
}
static void W(bn_backward)(int n, int c, int hw, const float *x, const float *gamma,
                           const float *save_mean, const float *save_invstd, const float *dy,
                           float *dx, float *dgamma, float *dbeta, int dx_acc)
{
    TIMED(P_BN_B, NULL, IN->bn_backward(n, c, hw, x, gamma, save_mean, save_invstd, dy, dx,
                                        dgamma, dbeta, dx_acc));
}
static void W(relu_forward)(const float *x, float *y, size_t n)
{
    TIMED(P_RELU_F, NULL, IN->relu_forward(x, y, n));
}
static void W(relu_backward)(const float *y, const float *dy, float *dx, size_t n)
{
    TIMED(P_RELU_B, NULL, IN->relu_backward(y, dy, dx, n));
}
static void W(avgpool_forward)(const pool_desc *d, const float *x, float *y, int acc)
{
    TIMED(P_AVG_F, NULL, IN->avgpool_forward(d, x, y, acc));
}
static void W(avgpool_backward)(const pool_desc *d, const float *dy, float *dx)
{
    TIMED(P_AVG_B, NULL, IN->avgpool_backward(d, dy, dx));
}
static void W(maxpool_forward)(const pool_desc *d, const float *x, float *y, int acc,
                               int32_t *argmax)
{
    TIMED(P_MAX_F, NULL, IN->maxpool_forward(d, x, y, acc, argmax));
}
static void W(maxpool_backward)(const pool_desc *d, const float *dy, const int32_t *argmax,
                                float *dx)
{
    TIMED(P_MAX_B, NULL, IN->maxpool_backward(d, dy, argmax, dx));
}
static void W(gap_forward)(int n, int c, int hw, const float *x, float *y)
{
    TIMED(P_GAP_F, NULL, IN->gap_forward(n, c, hw, x, y));
}
static void W(gap_backward)(int n, int c, int hw, const float *dy, float *dx)
{
    TIMED(P_GAP_B, NULL, IN->gap_backward(n, c, hw, dy, dx));
}
static void W(linear_forward)(int n, int in, int out, const float *x, const float *w,
                              const float *b, float *y)
{
    TIMED(P_LIN_F, NULL, IN->linear_forward(n, in, out, x, w, b, y));
}
static void W(linear_backward)(int n, int in, int out, const float *x, const float *w,
                               const float *dy, float *dx, float *dw, float *db)
{
    TIMED(P_LIN_B, NULL, IN->linear_backward(n, in, out, x, w, dy, dx, dw, db));
}
static void W(shortcut_a_forward)(int n, int cin, int h, int w, int padc, const float *x,
                                  float *y, int acc)
{
    TIMED(P_SHORT_F, NULL, IN->shortcut_a_forward(n, cin, h, w, padc, x, y, acc));
}
static void W(shortcut_a_backward)(int n, int cin, int h, int w, int padc, const float *dy,
                                   float *dx)
{
    TIMED(P_SHORT_B, NULL, IN->shortcut_a_backward(n, cin, h, w, padc, dy, dx));
}
static void W(slice_forward)(int n, int c, int h, int w, int off, int step, const float *x,
                             int yc, int yoff, float *y, int acc)
{
    TIMED(P_SLICE_F, NULL, IN->slice_forward(n, c, h, w, off, step, x, yc, yoff, y, acc));
}
static void W(slice_backward)(int n, int c, int h, int w, int off, int step, const float *dy,
                              int yc, int yoff, float *dx)
{
    TIMED(P_SLICE_B, NULL, IN->slice_backward(n, c, h, w, off, step, dy, yc, yoff, dx));
}
static void W(gram)(int n, int p, const float *x, float *k)
{
    TIMED(P_GRAM, NULL, IN->gram(n, p, x, k));
}
static void W(gram_backward)(int n, int p, const float *x, const float *dk, float *dx)
{
    TIMED(P_GRAM_B, NULL, IN->gram_backward(n, p, x, dk, dx));
}
static double W(softmax_ce)(int n, int k, const float *logits, const int32_t *labels,
                            double *loss, float *dlogits, float scale)
{
    if (!prof_on)
        return IN->softmax_ce(n, k, logits, labels, loss, dlogits, scale);
    const double t0 = now();
    double r = IN->softmax_ce(n, k, logits, labels, loss, dlogits, scale);
    done(IN, P_CE, t0, NULL);
    return r;
}
static void W(sgd_step)(float *p, const float *g, float *buf, size_t n, float lr,
                        float momentum, float wd, int first, const double *unless,
                        int nunless)
{
    TIMED(P_SGD, NULL, IN->sgd_step(p, g, buf, n, lr, momentum, wd, first, unless, nunless));
}
static int W(sync)(void) { return sync_with(IN); }
static void W(softmax_ce_dev)(int n, int k, const float *logits, const int32_t *labels,
                              float *dlogits, float scale, double *mean)
{
    TIMED(P_CE_DEV, NULL, IN->softmax_ce_dev(n, k, logits, labels, dlogits, scale, mean));
}
static void W(cka)(int n, const float *K, const float *L, int centered, float scale, float *dK,
                   double *out)
{
    TIMED(P_CKA, NULL, IN->cka(n, K, L, centered, scale, dK, out));
}
static int W(record_begin)(void)
{
    if (prof_on)
        return rm_error("not recorded while profiling: every operation runs and is timed "
                        "on its own");
    return IN->record_begin();
}
static void W(record_run)(void *rec) { TIMED(P_REC_RUN, NULL, IN->record_run(rec)); }

/* inner[SLOT]'s table with every entry it has wrapped */
static void CAT(wrap, SLOT)(backend *t)
{
    const backend *b = IN;
    *t = *b;
#define SET(name)                                                                             \
    if (b->name)                                                                              \
    t->name = W(name)
    SET(alloc);
    SET(free);
    SET(upload);
    SET(download);
    SET(zero);
    SET(copy);
    SET(axpy);
    SET(scale);
    SET(conv2d_forward);
    SET(conv2d_backward);
    SET(bn_forward_train);
    SET(bn_forward_eval);
    SET(bn_backward);
    SET(relu_forward);
    SET(relu_backward);
    SET(avgpool_forward);
    SET(avgpool_backward);
    SET(maxpool_forward);
    SET(maxpool_backward);
    SET(gap_forward);
    SET(gap_backward);
    SET(linear_forward);
    SET(linear_backward);
    SET(shortcut_a_forward);
    SET(shortcut_a_backward);
    SET(slice_forward);
    SET(slice_backward);
    SET(gram);
    SET(gram_backward);
    SET(softmax_ce);
    SET(sgd_step);
    SET(sync);
    SET(softmax_ce_dev);
    SET(cka);
    SET(record_begin);
    SET(record_run);
#undef SET
}

#undef TIMED
#undef IN
#undef W
#undef CAT
#undef CAT2
