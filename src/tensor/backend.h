/* The compute backend: a table of operations on float32 NCHW arrays, chosen at
 * run time. The CPU backend (cpu_*.c, BLAS) is the reference; the CUDA backend
 * (kernels/) mirrors every entry with the same contract.
 *
 * Conventions shared by every entry:
 *  - Pointers are device pointers of this backend (host memory for the CPU).
 *  - Forward ops write their output with `acc`: acc == 0 overwrites y,
 *    acc == 1 adds into y (y += op(x)). Networks use it to sum the edges of a
 *    cell into the node buffer without a separate add.
 *  - Backward ops ACCUMULATE: dx += ..., dw += ..., db += ...; the caller
 *    zeroes gradient buffers. A NULL dx (or dw/db) means "not needed". The
 *    two a network's gradient flows through most, conv2d_backward and
 *    bn_backward, take dx_acc: 1 accumulates into dx, 0 overwrites it
 *    (dx = ..., as accumulating into zeros; the graph passes 0 where dx's
 *    first contribution is theirs, instead of zeroing it first).
 *  - `work` is scratch memory of at least the size the matching *_work_size
 *    function returns (in floats); the caller plans it once per network.
 *  - Reductions that decide a score accumulate in double.
 */
#ifndef RM_BACKEND_H
#define RM_BACKEND_H

#include <stddef.h>
#include <stdint.h>

/* 2-D convolution, PyTorch semantics (cross-correlation, zero padding).
 * x is (n,cin,h,w), w is (cout,cin/groups,kh,kw), b is (cout) or NULL,
 * y is (n,cout,oh,ow) with oh = (h + 2*pad - dil*(kh-1) - 1)/stride + 1. */
typedef struct conv_desc {
    int n, cin, h, w;
    int cout, kh, kw;
    int stride, pad, dil, groups;
    int oh, ow;
    /* relu_in != 0: the convolution reads max(x, 0) instead of x (a fused
     * ReLU -> Conv); the backward then masks dx by x > 0. */
    int relu_in;
    /* NULL, or (relu_in, backends with conv_keeps_relu) n*cin*h*w floats
     * of this convolution's own where the forward leaves max(x, 0) for the
     * backward of the same x, which then reads it instead of recomputing it.
     * Not part of the shape: caches and the profile ignore it. */
    float *keep;
} conv_desc;

/* Fill oh/ow from the other fields; returns -1 (with rm_error) on an invalid
 * description (channels not divisible by groups, empty output, ...). */
int conv_desc_init(conv_desc *d);

/* 2-D pooling window. x is (n,c,h,w), y is (n,c,oh,ow). */
typedef struct pool_desc {
    int n, c, h, w;
    int k, stride, pad;
    int oh, ow;
    int count_include_pad; /* avg pool only: divide by k*k (1) or by the number
                              of in-image elements of the window (0) */
} pool_desc;

int pool_desc_init(pool_desc *d);

