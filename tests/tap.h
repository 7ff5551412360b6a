/* Minimal TAP output for the C tests (automake's tap-driver reads it). */
#ifndef RM_TAP_H
#define RM_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_n, tap_failed;

static inline void tap_plan(int n) { printf("1..%d\n", n); }

__attribute__((format(printf, 2, 3), unused)) static int tap_ok(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (!cond)
        tap_failed++;
    fflush(stdout);
    return cond;
}

__attribute__((format(printf, 1, 2), unused)) static void tap_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("ok %d - # SKIP ", ++tap_n);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

__attribute__((format(printf, 1, 2), unused)) static void tap_diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("# ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static inline int tap_done(void) { return tap_failed ? 1 : 0; }

/* The golden files: $GOLDEN_DIR, else tests/golden of the source tree
 * ($top_srcdir, set by make check: a build in another folder runs there),
 * else tests/golden below the current folder. */
__attribute__((unused)) static const char *tap_golden_dir(void)
{
    static char dir[4096];
    const char *d = getenv("GOLDEN_DIR"), *top = getenv("top_srcdir");
    if (d)
        return d;
    if (top && *top && snprintf(dir, sizeof dir, "%s/tests/golden", top) < (int)sizeof dir)
        return dir;
    return "tests/golden";
}

#endif
