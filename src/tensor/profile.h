/* Per-operation timing of a backend (the shell's `profile`): a table with
 * the entries of another backend, each timed with the wall clock. An
 * asynchronous backend (CUDA) is synchronized after every operation while
 * profiling is on, so the time of an operation is its launch and its run
 * (and the device runs op by op: no recordings are made). The results are
 * those of the backend itself; profiling changes no number.
 *
 * One profiled backend at a time: backend_profiled(be) returns the wrapper
 * of be (the same table for the same be, rebuilt for another). Counting
 * is on from backend_profile_enable(1) until (0); a wrapper outside that
 * passes every call through. Calls from several threads (set jobs) are
 * counted together: the times are then thread-seconds. */
#ifndef RM_PROFILE_H
#define RM_PROFILE_H

#include "tensor/backend.h"

const backend *backend_profiled(const backend *be);
/* be itself, or the backend a wrapper wraps */
const backend *backend_unprofiled(const backend *be);

void backend_profile_enable(int on);
int backend_profile_enabled(void);
/* Forget what was counted (the clock of backend_profile_wall restarts). */
void backend_profile_reset(void);
/* Wall seconds counted: while enabled, since the reset. */
double backend_profile_wall(void);

typedef struct prof_op {
    const char *name; /* the backend entry, e.g. "conv2d_backward" */
    long long calls;
    double seconds;
} prof_op;

/* Convolutions by shape, forward and backward apart. */
typedef struct prof_conv {
    conv_desc d;
    long long calls[2]; /* forward, backward */
    double seconds[2];
} prof_conv;

/* The entries called since the reset, most time first; returns how many
 * (at most max). */
int backend_profile_ops(prof_op *out, int max);
/* The convolution shapes, most time (forward + backward) first; returns
 * how many (at most max); *more receives how many did not fit. */
int backend_profile_convs(prof_conv *out, int max, int *more);

#endif