typedef struct backend {
    const char *name;
    /* NULL: full float32 throughout (the results match the CPU backend to
     * rounding); otherwise what is not, e.g. "tf32": the CUDA backend's
     * convolutions on TF32 tensor cores (RMINAS_CUDA_TF32=1). Part of a
     * score's settings line, so scores made with it are kept apart. */
    const char *math;

    /* memory */
    void *(*alloc)(size_t bytes);                /* zeroed; NULL on failure */
    void (*free)(void *p);
    void (*upload)(void *dst, const void *src, size_t bytes);   /* host -> device */
    void (*download)(void *dst, const void *src, size_t bytes); /* device -> host */
    void (*zero)(float *x, size_t n);
    void (*copy)(float *dst, const float *src, size_t n);

    /* y = a*x + (acc ? y : 0), elementwise over n values */
    void (*axpy)(float *y, const float *x, float a, size_t n, int acc);
    void (*scale)(float *x, float a, size_t n);

    /* convolution; work holds conv_work_size(d) floats (on the CPU it grows
     * with backend_cpu_threads(): plan work after setting the threads).
     * conv_keeps_relu != 0: the backend uses conv_desc.keep (CUDA: a ReLU
     * pass fewer in the backward of a fused ReLU -> Conv), and the graph
     * gives each such convolution of a training plan one. */
    int conv_keeps_relu;
    size_t (*conv_work_size)(const conv_desc *d);
    void (*conv2d_forward)(const conv_desc *d, const float *x, const float *w,
                           const float *b, float *y, int acc, float *work);
    void (*conv2d_backward)(const conv_desc *d, const float *x, const float *w,
                            const float *dy, float *dx, float *dw, float *db,
                            float *work, int dx_acc);

    /* Batch normalization over (n, c, hw), eps as given.
     * Training: uses batch statistics; saves mean and invstd = 1/sqrt(var+eps)
     * (biased var) in save_mean/save_invstd (c each); updates running stats
     * with PyTorch semantics when running_mean != NULL:
     *   rm = (1-momentum)*rm + momentum*mean,
     *   rv = (1-momentum)*rv + momentum*var_unbiased (var * m/(m-1), m = n*hw).
     * Eval: y = (x - rm)/sqrt(rv + eps)*gamma + beta.
     * gamma/beta may be NULL (affine=False: 1 and 0). A following ReLU is a
     * separate relu_forward (in place on y). */
    void (*bn_forward_train)(int n, int c, int hw, const float *x,
                             const float *gamma, const float *beta, float *y,
                             int acc, float *save_mean, float *save_invstd,
                             float *running_mean, float *running_var,
                             float momentum, float eps);
    void (*bn_forward_eval)(int n, int c, int hw, const float *x,
                            const float *gamma, const float *beta, float *y,
                            int acc, const float *running_mean,
                            const float *running_var, float eps);
    /* Backward of training-mode BN (batch statistics), from x and the saved
     * mean/invstd. dgamma/dbeta may be NULL. */
    void (*bn_backward)(int n, int c, int hw, const float *x,
                        const float *gamma, const float *save_mean,
                        const float *save_invstd, const float *dy, float *dx,
                        float *dgamma, float *dbeta, int dx_acc);

    /* ReLU: y = max(x, 0) (x == y allowed: in place). Backward from the
     * OUTPUT y: dx += dy * (y > 0) (dx == dy allowed: in place, then it
     * overwrites instead of accumulating). */
    void (*relu_forward)(const float *x, float *y, size_t n);
    void (*relu_backward)(const float *y, const float *dy, float *dx, size_t n);

    void (*avgpool_forward)(const pool_desc *d, const float *x, float *y, int acc);
    void (*avgpool_backward)(const pool_desc *d, const float *dy, float *dx);
    /* max pool (padding counts as -inf); argmax (n*c*oh*ow ints) saves the
     * flat input index within each (n,c) plane for the backward. */
    void (*maxpool_forward)(const pool_desc *d, const float *x, float *y, int acc,
                            int32_t *argmax);
    void (*maxpool_backward)(const pool_desc *d, const float *dy,
                             const int32_t *argmax, float *dx);

    /* global average pool: x (n,c,hw) -> y (n,c) */
    void (*gap_forward)(int n, int c, int hw, const float *x, float *y);
    void (*gap_backward)(int n, int c, int hw, const float *dy, float *dx);

    /* linear: x (n,in), w (out,in), b (out) or NULL, y (n,out) */
    void (*linear_forward)(int n, int in, int out, const float *x,
                           const float *w, const float *b, float *y);
    void (*linear_backward)(int n, int in, int out, const float *x,
                            const float *w, const float *dy, float *dx,
                            float *dw, float *db);

    /* ResNet option-A shortcut: x (n,cin,h,w) -> y (n,cin+2*padc,h/2,w/2),
     * y[:, padc:padc+cin] = x[:, :, ::2, ::2], zero elsewhere. */
    void (*shortcut_a_forward)(int n, int cin, int h, int w, int padc,
                               const float *x, float *y, int acc);
    void (*shortcut_a_backward)(int n, int cin, int h, int w, int padc,
                                const float *dy, float *dx);

    /* Strided channel copy (channel concatenation, DARTS's factorized
     * reduce): x (n,c,h,w) -> channels yoff..yoff+c-1 of y (n,yc,oh,ow),
     * oh = (h - off + step - 1)/step (ow alike),
     *   y[:, yoff+ch, i, j] = x[:, ch, off + i*step, off + j*step]
     * (acc = 1 adds); y's other channels are left alone. Backward:
     *   dx[:, ch, off + i*step, off + j*step] += dy[:, yoff+ch, i, j]. */
    void (*slice_forward)(int n, int c, int h, int w, int off, int step, const float *x,
                          int yc, int yoff, float *y, int acc);
    void (*slice_backward)(int n, int c, int h, int w, int off, int step, const float *dy,
                           int yc, int yoff, float *dx);

    /* Gram matrix of per-sample rows: x (n,p) row-major -> k = x x^T (n,n),
     * exactly symmetric (float products, as torch.mm). Backward:
     * dx += (dk + dk^T) x. */
    void (*gram)(int n, int p, const float *x, float *k);
    void (*gram_backward)(int n, int p, const float *x, const float *dk, float *dx);

    /* Softmax cross-entropy over logits (n,k) and labels (n, int32 in [0,k)).
     * Writes per-sample losses to loss (n doubles, may be NULL) and returns
     * the mean loss. If dlogits != NULL, writes (not accumulates)
     * dlogits = scale * (softmax - onehot) / n, the gradient of scale*mean. */
    double (*softmax_ce)(int n, int k, const float *logits, const int32_t *labels,
                         double *loss, float *dlogits, float scale);

    /* SGD with momentum and weight decay, exactly torch.optim.SGD
     * (dampening 0, no nesterov) over n parameters:
     *   d = g + wd*p; buf = first ? d : momentum*buf + d; p -= lr*buf.
     * With momentum == 0, buf is not touched: p -= lr*d.
     * unless: NULL, or nunless doubles in the backend's memory, read when
     * the step runs: if any is not finite (NaN, +-inf) the step changes
     * nothing (the RMI step's loss terms: a diverged student is not
     * updated, decided where the loss is, without waiting for the host). */
    void (*sgd_step)(float *p, const float *g, float *buf, size_t n, float lr,
                     float momentum, float wd, int first, const double *unless,
                     int nunless);

    /* Wait until every queued operation has finished and report failures:
     * returns 0, or -1 with rm_error naming the first call that failed since
     * the last sync (the library call, its file and line), which it clears.
     * Operations of an asynchronous backend (CUDA) return before they run,
     * so their errors surface here (and in download/softmax_ce, which wait).
     * The CPU backend has nothing queued and always returns 0. */
    int (*sync)(void);

    /* ---- optional: a training step that stays on the device ----
     * NULL on the CPU backend (its RMI step computes the loss on the host).
     * The RMI evaluator uses them when all are present (src/rmi/rmi.c). */

    /* softmax_ce with the mean loss written to *mean (device memory, one
     * double) instead of returned: no wait for the host. */
    void (*softmax_ce_dev)(int n, int k, const float *logits, const int32_t *labels,
                           float *dlogits, float scale, double *mean);
    /* Linear CKA of the Gram matrices K and L (n x n, device), exactly as
     * cka_from_grams (rmi/cka.h) computes it, into *out (device, one double);
     * if dK != NULL, dK = scale * dCKA/dK (float, the host's rounding: the
     * gradient rounded to float, then multiplied by scale in float). */
    void (*cka)(int n, const float *K, const float *L, int centered, float scale, float *dK,
                double *out);
    /* Record the operations issued between record_begin and record_end
     * (which are then NOT run) into a replayable recording (a CUDA graph):
     * record_run replays them with the same pointers and arguments.
     * record_end returns NULL with rm_error when recording failed (the
     * operations must then be issued again directly). */
    int (*record_begin)(void);
    void *(*record_end)(void);
    void (*record_run)(void *rec);
    void (*record_free)(void *rec);

    /* ---- optional: operations issued from several threads at once ----
     * Scoring several architectures concurrently (set jobs) runs each in
     * its own thread. thread_begin(slot) readies the calling thread, slot
     * being distinct among the threads that run at the same time (0 to
     * jobs - 1): the CPU backend gives it the thread count of
     * backend_cpu_set_threads and oneDNN primitives of its own (one
     * primitive serves one thread at a time); the CUDA backend a stream and
     * cuBLAS/cuDNN handles of its own. thread_end releases them, after the
     * thread's last operation (the CUDA backend keeps them for the next
     * thread that begins with the same slot). Memory may be allocated in
     * one thread and freed in another once every thread that used it has
     * waited for its work (sync, download or thread_end): the CUDA backend
     * frees into a stream-ordered pool on the freeing thread's stream,
     * which is not ordered after other streams' work. NULL: nothing to do. */
    int (*thread_begin)(int slot);
    void (*thread_end)(void);
} backend;

