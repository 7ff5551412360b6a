/* Our Winograd convolutions (cpu_wino.c) with the signature of the other
 * CPU convolutions, at the tile size wino_m (2: F(2x2, 3x3), 4: F(4x4,
 * 3x3)), for the tables of implementations of test_ops.c and bench_conv.c.
 * Needs tensor/cpu_ops.h. */
#ifndef RMINAS_TESTS_WINO_TILE_H
#define RMINAS_TESTS_WINO_TILE_H

static int wino_m __attribute__((unused)) = 2;

__attribute__((unused)) static void wino_fwd(const conv_desc *d, const float *x,
                                             const float *w, const float *b, float *y,
                                             int acc, float *work)
{
    cpu_wino_conv2d_forward(d, wino_m, x, w, b, y, acc, work);
}

__attribute__((unused)) static void wino_bwd(const conv_desc *d, const float *x,
                                             const float *w, const float *dy, float *dx,
                                             float *dw, float *db, float *work)
{
    cpu_wino_conv2d_backward(d, wino_m, x, w, dy, dx, dw, db, work);
}

#endif
