/* Crash-safe file replacement: write path.tmp, fsync it, rename it over
 * path, fsync the directory. A reader sees the old file or the new one,
 * never a mixture, whenever the process dies.
 *
 * A symbolic link is followed: its target is replaced, the link stays. A
 * path that exists and is not a regular file (a device such as /dev/stdout,
 * a FIFO) is written in place, as it cannot be replaced; a directory is an
 * error. */
#ifndef RM_ATOMIC_H
#define RM_ATOMIC_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    FILE *f;
    char *path; /* where the content goes (a link's target) */
    char *tmp;  /* path.tmp, renamed over path on success; NULL: written in place */
} rm_atomic;

/* Open a for writing the new content of path. Returns a->f, or NULL with
 * rm_error naming the file. */
FILE *rm_atomic_open(rm_atomic *a, const char *path);
/* Finish: with ok, flush, sync and put the new content in place (0, or -1
 * with rm_error); without ok (the caller's write failed), throw it away
 * (-1, the caller's error kept). path is unchanged on -1, unless it is
 * written in place. */
int rm_atomic_close(rm_atomic *a, int ok);

/* Write the n pieces buf[i] (len[i] bytes each) as the new content of path.
 * Returns 0, or -1 with rm_error naming the file; path is then unchanged. */
int rm_write_atomic(const char *path, const void *const *buf, const size_t *len, int n);

#endif
