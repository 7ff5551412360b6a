/* Validation of convolution and pooling descriptions: fills the output size,
 * or explains what is wrong with rm_error. */
#include "tensor/backend.h"

#include <limits.h>

#include "util/err.h"

/* Output length of a window sliding over `len` padded values: the window
 * spans `span` values; 0 or less means "no output". */
static long window_out(long len, long pad, long span, long stride)
{
    long num = len + 2 * pad - span;
    if (num < 0)
        return 0;
    return num / stride + 1;
}

int conv_desc_init(conv_desc *d)
{
    if (!d)
        return rm_error("conv: no description");
    if (d->n < 1 || d->cin < 1 || d->h < 1 || d->w < 1 || d->cout < 1 ||
        d->kh < 1 || d->kw < 1)
        return rm_error("conv: sizes must be positive (n %d, cin %d, %dx%d "
                        "input, cout %d, %dx%d kernel)",
                        d->n, d->cin, d->h, d->w, d->cout, d->kh, d->kw);
    if (d->stride < 1)
        return rm_error("conv: stride %d must be at least 1", d->stride);
    if (d->dil < 1)
        return rm_error("conv: dilation %d must be at least 1", d->dil);
    if (d->pad < 0)
        return rm_error("conv: padding %d must not be negative", d->pad);
    if (d->groups < 1)
        return rm_error("conv: groups %d must be at least 1", d->groups);
    if (d->cin % d->groups)
        return rm_error("conv: %d input channels are not divisible by %d groups",
                        d->cin, d->groups);
    if (d->cout % d->groups)
        return rm_error("conv: %d output channels are not divisible by %d groups",
                        d->cout, d->groups);
    long oh = window_out(d->h, d->pad, (long)d->dil * (d->kh - 1) + 1, d->stride);
    long ow = window_out(d->w, d->pad, (long)d->dil * (d->kw - 1) + 1, d->stride);
    if (oh < 1 || ow < 1)
        return rm_error("conv: empty output (%dx%d input, %dx%d kernel, "
                        "dilation %d, padding %d)",
                        d->h, d->w, d->kh, d->kw, d->dil, d->pad);
    /* BLAS takes int sizes: one sample's planes and its column matrix
     * (cin/groups*kh*kw rows of oh*ow) must fit. */
    long k = (long)(d->cin / d->groups) * d->kh * d->kw;
    if ((long)d->cin * d->h * d->w > INT_MAX || (long)d->cout * oh * ow > INT_MAX ||
        k * oh * ow > INT_MAX)
        return rm_error("conv: one sample is too large (%d channels of %dx%d)",
                        d->cin, d->h, d->w);
    d->oh = (int)oh;
    d->ow = (int)ow;
    return 0;
}

int pool_desc_init(pool_desc *d)
{
    if (!d)
        return rm_error("pool: no description");
    if (d->n < 1 || d->c < 1 || d->h < 1 || d->w < 1 || d->k < 1)
        return rm_error("pool: sizes must be positive (n %d, c %d, %dx%d input, "
                        "window %d)", d->n, d->c, d->h, d->w, d->k);
    if (d->stride < 1)
        return rm_error("pool: stride %d must be at least 1", d->stride);
    /* As PyTorch: every window then holds at least one in-image element, so
     * max pooling never returns -inf and the average never divides by 0. */
    if (d->pad < 0 || d->pad > d->k / 2)
        return rm_error("pool: padding %d must be between 0 and half the "
                        "window (%d)", d->pad, d->k);
    long oh = window_out(d->h, d->pad, d->k, d->stride);
    long ow = window_out(d->w, d->pad, d->k, d->stride);
    if (oh < 1 || ow < 1)
        return rm_error("pool: empty output (%dx%d input, window %d, padding %d)",
                        d->h, d->w, d->k, d->pad);
    /* argmax holds int32 indices within a plane */
    if ((long)d->h * d->w > INT_MAX)
        return rm_error("pool: %dx%d plane is too large", d->h, d->w);
    d->oh = (int)oh;
    d->ow = (int)ow;
    d->count_include_pad = d->count_include_pad != 0;
    return 0;
}
