#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char err_buf[1024];

int rm_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return -1;
}

int rm_error_context(const char *fmt, ...)
{
    char prefix[512], old[sizeof err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err_buf, sizeof old);
    /* the combined message is cut at the buffer size, never overflows */
    size_t n = strlen(prefix);
    if (n > sizeof err_buf - 3)
        n = sizeof err_buf - 3;
    memcpy(err_buf, prefix, n);
    memcpy(err_buf + n, ": ", 2);
    size_t rest = sizeof err_buf - n - 3, m = strlen(old);
    memcpy(err_buf + n + 2, old, m < rest ? m : rest);
    err_buf[n + 2 + (m < rest ? m : rest)] = '\0';
    return -1;
}

int rm_error_over(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_buf[0] ? rm_error_context("%s", msg) : rm_error("%s", msg);
}

int rm_error_alloc(const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return err_buf[0] ? rm_error_context("cannot allocate %s", what)
                      : rm_error("out of memory for %s", what);
}

const char *rm_last_error(void) { return err_buf; }

void rm_clear_error(void) { err_buf[0] = '\0'; }