/* The CPU backend (always present). */
const backend *backend_cpu(void);
/* The CUDA backend, or NULL (with rm_error) when not built or no GPU. */
const backend *backend_cuda(void);
/* Look a backend up by name ("cpu", "cuda"); NULL with rm_error if unknown
 * or unavailable. */
const backend *backend_get(const char *name);

/* Threads used by the CPU backend (OpenMP and BLAS); 0 = all cores
 * (OMP_NUM_THREADS if set), which is also the upper bound: more are clamped
 * to it. BLAS itself runs single-threaded inside the backend's OpenMP loops.
 * conv_work_size is planned for the upper bound, so the count may change at
 * any time between calls. */
void backend_cpu_set_threads(int n);
int backend_cpu_threads(void);

/* The CPU backend's convolutions: "winograd2" (the default when built with
 * oneDNN: our own Winograd F(2x2, 3x3), cpu_wino.c, for 3x3 stride-1 pad-1
 * ungrouped shapes with channels in multiples of 8 on a CPU with AVX2 + FMA,
 * the rest as under "dnnl"), "winograd4" (as "winograd2", with our F(4x4,
 * 3x3) for those of 16 tiles a sample and more), "dnnl" (oneDNN's direct convolutions; shapes
 * where im2col measured faster still run on im2col), "winograd" (as "dnnl",
 * with oneDNN's Winograd F(4x4, 3x3) for the 3x3 stride-1 ungrouped shapes
 * where oneDNN offers it: AVX-512 CPUs) or "im2col" (im2col + OpenBLAS
 * sgemm, the only one without oneDNN). The environment variable
 * RMINAS_CONV=im2col|dnnl|winograd|winograd2|winograd4 sets it at first use. Returns
 * -1 with rm_error for an unknown name, or for the oneDNN ones without
 * oneDNN. conv_work_size covers all of them, so it may change at any time
 * between calls. */
int backend_cpu_set_conv(const char *impl);
const char *backend_cpu_conv(void);

#endif
