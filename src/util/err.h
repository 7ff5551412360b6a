/* Error reporting for the library: functions return 0 on success and -1 on
 * failure, after storing a one-line message with rm_error(). Only the shell
 * (main) prints it; the library never prints to the terminal or exits. */
#ifndef RM_ERR_H
#define RM_ERR_H

#include <stddef.h>

/* Store a printf-style message (thread-local, overwrites the previous one).
 * Always returns -1 so callers can write `return rm_error(...)`. */
int rm_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefix the stored message with "CONTEXT: " (e.g. a file name). Returns -1. */
int rm_error_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The message, with the stored one after it ("MESSAGE: STORED") if there is
 * one: for a failure whose cause a callee may have stored (clear the
 * message before calling it). Returns -1. */
int rm_error_over(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A failed allocation of WHAT (printf-style): "out of memory for WHAT"
 * when no callee stored a reason, else "cannot allocate WHAT: STORED" (a
 * backend's own reason: out of GPU memory with the sizes, or a device that
 * failed before). Clear the message before the allocations. Returns -1. */
int rm_error_alloc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The last message ("" if none). */
const char *rm_last_error(void);
void rm_clear_error(void);

#endif
