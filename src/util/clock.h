/* Wall-clock seconds from a monotonic clock, for timings and progress. */
#ifndef RM_CLOCK_H
#define RM_CLOCK_H

#include <time.h>

static inline double rm_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#endif
