/* Crash-safe file replacement: write path.tmp, fsync it, rename it over
 * path, fsync the directory. A reader sees the old file or the new one,
 * never a mixture, whenever the process dies. */
#ifndef RM_ATOMIC_H
#define RM_ATOMIC_H

#include <stddef.h>

/* Write the n pieces buf[i] (len[i] bytes each) as the new content of path.
 * Returns 0, or -1 with rm_error naming the file; path is then unchanged. */
int rm_write_atomic(const char *path, const void *const *buf, const size_t *len, int n);

#endif
