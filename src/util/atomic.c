#include "util/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"

/* fsync the directory holding path, so the rename itself is durable. */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* The file a write to path replaces: path itself, or where its chain of
 * links ends (relative targets taken from the link's directory; the end
 * need not exist yet). Malloc'd, NULL with rm_error. */
static char *link_end(const char *path)
{
    char *p = strdup(path);
    if (!p) {
        rm_error("%s: out of memory", path);
        return NULL;
    }
    for (int hops = 0;; hops++) {
        struct stat st;
        if (lstat(p, &st) != 0 || !S_ISLNK(st.st_mode))
            return p;
        char to[PATH_MAX];
        ssize_t n = hops < 40 ? readlink(p, to, sizeof to - 1) : -1;
        if (n < 0) {
            rm_error("%s: %s", p, hops < 40 ? strerror(errno) : "too many levels of symbolic links");
            free(p);
            return NULL;
        }
        to[n] = '\0';
        const char *slash = strrchr(p, '/');
        size_t dl = to[0] == '/' || !slash ? 0 : (size_t)(slash - p) + 1;
        char *q = malloc(dl + (size_t)n + 1);
        if (!q) {
            rm_error("%s: out of memory", path);
            free(p);
            return NULL;
        }
        memcpy(q, p, dl);
        memcpy(q + dl, to, (size_t)n + 1);
        free(p);
        p = q;
    }
}

FILE *rm_atomic_open(rm_atomic *a, const char *path)
{
    memset(a, 0, sizeof *a);
    struct stat st;
    int have = stat(path, &st) == 0; /* through links */
    if (have && S_ISDIR(st.st_mode)) {
        rm_error("%s: is a directory", path);
        return NULL;
    }
    if (have && !S_ISREG(st.st_mode)) {
        /* a device or a FIFO (/dev/stdout's link may end in a pipe): in place */
        if (!(a->path = strdup(path)))
            rm_error("%s: out of memory", path);
        else if (!(a->f = fopen(path, "wb")))
            rm_error("%s: cannot open: %s", path, strerror(errno));
    } else if ((a->path = link_end(path))) {
        size_t plen = strlen(a->path);
        if (!(a->tmp = malloc(plen + 5))) {
            rm_error("%s: out of memory", path);
        } else {
            memcpy(a->tmp, a->path, plen);
            memcpy(a->tmp + plen, ".tmp", 5);
            if (!(a->f = fopen(a->tmp, "wb")))
                rm_error("%s: cannot create: %s", a->tmp, strerror(errno));
        }
    }
    if (!a->f) {
        free(a->path);
        free(a->tmp);
        memset(a, 0, sizeof *a);
    }
    return a->f;
}

int rm_atomic_close(rm_atomic *a, int ok)
{
    const char *name = a->tmp ? a->tmp : a->path;
    int err = 0, rc = -1;
    if (ok && (fflush(a->f) != 0 || (a->tmp && fsync(fileno(a->f)) != 0))) {
        err = errno;
        ok = 0;
    }
    if (fclose(a->f) != 0 && ok) {
        err = errno;
        ok = 0;
    }
    if (!ok) {
        if (err)
            rm_error("%s: write failed: %s", name, strerror(err));
        if (a->tmp)
            unlink(a->tmp);
    } else if (a->tmp && rename(a->tmp, a->path) != 0) {
        rm_error("%s: cannot rename %s into place: %s", a->path, a->tmp, strerror(errno));
        unlink(a->tmp);
    } else {
        if (a->tmp)
            sync_dir(a->path);
        rc = 0;
    }
    free(a->path);
    free(a->tmp);
    memset(a, 0, sizeof *a);
    return rc;
}

int rm_write_atomic(const char *path, const void *const *buf, const size_t *len, int n)
{
    rm_atomic a;
    FILE *f = rm_atomic_open(&a, path);
    if (!f)
        return -1;
    int ok = 1;
    for (int i = 0; ok && i < n; i++)
        ok = len[i] == 0 || fwrite(buf[i], 1, len[i], f) == len[i];
    if (!ok)
        rm_error("%s: write failed: %s", a.tmp ? a.tmp : a.path, strerror(errno));
    return rm_atomic_close(&a, ok);
}
