/* The profiled backend (tensor/profile.h): the same results as the backend
 * it wraps, calls counted only while enabled, convolutions by shape, a
 * failure found by its per-operation wait reported at the caller's own
 * sync, no recording while profiling. The wrapped backend is the CPU's with
 * a sync that can be made to fail, standing in for an asynchronous one. */
#include <math.h>
#include <string.h>

#include "tap.h"
#include "tensor/profile.h"
#include "util/err.h"

static int fail_next, syncs, recs;

static int fake_sync(void)
{
    syncs++;
    if (fail_next) {
        fail_next = 0;
        return rm_error("fake_kernel failed (fake.cu:12): an illegal memory access");
    }
    return 0;
}

static int fake_record_begin(void)
{
    recs++;
    return 0;
}

static long long calls_of(const char *name)
{
    prof_op ops[64];
    int n = backend_profile_ops(ops, 64);
    for (int i = 0; i < n; i++)
        if (!strcmp(ops[i].name, name))
            return ops[i].calls;
    return 0;
}

int main(void)
{
    backend fake = *backend_cpu();
    fake.name = "fake";
    fake.sync = fake_sync;
    fake.record_begin = fake_record_begin;
    const backend *p = backend_profiled(&fake);
    tap_ok(p && p != &fake && backend_unprofiled(p) == &fake && backend_unprofiled(&fake) == &fake,
           "a wrapper of its own, unwrapped to the backend");
    tap_ok(backend_profiled(&fake) == p && backend_profiled(p) == p,
           "the same wrapper for the backend and for the wrapper");
    tap_ok(!strcmp(p->name, "fake") && p->conv_work_size == fake.conv_work_size &&
               !p->thread_begin == !fake.thread_begin && !p->cka == !fake.cka,
           "its name, and the entries it lacks stay NULL");

    enum { N = 2, C = 8, H = 6 };
    conv_desc d = {.n = N, .cin = C, .h = H, .w = H, .cout = C, .kh = 3, .kw = 3,
                   .stride = 1, .pad = 1, .dil = 1, .groups = 1};
    conv_desc d1 = d;
    d1.kh = d1.kw = 1;
    d1.pad = 0;
    conv_desc_init(&d);
    conv_desc_init(&d1);
    const size_t nx = (size_t)N * C * H * H, nw = (size_t)C * C * 9;
    float x[N * C * H * H], w[C * C * 9], y0[N * C * H * H], y1[N * C * H * H];
    for (size_t i = 0; i < nx; i++)
        x[i] = sinf((float)i);
    for (size_t i = 0; i < nw; i++)
        w[i] = cosf((float)i) / 8;
    size_t ws = fake.conv_work_size(&d), ws1 = fake.conv_work_size(&d1);
    float *work = p->alloc((ws > ws1 ? ws : ws1) * sizeof(float) + 64);

    /* off: passed through, nothing counted */
    p->conv2d_forward(&d, x, w, NULL, y0, 0, work);
    tap_ok(calls_of("conv2d_forward") == 0 && calls_of("alloc") == 0,
           "disabled: nothing counted");

    backend_profile_enable(1);
    tap_ok(backend_profile_enabled(), "enabled");
    const int s0 = syncs;
    p->conv2d_forward(&d, x, w, NULL, y1, 0, work);
    tap_ok(!memcmp(y0, y1, sizeof y0), "the same convolution output to the bit");
    p->conv2d_forward(&d, x, w, NULL, y1, 0, work);
    p->conv2d_forward(&d1, x, w, NULL, y1, 0, work);
    p->relu_forward(y1, y1, nx);
    tap_ok(syncs - s0 == 4, "each operation waited for (%d syncs for 4)", syncs - s0);
    tap_ok(calls_of("conv2d_forward") == 3 && calls_of("relu_forward") == 1,
           "calls counted by operation (conv2d_forward %lld, relu_forward %lld)",
           calls_of("conv2d_forward"), calls_of("relu_forward"));
    prof_conv cv[4];
    int more = -1, nc = backend_profile_convs(cv, 4, &more);
    int c3 = nc == 2 ? (cv[0].d.kh == 3 ? 0 : 1) : 0;
    tap_ok(nc == 2 && more == 0 && cv[c3].calls[0] == 2 && cv[1 - c3].calls[0] == 1 &&
               cv[c3].calls[1] == 0 && cv[0].seconds[0] + cv[0].seconds[1] >=
                                           cv[1].seconds[0] + cv[1].seconds[1],
           "two convolution shapes, most time first (%d shapes)", nc);
    nc = backend_profile_convs(cv, 1, &more);
    tap_ok(nc == 1 && more == 1, "one shape asked for: one more left out");

    /* a failure the wait after an operation found: reported by the caller's sync */
    fail_next = 1;
    p->zero(y1, nx);
    rm_clear_error();
    tap_ok(p->sync() == -1 && strstr(rm_last_error(), "fake_kernel failed (fake.cu:12)"),
           "a failure found after an operation is the caller's sync's error: %s",
           rm_last_error());
    tap_ok(p->sync() == 0, "and only once");

    /* no recording while profiling; passed through when not */
    recs = 0;
    tap_ok(p->record_begin() == -1 && strstr(rm_last_error(), "not recorded while profiling") &&
               recs == 0,
           "no recording while profiling");
    backend_profile_enable(0);
    tap_ok(p->record_begin() == 0 && recs == 1, "recording passed through when disabled");
    const long long before = calls_of("conv2d_forward");
    p->conv2d_forward(&d, x, w, NULL, y1, 0, work);
    tap_ok(calls_of("conv2d_forward") == before, "disabled again: not counted");
    tap_ok(backend_profile_wall() > 0, "the profiled wall time (%.6f s)", backend_profile_wall());
    backend_profile_reset();
    prof_op ops[4];
    tap_ok(backend_profile_ops(ops, 4) == 0 && backend_profile_convs(cv, 4, &more) == 0 &&
               backend_profile_wall() == 0,
           "reset forgets everything");
    p->free(work);

    /* a second backend gets a second wrapper; there is no room for a third */
    const backend *q = backend_profiled(backend_cpu());
    tap_ok(q && q != p && backend_unprofiled(q) == backend_cpu(), "a second backend, a second wrapper");
    backend other = *backend_cpu();
    rm_clear_error();
    tap_ok(!backend_profiled(&other) && strstr(rm_last_error(), "no room"),
           "a third is refused: %s", rm_last_error());
    tap_plan(tap_n);
    return tap_done();
}
